"""The institution's groups and policy, its people and their records, and identifier allocation."""

from __future__ import annotations

import tomllib
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from importlib import resources
from typing import Any

SIS_PROFILE = "SIS"
INSTITUTION_CODE = "01SANDBOX_INST"
INSTITUTION_NAME = "Sandbox University"
SCHOOL_DOMAIN = "sandboxu.edu"

SIS_GROUPS = ("UGRAD", "GRAD", "FACULTY", "STAFF")
LOCAL_BORROWERS = ("ALUMNI", "COMMUNITY", "RECIPROCAL", "FRIENDS")
GROUP_WEIGHTS = {"UGRAD": 55, "GRAD": 15, "FACULTY": 8, "STAFF": 9, "ALUMNI": 5, "COMMUNITY": 4,
                 "RECIPROCAL": 1.5, "FRIENDS": 1.5, "LIBSTAFF": 1}
LOCAL_PREFIX = {"ALUMNI": "AL", "COMMUNITY": "CB", "RECIPROCAL": "RB", "FRIENDS": "FR"}
AGES = {"UGRAD": (17, 24), "GRAD": (22, 40), "FACULTY": (28, 72), "STAFF": (20, 66),
        "ALUMNI": (22, 80), "COMMUNITY": (16, 85), "RECIPROCAL": (20, 70), "FRIENDS": (35, 90),
        "LIBSTAFF": (22, 66)}


@dataclass(frozen=True)
class Group:
    """A user group of the default policy, as far as the generator needs it."""

    code: str
    description: str
    sis_loaded: bool
    expiry_days: int
    patron_type: str


@lru_cache(maxsize=1)
def load_policy() -> tuple[dict[str, Group], int]:
    """The default policy's user groups by code, and its retention period in days."""
    text = resources.files("almatools").joinpath("policies/default.toml").read_text("utf-8")
    pol = tomllib.loads(text)
    groups = {code: Group(code, g["description"], bool(g["sis_loaded"]), int(g["default_expiry_days"]),
                          g["patron_type"]) for code, g in pol["groups"].items()}
    return groups, int(pol["institution"]["retention_days"])


def permute(x: int, space: int, key: int) -> int:
    """A keyed bijection of ``range(space)``: ids look random but never repeat.

    A four-round Feistel network on the smallest even number of bits that holds ``space``, with
    cycle walking to stay inside it.
    """
    bits = (space - 1).bit_length()
    half = (bits + 1) // 2
    mask = (1 << half) - 1
    while True:
        left, right = x >> half, x & mask
        for rnd in range(4):
            f = ((right ^ (key + rnd * 0x9E3779B9)) * 0x45D9F3B) & 0xFFFFFFFF
            left, right = right, left ^ ((f ^ (f >> 15)) & mask)
        x = (left << half) | right
        if x < space:
            return x


def _luhn(digits: str) -> str:
    """The Luhn check digit of ``digits`` (library barcodes carry one)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


@dataclass
class Person:
    """A person of the institution: what all of their records start from."""

    p: int  # global person slot: drives the person's unique email, phone and NetID numbers
    first: str
    middle: str
    last: str
    gender: str  # FEMALE | MALE
    show_gender: bool
    birth: date | None
    locale: str
    address: dict[str, Any]
    email_style: int
    email_domain: str
    pref_first: str = ""  # Alma's pref_first_name: "Jack" for Hương, "Bill" for William
    home_p: int = -1  # the household's slot for the home phone (-1: the person's own)


@dataclass
class Rec:
    """One Alma user record of a person (or one the SIS extract carries), before it is shaped as JSON."""

    person: Person
    group: str
    primary_id: str
    external: bool
    first: str
    middle: str
    last: str
    birth: date | None
    external_id: str = ""
    in_sis: bool = False  # the SIS extract carries this very record (same primary id)
    status: str = "ACTIVE"
    expiry: date | None = None
    purge: date | None = None
    status_date: date | None = None
    last_activity: date | None = None
    record_type: str = "PUBLIC"
    title: str = ""
    job: str = ""
    campus: str | None = None
    language: str = "en"
    force_password_change: str = ""
    pref_first: str = ""
    emails: list[list[Any]] = field(default_factory=list)  # [address, [types], preferred]
    phones: list[list[Any]] = field(default_factory=list)  # [number, [types], preferred]
    addresses: list[dict[str, Any]] = field(default_factory=list)
    identifiers: list[list[str]] = field(default_factory=list)  # [id_type, value, status]
    notes: list[dict[str, Any]] = field(default_factory=list)
    blocks: list[dict[str, Any]] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)  # operator role codes besides Patron
    counts: tuple[int, int, float] = (0, 0, 0.0)  # requests, loans, fees


class Ids:
    """Identifier allocation: each chunk owns a disjoint slice of every id space."""

    _SLOTS = {"person": 8_000, "univ": 20_000, "barcode": 20_000, "legacy": 2_000, "libstaff": 1_000}

    def __init__(self, chunk: int, n_chunks: int, seed: int) -> None:
        self.k, self.seed = chunk, seed
        # Numbers derived from the person slot (emails, NetIDs) get as many digits as needed.
        self.person_space = 10 ** max(4, len(str(n_chunks * self._SLOTS["person"] - 1)))
        self.local_slots = min(5_000, 10**6 // max(n_chunks, 1))
        self.used: Counter[str] = Counter()

    def _next(self, space: str, slots: int) -> int:
        i = self.used[space]
        if i >= slots:
            raise RuntimeError(f"sandbox generator: id space {space!r} exhausted in chunk {self.k}")
        self.used[space] += 1
        return self.k * slots + i

    def person(self) -> int:
        return self._next("person", self._SLOTS["person"])

    def univ(self) -> str:
        return f"{permute(self._next('univ', self._SLOTS['univ']), 10**9, self.key(1)):09d}"

    def barcode(self) -> str:
        seq = f"{permute(self._next('barcode', self._SLOTS['barcode']), 10**8, self.key(2)):08d}"
        return "29417" + seq + _luhn("29417" + seq)

    def legacy_barcode(self) -> str:
        return f"L{permute(self._next('legacy', self._SLOTS['legacy']), 10**7, self.key(3)):07d}"

    def local(self, prefix: str) -> str:
        x = self._next("local:" + prefix, self.local_slots)
        return f"{prefix}{permute(x, 10**6, self.key(4 + sum(map(ord, prefix)))):06d}"

    def libstaff(self) -> int:
        return self._next("libstaff", self._SLOTS["libstaff"]) + 1

    def key(self, space: int) -> int:
        """The permutation key of an id space: differs by seed, so seeds give different ids."""
        return (self.seed * 1_000_003 + space * 7_919) & 0xFFFFFFFF

