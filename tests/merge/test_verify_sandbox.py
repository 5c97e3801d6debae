"""The API check and the verify step against the sandbox, with merges played out there as staff would."""

from __future__ import annotations

import uuid

import pandas as pd
import pytest
import requests
from merge_data import alma_user

from almatools import merge
from almatools.ui.merge_review import build_merge_verify


def create(client, tag: str, n: int) -> list[tuple[str, str]]:
    """n pairs of users of one person each: (FROM, TO); TO expires later, so it is the survivor."""
    pairs = []
    for i in range(n):
        last = f"Merge{tag}{i}"
        frm, to = f"MF{tag}{i}", f"MT{tag}{i}"
        client.create_user(alma_user(frm, "Pat", last, expiry="2029-01-01"))
        client.create_user(alma_user(to, "Pat", last, expiry="2030-06-30"))
        pairs.append((frm, to))
    return pairs


def sandbox_merge(sandbox, from_id: str, to_id: str) -> None:
    """What staff do in Merge Users, through the sandbox's own endpoint (outside /almaws)."""
    root = sandbox.base_url.removesuffix("/almaws/v1")
    reply = requests.post(f"{root}/sandbox/merge", params={"from": from_id, "to": to_id},
                          headers={"Authorization": f"apikey {sandbox.api_key}"}, timeout=10)
    assert reply.status_code == 204, reply.text


@pytest.fixture
def tag() -> str:
    return uuid.uuid4().hex[:6].upper()


def test_api_check_reads_roles_counts_and_existence(client, tag, tmp_path):
    (f1, t1), (f2, t2) = create(client, tag, 2)
    clusters = pd.DataFrame({"cluster_id": ["a", "a", "b", "b"], "primary_id": [f1, t1, f2, t2]})
    users = merge.users_from_api(client, [f1, t1, f2, t2])
    assert sorted(users["primary_id"]) == sorted([f1, t1, f2, t2]) and "linking_id" in users.columns
    worklist = merge.propose(clusters, users, set(), folder=tmp_path / "w")
    assert [(p.from_id, p.to_id) for p in worklist.pairs()] == [(f1, t1), (f2, t2)]
    # Meanwhile in Alma: FROM of the first pair became a circulation desk operator; the second TO is gone.
    client.update_user(f1, {"user_role": alma_user(f1, roles=("200", "21"))["user_role"]})
    client.delete_user(t2)
    assert merge.check_with_api(worklist, client) == 4
    first, second = worklist.pair("P0001"), worklist.pair("P0002")
    assert [c.name for c in first.hard_failures] == ["from_patron_only"]
    assert [c.name for c in second.hard_failures] == ["both_exist"] and "no longer in Alma" in \
        second.hard_failures[0].message
    with pytest.raises(merge.MergeError, match="staff roles"):
        worklist.approve("P0001", reviewer="kim")
    again = merge.Worklist.load(tmp_path / "w")  # what Alma said is in the journal too
    assert again.record(f1)["source"] == "api" and again.pair("P0002").hard_failures


def test_api_check_fills_in_unknown_roles(client, tag):
    ((f, t),) = create(client, tag, 1)
    worklist = merge.propose(pd.DataFrame({"cluster_id": ["a", "a"], "primary_id": [f, t],
                                           "account_type": ["INTERNAL"] * 2}))
    assert worklist.pairs()[0].not_checked and not worklist.pairs()[0].approvable  # roles unknown
    merge.check_with_api(worklist, client)
    assert worklist.pairs()[0].approvable


def test_verify_marks_pairs_done_or_not(client, sandbox, tag, tmp_path):
    made = create(client, tag, 4)
    ids = [pid for pair in made for pid in pair]
    clusters = pd.DataFrame({"cluster_id": [f"c{i // 2}" for i in range(8)], "primary_id": ids})
    worklist = merge.propose(clusters, merge.users_from_api(client, ids), set(), folder=tmp_path / "w")
    for pair in worklist.pairs():
        worklist.approve(pair.pair_id, reviewer="kim")
    (f1, t1), (f2, t2), (f3, t3), (f4, t4) = made
    sandbox_merge(sandbox, f1, t1)       # done through the HTTP endpoint
    sandbox.store.merge(f2, t2)          # done straight in the store
    sandbox.store.merge(t4, f4)          # merged the wrong way round
    # Staff copied FROM's identifiers: f1 now is an identifier of t1, and Alma's all_unique lookup of f1
    # finds t1. That must still count as "f1 is gone".
    client.update_user(t1, {"user_identifier": [{"value": f1, "id_type": {"value": "BARCODE"}, "status": "ACTIVE",
                                                 "segment_type": "Internal"}]})
    assert client.get_user(f1)["primary_id"] == t1
    result = merge.verify(worklist, client).set_index("pair_id")
    assert result["done"].to_dict() == {"P0001": True, "P0002": True, "P0003": False, "P0004": False}
    assert "still in Alma" in result.loc["P0003", "message"] and "wrong way round" in result.loc["P0004", "message"]
    statuses = {p.pair_id: p.status for p in merge.Worklist.load(tmp_path / "w").pairs()}
    assert statuses == {"P0001": "done", "P0002": "done", "P0003": "not done", "P0004": "not done"}
    # Once the last merge is done, verifying again marks it done.
    sandbox.store.merge(f3, t3)
    panel = build_merge_verify(worklist, client)
    panel.button.click()
    assert "2 of 4 approved pairs done" not in panel.result.value
    assert "3 of 4 approved pairs done" in panel.result.value
    assert worklist.pair("P0003").status == "done"
