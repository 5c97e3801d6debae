"""The sandbox institution's code tables.

Alma serves its configuration tables at ``GET /almaws/v1/conf/code-tables/{name}``; the sandbox serves
these, uses them to validate writes (an unknown user group is error 401852) and to fill in the ``desc``
labels of code fields, as Alma does. Other modules (the data generator, registration checks) import the
per-table dicts, which map code to description.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

__all__ = [
    "CODE_TABLES",
    "CodeTable",
    "CONTENT_STRUCTURE_STATUSES",
    "GENDERS",
    "NOTE_TYPES",
    "PREFERRED_LANGUAGES",
    "SIS_PROFILES",
    "STATISTIC_CATEGORY_TYPE",
    "USER_ACCOUNT_TYPES",
    "USER_ADDRESS_TYPES",
    "USER_BLOCK_TYPES",
    "USER_EMAIL_TYPES",
    "USER_GROUPS",
    "USER_IDENTIFIER_TYPES",
    "USER_PHONE_TYPES",
    "USER_RECORD_TYPES",
    "USER_STATISTICAL_CATEGORIES",
    "USER_STATISTICAL_TYPES",
    "code_table_json",
    "describe",
]

INSTITUTION = ("01ALMA_SANDBOX", "Alma Sandbox University")
SIS_PROFILES: frozenset[str] = frozenset({"SIS"})
"""Codes of the institution's SIS integration profiles: the ``external_id`` an EXTERNAL user may carry
(rest_user.xsd: it must match a valid SIS profile). The generator's SIS-managed users use ``"SIS"``."""
"""Code and name of the sandbox institution (the ``scope`` of code tables and of patron roles)."""


@dataclass(frozen=True)
class CodeTable:
    """One Alma code table.

    Attributes:
        name: the table name used in the URL, e.g. ``UserGroups``.
        description: the table's label in Alma's configuration UI.
        rows: code -> description, in display order.
        default: the code Alma preselects, if any.
        sub_system: the Alma area the table belongs to.
    """

    name: str
    description: str
    rows: Mapping[str, str]
    default: str | None = None
    sub_system: str = "USERS"


USER_GROUPS: Mapping[str, str] = MappingProxyType({
    "UGRAD": "Undergraduate student",
    "GRAD": "Graduate student",
    "FACULTY": "Faculty",
    "STAFF": "Staff",
    "ALUMNI": "Alumni",
    "COMMUNITY": "Community borrower",
    "RECIPROCAL": "Reciprocal borrower",
    "FRIENDS": "Friends of the Library",
    "LIBSTAFF": "Library staff",
    "VISITOR": "Visitor",
    "AFFILIATE": "Affiliate",
    "BORROWDIRECT": "BorrowDirect borrower",
    "TRLN": "Triangle Research Libraries Network borrower",
})
USER_IDENTIFIER_TYPES: Mapping[str, str] = MappingProxyType({
    "BARCODE": "Barcode",
    "UNIV_ID": "University ID",
    "NET_ID": "Network ID",
    "ONELINK_ID": "OneLink ID",
    "OTHER_ID_1": "Other ID 1",
})
USER_STATISTICAL_CATEGORIES: Mapping[str, str] = MappingProxyType({
    "STUDENT": "Student",
    "FACULTY": "Faculty",
    "STAFF": "Staff",
    "ALUMNI": "Alumni",
    "COMMUNITY": "Community",
    "RECIPROCAL": "Reciprocal",
    "FRIEND": "Friend of the Library",
    "BORROWDIRECT": "BorrowDirect",
    "TRLN": "TRLN",
    "VISITOR": "Visitor",
})
USER_STATISTICAL_TYPES: Mapping[str, str] = MappingProxyType({"PATRON_TYPE": "Patron type"})
STATISTIC_CATEGORY_TYPE: Mapping[str, str] = MappingProxyType(
    {code: "PATRON_TYPE" for code in USER_STATISTICAL_CATEGORIES}
)
"""Statistical category -> its category type (Alma returns it as ``category_type`` on each statistic)."""
USER_EMAIL_TYPES: Mapping[str, str] = MappingProxyType(
    {"personal": "Personal", "school": "School", "work": "Work", "alternative": "Alternative"}
)
USER_ADDRESS_TYPES: Mapping[str, str] = MappingProxyType(
    {"home": "Home", "work": "Work", "school": "School", "alternative": "Alternative"}
)
USER_PHONE_TYPES: Mapping[str, str] = MappingProxyType(
    {"home": "Home", "mobile": "Mobile", "office": "Office", "officeFax": "Office fax"}
)
USER_RECORD_TYPES: Mapping[str, str] = MappingProxyType({"PUBLIC": "Public", "STAFF": "Staff", "CONTACT": "Contact"})
USER_ACCOUNT_TYPES: Mapping[str, str] = MappingProxyType({"INTERNAL": "Internal", "EXTERNAL": "External"})
GENDERS: Mapping[str, str] = MappingProxyType(
    {"MALE": "Male", "FEMALE": "Female", "OTHER": "Other", "NONE": "None"}
)
PREFERRED_LANGUAGES: Mapping[str, str] = MappingProxyType({
    "en": "English", "fr": "French", "de": "German", "es": "Spanish", "it": "Italian", "pt": "Portuguese",
    "nl": "Dutch", "zh": "Chinese", "ja": "Japanese", "ko": "Korean", "ar": "Arabic", "he": "Hebrew",
})
USER_BLOCK_TYPES: Mapping[str, str] = MappingProxyType(
    {"GENERAL": "General", "CASH": "Cash", "LOAN": "Loan", "LIBRARY": "Library"}
)
NOTE_TYPES: Mapping[str, str] = MappingProxyType({
    "CIRCULATION": "Circulation",
    "LIBRARY": "Library",
    "BARCODE": "Barcode",
    "ADDRESS": "Address",
    "OTHER": "Other",
    "REGISTAR": "Registrar",  # Alma's own spelling of the code
    "POPUP": "Pop-up",
})
CONTENT_STRUCTURE_STATUSES: Mapping[str, str] = MappingProxyType({"ACTIVE": "Active", "INACTIVE": "Inactive"})

