"""The institution's policy: its registration procedure, written down as a TOML file.

A policy says which ``external_id`` codes mark SIS-managed users, how long to keep a record after it
expires (retention), which fields staff must fill in, and, per user group, whether the SIS loads it,
the format of its primary identifiers, its default expiry, whether it gets an Alma password, and its
patron-type statistical category; plus the affiliations staff pick from on the registration form.

The kit's default is ``almatools/policies/default.toml``; ``examples/policies/`` has one file per staff
procedure the kit was made from. Point ``ALMATOOLS_POLICY`` (or ``--policy``) at your own copy.
A broken file raises :class:`~almatools.errors.PolicyError` naming the file, the key and what is allowed.

Patron types are statistical-category **codes** (``user_statistic[].statistic_category``): Alma's
``category_type`` is output-only and real records usually lack it, so :meth:`Policy.patron_type_of` reads
a record's patron type as the statistic whose code the policy names (see :attr:`Policy.patron_type_codes`).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from almatools.config import policy_file
from almatools.errors import PolicyError
from almatools.files import input_problem

__all__ = ["Policy", "GroupPolicy", "Affiliation", "IdentifierType", "load_policy", "MANDATORY_FIELDS",
           "PASSWORD_MODES"]

# Fields a policy may make mandatory: Alma's Quick User Management fields plus the patron-type category.
MANDATORY_FIELDS = ("first_name", "last_name", "primary_id", "user_group", "expiry_date", "purge_date",
                    "email_type", "email_address", "birth_date", "phone_number", "patron_type")
# temporary: a temporary password with "force password change" (seed 000, locally managed patrons);
# none: no Alma password at all, patrons sign in through an external identity (seed 003);
# optional: staff may set one.
PASSWORD_MODES = ("temporary", "none", "optional")
ID_CASES = ("keep", "upper", "lower")
MANAGED = ("sis", "local")
RECORD_TYPES = ("PUBLIC", "STAFF")
DEFAULT_PLACEHOLDERS = ("N/A", "NA", "NONE", "NULL", "TBD", "UNKNOWN", "0", "00", "000", "0000", "000000", "9999",
                        "999999", "-", "X", "XXX", "noemail@none.com", "none@none.com")
"""Values staff type when the real one is unknown (the ``placeholders`` key of ``[institution]``)."""


@dataclass(frozen=True)
class GroupPolicy:
    """What the procedure says about one Alma user group."""

    code: str
    description: str
    sis_loaded: bool
    id_pattern: re.Pattern[str]
    id_hint: str
    id_case: str = "keep"
    default_expiry_days: int = 365
    password: str = "optional"
    patron_type: str | None = None
    record_type: str = "PUBLIC"  # STAFF for library staff accounts (they may hold operator roles)
    # Identifier types the group's SIS profile matches on (its "Match ID Type"), sent as user_identifier
    # entries so the next SIS load updates the record instead of creating a duplicate (seed 000's FAQ).
    sis_match_ids: tuple[str, ...] = ()

    def normalise_id(self, value: str) -> str:
        """The identifier as the procedure wants it stored: trimmed, inner spaces removed, case set."""
        cleaned = "".join(str(value).split())
        return cleaned.upper() if self.id_case == "upper" else cleaned.lower() if self.id_case == "lower" else cleaned

    def id_matches(self, value: str) -> bool:
        """Whether a (normalised) identifier has this group's format."""
        return bool(self.id_pattern.fullmatch(value))


@dataclass(frozen=True)
class IdentifierType:
    """An Alma identifier type (``UserIdentifierTypes`` code) that registration asks for and checks."""

    code: str
    label: str
    pattern: re.Pattern[str]
    hint: str
    case: str = "keep"
    # "primary_id": left empty, it takes the primary identifier (where the SIS's ID is also the primary id).
    default_from: str = ""

    def normalise(self, value: str) -> str:
        """The value trimmed, inner spaces removed, case set."""
        cleaned = "".join(str(value).split())
        return cleaned.upper() if self.case == "upper" else cleaned.lower() if self.case == "lower" else cleaned

    def matches(self, value: str) -> bool:
        return bool(self.pattern.fullmatch(value))


@dataclass(frozen=True)
class Affiliation:
    """A choice on the registration form: who the person is, mapped to a group and a management mode."""

    key: str
    label: str
    group: str
    managed: str  # "sis" (EXTERNAL) or "local" (INTERNAL)
    patron_type: str | None = None  # overrides the group's patron type code

    @property
    def sis_managed(self) -> bool:
        return self.managed == "sis"


