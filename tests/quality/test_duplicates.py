"""Duplicate linkage: accuracy against Sandbox University's planted duplicates, and hand-made cases."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from almatools.normalise import name_forms
from almatools.quality.duplicates import DEFAULT_THRESHOLD, find_duplicates, prepare_records
from almatools.quality.frame import users_frame
from almatools.sandbox.generator import generate_institution, iter_sandbox_users

TODAY = date(2026, 1, 15)


@pytest.fixture(scope="module")
def institution(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, pd.DataFrame]:
    """5,000 sandbox users (seed 11) as the patron table, and the ground truth of their problems."""
    out = tmp_path_factory.mktemp("dup5000")
    batches: list[pd.DataFrame] = []
    generate_institution(out, users=5000, seed=11, today=TODAY, sink=lambda b: batches.append(users_frame(b)))
    truth = pd.read_csv(Path(out) / "ground_truth.csv", dtype=str, keep_default_na=False)
    return pd.concat(batches, ignore_index=True), truth


@pytest.fixture(scope="module")
def result(institution):
    return find_duplicates(institution[0])


def pairs_of(truth: pd.DataFrame, rule: str) -> dict[frozenset[str], str]:
    rows = truth[truth["rule_id"] == rule]
    return {frozenset(p): d for p, d in zip(zip(rows["primary_id"], rows["other_primary_id"]), rows["detail"])}


def test_precision_and_recall_at_5000(institution, result):
    truth = pairs_of(institution[1], "DUPLICATE")
    linked = result.linked_pairs()
    hits = len(linked & truth.keys())
    precision, recall = hits / len(linked), hits / len(truth)
    assert len(truth) > 40
    assert precision >= 0.98, f"precision {precision:.3f}: {sorted(map(sorted, linked - truth.keys()))}"
    assert recall >= 0.95, f"recall {recall:.3f}: missed {[truth[p] for p in truth.keys() - linked]}"


def test_hard_negatives_and_id_collisions_are_not_linked(institution, result):
    linked = result.linked_pairs()
    negatives = pairs_of(institution[1], "NOT_DUPLICATE")
    collisions = pairs_of(institution[1], "ID_COLLISION")
    assert negatives and collisions
    assert not linked & negatives.keys()
    assert not linked & collisions.keys()  # a shared identifier alone is not one person


def test_evidence_names_what_agreed(institution, result):
    truth = pairs_of(institution[1], "DUPLICATE")
    pairs = result.pairs
    assert list(pairs.columns) == ["primary_id_l", "primary_id_r", "match_probability", "evidence", "cluster_id"]
    assert (pairs["match_probability"] >= DEFAULT_THRESHOLD).all() and (pairs["match_probability"] <= 1).all()
    assert (pairs["primary_id_l"] < pairs["primary_id_r"]).all()
    expect = {"nickname": ("nickname",), "typo_first": ("first name typo",), "typo_last": ("last name typo",),
              "swapped": ("first and last name swapped",),
              "married": ("last name differs", "last name changed")}
    checked = 0
    for left, right, evidence in zip(pairs["primary_id_l"], pairs["primary_id_r"], pairs["evidence"]):
        assert evidence, "every linked pair says why"
        kind = truth.get(frozenset((left, right)), "")
        kinds = kind.split(";")[1].split("+") if ";" in kind else []
        if len(kinds) == 1 and kinds[0] in expect:
            phrases = expect[kinds[0]]
            if kinds[0] == "typo_first":  # a slip that makes another form of the name (Sarah -> Sara)
                users = institution[0].set_index("primary_id")
                first = users.loc[[left, right], "first_name"].tolist()
                if {f.casefold() for f in name_forms(first[0])} & {f.casefold() for f in name_forms(first[1])}:
                    phrases = ("nickname",)
            assert any(phrase in evidence for phrase in phrases), (kind, evidence)
            checked += 1
    assert checked >= 10


def test_clusters_table_and_stable_ids(institution, result):
    users = institution[0]
    clusters = result.clusters
    assert list(clusters.columns) == ["cluster_id", "primary_id", "first_name", "last_name", "user_group",
                                      "account_type", "birth_date", "email"]
    assert clusters["primary_id"].is_unique
    assert (clusters.groupby("cluster_id").size() >= 2).all()
    assert set(result.pairs["cluster_id"]) == set(clusters["cluster_id"])
    assert clusters["cluster_id"].str.fullmatch(r"C-[0-9a-f]{10}").all()
    # Same records in another order, with an unrelated record fewer: the same clusters, the same ids.
    again = find_duplicates(users.sample(frac=1, random_state=3).iloc[1:])
    dropped = users.sample(frac=1, random_state=3).iloc[0]["primary_id"]
    def members(frame: pd.DataFrame) -> dict[str, frozenset[str]]:
        return {cid: frozenset(g) for cid, g in frame.groupby("cluster_id")["primary_id"]}
    before = {cid: m for cid, m in members(clusters).items() if dropped not in m}
    after = members(again.clusters)
    assert before.items() <= after.items()
    assert set(again.timings) >= {"prepare", "train", "predict", "tiers", "total"}


# ---------------------------------------------------------------------------------------------
# Hand-made cases, among 2,000 sandbox users so that names and birth dates have their usual frequencies


def user(pid: str, first: str, last: str, birth: str | None, *, emails: tuple[str, ...] = (), phone: str = "",
         barcode: str = "", sis: bool = False, group: str = "COMMUNITY", middle: str = "",
         address: tuple[str, str] | None = None) -> dict[str, Any]:
    """A minimal Alma user object."""
    u: dict[str, Any] = {
        "primary_id": pid, "first_name": first, "middle_name": middle, "last_name": last,
        "user_group": {"value": group}, "account_type": {"value": "EXTERNAL" if sis else "INTERNAL"},
        "external_id": "SIS" if sis else "", "status": {"value": "ACTIVE"}, "record_type": {"value": "PUBLIC"},
        "contact_info": {
            "email": [{"email_address": e, "preferred": i == 0, "email_type": [{"value": "personal"}]}
                      for i, e in enumerate(emails)],
            "phone": [{"phone_number": phone, "preferred": True}] if phone else [],
            "address": [{"line1": address[0], "city": "Springfield", "postal_code": address[1], "preferred": True}]
            if address else [],
        },
        "user_identifier": [{"id_type": {"value": "BARCODE"}, "value": barcode}] if barcode else [],
    }
    if birth:
        u["birth_date"] = birth + "Z"
    return u


SAME = [  # (case, record, record): each pair is one person
    ("typo", user("CB900001", "Katherine", "Quackenbush", "1984-03-12", emails=("kq1984@gmail.com",)),
     user("AL900002", "Katherine", "Quakenbush", "1984-03-12", emails=("katherine.q@yahoo.com",))),
    ("nickname", user("CB900003", "William", "Thistlewood", "1979-11-02", emails=("wthistle@outlook.com",)),
     user("FR900004", "Bill", "Thistlewood", "1979-11-02", phone="(610) 555-0142")),
    ("married", user("900000005", "Maria", "Vandersloot", "1990-07-21", sis=True, group="STAFF",
                     emails=("mvs123@sandboxu.edu", "maria.vandersloot@gmail.com")),
     user("CB900006", "Maria", "Okonkwo", "1990-07-21", emails=("maria.vandersloot@gmail.com",))),
    ("swapped", user("RB900007", "Wei", "Zhangsun", "1995-05-05", emails=("wz95@proton.me",)),
     user("CB900008", "Zhangsun", "Wei", "1995-05-05", emails=("zw.library@aol.com",))),
    ("alum", user("900000009", "Priyanka", "Ramaswamy", "2001-09-30", sis=True, group="UGRAD",
                  emails=("pxr4411@sandboxu.edu", "priyanka.ramaswamy@gmail.com"), barcode="29417000000091"),
     user("AL900010", "Priyanka", "Ramaswamy", "2001-09-30", group="ALUMNI", emails=("priyanka.ramaswamy@gmail.com",),
          barcode="29417000000108")),
    ("id format", user("CB-900011", "Ottoline", "Featherstonhaugh", None, emails=("otto.f@gmail.com",)),
     user("cb900011", "Ottoline", "Featherstonhaugh", None, phone="+1 215 555 0199")),
]
OTHERS = [  # (case, record, record): two people
    ("twins", user("900000021", "Ingrid", "Marchetti", "2004-02-29", sis=True, group="UGRAD",
                   emails=("ixm1@sandboxu.edu",), address=("12 Elm Street", "19104")),
     user("900000022", "Sofia", "Marchetti", "2004-02-29", sis=True, group="UGRAD",
          emails=("sxm2@sandboxu.edu",), address=("12 Elm Street", "19104"))),
    ("parent and child", user("900000023", "Bartholomew", "Okafor", "1961-06-01", sis=True, group="FACULTY",
                              middle="James", emails=("bjo1@sandboxu.edu",), address=("4 Oak Lane", "19103")),
     user("900000024", "Bartholomew", "Okafor", "1999-10-12", sis=True, group="UGRAD", middle="James",
          emails=("bjo2@sandboxu.edu",), address=("4 Oak Lane", "19103"))),
    ("same barcode, other case", user("CB900025", "Harriet", "Lindqvist", "1970-01-05", barcode="ABC12345"),
     user("FR900026", "Desmond", "Achterberg", "1988-08-08", barcode="abc12345")),
    ("shared family email", user("CB900027", "Rosalind", "Pemberton", "1955-04-04", emails=("pembertons@aol.com",)),
     user("CB900028", "Gideon", "Pemberton", "1953-12-24", emails=("pembertons@aol.com",))),
]


@pytest.fixture(scope="module")
def hand_made():
    background = list(iter_sandbox_users(2000, seed=5, today=TODAY))
    records = [r for _, a, b in SAME + OTHERS for r in (a, b)]
    return find_duplicates(users_frame(background + records))


@pytest.mark.parametrize("case,a,b", SAME, ids=[c for c, _, _ in SAME])
def test_hand_made_duplicates_are_linked(hand_made, case, a, b):
    linked = hand_made.linked_pairs()
    assert frozenset((a["primary_id"], b["primary_id"])) in linked, case
    pair = hand_made.pairs[(hand_made.pairs["primary_id_l"] == min(a["primary_id"], b["primary_id"]))
                           & (hand_made.pairs["primary_id_r"] == max(a["primary_id"], b["primary_id"]))]
    evidence = pair["evidence"].iloc[0]
    expected = {"typo": "last name typo (Quakenbush/Quackenbush)", "nickname": "first name nickname",
                "married": "email equal", "swapped": "first and last name swapped",
                "alum": "email equal", "id format": "identifier equal"}[case]
    assert expected in evidence
    if case in ("typo", "nickname", "swapped", "alum", "married"):
        assert "same birth date" in evidence


@pytest.mark.parametrize("case,a,b", OTHERS, ids=[c for c, _, _ in OTHERS])
def test_hand_made_other_people_are_not_linked(hand_made, case, a, b):
    assert frozenset((a["primary_id"], b["primary_id"])) not in hand_made.linked_pairs(), case


def test_nickname_table_and_normalisation():
    assert "william" in name_forms("bill") and {"alexander", "alexandra"} <= name_forms("alex")
    frame = users_frame([user("X1", "José", "Núñez-García", "1980-01-01", emails=("Jose.Nunez+lib@Gmail.com",),
                              phone="+1 (215) 555-0100", barcode="AB 12-34")])
    row = prepare_records(frame).iloc[0]
    assert (row["fn"], row["ln"]) == ("jose", "nunezgarcia")
    assert list(row["emails"]) == ["jose.nunez+lib@gmail.com"] and list(row["email_users"]) == ["josenunez"]
    assert list(row["phones"]) == ["2155550100"]
    assert "ab1234" in list(row["ids"])


def test_small_inputs_and_bad_arguments():
    empty = find_duplicates(users_frame([]))
    assert empty.pairs.empty and empty.clusters.empty
    one = find_duplicates(users_frame([user("X1", "Ann", "Lee", "1990-01-01")]))
    assert one.pairs.empty
    with pytest.raises(ValueError, match="backend"):
        find_duplicates(users_frame([]), backend="oracle")
    with pytest.raises(ValueError, match="threshold"):
        find_duplicates(users_frame([]), threshold=1.5)
    with pytest.raises(ValueError, match="lacks the columns"):
        find_duplicates(pd.DataFrame({"primary_id": ["X1"]}))
