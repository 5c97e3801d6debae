"""The sandbox refuses, as strictly as Alma, what Alma refuses, and never stores what it cannot serve back.

Sources for each behaviour are in the module docstrings of ``almatools.sandbox.app`` and
``almatools.sandbox.validation``; the wrapped BAD_REQUEST shape is the recorded reply
``tests/fixtures/alma/error_wrapped_bad_request.json``.
"""

from __future__ import annotations

import copy
import json
import socket
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests
from lxml import etree

from almatools.client import AlmaClient
from almatools.errors import InvalidRecordError
from almatools.sandbox.server import SandboxServer
from almatools.sandbox.store import Store
from almatools.sandbox.validation import MAX_BODY_BYTES

KEY = "strict-test-key"


def stored(pid: str, **extra) -> dict:
    return {"record_type": {"value": "PUBLIC", "desc": "Public"}, "primary_id": pid, "first_name": "Ada",
            "last_name": "Stored", "account_type": {"value": "INTERNAL", "desc": "Internal"}, "external_id": "",
            "user_group": {"value": "COMMUNITY", "desc": "Community"}, "status": {"value": "ACTIVE"}, **extra}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    store = Store(tmp_path_factory.mktemp("strict") / "alma.sqlite")
    store.insert_many([stored("STRICT-1"), stored("STRICT-2")])
    with store, SandboxServer(store, api_key=KEY) as running:
        yield running


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def call(server: SandboxServer, http: requests.Session, method: str, path: str, **kwargs) -> requests.Response:
    params = {"apikey": KEY, "format": "json", **kwargs.pop("params", {})}
    return http.request(method, server.base_url + path, params=params, timeout=30, **kwargs)


def new_user(**overrides) -> dict:
    pid = f"NEW-{uuid.uuid4().hex[:8]}"
    user = {"record_type": {"value": "PUBLIC"}, "primary_id": pid, "first_name": "Test", "last_name": "Strict",
            "user_group": {"value": "COMMUNITY"}, "account_type": {"value": "INTERNAL"}, "external_id": "",
            "status": {"value": "ACTIVE"}, "expiry_date": "2030-01-01Z",
            "contact_info": {"email": [{"email_address": f"{pid.lower()}@example.org", "preferred": True,
                                        "email_type": [{"value": "personal"}]}]}}
    user.update(overrides)
    return user


def wrapped_error(reply: requests.Response) -> dict:
    """The one error of a wrapped JSON error body (``error`` is an object, as in Alma's recorded reply)."""
    body = reply.json()
    assert set(body) == {"web_service_result"}
    result = body["web_service_result"]
    assert result["errorsExist"] is True and isinstance(result["errorList"]["error"], dict)
    return result["errorList"]["error"]


def plain_error(reply: requests.Response) -> tuple[int, str, str]:
    (error,) = reply.json()["errorList"]["error"]
    return reply.status_code, error["errorCode"], error["errorMessage"]


def assert_still_serves_everything(server: SandboxServer, http: requests.Session) -> None:
    """Every list page (JSON and XML, brief and full) and every user's XML GET still answers 200."""
    for params in ({}, {"expand": "full"}):
        page = call(server, http, "GET", "/users", params={"limit": 100, **params})
        assert page.status_code == 200, page.text[:300]
        xml_page = call(server, http, "GET", "/users", params={"limit": 100, "format": "xml", **params})
        assert xml_page.status_code == 200 and etree.fromstring(xml_page.content).tag == "users"
    for entry in page.json().get("user", []):
        one = call(server, http, "GET", f"/users/{entry['primary_id']}", params={"format": "xml"})
        assert one.status_code == 200 and etree.fromstring(one.content).findtext("primary_id") == entry["primary_id"]


# -- values of the wrong type: Alma's JSON reader answers a wrapped BAD_REQUEST --------------------

