"""The linkage benchmark's own population (bench/realistic_population.py) and its evidence test.

Small populations only: these check that the files are real Alma user objects the kit reads, that
output is deterministic, that every duplicate pattern and look-alike is what its label says, and
that the benchmark's evidence reading (bench/linkage_realistic.py) folds what it should.
"""

from __future__ import annotations

import csv
import hashlib
import importlib
import json
import re
import sys
from datetime import date
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def modules():
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module("realistic_population"), importlib.import_module("linkage_realistic")
    finally:
        sys.path.remove(str(BENCH))


@pytest.fixture(scope="module")
def population(modules, tmp_path_factory):
    rp, _ = modules
    out = tmp_path_factory.mktemp("pop")
    summary = rp.write_population(out, 800, 3)
    return out, summary


def _read(folder: Path):
    users = [json.loads(line) for line in (folder / "users.jsonl").read_text(encoding="utf-8").splitlines()]
    with open(folder / "truth.csv", encoding="utf-8", newline="") as fh:
        truth = list(csv.DictReader(fh))
    with open(folder / "lookalikes.csv", encoding="utf-8", newline="") as fh:
        look = list(csv.DictReader(fh))
    return users, truth, look


def test_files_are_alma_users_the_kit_reads(population):
    from almatools.sources import load_users

    folder, summary = population
    users, truth, _ = _read(folder)
    assert len(users) == summary["records"] == 800
    frame = load_users(folder / "users.jsonl")
    assert len(frame) == 800
    assert frame.attrs["load_report"]["skipped"] == 0
    assert set(frame["account_type"]) == {"EXTERNAL", "INTERNAL"}
    assert (frame.loc[frame["account_type"] == "EXTERNAL", "external_id"] == "PSU_BANNER").all()
    for user in users:
        for key in ("primary_id", "first_name", "last_name", "user_group", "account_type", "status",
                    "contact_info", "user_identifier", "user_statistic", "pref_first_name"):
            assert key in user
        if user["birth_date"] is not None:
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}Z", user["birth_date"])
        for kind in ("email", "phone", "address"):
            entries = user["contact_info"][kind]
            assert sum(1 for e in entries if e["preferred"]) == (1 if entries else 0), (kind, user["primary_id"])
        assert all("category_type" not in s for s in user["user_statistic"])
        assert all(i["id_type"]["value"] in ("BARCODE", "UNIV_ID", "NET_ID") for i in user["user_identifier"])
    ids = [u["primary_id"].casefold() for u in users]
    assert len(set(ids)) == len(ids)
    assert sorted(r["primary_id"] for r in truth) == sorted(u["primary_id"] for u in users)
    sis = [u for u in users if u["account_type"]["value"] == "EXTERNAL"]
    local = [u for u in users if u["account_type"]["value"] == "INTERNAL"]
    assert sum(1 for u in sis if u["birth_date"]) / len(sis) > 0.95
    assert sum(1 for u in local if u["birth_date"]) / len(local) < 0.6


def test_deterministic_for_a_seed(modules, population, tmp_path):
    rp, _ = modules
    folder, _ = population
    rp.write_population(tmp_path / "again", 800, 3)
    rp.write_population(tmp_path / "other", 800, 4)
    for name in ("users.jsonl", "truth.csv", "lookalikes.csv"):
        digest = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        assert hashlib.sha256((tmp_path / "again" / name).read_bytes()).hexdigest() == digest
    assert (tmp_path / "other" / "users.jsonl").read_bytes() != (folder / "users.jsonl").read_bytes()


def test_share_of_people_with_several_accounts(population):
    folder, summary = population
    _, truth, _ = _read(folder)
    share = summary["multi_account_people"] / summary["people"]
    assert 0.01 <= share <= 0.06
    per_person: dict[str, int] = {}
    for r in truth:
        per_person[r["person_id"]] = per_person.get(r["person_id"], 0) + 1
    assert summary["multi_account_people"] == sum(1 for n in per_person.values() if n > 1)
    originals = {r["person_id"] for r in truth if r["pattern"] == "original"}
    assert originals == set(per_person)  # every person has exactly one original account
    assert sum(1 for r in truth if r["pattern"] == "original") == len(per_person)


