"""AlmaClient over real HTTP against the sandbox: errors, paging quirks, retries, throttle, quota, secrecy."""

from __future__ import annotations

import logging
import uuid

import pytest
import requests

from almatools.client import AlmaClient
from almatools.errors import (
    AlmaConnectionError,
    AlmaError,
    AuthError,
    DuplicateError,
    InvalidRecordError,
    NotFoundError,
    QuotaExhaustedError,
    RateLimitError,
    ServerError,
    error_for,
)
from almatools.replies import alma_error_fields


def new_user(**overrides) -> dict:
    """A valid locally managed community borrower with a fresh id."""
    pid = overrides.pop("primary_id", f"CB{uuid.uuid4().int % 10**6:06d}")
    user = {
        "record_type": {"value": "PUBLIC"},
        "primary_id": pid,
        "first_name": "Test",
        "last_name": f"Patron{uuid.uuid4().hex[:6]}",
        "user_group": {"value": "COMMUNITY"},
        "account_type": {"value": "INTERNAL"},
        "external_id": "",
        "status": {"value": "ACTIVE"},
        "expiry_date": "2030-01-01Z",
        "purge_date": "2031-01-01Z",
        "contact_info": {"email": [{"email_address": f"{pid.lower()}@example.org", "preferred": True,
                                    "email_type": [{"value": "personal"}]}]},
    }
    user.update(overrides)
    return user


def some_primary_ids(client: AlmaClient, n: int, **fields) -> list[str]:
    return [u["primary_id"] for u in client.search_users(max_records=n, **(fields or {"user_group": "UGRAD"}))]


# -- errors ---------------------------------------------------------------------------------------

def test_not_found_by_any_identifier_and_by_type(client):
    with pytest.raises(NotFoundError) as err:
        client.get_user("no-such-user-42")
    assert err.value.status == 400 and err.value.code == "401861"
    with pytest.raises(NotFoundError) as err:
        client.get_user("no-such-user-42", user_id_type="BARCODE")
    assert err.value.code == "401890"
    assert client.find_user("no-such-user-42") is None


def test_wrong_key_is_an_auth_error(sandbox):
    with AlmaClient(api_key="wrong-key", base_url=sandbox.base_url) as alma:
        with pytest.raises(AuthError) as err:
            alma.get_user("anyone")
    assert err.value.code == "UNAUTHORIZED" and err.value.status == 400


def test_without_a_key_the_gateway_asks_for_one_and_nothing_is_retried(sandbox, knobs):
    # The client refuses an empty key itself; a proxy that strips the Authorization header leaves Alma
    # with none: the recorded GENERAL_ERROR "... Make sure you add an appropriate apikey ...".
    reply = requests.get(sandbox.base_url + "/users/anyone", headers={"Accept": "application/json"}, timeout=10)
    code, message, tracking = alma_error_fields(reply.status_code, reply.headers["Content-Type"], reply.content)
    assert (reply.status_code, code, tracking) == (400, "GENERAL_ERROR", None) and "apikey" in message
    assert error_for(reply.status_code, code, message) is AuthError


def test_a_read_only_key_reads_but_every_write_is_an_auth_error_sent_once(sandbox, knobs, client):
    some = some_primary_ids(client, 1)[0]
    knobs.read_only = True
    assert client.get_user(some)["primary_id"] == some
    calls = client.calls
    for write in (lambda: client.create_user(new_user()), lambda: client.update_user(some, {"job_description": "x"}),
                  lambda: client.delete_user(some)):
        with pytest.raises(AuthError) as err:
            write()
        assert err.value.code == "UNAUTHORIZED"
    assert client.calls - calls == 4  # POST, GET + PUT, DELETE: no retry, no look-up after the refused POST
    reply = requests.post(f"{sandbox.base_url}/users/{some}", params={"op": "auth", "apikey": sandbox.api_key},
                          headers={"Exl-User-Pw": "wrong"}, timeout=10)
    assert b"UNAUTHORIZED" not in reply.content  # authentication is not a write


