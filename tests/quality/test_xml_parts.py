"""One large Alma user XML file read in parts by worker processes: the same table and the same bad-record
errors (file, record number, line, field) as reading it whole, whatever the file holds; a file that cannot
be cut safely is read whole."""

from __future__ import annotations

import logging
import random

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import almatools.sources as sources
from almatools.errors import SourceError
from almatools.models import RecordError
from almatools.sources import load_report, load_users
from almatools.sources.load import _tasks
from almatools.sources.xml_parts import PartReader, root_start, split_points

XSI = "http://www.w3.org/2001/XMLSchema-instance"
FALLBACK = "read whole"


def record(i: int, rng: random.Random) -> str:
    first = rng.choice(["Ann", "Bob", "Chloé", "Đức", "Zoë", "O'Neil"])
    bad = {7: "<birth_date>2001-02-30</birth_date>", 61: "<loans>many</loans>",
           133: "<last_name>A</last_name><last_name>B</last_name>", 190: "<expiry_date>soon</expiry_date>"}
    return (f"<user><record_type desc=\"Public\">PUBLIC</record_type><primary_id>P{i:05d}</primary_id>\n"
            f"<first_name>{first}</first_name><last_name>Lee{i}</last_name>{bad.get(i, '')}"
            f"<campus_code desc=\"\" xsi:nil=\"true\"/><middle_name xsi:nil=\"true\"/>"
            f"<user_group desc=\"x\">{rng.choice(['UGRAD', 'GRAD', 'STAFF'])}</user_group>"
            f"<expiry_date>2027-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}Z</expiry_date>"
            f"<contact_info><emails><email preferred=\"true\"><email_address>u{i}@x.edu</email_address>"
            f"</email></emails></contact_info><user_identifiers><user_identifier><value>B{i}</value>"
            f"<id_type desc=\"Barcode\">BARCODE</id_type></user_identifier></user_identifiers></user>")


def users_file(path, n=220, *, between=None, root_attrs=""):
    """An export of ``n`` users; ``between(i)`` gives what to write before record i (comments...)."""
    rng = random.Random(5)
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<!-- exported -->\n'
             f'<users\n  xmlns:xsi="{XSI}"\n  total_record_count="{n}"{root_attrs}>\n']
    for i in range(n):
        if between is not None:
            parts.append(between(i))
        parts.append(record(i, rng) + ("\n" if i % 3 else ""))
    parts.append("</users>\n<!-- end -->\n")
    path.write_bytes("".join(parts).encode("utf-8"))
    return path


def load(path, workers):
    """Read the file itself every time (the parse cache would give the first read's table back)."""
    seen: list[RecordError] = []
    frame = load_users(path, on_error=seen.append, workers=workers, cache=False)
    return frame, [(e.file, e.record, e.line, e.field, e.reason) for e in seen]


@pytest.fixture
def small_parts(monkeypatch):
    monkeypatch.setattr(sources.pool, "_PARALLEL_BYTES", 0)  # worker processes even for a small file
    monkeypatch.setattr(sources.xml_parts, "PART_BYTES", 4000)


def parts_of(path):
    tasks = _tasks(path, "xml", 2)
    return [t for t in tasks if t.kind == "xmlpart"]


def test_a_file_in_parts_gives_the_whole_reads_table_and_errors(tmp_path, small_parts, caplog):
    path = users_file(tmp_path / "users.xml")
    parts = parts_of(path)
    assert len(parts) >= 6  # really cut, into parts that each start at a <user>
    data = path.read_bytes()
    assert all(data[t.start:t.start + 6] == b"<user>" for t in parts[1:])
    whole, whole_errors = load(path, workers=1)
    with caplog.at_level(logging.INFO, logger="almatools.sources.pool"):
        split, split_errors = load(path, workers=2)
    assert FALLBACK not in caplog.text  # read in parts (the namespace declared on the root applied to each)
    pd.testing.assert_frame_equal(split, whole)
    assert len(whole) == 216 and split_errors == whole_errors
    assert [e[1] for e in whole_errors] == [8, 62, 134, 191]
    lines = data.decode().split("\n")
    for _file, number, line, _field, _reason in whole_errors:  # the line where the bad record starts
        assert f"<user><record_type desc=\"Public\">PUBLIC</record_type><primary_id>P{number - 1:05d}<" \
            in lines[line - 1]


