"""Synthetic Alma users and clusters for the merge tests (imported by name: no other test module shares it)."""

from __future__ import annotations

import pandas as pd


def alma_user(pid: str, first: str = "Ann", last: str = "Lee", *, account: str = "INTERNAL",
              roles: tuple[str, ...] = ("200",), expiry: str | None = "2030-01-01", loans: int = 0, requests: int = 0,
              fees: float = 0.0, status: str = "ACTIVE", group: str = "COMMUNITY", email: str | None = None,
              identifiers: tuple[tuple[str, str], ...] = (), linking_id: str | None = None) -> dict:
    """An Alma user object (JSON form) with the fields the merge logic reads."""
    user = {
        "record_type": {"value": "STAFF" if set(roles) - {"200"} else "PUBLIC"},
        "primary_id": pid, "first_name": first, "last_name": last,
        "user_group": {"value": group}, "account_type": {"value": account},
        "external_id": "SIS" if account == "EXTERNAL" else "", "status": {"value": status},
        "expiry_date": f"{expiry}Z" if expiry else None,
        "contact_info": {"email": [{"email_address": email or f"{pid.lower()}@example.org", "preferred": True,
                                    "email_type": [{"value": "personal"}]}]},
        "user_identifier": [{"value": v, "id_type": {"value": t}, "status": "ACTIVE"} for t, v in identifiers],
        "user_role": [{"status": {"value": "ACTIVE"}, "scope": {"value": "MAIN"}, "role_type": {"value": r},
                       "parameter": []} for r in roles],
        "loans": {"value": loans}, "requests": {"value": requests}, "fees": {"value": fees},
    }
    if linking_id:
        user["linking_id"] = linking_id
    return user


def clusters_frame(clusters: dict[str, list[str]]) -> pd.DataFrame:
    rows = [{"cluster_id": cid, "primary_id": pid, "match_probability": 0.97, "evidence": "name+birth_date"}
            for cid, ids in clusters.items() for pid in ids]
    return pd.DataFrame(rows)


STANDARD_USERS = [
    alma_user("S1", account="EXTERNAL", group="UGRAD"),           # in the extract: survives cluster c1
    alma_user("L1", loans=2),                                      # local duplicate with loans: a soft warning
    alma_user("L2", "Anne", roles=("200", "21"), group="LIBSTAFF"),  # staff: FROM fails a hard check
    alma_user("OLD", "Bo", "Ng", account="EXTERNAL", group="UGRAD", expiry="2026-01-01"),  # past SIS record
    alma_user("NEW", "Bo", "Ng", group="ALUMNI"),                  # new affiliation (seed 003): survives c2
    alma_user("S2", "Cy", "Po", account="EXTERNAL"), alma_user("S3", "Cy", "Po", account="EXTERNAL"),  # held
    alma_user("A", "Di", "Wu", expiry="2028-01-01"), alma_user("B", "Di", "Wu", expiry="2029-01-01"),
]
STANDARD_CLUSTERS = {"c1": ["S1", "L1", "L2"], "c2": ["OLD", "NEW"], "c3": ["S2", "S3"], "c4": ["A", "B"]}
STANDARD_SIS = {"s1", "S2", "s3"}  # any case: Alma compares primary ids ignoring case