@pytest.mark.parametrize(("change", "chain"), [
    ({"primary_id": {"a": 1}}, 'User["primary_id"]'),
    ({"first_name": ["Ann", "Anna"]}, 'User["first_name"]'),
    ({"contact_info": {"email": [{"email_address": ["a@b.example", "c@d.example"]}]}},
     'ContactInfo["email"]->java.util.ArrayList[0]->com.exlibris.alma.ws.jaxb.user.Email["email_address"]'),
    ({"contact_info": {"email": ["a@b.example"]}}, 'ContactInfo["email"]->java.util.ArrayList[0]'),
    ({"user_identifier": "BC1"}, 'User["user_identifier"]'),
    ({"expiry_date": "31/12/2030"}, 'User["expiry_date"]'),
    ({"birth_date": "1990-02-30"}, 'User["birth_date"]'),
    ({"user_group": ["COMMUNITY"]}, 'User["user_group"]'),
    ({"is_researcher": "maybe"}, 'User["is_researcher"]'),
])
def test_a_value_of_the_wrong_type_is_a_wrapped_bad_request(server, http, change, chain):
    user = new_user(**change)
    reply = call(server, http, "POST", "/users", json=user)
    assert reply.status_code == 400
    error = wrapped_error(reply)
    assert error["errorCode"] == "BAD_REQUEST"
    assert "(was java.lang.IllegalArgumentException)" in error["errorMessage"] and chain in error["errorMessage"]
    assert error["trackingId"].startswith("E01-")
    if isinstance(user["primary_id"], str):
        assert plain_error(call(server, http, "GET", f"/users/{user['primary_id']}"))[1] == "401861"


def test_a_non_finite_number_is_a_wrapped_bad_request(server, http):
    body = json.dumps(new_user()).replace('"Strict"', "NaN").encode()
    reply = call(server, http, "POST", "/users", data=body, headers={"Content-Type": "application/json"})
    assert wrapped_error(reply)["errorCode"] == "BAD_REQUEST"


def test_the_wrapped_error_in_xml_for_an_xml_client(server, http):
    reply = call(server, http, "POST", "/users", json=new_user(primary_id={"a": 1}), params={"format": "xml"})
    root = etree.fromstring(reply.content)
    ns = "{http://com/exlibris/urm/general/xmlbeans}"
    assert reply.status_code == 400 and root.findtext(f"{ns}errorList/{ns}error/{ns}errorCode") == "BAD_REQUEST"


def test_the_client_reads_the_wrapped_error_as_an_invalid_record(server):
    with AlmaClient(api_key=KEY, base_url=server.base_url, per_second=200, backoff=0.01) as alma:
        with pytest.raises(InvalidRecordError) as err:
            alma.create_user(new_user(contact_info={"email": [{"email_address": ["a@b.example"]}]}))
    assert err.value.code == "BAD_REQUEST" and err.value.status == 400 and err.value.tracking_id
    assert err.value.message.startswith("Alma could not read the value of contact_info.email[0].email_address")
    assert "{" not in err.value.message and "web_service_result" not in str(err.value)


# -- values Alma may store but the sandbox could never serve back: refused, nothing stored -------

@pytest.mark.parametrize(("change", "field"), [
    ({"first_name": "Ann\x00"}, "first_name"),
    ({"last_name": "L" * 300}, "last_name"),
    ({"middle_name": "\ud800"}, "middle_name"),
    ({"user_note": [{"note_type": {"value": "LIBRARY"}, "note_text": "n\x07ote"}]}, "user_note[0].note_text"),
    ({"user_identifier": [{"value": "x", "id_type": {"value": "BARCODE"}}] * 1001}, "user_identifier"),
])
def test_an_unservable_value_is_refused_and_nothing_is_stored(server, http, change, field):
    user = new_user(**change)
    reply = call(server, http, "POST", "/users", json=user)
    status, code, message = plain_error(reply)
    assert (status, code) == (400, "401676") and field in message
    assert plain_error(call(server, http, "GET", f"/users/{user['primary_id']}"))[1] == "401861"
    assert_still_serves_everything(server, http)


