"""The finding rules: every planted case of the test sandbox found and nothing else, and each rule's reading
of a record checked on small hand-made tables."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from _quality_data import institution

from almatools.policy import load_policy
from almatools.quality import FINDING_COLUMNS, RULES, analyse, evaluate
from almatools.quality.frame import users_frame
from almatools.quality.rules import RECORD_RULES
from almatools.sources import load_sis, load_users

ROOT = Path(__file__).resolve().parents[2]
TODAY = date(2025, 3, 14)
POLICY = load_policy()


@pytest.fixture(scope="module")
def planted(sandbox_dir):
    folder, today = institution(sandbox_dir)
    truth = pd.read_csv(sandbox_dir / "ground_truth.csv", dtype=str, keep_default_na=False)
    assert truth.equals(pd.read_csv(folder / "ground_truth.csv", dtype=str, keep_default_na=False))
    users, sis = load_users(folder / "users_export.zip"), load_sis(sandbox_dir / "sis_extract.zip")
    return users, sis, truth, today


def keys(frame: pd.DataFrame, rule: str) -> set:
    rows = frame[frame["rule_id"] == rule]
    if rule == "ID_COLLISION":
        return {frozenset(p) for p in zip(rows["primary_id"], rows["other_primary_id"])}
    if rule == "SIS_LOCAL_OTHER_ID":
        return set(zip(rows["primary_id"], rows["other_primary_id"]))
    if rule == "MISSING_FIELD":
        return set(zip(rows["primary_id"], rows["field"] if "field" in rows else rows["detail"]))
    return set(rows["primary_id"])


def test_every_planted_case_is_found_and_clean_records_have_no_findings(planted):
    users, sis, truth, today = planted
    found = evaluate(users, sis, POLICY, today=today)
    assert list(found.columns) == list(FINDING_COLUMNS)
    for rule in RECORD_RULES:
        expected, got = keys(truth.rename(columns={"detail": "field"}), rule), keys(found, rule)
        assert expected, f"the sandbox plants no {rule}"
        assert got == expected, f"{rule}: missed {sorted(expected - got)[:5]}, extra {sorted(got - expected)[:5]}"
    first = found.iloc[0]
    assert (first["severity"], first["family"], first["action"]) == (
        RULES[first["rule_id"]].severity.value, RULES[first["rule_id"]].family, RULES[first["rule_id"]].action)


def test_analyse_adds_the_duplicate_pairs_and_a_summary(planted):
    users, sis, truth, today = planted
    result = analyse(users, sis, POLICY, today=today)
    assert result.summary["duplicates"] == "done"
    dup = result.findings[result.findings["rule_id"] == "DUPLICATE"]
    assert len(dup) == len(result.pairs) > 0
    assert result.summary["by_rule"]["DUPLICATE"] == len(dup)
    sis_other = keys(result.findings, "SIS_LOCAL_OTHER_ID")
    assert keys(truth, "SIS_LOCAL_OTHER_ID") <= sis_other
    assert result.summary["users"] == len(users) and result.summary["sis_users"] == len(sis)
    assert set(result.clusters["primary_id"]) >= set(dup["primary_id"])


def user(pid: str, **fields) -> dict:
    """A clean, active, locally managed community borrower; ``fields`` override (None drops one)."""
    u = {"primary_id": pid, "first_name": "Ann", "last_name": "Lee", "user_group": {"value": "COMMUNITY"},
         "account_type": {"value": "INTERNAL"}, "external_id": "", "status": {"value": "ACTIVE"},
         "record_type": {"value": "PUBLIC"}, "expiry_date": "2025-12-31Z", "purge_date": "2026-12-31Z",
         "birth_date": "1980-05-05Z",
         "contact_info": {"email": [{"email_address": f"{pid.lower().replace(' ', '')}@example.org", "preferred": True,
                                     "email_type": [{"value": "personal"}]}]}}
    u.update(fields)
    return {k: v for k, v in u.items() if v is not None}


def sis_user(pid: str, **fields) -> dict:
    return user(pid, **{"user_group": {"value": "UGRAD"}, "account_type": {"value": "EXTERNAL"}, "external_id": "SIS",
                        "first_name": "Sam", "last_name": "Park", "birth_date": "2000-01-01Z", **fields})


def run(users: list[dict], sis: list[dict] | None = None, policy=POLICY, today: date = TODAY) -> pd.DataFrame:
    return evaluate(users_frame(users), None if sis is None else users_frame(sis), policy, today=today)


def messages(found: pd.DataFrame, rule: str) -> dict[str, str]:
    rows = found[found["rule_id"] == rule]
    return dict(zip(rows["primary_id"], rows["message"]))


def test_a_clean_record_has_no_findings():
    assert run([user("CB000001")], [sis_user("123456789")]).empty


def test_dates_expiry_and_purge():
    found = run([
        user("CB000001", expiry_date="2025-03-02Z", purge_date="2026-03-02Z"),  # expired, still active
        user("CB000002", expiry_date="2025-03-02Z", purge_date="2026-03-02Z", status={"value": ""}),  # empty = ACTIVE
        user("CB000003", expiry_date="2025-03-02Z", purge_date="2026-03-02Z", status={"value": "INACTIVE"}),
        user("CB000004", purge_date=None),
        user("CB000005", expiry_date="2023-01-01Z", purge_date="2024-01-01Z", status={"value": "INACTIVE"}),
        user("CB000006", purge_date="2026-12-30Z"),  # a day short of expiry + 365
        user("CB000007", expiry_date="2025-03-14Z", purge_date="2025-03-14Z"),  # purge today: too soon, not passed
    ])
    assert messages(found, "EXPIRED_ACTIVE") == {"CB000001": "Expired on 2025-03-02 but still ACTIVE",
                                                 "CB000002": "Expired on 2025-03-02 but still ACTIVE"}
    assert messages(found, "NO_PURGE_DATE") == {"CB000004": "No purge date; expiry plus retention would be 2026-12-31"}
    assert messages(found, "PURGE_PASSED") == {"CB000005": "Purge date 2024-01-01 has passed"}
    assert messages(found, "PURGE_TOO_SOON") == {
        "CB000006": "Purge date 2026-12-30 is before expiry 2025-12-31 plus 365 days (2026-12-31)",
        "CB000007": "Purge date 2025-03-14 is before expiry 2025-03-14 plus 365 days (2026-03-14)"}
    assert set(found["rule_id"]) == {"EXPIRED_ACTIVE", "NO_PURGE_DATE", "PURGE_PASSED", "PURGE_TOO_SOON"}


def test_mandatory_fields_follow_the_policy():
    records = [user("CB000001", first_name=""), user("CB000002", contact_info={"email": []}),
               user("CB000003", contact_info={"email": [{"email_address": "a@b.org", "preferred": True}]}),
               user("CB000004", expiry_date=None), user("CB000005", purge_date=None)]
    found = run(records)
    missing = found[found["rule_id"] == "MISSING_FIELD"]
    assert set(zip(missing["primary_id"], missing["field"])) == {
        ("CB000001", "first_name"), ("CB000002", "email_address"), ("CB000003", "email_type"),
        ("CB000004", "expiry_date")}  # no purge date is NO_PURGE_DATE, not a missing field
    other = load_policy(ROOT / "examples/policies/external_identity_borrowers.toml")
    found = run(records, policy=other)
    missing = found[found["rule_id"] == "MISSING_FIELD"]
    assert set(zip(missing["primary_id"], missing["field"])) >= {("CB000001", "first_name"),
                                                                ("CB000002", "patron_type")}
    assert "email_address" not in set(missing["field"])
    # a patron type is a statistic whose code the policy names; real records carry no category_type
    code = sorted(other.patron_type_codes)[0]
    typed = run([user("CB000006", user_statistic=[{"statistic_category": {"value": code}}]),
                 user("CB000007", user_statistic=[{"statistic_category": {"value": "NOT_A_PATRON_TYPE"}}])],
                policy=other)
    typed = typed[(typed["rule_id"] == "MISSING_FIELD") & (typed["field"] == "patron_type")]
    assert set(typed["primary_id"]) == {"CB000007"}


def test_sis_profiles_and_groups():
    found = run([sis_user("100000001", external_id=""), sis_user("100000002", external_id="OLD_SIS"),
                 user("100000003", user_group={"value": "UGRAD"})],
                [sis_user("100000001"), sis_user("100000002")])
    assert set(messages(found, "SIS_PROFILE_MISSING")) == {"100000001"}
    assert messages(found, "SIS_PROFILE_UNKNOWN") == {
        "100000002": "external_id OLD_SIS is not a SIS profile of the policy (SIS)"}
    assert messages(found, "LOCAL_IN_SIS_GROUP") == {
        "100000003": "Locally managed in UGRAD, a group the SIS loads, and the SIS extract has no record 100000003"}
    assert set(messages(found, "STALE_SIS_MISSING")) == set()


def test_sis_rules_with_and_without_an_extract():
    alma = [sis_user("100000001"), sis_user("100000002"), user("100000003", user_group={"value": "UGRAD"}),
            user("cb000004")]
    sis = [sis_user("100000001"), sis_user("100000003"), sis_user("CB000004", user_group={"value": "GRAD"})]
    found = run(alma, sis)
    assert set(messages(found, "STALE_SIS_MISSING")) == {"100000002"}
    assert set(messages(found, "SIS_LOCAL_SAME_ID")) == {"100000003", "cb000004"}  # ids compared ignoring case
    assert "LOCAL_IN_SIS_GROUP" not in set(found["rule_id"])
    without = run(alma)
    assert not {"STALE_SIS_MISSING", "SIS_LOCAL_SAME_ID", "SIS_LOCAL_OTHER_ID"} & set(without["rule_id"])
    assert set(messages(without, "LOCAL_IN_SIS_GROUP")) == {"100000003"}


def person(pid: str, first: str, last: str, birth: str | None, email: str, phone: str = "", **kw) -> dict:
    contact = {"email": [{"email_address": email, "preferred": True, "email_type": [{"value": "personal"}]}]}
    if phone:
        contact["phone"] = [{"phone_number": phone, "preferred": True}]
    return user(pid, first_name=first, last_name=last, birth_date=birth, contact_info=contact, **kw)


def test_a_local_record_of_a_person_the_sis_sends_under_another_id():
    sis = [sis_user("200000001", first_name="William", last_name="Turner", birth_date="1990-01-02Z",
                    contact_info={"email": [{"email_address": "wt@school.edu", "preferred": True}]}),
           sis_user("200000002", first_name="Maria", last_name="Lopez", birth_date="1985-07-08Z",
                    contact_info={"email": [{"email_address": "maria.lopez@mail.org"}],
                                  "phone": [{"phone_number": "(215) 555-0101"}]}),
           sis_user("200000003", first_name="Ian", last_name="Dunn", birth_date="2001-03-03Z",
                    contact_info={"email": [{"email_address": "idunn@school.edu"}]}),
           sis_user("200000004", first_name="Paul", last_name="Stone", birth_date="1970-01-01Z",
                    contact_info={"email": [{"email_address": "ps@school.edu"}]}),
           sis_user("200000005", first_name="Jennifer", last_name="Ramirez", birth_date="2003-11-22Z",
                    contact_info={"email": [{"email_address": "jxr2745@school.edu"}]}),
           sis_user("200000006", first_name="Tao", last_name="Tao", birth_date="1999-09-09Z",  # not Tao Tao's name
                    contact_info={"email": [{"email_address": "txt99@school.edu"}]})]
    alma = [person("AL000008", "Jennifer", "Mccormick", "2003-11-22Z", "jennifer.ramirez735@yahoo.com"),  # married,
            person("AL000009", "Jennifer", "Mccormick", "2003-11-22Z", "jmc@yahoo.com"),  # the old name in an email
            person("AL000010", "Tao", "Li", "1999-09-09Z", "tao.li@yahoo.com"),  # "tao" is her own first name,
            person("AL000001", "Bill", "Turner", "1990-01-02Z", "bill@home.net"),  # nickname, same birth date
            person("AL000002", "Maria", "Garcia", "1985-07-08Z", "mg@home.net", "+1 215 555 0101"),  # married
            person("AL000003", "Iain", "Dunn", None, "IDunn@School.edu"),  # shared email
            person("AL000004", "Ian", "Dunne", "2001-03-03Z", "x@y.org"),  # last-name typo
            person("AL000005", "Anna", "Turner", "1990-01-02Z", "twin@home.net"),  # a twin: another first name
            person("AL000006", "Paul", "Stone", "1995-01-01Z", "p@home.net"),  # same name, another person
            person("AL000007", "Maria", "Garcia", "1960-01-01Z", "mother@home.net", "215-555-0101")]  # same phone
    found = analyse(users_frame(alma), users_frame(sis), POLICY, today=TODAY).findings  # the linkage finds it
    rows = found[found["rule_id"] == "SIS_LOCAL_OTHER_ID"]
    assert set(zip(rows["primary_id"], rows["other_primary_id"])) == {
        ("AL000001", "200000001"), ("AL000002", "200000002"), ("AL000003", "200000003"), ("AL000004", "200000003"),
        ("AL000008", "200000005"), ("AL000009", "200000005")}
    # AL000009 alone names nothing of 200000005, but it is AL000008's duplicate (same name and birth date),
    # and the cluster holds the SIS record
    assert "cluster" in messages(found, "SIS_LOCAL_OTHER_ID")["AL000009"]
    msg = messages(found, "SIS_LOCAL_OTHER_ID")
    assert msg["AL000003"].startswith("The SIS sends this person as 200000003 (Ian Dunn, UGRAD): ")
    assert "email equal" in msg["AL000003"]
    assert "phone equal" in msg["AL000002"]
    assert "last name changed, the old one in an email (Ramirez/Mccormick)" in msg["AL000008"]


def test_identifiers_emails_and_id_formats():
    found = run([
        user("CB000001", user_identifier=[{"value": "2941 7001", "id_type": {"value": "BARCODE"}}]),
        user("CB000002", user_identifier=[{"value": "29417001", "id_type": {"value": "BARCODE"}}]),
        user("CB000003", user_identifier=[{"value": "cb000003", "id_type": {"value": "BARCODE"}}]),  # its own id
        user("CB000004", contact_info={"email": [
            {"email_address": "a@b.org", "preferred": True, "email_type": [{"value": "work"}]},
            {"email_address": "c@d.org", "preferred": True}]}),
        user("CB000005", contact_info={"email": [
            {"email_address": "Ann Lee@b.org", "preferred": True, "email_type": [{"value": "work"}]},
            {"email_address": "ann@b", "email_type": [{"value": "work"}]},
            {"email_address": "ok@b.org", "email_type": [{"value": "work"}]}]}),
        user("CB 00006"), user("XX-1", user_group={"value": "UNKNOWN_GROUP"}),
    ])
    assert messages(found, "ID_COLLISION") == {
        "CB000001": "Identifier 29417001 (ignoring case and spaces) is also held by CB000002",
        "CB000002": "Identifier 29417001 (ignoring case and spaces) is also held by CB000001"}
    assert set(messages(found, "MULTI_PREFERRED_EMAIL")) == {"CB000004"}
    assert messages(found, "BAD_EMAIL") == {"CB000005": "Malformed email address: ann lee@b.org, ann@b"}
    assert messages(found, "BAD_ID_FORMAT") == {
        "CB 00006": "'CB 00006' is not CB followed by 6 digits, e.g. CB100234 (COMMUNITY format)"}


def test_only_the_rules_asked_for_and_an_empty_table():
    found = run([user("CB000001", purge_date=None, expiry_date="2020-01-01Z")])
    assert set(found["rule_id"]) == {"NO_PURGE_DATE", "EXPIRED_ACTIVE"}
    only = evaluate(users_frame([user("CB000001", purge_date=None)]), None, POLICY, today=TODAY,
                    rules=["EXPIRED_ACTIVE"])
    assert only.empty and list(only.columns) == list(FINDING_COLUMNS)
    assert evaluate(users_frame([]), users_frame([]), POLICY, today=TODAY).empty
