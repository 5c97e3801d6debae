"""Registering someone who already has an account: the Python API, the bulk CSV and the example file.

The form's side is in test_register_panels.py (headless) and tests/browser/test_register_form.py.
Every test talks real HTTP to the run's sandbox; what the kit sends is read at a recording proxy.
"""

from __future__ import annotations

import csv
import shutil
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
from recording_proxy import RecordingProxy
from registration_helpers import DEFAULT, EXTERNAL_ID, ROOT, TODAY, fresh_id, good_form, raw_user

from almatools.bulk import register_csv
from almatools.client import AlmaClient
from almatools.merge import propose
from almatools.quality.frame import users_frame
from almatools.registration import OUTPUT_ONLY_FIELDS, find_existing, register, renew, validate

COLUMNS = ["affiliation", "first_name", "last_name", "primary_id", "expiry_date", "birth_date", "email_address",
           "password"]


def existing_account(client, patron, *, group: str, expiry: date | None, status: str = "ACTIVE",
                     external: bool = False, policy=DEFAULT) -> str:
    """An account the person already has: same name, email and birth date, another identifier."""
    pid = fresh_id(client, policy.groups[group])
    client.create_user(raw_user(pid, first=patron.first_name, last=patron.last_name, group=group, external=external,
                                birth=patron.birth_date, email=patron.email_address, expiry=expiry, status=status))
    return pid


def row_of(patron, **changes) -> dict[str, str]:
    row = {"affiliation": patron.affiliation, "first_name": patron.first_name, "last_name": patron.last_name,
           "primary_id": patron.primary_id, "expiry_date": "", "birth_date": patron.birth_date.isoformat(),
           "email_address": patron.email_address, "password": patron.password}
    row.update(changes)
    return row


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_python_api_refuses_a_second_account_and_offers_then_does_the_renewal(client):
    patron = good_form(client, DEFAULT, "community")
    old = existing_account(client, patron, group="COMMUNITY", expiry=TODAY + timedelta(days=15))
    checked = validate(patron, DEFAULT, today=TODAY)
    offered = register(client, checked)
    assert offered.status == "blocked" and offered.decision.action == "renew" and offered.decision.target == old
    assert offered.decision.offers == ("renew", "update") and "Renew it" in offered.message
    assert client.find_user(patron.primary_id) is None
    done = register(client, checked, renew_if_offered=True)
    assert done.status == "renewed", done.message
    expiry = TODAY + timedelta(days=DEFAULT.groups["COMMUNITY"].default_expiry_days)
    stored = client.get_user(old)
    assert stored["expiry_date"] == expiry.isoformat() + "Z"
    assert stored["purge_date"] == (expiry + timedelta(days=DEFAULT.retention_days)).isoformat() + "Z"
    assert client.find_user(patron.primary_id) is None
    again = renew(client, old, DEFAULT, today=TODAY)  # already valid that long: nothing is sent
    assert again.status == "unchanged" and again.calls == 1


def test_an_sis_managed_account_is_updated_not_renewed(client):
    patron = good_form(client, DEFAULT, "student")
    old = existing_account(client, patron, group="UGRAD", expiry=TODAY + timedelta(days=200), external=True)
    decision = find_existing(client, patron, DEFAULT, today=TODAY).decision
    assert decision.action == "update" and decision.target == old and "SIS" in decision.reason
    refused = renew(client, old, DEFAULT, today=TODAY)
    assert refused.status == "blocked" and "SIS-managed" in refused.message


def test_bulk_csv_creates_no_second_account_and_renews_on_request(client, tmp_path):
    patron = good_form(client, DEFAULT, "community")
    old = existing_account(client, patron, group="COMMUNITY", expiry=TODAY + timedelta(days=10))
    source = write_csv(tmp_path / "again.csv", [row_of(patron, affiliation="Community borrower")])
    first = register_csv(client, source, DEFAULT, today=TODAY)
    assert (first.created, first.refused, first.renewed) == (0, 1, 0)
    issues = first.issues_path.read_text(encoding="utf-8")
    assert old in issues and "Renew it" in issues and "--renew" in issues
    assert client.find_user(patron.primary_id) is None
    second = register_csv(client, source, DEFAULT, today=TODAY, renew_existing=True)
    assert (second.created, second.renewed) == (0, 1)
    expiry = TODAY + timedelta(days=DEFAULT.groups["COMMUNITY"].default_expiry_days)
    assert client.get_user(old)["expiry_date"] == expiry.isoformat() + "Z"
    assert client.find_user(patron.primary_id) is None
    third = register_csv(client, source, DEFAULT, today=TODAY, renew_existing=True)
    assert third.already_done == 1 and third.renewed == 0 and third.calls == 0  # the journal remembers