@pytest.mark.parametrize("between", [
    pytest.param(lambda i: "<!-- <user><primary_id>ghost</primary_id></user> " + "<user> " * 400 + "-->"
                 if i == 100 else "", id="comment holding <user>"),
    pytest.param(lambda i: "<?note " + "<user> " * 400 + "?>" if i == 100 else "", id="processing instruction"),
])
def test_a_cut_inside_a_comment_falls_back_to_the_whole_read(tmp_path, small_parts, caplog, between):
    path = users_file(tmp_path / "users.xml", between=between)
    data = path.read_bytes()
    start, end = data.index(b"<user> <user>"), data.index(b"<user> -->" if b"<!--" in data[:data.index(
        b"<user> <user>")][-200:] else b"<user> ?>")
    assert any(start <= t.start <= end for t in parts_of(path))  # a cut landed inside it
    whole, whole_errors = load(path, workers=1)
    with caplog.at_level(logging.INFO, logger="almatools.sources.pool"):
        split, split_errors = load(path, workers=2)
    assert FALLBACK in caplog.text
    pd.testing.assert_frame_equal(split, whole)
    assert split_errors == whole_errors and "ghost" not in set(whole["primary_id"])


def test_cdata_and_comments_between_cuts_are_read_in_parts(tmp_path, small_parts, caplog):
    def between(i):
        return f"<!-- record {i} -->" if i % 10 == 0 else ""

    path = users_file(tmp_path / "users.xml", between=between)
    text = path.read_text(encoding="utf-8").replace("<first_name>Ann</first_name>",
                                                    "<first_name><![CDATA[Ann <user> & co]]></first_name>")
    path.write_text(text, encoding="utf-8")
    assert text.count("CDATA") > 10
    whole, whole_errors = load(path, workers=1)
    with caplog.at_level(logging.INFO, logger="almatools.sources.pool"):
        split, split_errors = load(path, workers=2)
    pd.testing.assert_frame_equal(split, whole)
    assert split_errors == whole_errors
    assert (whole["first_name"] == "Ann <user> & co").sum() > 10


def test_a_broken_record_in_a_later_part_gives_the_whole_reads_error(tmp_path, small_parts):
    path = users_file(tmp_path / "users.xml")
    data = path.read_bytes()
    cut = data.index(b"<primary_id>P00180</primary_id>")
    path.write_bytes(data[:cut] + b"<primary_id>P00180</primary_id" + data[cut + 31:])  # not well formed
    with pytest.raises(SourceError) as whole:
        load_users(path, workers=1, cache=False)
    with pytest.raises(SourceError) as split:
        load_users(path, workers=2, cache=False)
    assert str(split.value) == str(whole.value) and "stops being well-formed XML after" in str(whole.value)


@pytest.mark.parametrize("change", [
    pytest.param(lambda t: t.replace('encoding="UTF-8"', 'encoding="ISO-8859-1"'), id="latin-1"),
    pytest.param(lambda t: "\ufeff" + t, id="byte order mark"),
    pytest.param(lambda t: t.replace("<!-- exported -->", '<!DOCTYPE users [<!ENTITY org "X">]>'), id="doctype"),
    pytest.param(lambda t: t.replace('version="1.0"', 'version="1.1"'), id="xml 1.1"),
    pytest.param(lambda t: t.replace("<users\n", '<a:users xmlns:a="urn:x"\n').replace("</users>", "</a:users>"),
                 id="prefixed root"),
])
def test_a_file_that_cannot_be_cut_safely_is_read_whole(tmp_path, small_parts, change):
    path = tmp_path / "users.xml"
    text = change(users_file(path).read_text(encoding="utf-8"))
    path.write_bytes(text.encode("latin-1", "xmlcharrefreplace") if "ISO-8859-1" in text else text.encode())
    assert parts_of(path) == []
    assert len(_tasks(path, "xml", 2)) == 1
    try:
        whole = load(path, workers=1)
    except SourceError as err:
        with pytest.raises(SourceError, match=str(err).split(" (")[0]):
            load(path, workers=2)
        return
    split = load(path, workers=2)
    pd.testing.assert_frame_equal(split[0], whole[0])
    assert split[1] == whole[1]


