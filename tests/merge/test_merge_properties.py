"""Invariants of the merge proposals, on random clusters (hypothesis)."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from merge_data import alma_user

from almatools import merge
from almatools.quality.frame import users_frame

RECORD = st.fixed_dictionaries({
    "account": st.sampled_from(["INTERNAL", "EXTERNAL"]),
    "in_extract": st.booleans(),
    "staff": st.sampled_from([False, False, False, True]),
    "expiry": st.one_of(st.none(), st.dates(date(2020, 1, 1), date(2032, 12, 31))),
    "activity": st.one_of(st.none(), st.dates(date(2023, 1, 1), date(2025, 12, 31))),
    "loans": st.integers(0, 2), "requests": st.integers(0, 1), "fees": st.sampled_from([0.0, 0.0, 4.5]),
    "status": st.sampled_from(["ACTIVE", "ACTIVE", "INACTIVE"]),
    "lower_in_extract": st.booleans(),  # the extract may spell the id in another case
})
CLUSTERS = st.lists(st.lists(RECORD, min_size=2, max_size=5), min_size=1, max_size=6)


def build(clusters: list[list[dict]]) -> tuple[pd.DataFrame, pd.DataFrame, set[str], dict[str, dict]]:
    users, rows, sis, facts = [], [], set(), {}
    for c, members in enumerate(clusters):
        for r, m in enumerate(members):
            pid = f"Id{c}x{r}"
            users.append(alma_user(pid, account=m["account"], roles=("200", "21") if m["staff"] else ("200",),
                                   expiry=m["expiry"].isoformat() if m["expiry"] else None, loans=m["loans"],
                                   requests=m["requests"], fees=m["fees"], status=m["status"]))
            rows.append({"cluster_id": f"C{c:02d}", "primary_id": pid})
            if m["in_extract"]:
                sis.add(pid.lower() if m["lower_in_extract"] else pid)
            facts[pid] = {**m, "pid": pid, "sis_current": m["account"] == "EXTERNAL" and m["in_extract"],
                          "past_sis": m["account"] == "EXTERNAL" and not m["in_extract"]}
    frame = users_frame(users)
    frame["last_patron_activity_date"] = [
        facts[p]["activity"].isoformat() if facts[p]["activity"] else "" for p in frame["primary_id"]]
    return pd.DataFrame(rows), frame, sis, facts


def expected_survivor(members: list[dict]) -> str:
    """The survivor order of the issue, applied rule by rule."""
    rules = [lambda m: m["sis_current"], lambda m: m["staff"], lambda m: not m["past_sis"],
             lambda m: m["expiry"] or date.min, lambda m: m["activity"] or date.min,
             lambda m: m["loans"] + m["requests"], lambda m: m["fees"], lambda m: m["status"] == "ACTIVE"]
    candidates = members
    for rule in rules:
        best = max(rule(m) for m in candidates)
        candidates = [m for m in candidates if rule(m) == best]
    return min(candidates, key=lambda m: m["pid"].casefold())["pid"]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(CLUSTERS)
def test_proposals_keep_the_invariants(clusters):
    frame, users, sis, facts = build(clusters)
    worklist = merge.propose(frame, users, sis)
    pairs = worklist.pairs()
    held = {h["cluster_id"] for h in worklist.held}
    froms = [p.from_id for p in pairs]
    tos = {p.to_id for p in pairs}
    assert len(froms) == len(set(froms)), "a record is merged away twice"
    assert not set(froms) & tos, "a chain: a record is both a FROM and a TO"
    for cid, group in frame.groupby("cluster_id"):
        members = [facts[p] for p in group["primary_id"]]
        mine = [p for p in pairs if p.cluster_id == cid]
        if sum(m["sis_current"] for m in members) > 1:
            assert cid in held and not mine, "two in-extract SIS records must be held, not proposed"
            continue
        assert cid not in held
        assert len(mine) == len(members) - 1
        assert {p.to_id for p in mine} == {expected_survivor(members)}
        assert {p.from_id for p in mine} == set(group["primary_id"]) - {mine[0].to_id}
    for p in pairs:
        f, t = facts[p.from_id], facts[p.to_id]
        assert p.from_id.casefold() != p.to_id.casefold()
        assert not (f["sis_current"] and t["sis_current"])
        assert p.reason and p.decision == "proposed"
        checks = {c.name: c for c in p.checks}
        assert checks["no_chain"].ok and checks["not_self"].ok and checks["both_exist"].ok
        if f["staff"]:
            assert not checks["from_patron_only"].ok and checks["from_patron_only"].hard
        assert checks["from_patron_only"].ok == (not f["staff"])
        assert checks["from_fulfillment"].ok == (not (f["loans"] or f["requests"] or f["fees"]))


@settings(max_examples=60, deadline=None)
@given(CLUSTERS, st.randoms(use_true_random=False))
def test_proposals_do_not_depend_on_row_order(clusters, rnd):
    frame, users, sis, _ = build(clusters)
    shuffled = frame.sample(frac=1.0, random_state=rnd.randrange(2**32)).reset_index(drop=True)
    first = [(p.pair_id, p.from_id, p.to_id, p.reason) for p in merge.propose(frame, users, sis).pairs()]
    again = [(p.pair_id, p.from_id, p.to_id, p.reason) for p in merge.propose(shuffled, users, sis).pairs()]
    assert first == again


@settings(max_examples=60, deadline=None)
@given(CLUSTERS)
def test_approval_is_refused_exactly_when_a_hard_check_fails_and_swaps_rerun_the_checks(clusters):
    frame, users, sis, facts = build(clusters)
    worklist = merge.propose(frame, users, sis)
    for pair in worklist.pairs():
        swapped = worklist.swap(pair.pair_id, reviewer="r")
        assert (swapped.from_id, swapped.to_id) == (pair.to_id, pair.from_id) and swapped.swapped
        checks = {c.name: c.ok for c in swapped.checks}
        assert checks["from_patron_only"] == (not facts[swapped.from_id]["staff"])
        assert checks["from_not_current_sis"] == (not facts[swapped.from_id]["sis_current"])
        back = worklist.swap(pair.pair_id, reviewer="r")
        assert (back.from_id, back.to_id, back.swapped) == (pair.from_id, pair.to_id, False)
        if back.hard_failures:
            with pytest.raises(merge.MergeError, match="cannot be approved"):
                worklist.approve(pair.pair_id, reviewer="r")
            assert worklist.pair(pair.pair_id).decision == "proposed"
        else:
            assert worklist.approve(pair.pair_id, reviewer="r").decision == "approved"


def test_swapping_one_pair_of_a_cluster_of_three_makes_a_chain_that_blocks_approval():
    users = users_frame([alma_user("A"), alma_user("B"), alma_user("C", expiry="2031-01-01")])
    worklist = merge.propose(pd.DataFrame({"cluster_id": ["k"] * 3, "primary_id": ["A", "B", "C"]}), users, set())
    assert [(p.from_id, p.to_id) for p in worklist.pairs()] == [("A", "C"), ("B", "C")]
    worklist.swap("P0001", reviewer="r")  # now C → A, while B → C: C is a FROM and a TO
    for pid in ("P0001", "P0002"):
        chain = next(c for c in worklist.pair(pid).checks if c.name == "no_chain")
        assert not chain.ok and "C is also the" in chain.message
    worklist.reject("P0002", reviewer="r")  # a rejected pair no longer counts
    assert next(c for c in worklist.pair("P0001").checks if c.name == "no_chain").ok


def test_registration_requests_join_the_list():
    users = users_frame([alma_user("OLD", account="EXTERNAL", expiry="2026-01-01"), alma_user("NEW"),
                         alma_user("X"), alma_user("Y"), alma_user("S1", account="EXTERNAL"),
                         alma_user("S2", account="EXTERNAL")])
    requests = pd.DataFrame({
        "from_primary_id": ["OLD", "X", "X", "S1", "Q"], "to_primary_id": ["new", "Y", "Y", "S2", "q"],
        "reason": ["alum", "moved", "moved", "two ids", "self"], "requested_at": ["2025-05-01"] * 5,
        "source": ["registration"] * 5})
    clusters = pd.DataFrame({"cluster_id": ["c", "c"], "primary_id": ["OLD", "NEW"]})
    worklist = merge.propose(clusters, users, {"S1", "S2"}, requests=requests)
    pairs = worklist.pairs()
    assert [(p.from_id, p.to_id, p.source) for p in pairs] == [("OLD", "NEW", "duplicates+registration"),
                                                               ("X", "Y", "registration")]
    assert "Merge request from registration (2025-05-01): alum" in pairs[0].reason
    assert {tuple(h["primary_ids"]) for h in worklist.held} == {("S1", "S2"), ("Q",)}


def test_without_users_data_roles_are_not_checked_and_approval_waits():
    clusters = pd.DataFrame({"cluster_id": ["c", "c"], "primary_id": ["A", "B"], "account_type": ["INTERNAL"] * 2,
                             "first_name": ["Al", "Al"], "last_name": ["Ma", "Ma"]})
    worklist = merge.propose(clusters)
    pair = worklist.pairs()[0]
    assert pair.hard_failures == []  # nothing failed: it could not be checked
    assert [c.name for c in pair.not_checked] == ["from_patron_only"]
    assert pair.not_checked[0].message.startswith("Not checked: no users source")
    assert "run the API check" in pair.not_checked[0].message
    assert not pair.approvable and pair.status == "proposed"
    with pytest.raises(merge.MergeError, match="Not checked: no users source"):
        worklist.approve(pair.pair_id, reviewer="kim")
    row = worklist.to_frame().iloc[0]
    assert row["hard_failures"] == "" and row["not_checked"].startswith("Not checked")


def test_soft_checks_flag_linked_accounts_moving_fees_and_an_unusable_survivor():
    users = users_frame([alma_user("F", fees=12.5), alma_user("T", expiry="2031-01-01", status="INACTIVE")])
    users["linking_id"] = ["NZ123", ""]  # the patron table keeps the API's linked-account fields when it has them
    pair = merge.propose(pd.DataFrame({"cluster_id": ["k", "k"], "primary_id": ["F", "T"]}), users, set()).pairs()[0]
    assert (pair.from_id, pair.to_id) == ("F", "T")  # the later expiry wins before the status
    warned = {c.name: c.message for c in pair.warnings}
    assert set(warned) == {"linked_account", "from_fulfillment", "to_usable"}
    assert "F is a linked or network account" in warned["linked_account"]
    assert "fees of 12.50" in warned["from_fulfillment"] and "inactive" in warned["to_usable"]
    assert pair.approvable  # soft checks warn, they do not block
