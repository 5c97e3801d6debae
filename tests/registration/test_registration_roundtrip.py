"""Registration round trips against the sandbox: create → confirm, the existing-account search, seed 003's
move with a merge request, and convert to SIS-managed."""

from __future__ import annotations

import csv
import dataclasses
from datetime import date, timedelta

import pytest
from registration_helpers import CONSORTIUM, DEFAULT, EXTERNAL_ID, POLICIES, TODAY, fresh_id, good_form, raw_user, token

from almatools.client import AlmaClient
from almatools.registration import (
    MERGE_REQUEST_COLUMNS,
    ExistingSearch,
    convert_to_sis,
    find_existing,
    register,
    validate,
)

CASES = [(name, aff) for name, policy in POLICIES.items() for aff in policy.affiliations]


@pytest.fixture
def dry_client(sandbox):
    with AlmaClient(api_key=sandbox.api_key, base_url=sandbox.base_url, per_second=500, dry_run=True) as alma:
        yield alma


@pytest.mark.parametrize(("policy_name", "affiliation"), CASES, ids=[f"{p}-{a}" for p, a in CASES])
def test_create_then_confirm_under_each_policy(client, policy_name, affiliation):
    policy = POLICIES[policy_name]
    form = good_form(client, policy, affiliation)
    checked = validate(form, policy, today=TODAY)
    assert checked.ok, checked.issues
    result = register(client, checked)
    assert result.status == "created", result.message
    assert result.calls == 6  # identifier lookup, email, name and birth-date searches, POST, confirming GET
    assert result.decision is not None and result.decision.action == "create"
    stored = client.get_user(form.primary_id)
    aff = policy.affiliations[affiliation]
    group = policy.groups[aff.group]
    assert stored["user_group"]["value"] == aff.group and stored["last_name"] == form.last_name
    assert stored["account_type"]["value"] == ("EXTERNAL" if aff.sis_managed else "INTERNAL")
    assert stored["external_id"] == ("SIS" if aff.sis_managed else "")
    assert stored["record_type"]["value"] == group.record_type
    expiry = date.fromisoformat(stored["expiry_date"].rstrip("Z"))
    assert stored["purge_date"] == (expiry + timedelta(days=policy.retention_days)).isoformat() + "Z"
    if group.patron_type:
        assert [s["statistic_category"]["value"] for s in stored["user_statistic"]] == [group.patron_type]
    sent_ids = {(i["id_type"]["value"], i["value"]) for i in stored.get("user_identifier") or []}
    assert sent_ids == {(t, form.primary_id) for t in group.sis_match_ids}  # UNIV_ID defaults to the primary id
    assert stored["password"] == ""
    if form.password:
        assert form.password not in repr(result) and form.password not in repr(checked)
        # The temporary password works for signing in (Alma's op=auth answers 204).
        assert client.request("POST", f"/users/{form.primary_id}", params={"op": "auth", "password": form.password}) is None


def test_dry_run_plans_and_sends_nothing(client, dry_client):
    checked = validate(good_form(client, DEFAULT, "community"), DEFAULT, today=TODAY)
    result = register(dry_client, checked)
    assert result.status == "planned" and "nothing was sent" in result.message
    assert [w.method for w in dry_client.planned_writes] == ["POST"]
    assert dry_client.planned_writes[0].body["password"] == "***"
    assert client.find_user(checked.form.primary_id) is None


def test_a_taken_identifier_is_blocked_and_alma_errors_are_explained(client):
    checked = validate(good_form(client, DEFAULT, "alum", expiry_date=TODAY + timedelta(days=60)), DEFAULT, today=TODAY)
    assert register(client, checked).status == "created"
    again = register(client, checked)  # the same person again: no second account, the renewal is offered
    assert again.status == "blocked" and "exists" in again.message and "Renew it" in again.message
    assert again.decision.action == "renew" and again.decision.target == checked.form.primary_id
    full = validate(good_form(client, DEFAULT, "alum"), DEFAULT, today=TODAY)  # valid as long as a renewal makes it
    assert register(client, full).status == "created"
    assert register(client, full).decision.action == "update"
    # With a (stale) search that saw nothing, Alma's own duplicate check refuses the POST.
    stale = ExistingSearch(candidates=[], blocked=False, advice=[], merge_from=[], calls=0)
    refused = register(client, checked, search=stale)
    assert refused.status == "failed" and "already belongs to a user" in refused.message
    other = validate(good_form(client, DEFAULT, "alum"), DEFAULT, today=TODAY)
    bad_group = dataclasses.replace(other, record={**other.record, "user_group": {"value": "NOT_A_GROUP"}})
    failed = register(client, bad_group)
    assert failed.status == "failed" and "does not know this user group" in failed.message
    assert client.find_user(other.form.primary_id) is None
    invalid = validate(dataclasses.replace(other.form, last_name=""), DEFAULT, today=TODAY)
    assert register(client, invalid).status == "failed" and register(client, invalid).calls == 0


