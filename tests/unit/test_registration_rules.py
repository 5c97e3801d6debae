"""Registration rules, under the default policy and both seed procedures' example policies."""

from datetime import date, timedelta
from pathlib import Path

import pytest

from almatools.policy import load_policy
from almatools.registration import PatronForm, validate

ROOT = Path(__file__).resolve().parents[2]
TODAY = date(2026, 11, 24)
CONSORTIUM = load_policy(ROOT / "examples" / "policies" / "consortium_quick_user.toml")
EXTERNAL_ID = load_policy(ROOT / "examples" / "policies" / "external_identity_borrowers.toml")
DEFAULT = load_policy(ROOT / "almatools" / "policies" / "default.toml")


def good(policy, affiliation, **changes) -> PatronForm:
    """A valid form for an affiliation of the policy."""
    group = policy.groups[policy.affiliations[affiliation].group]
    sample = {"UGRAD": "G01234567", "GRAD": "G01234567", "FACULTY": "G01234567", "STAFF": "G01234567",
              "ALUMNI": "AB12345", "COMMUNITY": "CB100234", "LIBSTAFF": "jsmith2"}
    if policy is DEFAULT:
        sample.update(UGRAD="123456789", GRAD="123456789", FACULTY="123456789", STAFF="123456789", ALUMNI="AL004211",
                      RECIPROCAL="RB200871", FRIENDS="FR300112")
    pid = "1234567" if policy is EXTERNAL_ID else sample[group.code]
    values = dict(affiliation=affiliation, first_name="Jane", last_name="Doe", primary_id=pid,
                  expiry_date=TODAY + timedelta(days=365), email_address="jane.doe@example.org",
                  password="Tr1cky-Horse" if group.password == "temporary" else "")
    values.update(changes)
    return PatronForm(**values)


def rules(result) -> set[tuple[str, str, str]]:
    return {(i.rule, i.severity, i.field) for i in result.issues}


ALL = [(p, a) for p in (DEFAULT, CONSORTIUM, EXTERNAL_ID) for a in p.affiliations]


@pytest.mark.parametrize(("policy", "affiliation"), ALL, ids=[f"{p.name[:10]}-{a}" for p, a in ALL])
def test_a_good_form_passes_and_builds_the_right_record(policy, affiliation):
    result = validate(good(policy, affiliation), policy, today=TODAY)
    assert result.ok, result.issues
    record = result.record
    aff = policy.affiliations[affiliation]
    assert record["user_group"]["value"] == aff.group
    if aff.managed == "sis":
        assert record["account_type"]["value"] == "EXTERNAL" and record["external_id"] == policy.sis_profiles[0]
        assert "password" not in record
    else:
        assert record["account_type"]["value"] == "INTERNAL" and record["external_id"] == ""
    group = policy.groups[aff.group]
    assert ("password" in record) == (group.password == "temporary" and aff.managed == "local")
    if "password" in record:
        assert record["force_password_change"] == "TRUE"
    expiry = date.fromisoformat(record["expiry_date"].rstrip("Z"))
    assert record["purge_date"] == (expiry + timedelta(days=policy.retention_days)).isoformat() + "Z"
    if group.patron_type:
        assert record["user_statistic"][0]["statistic_category"]["value"] == group.patron_type


@pytest.mark.parametrize("field", ["first_name", "last_name", "primary_id", "email_address"])
def test_seed_000_mandatory_fields(field):
    result = validate(good(CONSORTIUM, "community", **{field: ""}), CONSORTIUM, today=TODAY)
    assert ("MISSING_FIELD", "error", field) in rules(result)
    assert result.record is None


@pytest.mark.parametrize("policy", [DEFAULT, CONSORTIUM, EXTERNAL_ID], ids=["default", "consortium", "seed003"])
def test_an_empty_expiry_date_defaults_from_the_group_on_every_path(policy):
    result = validate(good(policy, "alum", expiry_date=""), policy, today=TODAY)
    group = policy.groups[policy.affiliations["alum"].group]
    expiry = TODAY + timedelta(days=group.default_expiry_days)
    assert result.ok, result.issues
    assert ("EXPIRY_DEFAULTED", "info", "expiry_date") in rules(result)
    assert result.record["expiry_date"] == expiry.isoformat() + "Z"
    assert result.record["purge_date"] == (expiry + timedelta(days=policy.retention_days)).isoformat() + "Z"


def test_seed_000_email_type_is_mandatory_too():
    result = validate(good(CONSORTIUM, "alum", email_type="", email_address=""), CONSORTIUM, today=TODAY)
    assert {("MISSING_FIELD", "error", "email_type"), ("MISSING_FIELD", "error", "email_address")} <= rules(result)


def test_seed_003_email_is_not_mandatory_but_patron_type_is():
    assert validate(good(EXTERNAL_ID, "friend", email_address=""), EXTERNAL_ID, today=TODAY).ok


