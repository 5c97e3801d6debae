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
