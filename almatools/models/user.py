"""The typed, read-only view of a user record (:class:`User`), with the raw payload kept."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, NamedTuple

from lxml import etree

from almatools.models.reading import user_from_xml
from almatools.models.schema import RecordError, parse_alma_date
from almatools.models.writing import user_to_xml


class Email(NamedTuple):
    """One email of a user."""

    address: str
    types: tuple[str, ...]
    preferred: bool
    segment_type: str | None = None


class Identifier(NamedTuple):
    """One additional identifier of a user (``user_identifier``)."""

    id_type: str | None
    value: str
    status: str | None


class Phone(NamedTuple):
    """One phone number of a user."""

    number: str
    types: tuple[str, ...]
    preferred: bool
    preferred_sms: bool


class Address(NamedTuple):
    """One postal address of a user (the fields used to compare people)."""

    line1: str
    city: str
    postal_code: str
    types: tuple[str, ...]
    preferred: bool


def _code(value: Any) -> str | None:
    if isinstance(value, Mapping):
        v = value.get("value")
        return None if v is None else str(v)
    return None if value is None else str(value)


def _codes(items: Any) -> tuple[str, ...]:
    return tuple(c for c in (_code(i) for i in items or ()) if c)


@dataclass(frozen=True)
class User:
    """A read-only, typed view of one Alma user object, keeping the raw payload.

    Build it with :meth:`from_json` (or :meth:`from_xml`); :meth:`to_json` gives back exactly the
    payload it was made from, so records can be edited as JSON and written back losslessly.
    The raw payload is shared, not copied: treat it as read-only.

    Attributes:
        raw: The Alma user object as the JSON API returns it.
    """

    raw: Mapping[str, Any]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> User:
        """Wrap an Alma user object.

        Raises:
            RecordError: ``data`` is not an object.
        """
        if not isinstance(data, Mapping):
            raise RecordError(f"a user must be an object, got {type(data).__name__}")
        return cls(data)

    @classmethod
    def from_xml(cls, elem: etree._Element) -> User:
        """Read a ``<user>`` element (see :func:`user_from_xml`)."""
        return cls(user_from_xml(elem))

    def to_json(self) -> dict[str, Any]:
        """Return a deep copy of the raw payload."""
        return copy.deepcopy(dict(self.raw))

    def to_xml(self) -> etree._Element:
        """Return the record as a ``<user>`` element."""
        return user_to_xml(self.raw)

    def __hash__(self) -> int:
        return hash(self.primary_id.casefold())

    def _str(self, key: str) -> str:
        v = self.raw.get(key)
        return "" if v is None else str(v)

    @property
    def primary_id(self) -> str:
        """The primary identifier (Alma compares it case-insensitively)."""
        return self._str("primary_id")

    @property
    def first_name(self) -> str:
        """First name ("" when empty)."""
        return self._str("first_name")

    @property
    def middle_name(self) -> str:
        """Middle name ("" when empty)."""
        return self._str("middle_name")

    @property
    def last_name(self) -> str:
        """Last name ("" when empty)."""
        return self._str("last_name")

    @property
    def full_name(self) -> str:
        """Alma's ``full_name``, or the name parts joined when the record has none."""
        return self._str("full_name") or " ".join(
            p for p in (self.first_name, self.middle_name, self.last_name) if p)

    @property
    def user_group(self) -> str | None:
        """The user group code, e.g. ``"UGRAD"``."""
        return _code(self.raw.get("user_group")) or None

    @property
    def account_type(self) -> str | None:
        """``"INTERNAL"`` (locally managed) or ``"EXTERNAL"`` (SIS-managed)."""
        return _code(self.raw.get("account_type")) or None

    @property
    def record_type(self) -> str | None:
        """``"PUBLIC"``, ``"STAFF"`` or ``"CONTACT"``."""
        return _code(self.raw.get("record_type")) or None

    @property
    def status(self) -> str | None:
        """``"ACTIVE"`` or ``"INACTIVE"``."""
        return _code(self.raw.get("status")) or None

    @property
    def external_id(self) -> str:
        """The SIS profile code of an external user ("" for internal users)."""
        return self._str("external_id")

    @property
    def expiry_date(self) -> date | None:
        """The expiry date. Raises ValueError if the record holds something that is not a date."""
        return parse_alma_date(self.raw.get("expiry_date"))

    @property
    def purge_date(self) -> date | None:
        """The purge date (no date: the Purge Users job never removes the record)."""
        return parse_alma_date(self.raw.get("purge_date"))

    @property
    def birth_date(self) -> date | None:
        """The birth date."""
        return parse_alma_date(self.raw.get("birth_date"))

    @property
    def emails(self) -> list[Email]:
        """The emails as (address, types, preferred, segment_type)."""
        return [Email(str(e.get("email_address") or ""), _codes(e.get("email_type")),
                      bool(e.get("preferred")), e.get("segment_type"))
                for e in self._contact("email")]

    @property
    def preferred_email(self) -> str | None:
        """The preferred email address, else the first one, else None."""
        emails = self.emails
        for e in emails:
            if e.preferred and e.address:
                return e.address
        return next((e.address for e in emails if e.address), None)

    @property
    def phones(self) -> list[Phone]:
        """The phone numbers as (number, types, preferred, preferred_sms)."""
        return [Phone(str(p.get("phone_number") or ""), _codes(p.get("phone_type")),
                      bool(p.get("preferred")), bool(p.get("preferred_sms")))
                for p in self._contact("phone")]

    @property
    def addresses(self) -> list[Address]:
        """The postal addresses (line1, city, postal code, types, preferred)."""
        return [Address(str(a.get("line1") or ""), str(a.get("city") or ""),
                        str(a.get("postal_code") or ""), _codes(a.get("address_type")),
                        bool(a.get("preferred")))
                for a in self._contact("address")]

    @property
    def identifiers(self) -> list[Identifier]:
        """The additional identifiers as (id_type, value, status)."""
        return [Identifier(_code(i.get("id_type")), str(i.get("value") or ""), i.get("status"))
                for i in self.raw.get("user_identifier") or ()]

    @property
    def all_ids(self) -> list[str]:
        """The primary id followed by every identifier value (what Alma's ``all_unique`` searches)."""
        return [self.primary_id] + [i.value for i in self.identifiers]

    @property
    def roles(self) -> list[str]:
        """The role type codes, e.g. ``["200", "21"]`` (200 is Patron)."""
        return [c for c in (_code(r.get("role_type")) for r in self.raw.get("user_role") or ()) if c]

    @property
    def statistics(self) -> list[str]:
        """The statistical category codes."""
        return [c for c in (_code(s.get("statistic_category"))
                            for s in self.raw.get("user_statistic") or ()) if c]

    def statistic(self, category_type: str) -> str | None:
        """The category code of the first statistic of the given category type (e.g. PATRON_TYPE)."""
        for s in self.raw.get("user_statistic") or ():
            if _code(s.get("category_type")) == category_type:
                return _code(s.get("statistic_category"))
        return None

    def is_sis_managed(self, sis_profiles: Iterable[str]) -> bool:
        """True for an EXTERNAL record whose ``external_id`` is one of the SIS profile codes."""
        return self.account_type == "EXTERNAL" and self.external_id in set(sis_profiles)

    @property
    def is_active(self) -> bool:
        """True when the status is ACTIVE (Alma's default when the field is missing)."""
        return (self.status or "ACTIVE") == "ACTIVE"

    def _contact(self, key: str) -> list[Mapping[str, Any]]:
        info = self.raw.get("contact_info") or {}
        return list(info.get(key) or ())