def test_identifier_is_trimmed_and_case_normalised_then_checked():
    result = validate(good(DEFAULT, "community", primary_id="  cb 100234 "), DEFAULT, today=TODAY)
    assert result.ok and result.record["primary_id"] == "CB100234"
    bad = validate(good(DEFAULT, "community", primary_id="C-100234"), DEFAULT, today=TODAY)
    (issue,) = [i for i in bad.issues if i.field == "primary_id"]
    assert issue.rule == "BAD_ID_FORMAT" and "CB followed by 6 digits" in issue.message
    sis = validate(good(DEFAULT, "student", primary_id="12345678"), DEFAULT, today=TODAY)
    assert any("identical to the value in the SIS" in i.message for i in sis.issues)


@pytest.mark.parametrize("email", ["jane.doe@@example.org", "jane doe@example.org", "jane@example", "@example.org"])
def test_malformed_email(email):
    result = validate(good(DEFAULT, "alum", email_address=email), DEFAULT, today=TODAY)
    assert ("BAD_EMAIL", "error", "email_address") in rules(result)


def test_expiry_must_be_in_the_future():
    for expiry in (TODAY, TODAY - timedelta(days=1)):
        result = validate(good(DEFAULT, "alum", expiry_date=expiry), DEFAULT, today=TODAY)
        assert ("EXPIRY_NOT_FUTURE", "error", "expiry_date") in rules(result)
    assert ("BAD_DATE", "error", "expiry_date") in rules(validate(good(DEFAULT, "alum", expiry_date="31/12/2027"),
                                                                    DEFAULT, today=TODAY))


def test_purge_date_defaults_and_warns_when_too_soon():
    expiry = TODAY + timedelta(days=100)
    result = validate(good(DEFAULT, "alum", expiry_date=expiry), DEFAULT, today=TODAY)
    assert ("PURGE_DEFAULTED", "info", "purge_date") in rules(result)
    soon = validate(good(DEFAULT, "alum", expiry_date=expiry, purge_date=expiry + timedelta(days=30)), DEFAULT,
                    today=TODAY)
    assert soon.ok and ("PURGE_TOO_SOON", "warning", "purge_date") in rules(soon)
    assert any("too early" in i.message for i in soon.issues)
    before = validate(good(DEFAULT, "alum", expiry_date=expiry, purge_date=expiry - timedelta(days=1)), DEFAULT,
                      today=TODAY)
    assert not before.ok and ("PURGE_BEFORE_EXPIRY", "error", "purge_date") in rules(before)


@pytest.mark.parametrize(("password", "why"), [("short1", "8 characters"), ("CB100234", "identifier"),
                                               ("password123", "common")])
def test_password_rules_where_a_password_is_wanted(password, why):
    result = validate(good(DEFAULT, "community", password=password), DEFAULT, today=TODAY)
    (issue,) = [i for i in result.issues if i.field == "password"]
    assert issue.rule == "BAD_PASSWORD" and why in issue.message


def test_temporary_password_is_required_and_force_change_is_advised():
    missing = validate(good(CONSORTIUM, "community", password=""), CONSORTIUM, today=TODAY)
    assert ("MISSING_FIELD", "error", "password") in rules(missing)
    no_force = validate(good(CONSORTIUM, "community", force_password_change=False), CONSORTIUM, today=TODAY)
    assert no_force.ok and ("FORCE_CHANGE_OFF", "warning", "password") in rules(no_force)
    assert no_force.record["force_password_change"] == ""


def test_no_password_where_the_procedure_says_none():
    external = validate(good(EXTERNAL_ID, "alum", password="Tr1cky-Horse"), EXTERNAL_ID, today=TODAY)
    assert ("NO_PASSWORD_WANTED", "error", "password") in rules(external)
    assert any("external identity" in i.message for i in external.issues)
    sis = validate(good(DEFAULT, "student", password="Tr1cky-Horse"), DEFAULT, today=TODAY)
    assert ("NO_PASSWORD_WANTED", "error", "password") in rules(sis)


def test_the_password_never_shows_in_reprs():
    result = validate(good(DEFAULT, "community", password="Tr1cky-Horse"), DEFAULT, today=TODAY)
    assert result.record["password"] == "Tr1cky-Horse"  # kept only to send once
    assert "Tr1cky-Horse" not in repr(result) and "Tr1cky-Horse" not in repr(good(DEFAULT, "community"))
    assert result.form.password == ""