def test_the_client_reads_xml_when_a_proxy_drops_the_accept_header(sandbox, knobs, client, caplog):
    # Alma answers XML to a request without Accept (the sandbox's drop_accept knob plays the proxy);
    # the client reads the same records from it (recorded XML user: tests/fixtures/alma, README).
    page_json = list(client.search_users(user_group="UGRAD", max_records=30))
    as_json = client.get_user(page_json[0]["primary_id"])
    rows_json = client.code_table("UserGroups")
    knobs.drop_accept = True
    with AlmaClient(api_key=sandbox.api_key, base_url=sandbox.base_url, per_second=500, backoff=0.01) as alma:
        with caplog.at_level(logging.WARNING, logger="almatools.client"):
            page_xml = list(alma.search_users(user_group="UGRAD", max_records=30))
            as_xml = alma.get_user(page_json[0]["primary_id"])
            rows_xml = alma.code_table("UserGroups")
            created = alma.create_user(new_user())
            with pytest.raises(NotFoundError) as err:  # an XML error body, read as before
                alma.get_user("no-such-user-42")
    assert [u["primary_id"] for u in page_xml] == [u["primary_id"] for u in page_json] and len(page_json) == 30
    assert as_xml["primary_id"] == as_json["primary_id"] and as_xml["user_group"] == as_json["user_group"]
    assert as_xml["user_identifier"] == as_json["user_identifier"] and as_xml["contact_info"] == as_json["contact_info"]
    assert [(r["code"], r["enabled"]) for r in rows_xml] == [(r["code"], r["enabled"]) for r in rows_json]
    assert created["primary_id"].startswith("CB") and err.value.code == "401861"
    assert "answered in XML although JSON was asked" in caplog.text


@pytest.mark.parametrize(("change", "code"), [
    ({"record_type": None}, "401664"),
    ({"user_group": {"value": "NOT_A_GROUP"}}, "401852"),
    ({"external_id": "SIS"}, "401853"),
    ({"account_type": {"value": "EXTERNAL"}}, "401854"),
    ({"account_type": {"value": "SOMETIMES"}}, "401857"),
    ({"password": "short"}, "500038"),
])
def test_invalid_records_are_refused_with_alma_codes(client, change, code):
    user = new_user()
    user.update(change)
    user = {k: v for k, v in user.items() if v is not None}
    with pytest.raises(InvalidRecordError) as err:
        client.create_user(user)
    assert err.value.code == code and err.value.status == 400
    assert client.find_user(user["primary_id"]) is None


def test_duplicate_identifier_ignores_case(client):
    created = client.create_user(new_user())
    with pytest.raises(DuplicateError) as err:
        client.create_user(new_user(primary_id=created["primary_id"].lower()))
    assert err.value.code == "401851"


def test_create_get_update_delete_round_trip(client):
    sent = new_user()
    created = client.create_user(sent)
    assert created["primary_id"] == sent["primary_id"] and created["password"] == ""
    fetched = client.get_user(sent["primary_id"].lower())  # all_unique ignores case
    assert fetched["last_name"] == sent["last_name"]

    def change_email(record):
        record["contact_info"]["email"][0]["email_address"] = "moved@example.org"

    updated = client.update_user(sent["primary_id"], change_email)
    assert updated["contact_info"]["email"][0]["email_address"] == "moved@example.org"
    assert updated["first_name"] == "Test" and updated["user_group"]["value"] == "COMMUNITY"  # swap-all kept the rest
    client.delete_user(sent["primary_id"])
    assert client.find_user(sent["primary_id"]) is None


def test_changing_the_sis_profile_code_is_refused(client):
    sis_user = client.get_user(some_primary_ids(client, 1)[0])
    assert sis_user["account_type"]["value"] == "EXTERNAL"
    with pytest.raises(InvalidRecordError) as err:
        client.update_user(sis_user["primary_id"], {"external_id": "ANOTHER_PROFILE"})
    assert err.value.code == "401858"


def test_code_tables(client):
    groups = {row["code"] for row in client.code_table("UserGroups")}
    assert {"UGRAD", "FACULTY", "COMMUNITY"} <= groups
    with pytest.raises(AlmaError):
        client.code_table("NoSuchTable")


# -- paging ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("quirk", ["overstate", "minus_one"])
def test_paging_survives_a_wrong_total(client, knobs, quirk):
    expected = [u["primary_id"] for u in client.search_users(user_group="ALUMNI", page_size=7)]
    assert len(expected) > 14  # several pages
    knobs.total_quirk = quirk
    got = [u["primary_id"] for u in client.search_users(user_group="ALUMNI", page_size=7)]
    assert got == expected


