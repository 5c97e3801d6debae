"""Sources: the fast XML reader gives the reference rows, bad records are reported and skipped, files that
cannot be read raise SourceError naming them, and the other formats and the live API load the same table."""

from __future__ import annotations

import contextlib
import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from _quality_data import institution
from lxml import etree

import almatools.sources as sources
from almatools.errors import QuotaExhaustedError, SourceError
from almatools.models import RecordError, iter_users_xml, user_from_xml
from almatools.quality.frame import USER_COLUMNS, user_row, users_frame
from almatools.sandbox.files import sandbox_files
from almatools.sources import (
    element_row,
    load_report,
    load_sis,
    load_users,
    snapshot,
)

XSI = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'


@pytest.fixture(scope="module")
def data(sandbox_dir):
    return institution(sandbox_dir)[0]


def reference_row(el: etree._Element) -> tuple:
    row = user_row(user_from_xml(el))
    return tuple(row[c] for c in USER_COLUMNS)


def users_xml(*bodies: str) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<users {XSI}>\n'
            + "\n".join(f"<user>{b}</user>" for b in bodies) + "\n</users>\n").encode("utf-8")


def test_fast_rows_are_the_reference_rows_for_the_whole_institution(data):
    frame = load_users(data / "users_export.zip")
    with zipfile.ZipFile(data / "users_export.zip") as zf:
        expected = users_frame([u for n in zf.namelist() for u in iter_users_xml(zf.open(n))])
    assert len(frame) > 1000
    pd.testing.assert_frame_equal(frame, expected)


EDGE_CASES = {
    "nils and empties": '<primary_id>A1</primary_id><first_name xsi:nil="true"/><last_name></last_name>'
                        '<user_group desc="x" xsi:nil="true"/><loans xsi:nil="true"/><contact_info xsi:nil="true"/>'
                        '<user_identifiers/><user_roles/><user_statistics xsi:nil="true"/>',
    "spacing, case and entities": '<primary_id> A 2 </primary_id><first_name>  Mary \t Ann </first_name>'
                                  '<last_name>O&apos;Brien &amp; Co</last_name><account_type> EXTERNAL </account_type>'
                                  '<expiry_date> 2026-01-31Z </expiry_date><purge_date>2027-01-31+02:00</purge_date>'
                                  '<contact_info><emails><email preferred="TRUE "><email_address> Mary@X.ORG '
                                  '</email_address><email_types><email_type>work</email_type><email_type>school'
                                  '</email_type></email_types></email><email preferred="false"><email_address>'
                                  'mary@x.org</email_address></email></emails><phones><phone><phone_number>'
                                  '+1 (215) 555-0100</phone_number></phone></phones></contact_info>'
                                  '<user_identifiers><user_identifier><value> b 12 </value><id_type>BARCODE</id_type>'
                                  '</user_identifier><user_identifier><value>a2</value><id_type desc="U">UNIV_ID'
                                  '</id_type></user_identifier></user_identifiers>',
    "no preferred, several addresses": '<primary_id>A3</primary_id><contact_info><addresses><address><line1>1 Elm'
                                       '</line1><city>X</city></address><address preferred="true"><line1>2 Oak</line1>'
                                       '<postal_code>19104</postal_code></address></addresses><emails><email>'
                                       '<email_address>a@b.cc</email_address></email><email><email_address>c@d.ee'
                                       '</email_address></email></emails></contact_info>',
    "roles and statistics": '<primary_id>A4</primary_id><user_roles><user_role><role_type>200</role_type>'
                            '<parameters/></user_role><user_role><role_type>21</role_type></user_role></user_roles>'
                            '<user_statistics><user_statistic><statistic_category>X</statistic_category>'
                            '<category_type>OTHER</category_type></user_statistic><user_statistic>'
                            '<statistic_category>ALUMNI</statistic_category><category_type>PATRON_TYPE</category_type>'
                            '</user_statistic></user_statistics><fees> 12.5 </fees><requests>3</requests>',
    "unicode digits and nil items": '<primary_id>A5</primary_id><contact_info><phones><phone preferred="true">'
                                    '<phone_number>٠١٢ 345</phone_number></phone></phones><emails><email xsi:nil="true"/>'
                                    '<email preferred="true"/></emails></contact_info>',
    "attribute written as an element": '<primary_id>A6</primary_id><contact_info><emails><email><preferred>true'
                                       '</preferred><email_address>p@q.rs</email_address></email></emails>'
                                       '</contact_info>',
    "unknown fields are ignored": '<primary_id>A7</primary_id><job_description>x</job_description><custom><a>1</a>'
                                  '</custom><user_notes><user_note><note_type>LIBRARY</note_type></user_note></user_notes>',
}


