"""The sandbox speaks Alma's Users API: auth, formats, errors, records, writes, search (over real HTTP)."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator

import pytest
import requests
from lxml import etree

from almatools.sandbox.server import SandboxServer
from almatools.sandbox.store import Store

KEY = "protocol-test-key"
WSR = "{http://com/exlibris/urm/general/xmlbeans}"


def stored_user(pid: str, first: str, last: str, **extra) -> dict:
    """A full user object as GET returns it (the shape insert_many takes)."""
    user = {
        "record_type": {"value": "PUBLIC", "desc": "Public"}, "primary_id": pid, "first_name": first,
        "middle_name": "", "last_name": last, "full_name": f"{first} {last}",
        "gender": {"value": "", "desc": ""}, "user_group": {"value": "UGRAD", "desc": "Undergraduate student"},
        "account_type": {"value": "INTERNAL", "desc": "Internal"}, "external_id": "", "password": "",
        "status": {"value": "ACTIVE", "desc": "Active"}, "birth_date": "1999-04-01Z",
        "requests": None, "loans": None, "fees": None,
        "contact_info": {"address": [], "email": [], "phone": []},
        "user_identifier": [], "user_role": [], "user_block": [], "user_note": [], "user_statistic": [],
    }
    user.update(extra)
    return user


def email(address: str, segment: str = "Internal") -> dict:
    return {"email_address": address, "preferred": True, "segment_type": segment,
            "email_type": [{"value": "personal", "desc": "Personal"}]}


def barcode(value: str, segment: str = "Internal", id_type: str = "BARCODE") -> dict:
    return {"value": value, "id_type": {"value": id_type, "desc": ""}, "status": "ACTIVE", "segment_type": segment}


SEED_USERS = [
    stored_user("JSMITH1", "John", "Smith", contact_info={"email": [email("john.smith@uni.example.edu")]},
                user_identifier=[barcode("B-0001"), barcode("U777", id_type="UNIV_ID")],
                loans={"value": 3}, fees={"value": 12.5}),
    stored_user("MSMITH", "Mary Ann", "Smith-Jones", user_group={"value": "GRAD", "desc": "Graduate student"}),
    stored_user("HMULLER", "Hans", "Müller", user_note=[
        {"note_type": {"value": "LIBRARY"}, "note_text": "Lost card twice", "segment_type": "Internal"}]),
    stored_user("ALEE", "Ann", "Lee", birth_date="1980-02-29Z", loans={"value": 2}, requests={"value": 1}),
    stored_user("BLEE", "Bob", "Lee"),
    stored_user("ZSMITHSON", "Zoe", "Smithson", user_group={"value": "ALUMNI", "desc": "Alumni"}),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    store = Store(tmp_path_factory.mktemp("protocol") / "alma.sqlite")
    store.insert_many(copy.deepcopy(SEED_USERS))
    with store, SandboxServer(store, api_key=KEY) as running:
        yield running


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


@pytest.fixture(autouse=True)
def knobs_at_rest(server: SandboxServer) -> Iterator[None]:
    yield
    server.knobs.total_quirk = "exact"


class Api:
    """Calls with the key and JSON, returning the requests Response."""

    def __init__(self, server: SandboxServer, http: requests.Session) -> None:
        self.base, self.http = server.base_url, http

    def __call__(self, method: str, path: str, *, params: dict | None = None, **kwargs) -> requests.Response:
        return self.http.request(method, self.base + path, params={"apikey": KEY, "format": "json", **(params or {})},
                                 timeout=10, **kwargs)


@pytest.fixture
def api(server: SandboxServer, http: requests.Session) -> Api:
    return Api(server, http)


def error_of(response: requests.Response) -> tuple[int, str, str]:
    """(HTTP status, errorCode, errorMessage) of a JSON error reply, checking Alma's body shape."""
    body = response.json()
    assert body["errorsExist"] is True and body["result"] is None
    (error,) = body["errorList"]["error"]
    assert isinstance(error["errorCode"], str)
    return response.status_code, error["errorCode"], error["errorMessage"]