def test_lookalikes_are_different_people_as_labelled(population, modules):
    _, lr = modules
    folder, _ = population
    users, truth, look = _read(folder)
    by_id = {u["primary_id"]: u for u in users}
    person = {r["primary_id"]: r["person_id"] for r in truth}
    kinds = {r["pattern"] for r in look}
    assert {"twins", "siblings", "parent_child", "spouses", "family_email", "namesake"} <= kinds
    for r in look:
        a, b = by_id[r["primary_id_l"]], by_id[r["primary_id_r"]]
        assert person[a["primary_id"]] != person[b["primary_id"]]
        ka, kb = lr.record_keys(a), lr.record_keys(b)
        if r["pattern"] in ("twins", "siblings", "spouses"):  # one household: address and landline
            assert ka["address"] & kb["address"] and ka["phone"] & kb["phone"], (lr.shown(a), lr.shown(b))
            assert a["first_name"] != b["first_name"]
        if r["pattern"] == "twins":
            assert a["last_name"] == b["last_name"]
            if a["birth_date"] and b["birth_date"]:
                assert a["birth_date"] == b["birth_date"]
        elif r["pattern"] == "parent_child":
            assert a["first_name"] == b["first_name"] and ka["address"] & kb["address"]
            if a["birth_date"] and b["birth_date"]:
                gap = abs(date.fromisoformat(a["birth_date"][:10]) - date.fromisoformat(b["birth_date"][:10]))
                assert gap.days >= 22 * 365
        elif r["pattern"] == "family_email":
            assert ka["email"] & kb["email"] and a["first_name"] != b["first_name"]
        elif r["pattern"] == "namesake":
            assert (a["first_name"], a["last_name"]) == (b["first_name"], b["last_name"])


PATTERN_CHECKS = {
    "nickname": lambda o, d, rp: d["first_name"] in rp.NICKS[o["first_name"]],
    "pref_name_as_first": lambda o, d, rp: d["first_name"] == o["pref_first_name"] != o["first_name"],
    "initials": lambda o, d, rp: d["first_name"].rstrip(".") == o["first_name"][0],
    "middle_in_first": lambda o, d, rp: d["first_name"].startswith(o["first_name"] + " ") and not d["middle_name"],
    "accents_dropped": lambda o, d, rp: d["last_name"] + d["first_name"] != o["last_name"] + o["first_name"]
    and (d["first_name"] + d["last_name"]).isascii(),
    "dob_swap": lambda o, d, rp: (o["birth_date"][5:7], o["birth_date"][8:10]) == (d["birth_date"][8:10],
                                                                                  d["birth_date"][5:7]),
    "dob_typo": lambda o, d, rp: sum(x != y for x, y in zip(o["birth_date"], d["birth_date"])) == 1,
    "transliteration": lambda o, d, rp: (o["first_name"], o["last_name"]) != (d["first_name"], d["last_name"]),
    "double_surname": lambda o, d, rp: d["last_name"] != o["last_name"],
    "married_name": lambda o, d, rp: d["last_name"] != o["last_name"],
    "married_hyphenated": lambda o, d, rp: o["last_name"] in d["last_name"] and d["last_name"] != o["last_name"],
    "sis_reenrolled": lambda o, d, rp: o["account_type"]["value"] == d["account_type"]["value"] == "EXTERNAL"
    and o["status"]["value"] == "INACTIVE" and d["status"]["value"] == "ACTIVE",
    "alum_old_sis_new_local": lambda o, d, rp: o["account_type"]["value"] == "EXTERNAL"
    and d["user_group"]["value"] == "ALUMNI" and d["account_type"]["value"] == "INTERNAL",
    "typo": lambda o, d, rp: (o["first_name"], o["last_name"]) != (d["first_name"], d["last_name"]),
}
SHARED_ONLY = {"shared_other_email_only": ["email"], "shared_other_phone_only": ["phone"],
               "shared_address_only": ["address"], "rare_name_only": [], "name_only": []}


@pytest.mark.parametrize("pattern", sorted(set(PATTERN_CHECKS) | set(SHARED_ONLY) | {"local_no_birthdate"}))
def test_each_duplicate_pattern_is_what_its_label_says(modules, pattern):
    rp, lr = modules
    for seed in range(5):
        pop = rp.Population(200, seed)
        p = pop.eligible_person(pattern)
        kind = "sis_old" if pattern in ("alum_old_sis_new_local", "sis_reenrolled") else rp._kind(p)
        orig = pop.account(p, kind, "original", birth=p.birth if kind != "local" or pattern.startswith("dob")
                           else None)
        if pattern == "shared_other_email_only":
            pop.ensure(orig, "email", p.personal[-1])
        pop.duplicate(p, orig, pattern)
        dup = pop.records[-1]
        assert pop.truth[-1] == (dup["primary_id"], p.pid, pattern)
        assert dup["primary_id"].casefold() != orig["primary_id"].casefold()
        if pattern in PATTERN_CHECKS:
            assert PATTERN_CHECKS[pattern](orig, dup, rp), (pattern, lr.shown(orig), lr.shown(dup))
        ko, kd = lr.record_keys(orig), lr.record_keys(dup)
        shared = sorted(f for f in ko if ko[f] & kd[f])
        if pattern in SHARED_ONLY:
            assert shared == SHARED_ONLY[pattern], (pattern, shared, lr.shown(orig), lr.shown(dup))
        if pattern == "local_no_birthdate":
            assert dup["birth_date"] is None and (set(shared) & {"email", "phone"})


