"""Policy files: the default, one per seed procedure, and clear errors for broken ones."""

from pathlib import Path

import pytest

from almatools.errors import PolicyError
from almatools.policy import load_policy

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples" / "policies").glob("*.toml"))


def test_default_policy_is_the_sandbox_institution(monkeypatch):
    monkeypatch.delenv("ALMATOOLS_POLICY", raising=False)
    policy = load_policy()
    assert policy.name == "Sandbox University" and policy.sis_profiles == ("SIS",) and policy.retention_days == 365
    assert policy.sis_groups == {"UGRAD", "GRAD", "FACULTY", "STAFF"}
    assert policy.group("COMMUNITY").password == "temporary"
    assert policy.group("ALUMNI").normalise_id(" al 004211 ") == "AL004211"
    assert policy.group("ALUMNI").id_matches("AL004211") and not policy.group("ALUMNI").id_matches("AL42")


def test_env_variable_chooses_the_file(monkeypatch):
    monkeypatch.setenv("ALMATOOLS_POLICY", str(ROOT / "examples" / "policies" / "external_identity_borrowers.toml"))
    assert load_policy().group("ALUMNI").password == "none"


def test_each_seed_procedure_has_an_example():
    assert len(EXAMPLES) == 2
    consortium = load_policy(ROOT / "examples" / "policies" / "consortium_quick_user.toml")
    assert set(consortium.mandatory) == {"first_name", "last_name", "primary_id", "user_group", "expiry_date",
                                         "purge_date", "email_type", "email_address"}
    assert {a.managed for a in consortium.affiliations.values()} == {"sis", "local"}
    external = load_policy(ROOT / "examples" / "policies" / "external_identity_borrowers.toml")
    local = [external.groups[a.group] for a in external.affiliations.values() if a.managed == "local"]
    assert local and all(g.password == "none" and g.patron_type for g in local)
    assert external.move_wait_days == 365


@pytest.mark.parametrize(("text", "key", "hint"), [
    ("[institution]\nname='x'\n", "institution.sis_profiles", "is missing"),
    ("[institution]\nname='x'\nsis_profiles=['SIS']\nretention_days='a year'\n", "institution.retention_days",
     "whole number"),
    ("[institution]\nname='x'\nsis_profiles=['SIS']\ncolour='red'\n", "institution.colour", "allowed keys"),
    ("[institution]\nname='x'\nsis_profiles=['SIS']\nmandatory=['shoe_size']\n", "institution.mandatory",
     "first_name"),
    ("[institution]\nname='x'\nsis_profiles=['SIS']\n[groups.A]\ndescription='a'\nsis_loaded=false\n"
     "id_pattern='(['\nid_hint='h'\n", "groups.A.id_pattern", "regular expression"),
    ("[institution]\nname='x'\nsis_profiles=['SIS']\n[groups.A]\ndescription='a'\nsis_loaded=false\n"
     "id_pattern='.*'\nid_hint='h'\npassword='sometimes'\n", "groups.A.password", "temporary, none, optional"),
    ("[institution]\nname='x'\nsis_profiles=['SIS']\n[groups.A]\ndescription='a'\nsis_loaded=false\n"
     "id_pattern='.*'\nid_hint='h'\n[affiliations.z]\nlabel='Z'\ngroup='B'\nmanaged='local'\n",
     "affiliations.z.group", "use one of A"),
    ("[institution]\nname='x'\nsis_profiles=['SIS']\none_account_per_person='yes'\n",
     "institution.one_account_per_person", "true or false"),
    ("[institution]\nname='x'\nsis_profiles=['SIS']\n[groups.A]\ndescription='a'\nsis_loaded=true\n"
     "id_pattern='.*'\nid_hint='h'\nsis_match_ids=['UNIV_ID']\n", "groups.A.sis_match_ids",
     "[identifier_types.UNIV_ID]"),
    ("[institution]\nname='x'\nsis_profiles=['SIS']\n[identifier_types.U]\nlabel='U'\npattern='.*'\nhint='h'\n"
     "default_from='email'\n", "identifier_types.U.default_from", "primary_id"),
])
def test_broken_files_name_file_key_and_what_is_allowed(tmp_path, text, key, hint):
    path = tmp_path / "mine.toml"
    path.write_text(text)
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert str(path) in str(err.value) and key in str(err.value) and hint in str(err.value)


def test_missing_and_unparseable_files(tmp_path):
    with pytest.raises(PolicyError, match="does not exist"):
        load_policy(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[institution\n")
    with pytest.raises(PolicyError, match="not valid TOML"):
        load_policy(bad)


def test_patron_types_are_category_codes_and_affiliations_may_name_their_own(tmp_path):
    policy = load_policy()
    assert {"STUDENT", "FACULTY", "ALUMNI", "FRIEND"} <= policy.patron_type_codes
    assert policy.patron_type_codes_for("UGRAD") == {"STUDENT"} and policy.patron_type_codes_for("NOPE") == set()
    # A real Alma record: the statistic carries no category_type (output-only, usually absent).
    real = {"user_statistic": [{"statistic_category": {"value": "DEPT_X", "desc": "Dept"}, "segment_type": "Internal"},
                               {"statistic_category": {"value": "FACULTY", "desc": "Faculty"}}]}
    assert policy.patron_type_of(real) == "FACULTY"
    assert policy.patron_type_of({"user_statistic": [{"statistic_category": {"value": "DEPT_X"}}]}) is None
    typed = {"user_statistic": [{"statistic_category": {"value": "ODD"}, "category_type": {"value": "PATRON_TYPE"}}]}
    assert policy.patron_type_of(typed) == "ODD"  # files that carry the type still count
    text = (ROOT / "almatools" / "policies" / "default.toml").read_text(encoding="utf-8")
    text = text.replace('[affiliations.friend]\nlabel = "Friend of the Library"\ngroup = "FRIENDS"\nmanaged = "local"',
                        '[affiliations.friend]\nlabel = "Friend of the Library"\ngroup = "FRIENDS"\nmanaged = "local"\n'
                        'patron_type = "DONOR"')
    mine = tmp_path / "mine.toml"
    mine.write_text(text, encoding="utf-8")
    donors = load_policy(mine)
    assert donors.patron_type_for("FRIENDS", "friend") == "DONOR"
    assert donors.patron_type_codes_for("FRIENDS") == {"FRIEND", "DONOR"} and "DONOR" in donors.patron_type_codes


def test_affiliations_by_key_or_label_and_the_new_keys():
    policy = load_policy()
    assert policy.affiliation("friend").key == "friend"
    assert policy.affiliation("  friend of  the library ").key == "friend"
    assert policy.affiliation("Friends") is None and policy.affiliation("") is None
    assert policy.one_account_per_person is True
    assert policy.match_id_types("UGRAD") == ("UNIV_ID",) and policy.match_id_types("ALUMNI") == ()
    univ = policy.identifier_types["UNIV_ID"]
    assert univ.default_from == "primary_id" and univ.matches("123456789") and not univ.matches("12345")