def test_no_hits_and_count(client):
    search = client.search_users(last_name="Zzyzxqvw")
    assert list(search) == [] and search.count() == 0
    alumni = client.search_users(user_group="ALUMNI")
    assert alumni.count() == len(list(alumni)) > 0
    frame = alumni.to_frame()
    assert list(frame.columns[:3]) == ["primary_id", "first_name", "last_name"] and len(frame) == alumni.count()


def test_brief_entries_link_to_the_full_record(client):
    entry = next(iter(client.search_users(user_group="FACULTY")))
    assert entry["link"].endswith(f"/almaws/v1/users/{entry['primary_id']}")
    assert "contact_info" not in entry and "user_identifier" not in entry


# -- retries, throttle, faults --------------------------------------------------------------------

def test_per_second_limit_is_retried_then_raised(sandbox, knobs):
    knobs.per_second = 2
    ids = [f"x{i}" for i in range(6)]
    with AlmaClient(api_key=sandbox.api_key, base_url=sandbox.base_url, per_second=1000, max_retries=0) as eager:
        with pytest.raises(RateLimitError) as err:
            for uid in ids:
                eager.find_user(uid)
    assert err.value.code == "PER_SECOND_THRESHOLD" and err.value.status == 429
    with AlmaClient(api_key=sandbox.api_key, base_url=sandbox.base_url, per_second=1000, backoff=0.3) as patient:
        assert [patient.find_user(uid) for uid in ids] == [None] * 6


def test_throttle_keeps_under_the_server_limit(sandbox, knobs):
    knobs.per_second = 10
    with AlmaClient(api_key=sandbox.api_key, base_url=sandbox.base_url, per_second=8, max_retries=0) as alma:
        users = list(alma.fetch_users(some_primary_ids(alma, 24), workers=6))
    assert len(users) == 24  # no 429 although six threads pulled at once


def test_daily_threshold_is_never_retried(sandbox, knobs):
    with AlmaClient(api_key=sandbox.api_key, base_url=sandbox.base_url, per_second=1000, backoff=0.01) as alma:
        alma.refresh_remaining()
        knobs.daily_limit = 1  # this run has made more calls than that today
        before = alma.calls
        with pytest.raises(QuotaExhaustedError) as err:
            alma.get_user("anyone")
        assert alma.calls == before + 1
        assert err.value.code == "DAILY_THRESHOLD" and err.value.status == 429


def test_remaining_is_read_and_a_batch_is_refused_up_front(sandbox, knobs):
    knobs.daily_limit = 10_000_000
    with AlmaClient(api_key=sandbox.api_key, base_url=sandbox.base_url, per_second=1000) as alma:
        left = alma.refresh_remaining()
        assert left is not None and 0 < left < 10_000_000
        alma.find_user("nobody")
        assert alma.remaining < left
        alma.check_budget(1000, reserve=100)
        with pytest.raises(QuotaExhaustedError, match="left today"):
            alma.check_budget(alma.remaining, reserve=500)


def test_server_errors_are_retried_for_reads(sandbox, knobs):
    knobs.fault_rate = 1.0
    with AlmaClient(api_key=sandbox.api_key, base_url=sandbox.base_url, per_second=1000, backoff=0.001,
                    max_retries=3) as alma:
        with pytest.raises((ServerError, AlmaConnectionError)):
            alma.get_user("anyone")
        assert alma.calls == 4


def test_fetch_2000_with_faults_and_a_low_limit_loses_and_duplicates_nothing(sandbox, knobs):
    with AlmaClient(api_key=sandbox.api_key, base_url=sandbox.base_url, per_second=1000) as setup:
        wanted = [u["primary_id"] for u in setup.search_users(max_records=2000, order_by="primary_id",
                                                                  general_info="ACTIVE")]
    assert len(wanted) == 2000
    knobs.fault_rate = 0.10
    knobs.per_second = 150
    with AlmaClient(api_key=sandbox.api_key, base_url=sandbox.base_url, per_second=200, backoff=0.02,
                    max_retries=8, workers=8) as alma:
        got = [u["primary_id"] for u in alma.fetch_users(wanted)]
    assert got == wanted  # same order, none lost, none twice


