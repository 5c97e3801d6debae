"""Recorded real Alma replies (tests/fixtures/alma, sources in its README) replayed at the kit.

At the client over real HTTP (a replay server on a loopback port answers each route with a recorded
body), and at the readers (models, the patron table, the sources, the Analytics parser). Each behaviour
is one function; ``test_every_behaviour`` runs them all and prints ``N/N replayed behaviours handled``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from _replay import FIXTURES, ReplayServer, Reply

from almatools.analytics import parse_report_page
from almatools.client import AlmaClient
from almatools.errors import (
    AlmaError,
    AuthError,
    DuplicateError,
    InvalidRecordError,
    NotFoundError,
    QuotaExhaustedError,
    RateLimitError,
    ReportNotReadyError,
    ServerError,
)
from almatools.models import User, user_from_xml_bytes, user_to_xml_bytes, users_to_xml_bytes
from almatools.quality.frame import users_frame

FULL_USERS = ("user_full_external_pul_bbird.json", "user_full_internal_pul_bc123456789.json",
              "user_full_internal_scr.json")
REPORT = "/shared/Some University/Reports/Users"


def fixture_json(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def client_of(alma: ReplayServer, **options) -> AlmaClient:
    settings = {"per_second": 500, "backoff": 0.01, "max_retries": 3, "timeout": 10}
    settings.update(options)
    return AlmaClient(api_key="replay-key", base_url=alma.base_url, **settings)


def no_markup(err: AlmaError) -> None:
    """The error says what happened in words: no raw JSON, XML or HTML in its text."""
    text = str(err)
    assert not any(mark in text for mark in ("{\"", "<html", "<!DOCTYPE", "<web_service_result", "errorList"))


BEHAVIOURS: dict[str, Callable[[ReplayServer], None]] = {}


def behaviour(fn: Callable[[ReplayServer], None]) -> Callable[[ReplayServer], None]:
    BEHAVIOURS[fn.__name__] = fn
    return fn


# -- users at the client ------------------------------------------------------------------------

@behaviour
def full_users_come_back_as_recorded(alma: ReplayServer) -> None:
    for name in FULL_USERS:
        alma.route("GET", f"/users/{name}", Reply.file(name))
    with client_of(alma) as client:
        for name in FULL_USERS:
            assert client.get_user(name) == fixture_json(name)


@behaviour
def brief_list_pages_by_the_count(alma: ReplayServer) -> None:
    alma.route("GET", "/users", Reply.file("users_brief_list.json"))
    with client_of(alma) as client:
        entries = list(client.search_users(last_name="Banan"))
        frame = client.search_users(last_name="Banan").to_frame()
    assert [e["primary_id"] for e in entries] == ["1234567"] and "email" not in entries[0]
    assert len(alma.calls("GET", "/users")) == 2  # one call per search: the count (1) says there is no more
    assert frame.loc[0, "status"] == "ACTIVE" and frame.loc[0, "link"].endswith("/users/1234567")


@behaviour
def a_contact_without_primary_id_is_listed(alma: ReplayServer) -> None:
    alma.route("GET", "/users", Reply.file("users_brief_contact_no_primary_id.json"))
    with client_of(alma) as client:
        (entry,) = client.search_users(last_name="Jonas")
    assert entry["primary_id"].startswith("no primary id (")


@behaviour
def not_found_401861_is_not_found(alma: ReplayServer) -> None:
    alma.route("GET", "/users/ogrouch", Reply.file("error_401861_not_found.json", 400))
    with client_of(alma) as client:
        with pytest.raises(NotFoundError) as err:
            client.get_user("ogrouch")
        assert client.find_user("ogrouch") is None
    assert (err.value.status, err.value.code) == (400, "401861")
    assert err.value.message == "User with identifier ogrouch was not found."
    assert err.value.tracking_id == "E02-2001144552-5DTGF-AWAE1595806974"
    no_markup(err.value)


@behaviour
def a_wrapped_404_not_found_is_not_found(alma: ReplayServer) -> None:
    alma.route("GET", "/users/gone", Reply.file("error_wrapped_not_found_404.json", 404))
    with client_of(alma) as client:
        with pytest.raises(NotFoundError) as err:
            client.get_user("gone")
    assert (err.value.status, err.value.code) == (404, "NOT_FOUND")
    assert err.value.tracking_id is None  # Alma wrote "unknown"
    assert err.value.message == "Alma answered NOT_FOUND without a message"
    assert len(alma.calls("GET", "/users/gone")) == 1
    no_markup(err.value)


@behaviour
def a_wrapped_bad_request_names_the_field(alma: ReplayServer) -> None:
    alma.route("POST", "/users", Reply.file("error_wrapped_bad_request.json", 400))
    with client_of(alma) as client:
        with pytest.raises(InvalidRecordError) as err:
            client.create_user({"primary_id": "X1", "first_name": "A", "last_name": "B"})
    assert (err.value.status, err.value.code) == (400, "BAD_REQUEST")
    assert err.value.message == ("Alma could not read the value of contact_info.address[0].start_date in the "
                                 "record sent (was java.lang.IllegalArgumentException)")
    assert err.value.tracking_id == "E01-1407051151-ELFTC-JME1544666901"
    assert len(alma.calls("POST", "/users")) == 1
    no_markup(err.value)


@behaviour
def a_mandatory_field_error_in_json_and_xml(alma: ReplayServer) -> None:
    alma.route("POST", "/users", Reply.file("error_401664_mandatory.json", 400),
               Reply.file("error_401664_mandatory.xml", 400))
    with client_of(alma) as client:
        for tracking in ("E01-2807130310-LFIHK-AWAE210516550", "E02-2807130150-8OWYS-AWAE533535741"):
            with pytest.raises(InvalidRecordError) as err:
                client.create_user({"primary_id": "X2"})
            assert (err.value.code, err.value.message) == ("401664", "Mandatory field is missing: library")
            assert err.value.tracking_id == tracking
            no_markup(err.value)


@behaviour
def other_codes_keep_code_and_message(alma: ReplayServer) -> None:
    alma.route("GET", "/bibs/banana", Reply.file("error_402204_bad_request.json", 400))
    alma.route("GET", "/bibs/1234", Reply.file("error_402203_bad_request.xml", 400))
    with client_of(alma) as client:
        for path, code, message in (("/bibs/banana", "402204", "Input parameters mmsId banana is not numeric."),
                                    ("/bibs/1234", "402203", "Input parameters mmsId 1234 is not valid.")):
            with pytest.raises(AlmaError) as err:
                client.request("GET", path)
            assert type(err.value) is AlmaError and (err.value.code, err.value.message) == (code, message)
            assert err.value.tracking_id and len(alma.calls("GET", path)) == 1


@behaviour
def unauthorized_in_xml_is_an_auth_error(alma: ReplayServer) -> None:
    alma.route("GET", "/users/anyone", Reply.file("error_unauthorized.xml", 400))
    with client_of(alma) as client:
        with pytest.raises(AuthError) as err:
            client.get_user("anyone")
    assert (err.value.status, err.value.code, err.value.tracking_id) == (400, "UNAUTHORIZED", None)
    assert err.value.message == "API-key not defined or not configured to allow this API."
    assert len(alma.calls("GET", "/users/anyone")) == 1


@behaviour
def the_per_second_threshold_is_waited_out(alma: ReplayServer) -> None:
    alma.route("GET", "/users/busy", Reply.file("error_per_second_threshold.json", 429),
               Reply.file("error_per_second_threshold.json", 429), Reply.file("user_full_internal_scr.json"))
    alma.route("GET", "/users/always-busy", Reply.file("error_per_second_threshold.json", 429))
    with client_of(alma) as client:
        assert client.get_user("busy")["primary_id"] == "12345"
        with pytest.raises(RateLimitError) as err:
            client.get_user("always-busy")
    assert len(alma.calls("GET", "/users/busy")) == 3 and len(alma.calls("GET", "/users/always-busy")) == 4
    assert err.value.code == "PER_SECOND_THRESHOLD" and err.value.tracking_id is None
    assert err.value.message.startswith("HTTP requests are more than allowed per second.")


@behaviour
def the_daily_threshold_is_never_retried(alma: ReplayServer) -> None:
    alma.route("GET", "/users/late", Reply.file("reconstructed_error_daily_threshold.json", 429))
    with client_of(alma) as client:
        with pytest.raises(QuotaExhaustedError) as err:
            client.get_user("late")
    assert err.value.code == "DAILY_THRESHOLD" and len(alma.calls("GET", "/users/late")) == 1


@behaviour
def a_gateway_html_page_is_a_server_error_in_words(alma: ReplayServer) -> None:
    alma.route("GET", "/users/flaky", Reply.file("reconstructed_gateway_502.html", 502),
               Reply.file("user_full_internal_scr.json"))
    alma.route("GET", "/users/down", Reply.file("reconstructed_gateway_503.html", 503))
    alma.route("GET", "/users/wrong-host", Reply.file("reconstructed_gateway_401.html", 401))
    with client_of(alma) as client:
        assert client.get_user("flaky")["primary_id"] == "12345"
        with pytest.raises(ServerError) as down:
            client.get_user("down")
        with pytest.raises(AuthError) as wrong:
            client.get_user("wrong-host")
    assert down.value.status == 503 and down.value.code is None
    assert "503 Service Unavailable" in down.value.message and len(alma.calls("GET", "/users/down")) == 4
    assert "HTTP Status 401" in wrong.value.message
    no_markup(down.value)
    no_markup(wrong.value)


@behaviour
def a_code_table_reads_its_rows(alma: ReplayServer) -> None:
    alma.route("GET", "/conf/code-tables/systemJobStatus", Reply.file("code_table_scr.json"))
    with client_of(alma) as client:
        rows = client.code_table("systemJobStatus")
        assert client.code_table("systemJobStatus") is rows  # cached
    assert len(rows) == 14 and rows[0] == {"code": "QUEUED", "description": "Queued", "default": False,
                                           "enabled": True}
    assert len(alma.calls("GET", "/conf/code-tables/systemJobStatus")) == 1


# -- more recorded replies: keys, duplicates, XML where JSON was asked, users looked up by barcode --------

MORE_USERS = ("user_full_internal_mlib_jbister.json", "user_full_internal_pul_by_barcode.json",
              "user_same_scrubbed_id_pul_cmonster.json")
NO_APIKEY = "A Gateway error has occurred - Make sure you add an appropriate apikey as a parameter or a header."


@behaviour
def a_taken_primary_id_in_lower_case_xml_is_a_duplicate(alma: ReplayServer) -> None:
    # Tags in lower case and the tracking id inside the message, after a line break: the code, message
    # and tracking id were all lost before (an AlmaError "Alma answered without a message").
    alma.route("POST", "/users", Reply.file("error_401851_primary_id_kth.xml", 400))
    with client_of(alma) as client:
        with pytest.raises(DuplicateError) as err:
            client.create_user({"primary_id": "alma0005@almakth.se", "first_name": "A", "last_name": "B"})
    assert (err.value.status, err.value.code) == (400, "401851")
    assert err.value.message == "User with identifier alma0005@almakth.se of type Primary id already exists."
    assert err.value.tracking_id == "E02-2005081805-4QVEB-AWAE2122010420"
    assert len(alma.calls("POST", "/users")) == 1 and alma.calls("GET", "/users/alma0005@almakth.se") == []
    no_markup(err.value)


@behaviour
def a_call_without_an_apikey_is_an_auth_error_and_not_retried(alma: ReplayServer) -> None:
    # The gateway's GENERAL_ERROR asking for an apikey; its HTTP status was not recorded, so both a
    # 400 and a 500 are served: neither is retried (no retry can add a key), both say what to fix.
    alma.route("GET", "/users/a", Reply.file("error_general_error_no_apikey.xml", 400))
    alma.route("GET", "/users/b", Reply.file("error_general_error_no_apikey.xml", 500))
    with client_of(alma) as client:
        for path in ("/users/a", "/users/b"):
            with pytest.raises(AuthError) as err:
                client.request("GET", path)
            assert (err.value.code, err.value.message, err.value.tracking_id) == ("GENERAL_ERROR", NO_APIKEY, None)
            assert len(alma.calls("GET", path)) == 1
            no_markup(err.value)


@behaviour
def a_key_refused_on_a_write_is_an_auth_error_without_a_look_up(alma: ReplayServer) -> None:
    # The recorded UNAUTHORIZED is for a key not configured for the API; a read-only key on a write is
    # refused the same way by the reference's reading (alma-api.md §1): no retry, and no look-up, since
    # nothing can have been created.
    alma.route("POST", "/users", Reply.file("error_unauthorized.xml", 400))
    alma.route("PUT", "/users/x1", Reply.file("error_unauthorized.xml", 400))
    with client_of(alma) as client:
        with pytest.raises(AuthError):
            client.create_user({"primary_id": "x1", "first_name": "A", "last_name": "B"})
        with pytest.raises(AuthError):
            client.put_user("x1", {"primary_id": "x1"})
    assert len(alma.calls("POST", "/users")) == 1 and len(alma.calls("PUT", "/users/x1")) == 1
    assert alma.calls("GET", "/users/x1") == []


@behaviour
def the_devnet_not_found_reply_also_counts_the_quota(alma: ReplayServer) -> None:
    alma.route("GET", "/users/fdsa", Reply.file("error_401861_devnet_blog.json", 400,
                                               **{"X-Exl-Api-Remaining": "8996176"}))
    with client_of(alma) as client:
        assert client.find_user("fdsa") is None
        assert client.remaining == 8996176  # the header of an error reply counts too
        with pytest.raises(NotFoundError) as err:
            client.get_user("fdsa")
    assert err.value.message == "User with identifier fdsa was not found."
    assert err.value.tracking_id == "E01-1312124118-MORQS-AWAE1344225209"


@behaviour
def the_documented_per_second_reply_is_waited_out(alma: ReplayServer) -> None:
    alma.route("GET", "/users/busy", Reply.file("error_per_second_threshold_devnet.json", 429),
               Reply.file("user_full_internal_pul_by_barcode.json"))
    alma.route("GET", "/users/jammed", Reply.file("error_per_second_threshold_devnet.json", 429))
    with client_of(alma) as client:
        assert client.get_user("busy")["primary_id"] == "ID12345"
        with pytest.raises(RateLimitError) as err:
            client.get_user("jammed")
    assert len(alma.calls("GET", "/users/busy")) == 2 and len(alma.calls("GET", "/users/jammed")) == 4
    assert err.value.tracking_id == "E01-0101190932-VOBYO-AWAE1554214409"


@behaviour
def a_user_in_xml_where_json_was_asked_is_read_as_the_same_record(alma: ReplayServer) -> None:
    # Before: AlmaError "Alma's reply was not JSON", and the record was lost to the run.
    alma.route("GET", "/users/johns", Reply.file("user_sample_xml_tul_johns.xml"))
    alma.route("PUT", "/users/johns", Reply.json('{"primary_id": "johns"}'))
    alma.route("GET", "/users/page", Reply.file("reconstructed_gateway_401.html", 200))
    with client_of(alma) as client:
        user = client.get_user("johns")
        client.update_user("johns", {"job_description": "Cataloger"})
        with pytest.raises(AlmaError) as err:
            client.request("GET", "/users/page")
    assert user == user_from_xml_bytes((FIXTURES / "user_sample_xml_tul_johns.xml").read_bytes())
    assert user["user_identifier"] == [{"id_type": {"value": "02", "desc": "User ID"}, "value": "johns02"}]
    assert [b["block_note"] for b in user["user_block"]] == ["Slept and snored in the library"]
    assert User(user).primary_id == "johns" and len(alma.calls("PUT", "/users/johns")) == 1
    # a page that is neither JSON nor a user says so in words, without its markup
    assert "error page (HTTP Status 401" in err.value.message and err.value.status == 200
    no_markup(err.value)


@behaviour
def a_user_found_by_barcode_is_updated_under_its_primary_id(alma: ReplayServer) -> None:
    alma.route("GET", "/users/22999000883100", Reply.file("user_full_internal_pul_by_barcode.json"))
    alma.route("PUT", "/users/ID12345", Reply.file("user_full_internal_pul_by_barcode.json"))
    with client_of(alma) as client:
        client.update_user("22999000883100", {"job_description": "x"}, override=["user_group"])
    (put,) = alma.calls("PUT", "/users/ID12345")
    assert put.query == {"override": ["user_group"]} and alma.calls("PUT", "/users/22999000883100") == []


@behaviour
def an_overstated_count_ends_at_the_first_empty_page(alma: ReplayServer) -> None:
    # Alma said 5 and sent 3 (limit=5, q=ALL~linena@uio.no); the next page holds no "user" key at all.
    def page(query: dict[str, list[str]]) -> Reply:
        if int(query.get("offset", ["0"])[0]) == 0:
            return Reply.file("users_brief_overstated_count_scr7.json")
        return Reply.json('{"total_record_count": 5}')

    alma.route("GET", "/users", page)
    with client_of(alma) as client:
        search = client.search_users(ALL="linena@uio.no", page_size=5)
        entries = list(search)
        assert search.count() == 5
    assert [e["primary_id"] for e in entries] == ["li", "n003548402", "N003548424"]  # case kept, none dropped
    calls = alma.calls("GET", "/users")
    assert [c.query["q"] for c in calls] == [["ALL~linena@uio.no"]] * 3
    assert [(c.query["offset"], c.query["limit"]) for c in calls] == [(["0"], ["5"]), (["3"], ["5"]), (["0"], ["0"])]


@behaviour
def more_real_users_come_back_read_and_round_trip(alma: ReplayServer) -> None:
    for name in MORE_USERS:
        alma.route("GET", f"/users/{name}", Reply.file(name))
    with client_of(alma) as client:
        users = [client.get_user(name) for name in MORE_USERS]
    assert users == [fixture_json(name) for name in MORE_USERS]
    for user in users:  # "desc": null, "value": null, null lines, no dates, no identifiers
        assert _without_empty_codes(user_from_xml_bytes(user_to_xml_bytes(user))) == _without_empty_codes(user)
    frame = users_frame(users)
    assert list(frame["primary_id"]) == ["jbister", "ID12345", "100000000"]
    assert frame.loc[0, "identifiers"] == "" and frame.loc[0, "expiry_date"] == ""
    assert frame.loc[1, "identifier_values"].split(";") == ["22999000883100", "id12345"]
    assert frame.loc[2, "identifiers"] == "BARCODE=00000000000000;NET_ID=cmonster"
    assert User(users[2]).is_sis_managed(["SIS"]) and User(users[2]).statistics == ["23"]


# -- Analytics at the client --------------------------------------------------------------------

def _report_route(alma: ReplayServer, first: list[Reply], later: list[Reply]) -> None:
    first, later = list(first), list(later)

    def answer(query: dict[str, list[str]]) -> Reply:
        queue = later if "token" in query else first
        return queue.pop(0) if len(queue) > 1 else queue[0]

    alma.route("GET", "/analytics/reports", answer)


@behaviour
def a_report_still_being_prepared_is_waited_for(alma: ReplayServer) -> None:
    loading = Reply.file("analytics_still_loading.xml")
    _report_route(alma, [loading, loading, Reply.file("analytics_page1_scr_excerpt.xml")],
                  [Reply.file("analytics_page2_scr_excerpt.xml"), Reply.file("analytics_page3_scr_excerpt.xml")])
    waits: list[tuple[int, float]] = []
    with client_of(alma) as client:
        rows = list(client.analytics_rows(REPORT, on_wait=lambda n, s: waits.append((n, s))))
    calls = alma.calls("GET", "/analytics/reports")
    assert [c.query.get("path") for c in calls[:3]] == [[REPORT]] * 3  # asked again with the path, no token
    token = parse_report_page((FIXTURES / "analytics_page1_scr_excerpt.xml").read_bytes()).token
    assert [c.query.get("token") for c in calls[3:]] == [[token], [token]]
    assert [n for n, _ in waits] == [1, 2] and waits[1][1] > waits[0][1]  # back-off grows
    assert len(rows) == 6 and rows[0] == {"Column2": "m", "Column3": "2016-08-18T14:39:01",
                                          "Column4": "ubo0275278######47BIBSYS_UBO", "Column5": "Unknown"}
    assert rows[2]["Column1"] == "Elkins, James" and rows[-1]["Column1"] == "Parmentier, Stephan"


@behaviour
def a_report_that_never_gets_ready_raises_after_the_bound(alma: ReplayServer) -> None:
    _report_route(alma, [Reply.file("analytics_still_loading.xml")], [Reply.file("analytics_still_loading.xml")])
    with client_of(alma) as client:
        with pytest.raises(ReportNotReadyError) as err:
            list(client.analytics_rows(REPORT, still_running_waits=3, max_wait=0.02))
    assert len(alma.calls("GET", "/analytics/reports")) == 4
    assert "still being prepared after 3 waits" in err.value.message and REPORT in err.value.message


@behaviour
def a_wrong_report_path_is_not_retried(alma: ReplayServer) -> None:
    _report_route(alma, [Reply.file("analytics_path_not_found.xml", 500)], [])
    with client_of(alma) as client:
        with pytest.raises(ServerError) as err:
            list(client.analytics_rows("/test/path"))
    assert err.value.message == "Path not found (/test/path)" and err.value.code == "INTERNAL_SERVER_ERROR"
    assert len(alma.calls("GET", "/analytics/reports")) == 1


@behaviour
def no_more_rows_ends_the_report(alma: ReplayServer) -> None:
    _report_route(alma, [Reply.file("analytics_page1_scr_excerpt.xml")], [Reply.file("analytics_no_more_rows.xml", 400)])
    with client_of(alma) as client:
        rows = list(client.analytics_rows(REPORT))
    assert len(rows) == 2 and len(alma.calls("GET", "/analytics/reports")) == 2


@behaviour
def a_query_result_page_reads_by_heading(alma: ReplayServer) -> None:
    _report_route(alma, [Reply.file("analytics_kb_query_result_excerpt.xml")], [Reply.file("analytics_no_more_rows.xml", 400)])
    with client_of(alma) as client:
        rows = list(client.analytics_rows(REPORT))
    assert [r["Barcode"] for r in rows] == ["400030233156", "400028047353", "400028047371"]
    assert rows[0][" IFNULL(Item Call Number, Permanent Call Number)"] == "212827"


# -- at the readers -----------------------------------------------------------------------------

def _without_empty_codes(value):
    """A code object whose value and description are both empty means no code (as None does)."""
    if isinstance(value, dict):
        if set(value) <= {"value", "desc"} and not value.get("value") and not value.get("desc"):
            return None
        return {k: _without_empty_codes(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_empty_codes(v) for v in value]
    return value


@behaviour
def full_users_read_through_the_models(alma: ReplayServer) -> None:
    bbird, bc, scr = (User(fixture_json(name)) for name in FULL_USERS)
    assert (bbird.primary_id, bbird.account_type, bbird.external_id) == ("100000000", "EXTERNAL", "SIS")
    assert bbird.is_sis_managed(["SIS"]) and not bc.is_sis_managed(["SIS"])
    assert bc.statistics == ["ALM", "G6"] and bbird.statistics == ["EM"] and scr.statistics == []
    for name in FULL_USERS:
        user = fixture_json(name)
        back = user_from_xml_bytes(user_to_xml_bytes(user))
        assert _without_empty_codes(back) == _without_empty_codes(user), name


@behaviour
def full_users_make_the_patron_table(alma: ReplayServer) -> None:
    frame = users_frame(fixture_json(name) for name in FULL_USERS)
    assert list(frame["primary_id"]) == ["100000000", "BC123456789", "12345"]
    assert list(frame["email"]) == ["bbird@scrubbed_princeton.edu", "abadi@other_school.edu", "dan@banan.com"]
    assert list(frame["account_type"]) == ["EXTERNAL", "INTERNAL", "INTERNAL"]
    assert frame.loc[1, "identifiers"].count("BARCODE=") == 6 and frame.loc[2, "birth_date"] == "1990-03-01"


@behaviour
def full_users_load_from_files_and_the_api(alma: ReplayServer) -> None:
    from almatools.sources import load_users

    users = [fixture_json(name) for name in FULL_USERS]
    folder = Path(alma.tmp)
    (folder / "users.jsonl").write_text("\n".join(json.dumps(u) for u in users) + "\n", encoding="utf-8")
    (folder / "users.xml").write_bytes(users_to_xml_bytes(users))

    def page(query: dict[str, list[str]]) -> Reply:
        offset = int(query.get("offset", ["0"])[0])
        chunk = users[offset:offset + int(query.get("limit", ["100"])[0])]
        body = {"total_record_count": len(users), **({"user": chunk} if chunk else {})}
        return Reply.json(json.dumps(body))

    alma.route("GET", "/users", page)
    with client_of(alma) as client:
        frames = [load_users(folder / "users.jsonl"), load_users(folder / "users.xml"),
                  load_users("api:", client=client)]
    for frame in frames:
        assert sorted(frame["primary_id"]) == ["100000000", "12345", "BC123456789"]
        report = frame.attrs["load_report"]
        assert (report["records"], report["skipped"], report["errors"]) == (3, 0, [])


@behaviour
def analytics_pages_parse(alma: ReplayServer) -> None:
    loading = parse_report_page((FIXTURES / "analytics_still_loading.xml").read_bytes())
    assert (loading.finished, loading.token, loading.rows) == (False, None, [])
    first = parse_report_page((FIXTURES / "analytics_page1_scr_excerpt.xml").read_bytes())
    assert first.token and not first.finished and first.headings == {} and len(first.rows) == 2
    assert "Column1" not in first.rows[0]  # an empty cell is left out of the row
    last = parse_report_page((FIXTURES / "analytics_page3_scr_excerpt.xml").read_bytes())
    assert last.finished and last.token is None and last.rows[1]["Column1"] == "Parmentier, Stephan"
    kb = parse_report_page((FIXTURES / "analytics_kb_query_result_excerpt.xml").read_bytes())
    assert kb.headings["Column1"] == "Barcode" and len(kb.rows) == 3


# -- running them -------------------------------------------------------------------------------

def run(name: str, tmp_path: Path) -> None:
    with ReplayServer() as alma:
        alma.tmp = tmp_path  # type: ignore[attr-defined]
        BEHAVIOURS[name](alma)


@pytest.mark.parametrize("name", sorted(BEHAVIOURS))
def test_behaviour(name: str, tmp_path: Path) -> None:
    run(name, tmp_path)


def test_every_behaviour(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    failed = []
    for name in sorted(BEHAVIOURS):
        folder = tmp_path / name
        folder.mkdir()
        try:
            run(name, folder)
        except Exception as exc:  # collect all, then fail with the list
            failed.append(f"{name}: {type(exc).__name__}: {exc}")
    handled = len(BEHAVIOURS) - len(failed)
    with capsys.disabled():
        print(f"\n{handled}/{len(BEHAVIOURS)} replayed behaviours handled")
    assert not failed, "\n".join(failed)


def test_every_fixture_is_replayed_and_documented() -> None:
    source = Path(__file__).read_text(encoding="utf-8")
    readme = (FIXTURES / "README.md").read_text(encoding="utf-8")
    for path in sorted(FIXTURES.iterdir()):
        if path.name != "README.md":
            assert path.name in source, f"{path.name} is not replayed"
            assert f"`{path.name}`" in readme, f"{path.name} has no source in the README"

