"""Alma user records: the Users API's JSON object, its XML form, and a typed read-only view.

Alma speaks two dialects of the same user record. The REST API returns JSON (``GET /users/{id}``);
the SIS load and Export Users (version 2) read and write XML with the element names of
``rest_user.xsd`` and no namespace. The mapping between them (reference §1) is mechanical but full of
small rules, all of which live here:

* code fields carry a description: ``<user_group desc="Faculty">FAC</user_group>`` is
  ``{"value": "FAC", "desc": "Faculty"}``; a missing ``desc`` attribute is ``"desc": None``, which is
  how Alma's own JSON shows a code without a description;
* XML list wrappers disappear in JSON: ``<user_identifiers><user_identifier>…`` is
  ``"user_identifier": [...]``, and likewise for roles, blocks, notes, statistics, proxies,
  rs_libraries, library notices, the addresses, emails and phones of ``contact_info``, their type
  lists and the parameters of a role; an empty wrapper is an empty list;
* the attributes ``preferred``, ``preferred_sms``, ``segment_type``, ``desc`` and ``link`` are plain
  keys; booleans are JSON ``true``/``false`` and XML ``"true"``/``"false"``;
* ``requests``, ``loans`` and ``fees`` are ``{"value": n, "link": url}`` in JSON and
  ``<loans link="url">n</loans>`` in XML;
* JSON ``null`` is written as ``xsi:nil="true"`` (the XML Schema convention), so that a full GET
  record (``"researcher": null``, ``"campus_code": {"value": null, "desc": ""}``) survives the trip;
  the user's own ``link`` attribute reads back as ``None`` when absent, as on a full GET;
* dates stay strings (``"2022-10-31Z"``); :func:`parse_alma_date` turns them into
  :class:`datetime.date`.

``user_from_xml(user_to_xml(u)) == u`` holds for every user object shaped like Alma's GET output (the
shape the sandbox generator produces); :func:`iter_users_xml` streams files of any size.

Example:
    >>> u = {"primary_id": "100000000", "user_group": {"value": "FAC", "desc": "Faculty"}}
    >>> user_to_xml_bytes(u, xml_declaration=False)
    b'<user><primary_id>100000000</primary_id><user_group desc="Faculty">FAC</user_group></user>'
"""

from __future__ import annotations

from almatools.models.reading import NotAUserFile, iter_users_xml, user_elements, user_from_xml, user_from_xml_bytes
from almatools.models.schema import RecordError, format_alma_date, parse_alma_date
from almatools.models.user import Address, Email, Identifier, Phone, User
from almatools.models.writing import user_to_xml, user_to_xml_bytes, users_to_xml_bytes, write_users_xml

__all__ = [
    "Address",
    "Email",
    "Identifier",
    "NotAUserFile",
    "Phone",
    "RecordError",
    "User",
    "format_alma_date",
    "iter_users_xml",
    "parse_alma_date",
    "user_from_xml",
    "user_from_xml_bytes",
    "user_elements",
    "user_to_xml",
    "user_to_xml_bytes",
    "users_to_xml_bytes",
    "write_users_xml",
]