def test_utf16_is_not_cut(tmp_path):
    text = '<?xml version="1.0" encoding="UTF-16"?><users><user><primary_id>1</primary_id></user></users>'
    assert root_start(text.encode("utf-16")) is None
    assert root_start(text.encode("utf-16-be")) is None
    utf8 = text.replace("UTF-16", "utf-8")
    assert root_start(utf8.encode()) == (b"<users>", utf8.index("<user>"))


def test_part_reader_gives_head_range_and_tail_and_counts_newlines(tmp_path):
    path = tmp_path / "f.xml"
    path.write_bytes(b"0123\n5678\n\nabc")
    with open(path, "rb") as fh:
        part = PartReader(fh, b"<h>\n", 3, 12, b"</h>")
        got = b"".join(iter(lambda: part.read(2), b""))
        assert got == b"<h>\n3\n5678\n\na</h>" and part.newlines == 3 and part.tell() == len(got)


def test_cuts_are_only_at_user_start_tags(tmp_path):
    path = users_file(tmp_path / "users.xml")
    data = path.read_bytes()
    with open(path, "rb") as fh:
        split = split_points(fh, len(data), 3000)
    assert split is not None and split.head.startswith(b"<users\n  xmlns:xsi=") and split.tail == b"</users>"
    assert split.bounds[0] == 0 and split.bounds[-1] == len(data)
    assert all(data[b:b + 6] == b"<user>" for b in split.bounds[1:-1])
    assert list(split.bounds) == sorted(set(split.bounds))


def test_the_report_names_the_file_once(tmp_path, small_parts):
    path = users_file(tmp_path / "users.xml")
    frame = load_users(path, workers=2, cache=False)
    assert load_report(frame).files == [str(path)]


PLAIN = st.sampled_from([
    "<user><primary_id>{i}</primary_id><first_name>A{i}</first_name></user>",
    "<user>\n<primary_id>{i}</primary_id>\n<last_name>L</last_name>\n</user>\n",
    '<user><primary_id>{i}</primary_id><middle_name xsi:nil="true"/><loans>2</loans></user>',
    "<user><primary_id>{i}</primary_id><birth_date>2001-02-30</birth_date></user>",  # a bad record
    "<user/>",  # a bad record: no primary id
    "\n  ",
])
ODD = st.sampled_from([
    "<user ><primary_id>{i}</primary_id><first_name><![CDATA[<user> {i}]]></first_name></user>",
    "<!-- <user><primary_id>c{i}</primary_id></user> -->",
    "<?pi <user> {i} ?>",
    "<other><user><primary_id>o{i}</primary_id></user></other>",
    "<user><primary_id>{i}</primary_id>",  # never closed: not well formed
    "</users><user>",
    "&amp;",
])
PIECES = st.one_of(PLAIN, PLAIN, PLAIN, PLAIN, PLAIN, ODD)  # mostly files that can be read in parts


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(PIECES, min_size=1, max_size=40), st.sampled_from(["", "\n", " "]), st.integers(40, 400))
def test_any_file_read_in_parts_reads_as_whole(tmp_path, monkeypatch, pieces, gap, part):
    # In this process (no worker processes: fast), cut into parts of `part` bytes.
    monkeypatch.setattr(sources.pool, "_PARALLEL_BYTES", 1 << 40)
    monkeypatch.setattr(sources.xml_parts, "PART_BYTES", part)
    body = gap.join(p.format(i=i) for i, p in enumerate(pieces))
    path = tmp_path / "users.xml"
    path.write_text(f'<?xml version="1.0"?>\n<users xmlns:xsi="{XSI}"\n a="1">{body}</users>\n', encoding="utf-8")
    outcomes = []
    for workers in (1, 2):
        try:
            outcomes.append(load(path, workers))
        except SourceError as err:
            outcomes.append(str(err))
    if isinstance(outcomes[0], str):
        assert outcomes[1] == outcomes[0]
    else:
        pd.testing.assert_frame_equal(outcomes[1][0], outcomes[0][0])
        assert outcomes[1][1] == outcomes[0][1]