def test_ambiguous_post_creates_nobody_twice(sandbox, knobs):
    knobs.fault_rate = 0.4
    sent = [new_user() for _ in range(30)]
    with AlmaClient(api_key=sandbox.api_key, base_url=sandbox.base_url, per_second=1000, backoff=0.005,
                    max_retries=12) as alma:
        created = [alma.create_user(u) for u in sent]
        knobs.fault_rate = 0.0
        for user, stored in zip(sent, created, strict=True):
            assert stored["primary_id"] == user["primary_id"]
            hits = list(alma.search_users(last_name=user["last_name"]))
            assert [h["primary_id"] for h in hits] == [user["primary_id"]]


def test_a_lost_post_is_not_resent_blindly(sandbox, knobs):
    # With every call failing, a POST whose connection broke is not repeated: it raises as ambiguous
    # (or as a server error), and the client makes no second POST without looking first.
    knobs.fault_rate = 1.0
    with AlmaClient(api_key=sandbox.api_key, base_url=sandbox.base_url, per_second=1000, backoff=0.001,
                    max_retries=0) as alma:
        with pytest.raises((AlmaConnectionError, ServerError)) as err:
            alma.request("POST", "/users", json=new_user())
        assert alma.calls == 1
    if isinstance(err.value, AlmaConnectionError):
        assert err.value.ambiguous


@pytest.mark.parametrize("retries", [0, 2])
def test_a_lost_connection_warns_only_of_the_retries_it_makes(retries, caplog):
    # A notebook shows the client's warnings: "retrying" must be true, and the last failure is the exception.
    with caplog.at_level("DEBUG", logger="almatools.client"), \
            AlmaClient(api_key="k", base_url="http://127.0.0.1:9/almaws/v1", max_retries=retries, backoff=0.001) as alma:
        with pytest.raises(AlmaConnectionError):
            alma.get_user("anyone")
    said = [(r.levelname, r.getMessage()) for r in caplog.records if "no reply" in r.getMessage()]
    assert said == [("WARNING", "GET /users/anyone: no reply (ConnectionError), retrying")] * retries + [
        ("DEBUG", "GET /users/anyone: no reply (ConnectionError)")]


def test_unreachable_server_is_a_clear_connection_error():
    with AlmaClient(api_key="k", base_url="http://127.0.0.1:9/almaws/v1", max_retries=1, backoff=0.001) as alma:
        with pytest.raises(AlmaConnectionError, match="could not be reached") as err:
            alma.create_user(new_user())
    assert err.value.ambiguous is False


# -- dry run and secrecy --------------------------------------------------------------------------

def test_dry_run_records_writes_and_sends_none(sandbox):
    with AlmaClient(api_key=sandbox.api_key, base_url=sandbox.base_url, per_second=1000, dry_run=True) as alma:
        user = new_user(password="Correct-Horse-42")
        alma.create_user(user)
        alma.delete_user("whoever")
        assert [str(w) for w in alma.planned_writes] == [f"POST /users (primary_id={user['primary_id']})",
                                                         "DELETE /users/whoever"]
        assert "Correct-Horse-42" not in repr(alma.planned_writes)
        assert alma.find_user(user["primary_id"]) is None


def test_the_key_never_shows(sandbox, knobs, caplog):
    caplog.set_level(logging.DEBUG)
    texts = []
    with AlmaClient(api_key=sandbox.api_key, base_url=sandbox.base_url, per_second=1000, backoff=0.001,
                    max_retries=1) as alma:
        texts.append(repr(alma))
        for action in (lambda: alma.get_user("nobody"), lambda: alma.create_user(new_user(password="x")),
                       lambda: alma.code_table("Nope")):
            with pytest.raises(AlmaError) as err:
                action()
            texts += [str(err.value), repr(err.value), repr(err.value.__cause__)]
        knobs.fault_rate = 1.0
        with pytest.raises(AlmaError) as err:
            alma.get_user("nobody")
        texts += [str(err.value), repr(err.value.__cause__), str(err.value.__cause__)]
    with AlmaClient(api_key="wrong-" + sandbox.api_key, base_url=sandbox.base_url) as bad:
        texts.append(repr(bad))
        with pytest.raises(AuthError) as err:
            bad.get_user("x")
        texts.append(str(err.value))
    texts += [r.getMessage() for r in caplog.records]
    assert caplog.records  # the client did log
    assert not [t for t in texts if sandbox.api_key in t]