@dataclass(frozen=True)
class Policy:
    """An institution's policy file, checked and typed.

    ``placeholders``: identifier, email and phone values staff type when the real one is unknown (``N/A``,
    ``0000``, ``TBD``…), compared ignoring case, spaces and punctuation; records sharing one are reported
    once, with their count, never pair by pair.
    """

    name: str
    source: Path
    sis_profiles: tuple[str, ...]
    retention_days: int
    mandatory: tuple[str, ...]
    move_wait_days: int
    patron_type_category_type: str
    groups: dict[str, GroupPolicy] = field(default_factory=dict)
    affiliations: dict[str, Affiliation] = field(default_factory=dict)
    placeholders: tuple[str, ...] = DEFAULT_PLACEHOLDERS
    # One person keeps one account: any active, locally managed account of the person blocks a new one.
    one_account_per_person: bool = True
    identifier_types: dict[str, IdentifierType] = field(default_factory=dict)

    @property
    def sis_groups(self) -> frozenset[str]:
        """User groups the SIS loads."""
        return frozenset(code for code, g in self.groups.items() if g.sis_loaded)

    def group(self, code: str | None) -> GroupPolicy | None:
        """The group's policy, or None for a group the policy does not know."""
        return self.groups.get(code) if code else None

    def affiliation(self, key_or_label: str | None) -> Affiliation | None:
        """An affiliation by its key (``friend``) or its label (``Friend of the Library``), ignoring case and
        spacing; None when neither matches."""
        text = " ".join(str(key_or_label or "").split())
        if not text:
            return None
        if text in self.affiliations:
            return self.affiliations[text]
        folded = text.casefold()
        for affiliation in self.affiliations.values():
            if folded in (affiliation.key.casefold(), " ".join(affiliation.label.split()).casefold()):
                return affiliation
        return None

    @property
    def patron_type_codes(self) -> frozenset[str]:
        """Every statistical-category code the policy names as a patron type (groups and affiliations)."""
        codes = {g.patron_type for g in self.groups.values() if g.patron_type}
        codes |= {a.patron_type for a in self.affiliations.values() if a.patron_type}
        return frozenset(codes)

    def patron_type_codes_for(self, group_code: str | None) -> frozenset[str]:
        """The patron-type codes the policy allows for a user group: the group's and those of the
        affiliations that map to it (empty for a group the policy does not know)."""
        group = self.group(group_code)
        if group is None:
            return frozenset()
        codes = {group.patron_type} if group.patron_type else set()
        codes |= {a.patron_type or group.patron_type for a in self.affiliations.values()
                  if a.group == group.code and (a.patron_type or group.patron_type)}
        return frozenset(c for c in codes if c)

    def patron_type_for(self, group_code: str | None, affiliation: str | None = None) -> str | None:
        """The patron-type code registration writes: the affiliation's, else the group's."""
        chosen = self.affiliation(affiliation)
        if chosen is not None and chosen.patron_type and chosen.group == group_code:
            return chosen.patron_type
        group = self.group(group_code)
        return group.patron_type if group else None

    def patron_type_of(self, user: Any) -> str | None:
        """A record's patron type: the code of its first statistic the policy names as a patron type.

        Matches on ``statistic_category`` codes only; ``category_type`` is output-only in Alma and usually
        absent from real records, so it is not needed (a statistic whose type is the policy's
        ``patron_type_category_type`` still counts, for files that carry it).
        """
        codes = self.patron_type_codes
        for stat in (user or {}).get("user_statistic") or []:
            if not isinstance(stat, dict):
                continue
            code = _value(stat.get("statistic_category"))
            if code and (code in codes or _value(stat.get("category_type")) == self.patron_type_category_type):
                return code
        return None

    def match_id_types(self, group_code: str | None) -> tuple[str, ...]:
        """Identifier types the group's SIS profile matches on (empty for a group the SIS does not load)."""
        group = self.group(group_code)
        return group.sis_match_ids if group else ()


def _value(field_value: Any) -> str:
    """The code of an Alma code field (``{"value": "X"}``) or a plain string."""
    if isinstance(field_value, dict):
        return str(field_value.get("value") or "")
    return str(field_value or "")


_TOP = {"institution", "groups", "affiliations", "identifier_types"}
_INSTITUTION = {"name": str, "sis_profiles": list, "retention_days": int, "mandatory": list, "move_wait_days": int,
                "patron_type_category_type": str, "one_account_per_person": bool, "placeholders": list}