CODE_TABLES: Mapping[str, CodeTable] = MappingProxyType({
    table.name: table
    for table in (
        CodeTable("UserGroups", "User Groups", USER_GROUPS),
        CodeTable("UserIdentifierTypes", "User Identifier Types", USER_IDENTIFIER_TYPES),
        CodeTable("UserStatisticalCategories", "User Statistical Categories", USER_STATISTICAL_CATEGORIES),
        CodeTable("UserStatisticalTypes", "User Statistical Category Types", USER_STATISTICAL_TYPES),
        CodeTable("UserEmailTypes", "User Email Types", USER_EMAIL_TYPES, default="personal"),
        CodeTable("UserAddressTypes", "User Address Types", USER_ADDRESS_TYPES, default="home"),
        CodeTable("UserPhoneTypes", "User Phone Types", USER_PHONE_TYPES, default="home"),
        CodeTable("UserRecordTypes", "User Record Types", USER_RECORD_TYPES, default="PUBLIC"),
        CodeTable("UserUserType", "User Account Types", USER_ACCOUNT_TYPES, default="INTERNAL"),
        CodeTable("Genders", "Genders", GENDERS),
        CodeTable("UserPreferredLanguage", "User Preferred Language", PREFERRED_LANGUAGES, default="en"),
        CodeTable("UserBlockTypes", "User Block Types", USER_BLOCK_TYPES, default="GENERAL"),
        CodeTable("NoteTypes", "Note Types", NOTE_TYPES, default="OTHER"),
        CodeTable(
            "ContentStructureStatus", "Content Structure Status", CONTENT_STRUCTURE_STATUSES,
            default="ACTIVE", sub_system="INFRA",
        ),
    )
})


def describe(table: str, code: str | None) -> str:
    """The description of ``code`` in ``table``, or ``""`` when the table or the code is unknown."""
    known = CODE_TABLES.get(table)
    return (known.rows.get(code or "", "") if known else "")


def code_table_json(name: str) -> dict[str, Any] | None:
    """The table as Alma's ``GET /conf/code-tables/{name}`` returns it in JSON, or None if unknown."""
    table = CODE_TABLES.get(name)
    if table is None:
        return None
    return {
        "name": table.name,
        "description": table.description,
        "sub_system": {"value": table.sub_system, "desc": table.sub_system.title()},
        "patron_facing": False,
        "language": {"value": "en", "desc": "English"},
        "scope": {
            "institution_id": {"value": INSTITUTION[0], "desc": INSTITUTION[1]},
            "library_id": {"value": "", "desc": ""},
        },
        "row": [
            {"code": code, "description": desc, "default": code == table.default, "enabled": True}
            for code, desc in table.rows.items()
        ],
    }
