"""The kit's one append-only journal type and its one torn-tail policy (almatools.files.AppendLog)."""

import json

import pytest

from almatools.errors import JournalError
from almatools.files import AppendLog


def test_entries_come_back_in_order_and_survive_a_new_log_object(tmp_path):
    log = AppendLog(tmp_path / "j.jsonl")
    assert log.read() == [] and not log.repair()
    log.append({"n": 1})
    log.extend([{"n": 2}, {"n": 3}])
    assert [e["n"] for e in AppendLog(tmp_path / "j.jsonl").read()] == [1, 2, 3]


def test_a_torn_last_line_is_dropped_and_cut_off_before_the_next_append(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_bytes(b'{"n": 1}\n{"n": 2}\n{"n": 3, "na')  # the machine died in the middle of a write
    log = AppendLog(path)
    assert [e["n"] for e in log.read()] == [1, 2]
    log.append({"n": 4})
    assert path.read_bytes() == b'{"n": 1}\n{"n": 2}\n{"n": 4}\n'


def test_a_whole_last_entry_that_lost_only_its_newline_is_kept(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_bytes(b'{"n": 1}\n{"n": 2}')
    log = AppendLog(path)
    assert [e["n"] for e in log.read()] == [1, 2]
    assert log.repair() and path.read_bytes() == b'{"n": 1}\n{"n": 2}\n'
    with log.writer() as write:
        write({"n": 3})
    assert [json.loads(line)["n"] for line in path.read_text().splitlines()] == [1, 2, 3]


@pytest.mark.parametrize("bad", [b"garbage", b"[1, 2]", b'{"n": 2'])
def test_a_bad_line_before_the_end_is_an_error_naming_the_file_and_line(tmp_path, bad):
    path = tmp_path / "j.jsonl"
    original = b'{"n": 1}\n\n' + bad + b'\n{"n": 3}\n'
    path.write_bytes(original)
    with pytest.raises(JournalError, match=r"j\.jsonl: line 3 ") as caught:
        AppendLog(path).read()
    assert caught.value.line == 3 and caught.value.path == path
    assert path.read_bytes() == original  # damage is reported, never cut away


def test_a_line_over_the_limit_is_damage_not_a_memory_hog(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_bytes(b'{"n": 1}\n{"x": "' + b"a" * 5000 + b'"}\n{"n": 3}\n')
    with pytest.raises(JournalError, match="line 2 is longer than 1,000 bytes"):
        AppendLog(path, max_line_bytes=1000).read()
    assert len(AppendLog(path).read()) == 3