@pytest.mark.parametrize("body", EDGE_CASES.values(), ids=EDGE_CASES.keys())
def test_fast_row_equals_reference_row_on_edge_cases(body):
    user = etree.fromstring(users_xml(body)).find("user")
    assert element_row(user) == reference_row(user)


BAD_RECORDS = {
    "birth_date": "<birth_date>2001-02-30</birth_date>",
    "contact_info/email[1]/preferred": '<contact_info><emails><email preferred="yes"><email_address>a@b.cc'
                                       '</email_address></email></emails></contact_info>',
    "loans": "<loans>many</loans>",
    "user_identifier": "<user_identifiers><identifier><value>1</value></identifier></user_identifiers>",
    "last_name": "<last_name>A</last_name><last_name>B</last_name>",
}


@pytest.mark.parametrize("field", BAD_RECORDS, ids=BAD_RECORDS.keys())
def test_a_bad_record_mid_file_is_reported_with_file_record_and_field_and_skipped(tmp_path, field):
    path = tmp_path / "users.xml"
    path.write_bytes(users_xml("<primary_id>ok1</primary_id>", "<primary_id>bad</primary_id>" + BAD_RECORDS[field],
                               "<primary_id>ok2</primary_id>"))
    seen: list[RecordError] = []
    frame = load_users(path, on_error=seen.append)
    assert frame["primary_id"].tolist() == ["ok1", "ok2"]
    report = load_report(frame)
    assert (report.records, report.skipped) == (2, 1)
    [err] = seen
    assert (err.file, err.record, err.line) == (str(path), 2, 4)
    assert err.field.startswith(field)
    assert str(path) in str(err) and "record 2" in str(err)
    assert report.errors[0].field == err.field
    with pytest.raises(SourceError, match="record 2"):
        load_users(path, on_error="raise")


