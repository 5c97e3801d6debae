"""Shared helpers of the registration tests (imported as ``registration_helpers``: pytest puts this folder on sys.path)."""

from __future__ import annotations

import random
import uuid
from datetime import date, timedelta
from pathlib import Path

from almatools.policy import GroupPolicy, load_policy
from almatools.registration import PatronForm

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = load_policy(ROOT / "almatools" / "policies" / "default.toml")
CONSORTIUM = load_policy(ROOT / "examples" / "policies" / "consortium_quick_user.toml")
EXTERNAL_ID = load_policy(ROOT / "examples" / "policies" / "external_identity_borrowers.toml")
POLICIES = {"default": DEFAULT, "consortium": CONSORTIUM, "external_identity": EXTERNAL_ID}
TODAY = date.today()
_rng = random.Random(uuid.uuid4().int)


def token(n: int = 8) -> str:
    """Letters only: a word Alma's (and the sandbox's) word search matches as a whole."""
    return "".join(_rng.choice("bcdfghjklmnpqrstvwxz") for _ in range(n)).capitalize()


def _candidates(n: int):
    digits = lambda k: "".join(_rng.choice("0123456789") for _ in range(k))  # noqa: E731
    for _ in range(n):
        yield from (digits(9), f"AL{digits(6)}", f"CB{digits(6)}", f"RB{digits(6)}", f"FR{digits(6)}",
                    f"G{digits(8)}", f"T{digits(8)}", f"t{token(7).lower()}", digits(7))


_issued: set[str] = set()  # every identifier handed out in this run, created yet or not


def fresh_id(client, group: GroupPolicy) -> str:
    """An identifier of the group's format that no sandbox user holds and no other caller was given."""
    for candidate in _candidates(200):
        normalised = group.normalise_id(candidate)
        if (group.id_matches(normalised) and normalised.casefold() not in _issued
                and client.find_user(normalised) is None):
            _issued.add(normalised.casefold())
            return normalised
    raise AssertionError(f"no identifier generator fits {group.id_pattern.pattern}")


def good_form(client, policy, affiliation: str, **changes) -> PatronForm:
    """A valid form for an affiliation of the policy, with a fresh identifier and unique names."""
    group = policy.groups[policy.affiliations[affiliation].group]
    pid = changes.pop("primary_id", None) or fresh_id(client, group)
    values = dict(affiliation=affiliation, first_name=token(6), last_name=token(9), primary_id=pid,
                  expiry_date=TODAY + timedelta(days=365), email_address=f"{pid.lower()}.{token(4).lower()}@example.org",
                  birth_date=date(1990, 5, 17),
                  password=f"Pw-{token(6)}-9" if group.password == "temporary"
                  and policy.affiliations[affiliation].managed == "local" else "")
    values.update(changes)
    return PatronForm(**values)


def raw_user(pid: str, *, first: str, last: str, group: str = "COMMUNITY", external: bool = False,
             birth: date | None = None, email: str | None = None, expiry: date | None = None,
             roles: tuple[str, ...] = (), record_type: str = "PUBLIC", status: str = "ACTIVE") -> dict:
    """An Alma user object to POST directly (an account that existed before the registration)."""
    user = {
        "record_type": {"value": record_type}, "primary_id": pid, "first_name": first, "last_name": last,
        "user_group": {"value": group}, "account_type": {"value": "EXTERNAL" if external else "INTERNAL"},
        "external_id": "SIS" if external else "", "status": {"value": status},
        "contact_info": {"email": [{"email_address": email or f"{pid.lower()}@example.net", "preferred": True,
                                    "email_type": [{"value": "personal"}]}]},
    }
    if birth:
        user["birth_date"] = birth.isoformat() + "Z"
    if expiry:
        user["expiry_date"] = expiry.isoformat() + "Z"
    if roles:
        scope = {"value": "01ALMA_SANDBOX"}
        user["user_role"] = [{"status": {"value": "ACTIVE"}, "scope": scope, "role_type": {"value": code},
                              "parameter": []} for code in ("200", *roles)]
    return user
