"""Sandbox University: determinism, file formats, and a ground truth that the data really supports.

The checks of the planted problems are written here from the rule definitions, independently of the
generator's code: for every rule that can be decided record by record (or by identifier), the
problems found in the data must be exactly the ground-truth rows, which also proves that the clean
records have none of them.
"""

from __future__ import annotations

import csv
import json
import re
import tomllib
import unicodedata
import zipfile
from collections import Counter, defaultdict
from datetime import date, timedelta
from importlib import resources
from pathlib import Path

import pytest
from lxml import etree

from almatools.models import User, iter_users_xml, parse_alma_date, user_from_xml
from almatools.quality.catalog import RULES
from almatools.sandbox.generator import (
    GROUND_TRUTH_COLUMNS,
    NICKNAMES,
    InstitutionInfo,
    generate_institution,
    iter_sandbox_users,
)

TODAY = date(2025, 3, 14)
N = 5000
POLICY = tomllib.loads(resources.files("almatools").joinpath("policies/default.toml").read_text("utf-8"))
GROUPS = POLICY["groups"]
RETENTION = timedelta(days=POLICY["institution"]["retention_days"])
EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")


class Institution:
    def __init__(self, out: Path, users: int = N, seed: int = 7, export: bool = True) -> None:
        self.batches: list[list[dict]] = []
        self.out = out
        self.info = generate_institution(out, users=users, seed=seed, today=TODAY, sink=self.batches.append,
                                         export=export)
        self.users = [u for b in self.batches for u in b]
        self.by_id = {u["primary_id"]: u for u in self.users}
        self.sis = read_zip(out / "sis_extract.zip")
        self.sis_by_id = {u["primary_id"].casefold(): u for u in self.sis}
        with open(out / "ground_truth.csv", newline="", encoding="utf-8") as f:
            self.rows = list(csv.DictReader(f))

    def rows_of(self, rule: str) -> list[dict]:
        return [r for r in self.rows if r["rule_id"] == rule]


def read_zip(path: Path) -> list[dict]:
    users: list[dict] = []
    with zipfile.ZipFile(path) as zf:
        for name in zf.namelist():
            with zf.open(name) as member:
                users.extend(iter_users_xml(member))
    return users


@pytest.fixture(scope="module")
def inst(tmp_path_factory) -> Institution:
    return Institution(tmp_path_factory.mktemp("sandbox") / "out")


# -- files and formats --------------------------------------------------------------------------

def test_outputs_and_info(inst):
    assert sorted(p.name for p in inst.out.iterdir()) == [
        "ground_truth.csv", "institution.json", "sis_extract.zip", "users_export.zip"]
    info = inst.info
    assert isinstance(info, InstitutionInfo)
    assert (info.users, info.seed, info.today, info.sis_profile) == (N, 7, TODAY, "SIS")
    assert json.loads((inst.out / "institution.json").read_text()) == info.to_json()
    assert len(inst.users) == N == info.counts["users"]
    groups = Counter(u["user_group"]["value"] for u in inst.users)
    assert all(info.counts[g] == groups[g] for g in GROUPS)
    rules = Counter(r["rule_id"] for r in inst.rows)
    assert all(info.counts[rule] == rules[rule] for rule in [*RULES, "NOT_DUPLICATE"])
    assert info.counts["sis_extract_users"] == len(inst.sis)
    new = {k for k in inst.sis_by_id} - {u["primary_id"].casefold() for u in inst.users}
    assert info.counts["sis_new_users"] == len(new) > 0


def test_population_mix(inst):
    share = {g: n / N for g, n in Counter(u["user_group"]["value"] for u in inst.users).items()}
    assert 0.50 < share["UGRAD"] < 0.58 and 0.12 < share["GRAD"] < 0.18
    assert 0.06 < share["FACULTY"] < 0.11 and 0.07 < share["STAFF"] < 0.12
    assert 0.09 < sum(share[g] for g in ("ALUMNI", "COMMUNITY", "RECIPROCAL", "FRIENDS")) < 0.16
    assert 0.005 < share["LIBSTAFF"] < 0.02
    assert sum(1 for u in inst.users if u.get("birth_date")) / N > 0.85
    assert sum(1 for u in inst.users if u["status"]["value"] == "ACTIVE") / N > 0.9


