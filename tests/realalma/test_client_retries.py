"""A retried POST whose answer is 401851: the kit's own record (created by the lost first POST) or not.

Over real HTTP against the replay server: the first POST's reply is lost (a gateway 502 page), the
look-up finds nobody yet, the second POST is told the primary id is taken, and the record Alma then
returns decides. The 401851 is a recorded reply (XML, tags in lower case, the tracking id inside the
message: ``error_401851_primary_id_kth.xml``, see tests/fixtures/alma/README.md); a JSON 401851 in the
documented shape is replayed too.
"""

from __future__ import annotations

import json

import pytest
from _replay import ReplayServer, Reply

from almatools.client import AlmaClient
from almatools.errors import DuplicateError

TAKEN = Reply.file("error_401851_primary_id_kth.xml", 400)
TAKEN_JSON = Reply.json(json.dumps({"errorsExist": True, "errorList": {"error": [{
    "errorCode": "401851", "errorMessage": "User with identifier P-1 of type Primary id already exists.",
    "trackingId": "E01-0000000000-AAAAA-AWAE000000000"}]}, "result": None}), 400)
NOT_YET = Reply.file("error_401861_not_found.json", 400)
SENT = {"record_type": {"value": "PUBLIC"}, "primary_id": "P-1", "first_name": "Ada", "last_name": "Lovelace",
        "user_group": {"value": "COMMUNITY"}, "account_type": {"value": "INTERNAL"},
        "user_identifier": [{"value": "BC-77", "id_type": {"value": "BARCODE"}}]}


def stored(**changes) -> Reply:
    record = {**SENT, "user_group": {"value": "COMMUNITY", "desc": "Community"}, "full_name": "Ada Lovelace",
              "user_identifier": [{"value": "bc-77", "id_type": {"value": "BARCODE", "desc": "Barcode"},
                                   "status": "ACTIVE", "segment_type": "Internal"}], **changes}
    return Reply.json(json.dumps(record))


def create(alma: ReplayServer) -> dict:
    with AlmaClient(api_key="k", base_url=alma.base_url, per_second=500, backoff=0.001, max_retries=3) as client:
        return client.create_user(SENT)


@pytest.mark.parametrize("taken", [TAKEN, TAKEN_JSON], ids=["recorded-xml", "json"])
def test_401851_after_a_lost_post_returns_the_kits_own_record(taken):
    with ReplayServer() as alma:
        alma.route("POST", "/users", Reply.file("reconstructed_gateway_502.html", 502), taken)
        alma.route("GET", "/users/P-1", NOT_YET, stored())
        assert create(alma)["full_name"] == "Ada Lovelace"
        assert len(alma.calls("POST", "/users")) == 2 and len(alma.calls("GET", "/users/P-1")) == 2


@pytest.mark.parametrize("changes", [
    {"last_name": "Byron"},
    {"user_group": {"value": "STAFF"}},
    {"user_identifier": [{"value": "BC-78", "id_type": {"value": "BARCODE"}}]},
])
def test_401851_after_a_lost_post_for_another_record_is_a_duplicate(changes):
    with ReplayServer() as alma:
        alma.route("POST", "/users", Reply.file("reconstructed_gateway_502.html", 502), TAKEN)
        alma.route("GET", "/users/P-1", NOT_YET, stored(**changes))
        with pytest.raises(DuplicateError) as err:
            create(alma)
    assert err.value.code == "401851" and "already exists" in err.value.message
    assert err.value.tracking_id == "E02-2005081805-4QVEB-AWAE2122010420"


def test_401851_on_the_first_post_is_a_duplicate_without_a_look_up():
    with ReplayServer() as alma:
        alma.route("POST", "/users", TAKEN)
        with pytest.raises(DuplicateError):
            create(alma)
        assert alma.calls("GET", "/users/P-1") == []