def test_an_entity_is_never_resolved(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET", encoding="utf-8")
    path = tmp_path / "users.xml"
    path.write_text(f'<?xml version="1.0"?><!DOCTYPE users [<!ENTITY x SYSTEM "file://{secret}">]>'
                    f'<users><user><primary_id>1</primary_id><first_name>&x;</first_name></user>'
                    f'<user><primary_id>2</primary_id></user></users>', encoding="utf-8")
    frame = load_users(path)
    assert "TOP SECRET" not in frame.to_csv()
    assert frame["primary_id"].tolist() == ["2"]
    assert "entity" in load_report(frame).errors[0].reason


@pytest.mark.parametrize("name, content, message", [
    ("users.xml", b"primary_id,first_name\n1,Ann\n", "is not XML"),
    ("users.xml", b"<users><user><primary_id>1</primary_id></user><user><primary_id>2</prim", "after 1 complete"),
    ("users.xml", b"<patrons><user><primary_id>1</primary_id></user></patrons>", "root element is <patrons>"),
    ("users.zip", b"PK\x03\x04 not really a zip", "not a readable zip"),
    ("users.jsonl", b"this is not json\nnor this\n", "not JSON lines"),
    ("users.csv", b"first_name,last_name\nAnn,Lee\n", "no primary_id column"),
    ("users.txt", b"\x00\x01binary", "unknown kind of file"),
])
def test_a_file_that_cannot_be_read_raises_source_error_naming_it(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(SourceError, match=message) as caught:
        load_users(path)
    assert str(path) in str(caught.value)


def test_missing_file_and_sis_from_the_api_are_refused(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        load_users(tmp_path / "nope.xml")
    with pytest.raises(SourceError, match="not 'api:'"):
        load_sis("api:")


def test_zip_members_read_in_worker_processes_keep_order_and_name_the_member(tmp_path, monkeypatch):
    monkeypatch.setattr(sources.pool, "_PARALLEL_BYTES", 0)
    path = tmp_path / "sis.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a.xml", users_xml(*(f"<primary_id>a{i}</primary_id>" for i in range(3))))
        zf.writestr("b.xml", users_xml("<primary_id>b0</primary_id>", "<primary_id>b1</primary_id>"
                                       "<expiry_date>soon</expiry_date>"))
        zf.writestr("readme.txt", "not a user file")
    frame = load_sis(path, workers=2)
    assert frame["primary_id"].tolist() == ["a0", "a1", "a2", "b0"]
    report = load_report(frame)
    assert report.files == [f"{path}:a.xml", f"{path}:b.xml"]
    assert (report.errors[0].file, report.errors[0].record, report.errors[0].field) == (f"{path}:b.xml", 2,
                                                                                      "expiry_date")


def test_json_lines_in_parallel_parts_number_lines_across_the_file(tmp_path, monkeypatch, data):
    monkeypatch.setattr(sources.pool, "_PARALLEL_BYTES", 0)
    monkeypatch.setattr(sources.load, "_JSONL_PART", 2000)
    with zipfile.ZipFile(data / "users_export.zip") as zf:
        users = list(iter_users_xml(zf.open(zf.namelist()[0])))[:40]
    lines = [json.dumps(u) for u in users]
    lines.insert(25, "{not json")
    lines.insert(30, "")
    path = tmp_path / "users.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    frame = load_users(path, workers=2)
    pd.testing.assert_frame_equal(frame, users_frame(users))
    report = load_report(frame)
    assert len(report.files) == 1 and report.skipped == 1
    assert (report.errors[0].record, report.errors[0].line) == (26, 26)


def test_csv_with_documented_columns(tmp_path):
    path = tmp_path / "users.csv"
    path.write_text("primary_id,first_name,last_name,user_group,account_type,expiry_date,emails,identifiers,roles,"
                    "loans,extra\n"
                    "AL000001, Ann ,Lee,ALUMNI,INTERNAL,2026-01-31Z,Ann@X.org; ann@y.org,BARCODE=B 1;UNIV_ID=9,200;21,2,x\n"
                    "AL000002,Bo,Kim,ALUMNI,INTERNAL,31/01/2026,,,,lots,\n"
                    "AL000003,Cy,Ng,ALUMNI,INTERNAL,not a date,,,,,\n", encoding="utf-8")
    frame = load_users(path)
    assert frame["primary_id"].tolist() == ["AL000001", "AL000003"]
    first = frame.iloc[0]
    assert (first["first_name"], first["expiry_date"], first["email"], first["emails"]) == (
        "Ann", "2026-01-31", "ann@x.org", "ann@x.org;ann@y.org")
    assert (first["email_count"], first["preferred_emails"], first["staff_role"], first["loans"]) == (2, 1, True, 2.0)
    assert first["identifier_values"] == "9;al000001;b1"
    assert frame.iloc[1]["bad_dates"] == "expiry_date"
    report = load_report(frame)
    assert (report.errors[0].record, report.errors[0].field) == (2, "loans")
    assert report.notes == ["columns ignored: extra"]
    assert list(frame.columns) == list(USER_COLUMNS)


def test_snapshot_writes_every_user_and_resumes(client, sandbox, tmp_path):
    out = tmp_path / "users.jsonl"
    first = snapshot(client, out)
    total = sandbox.store.count()
    assert (first.written, first.already, first.total, first.full_pages) == (total, 0, total, True)
    assert first.calls <= total // 100 + 5
    lines = out.read_bytes().splitlines(keepends=True)
    out.write_bytes(b"".join(lines[:100]) + lines[100][:30])  # an interrupted run: a torn last line
    again = snapshot(client, out)
    assert (again.already, again.written) == (100, total - 100)
    ids = [json.loads(line)["primary_id"] for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(ids) == len(set(ids)) == total
    frame = load_users(out)
    assert len(frame) == total and load_report(frame).skipped == 0


def test_a_snapshot_damaged_before_its_end_is_an_error_not_cut(client, tmp_path):
    out = tmp_path / "users.jsonl"
    original = b'{"primary_id": "A1"}\nnot a record\n{"primary_id": "A3"}\n'
    out.write_bytes(original)
    with pytest.raises(SourceError, match="line 2"):
        snapshot(client, out)
    assert out.read_bytes() == original


def test_snapshot_checks_the_quota_before_it_starts(client, knobs, tmp_path):
    knobs.daily_limit = 10_000_000
    out = tmp_path / "users.jsonl"
    with pytest.raises(QuotaExhaustedError):
        snapshot(client, out, reserve=10_000_000)
    assert not out.exists() or out.stat().st_size == 0


def test_snapshot_fetches_each_record_where_the_list_is_brief(client, tmp_path, monkeypatch):
    real = client.request

    def brief_lists(method, path, *, params=None, json=None):
        if path == "/users" and params and params.get("limit"):
            if params.get("offset", 0) >= 200:
                return {"total_record_count": 200}
            body = real(method, path, params={**params, "expand": None}, json=json)
            return body
        return real(method, path, params=params, json=json)
    monkeypatch.setattr(client, "request", brief_lists)
    monkeypatch.setattr(client, "search_users", lambda: type("S", (), {"count": lambda self: 200})())
    result = snapshot(client, tmp_path / "users.jsonl")
    assert (result.full_pages, result.written) == (False, 200)
    rows = [json.loads(line) for line in (tmp_path / "users.jsonl").read_text(encoding="utf-8").splitlines()]
    assert all("account_type" in r for r in rows)


def test_users_from_the_api_and_the_sandbox_files(client, sandbox, sandbox_dir):
    live = load_users("api:", client=client)
    assert len(live) == sandbox.store.count()
    users, sis = sandbox_files(client, data_dir=sandbox_dir)
    assert Path(users).parent == sandbox_dir and Path(sis) == sandbox_dir / "sis_extract.zip"
    exported = load_users(users)
    pd.testing.assert_frame_equal(exported.sort_values("primary_id", ignore_index=True),
                                  live.sort_values("primary_id", ignore_index=True))
    assert len(load_sis(sis)) > 0


def test_load_sources_reads_both_and_names_the_failing_step(client, sandbox_dir, tmp_path):
    users_src, sis_src = sandbox_files(client, data_dir=sandbox_dir)
    loaded = sources.load_sources(users_src, sis_src)
    assert (loaded.users_source, loaded.sis_source) == (users_src, sis_src)
    assert len(loaded.users) == len(load_users(users_src)) and len(loaded.sis) == len(load_sis(sis_src))
    assert loaded.summary().count("\n") == 1
    alone = sources.load_sources(users_src, "none")
    assert alone.sis is None and alone.sis_source == ""
    seen = []

    @contextlib.contextmanager
    def step(name, source=None):
        seen.append(name)
        yield

    with pytest.raises(SourceError, match="does not exist"):
        sources.load_sources(users_src, tmp_path / "missing.zip", step=step)
    assert seen == ["loading the users source", "loading the SIS extract"]


def test_an_analytics_users_report_is_read_by_column_heading(client, sandbox):
    from almatools.sandbox.analytics import USERS_REPORT_PATH

    report = load_users(f"analytics:{USERS_REPORT_PATH}", client=client)
    live = load_users("api:", client=client).set_index("primary_id")
    assert len(report) == len(live) == sandbox.store.count()
    assert report.attrs["load_report"]["kind"] == "analytics"
    mine = report.set_index("primary_id").loc[live.index]
    for column in ("first_name", "last_name", "user_group", "account_type", "external_id", "status", "expiry_date",
                   "purge_date", "birth_date", "email", "phone"):
        pd.testing.assert_series_equal(mine[column], live[column], check_names=False, obj=column)
    with pytest.raises(SourceError, match="needs the report's path"):
        load_users("analytics:", client=client)
    with pytest.raises(Exception, match="Path not found"):
        load_users("analytics:/shared/Nowhere/Reports/Nothing", client=client)