def test_identifiers_with_a_slash_round_trip(client):
    # Alma ids may hold "/" (a typed-in "CB/211926"); the client encodes it and the lookup still works.
    user = client.create_user(new_user(primary_id="CB/" + uuid.uuid4().hex[:6]))
    assert client.get_user(user["primary_id"])["primary_id"] == user["primary_id"]
    client.delete_user(user["primary_id"])
    assert client.find_user(user["primary_id"]) is None


def test_analytics_users_report_pages_through_to_every_user(client, sandbox):
    from almatools.sandbox.analytics import USERS_REPORT_PATH

    rows = list(client.analytics_rows(USERS_REPORT_PATH, limit=1000))
    assert len(rows) == sandbox.store.count()
    assert len({r["Primary Identifier"] for r in rows}) == len(rows)
    some = next(r for r in rows if r["User Group Code"] == "ALUMNI")
    user = client.get_user(some["Primary Identifier"])
    assert some["Last Name"] == user["last_name"] and some["Account Type"] == user["account_type"]["value"]
    assert all("Middle Name" in r for r in rows)  # empty cells come back as "" under their heading


def test_analytics_wrong_path_fails_at_once(client):
    with pytest.raises(ServerError, match="Path not found"):
        list(client.analytics_rows("/shared/Nowhere/Reports/Nothing"))
    assert client.calls == 1


# -- concurrent paging, slow commits ---------------------------------------------------------------

def test_later_pages_are_fetched_up_to_the_count_and_no_further(sandbox, client):
    search = client.search_users("ALL~ACTIVE", order_by="primary_id", page_size=100)
    total = search.count()
    assert total > 300
    before = client.calls
    got = [u["primary_id"] for u in search.records()]
    assert client.calls - before == -(-total // 100)  # e.g. 30 calls for 3,000 users, not 31
    assert len(got) == total == len(set(got))
    sequential = []
    for offset in range(0, total, 100):  # the same pages one by one: same users, same order
        page = client.request("GET", "/users", params={"q": "ALL~ACTIVE", "order_by": "primary_id", "limit": 100,
                                                       "offset": offset})
        sequential += [u["primary_id"] for u in page.get("user", [])]
    assert got == sequential


def test_an_overstated_count_costs_at_most_one_empty_page(client, knobs):
    exact = client.search_users(user_group="ALUMNI", page_size=7)
    wanted = [u["primary_id"] for u in exact]
    knobs.total_quirk = "overstate"  # 5 more than there are: one page past the end comes back empty
    before = client.calls
    got = [u["primary_id"] for u in client.search_users(user_group="ALUMNI", page_size=7)]
    assert got == wanted
    assert client.calls - before <= -(-(len(wanted) + 5) // 7)


def test_max_records_stops_the_paging(client):
    before = client.calls
    got = list(client.search_users("ALL~ACTIVE", page_size=10, max_records=25))
    assert len(got) == 25 and client.calls - before == 3


def test_a_slow_commit_is_not_a_false_already_exists(sandbox, knobs, caplog):
    # The first POST passes its checks, then takes 1.5 s to commit; the client gives up after 1.2 s,
    # looks the user up while the commit is still pending (not found), and posts again; that POST
    # gets 401851 for the kit's own record, which the client recognises and returns.
    knobs.latency_ms, knobs.commit_delay_ms = 600, 1500
    user = new_user(user_identifier=[{"value": f"BC-{uuid.uuid4().hex[:8]}", "id_type": {"value": "BARCODE"}}])
    caplog.set_level(logging.INFO, logger="almatools.client")
    with AlmaClient(api_key=sandbox.api_key, base_url=sandbox.base_url, per_second=1000, backoff=0.01,
                    timeout=1.2) as alma:
        created = alma.create_user(user)
        knobs.latency_ms = knobs.commit_delay_ms = 0
        assert created["primary_id"] == user["primary_id"] and created["last_name"] == user["last_name"]
        assert [h["primary_id"] for h in alma.search_users(last_name=user["last_name"])] == [user["primary_id"]]
    assert "the earlier attempt had created the user" in caplog.text

