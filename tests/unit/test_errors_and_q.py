"""The error table and the q builder."""

import pytest

from almatools.client import build_q
from almatools.errors import (
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


@pytest.mark.parametrize(("status", "code", "cls"), [
    (400, "401861", NotFoundError), (400, "401890", NotFoundError), (400, "60224", NotFoundError),
    (400, "401851", DuplicateError),
    *[(400, c, InvalidRecordError) for c in ("401664", "401852", "401853", "401854", "401855", "401857",
                                              "401858", "401859", "401676", "500038", "401863", "401864")],
    (400, "UNAUTHORIZED", AuthError), (401, None, AuthError), (403, "INVALID_REQUEST", AuthError),
    (429, "PER_SECOND_THRESHOLD", RateLimitError), (429, "DAILY_THRESHOLD", QuotaExhaustedError),
    (500, "INTERNAL_SERVER_ERROR", ServerError), (503, None, ServerError), (400, "999999", AlmaError),
    # the codes of Alma's wrapped JSON errors (recorded replies in tests/fixtures/alma)
    (404, "NOT_FOUND", NotFoundError), (400, "BAD_REQUEST", InvalidRecordError), (404, None, NotFoundError),
    (502, None, ServerError),
])
def test_codes_map_to_classes(status, code, cls):
    assert error_for(status, code) is cls


def test_error_text_carries_status_code_and_tracking_id():
    err = NotFoundError("User with identifier x was not found.", status=400, code="401861",
                        tracking_id="E01-1", method="GET", path="/users/x")
    text = str(err)
    assert "401861" in text and "E01-1" in text and "HTTP 400" in text and "GET /users/x" in text
    assert isinstance(err, AlmaError)


def test_q_builder_joins_with_and_and_escapes_values():
    assert build_q(last_name="Smith", first_name="Mary  Ann") == "last_name~Smith AND first_name~Mary_Ann"
    assert build_q(("email", "a@b.edu")) == "email~a@b.edu"
    # a value cannot open a clause of its own
    assert build_q(last_name="x AND primary_id~y") == "last_name~x_primary_id_y"


@pytest.mark.parametrize("kwargs", [{"password": "x"}, {"last_name": "  "}])
def test_q_builder_refuses_unknown_fields_and_empty_values(kwargs):
    from almatools.errors import ConfigError

    with pytest.raises(ConfigError):
        build_q(**kwargs)


@pytest.mark.parametrize(("body", "content_type", "expected"), [
    (b'{"web_service_result":{"errorsExist":true,"errorList":{"error":{"errorCode":"BAD_REQUEST",'
     b'"errorMessage":"\\n(was java.lang.IllegalArgumentException) (through reference chain: '
     b'com.exlibris.alma.ws.jaxb.user.User[\\"contact_info\\"]->com.exlibris.alma.ws.jaxb.user.ContactInfo'
     b'[\\"email\\"]->java.util.ArrayList[0]->com.exlibris.alma.ws.jaxb.user.Email[\\"email_address\\"])",'
     b'"trackingId":"E01-1"}}}}', "application/json",
     ("BAD_REQUEST", "Alma could not read the value of contact_info.email[0].email_address in the record sent "
                     "(was java.lang.IllegalArgumentException)", "E01-1")),
    (b'{"errorsExist":true,"errorList":{"error":[{"errorCode":401861,"errorMessage":"  User with identifier x '
     b'was   not found. "}]},"result":null}', "application/json",
     ("401861", "User with identifier x was not found.", None)),
    (b"<web_service_result><errorList><error><errorCode>UNAUTHORIZED</errorCode><errorMessage>API-key not "
     b"defined</errorMessage></error></errorList></web_service_result>", "application/xml",
     ("UNAUTHORIZED", "API-key not defined", None)),
    (b"<html><head><title>502 Bad Gateway</title></head><body><h1>502</h1></body></html>", "text/html",
     (None, "Alma's gateway answered with an error page (502 Bad Gateway) instead of an API reply", None)),
    (b"", "", (None, "HTTP 502 Bad Gateway with no body", None)),
    (b"<broken", "application/xml", (None, "<broken", None)),
    (b'{"message": "upstream timed out"}', "application/json",
     (None, "HTTP 400 Bad Gateway with a JSON reply that holds no Alma error", None)),
])
def test_error_bodies_of_every_shape(body, content_type, expected):
    from almatools.client import alma_error_fields

    assert alma_error_fields(502 if not body else 400, content_type, body, "Bad Gateway") == expected


@pytest.mark.parametrize(("status", "code", "message", "cls"), [
    # the gateway's codes, by code whatever the status (tests/fixtures/alma/README.md)
    (400, "INVALID_REQUEST", None, AuthError), (400, "FORBIDDEN", None, AuthError),
    (403, "REQUEST_TOO_LARGE", None, InvalidRecordError), (413, "REQUEST_TOO_LARGE", None, InvalidRecordError),
    # GENERAL_ERROR is an auth error only when it asks for an apikey (recorded: error_general_error_no_apikey.xml)
    (500, "GENERAL_ERROR", "A Gateway error has occurred - Make sure you add an appropriate apikey as a "
                           "parameter or a header.", AuthError),
    (400, "GENERAL_ERROR", "Provide an API key", AuthError), (400, "GENERAL_ERROR", "Bad API-key", AuthError),
    (500, "GENERAL_ERROR", "Some Error Message", ServerError), (400, "GENERAL_ERROR", None, AlmaError),
])
def test_gateway_codes_map_to_classes(status, code, message, cls):
    assert error_for(status, code, message) is cls


def test_every_error_of_a_reply_is_kept_and_the_first_gives_the_code():
    from almatools.client import alma_error_fields

    body = (b'{"errorsExist":true,"errorList":{"error":[{"errorCode":"401664","errorMessage":"Mandatory field is '
            b'missing: library"},{"errorCode":"401852","errorMessage":"Illegal user group","trackingId":"E01-2"},'
            b'{"errorCode":"401664","errorMessage":"Mandatory field is missing: library"}]},"result":null}')
    assert alma_error_fields(400, "application/json", body) == (
        "401664", "Mandatory field is missing: library; also: Illegal user group (401852)", "E01-2")
    xml = (b"<web_service_result><errorList><error><errorCode>401664</errorCode><errorMessage>a</errorMessage>"
           b"</error><error><errorCode>401664</errorCode><errorMessage>b</errorMessage></error></errorList>"
           b"</web_service_result>")
    assert alma_error_fields(400, "application/xml", xml) == ("401664", "a; also: b", None)


def test_tag_case_and_a_tracking_id_inside_the_message():
    from almatools.client import alma_error_fields

    body = (b"<WEB_SERVICE_RESULT><ERRORLIST><Error><ErrorCode>401858</ErrorCode><ERRORMESSAGE>The external id in "
            b"DB does not fit.\r\n (tracking id: E01-3 )</ERRORMESSAGE></Error></ERRORLIST></WEB_SERVICE_RESULT>")
    assert alma_error_fields(400, "application/xml", body) == ("401858", "The external id in DB does not fit.",
                                                               "E01-3")
    # a trackingId field wins over one in the message
    both = (b'{"errorList":{"error":[{"errorCode":"1","errorMessage":"x (Tracking ID: E01-4)","trackingId":"E01-5"}]}}')
    assert alma_error_fields(400, "application/json", both) == ("1", "x", "E01-5")


def test_xml_pages_and_users_read_as_json_and_other_xml_does_not():
    from almatools.replies import json_of_xml_reply

    one = b'<users total_record_count="1"><user><primary_id>p1</primary_id><last_name>Ek</last_name></user></users>'
    assert json_of_xml_reply(one) == {"total_record_count": 1, "user": [{"link": None, "primary_id": "p1",
                                                                          "last_name": "Ek"}]}
    assert json_of_xml_reply(b'<users total_record_count="0"/>') == {"total_record_count": 0}
    for other in (b"<web_service_result/>", b"<broken", b"", b"<user><birth_date>soon</birth_date></user>"):
        assert json_of_xml_reply(other) is None