def test_a_put_with_an_unservable_value_keeps_the_old_record(server, http):
    before = call(server, http, "GET", "/users/STRICT-2").json()
    reply = call(server, http, "PUT", "/users/STRICT-2", json={**before, "first_name": "Bad\x00Name"})
    assert plain_error(reply)[:2] == (400, "401676")
    assert call(server, http, "GET", "/users/STRICT-2").json()["first_name"] == before["first_name"]
    assert_still_serves_everything(server, http)


def test_deeply_nested_json_is_a_broken_body_not_a_server_error(server, http):
    body = b'{"primary_id": "X", "user_note": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    reply = call(server, http, "POST", "/users", data=body, headers={"Content-Type": "application/json"})
    assert plain_error(reply)[:2] == (400, "401676")


# -- body size ----------------------------------------------------------------------------------

def test_a_declared_300_mb_body_is_refused_before_it_is_read(server):
    host, port = urlsplit(server.base_url).hostname, urlsplit(server.base_url).port
    request = (f"POST /almaws/v1/users?apikey={KEY}&format=json HTTP/1.1\r\nHost: {host}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {300 * 1024 * 1024}\r\n\r\n").encode()
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(request + b'{"primary_id": "' + b"x" * 10_000)
        received = b""
        while b"}" not in received.partition(b"\r\n\r\n")[2]:  # headers, then the JSON error body
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        reply = received.decode("utf-8", "replace")
    assert reply.startswith("HTTP/1.1 413") and "REQUEST_TOO_LARGE" in reply


def test_a_streamed_body_past_the_limit_is_refused(server, http):
    def chunks():
        yield b'{"primary_id": "BIG", "first_name": "'
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b"a" * 65536
        yield b'"}'

    reply = call(server, http, "POST", "/users", data=chunks(), headers={"Content-Type": "application/json"})
    assert plain_error(reply)[:2] == (413, "REQUEST_TOO_LARGE")
    assert plain_error(call(server, http, "GET", "/users/BIG"))[1] == "401861"


# -- output-only fields and SIS profiles --------------------------------------------------------

def test_category_type_is_neither_kept_nor_invented(server, http):
    stats = [{"statistic_category": {"value": "STUDENT"}, "category_type": {"value": "PATRON_TYPE"}},
             {"statistic_category": {"value": "STAFF"}}]
    created = call(server, http, "POST", "/users", json=new_user(user_statistic=stats))
    assert created.status_code == 200, created.text
    for record in (created.json(), call(server, http, "GET", f"/users/{created.json()['primary_id']}").json()):
        assert [s["statistic_category"]["value"] for s in record["user_statistic"]] == ["STUDENT", "STAFF"]
        assert all("category_type" not in s for s in record["user_statistic"])


def test_an_external_user_needs_a_configured_sis_profile(server, http):
    external = {"account_type": {"value": "EXTERNAL"}, "user_group": {"value": "COMMUNITY"}}
    refused = call(server, http, "POST", "/users", json=new_user(**external, external_id="NOT_A_PROFILE"))
    status, code, message = plain_error(refused)
    assert (status, code) == (400, "401854") and "NOT_A_PROFILE" in message and "SIS" in message
    assert call(server, http, "POST", "/users", json=new_user(**external, external_id="SIS")).status_code == 200


def test_converting_to_external_needs_a_configured_sis_profile(server, http):
    user = call(server, http, "GET", "/users/STRICT-1").json()
    reply = call(server, http, "PUT", "/users/STRICT-1",
                 json={**copy.deepcopy(user), "account_type": {"value": "EXTERNAL"}, "external_id": "BANNER"})
    assert plain_error(reply)[:2] == (400, "401854")
    assert call(server, http, "GET", "/users/STRICT-1").json()["account_type"]["value"] == "INTERNAL"


def test_unknown_fields_are_dropped_not_stored(server, http):
    created = call(server, http, "POST", "/users", json=new_user(favourite_colour={"deep": ["blue"]}))
    assert created.status_code == 200 and "favourite_colour" not in created.json()
    assert_still_serves_everything(server, http)
