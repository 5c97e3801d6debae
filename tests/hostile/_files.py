"""Hostile files, generated at test time and streamed to disk (none of them is kept in git).

Each function writes one kind of file the issue's table names and returns its path. Sizes are
arguments: the suite uses the issue's sizes where writing them is cheap (sparse files, repeated
compressible elements) and ``bench/hostile_table.py`` measures the same files.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

FORMULAS = ('=HYPERLINK("http://example.invalid/?x=1","click")', "=cmd|' /C calc'!A0", "+SUM(1,2)", "-2+3",
            "@SUM(1)", "\t=1+1")
"""Cell values a spreadsheet would run as formulas."""


def user_xml(pid: str, *, first: str = "Ann", last: str = "Lee", group: str = "UGRAD", email: str = "",
             identifiers: tuple[tuple[str, str], ...] = (), account: str = "INTERNAL") -> str:
    """One ``<user>`` element of Alma user XML."""
    ids = "".join(f"<user_identifier><id_type>{escape(t)}</id_type><value>{escape(v)}</value></user_identifier>"
                  for t, v in identifiers)
    mail = (f"<contact_info><emails><email preferred=\"true\"><email_address>{escape(email)}</email_address>"
            "<email_types><email_type>personal</email_type></email_types></email></emails></contact_info>"
            if email else "")
    return (f"<user><primary_id>{escape(pid)}</primary_id><first_name>{escape(first)}</first_name>"
            f"<last_name>{escape(last)}</last_name><user_group>{group}</user_group>"
            f"<account_type>{account}</account_type><status>ACTIVE</status><expiry_date>2030-01-01Z</expiry_date>"
            f"<purge_date>2031-01-01Z</purge_date>{mail}"
            f"{'<user_identifiers>' + ids + '</user_identifiers>' if ids else ''}</user>")


def users_file(path: Path, users: list[str], *, wrap: str | None = None) -> Path:
    """A users XML file of the given ``<user>`` elements (inside ``<wrap>`` when given)."""
    with open(path, "w", encoding="utf-8") as fh:
        fh.write('<?xml version="1.0" encoding="UTF-8"?>\n')
        fh.write(f"<{wrap}>" if wrap else "")
        fh.write("<users>")
        for u in users:
            fh.write(u)
        fh.write("</users>")
        fh.write(f"</{wrap}>" if wrap else "")
    return path


def placeholder_users(path: Path, n: int = 5000) -> Path:
    """``n`` users that all hold the identifier ``BARCODE=N/A`` (and share one institution-wide email)."""
    return users_file(path, [user_xml(f"AL{i:06d}", first=f"F{i}", last=f"L{i}", email="library@example.edu",
                                      identifiers=(("BARCODE", "N/A"),)) for i in range(n)])


def wrapped_users(path: Path, n: int = 400_000) -> Path:
    """``n`` users inside a wrapping element around ``<users>`` (not an Alma user file)."""
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("<export><users>")
        for i in range(n):
            fh.write(f"<user><primary_id>u{i}</primary_id></user>")
        fh.write("</users></export>")
    return path


def junk_zip(path: Path, mib: int = 128) -> Path:
    """A zip holding one small (compressed) file of ``mib`` MiB of elements that are not ``<user>``."""
    element = b"<note>" + b"x" * 1000 + b"</note>"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf, zf.open("users.xml", "w") as fh:
        fh.write(b"<users>" + user_xml("first").encode())
        block = element * 1024
        for _ in range((mib << 20) // len(block)):
            fh.write(block)
        fh.write(user_xml("last").encode() + b"</users>")
    return path


def many_member_zip(path: Path, n: int) -> Path:
    """A zip of ``n`` one-user XML files."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for i in range(n):
            zf.writestr(f"user_{i:05d}.xml", f"<users>{user_xml(f'Z{i:06d}', first=f'F{i}')}</users>")
    return path


def sparse_file(path: Path, head: bytes, size: int) -> Path:
    """``head`` followed by NUL bytes up to ``size`` bytes, as a sparse file (costs no disk, no time)."""
    with open(path, "wb") as fh:
        fh.write(head)
        fh.truncate(size)
    return path


def one_line_jsonl(path: Path, size: int = 2 << 30) -> Path:
    """A ``.jsonl`` of one line of ``size`` bytes."""
    return sparse_file(path, b'{"primary_id": "a", "first_name": "', size)


def big_csv(path: Path, size: int = 2 << 30) -> Path:
    """A users ``.csv`` whose second line runs for ``size`` bytes."""
    return sparse_file(path, b"primary_id,first_name\nok1,Ann\nx,", size)


DEEP_LINES = ("[" * 200_000 + "]" * 200_000, '{"primary_id": null, "first_name": "A"}', '["x"]',
              '{"primary_id": "p1", "first_name": 1e400}', '{"primary_id": "p2", "first_name": {"a": 1}}',
              '{"primary_id": "p3", "last_name": ["x"]}', '{"primary_id": "good1", "first_name": "Ann"}')
"""JSON lines: one nested 200,000 deep, then values of the wrong type; only the last is a good record."""


def deep_jsonl(path: Path) -> Path:
    path.write_text("\n".join(DEEP_LINES) + "\n", encoding="utf-8")
    return path


REGISTRATION_HEADER = ("affiliation,first_name,last_name,primary_id,user_group,email_address,email_type,"
                       "phone_number,birth_date,note")


def long_field_registration(path: Path, chars: int = 200_000) -> Path:
    """A registration CSV whose second row has a ``chars``-character note; the first and third are fine."""
    rows = [REGISTRATION_HEADER,
            "community,Ann,Lee,ann.lee@example.org,COMMUNITY,ann.lee@example.org,personal,5551234567,1990-01-01,",
            "community,Bo,Ma,bo.ma@example.org,COMMUNITY,bo.ma@example.org,personal,5551234568,1991-01-01,"
            + "y" * chars,
            "community,Cy,Ng,cy.ng@example.org,COMMUNITY,cy.ng@example.org,personal,5551234569,1992-01-01,"]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def formula_registration(path: Path) -> Path:
    """A registration CSV whose values are formulas (each row is invalid, so the issue file quotes them)."""
    rows = [REGISTRATION_HEADER] + [f'community,"{f.replace(chr(34), chr(34) * 2)}",Lee,{f[:3]}x{i},COMMUNITY,'
                                    f"bad-email-{i},personal,,," for i, f in enumerate(FORMULAS)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path