def test_sink_gets_full_get_shaped_users(inst):
    assert [len(b) for b in inst.batches] == [N]
    for u in inst.users:
        assert u["password"] == "" and u["link"] is None and u["researcher"] is None
        for k in ("requests", "loans", "fees"):
            assert isinstance(u[k], dict) and isinstance(u[k]["value"], (int, float))
        assert u["full_name"] == " ".join(x for x in (u["first_name"], u["middle_name"], u["last_name"]) if x)
        assert {"value", "desc"} == set(u["user_group"]) == set(u["account_type"]) == set(u["record_type"])
        for key in ("expiry_date", "purge_date", "birth_date", "status_date"):
            assert key not in u or re.fullmatch(r"\d{4}-\d{2}-\d{2}Z", u[key])
        segment = "External" if u["account_type"]["value"] == "EXTERNAL" else "Internal"
        for item in u["user_identifier"] + u["contact_info"]["email"] + u["user_statistic"]:
            assert item["segment_type"] == segment
        assert u["user_role"][0]["role_type"]["value"] == "200"
    staff = [User(u) for u in inst.users if u["record_type"]["value"] == "STAFF"]
    assert staff and all(set(s.roles) > {"200"} for s in staff)
    desks = [p for s in staff for r in s.raw["user_role"] for p in r["parameter"]]
    assert desks and all(p["type"]["value"] == "CirculationDesk" for p in desks)
    assert list(iter_sandbox_users(N, seed=7, today=TODAY)) == inst.users


def test_names_are_latin_script(inst):
    for u in inst.users[:2000]:
        for ch in u["first_name"] + u["last_name"]:
            assert not ch.isalpha() or "LATIN" in unicodedata.name(ch), u["full_name"]


def test_sis_extract_files(inst):
    with zipfile.ZipFile(inst.out / "sis_extract.zip") as zf:
        assert zf.namelist() == ["sis_0001.xml"]
        data = zf.read("sis_0001.xml")
        with zf.open("sis_0001.xml") as member:  # a streamed parse of a zip member
            streamed = list(iter_users_xml(member))
    root = etree.fromstring(data)
    assert root.tag == "users" and int(root.get("total_record_count")) == len(root) == len(streamed)
    assert b"xsi:nil" not in data  # the SIS sends no nulls
    for u in streamed:
        assert u["account_type"]["value"] == "EXTERNAL" and u["external_id"] == "SIS"
        assert u["status"]["value"] == "ACTIVE" and re.fullmatch(r"\d{9}", u["primary_id"])
        assert {"user_role", "user_note", "password", "full_name", "loans"}.isdisjoint(u)
        types = [i["id_type"]["value"] for i in u["user_identifier"]]
        assert types[:3] == ["UNIV_ID", "BARCODE", "NET_ID"] and u["user_identifier"][0]["value"] == u["primary_id"]


def test_export_is_every_user_losslessly(inst):
    assert read_zip(inst.out / "users_export.zip") == inst.users


def test_files_split_at_the_file_size(tmp_path, monkeypatch):
    monkeypatch.setattr("almatools.sandbox.generator.write.FILE_USERS", 700)  # where the zip writer reads it
    generate_institution(tmp_path, users=2000, seed=3, today=TODAY, export=True)
    with zipfile.ZipFile(tmp_path / "users_export.zip") as zf:
        names = zf.namelist()
        counts = [int(etree.fromstring(zf.read(n)).get("total_record_count")) for n in names]
    assert names == ["users_0001.xml", "users_0002.xml", "users_0003.xml"] and counts == [700, 700, 600]


