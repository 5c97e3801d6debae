"""Inputs a librarian really hands the kit, beyond the fuzzed ones: a named pipe or a link to a device where a
file should be, empty and record-less exports, files of another kind under a user-file name (gzip, Excel,
UTF-16, semicolon-separated, Windows code page), hand-edited headers, an unclosed quote, a broken policy.

Each is read (as well as it can be) or refused with one :class:`~almatools.errors.AlmaToolsError` line that
names the file and says what to do; never a hang, a traceback or a silently wrong result. The few command
runs check the contract end to end for the inputs that hung or killed a command before.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import resource
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from _files import REGISTRATION_HEADER, user_xml, users_file
from _hostile import check_contract, run_cli

from almatools.bulk import _UNREADABLE, _read_rows
from almatools.errors import AlmaToolsError, JournalError, MergeError, PolicyError, SourceError
from almatools.merge import Worklist, read_findings, read_requests
from almatools.models import RecordError
from almatools.policy import _default_path, load_policy
from almatools.quality.review import PairDecisions
from almatools.sources import load_sis, load_users

REG_ROW = "community,Ann,Lee,ann.lee@example.org,COMMUNITY,ann.lee@example.org,personal,5551234567,1990-01-01,"


def special(path: Path, kind: str) -> Path:
    """A name that is not a regular file: a named pipe, a link to /dev/zero, or a folder."""
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero":
        path.symlink_to("/dev/zero")
    else:
        path.mkdir()
    return path


def one_line(err: BaseException, *names: str) -> str:
    text = str(err)
    assert "\n" not in text and all(n in text for n in names), text
    return text


READERS = {  # reader name: (file name, call)
    "users": ("users.xml", lambda p: load_users(p, cache=False)),
    "sis": ("sis.csv", lambda p: load_sis(p, cache=False)),
    "registration": ("patrons.csv", _read_rows),
    "policy": ("policy.toml", load_policy),
    "pair decisions": ("pair_decisions.jsonl", lambda p: len(PairDecisions(p))),
    "merge requests": ("merge_requests.csv", read_requests),
    "findings folder": ("duplicates.csv", lambda p: read_findings(p.parent)),
    "worklist": ("proposals.json", lambda p: Worklist.load(p.parent)),
}


@contextmanager
def memory_cap(extra: int = 512 << 20) -> Iterator[None]:
    """This process's data memory capped at its present size plus ``extra`` for the block: a reader that
    regressed to reading /dev/zero whole fails with MemoryError instead of taking the machine down."""
    with open("/proc/self/status") as fh:
        now = next(int(line.split()[1]) << 10 for line in fh if line.startswith("VmData:"))
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    resource.setrlimit(resource.RLIMIT_DATA, (now + extra, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


@pytest.mark.timeout(30)  # a reader that opened the pipe would wait for a writer forever
@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "folder"])
@pytest.mark.parametrize("reader", READERS)
def test_a_pipe_a_device_or_a_folder_is_refused_by_name_before_it_is_read(tmp_path, reader, kind):
    name, read = READERS[reader]
    path = special(tmp_path / name, kind)
    with pytest.raises(AlmaToolsError) as err, memory_cap():
        read(path)
    text = one_line(err.value, name)
    assert ("is a folder" if kind == "folder" else "is not a regular file") in text


def test_the_worklist_journal_as_a_pipe_is_refused_naming_it(tmp_path):
    from test_merge_edits import saved_worklist

    saved_worklist(tmp_path / "wl")
    journal = tmp_path / "wl" / "decisions.jsonl"
    journal.unlink()
    special(journal, "fifo")
    with pytest.raises(MergeError) as err:
        Worklist.load(tmp_path / "wl")
    assert "line None" not in one_line(err.value, "decisions.jsonl", "not a regular file")


@pytest.mark.parametrize("name, content", [
    ("users.xml", b""), ("users.csv", b""), ("users.jsonl", b""), ("users.zip", b""),
    ("users.csv", b"primary_id,first_name\n"), ("users.xml", b"<users/>"), ("users.jsonl", b"\n\n"),
    ("users.xml", b"<users>" + user_xml("").encode() + b"</users>"),  # its only record is bad
])
def test_an_empty_or_recordless_source_is_refused_not_read_as_nobody(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    for load in (load_users, load_sis):
        with pytest.raises(SourceError) as err:
            load(path, cache=False)
        text = one_line(err.value, name)
        assert "is empty (0 bytes)" in text if not content else "holds no" in text


def test_an_empty_sis_extract_stops_quality_instead_of_calling_every_sis_record_stale(tmp_path):
    users = users_file(tmp_path / "users.xml", [user_xml(f"S{i}", account="EXTERNAL") for i in range(3)])
    (tmp_path / "sis.csv").write_text("primary_id,first_name\n", encoding="utf-8")
    outcome = run_cli("quality", "--users", users, "--sis", tmp_path / "sis.csv", "--out", tmp_path / "out",
                      "--quiet", "--no-duplicates")
    check_contract(outcome, "quality")
    assert outcome.code == 1 and "sis.csv holds no SIS records" in outcome.message
    assert not (tmp_path / "out" / "findings.csv").exists()


def _xlsx(path: Path) -> Path:
    import openpyxl

    book = openpyxl.Workbook()
    book.active.append(["primary_id", "first_name"])
    book.active.append(["P1", "Ann"])
    book.save(path)
    return path


GOOD_XML = b"<users>" + user_xml("P1").encode() + b"</users>"
OTHER_KINDS = {  # name, bytes (or a writer), words the message must hold
    "gzip named .xml": ("users.xml", gzip.compress(GOOD_XML), "gzip-compressed: unpack it first"),
    "Excel workbook": ("users.xlsx", _xlsx, "is an Excel workbook"),
    "Excel workbook named .csv": ("users.csv", _xlsx, "is an Excel workbook"),
    "old Excel .xls": ("users.csv", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, "Excel workbook (.xls)"),
    "UTF-16 CSV": ("users.csv", "primary_id,first_name\nP1,Ann\n".encode("utf-16"), "UTF-16 text"),
    "Windows-1252 CSV": ("users.csv", "primary_id,first_name\nP1,Ann\nP2,Jos\u00e9\n".encode("cp1252"),
                         "not UTF-8 text (line 3 holds bytes that are not UTF-8); save it"),
    "semicolon CSV": ("users.csv", b"primary_id;first_name\nP1;Ann\n", "separated by semicolons"),
    "Latin-1 XML with no declaration": ("users.xml", b"<users>" + user_xml("P1", first="Jos\u00e9").encode("latin-1")
                                        + b"</users>", 'save it as UTF-8, or declare its encoding'),
    "a zip inside the zip": ("users.zip", None, "a zip inside the zip must be unpacked first"),
}


@pytest.mark.parametrize("case", OTHER_KINDS)
def test_a_file_of_another_kind_is_named_for_what_it_is(tmp_path, case):
    name, content, words = OTHER_KINDS[case]
    path = tmp_path / name
    if callable(content):
        content(path)
    elif content is None:
        with zipfile.ZipFile(tmp_path / "inner.zip", "w") as inner:
            inner.writestr("users.xml", GOOD_XML)
        with zipfile.ZipFile(path, "w") as outer:
            outer.write(tmp_path / "inner.zip", "inner.zip")
    else:
        path.write_bytes(content)
    with pytest.raises(SourceError) as err:
        load_users(path, cache=False, workers=1)
    assert words in one_line(err.value, name)


@pytest.mark.parametrize("case, words", [
    ("Excel workbook named .csv", "is an Excel workbook"), ("UTF-16 CSV", "UTF-16 text"),
    ("Windows-1252 CSV", "CSV UTF-8 (Comma delimited)"), ("semicolon CSV", "separated by semicolons")])
def test_the_registration_csv_names_the_same_kinds(tmp_path, case, words):
    name, content, _ = OTHER_KINDS[case]
    path = tmp_path / "patrons.csv"
    if callable(content):
        content(path)
    else:
        path.write_bytes(content)
    with pytest.raises(SourceError) as err:
        _read_rows(path)
    assert words in one_line(err.value, "patrons.csv")


def test_a_zero_byte_registration_csv_is_refused(tmp_path):
    (tmp_path / "patrons.csv").write_bytes(b"")
    with pytest.raises(SourceError, match="patrons.csv is empty"):
        _read_rows(tmp_path / "patrons.csv")


def test_headers_retyped_in_another_case_or_with_spaces_read_as_the_kit_s_columns(tmp_path):
    users = tmp_path / "users.csv"
    users.write_text("Primary ID , First Name,LAST_NAME\nP1,Ann,Lee\n", encoding="utf-8")
    frame = load_users(users, cache=False)
    assert frame[["primary_id", "first_name", "last_name"]].values.tolist() == [["P1", "Ann", "Lee"]]
    reg = tmp_path / "patrons.csv"
    reg.write_text(REGISTRATION_HEADER.upper().replace("_", " ") + "\n" + REG_ROW + "\n", encoding="utf-8")
    [row] = _read_rows(reg)
    assert row["first_name"] == "Ann" and row["email_address"] == "ann.lee@example.org"


@pytest.mark.parametrize("header", ["primary_id,first_name,first_name", "primary_id,First Name,first_name"])
def test_a_column_named_twice_is_refused_not_half_read(tmp_path, header):
    users = tmp_path / "users.csv"
    users.write_text(header + "\nP1,Ann,Bob\n", encoding="utf-8")
    with pytest.raises(SourceError) as err:
        load_users(users, cache=False)
    assert "first_name" in one_line(err.value, "users.csv")
    reg = tmp_path / "patrons.csv"
    reg.write_text(REGISTRATION_HEADER + ",first_name\n" + REG_ROW + ",Bob\n", encoding="utf-8")
    with pytest.raises(SourceError, match="'first_name' appears twice"):
        _read_rows(reg)


def test_an_unclosed_quote_is_one_bad_record_not_every_later_row_swallowed(tmp_path):
    path = tmp_path / "users.csv"
    path.write_text('primary_id,first_name\nP1,Ann\nP2,"Bo\nP3,Cy\nP4,Di\n', encoding="utf-8")
    seen: list[RecordError] = []
    frame = load_users(path, cache=False, on_error=seen.append)
    assert frame["primary_id"].tolist() == ["P1"]  # before: P2 loaded as "Bo\nP3,Cy\nP4,Di", silently
    assert len(seen) == 1 and "starts on line 3 is never closed" in seen[0].reason
    reg = tmp_path / "patrons.csv"
    reg.write_text(REGISTRATION_HEADER + "\n" + REG_ROW + '\ncommunity,"Bo\n', encoding="utf-8")
    rows = _read_rows(reg)
    assert rows[0]["first_name"] == "Ann" and "never closed" in rows[1][_UNREADABLE]


@pytest.mark.parametrize("content, expected", [
    (b'primary_id,first_name\rP1,Ann\rP2,"Bo\rBo"\r', [["P1", "Ann"], ["P2", "Bo Bo"]]),  # CR-only (old Mac)
    (b'\xef\xbb\xbfprimary_id,first_name\r\nP1,"Ann, Jr"\r\n', [["P1", "Ann, Jr"]]),  # Excel: BOM, CRLF, quotes
])
def test_csv_line_endings_and_quoting_of_spreadsheets_are_read(tmp_path, content, expected):
    path = tmp_path / "users.csv"
    path.write_bytes(content)
    assert load_users(path, cache=False)[["primary_id", "first_name"]].values.tolist() == expected


@pytest.mark.parametrize("content, words", [
    (b"\xff\xfe[institution]", "is not UTF-8 text"),
    (b"# " + b"x" * (1 << 20) + b"\n", "larger than 1 MiB"),
])
def test_a_policy_that_is_not_text_or_far_too_large_is_refused(tmp_path, content, words):
    path = tmp_path / "policy.toml"
    path.write_bytes(content)
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert words in one_line(err.value, "policy.toml")


def test_a_policy_saved_with_a_byte_order_mark_reads_as_without(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_bytes(b"\xef\xbb\xbf" + _default_path().read_bytes())
    assert dataclasses.replace(load_policy(path), source=_default_path()) == load_policy(_default_path())


def test_a_folder_where_an_output_file_goes_stops_quality_before_any_file_changes(tmp_path):
    users = users_file(tmp_path / "users.xml", [user_xml(f"P{i}") for i in range(3)])
    out = tmp_path / "out"
    first = run_cli("quality", "--users", users, "--sis", "none", "--out", out, "--quiet", "--no-duplicates")
    assert first.code == 0, first.stderr
    (out / "summary.txt").unlink()
    (out / "summary.txt").mkdir()
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.iterdir() if p.is_file()}
    outcome = run_cli("quality", "--users", users_file(tmp_path / "more.xml", [user_xml("Q1")]), "--sis", "none",
                      "--out", out, "--quiet", "--no-duplicates")
    check_contract(outcome, "quality")
    assert outcome.code == 1 and "summary.txt is a folder" in outcome.message
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.iterdir() if p.is_file()} == before
    assert not [p for p in out.iterdir() if p.name.endswith(".part")]


@pytest.mark.parametrize("command", ["quality-policy", "register-csv"])
def test_commands_that_hung_or_were_killed_on_a_device_now_answer_in_one_line(tmp_path, command):
    if command == "quality-policy":  # read whole into memory until the kernel killed it
        users = users_file(tmp_path / "users.xml", [user_xml("P1")])
        zero = special(tmp_path / "policy.toml", "dev-zero")
        outcome = run_cli("quality", "--users", users, "--sis", "none", "--policy", zero, "--out", tmp_path / "out",
                          "--quiet", "--no-duplicates", timeout=60)
        name = "quality"
    else:  # waited for a writer on the pipe forever
        outcome = run_cli("register", "--csv", special(tmp_path / "patrons.csv", "fifo"), "--dry-run", "--quiet",
                          timeout=60)
        name = "register"
    check_contract(outcome, name)
    assert outcome.code == 1 and "is not a regular file" in outcome.message, outcome.stderr


def test_a_journal_name_holding_a_folder_is_a_journal_error_without_a_line(tmp_path):
    from almatools.files import AppendLog

    special(tmp_path / "log.jsonl", "folder")
    for act in (lambda log: log.read(), lambda log: log.append({"a": 1})):
        with pytest.raises(JournalError) as err:
            act(AppendLog(tmp_path / "log.jsonl"))
        assert err.value.line is None and "is a folder" in one_line(err.value, "log.jsonl")


@pytest.mark.parametrize("name", ["users.xml", "users.zip"])
def test_a_cached_copy_of_a_file_names_the_file_given_not_the_first_copy(tmp_path, monkeypatch, name):
    """The parse cache is keyed by content: the errors and files of a copy under another name must name it."""
    monkeypatch.setenv("ALMATOOLS_CACHE", str(tmp_path / "cache"))
    doc = b"<users>" + user_xml("P1").encode() + user_xml("").encode() + b"</users>"  # the second has no id
    for folder in ("first", "second"):
        path = tmp_path / folder / name
        path.parent.mkdir()
        if name.endswith(".zip"):
            with zipfile.ZipFile(path, "w") as zf:
                zf.writestr("part.xml", doc)
        else:
            path.write_bytes(doc)
        seen: list[RecordError] = []
        frame = load_users(path, on_error=seen.append, workers=1)
        report = frame.attrs["load_report"]
        assert all(f.startswith(str(path)) for f in report["files"]), report["files"]
        assert [e.file.startswith(str(path)) for e in seen] == [True]
    assert "read from the parse cache" in " ".join(report["notes"])  # the second load was a cache hit


@pytest.mark.parametrize("args, words", [
    (("sandbox", "--port", "99999"), "argument --port: must be a port number from 0 to 65535, not 99999"),
    (("lab", "--sandbox-port", "-1"), "argument --sandbox-port: must be a port number"),
    (("register", "--csv", "x.csv", "--workers", "0"), "argument --workers: must be 1 or more, not 0"),
    (("report", "--timeout", "-1"), "argument --timeout: must be 0 or more, not -1"),
    (("report", "--top", "ten"), "argument --top: must be a whole number of 0 or more, not 'ten'"),
    (("snapshot", "--out", "x.jsonl", "--reserve", "-5"), "argument --reserve: must be 0 or more, not -5"),
    (("sandbox", "--per-second", "-3"), "argument --per-second: must be 0 or more, not -3"),
])
def test_numbers_out_of_range_are_usage_errors_not_unexpected_ones(capsys, args, words):
    from almatools.cli import main

    with pytest.raises(SystemExit) as stop:  # before: sandbox --port 99999 ended in "unexpected OverflowError"
        main(list(args))
    assert stop.value.code == 2 and words in capsys.readouterr().err


def test_merge_list_into_a_path_that_is_a_file_says_a_folder_is_needed(tmp_path):
    (tmp_path / "findings").mkdir()
    (tmp_path / "findings" / "duplicates.csv").write_text("cluster_id,primary_id\nc1,A\nc1,B\n", encoding="utf-8")
    (tmp_path / "taken").write_text("x", encoding="utf-8")
    outcome = run_cli("merge-list", "--findings", tmp_path / "findings", "--out", tmp_path / "taken")
    check_contract(outcome, "merge-list")
    assert outcome.code == 1 and "taken: File exists (it is a file where a folder is needed" in outcome.message
    assert (tmp_path / "taken").read_text(encoding="utf-8") == "x"


@pytest.mark.parametrize("line, lacking", [('{"primary_id": "CB100234"}', "status"),
                                           ('{"primary_id": "CB100234", "status": "refused"}', "fingerprint")])
def test_a_registration_journal_line_edited_by_hand_is_named_before_the_run_starts(tmp_path, line, lacking):
    from almatools.bulk import _Journal

    path = tmp_path / "patrons.journal.jsonl"
    path.write_text('{"primary_id": "CB100233", "status": "created", "fingerprint": "f", "row": 2}\n' + line + "\n",
                    encoding="utf-8")
    with pytest.raises(JournalError) as err:  # before: KeyError half-way through the run, "unexpected"
        _Journal(path)
    assert err.value.line == 2 and repr(lacking) in one_line(err.value, "patrons.journal.jsonl", "line 2")


def test_a_worklist_saved_with_a_byte_order_mark_still_opens(tmp_path):
    from test_merge_edits import saved_worklist

    saved_worklist(tmp_path / "wl")
    proposals = tmp_path / "wl" / "proposals.json"
    proposals.write_bytes(b"\xef\xbb\xbf" + proposals.read_bytes())  # Notepad's "UTF-8" on Windows
    assert Worklist.load(tmp_path / "wl").pair_ids


def test_a_password_protected_zip_member_says_to_zip_it_again_without_one(tmp_path):
    path = tmp_path / "users.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("users.xml", GOOD_XML)
    data = bytearray(path.read_bytes())  # the "encrypted" flag bit, in the local header and the directory
    data[data.find(b"PK\x03\x04") + 6] |= 1
    data[data.find(b"PK\x01\x02") + 8] |= 1
    path.write_bytes(bytes(data))
    with pytest.raises(SourceError) as err:
        load_users(path, cache=False, workers=1)
    assert "zip the files again without one" in one_line(err.value, "users.zip:users.xml", "encrypted")


def test_sigterm_stops_quality_in_one_line_leaving_the_last_run_s_files_and_no_temporary_ones(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from _files import placeholder_users

    users = placeholder_users(tmp_path / "users.xml", 20_000)
    out = tmp_path / "out"
    out.mkdir()
    (out / "findings.csv").write_text("the last run's findings\n", encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "almatools", "quality", "--users", str(users), "--sis", "none",
                             "--out", str(out), "--no-cache"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        os.set_blocking(proc.stderr.fileno(), False)
        seen, deadline = b"", time.monotonic() + 60
        while b"users" not in seen:  # the first progress bar: it is reading the source
            assert proc.poll() is None and time.monotonic() < deadline, seen.decode()
            seen += proc.stderr.read() or b""
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGTERM)
        code = proc.wait(timeout=60)
        os.set_blocking(proc.stderr.fileno(), True)
        err = (seen + proc.stderr.read()).decode()
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()
    assert code == 130 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith("almatools quality: stopped (interrupted)"), err
    assert [p.name for p in out.iterdir()] == ["findings.csv"]  # no other output, no temporary file
    assert (out / "findings.csv").read_text(encoding="utf-8") == "the last run's findings\n"


@pytest.mark.parametrize("pasted", ['"{}"', "{}\n", " '{}' "])
def test_a_path_pasted_with_quotes_or_a_newline_is_read(tmp_path, pasted):
    path = users_file(tmp_path / "users.xml", [user_xml("P1")])
    assert load_users(pasted.format(path), cache=False)["primary_id"].tolist() == ["P1"]


@pytest.mark.parametrize("content", [b'[{"primary_id": "P1"}]', b"my notes, no newline at the end",
                                     b'{"a": 1}\n[1, 2, 3]'])
def test_a_journal_name_given_to_another_file_never_cuts_its_last_line(tmp_path, content):
    """Before, a file whose last line had no newline lost that line on the first append (taken for a torn
    write): `snapshot --out users.json` emptied a one-line JSON array export and wrote the snapshot into it."""
    from almatools.files import AppendLog

    path = tmp_path / "users.json"
    path.write_bytes(content)
    log = AppendLog(path)
    with pytest.raises(JournalError):
        log.read()
    with pytest.raises(JournalError) as err:
        log.append({"primary_id": "P2"})
    assert "not one of the kit's journals" in one_line(err.value, "users.json")
    assert path.read_bytes() == content


def test_a_torn_last_line_of_the_kit_is_still_cut_off(tmp_path):
    from almatools.files import AppendLog

    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": 2, "b"')
    log = AppendLog(path)
    assert log.read() == [{"a": 1}]
    log.append({"a": 3})
    assert log.read() == [{"a": 1}, {"a": 3}]


def test_merge_requests_that_contradict_each_other_are_flagged_on_the_pair(tmp_path):
    """X → Y and then Y → X: before, the second was dropped without a word and X → Y proposed as if agreed."""
    from almatools.merge import propose

    clusters = read_findings_frame(tmp_path)
    requests = tmp_path / "merge_requests.csv"
    requests.write_text("from_primary_id,to_primary_id\nX,Y\nY ,x\nA,A\n", encoding="utf-8")
    worklist = propose(clusters, requests=requests)
    [pair] = [p for p in worklist.to_frame().to_dict("records") if p["from_primary_id"] == "X"]
    assert pair["to_primary_id"] == "Y" and "asks the reverse (Y → x)" in pair["reason"]
    assert any("into itself" in h["reason"] for h in worklist.held)  # A → A: held, said, not dropped


def read_findings_frame(folder: Path):
    (folder / "duplicates.csv").write_text("cluster_id,primary_id\nc1,C\nc1,D\n", encoding="utf-8")
    return read_findings(folder)[0]