def test_evidence_reading_folds_formats(modules):
    _, lr = modules
    a = {"line1": "4100 Oak Street Apt. 4B", "line2": None, "postal_code": "27606-1234"}
    b = {"line1": "4100 OAK ST", "line2": "#4B", "postal_code": "27606"}
    c = {"line1": "4100 Oak St., Unit 4B", "postal_code": "27606"}
    d = {"line1": "4100 Oak Street Apt 4C", "postal_code": "27606"}
    assert lr.address_key(a) == lr.address_key(b) == lr.address_key(c) != lr.address_key(d)
    assert lr.address_key({"line1": "Hauptstraße 12", "postal_code": "10115"}) == \
        lr.address_key({"line1": "Hauptstr. 12", "postal_code": "10115"}) == \
        lr.address_key({"line1": "Hauptstrasse 12", "postal_code": "10115"})
    assert lr.phone_key("+1 (919) 555-0134") == lr.phone_key("919.555.0134") == lr.phone_key("19195550134")
    assert lr.phone_key("+86 138 1234 5678") == lr.phone_key("0086 13812345678")
    assert lr.phone_key("919-555-0134") != lr.phone_key("919-555-0143")
    assert lr.phone_key("555") is None


def test_benchmark_measures_tiers_and_blocking_when_the_linkage_offers_them(modules, population, monkeypatch):
    """measure() on the small population: without ``possible``/``candidate_pairs`` it reports n/a;
    with them (stand-ins for the coming API, built from the truth) it counts exactly what they add."""
    import pandas as pd

    from almatools.quality import duplicates as dup

    _, lr = modules
    folder, _ = population
    if hasattr(dup, "candidate_pairs"):
        monkeypatch.delattr(dup, "candidate_pairs")
    full_find = dup.find_duplicates

    class WithoutTiers:  # the linkage as it was before the possible tier
        def __init__(self, result):
            self.pairs, self.clusters, self.timings = result.pairs, result.clusters, result.timings
            self.linked_pairs = result.linked_pairs

    monkeypatch.setattr(dup, "find_duplicates", lambda users, **kw: WithoutTiers(full_find(users, **kw)))
    plain = lr.measure(folder, dump=2)
    monkeypatch.setattr(dup, "find_duplicates", full_find)
    assert "possible" not in plain and "blocking" not in plain
    lk = plain["likely"]
    assert lk["true_linked"] <= lk["linked_pairs"] and 0 <= lk["precision"] <= 1 and 0 <= lk["recall"] <= 1
    assert sum(r["pairs"] for r in plain["by_pattern"].values()) == plain["true_pairs"]
    assert sum(r["linked"] for r in plain["by_pattern"].values()) == lk["true_linked"]
    assert sum(plain["false_links"].values()) == lk["linked_pairs"] - lk["true_linked"]
    assert any(line.startswith("Missed true pairs") for line in plain["dump"])

    _, truth, look = _read(folder)
    accounts: dict[str, list[str]] = {}
    for r in truth:
        accounts.setdefault(r["person_id"], []).append(r["primary_id"])
    true_pairs = [tuple(sorted(v[:2])) for v in accounts.values() if len(v) > 1]
    true_pairs += [tuple(sorted((v[0], v[2]))) for v in accounts.values() if len(v) > 2]
    true_pairs += [tuple(sorted((v[1], v[2]))) for v in accounts.values() if len(v) > 2]
    real_find = dup.find_duplicates

    def find_with_possible(users, **kw):
        result = real_find(users, **kw)
        linked = result.linked_pairs()
        missed = [p for p in true_pairs if frozenset(p) not in linked]
        extra = [(look[0]["primary_id_l"], look[0]["primary_id_r"])]
        rows = missed[: len(missed) // 2] + extra
        result.possible = pd.DataFrame({"primary_id_l": [a for a, _ in rows], "primary_id_r": [b for _, b in rows],
                                        "match_probability": [0.5] * len(rows)})
        return result

    monkeypatch.setattr(dup, "find_duplicates", find_with_possible)
    monkeypatch.setattr(dup, "candidate_pairs", lambda users: pd.DataFrame(
        {"primary_id_l": [b for _, b in true_pairs[1:]], "primary_id_r": [a for a, _ in true_pairs[1:]]}),
        raising=False)
    r = lr.measure(folder, dump=0)
    missed = r["true_pairs"] - r["likely"]["true_linked"]
    assert r["possible"]["missed"] == missed
    assert r["possible"]["adds"] == missed // 2
    assert r["possible"]["pairs"] == missed // 2 + 1
    assert r["possible"]["precision"] == pytest.approx((missed // 2) / (missed // 2 + 1))
    assert r["blocking"]["recall"] == pytest.approx((len(true_pairs) - 1) / len(true_pairs))
    assert r["lookalikes"][look[0]["pattern"]]["possible"] >= 1