_GROUP = {"description": str, "sis_loaded": bool, "id_pattern": str, "id_hint": str, "id_case": str,
          "default_expiry_days": int, "password": str, "patron_type": str, "record_type": str,
          "sis_match_ids": list}
_AFFILIATION = {"label": str, "group": str, "managed": str, "patron_type": str}
_IDENTIFIER = {"label": str, "pattern": str, "hint": str, "case": str, "default_from": str}
_DEFAULT_FROM = ("", "primary_id")
_TYPE_WORDS = {str: "text in quotes", list: "a list like [\"a\", \"b\"]", int: "a whole number",
               bool: "true or false"}


class _Reader:
    """Checks one table of the file; every complaint names the file and the dotted key."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, problem: str) -> PolicyError:
        return PolicyError(f"Policy file {self.path}: {key}: {problem}")

    def table(self, data: Any, where: str, schema: dict[str, type], required: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise self.fail(where, "must be a table ([" + where + "])")
        unknown = sorted(set(data) - set(schema))
        if unknown:
            raise self.fail(f"{where}.{unknown[0]}", f"unknown key; allowed keys are {', '.join(schema)}")
        for key in required:
            if key not in data:
                raise self.fail(f"{where}.{key}", "is missing")
        for key, value in data.items():
            wanted = schema[key]
            if not isinstance(value, wanted) or (wanted is int and isinstance(value, bool)):
                raise self.fail(f"{where}.{key}", f"must be {_TYPE_WORDS[wanted]}, not {value!r}")
        return data

    def choice(self, value: str, key: str, allowed: tuple[str, ...]) -> str:
        if value not in allowed:
            raise self.fail(key, f"{value!r} is not allowed; use one of {', '.join(allowed)}")
        return value

    def days(self, value: int, key: str) -> int:
        if value < 0:
            raise self.fail(key, f"must be zero or more days, not {value}")
        return value


def _default_path() -> Path:
    return Path(str(resources.files("almatools") / "policies" / "default.toml"))


def _placeholders(read: _Reader, inst: dict[str, Any]) -> tuple[str, ...]:
    values = inst.get("placeholders", list(DEFAULT_PLACEHOLDERS))
    if not all(isinstance(v, str) and v.strip() for v in values):
        raise read.fail("institution.placeholders", 'must list values as text, e.g. ["N/A", "0000", "TBD"]')
    return tuple(v.strip() for v in values)


_MAX_POLICY_BYTES = 1 << 20
"""A policy file is a few KiB; a path that holds more (a link to a device, a data file) is refused."""


def load_policy(path: str | Path | None = None) -> Policy:
    """Read and check a policy file.

    Args:
        path: the TOML file; default ``ALMATOOLS_POLICY``, else the kit's default policy.

    Raises:
        PolicyError: the file is missing, is not TOML, or has a key or value the kit cannot use.
    """
    chosen = Path(path) if path else policy_file() or _default_path()
    chosen = chosen.expanduser()
    read = _Reader(chosen)
    problem = input_problem(chosen)
    if problem is not None:
        raise PolicyError(f"Policy file {chosen} {problem} (check ALMATOOLS_POLICY or --policy).")
    try:
        with open(chosen, "rb") as fh:  # bounded: a policy is a few KiB, whatever the path turns out to hold
            raw = fh.read(_MAX_POLICY_BYTES + 1)
        if len(raw) > _MAX_POLICY_BYTES:
            raise PolicyError(f"Policy file {chosen} is larger than {_MAX_POLICY_BYTES >> 20} MiB: it is not a "
                              "policy file (check ALMATOOLS_POLICY or --policy).")
        data = tomllib.loads(raw.decode("utf-8-sig"))
    except FileNotFoundError as exc:
        raise PolicyError(f"Policy file {chosen} does not exist (check ALMATOOLS_POLICY or --policy).") from exc
    except OSError as exc:
        raise PolicyError(f"Policy file {chosen} cannot be read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise PolicyError(f"Policy file {chosen} is not UTF-8 text (byte {exc.start:,}): save it as UTF-8 in a "
                          "text editor") from exc
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"Policy file {chosen} is not valid TOML: {exc}") from exc
    unknown = sorted(set(data) - _TOP)
    if unknown:
        raise read.fail(unknown[0], f"unknown table; allowed are {', '.join(sorted(_TOP))}")
    inst = read.table(data.get("institution", {}), "institution", _INSTITUTION, ("name", "sis_profiles"))
    profiles = tuple(inst["sis_profiles"])
    if not all(isinstance(p, str) and p.strip() for p in profiles):
        raise read.fail("institution.sis_profiles", "must list SIS profile codes as text, e.g. [\"SIS\"]")
    mandatory = tuple(inst.get("mandatory", ("first_name", "last_name", "primary_id", "user_group")))
    for item in mandatory:
        read.choice(item, "institution.mandatory", MANDATORY_FIELDS)

    identifier_types: dict[str, IdentifierType] = {}
    raw_types = data.get("identifier_types") or {}
    if not isinstance(raw_types, dict):
        raise read.fail("identifier_types", "must be tables like [identifier_types.UNIV_ID]")
    for code, raw in raw_types.items():
        where = f"identifier_types.{code}"
        t = read.table(raw, where, _IDENTIFIER, ("label", "pattern", "hint"))
        try:
            id_pattern = re.compile(t["pattern"])
        except re.error as exc:
            raise read.fail(f"{where}.pattern", f"is not a valid regular expression ({exc})") from exc
        identifier_types[code] = IdentifierType(
            code=code, label=t["label"], pattern=id_pattern, hint=t["hint"],
            case=read.choice(t.get("case", "keep"), f"{where}.case", ID_CASES),
            default_from=read.choice(t.get("default_from", ""), f"{where}.default_from", _DEFAULT_FROM))

    groups: dict[str, GroupPolicy] = {}
    raw_groups = data.get("groups") or {}
    if not isinstance(raw_groups, dict) or not raw_groups:
        raise read.fail("groups", "define at least one user group, e.g. [groups.UGRAD]")
    for code, raw in raw_groups.items():
        where = f"groups.{code}"
        g = read.table(raw, where, _GROUP, ("description", "sis_loaded", "id_pattern", "id_hint"))
        try:
            pattern = re.compile(g["id_pattern"])
        except re.error as exc:
            raise read.fail(f"{where}.id_pattern", f"is not a valid regular expression ({exc})") from exc
        groups[code] = GroupPolicy(
            code=code, description=g["description"], sis_loaded=g["sis_loaded"], id_pattern=pattern,
            id_hint=g["id_hint"], id_case=read.choice(g.get("id_case", "keep"), f"{where}.id_case", ID_CASES),
            default_expiry_days=read.days(g.get("default_expiry_days", 365), f"{where}.default_expiry_days"),
            password=read.choice(g.get("password", "optional"), f"{where}.password", PASSWORD_MODES),
            patron_type=g.get("patron_type"),
            record_type=read.choice(g.get("record_type", "PUBLIC"), f"{where}.record_type", RECORD_TYPES),
            sis_match_ids=tuple(g.get("sis_match_ids", ())))
        if not all(isinstance(t, str) and t for t in groups[code].sis_match_ids):
            raise read.fail(f"{where}.sis_match_ids", "must list identifier type codes as text, e.g. [\"UNIV_ID\"]")
        for id_type in groups[code].sis_match_ids:
            if id_type not in identifier_types:
                known = ", ".join(identifier_types) or "none yet"
                raise read.fail(f"{where}.sis_match_ids", f"{id_type!r} is not described in the file; add "
                                f"[identifier_types.{id_type}] (label, pattern, hint) - described: {known}")
        if g["sis_loaded"] and groups[code].password == "temporary":
            raise read.fail(f"{where}.password", "SIS-loaded groups get no temporary Alma password; use none or optional")

    affiliations: dict[str, Affiliation] = {}
    for key, raw in (data.get("affiliations") or {}).items():
        where = f"affiliations.{key}"
        a = read.table(raw, where, _AFFILIATION, ("label", "group", "managed"))
        if a["group"] not in groups:
            raise read.fail(f"{where}.group", f"{a['group']!r} is not a group of this file; use one of {', '.join(groups)}")
        affiliations[key] = Affiliation(key, a["label"], a["group"], read.choice(a["managed"], f"{where}.managed", MANAGED),
                                        a.get("patron_type"))
    if not affiliations:
        raise read.fail("affiliations", "define at least one affiliation staff can pick, e.g. [affiliations.alum]")

    return Policy(name=inst["name"], source=chosen, sis_profiles=profiles,
                  retention_days=read.days(inst.get("retention_days", 365), "institution.retention_days"),
                  mandatory=mandatory,
                  move_wait_days=read.days(inst.get("move_wait_days", 365), "institution.move_wait_days"),
                  patron_type_category_type=inst.get("patron_type_category_type", "PATRON_TYPE"),
                  groups=groups, affiliations=affiliations,
                  one_account_per_person=inst.get("one_account_per_person", True),
                  identifier_types=identifier_types, placeholders=_placeholders(read, inst))