def test_managed_choice_that_disagrees_with_the_affiliation_warns():
    local_student = validate(good(DEFAULT, "student", managed="local"), DEFAULT, today=TODAY)
    assert ("MANAGED_DISAGREES", "warning", "managed") in rules(local_student)
    assert ("LOCAL_IN_SIS_GROUP", "warning", "managed") in rules(local_student)
    assert local_student.record["account_type"]["value"] == "INTERNAL"
    sis_alum = validate(good(DEFAULT, "alum", managed="sis", password=""), DEFAULT, today=TODAY)
    assert ("MANAGED_DISAGREES", "warning", "managed") in rules(sis_alum)
    assert sis_alum.record["account_type"]["value"] == "EXTERNAL"


def test_unknown_affiliation_and_group_are_explained():
    from dataclasses import replace

    result = validate(replace(good(DEFAULT, "alum"), affiliation="astronaut", user_group="MOON"), DEFAULT, today=TODAY)
    assert ("UNKNOWN_AFFILIATION", "error", "affiliation") in rules(result)
    assert ("UNKNOWN_GROUP", "error", "user_group") in rules(result)


def test_an_unknown_affiliation_is_one_message_not_four():
    """A CSV row with affiliation 'Martian' also got 'Fill in the user group / expiration date / purge date',
    which the affiliation would have given: only the affiliation is to fix."""
    from dataclasses import replace

    result = validate(replace(good(DEFAULT, "alum"), affiliation="Martian", expiry_date=None), DEFAULT, today=TODAY)
    assert {(r, f) for r, _, f in rules(result) if _ == "error"} == {("UNKNOWN_AFFILIATION", "affiliation")}
    assert not result.ok


def test_library_staff_accounts_are_staff_records():
    result = validate(good(DEFAULT, "internal"), DEFAULT, today=TODAY)
    assert result.ok and result.record["record_type"]["value"] == "STAFF"
    assert result.record["primary_id"] == "jsmith2"


def test_bad_rows_never_raise():
    for row in ({}, {"affiliation": None}, {"expiry_date": "soon", "birth_date": "2099-01-01", "primary_id": 42}):
        result = validate(PatronForm.from_mapping(row), DEFAULT, today=TODAY)
        assert not result.ok and result.issues


# -- the one decision (pure: no Alma) ---------------------------------------------------------------

def cand(pid="CB000001", *, group="COMMUNITY", external=False, status="ACTIVE", expiry=TODAY + timedelta(days=30),
         score=80, roles=("200",)):
    from almatools.registration import Candidate

    return Candidate(primary_id=pid, name="Jane Doe", user_group=group, account_type="EXTERNAL" if external else "INTERNAL",
                     status=status, expiry_date=expiry, roles=roles, score=score, reasons=("same email address",),
                     record={})


def decide_for(affiliation, *candidates, policy=DEFAULT):
    from almatools.registration import decide

    return decide(validate(good(policy, affiliation), policy, today=TODAY), list(candidates), policy, today=TODAY)


def test_an_active_account_in_the_same_group_blocks_and_offers_renewal_with_the_groups_dates():
    decision = decide_for("community", cand())
    expiry = TODAY + timedelta(days=DEFAULT.groups["COMMUNITY"].default_expiry_days)
    assert decision.blocked and decision.action == "renew" and decision.target == "CB000001"
    assert decision.offers == ("renew", "update")
    assert (decision.renew_expiry, decision.renew_purge) == (expiry, expiry + timedelta(days=DEFAULT.retention_days))
    assert "Renew it" in decision.reason and expiry.isoformat() in decision.reason


@pytest.mark.parametrize(("candidate", "action"), [
    (cand(expiry=TODAY + timedelta(days=900)), "update"),           # already valid longer than a renewal
    (cand(status="INACTIVE", expiry=TODAY - timedelta(days=50)), "renew"),  # a lapsed member comes back
    (cand(expiry=None), "renew"),
    (cand(group="FRIENDS"), "update"),                              # one person keeps one account
    (cand(group="UGRAD", external=True), "block"),                  # still a student: has not left
    (cand(group="UGRAD", external=True, expiry=TODAY - timedelta(days=100)), "block"),  # left < a year ago
    (cand(group="UGRAD", external=True, status="INACTIVE", expiry=TODAY - timedelta(days=800)), "create_merge"),
    (cand(group="FRIENDS", status="INACTIVE", expiry=TODAY - timedelta(days=10)), "create_merge"),
    (cand(roles=("200", "21")), "add_role"),
    (cand(score=50), "create"),                                     # a namesake only: listed, never blocks
    (cand(pid="CB100234", group="ALUMNI", score=100), "renew"),     # exact identifier, another local group
])
def test_the_decision_rules(candidate, action):
    decision = decide_for("community", candidate)
    assert decision.action == action, decision.reason
    assert decision.blocked == (action not in ("create", "create_merge"))
    if action == "create_merge":
        assert decision.merge_from == (candidate.primary_id,) and "merge request old → new" in " ".join(decision.advice)
    else:
        assert decision.merge_from == ()