def test_bulk_csv_takes_affiliation_labels_and_defaults_expiry_and_purge_from_the_group(client, tmp_path):
    friend = good_form(client, DEFAULT, "friend")
    alum = good_form(client, DEFAULT, "alum")
    rows = [row_of(friend, affiliation="Friend of the Library"), row_of(alum, affiliation="  alum ")]
    result = register_csv(client, write_csv(tmp_path / "labels.csv", rows), DEFAULT, today=TODAY)
    assert result.created == 2 and result.invalid == 0, result.issues_path.read_text(encoding="utf-8")
    stored = client.get_user(friend.primary_id)
    expiry = TODAY + timedelta(days=DEFAULT.groups["FRIENDS"].default_expiry_days)
    assert stored["user_group"]["value"] == "FRIENDS"
    assert stored["expiry_date"] == expiry.isoformat() + "Z"
    assert stored["purge_date"] == (expiry + timedelta(days=DEFAULT.retention_days)).isoformat() + "Z"
    assert client.get_user(alum.primary_id)["user_group"]["value"] == "ALUMNI"


def test_a_former_affiliate_gets_a_new_account_and_a_merge_request_merge_list_keeps(client, tmp_path):
    patron = good_form(client, DEFAULT, "alum")
    old = existing_account(client, patron, group="UGRAD", expiry=TODAY - timedelta(days=800), status="INACTIVE",
                           external=True)
    result = register_csv(client, write_csv(tmp_path / "alumni.csv", [row_of(patron)]), DEFAULT, today=TODAY)
    assert result.created == 1 and result.merge_requests == 1
    with result.merge_requests_path.open(encoding="utf-8") as handle:
        requests = list(csv.DictReader(handle))
    assert [(r["from_primary_id"], r["to_primary_id"]) for r in requests] == [(old, patron.primary_id)]
    # merge-list: the request alone, and the request inside a duplicate cluster of the two records, with
    # the SIS knowledge merge-list has (findings' STALE_SIS_MISSING: the old SIS record left the extract).
    records = [client.get_user(old), client.get_user(patron.primary_id)]
    users = users_frame(records)
    alone = propose(pd.DataFrame({"cluster_id": [], "primary_id": []}, dtype="object"), users,
                    requests=result.merge_requests_path, stale_ids={old})
    clustered = propose(pd.DataFrame({"cluster_id": ["C1", "C1"], "primary_id": [old, patron.primary_id]}), users,
                        requests=result.merge_requests_path, stale_ids={old})
    # without SIS knowledge (a quality run without --sis) the ranking would keep the old SIS record: the
    # request decides the direction, as staff asked at registration
    unknown = propose(pd.DataFrame({"cluster_id": ["C1", "C1"], "primary_id": [old, patron.primary_id]}), users,
                      requests=result.merge_requests_path, stale_ids=None)
    for worklist in (alone, clustered, unknown):
        pairs = [(p.from_id, p.to_id) for p in worklist.pairs()]
        assert pairs == [(old, patron.primary_id)], pairs


def test_seed_003_former_affiliate_through_the_python_api(client, tmp_path):
    patron = good_form(client, EXTERNAL_ID, "alum")
    old = existing_account(client, patron, group="UGRAD", expiry=TODAY - timedelta(days=500), external=True,
                           policy=EXTERNAL_ID)
    requests = tmp_path / "merge_requests.csv"
    created = register(client, validate(patron, EXTERNAL_ID, today=TODAY), merge_requests=requests)
    assert created.status == "created" and created.decision.action == "create_merge" and created.merge_from == [old]
    assert f"{old},{patron.primary_id}" in requests.read_text(encoding="utf-8")


