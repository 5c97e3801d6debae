"""Hypothesis-made hostile files for every reader: each either loads (bad records skipped and reported
with file, record and field) or stops with one :class:`SourceError` line naming the file. Nothing else
may come out: no RecursionError, no UnicodeError, no csv.Error, no KeyError.

Readers: Alma user XML, a zip of it, JSON lines, the users CSV, the registration CSV, an Analytics
report (through a stand-in for the client: the only part here that is not a real file), the merge
worklist and its journal (``test_merge_edits.py``).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from almatools.bulk import _UNREADABLE, _read_rows
from almatools.errors import SourceError
from almatools.models import RecordError
from almatools.sources import load_report, load_users

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow])
TAGS = st.sampled_from(["users", "user", "primary_id", "first_name", "last_name", "user_group", "expiry_date",
                        "birth_date", "contact_info", "emails", "email", "email_address", "phones", "phone",
                        "phone_number", "user_identifiers", "user_identifier", "id_type", "value", "loans", "x"])
TEXT = st.one_of(st.text(max_size=12), st.sampled_from(["2026-02-30", "2026-01-01Z", "true", "1e400", "NaN", "-1",
                                                         "=1+1", "\u202e", "a" * 300]))


def element(depth: int = 0) -> st.SearchStrategy[str]:
    leaf = st.builds(lambda t, v: f"<{t}>{escape(v)}</{t}>", TAGS, TEXT)
    if depth >= 3:
        return leaf
    return st.one_of(leaf, st.builds(lambda t, kids, attr: f"<{t}{attr}>{''.join(kids)}</{t}>", TAGS,
                                     st.lists(element(depth + 1), max_size=4),
                                     st.sampled_from(["", ' preferred="yes"', ' preferred="true"',
                                                      ' xsi:nil="true"'])))


XML_DOCS = st.one_of(
    st.builds(lambda users: '<users xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">' + "".join(users)
              + "</users>", st.lists(st.builds(lambda kids: "<user>" + "".join(kids) + "</user>",
                                               st.lists(element(1), max_size=6)), max_size=5)),
    element(0),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
)


def check_loaded(path: Path, seen: list[RecordError]) -> None:
    """Load ``path``; a good result has a report whose errors name the file, record and reason."""
    try:
        frame = load_users(path, on_error=seen.append, workers=1)
    except SourceError as err:
        assert path.name in str(err) and "\n" not in str(err)
        return
    report = load_report(frame)
    assert report is not None and report.records == len(frame)
    assert (frame["primary_id"].astype(str).str.strip() != "").all()
    for err in seen:
        assert err.file and path.name in err.file and err.record is not None and err.reason


@FUZZ
@given(XML_DOCS)
def test_any_xml_loads_or_stops_with_one_line(tmp_path, doc):
    path = tmp_path / "users.xml"
    path.write_text(doc, encoding="utf-8", errors="surrogatepass")
    check_loaded(path, [])


@FUZZ
@given(st.lists(XML_DOCS, min_size=1, max_size=4))
def test_any_zip_of_xml_loads_or_stops_naming_the_member(tmp_path, docs):
    path = tmp_path / "users.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for i, doc in enumerate(docs):
            zf.writestr(f"m{i}.xml", doc.encode("utf-8", "surrogatepass"))
    check_loaded(path, [])


JSON_VALUES = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                                     st.text(max_size=10)),
                           lambda kids: st.one_of(st.lists(kids, max_size=3),
                                                  st.dictionaries(st.one_of(st.text(max_size=6), st.sampled_from(
                                                      ["primary_id", "first_name", "user_group", "contact_info",
                                                       "email", "email_address", "user_identifier", "value",
                                                       "expiry_date", "loans"])), kids, max_size=4)),
                           max_leaves=12)
USER_LIKE = st.fixed_dictionaries({"primary_id": st.one_of(st.none(), st.text(max_size=6), st.integers(),
                                                          st.lists(st.text(max_size=2), max_size=2))},
                                  optional={"first_name": JSON_VALUES, "user_group": JSON_VALUES,
                                            "contact_info": JSON_VALUES, "user_identifier": JSON_VALUES,
                                            "expiry_date": JSON_VALUES, "loans": JSON_VALUES})
LINES = st.one_of(USER_LIKE.map(json.dumps), JSON_VALUES.map(json.dumps), st.text(max_size=30),
                  st.integers(1, 3000).map(lambda d: "[" * d + "]" * d),
                  st.integers(1, 3000).map(lambda d: '{"a":' * d + "1" + "}" * d))


@FUZZ
@given(st.lists(LINES, max_size=8))
def test_any_json_lines_load_or_stop_with_one_line(tmp_path, lines):
    path = tmp_path / "users.jsonl"
    path.write_text("\n".join(line.replace("\n", " ") for line in lines) + "\n", encoding="utf-8",
                    errors="surrogatepass")
    seen: list[RecordError] = []
    check_loaded(path, seen)
    for err in seen:
        assert err.line is not None


CELLS = st.one_of(st.text(max_size=20), st.sampled_from(["", "2026-13-01", "x;y;", "1e400", "-", "\"", "a\nb"]))
CSV_COLUMNS = ["primary_id", "first_name", "last_name", "emails", "identifiers", "loans", "email_count",
               "expiry_date", "unknown"]


def csv_text(header: list[str], rows: list[list[str]]) -> str:
    def cell(v: str) -> str:
        return '"' + v.replace('"', '""') + '"' if any(c in v for c in ',"\n\r') else v
    return "\n".join(",".join(cell(c) for c in row) for row in [header, *rows]) + "\n"


@FUZZ
@given(st.lists(st.sampled_from(CSV_COLUMNS), min_size=1, max_size=6, unique=True),
       st.lists(st.lists(CELLS, max_size=8), max_size=6), st.booleans())
def test_any_users_csv_loads_or_stops_with_one_line(tmp_path, header, rows, raw):
    path = tmp_path / "users.csv"
    text = csv_text(header, rows)
    path.write_bytes(text.encode("utf-8", "surrogatepass") if not raw else b"\xff\xfe" + text.encode("utf-16-le",
                                                                                                    "surrogatepass"))
    check_loaded(path, [])


@FUZZ
@given(st.lists(st.sampled_from(["first_name", "last_name", "primary_id", "note", "email_address", "password"]),
                min_size=1, max_size=5, unique=True), st.lists(st.lists(CELLS, max_size=7), max_size=6))
def test_any_registration_csv_is_read_or_refused_with_one_line(tmp_path, header, rows):
    path = tmp_path / "patrons.csv"
    path.write_text(csv_text(header, rows), encoding="utf-8", errors="surrogatepass")
    try:
        read = _read_rows(path)
    except SourceError as err:
        assert path.name in str(err)
        return
    for row in read:
        assert _UNREADABLE in row or set(row) <= set(header)


def test_an_overlong_registration_cell_and_line_are_unreadable_rows_not_errors(tmp_path):
    path = tmp_path / "patrons.csv"
    path.write_text("first_name,last_name\nAnn," + "y" * 200_000 + "\nBo," + "z" * (2 << 20) + "\nCy,Ng\n",
                    encoding="utf-8")
    rows = _read_rows(path)
    assert [r.get(_UNREADABLE, "")[:30] for r in rows[:2]] == ["column 'last_name' holds 200,0", "line 3 is longer "
                                                                                                "than 1,048,57"]
    assert rows[2] == {"first_name": "Cy", "last_name": "Ng"}


class _Analytics:
    """A stand-in for the client's Analytics reader: yields the rows a report would have."""

    def __init__(self, rows: list[dict[str, str]]) -> None:
        self.rows = rows

    def analytics_rows(self, path: str):
        yield from self.rows


@FUZZ
@given(st.lists(st.dictionaries(st.sampled_from(["Primary Identifier", "First Name", "Birth Date", "Preferred Email",
                                                 "Expiry Date", "Other"]), CELLS, max_size=5), max_size=6))
def test_any_analytics_report_loads_or_stops_with_one_line(rows):
    seen: list[RecordError] = []
    try:
        frame = load_users("analytics:/shared/Users", client=_Analytics(rows), on_error=seen.append)
    except SourceError as err:
        assert "Analytics" in str(err) and "\n" not in str(err)
        return
    assert (frame["primary_id"] != "").all()
    assert all(e.record is not None for e in seen)


@pytest.mark.parametrize("head", [b"", b"\xef\xbb\xbf", b"<", b"{", b"PK", b"\x00" * 10])
def test_files_of_unknown_or_empty_kind_stop_with_one_line(tmp_path, head):
    path = tmp_path / "users.dat"
    path.write_bytes(head)
    with pytest.raises(SourceError) as err:
        load_users(path)
    assert "users.dat" in str(err.value)