def test_an_active_sis_account_in_the_same_group_is_updated_not_renewed():
    decision = decide_for("student", cand("123456780", group="UGRAD", external=True))
    assert decision.action == "update" and decision.offers == ("update",) and "SIS" in decision.reason


def test_without_one_account_per_person_an_active_local_account_elsewhere_is_listed_only():
    import dataclasses

    lenient = dataclasses.replace(DEFAULT, one_account_per_person=False)
    decision = decide_for("community", cand(group="FRIENDS"), policy=lenient)
    assert decision.action == "create" and not decision.merge_from
    assert any("also has an active account" in a for a in decision.advice)
    assert decide_for("community", cand(), policy=lenient).action == "renew"  # the same group always blocks


def test_staff_are_told_to_add_the_role():
    decision = decide_for("internal", cand(group="COMMUNITY"), policy=CONSORTIUM)
    assert decision.action == "add_role" and "Add the role" in decision.reason


def test_nothing_found_creates():
    decision = decide_for("alum")
    assert decision.action == "create" and decision.advice == ("No existing account found.",)


def test_records_carry_no_output_only_field_and_send_the_sis_identifiers():
    from almatools.registration import OUTPUT_ONLY_FIELDS, strip_output_only

    record = validate(good(DEFAULT, "student"), DEFAULT, today=TODAY).record
    assert record["user_statistic"] == [{"statistic_category": {"value": "STUDENT"}}]
    assert record["user_identifier"] == [{"value": "123456789", "id_type": {"value": "UNIV_ID"}, "status": "ACTIVE",
                                          "segment_type": "External"}]
    assert not set(record) & set(OUTPUT_ONLY_FIELDS)
    got = {"primary_id": "x", "full_name": "X", "link": "u", "loans": {"value": 1}, "linking_id": "L",
           "user_statistic": [{"statistic_category": {"value": "S"}, "category_type": {"value": "PATRON_TYPE"}}]}
    clean = strip_output_only(got)
    assert clean == {"primary_id": "x", "user_statistic": [{"statistic_category": {"value": "S"}}]}
    assert "full_name" in got  # the original is left as it was


def test_sis_identifiers_are_asked_for_and_checked():
    typed = validate(good(DEFAULT, "student", identifiers={"univ_id": "987654321"}), DEFAULT, today=TODAY)
    assert typed.ok and typed.form.identifiers == {"UNIV_ID": "987654321"}
    bad = validate(good(DEFAULT, "student", identifiers={"UNIV_ID": "98765"}), DEFAULT, today=TODAY)
    assert ("BAD_IDENTIFIER", "error", "identifier_UNIV_ID") in rules(bad)
    unknown = validate(good(DEFAULT, "alum", identifiers={"SHOE": "42"}), DEFAULT, today=TODAY)
    assert ("UNKNOWN_IDENTIFIER_TYPE", "error", "identifier_SHOE") in rules(unknown)
    from_csv = PatronForm.from_mapping({"affiliation": "Graduate student", "identifier_UNIV_ID": " 111222333 "})
    assert from_csv.identifiers == {"UNIV_ID": "111222333"}
    import dataclasses

    by_label = dataclasses.replace(good(DEFAULT, "graduate"), affiliation="Graduate student")
    checked = validate(by_label, DEFAULT, today=TODAY)
    assert checked.ok and checked.form.affiliation == "graduate" and checked.record["user_group"]["value"] == "GRAD"


def test_registration_and_quality_share_one_catalogue_and_one_severity_vocabulary():
    import re
    from pathlib import Path

    import almatools
    from almatools.catalog import ENTRY_RULES, RULES, Severity

    root = Path(almatools.__file__).parent
    used = set()
    for path in (*(root / "registration").glob("*.py"), root / "bulk.py", root / "ui" / "register.py"):
        used |= set(re.findall(r'(?:add|Issue\.of)\(\s*"([A-Z_]+)"', path.read_text(encoding="utf-8")))
    assert used and used <= set(ENTRY_RULES), sorted(used - set(ENTRY_RULES))
    assert not re.search(r'Issue\(\s*"', "".join(p.read_text(encoding="utf-8") for p in root.rglob("*.py")))
    for rule in ENTRY_RULES.values():
        assert isinstance(rule.at_entry, Severity)
        # A rule checked in both places with two severities must say why, in the catalogue.
        if rule.id in RULES and rule.at_entry != rule.severity:
            assert rule.why, rule.id
    assert {r: (RULES[r].severity.value, ENTRY_RULES[r].at_entry.value)
            for r in ("BAD_EMAIL", "BAD_ID_FORMAT", "PURGE_TOO_SOON")} == {
        "BAD_EMAIL": ("warning", "error"), "BAD_ID_FORMAT": ("warning", "error"),
        "PURGE_TOO_SOON": ("error", "warning")}