def new_user(**overrides) -> dict:
    pid = overrides.pop("primary_id", f"N{uuid.uuid4().hex[:10]}")
    user = {"record_type": {"value": "PUBLIC"}, "primary_id": pid, "account_type": {"value": "INTERNAL"},
            "first_name": "Nia", "last_name": "New", "user_group": {"value": "COMMUNITY"}}
    user.update(overrides)
    return user


# -- gateway: key, formats, headers -------------------------------------------------------------------


def test_key_as_query_parameter_or_authorization_header(server: SandboxServer, http: requests.Session) -> None:
    by_query = http.get(server.base_url + "/users/JSMITH1", params={"apikey": KEY, "format": "json"})
    by_header = http.get(server.base_url + "/users/JSMITH1", params={"format": "json"},
                         headers={"Authorization": f"apikey {KEY}"})
    assert by_query.status_code == by_header.status_code == 200
    assert by_query.json()["primary_id"] == by_header.json()["primary_id"] == "JSMITH1"


@pytest.mark.parametrize("params, headers, code, message", [
    ({"apikey": "wrong"}, {}, "UNAUTHORIZED", "API-key not defined or not configured to allow this API."),
    ({}, {"Authorization": "apikey wrong"}, "UNAUTHORIZED", "API-key not defined or not configured to allow this API."),
    ({}, {}, "GENERAL_ERROR", "A Gateway error has occurred - Make sure you add an appropriate apikey as a "
                              "parameter or a header."),
    ({}, {"Authorization": f"Bearer {KEY}"}, "GENERAL_ERROR", "A Gateway error has occurred - Make sure you add "
                                                             "an appropriate apikey as a parameter or a header."),
    ({"apikey": ""}, {}, "GENERAL_ERROR", "A Gateway error has occurred - Make sure you add an appropriate apikey "
                                          "as a parameter or a header."),
], ids=["wrong-query-key", "wrong-header-key", "no-key", "bearer-is-no-apikey", "empty-key"])
def test_missing_or_wrong_key_is_400_in_xml(
    server: SandboxServer, http: requests.Session, params: dict, headers: dict, code: str, message: str
) -> None:
    # Alma's gateway answers in XML even when JSON was asked for, with no trackingId: UNAUTHORIZED for a
    # wrong key, GENERAL_ERROR when there is no apikey at all (recorded replies in tests/fixtures/alma:
    # error_unauthorized.xml, error_general_error_no_apikey.xml; see its README).
    reply = http.get(server.base_url + "/users/JSMITH1", params={"format": "json", **params}, headers=headers)
    assert reply.status_code == 400 and reply.headers["content-type"].startswith("application/xml")
    error = etree.fromstring(reply.content).find(f"{WSR}errorList/{WSR}error")
    assert error.findtext(f"{WSR}errorCode") == code
    assert error.findtext(f"{WSR}errorMessage") == message
    assert error.find(f"{WSR}trackingId") is None
    assert reply.headers["X-Exl-Api-Remaining"].isdigit() and reply.headers["X-Request-ID"]


def test_xml_by_default_and_xml_error_body(server: SandboxServer, http: requests.Session) -> None:
    ok = http.get(server.base_url + "/users/jsmith1", params={"apikey": KEY})
    assert ok.status_code == 200 and ok.headers["content-type"].startswith("application/xml")
    assert etree.fromstring(ok.content).findtext("primary_id") == "JSMITH1"
    bad = http.get(server.base_url + "/users/nobody-here", params={"apikey": KEY})
    root = etree.fromstring(bad.content)
    assert bad.status_code == 400 and root.tag == f"{WSR}web_service_result"
    assert root.findtext(f"{WSR}errorsExist") == "true"
    error = root.find(f"{WSR}errorList/{WSR}error")
    assert error.findtext(f"{WSR}errorCode") == "401861"
    assert error.findtext(f"{WSR}errorMessage") == "User with identifier nobody-here was not found."
    assert error.findtext(f"{WSR}trackingId").startswith("E01-")


def test_json_by_format_or_accept_header(server: SandboxServer, http: requests.Session) -> None:
    by_accept = http.get(server.base_url + "/users/JSMITH1", params={"apikey": KEY},
                         headers={"Accept": "application/json; charset=utf-8"})
    assert by_accept.headers["content-type"].startswith("application/json")
    assert by_accept.json()["last_name"] == "Smith"