def test_output_only_fields_are_never_sent_and_sis_identifiers_are(sandbox, client, tmp_path):
    with RecordingProxy(sandbox.base_url) as proxy, \
            AlmaClient(api_key=sandbox.api_key, base_url=proxy.base_url, per_second=500) as alma:
        student = good_form(client, DEFAULT, "student")
        assert register(alma, validate(student, DEFAULT, today=TODAY)).status == "created"
        patron = good_form(client, DEFAULT, "community")
        old = existing_account(client, patron, group="COMMUNITY", expiry=TODAY + timedelta(days=5))
        assert register(alma, validate(patron, DEFAULT, today=TODAY), renew_if_offered=True).status == "renewed"
        read_back = [path for m, path, _body in proxy.sent if m == "GET" and f"/users/{old}" in path]
    assert read_back  # renew read the record first (GET, change, PUT), and that record carries G-only fields:
    assert any(key in client.get_user(old) for key in OUTPUT_ONLY_FIELDS)
    posts, puts = proxy.bodies("POST"), proxy.bodies("PUT")
    assert len(posts) == 1 and len(puts) == 1
    for body in posts + puts:
        assert not set(body) & set(OUTPUT_ONLY_FIELDS), set(body) & set(OUTPUT_ONLY_FIELDS)
        for stat in body.get("user_statistic") or []:
            assert "category_type" not in stat and stat["statistic_category"]["value"]
    post = posts[0]
    assert post["user_statistic"] == [{"statistic_category": {"value": "STUDENT"}}]
    assert [(i["id_type"]["value"], i["value"]) for i in post["user_identifier"]] == [("UNIV_ID", student.primary_id)]
    assert puts[0]["expiry_date"] > TODAY.isoformat() and puts[0]["primary_id"] == old


def test_the_example_csv_registers_cleanly_dry_then_for_real(sandbox, client, tmp_path):
    example = ROOT / "examples" / "registration.csv"
    copy = tmp_path / example.name
    shutil.copy(example, copy)
    with copy.open(encoding="utf-8") as handle:
        ids = [r["primary_id"] for r in csv.DictReader(handle)]
    for pid in ids:  # the sandbox invents identifiers at random: make sure none of the example's is taken
        assert client.find_user(pid) is None, f"the sandbox already holds {pid}: pick another for the example"
    with AlmaClient(api_key=sandbox.api_key, base_url=sandbox.base_url, per_second=500, dry_run=True) as dry:
        planned = register_csv(dry, copy, DEFAULT, out_dir=tmp_path / "dry")
    assert (planned.rows, planned.created, planned.invalid, planned.refused) == (len(ids), len(ids), 0, 0)
    assert all(client.find_user(pid) is None for pid in ids)
    done = register_csv(client, copy, DEFAULT, out_dir=tmp_path / "real")
    assert (done.created, done.invalid, done.refused, done.stopped) == (len(ids), 0, 0, "")
    with done.issues_path.open(encoding="utf-8") as handle:
        assert list(csv.DictReader(handle)) == []  # not even a warning
    friend = client.get_user(ids[0])
    assert friend["user_group"]["value"] == "FRIENDS" and friend["expiry_date"]
    student = client.get_user(ids[4])
    assert student["account_type"]["value"] == "EXTERNAL"
    assert {(i["id_type"]["value"], i["value"]) for i in student["user_identifier"]} >= {("UNIV_ID", ids[4])}


def test_the_search_compares_names_as_the_linkage_does(client):
    """A nickname, a preferred name, letters that do not decompose and a double surname are the same name to
    the existing-account search (almatools.normalise), as they are to the duplicate linkage."""
    surname = "Thistlewood" + fresh_id(client, DEFAULT.groups["COMMUNITY"])[-4:]
    cases = [("Bill", "William", surname, surname, {}),
             ("Hương", "Jack", "Đặng" + surname, "Dang" + surname, {"pref_first_name": "Jack"}),
             ("Lucía", "Lucia", f"García {surname}", surname, {})]
    for theirs, mine, their_last, my_last, extra in cases:
        patron = good_form(client, DEFAULT, "community", first_name=mine, last_name=my_last)
        pid = fresh_id(client, DEFAULT.groups["COMMUNITY"])
        client.create_user({**raw_user(pid, first=theirs, last=their_last, birth=patron.birth_date,
                                       email=patron.email_address, expiry=TODAY + timedelta(days=200)), **extra})
        found = {c.primary_id: c for c in find_existing(client, patron, DEFAULT, today=TODAY).candidates}
        assert "same name and birth date" in found[pid].reasons, (theirs, mine, found[pid].reasons)
    # and another person's name is not the same name
    patron = good_form(client, DEFAULT, "community", first_name="Agnieszka", last_name=surname)
    pid = fresh_id(client, DEFAULT.groups["COMMUNITY"])
    client.create_user(raw_user(pid, first="Daniel", last=surname, birth=patron.birth_date,
                                email=patron.email_address, expiry=TODAY + timedelta(days=200)))
    found = {c.primary_id: c for c in find_existing(client, patron, DEFAULT, today=TODAY).candidates}
    assert not {"same name and birth date", "same name"} & set(found[pid].reasons)