def test_search_ranks_exact_id_over_email_over_name_and_birth_date(client):
    form = good_form(client, DEFAULT, "community")
    birth = form.birth_date
    holder = fresh_id(client, DEFAULT.groups["COMMUNITY"])
    others = [fresh_id(client, DEFAULT.groups["COMMUNITY"]) for _ in range(3)]
    client.create_user(raw_user(form.primary_id, first=token(), last=token()))                     # same identifier
    client.create_user(raw_user(others[0], first=token(), last=token(), email=form.email_address))  # same email
    client.create_user(raw_user(others[1], first=form.first_name, last=form.last_name, birth=birth))  # name + birth
    client.create_user(raw_user(others[2], first=form.first_name, last=form.last_name,
                                birth=date(1961, 2, 3)))                                           # name only
    found = find_existing(client, form, DEFAULT, today=TODAY)
    assert [c.primary_id for c in found.candidates] == [form.primary_id, *others]
    assert [c.score for c in found.candidates] == [100, 80, 75, 50]
    assert found.blocked and "exists" in found.advice[0]
    assert found.calls == 4 + 3  # identifier, email, name and birth-date searches, then the three hits' records
    assert holder not in [c.primary_id for c in found.candidates]
    result = register(client, validate(form, DEFAULT, today=TODAY), search=found)
    assert result.status == "blocked" and result.calls == 0 and result.decision.target == form.primary_id


def test_nothing_found_for_a_new_person(client):
    found = find_existing(client, good_form(client, DEFAULT, "friend"), DEFAULT, today=TODAY)
    assert found.candidates == [] and not found.blocked and found.advice == ["No existing account found."]
    assert found.calls == 4


def test_staff_with_a_patron_account_are_told_to_add_the_role(client):
    # Seed 000's FAQ: a staff member who needs an operator role keeps one account with both roles.
    form = good_form(client, CONSORTIUM, "internal")
    patron_id = fresh_id(client, CONSORTIUM.groups["STAFF"])
    client.create_user(raw_user(patron_id, first=form.first_name, last=form.last_name, group="STAFF",
                                external=True, birth=form.birth_date, email=form.email_address))
    found = find_existing(client, form, CONSORTIUM, today=TODAY)
    assert found.blocked and found.candidates[0].primary_id == patron_id
    assert any("Add the role to that account" in a for a in found.advice)
    result = register(client, validate(form, CONSORTIUM, today=TODAY), search=found)
    assert result.status == "blocked" and "Add the role" in result.message
    assert client.find_user(form.primary_id) is None
    # An operator who already has an account under the identifier: the same advice, not "update it".
    operator = fresh_id(client, CONSORTIUM.groups["LIBSTAFF"])
    client.create_user(raw_user(operator, first=token(), last=token(), group="LIBSTAFF", roles=("21",),
                                record_type="STAFF"))
    exact = find_existing(client, good_form(client, CONSORTIUM, "community", primary_id=operator.upper()), CONSORTIUM,
                          today=TODAY)
    assert exact.blocked and exact.candidates[0].has_staff_role and "Add the role" in exact.advice[0]


def test_seed_003_old_account_gets_a_new_one_and_a_merge_request(client, tmp_path):
    form = good_form(client, EXTERNAL_ID, "alum")
    old = fresh_id(client, EXTERNAL_ID.groups["UGRAD"])
    client.create_user(raw_user(old, first=form.first_name, last=form.last_name, group="UGRAD", external=True,
                                birth=form.birth_date, expiry=TODAY - timedelta(days=800), status="INACTIVE"))
    found = find_existing(client, form, EXTERNAL_ID, today=TODAY)
    assert not found.blocked and found.merge_from == [old]
    assert "merge request old → new" in " ".join(found.advice)
    requests = tmp_path / "merge" / "merge_requests.csv"
    result = register(client, validate(form, EXTERNAL_ID, today=TODAY), search=found, merge_requests=requests)
    assert result.status == "created" and result.merge_from == [old] and result.calls == 2
    assert client.get_user(form.primary_id)["account_type"]["value"] == "INTERNAL"
    with requests.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == MERGE_REQUEST_COLUMNS
    assert [(r["from_primary_id"], r["to_primary_id"]) for r in rows] == [(old, form.primary_id)]


