"""The sandbox's gateway knobs over real HTTP: thresholds, latency, faults, persistence, bulk load speed."""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import logging
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from almatools.sandbox.server import SandboxServer
from almatools.sandbox.store import Store

KEY = "gateway-test-key"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "alma.sqlite") as opened:
        yield opened


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def get(http: requests.Session, server: SandboxServer, path: str = "/users", **params) -> requests.Response:
    return http.get(server.base_url + path, params={"apikey": KEY, "format": "json", **params}, timeout=10)


def error_code(reply: requests.Response) -> str:
    return reply.json()["errorList"]["error"][0]["errorCode"]


def new_user(pid: str) -> dict:
    return {"record_type": {"value": "PUBLIC"}, "primary_id": pid, "account_type": {"value": "INTERNAL"},
            "first_name": "Gate", "last_name": "Keeper", "user_group": {"value": "VISITOR"}}


def test_per_second_threshold(store: Store, http: requests.Session) -> None:
    with SandboxServer(store, api_key=KEY, per_second=3) as server:
        time.sleep(1 - time.time() % 1 + 0.01)  # start at the beginning of a one-second window
        replies = [get(http, server) for _ in range(6)]
        assert [reply.status_code for reply in replies] == [200, 200, 200, 429, 429, 429]
        error = replies[-1].json()["errorList"]["error"][0]
        assert error == {"errorCode": "PER_SECOND_THRESHOLD",
                         "errorMessage": "HTTP requests are more than allowed per second"}  # no trackingId
        assert replies[-1].headers["X-Exl-Api-Remaining"] == replies[2].headers["X-Exl-Api-Remaining"]
        time.sleep(1 - time.time() % 1 + 0.01)
        assert get(http, server).status_code == 200  # a new window
        server.knobs.per_second = 0
        assert all(get(http, server).status_code == 200 for _ in range(10))


def test_daily_threshold_counts_down_and_persists(store: Store, http: requests.Session) -> None:
    with SandboxServer(store, api_key=KEY, daily_limit=4) as server:
        replies = [get(http, server, "/users/nobody") for _ in range(4)]
        assert [int(reply.headers["X-Exl-Api-Remaining"]) for reply in replies] == [3, 2, 1, 0]
        exhausted = get(http, server)
        assert exhausted.status_code == 429 and error_code(exhausted) == "DAILY_THRESHOLD"
        message = exhausted.json()["errorList"]["error"][0]["errorMessage"]
        assert message == "Daily API request threshold has been reached"
        assert exhausted.headers["X-Exl-Api-Remaining"] == "0"
    with SandboxServer(store, api_key=KEY, daily_limit=6) as restarted:  # the count is kept in the store
        assert [int(get(http, restarted).headers["X-Exl-Api-Remaining"]) for _ in range(2)] == [1, 0]
        restarted.knobs.daily_limit = 0
        assert int(get(http, restarted).headers["X-Exl-Api-Remaining"]) == 1_000_000 - 7


def test_latency_overlaps_between_concurrent_requests(store: Store) -> None:
    with SandboxServer(store, api_key=KEY, latency_ms=300) as server:
        def call(_: int) -> float:
            started = time.perf_counter()
            with requests.Session() as session:
                assert get(session, server).status_code == 200
            return time.perf_counter() - started

        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(5) as pool:
            durations = list(pool.map(call, range(5)))
        assert min(durations) >= 0.3
        assert time.perf_counter() - started < 1.2  # five in a row would take 1.5 s


def test_faults_give_5xx_and_broken_connections_and_ambiguous_writes(store: Store, http: requests.Session) -> None:
    outcomes: collections.Counter[str] = collections.Counter()
    pids = [f"FAULT{n:03d}" for n in range(40)]
    broken: list[str] = []
    with SandboxServer(store, api_key=KEY, fault_rate=1.0, seed=11) as server:
        for pid in pids:
            try:
                reply = http.post(server.base_url + "/users", params={"apikey": KEY, "format": "json"},
                                  json=new_user(pid), timeout=10)
            except requests.exceptions.ConnectionError:
                outcomes["connection"] += 1
                broken.append(pid)
            except requests.exceptions.ChunkedEncodingError:
                outcomes["truncated"] += 1
                broken.append(pid)
            else:
                assert reply.status_code in (500, 503) and error_code(reply) == "INTERNAL_SERVER_ERROR"
                assert reply.headers["X-Exl-Api-Remaining"]
                outcomes[str(reply.status_code)] += 1
                assert store.get(pid) is None  # a 5xx fault strikes before any processing
        server.knobs.fault_rate = 0.0
        assert get(http, server).status_code == 200
    assert outcomes["500"] and outcomes["503"] and outcomes["connection"] + outcomes["truncated"]
    created = [pid for pid in broken if store.get(pid) is not None]
    assert 0 < len(created) < len(broken)  # some broken replies hid a write that happened, some did not