def test_every_reply_counts_down_remaining_calls_and_has_a_request_id(api: Api) -> None:
    replies = [api("GET", "/users/JSMITH1"), api("GET", "/users/nobody"), api("GET", "/users/JSMITH1")]
    remaining = [int(reply.headers["X-Exl-Api-Remaining"]) for reply in replies]
    assert remaining[0] - 1 == remaining[1] and remaining[1] - 1 == remaining[2]
    assert len({reply.headers["X-Request-ID"] for reply in replies}) == 3


def test_an_internal_failure_is_an_alma_500_with_the_headers(api: Api, monkeypatch: pytest.MonkeyPatch,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(Store, "get", broken)
    reply = api("GET", "/users/JSMITH1")
    assert error_of(reply)[:2] == (500, "INTERNAL_SERVER_ERROR") and reply.headers["X-Exl-Api-Remaining"]
    assert "disk on fire" in caplog.text


def test_test_operation_and_unknown_path(api: Api) -> None:
    assert api("GET", "/users/operation/test").status_code == 200
    assert api("POST", "/users/operation/test").status_code == 200
    assert error_of(api("GET", "/no/such/thing"))[1] == "402119"


# -- GET /users/{id} --------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["JSMITH1", "jsmith1", "b-0001", "B-0001", "u777"])
def test_all_unique_lookup_ignores_case_and_finds_identifiers(api: Api, key: str) -> None:
    assert api("GET", f"/users/{key}").json()["primary_id"] == "JSMITH1"


def test_typed_lookup_only_searches_that_identifier_type(api: Api) -> None:
    assert api("GET", "/users/b-0001", params={"user_id_type": "BARCODE"}).json()["primary_id"] == "JSMITH1"
    assert error_of(api("GET", "/users/B-0001", params={"user_id_type": "UNIV_ID"})) == (
        400, "401890", "User with identifier B-0001 of type UNIV_ID was not found.")


def test_full_record_shape(api: Api) -> None:
    user = api("GET", "/users/JSMITH1").json()
    assert user["link"] is None and user["password"] == ""
    assert user["loans"] is None and user["requests"] is None and user["fees"] is None
    assert user["birth_date"] == "1999-04-01Z"


def test_expand_fills_in_fulfillment_counts(api: Api, server: SandboxServer) -> None:
    user = api("GET", "/users/JSMITH1", params={"expand": "loans,fees"}).json()
    assert user["loans"] == {"value": 3, "link": f"{server.base_url}/users/JSMITH1/loans"}
    assert user["fees"]["value"] == 12.5 and user["requests"] is None


def test_brief_view_keeps_core_emails_identifiers(api: Api) -> None:
    user = api("GET", "/users/JSMITH1", params={"view": "brief"}).json()
    assert user["contact_info"]["email"][0]["email_address"] == "john.smith@uni.example.edu"
    assert user["user_identifier"] and "user_role" not in user and "address" not in user["contact_info"]


# -- POST /users ---------------------------------------------------------------------------------------------


def test_create_returns_the_full_record_with_alma_defaults(api: Api) -> None:
    body = new_user(user_note=[{"note_type": {"value": "CIRCULATION"}, "note_text": "Welcome"}],
                    user_block=[{"block_description": {"value": "01"}}], birth_date="2001-05-06",
                    user_identifier=[{"value": "NEWBC1", "id_type": {"value": "BARCODE"}}])
    reply = api("POST", "/users", json=body)
    assert reply.status_code == 200
    user = reply.json()
    assert user["status"] == {"value": "ACTIVE", "desc": "Active"}
    assert user["preferred_language"]["value"] == "en" and user["full_name"] == "Nia New"
    assert user["user_group"] == {"value": "COMMUNITY", "desc": "Community borrower"}
    assert user["birth_date"] == "2001-05-06Z" and user["link"] is None and user["password"] == ""
    assert user["user_note"][0]["created_date"].endswith("Z") and "T" in user["user_note"][0]["created_date"]
    assert user["user_block"][0]["created_date"].endswith("Z")
    assert user["user_block"][0]["block_type"]["value"] == "GENERAL"
    assert user["user_identifier"][0]["segment_type"] == "Internal"
    assert [role["role_type"]["value"] for role in user["user_role"]] == ["200"]
    assert api("GET", "/users/newbc1").json()["primary_id"] == body["primary_id"]


def test_create_from_an_xml_body(server: SandboxServer, http: requests.Session) -> None:
    xml = ("<user><record_type>PUBLIC</record_type><primary_id>XMLUSER1</primary_id><first_name>Xavier</first_name>"
           "<last_name>Ml</last_name><user_group>STAFF</user_group><account_type>INTERNAL</account_type></user>")
    reply = http.post(server.base_url + "/users", params={"apikey": KEY}, data=xml.encode(),
                      headers={"Content-Type": "application/xml"})
    assert reply.status_code == 200
    assert etree.fromstring(reply.content).find("user_group").get("desc") == "Staff"


def test_xml_list_and_xml_update(server: SandboxServer, http: requests.Session) -> None:
    listed = etree.fromstring(http.get(server.base_url + "/users", params={"apikey": KEY, "q": "last_name~lee"}).content)
    assert listed.tag == "users" and listed.get("total_record_count") == "2"
    assert listed.xpath("user/@link") == [f"{server.base_url}/users/ALEE", f"{server.base_url}/users/BLEE"]
    record = etree.fromstring(http.get(server.base_url + "/users/XMLUSER1", params={"apikey": KEY}).content)
    record.find("first_name").text = "Xena"
    updated = http.put(server.base_url + "/users/XMLUSER1", params={"apikey": KEY}, data=etree.tostring(record),
                       headers={"Content-Type": "application/xml"})
    assert updated.status_code == 200 and etree.fromstring(updated.content).findtext("full_name") == "Xena Ml"


@pytest.mark.parametrize("missing", ["record_type", "primary_id", "account_type"])
def test_create_without_a_mandatory_field_is_401664(api: Api, missing: str) -> None:
    body = new_user()
    del body[missing]
    assert error_of(api("POST", "/users", json=body)) == (400, "401664", f"Mandatory field is missing: {missing}")


@pytest.mark.parametrize("overrides, code", [
    ({"user_group": {"value": "PIRATES"}}, "401852"),
    ({"account_type": {"value": "SOCIAL"}}, "401857"),
    ({"external_id": "SIS"}, "401853"),
    ({"account_type": {"value": "EXTERNAL"}}, "401854"),
    ({"password": "short1"}, "500038"),
    ({"password": "password1"}, "500038"),
    ({"primary_id": "SAMEASPW9", "password": "sameaspw9"}, "500038"),
])
def test_create_rejects_what_alma_rejects(api: Api, overrides: dict, code: str) -> None:
    assert error_of(api("POST", "/users", json=new_user(**overrides)))[:2] == (400, code)


@pytest.mark.parametrize("overrides, message", [
    # a primary id in Alma's own words (recorded reply tests/fixtures/alma/error_401851_primary_id_kth.xml)
    ({"primary_id": "jsmith1"}, "User with identifier jsmith1 of type Primary id already exists."),
    ({"primary_id": "b-0001"}, "User with identifier b-0001 of type Primary id already exists."),
    ({"user_identifier": [{"value": "JSMITH1", "id_type": {"value": "BARCODE"}}]},
     "Identifier of type BARCODE and value JSMITH1 is already taken"),
    ({"user_identifier": [{"value": "u777", "id_type": {"value": "NET_ID"}}]},
     "Identifier of type NET_ID and value u777 is already taken"),
    ({"user_identifier": [{"value": "TWIN-1", "id_type": {"value": "BARCODE"}},
                          {"value": "twin-1", "id_type": {"value": "NET_ID"}}]},
     "Identifier of type NET_ID and value twin-1 is already taken"),
])
def test_create_with_a_taken_identifier_is_401851(api: Api, overrides: dict, message: str) -> None:
    assert error_of(api("POST", "/users", json=new_user(**overrides))) == (400, "401851", message)


def test_an_identifier_may_repeat_the_own_primary_id(api: Api) -> None:
    body = new_user(primary_id="SELF-ID-1", user_identifier=[{"value": "self-id-1", "id_type": {"value": "UNIV_ID"}}])
    created = api("POST", "/users", json=body)
    assert created.status_code == 200
    assert api("PUT", "/users/SELF-ID-1", json={**created.json(), "first_name": "Selma"}).status_code == 200
    assert api("GET", "/users/self-id-1", params={"user_id_type": "UNIV_ID"}).json()["first_name"] == "Selma"


@pytest.mark.parametrize("body, content_type", [
    (b'{"primary_id": ', "application/json"), (b"[1, 2]", "application/json"),
    (b"<user><primary_id>x</user>", "application/xml"), (b"<other/>", "application/xml"),
])
def test_create_with_a_broken_body_is_401676(api: Api, body: bytes, content_type: str) -> None:
    reply = api("POST", "/users", data=body, headers={"Content-Type": content_type})
    assert error_of(reply) == (400, "401676", "No valid XML was given.")


def test_authenticate_with_header_or_parameter(api: Api) -> None:
    pid = api("POST", "/users", json=new_user(password="Correct-Horse-9")).json()["primary_id"]
    assert api("GET", f"/users/{pid}").json()["password"] == ""
    by_header = api("POST", f"/users/{pid}", params={"op": "auth"}, headers={"Exl-User-Pw": "Correct-Horse-9"})
    assert by_header.status_code == 204 and by_header.content == b""
    assert api("POST", f"/users/{pid}", params={"op": "auth", "password": "Correct-Horse-9"}).status_code == 204
    wrong = api("POST", f"/users/{pid}", params={"op": "auth"}, headers={"Exl-User-Pw": "wrong-horse"})
    assert error_of(wrong)[:2] == (400, "401866")


# -- PUT /users/{id} -------------------------------------------------------------------------------------------


def test_put_swaps_all_but_keeps_roles_and_password(api: Api) -> None:
    created = api("POST", "/users", json=new_user(
        password="Original-Pass-1",
        user_identifier=[{"value": f"PUT-{uuid.uuid4().hex[:6]}", "id_type": {"value": "BARCODE"}}],
        contact_info={"email": [{"email_address": "old@example.org", "email_type": [{"value": "work"}]}]},
    )).json()
    pid = created["primary_id"]
    changed = copy.deepcopy(created)
    changed.update(first_name="Nora", user_identifier=[], user_role=[], password="")
    changed["contact_info"]["email"] = [{"email_address": "new@example.org", "email_type": [{"value": "work"}]}]
    user = api("PUT", f"/users/{pid}", json=changed).json()
    assert user["first_name"] == "Nora" and user["full_name"] == "Nora New"
    assert user["user_identifier"] == []  # lists replace lists
    assert [e["email_address"] for e in user["contact_info"]["email"]] == ["new@example.org"]
    assert user["user_role"] == created["user_role"]  # no roles sent: kept
    assert api("POST", f"/users/{pid}", params={"op": "auth", "password": "Original-Pass-1"}).status_code == 204

    staff_role = {"status": {"value": "ACTIVE"}, "scope": {"value": "MAIN"}, "role_type": {"value": "51"},
                  "parameter": []}
    user = api("PUT", f"/users/{pid}", json={**user, "user_role": [staff_role], "password": "Brand-New-Pass-2"}).json()
    assert [role["role_type"]["value"] for role in user["user_role"]] == ["51"]
    assert api("POST", f"/users/{pid}", params={"op": "auth", "password": "Brand-New-Pass-2"}).status_code == 204


def test_put_can_change_the_primary_id_unless_taken(api: Api) -> None:
    user = api("POST", "/users", json=new_user()).json()
    taken = api("PUT", f"/users/{user['primary_id']}", json={**user, "primary_id": "ALEE"})
    assert error_of(taken)[:2] == (400, "401851")
    renamed = api("PUT", f"/users/{user['primary_id']}", json={**user, "primary_id": user["primary_id"] + "-R"})
    assert renamed.status_code == 200
    assert error_of(api("GET", f"/users/{user['primary_id']}"))[1] == "401861"
    assert api("GET", f"/users/{user['primary_id']}-r").status_code == 200


def external_user(api: Api) -> dict:
    body = new_user(
        account_type={"value": "EXTERNAL"}, external_id="SIS", user_group={"value": "GRAD"},
        preferred_language={"value": "fr"},
        user_note=[{"note_type": {"value": "LIBRARY"}, "note_text": "staff note", "segment_type": "Internal"},
                   {"note_type": {"value": "OTHER"}, "note_text": "sis note", "segment_type": "External"}],
        user_identifier=[{"value": f"EXT-{uuid.uuid4().hex[:8]}", "id_type": {"value": "UNIV_ID"}}],
    )
    reply = api("POST", "/users", json=body)
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_put_on_an_external_user_replaces_segments_by_kind(api: Api) -> None:
    user = external_user(api)
    assert user["user_identifier"][0]["segment_type"] == "External"  # blank means External for EXTERNAL users
    sis_only = {**user, "user_note": [{"note_type": {"value": "OTHER"}, "note_text": "new sis note"}]}
    updated = api("PUT", f"/users/{user['primary_id']}", json=sis_only).json()
    assert sorted((n["segment_type"], n["note_text"]) for n in updated["user_note"]) == [
        ("External", "new sis note"), ("Internal", "staff note")]
    staff_only = {**updated, "user_note": [{"note_type": {"value": "LIBRARY"}, "note_text": "other staff note",
                                           "segment_type": "Internal"}]}
    updated = api("PUT", f"/users/{user['primary_id']}", json=staff_only).json()
    assert sorted((n["segment_type"], n["note_text"]) for n in updated["user_note"]) == [
        ("External", "new sis note"), ("Internal", "other staff note")]
    emptied = api("PUT", f"/users/{user['primary_id']}", json={**updated, "user_note": []}).json()
    assert emptied["user_note"] == []


def test_put_on_a_loaded_external_user_treats_blank_segments_as_external(api: Api, server: SandboxServer) -> None:
    loaded = stored_user("SISLOAD1", "Sis", "Loaded", account_type={"value": "EXTERNAL", "desc": "External"},
                         external_id="SIS", user_identifier=[{"value": "SIS-BC-1", "id_type": {"value": "BARCODE"}}])
    server.store.insert_many([loaded])
    user = api("GET", "/users/SISLOAD1").json()
    updated = api("PUT", "/users/SISLOAD1", json={**user, "user_identifier": [
        {"value": "SIS-BC-2", "id_type": {"value": "BARCODE"}, "segment_type": "External"}]})
    assert [item["value"] for item in updated.json()["user_identifier"]] == ["SIS-BC-2"]


def test_put_on_an_external_user_keeps_protected_fields_that_arrive_empty(api: Api) -> None:
    user = external_user(api)
    blanked = {**user, "user_group": {"value": ""}, "preferred_language": None, "first_name": "Renamed"}
    updated = api("PUT", f"/users/{user['primary_id']}", json=blanked).json()
    assert updated["user_group"]["value"] == "GRAD" and updated["preferred_language"]["value"] == "fr"
    assert updated["first_name"] == "Renamed"
    forced = api("PUT", f"/users/{user['primary_id']}", params={"override": "user_group"}, json=blanked).json()
    assert forced["user_group"]["value"] == "" and forced["preferred_language"]["value"] == "fr"


def test_internal_to_external_and_not_back(api: Api) -> None:
    user = api("POST", "/users", json=new_user()).json()
    pid = user["primary_id"]
    no_profile = api("PUT", f"/users/{pid}", json={**user, "account_type": {"value": "EXTERNAL"}})
    assert error_of(no_profile)[:2] == (400, "401854")
    converted = api("PUT", f"/users/{pid}", json={**user, "account_type": {"value": "EXTERNAL"}, "external_id": "SIS"})
    assert converted.json()["account_type"]["value"] == "EXTERNAL"
    external = converted.json()
    back = api("PUT", f"/users/{pid}", json={**external, "account_type": {"value": "INTERNAL"}, "external_id": ""})
    assert error_of(back) == (400, "401859", "Action currently not supported.")
    other_profile = api("PUT", f"/users/{pid}", json={**external, "external_id": "OTHER_SIS"})
    assert error_of(other_profile)[:2] == (400, "401858")


def test_put_unknown_user_and_bad_body(api: Api) -> None:
    assert error_of(api("PUT", "/users/nobody", json=new_user()))[1] == "401861"
    assert error_of(api("PUT", "/users/nobody", params={"user_id_type": "BARCODE"}, json=new_user()))[1] == "401890"
    assert error_of(api("PUT", "/users/ALEE", data=b"{", headers={"Content-Type": "application/json"}))[1] == "401676"


# -- DELETE /users/{id} -----------------------------------------------------------------------------------------


def test_delete_is_204_without_body_then_not_found(api: Api) -> None:
    pid = api("POST", "/users", json=new_user()).json()["primary_id"]
    deleted = api("DELETE", f"/users/{pid.lower()}")
    assert deleted.status_code == 204 and deleted.content == b""
    assert error_of(api("GET", f"/users/{pid}"))[1] == "401861"
    assert error_of(api("DELETE", f"/users/{pid}")) == (400, "401861", f"User with identifier {pid} was not found.")
    assert error_of(api("DELETE", f"/users/{pid}", params={"user_id_type": "BARCODE"}))[1] == "401890"


# -- GET /users and q ----------------------------------------------------------------------------------------------


def search(api: Api, q: str, **params) -> dict:
    reply = api("GET", "/users", params={"q": q, "limit": 100, **params})
    assert reply.status_code == 200, reply.text
    return reply.json()


def ids(page: dict) -> set[str]:
    return {user["primary_id"] for user in page.get("user", [])}


@pytest.mark.parametrize("q, expected", [
    ("last_name~smith", {"JSMITH1", "MSMITH"}),             # a word of "Smith-Jones", not "Smithson"
    ("last_name~SMITH AND first_name~john", {"JSMITH1"}),
    ("first_name~mary_ann", {"MSMITH"}),                     # _ and , separate words, as clients send them
    ("first_name~ann,mary", {"MSMITH"}),
    ("first_name~ann", {"MSMITH", "ALEE"}),
    ("last_name~muller", {"HMULLER"}),                       # diacritics do not matter
    ("email~john.smith@uni.example.edu", {"JSMITH1"}),
    ("identifiers~b-0001", {"JSMITH1"}),
    ("primary_id~alee", {"ALEE"}),
    ("birth_date~1980-02-29", {"ALEE"}),
    ("user_group~alumni", {"ZSMITHSON"}),
    ("note_text~lost card", {"HMULLER"}),
    ("general_info~hans", {"HMULLER"}),
    ("ALL~john.smith@uni.example.edu", {"JSMITH1"}),
    ("last_name~smi", set()),
])
def test_q_matches_words(api: Api, q: str, expected: set[str]) -> None:
    page = search(api, q)
    assert ids(page) == expected and page["total_record_count"] == len(expected)


def test_general_info_skips_emails_and_identifiers(api: Api) -> None:
    assert search(api, "general_info~b-0001") == {"total_record_count": 0}
    assert ids(search(api, "ALL~b-0001")) == {"JSMITH1"}


def test_no_hits_means_no_user_key(api: Api) -> None:
    assert search(api, "last_name~nobodyatall") == {"total_record_count": 0}


@pytest.mark.parametrize("q", ["last_name~smith AND last_name~lee", "ALL~smith AND first_name~john"])
def test_a_query_alma_cannot_run_counts_minus_one(api: Api, q: str) -> None:
    assert search(api, q) == {"total_record_count": -1}


@pytest.mark.parametrize("params", [
    {"q": "shoe_size~12"}, {"q": "smith"}, {"limit": 101}, {"limit": -1}, {"limit": "ten"}, {"offset": -5},
    {"order_by": "birth_date"}, {"q": "last_name~smith", "modify_date_from": "2020-01-01"},
    {"modify_date_from": "01/01/2020"},
])
def test_bad_list_requests_are_400(api: Api, params: dict) -> None:
    assert error_of(api("GET", "/users", params=params))[:2] == (400, "402119")


def test_list_pages_brief_entries_in_name_order(api: Api, server: SandboxServer) -> None:
    first = api("GET", "/users", params={"q": "last_name~lee", "limit": 1}).json()
    assert first["total_record_count"] == 2
    assert first["user"] == [{
        "primary_id": "ALEE", "first_name": "Ann", "last_name": "Lee", "gender": {"value": "", "desc": ""},
        "status": {"value": "ACTIVE", "desc": "Active"}, "password": "", "requests": None, "loans": None,
        "fees": None, "link": f"{server.base_url}/users/ALEE",
    }]
    second = api("GET", "/users", params={"q": "last_name~lee", "limit": 1, "offset": 1}).json()
    assert ids(second) == {"BLEE"}
    assert "user" not in api("GET", "/users", params={"q": "last_name~lee", "offset": 2}).json()
    assert api("GET", "/users", params={"limit": 0}).json().keys() == {"total_record_count"}
    by_first = api("GET", "/users", params={"q": "last_name~smith", "order_by": "first_name"}).json()
    assert [u["first_name"] for u in by_first["user"]] == ["John", "Mary Ann"]
    full = api("GET", "/users", params={"q": "primary_id~jsmith1", "expand": "full"}).json()["user"][0]
    assert full["user_identifier"] and full["link"].endswith("/users/JSMITH1")


def test_list_without_q_covers_everyone(api: Api) -> None:
    page = api("GET", "/users", params={"limit": 100}).json()
    assert page["total_record_count"] == len(page["user"]) >= len(SEED_USERS)
    names = [(u["last_name"].lower(), u["first_name"].lower(), u["primary_id"].lower()) for u in page["user"]]
    assert names == sorted(names)
    today = api("GET", "/users", params={"modify_date_from": "2000-01-01"}).json()
    assert today["total_record_count"] == page["total_record_count"]


@pytest.mark.parametrize("quirk, expected", [("exact", 2), ("overstate", 7), ("minus_one", -1)])
def test_total_quirk_knob(api: Api, server: SandboxServer, quirk: str, expected: int) -> None:
    server.knobs.total_quirk = quirk
    page = search(api, "last_name~lee")
    assert page["total_record_count"] == expected and ids(page) == {"ALEE", "BLEE"}


# -- code tables and the merge helper ---------------------------------------------------------------------------


def test_code_tables(api: Api, server: SandboxServer, http: requests.Session) -> None:
    groups = api("GET", "/conf/code-tables/UserGroups").json()
    assert groups["name"] == "UserGroups"
    assert any(row["code"] == "TRLN" and row["enabled"] and row["description"] for row in groups["row"])
    assert {row["code"] for row in api("GET", "/conf/code-tables/NoteTypes").json()["row"]} >= {"REGISTAR", "POPUP"}
    xml = http.get(server.base_url + "/conf/code-tables/UserIdentifierTypes", params={"apikey": KEY})
    codes = etree.fromstring(xml.content).xpath("//row/code/text()")
    assert codes == ["BARCODE", "UNIV_ID", "NET_ID", "ONELINK_ID", "OTHER_ID_1"]
    assert error_of(api("GET", "/conf/code-tables/NoSuchTable"))[:2] == (400, "402119")


def test_merge_helper_moves_fulfillment_and_deletes_from(
    server: SandboxServer, http: requests.Session, api: Api
) -> None:
    server.store.insert_many([stored_user("MERGE-FROM", "Dup", "Licate", loans={"value": 2}, requests={"value": 1}),
                              stored_user("MERGE-TO", "Dup", "Licate", loans={"value": 1})])
    merge_url = server.base_url.replace("/almaws/v1", "/sandbox/merge")
    assert http.post(merge_url, params={"from": "MERGE-FROM", "to": "MERGE-TO"}).status_code == 400  # needs the key
    assert http.post(merge_url, params={"apikey": KEY, "from": "MERGE-FROM", "to": "MERGE-TO"}).status_code == 204
    assert error_of(api("GET", "/users/MERGE-FROM"))[1] == "401861"
    counts = api("GET", "/users/MERGE-TO", params={"expand": "loans,requests"}).json()
    assert (counts["loans"]["value"], counts["requests"]["value"]) == (3, 1)
    again = http.post(merge_url, params={"apikey": KEY, "from": "MERGE-FROM", "to": "MERGE-TO", "format": "json"})
    assert error_of(again)[:2] == (400, "401861")