@pytest.mark.parametrize(("days_ago", "says"), [(100, "ended on"), (-30, "is active until")])
def test_seed_003_someone_who_left_recently_cannot_be_moved_yet(client, days_ago, says):
    form = good_form(client, EXTERNAL_ID, "alum")
    old = fresh_id(client, EXTERNAL_ID.groups["UGRAD"])
    left = TODAY - timedelta(days=days_ago)
    client.create_user(raw_user(old, first=form.first_name, last=form.last_name, group="UGRAD", external=True,
                                birth=form.birth_date, expiry=left))
    found = find_existing(client, form, EXTERNAL_ID, today=TODAY)
    assert found.blocked and found.merge_from == []
    advice = " ".join(found.advice)
    assert says in advice and "cannot be moved" in advice
    assert f"Try again from {(left + timedelta(days=365)).isoformat()}" in advice
    result = register(client, validate(form, EXTERNAL_ID, today=TODAY), search=found)
    assert result.status == "blocked" and client.find_user(form.primary_id) is None


def test_convert_to_sis_checks_then_converts(client, dry_client):
    pid = fresh_id(client, DEFAULT.groups["UGRAD"])
    client.create_user(raw_user(pid, first=token(), last=token(), group="UGRAD"))
    planned = convert_to_sis(dry_client, pid, DEFAULT)
    assert planned.status == "planned" and client.get_user(pid)["account_type"]["value"] == "INTERNAL"
    assert dry_client.planned_writes[0].body["external_id"] == "SIS"
    done = convert_to_sis(client, pid, DEFAULT, sis_ids={pid, "something-else"})
    assert done.status == "converted", done.message
    assert done.calls == 3  # lookup, PUT, confirming GET
    stored = client.get_user(pid)
    assert stored["account_type"]["value"] == "EXTERNAL" and stored["external_id"] == "SIS"
    assert stored["user_group"]["value"] == "UGRAD"  # swap-all kept the rest
    again = convert_to_sis(client, pid, DEFAULT)
    assert again.status == "blocked" and "already SIS-managed" in again.message


@pytest.mark.parametrize(("group", "pid_kind", "sis_ids", "says"), [
    ("COMMUNITY", "COMMUNITY", None, "not one the SIS loads"),
    ("UGRAD", "COMMUNITY", None, "the SIS cannot match it"),
    ("UGRAD", "UGRAD", set(), "does not have"),
])
def test_convert_to_sis_refuses_what_the_sis_could_not_match(client, group, pid_kind, sis_ids, says):
    pid = fresh_id(client, DEFAULT.groups[pid_kind])
    client.create_user(raw_user(pid, first=token(), last=token(), group=group))
    result = convert_to_sis(client, pid, DEFAULT, sis_ids=sis_ids)
    assert result.status == "blocked" and says in result.message
    assert client.get_user(pid)["account_type"]["value"] == "INTERNAL"


def test_convert_an_unknown_account(client):
    assert convert_to_sis(client, "no-such-patron-x1", DEFAULT).status == "failed"
    assert convert_to_sis(client, "  ", DEFAULT).status == "failed"


def test_the_same_person_spelled_another_way_with_another_email_is_found(client):
    """Registered as Maria Gonzalez; back as Maria Gonzales, María Gonzalez-Ruiz or Mary Gonzalez, with a new email
    and the same birth date. The searches by name match whole words only, so these were "No existing account
    found": now a compound surname is searched part by part (the same person: blocked), and a spelling no
    search can find is reached through the birth date (a possible match, listed for staff to check)."""
    last = token(9)
    birth = date(1980, 4, 12)
    old = fresh_id(client, DEFAULT.groups["COMMUNITY"])
    client.create_user(raw_user(old, first="Maria", last=f"{last}ez", birth=birth))
    def search(first: str, surname: str):
        form = good_form(client, DEFAULT, "community", first_name=first, last_name=surname, birth_date=birth)
        return find_existing(client, form, DEFAULT, today=TODAY)
    typo = search("Maria", f"{last}es")
    assert [(c.primary_id, c.score) for c in typo.candidates] == [(old, 60)]
    assert typo.candidates[0].reasons == ("similar name and same birth date",) and not typo.blocked
    assert "Possible match" in typo.advice[0] and "Check with the patron" in typo.advice[0]
    compound = search("María", f"{last}ez-Ruiz")
    assert [(c.primary_id, c.score) for c in compound.candidates] == [(old, 75)] and compound.blocked
    other_given = search("Mary", f"{last}ez")
    assert [c.primary_id for c in other_given.candidates] == [old] and other_given.candidates[0].score >= 60
    elsewhere = find_existing(client, good_form(client, DEFAULT, "community", first_name="Maria",
                                                last_name=f"{last}es", birth_date=date(1981, 4, 12)),
                              DEFAULT, today=TODAY)
    assert elsewhere.candidates == []  # another birth date: a namesake, not shown