def test_deterministic_to_the_byte(tmp_path):
    runs = []
    for name in ("a", "b"):
        got: list = []
        generate_institution(tmp_path / name, users=1200, seed=5, today=TODAY, sink=got.append, export=True)
        runs.append(got)
    for f in ("sis_extract.zip", "users_export.zip", "ground_truth.csv", "institution.json"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    assert runs[0] == runs[1]
    generate_institution(tmp_path / "c", users=1200, seed=6, today=TODAY)
    assert (tmp_path / "a" / "ground_truth.csv").read_bytes() != (tmp_path / "c" / "ground_truth.csv").read_bytes()
    other_ids = {u["primary_id"] for u in iter_sandbox_users(1200, seed=6, today=TODAY)}
    assert len(other_ids & {u["primary_id"] for u in runs[0][0]}) < 50  # seeds give different ids


def test_dates_follow_today():
    later = TODAY + timedelta(days=400)
    a = list(iter_sandbox_users(300, seed=1, today=TODAY))
    b = list(iter_sandbox_users(300, seed=1, today=later))
    assert [u["primary_id"] for u in a] == [u["primary_id"] for u in b]
    shifted = [(parse_alma_date(x["expiry_date"]), parse_alma_date(y["expiry_date"])) for x, y in zip(a, b)
               if x.get("expiry_date")]
    assert all(e2 - e1 == timedelta(days=400) for e1, e2 in shifted)


def test_small_and_invalid_sizes(tmp_path):
    info = generate_institution(tmp_path / "zero", users=0, today=TODAY)
    assert info.counts["users"] == 0 and read_zip(tmp_path / "zero" / "sis_extract.zip") == []
    assert len(list(iter_sandbox_users(7, seed=2, today=TODAY))) == 7
    with pytest.raises(ValueError):
        generate_institution(tmp_path / "bad", users=-1)
    assert not (tmp_path / "bad" / "sis_extract.zip").exists()


# -- the ground truth ---------------------------------------------------------------------------

def test_ground_truth_format_and_volume(inst):
    with open(inst.out / "ground_truth.csv", newline="", encoding="utf-8") as f:
        assert tuple(next(csv.reader(f))) == GROUND_TRUTH_COLUMNS
    known = set(RULES) | {"NOT_DUPLICATE"}
    assert {r["rule_id"] for r in inst.rows} == known
    per_rule = Counter(r["rule_id"] for r in inst.rows)
    assert min(per_rule.values()) >= 8, per_rule
    for r in inst.rows:
        assert r["primary_id"] in inst.by_id, r
        if r["rule_id"] in ("DUPLICATE", "NOT_DUPLICATE", "ID_COLLISION"):
            assert r["other_primary_id"] in inst.by_id and r["other_primary_id"] != r["primary_id"]
    planted = {r["primary_id"] for r in inst.rows} | {r["other_primary_id"] for r in inst.rows}
    assert len(planted & set(inst.by_id)) / N < 0.12  # most records are clean


def findings(inst: Institution) -> set[tuple]:
    """The rules decidable record by record (or by identifier), straight from their definitions."""
    out: set[tuple] = set()
    owners: dict[str, set[str]] = defaultdict(set)
    for u in inst.users:
        pid, group = u["primary_id"], u["user_group"]["value"]
        in_extract = pid.casefold() in inst.sis_by_id
        if u["account_type"]["value"] == "EXTERNAL":
            if not u["external_id"]:
                out.add(("SIS_PROFILE_MISSING", pid))
            elif u["external_id"] != "SIS":
                out.add(("SIS_PROFILE_UNKNOWN", pid))
            elif not in_extract:
                out.add(("STALE_SIS_MISSING", pid))
        elif in_extract:
            out.add(("SIS_LOCAL_SAME_ID", pid))
        elif GROUPS[group]["sis_loaded"]:
            out.add(("LOCAL_IN_SIS_GROUP", pid))
        expiry, purge = parse_alma_date(u.get("expiry_date")), parse_alma_date(u.get("purge_date"))
        if u["status"]["value"] == "ACTIVE" and expiry and expiry < TODAY:
            out.add(("EXPIRED_ACTIVE", pid))
        if purge is None:
            out.add(("NO_PURGE_DATE", pid))
        elif purge < TODAY:
            out.add(("PURGE_PASSED", pid))
        elif expiry and purge < expiry + RETENTION:
            out.add(("PURGE_TOO_SOON", pid))
        for field in ("first_name", "last_name", "expiry_date"):
            if not u.get(field):
                out.add(("MISSING_FIELD", pid, field))
        emails = u["contact_info"]["email"]
        if not emails or not all(e["email_address"] for e in emails):
            out.add(("MISSING_FIELD", pid, "email_address"))
        if any(not e["email_type"] for e in emails):
            out.add(("MISSING_FIELD", pid, "email_type"))
        if any(e["email_address"] and not EMAIL.fullmatch(e["email_address"]) for e in emails):
            out.add(("BAD_EMAIL", pid))
        if sum(e["preferred"] for e in emails) > 1:
            out.add(("MULTI_PREFERRED_EMAIL", pid))
        if not re.fullmatch(GROUPS[group]["id_pattern"], pid):
            out.add(("BAD_ID_FORMAT", pid))
        for value in [pid] + [i["value"] for i in u["user_identifier"]]:
            owners[re.sub(r"\s", "", value).casefold()].add(pid)
    for ids in owners.values():
        if len(ids) > 1:
            out.add(("ID_COLLISION", *sorted(ids)))
    return out


def test_planted_problems_are_exactly_what_the_data_shows(inst):
    truth: set[tuple] = set()
    for r in inst.rows:
        rule = r["rule_id"]
        if rule == "MISSING_FIELD":
            truth.add((rule, r["primary_id"], r["detail"]))
        elif rule == "ID_COLLISION":
            truth.add((rule, *sorted((r["primary_id"], r["other_primary_id"]))))
        elif rule not in ("DUPLICATE", "NOT_DUPLICATE", "SIS_LOCAL_OTHER_ID"):
            truth.add((rule, r["primary_id"]))
    found = findings(inst)
    assert sorted(found - truth) == [] and sorted(truth - found) == []


def test_a_few_rules_directly(inst):
    for r in inst.rows_of("EXPIRED_ACTIVE"):
        u = User(inst.by_id[r["primary_id"]])
        assert u.is_active and u.expiry_date < TODAY
    for r in inst.rows_of("STALE_SIS_MISSING"):
        assert r["primary_id"].casefold() not in inst.sis_by_id
        assert User(inst.by_id[r["primary_id"]]).is_sis_managed(["SIS"])
    for r in inst.rows_of("SIS_LOCAL_SAME_ID"):
        assert r["primary_id"].casefold() in inst.sis_by_id
        assert inst.by_id[r["primary_id"]]["account_type"]["value"] == "INTERNAL"
    for r in inst.rows_of("PURGE_PASSED"):
        assert User(inst.by_id[r["primary_id"]]).purge_date < TODAY


def test_clean_records(inst):
    planted = {r["primary_id"] for r in inst.rows} | {r["other_primary_id"] for r in inst.rows}
    clean = [User(u) for u in inst.users if u["primary_id"] not in planted]
    assert len(clean) > 0.88 * N
    for u in clean:
        assert u.purge_date == u.expiry_date + RETENTION and u.purge_date > TODAY
        assert u.is_active == (u.expiry_date >= TODAY)
        assert sum(e.preferred for e in u.emails) == 1 and all(EMAIL.fullmatch(e.address) for e in u.emails)
        assert re.fullmatch(GROUPS[u.user_group]["id_pattern"], u.primary_id)
        # patron type by its category code: category_type is output-only and the generator writes none
        assert u.statistics == [GROUPS[u.user_group]["patron_type"]]
        assert all("category_type" not in s for s in u.raw["user_statistic"])
        if GROUPS[u.user_group]["sis_loaded"]:
            assert u.is_sis_managed(["SIS"]) and u.primary_id in inst.sis_by_id
            assert [i.id_type for i in u.identifiers][:3] == ["UNIV_ID", "BARCODE", "NET_ID"]
        else:
            assert u.account_type == "INTERNAL" and u.external_id == ""
    # contacts belong to one person: no two clean people share an email or a phone
    emails = Counter(e.address.casefold() for u in clean for e in u.emails)
    phones = Counter(re.sub(r"\D", "", p.number)[-10:] for u in clean for p in u.phones)
    assert emails.most_common(1)[0][1] == 1 and phones.most_common(1)[0][1] == 1


def osa_distance(a: str, b: str) -> int:
    """Edit distance with adjacent transpositions (optimal string alignment)."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


def _contacts(u: User) -> tuple[set[str], set[str]]:
    return ({e.address.casefold() for e in u.emails if e.address},
            {re.sub(r"\D", "", p.number)[-10:] for p in u.phones})


def _places(u: User) -> set[tuple[str, str]]:
    return {(a.line1.casefold(), a.postal_code[:5]) for a in u.addresses if a.line1}


def _ids(u: User) -> set[str]:
    return {re.sub(r"\s", "", v).casefold() for v in [u.primary_id] + [i.value for i in u.identifiers]}


def shares_contact(a: User, b: User) -> bool:
    (ea, pa), (eb, pb) = _contacts(a), _contacts(b)
    return bool(ea & eb or pa & pb)


def evidence(a: User, b: User) -> set[str]:
    """The exact fields besides the name that two records share (the realistic benchmark's test)."""
    (ea, pa), (eb, pb) = _contacts(a), _contacts(b)
    found = {"email"} if ea & eb else set()
    found |= {"phone"} if pa & pb else set()
    found |= {"birth_date"} if a.birth_date is not None and a.birth_date == b.birth_date else set()
    found |= {"address"} if _places(a) & _places(b) else set()
    found |= {"identifier"} if _ids(a) & _ids(b) else set()
    return found


# Letters NFKD cannot take apart, folded here on their own (independently of the generator's table).
_FOLD = str.maketrans({"đ": "d", "ø": "o", "æ": "ae", "ł": "l", "ß": "ss", "ı": "i", "œ": "oe", "þ": "th", "ð": "d"})


def fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.lower().translate(_FOLD))
    text = "".join(c for c in text if not unicodedata.combining(c))
    return re.sub("oe", "o", re.sub("ue", "u", re.sub("aa", "a", text)))  # Søren: Soren or Soeren


def suffixless(last: str) -> str:
    return re.sub(r"\s+(Jr\.?|Sr\.?|II|III)$", "", last)


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> Institution:
    """20,000 users (four chunks): enough for every duplicate kind and look-alike to appear."""
    return Institution(tmp_path_factory.mktemp("sandbox20k") / "out", users=20_000, seed=3, export=False)


KINDS = {"exact", "typo_first", "typo_last", "nickname", "married", "married_new_email", "swapped", "middle",
         "email_domain", "no_birth", "pref_name", "ascii", "double_surname", "particle", "suffix", "initial",
         "middle_in_first", "dob_swap", "dob_typo", "other_email_only", "other_phone_only", "address_only"}


def test_duplicate_pairs_differ_in_the_intended_way(big):
    inst = big
    rows = inst.rows_of("DUPLICATE")
    assert len({r["cluster_id"] for r in rows}) >= 120
    kinds = Counter()
    for r in rows:
        a, b = User(inst.by_id[r["primary_id"]]), User(inst.by_id[r["other_primary_id"]])
        scenario, kind = r["detail"].split(";")
        kinds[kind] += 1
        same_birth = a.birth_date is not None and a.birth_date == b.birth_date
        same_first = a.first_name.casefold() == b.first_name.casefold()
        same_last = a.last_name.casefold() == b.last_name.casefold()
        shared = evidence(a, b)
        (ea, pa), (eb, pb) = _contacts(a), _contacts(b)
        # hard but fair: every pair shares an exact field besides the name
        assert shared, r
        if kind == "exact":
            assert same_first and same_last
        elif kind == "typo_first":
            assert same_last and osa_distance(a.first_name, b.first_name) == 1
        elif kind == "typo_last":
            assert same_first and osa_distance(a.last_name, b.last_name) == 1
        elif kind == "nickname":
            assert same_last and b.first_name in NICKNAMES[a.first_name]
        elif kind == "married":  # the new record's email still names the maiden surname
            assert same_first and not same_last and same_birth and ea & eb
            assert all(fold(b.last_name) not in e for e in ea & eb)
        elif kind == "married_new_email":
            assert same_first and not same_last and same_birth and pa & pb and not ea & eb
            assert any(re.sub(r"\W", "", fold(b.last_name)) in e for e in eb)
        elif kind == "swapped":
            assert (a.first_name, a.last_name) == (b.last_name, b.first_name)
        elif kind == "middle":
            assert same_first and same_last and bool(a.middle_name) != bool(b.middle_name)
        elif kind == "email_domain":
            pairs = [(x.split("@"), y.split("@")) for x in ea for y in eb]
            assert same_first and same_last and any(x[0] == y[0] and x[1] != y[1] for x, y in pairs)
        elif kind == "no_birth":
            assert same_first and same_last and (a.birth_date is None) != (b.birth_date is None) and pa & pb
        elif kind == "pref_name":  # the preferred name typed as the first name
            assert a.raw["pref_first_name"] == b.first_name != a.first_name and not b.raw["pref_first_name"]
            assert same_last and same_birth
        elif kind == "ascii":
            name_a, name_b = f"{a.first_name} {a.last_name}", f"{b.first_name} {b.last_name}"
            assert not name_a.isascii() and name_b.isascii() and fold(name_a) == fold(name_b), (name_a, name_b)
        elif kind == "double_surname":
            parts = re.split(r"[ -]", a.last_name)
            assert len(parts) == 2 and same_first and same_birth
            assert fold(b.last_name) in {fold(a.last_name.replace(" ", "-")), fold(a.last_name.replace("-", " ")),
                                         fold(parts[0]), fold(parts[1])} and not same_last
        elif kind == "particle":
            *particle, core = a.last_name.split()
            assert particle and all(w.islower() for w in particle) and same_first and same_birth
            assert b.last_name in {" ".join(w.title() for w in a.last_name.split()),
                                   ("".join(particle) + core).title(), core}
        elif kind == "suffix":
            assert suffixless(a.last_name) == b.last_name != a.last_name and same_first and same_birth
        elif kind == "initial":
            assert b.first_name in {a.first_name[0], a.first_name[0] + "."} and same_last and same_birth
        elif kind == "middle_in_first":
            assert b.first_name == f"{a.first_name} {a.middle_name}" and not b.middle_name and same_last
        elif kind == "dob_swap":
            d = a.birth_date
            assert d.day <= 12 and d.day != d.month and b.birth_date == date(d.year, d.day, d.month)
            assert same_first and same_last and ea & eb
        elif kind == "dob_typo":
            x, y = a.birth_date.strftime("%Y%m%d"), b.birth_date.strftime("%Y%m%d")
            assert sum(i != j for i, j in zip(x, y)) == 1 and same_first and same_last and ea & eb
        elif kind in ("other_email_only", "other_phone_only", "address_only"):
            assert same_first and same_last and b.birth_date is None
            assert shared == {kind.split("_")[1 if kind != "address_only" else 0]}, (kind, shared)
            if kind == "other_email_only":
                assert not any(e.preferred for e in a.emails if e.address.casefold() in eb)
            elif kind == "other_phone_only":
                assert [p.types for p in a.phones if re.sub(r"\D", "", p.number)[-10:] in pb] == [("home",)]
                assert not any(p.preferred for p in a.phones if re.sub(r"\D", "", p.number)[-10:] in pb)
        else:
            assert "+" in kind, kind
        if scenario == "alum_old_sis":
            assert a.is_sis_managed(["SIS"]) and b.user_group == "ALUMNI" and b.account_type == "INTERNAL"
            assert a.primary_id not in inst.sis_by_id
        if scenario == "readmitted":  # two SIS records of one person, the old one out of the extract
            assert a.is_sis_managed(["SIS"]) and b.is_sis_managed(["SIS"]) and a.primary_id != b.primary_id
            assert a.primary_id not in inst.sis_by_id and b.primary_id in inst.sis_by_id
        if scenario == "local_twice_id_format":
            assert re.sub(r"\W|_", "", b.primary_id) == a.primary_id
    assert set(kinds) >= KINDS, KINDS - set(kinds)
    assert {s.split(";")[0] for s in (r["detail"] for r in rows)} >= {
        "local_twice", "alum_old_sis", "sis_and_local", "readmitted", "local_three", "local_twice_id_format"}
    readmitted = [r for r in rows if r["detail"].startswith("readmitted")]
    no_email = [r for r in readmitted if not _contacts(User(inst.by_id[r["primary_id"]]))[0]
                & _contacts(User(inst.by_id[r["other_primary_id"]]))[0]]
    assert 0 < len(no_email) < len(readmitted)  # some re-enrolled pairs share only the name and birth date
    clusters = defaultdict(set)
    for r in rows:
        clusters[r["cluster_id"]] |= {r["primary_id"], r["other_primary_id"]}
    assert {len(c) for c in clusters.values()} <= {2, 3}
    for cid, members in clusters.items():  # one row per pair
        assert sum(r["cluster_id"] == cid for r in rows) == len(members) * (len(members) - 1) // 2
    stale = {r["primary_id"] for r in inst.rows_of("STALE_SIS_MISSING")}
    alum_old = {r["primary_id"] for r in rows if r["detail"].startswith("alum_old_sis")}
    assert alum_old and alum_old <= stale  # both rows where both problems are real


def test_duplicate_kinds_at_realistic_shares(big):
    """Two accounts of one person on about 2% of records; no single kind dominates."""
    rows = big.rows_of("DUPLICATE")
    people = {r["cluster_id"] for r in rows}
    assert 0.01 < len(people) / len(big.users) < 0.03
    kinds = Counter(r["detail"].split(";")[1] for r in rows if "+" not in r["detail"])
    assert max(kinds.values()) / sum(kinds.values()) < 0.2, kinds


def test_hard_negatives(big):
    rows = big.rows_of("NOT_DUPLICATE")
    assert Counter(r["detail"] for r in rows).keys() == {"same_name", "twins", "parent_child", "spouses",
                                                         "family_email"}
    suffixes = 0
    for r in rows:
        a, b = User(big.by_id[r["primary_id"]]), User(big.by_id[r["other_primary_id"]])
        (ea, pa), (eb, pb) = _contacts(a), _contacts(b)
        shared = evidence(a, b)
        # the records can tell the people apart: both have a birth date
        assert a.birth_date is not None and b.birth_date is not None, r
        assert "identifier" not in shared
        home = {re.sub(r"\D", "", p.number)[-10:] for u in (a, b) for p in u.phones if p.types == ("home",)}
        if r["detail"] == "twins":
            assert a.last_name == b.last_name and a.birth_date == b.birth_date
            assert a.first_name[0] != b.first_name[0]
            assert shared == {"birth_date", "address", "phone"} and pa & pb <= home
        elif r["detail"] == "same_name":
            assert (a.first_name, a.last_name) == (b.first_name, b.last_name) and not shared
            assert abs((a.birth_date - b.birth_date).days) > 700
        elif r["detail"] == "parent_child":
            assert a.first_name == b.first_name and suffixless(a.last_name) == suffixless(b.last_name)
            assert abs((a.birth_date - b.birth_date).days) > 5000 and "address" in shared and not ea & eb
            suffixes += a.last_name != b.last_name
        elif r["detail"] == "spouses":
            assert a.first_name[0] != b.first_name[0] and a.birth_date != b.birth_date
            assert shared == {"address", "phone"} and pa & pb <= home
        else:  # family_email
            assert a.first_name[0] != b.first_name[0] and abs((a.birth_date - b.birth_date).days) > 5000
            assert shared == {"address", "email"} and len(ea & eb) == 1 and "family" in next(iter(ea & eb))
    assert suffixes > 0  # Jr/Sr on some


def test_names_of_many_origins_and_preferred_names(big):
    letters = Counter(ch for u in big.users for ch in u["first_name"] + u["last_name"] if not ch.isascii())
    assert all(letters[ch] > 0 for ch in "ĐøŁßæı"), letters
    pref = [u for u in big.users if u["pref_first_name"]]
    assert 0.03 < len(pref) / len(big.users) < 0.15
    assert all(u["pref_first_name"] != u["first_name"] for u in pref)
    lasts = [u["last_name"] for u in big.users]
    assert sum("-" in x for x in lasts) > 20 and sum(re.match(r"(van|de|von|del|di|da) ", x) is not None for x in lasts) > 20
    assert sum(len(x.split()) == 2 and x.split()[0][0].isupper() for x in lasts) > 100  # García López


def test_several_contacts_per_person(big):
    users = [User(u) for u in big.users]
    n = len(users)
    assert sum(len(u.phones) > 1 for u in users) / n > 0.1
    assert sum(len(u.emails) > 1 for u in users) / n > 0.2
    assert sum(len(u.addresses) > 1 for u in users) / n > 0.05
    types = Counter(t for u in users for p in u.phones for t in p.types)
    assert types["home"] > 0.15 * n and types["mobile"] > 0.4 * n and set(types) == {"home", "mobile"}
    for u in users:  # exactly one preferred phone and address where there are any
        assert not u.phones or sum(p.preferred for p in u.phones) == 1, u.primary_id
        assert not u.addresses or sum(a.preferred for a in u.addresses) == 1, u.primary_id
    local = [u for u in users if u.account_type == "INTERNAL" and u.user_group != "LIBSTAFF"]
    assert 0.2 < sum(u.birth_date is None for u in local) / len(local) < 0.6  # desk forms leave it out


def test_user_statistic_has_no_category_type(inst):
    """``category_type`` is output-only in Alma: the generator writes the category code alone."""
    stats = [s for u in inst.users for s in u["user_statistic"]]
    assert stats and all(set(s) == {"statistic_category", "statistic_note", "segment_type"} for s in stats)
    assert b"category_type" not in (inst.out / "sis_extract.zip").read_bytes()
    with zipfile.ZipFile(inst.out / "users_export.zip") as zf:
        assert all(b"category_type" not in zf.read(name) for name in zf.namelist())


def test_sis_local_other_id(inst):
    rows = inst.rows_of("SIS_LOCAL_OTHER_ID")
    assert {r["detail"].split(";")[0] for r in rows} == {"in_alma", "not_in_alma"}
    alma_ids = {u["primary_id"] for u in inst.users}
    dup_pairs = {frozenset((r["primary_id"], r["other_primary_id"])) for r in inst.rows_of("DUPLICATE")}
    for r in rows:
        local, sis = User(inst.by_id[r["primary_id"]]), User(inst.sis_by_id[r["other_primary_id"]])
        assert local.account_type == "INTERNAL" and local.primary_id != sis.primary_id
        assert local.primary_id.casefold() not in inst.sis_by_id
        assert local.birth_date == sis.birth_date or shares_contact(local, sis)
        in_alma = r["detail"].startswith("in_alma")
        assert (sis.primary_id in alma_ids) == in_alma
        assert (frozenset((local.primary_id, sis.primary_id)) in dup_pairs) == in_alma


def test_identifiers_are_unique_across_chunks():
    ids: Counter[str] = Counter()
    for u in iter_sandbox_users(12_000, seed=11, today=TODAY):  # three chunks
        values = [u["primary_id"]] + [i["value"] for i in u["user_identifier"]]
        ids.update({re.sub(r"\s", "", v).casefold() for v in values})
    shared = [v for v, n in ids.items() if n > 1]
    assert 0 < len(shared) <= 2.0 * 12 * 1.5  # only the planted collisions (about 2 per 1,000)


def test_nicknames_table():
    for name, nicks in {"William": "Bill", "Robert": "Bob", "Elizabeth": "Liz", "Katherine": "Kate",
                        "Margaret": "Peggy", "James": "Jim", "Michael": "Mike", "Jennifer": "Jen",
                        "Alexander": "Alex", "Christopher": "Chris"}.items():
        assert nicks in NICKNAMES[name]


def test_round_trip_of_every_generated_user(inst):
    from almatools.models import user_to_xml

    assert all(user_from_xml(user_to_xml(u)) == u for u in inst.users)