def test_restart_on_the_same_file_keeps_users(tmp_path: Path, http: requests.Session) -> None:
    path = tmp_path / "alma.sqlite"
    with Store(path) as store, SandboxServer(store, api_key=KEY) as server:
        created = http.post(server.base_url + "/users", params={"apikey": KEY, "format": "json"},
                            json={**new_user("KEEPME"), "password": "Persist-Me-1"})
        assert created.status_code == 200
        first_port = server.port
    with Store(path) as store, SandboxServer(store, api_key=KEY) as server:
        assert server.port != 0 and server.base_url.endswith(f":{server.port}/almaws/v1")
        assert get(http, server, "/users/keepme").json()["last_name"] == "Keeper"
        auth = http.post(server.base_url + "/users/KEEPME", params={"apikey": KEY, "op": "auth"},
                         headers={"Exl-User-Pw": "Persist-Me-1"})
        assert auth.status_code == 204
    assert first_port


def test_repr_and_logs_hide_the_key(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    secret = f"secret-{uuid.uuid4().hex}"
    with caplog.at_level(logging.DEBUG), SandboxServer(store, api_key=secret) as server:
        with requests.Session() as session:
            assert session.get(server.base_url + "/users", params={"apikey": secret}).status_code == 200
        assert secret not in repr(server) and "***" in repr(server)
    server_side = [record for record in caplog.records if record.name.startswith(("almatools", "uvicorn"))]
    assert server_side and not any(secret in record.getMessage() for record in server_side)


def synthetic(n: int, start: int = 0) -> Iterator[dict]:
    for i in range(start, start + n):
        yield {
            "record_type": {"value": "PUBLIC", "desc": "Public"}, "primary_id": f"S{i:07d}",
            "first_name": f"First{i % 997}", "last_name": f"Last{i % 9973}", "password": "",
            "user_group": {"value": "UGRAD", "desc": "Undergraduate student"},
            "account_type": {"value": "EXTERNAL", "desc": "External"}, "external_id": "SIS",
            "contact_info": {"email": [{"email_address": f"s{i}@example.edu", "segment_type": "External",
                                        "email_type": [{"value": "school", "desc": "School"}]}]},
            "user_identifier": [{"value": f"BC{i:09d}", "id_type": {"value": "BARCODE", "desc": "Barcode"},
                                 "segment_type": "External"}],
            "loans": {"value": i % 3},
        }


def test_bulk_load_block_is_one_transaction_and_rebuilds_indexes(tmp_path: Path, http: requests.Session) -> None:
    path = tmp_path / "bulk.sqlite"
    with Store(path) as store:
        with pytest.raises(RuntimeError), store.bulk_load():
            store.insert_many(synthetic(500))
            raise RuntimeError("the generator failed")
        assert store.count() == 0
        with store.bulk_load():
            for start in range(0, 3000, 1000):  # as a generator's sink is called, batch by batch
                store.insert_many(synthetic(1000, start))
        with contextlib.closing(sqlite3.connect(path)) as db:
            indexes = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"users_by_last", "users_by_first", "ids_by_key"} <= indexes
        with SandboxServer(store, api_key=KEY) as server:
            assert get(http, server, "/users/bc000002999").json()["primary_id"] == "S0002999"
            assert get(http, server, order_by="first_name", limit=1).json()["user"][0]["first_name"] == "First0"


@pytest.mark.slow
def test_bulk_load_of_100k_users(store: Store, http: requests.Session, capsys: pytest.CaptureFixture[str]) -> None:
    started = time.perf_counter()
    assert store.insert_many(synthetic(100_000)) == 100_000
    loaded = time.perf_counter() - started
    with SandboxServer(store, api_key=KEY) as server:
        started = time.perf_counter()
        page = get(http, server, q="email~s77777@example.edu").json()
        searched = time.perf_counter() - started
        assert [user["primary_id"] for user in page["user"]] == ["S0077777"]
        assert get(http, server, "/users/bc000012345", expand="loans").json()["loans"]["value"] == 12345 % 3
        assert get(http, server, q="user_group~UGRAD", offset=50_000).json()["total_record_count"] == 100_000
    with capsys.disabled():
        print(f"\n[sandbox] insert_many: 100,000 users in {loaded:.1f} s; "
              f"one q search over HTTP in {searched * 1000:.0f} ms")
