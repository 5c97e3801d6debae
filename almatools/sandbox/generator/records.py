"""The records as Alma's JSON: the full user object, and what the SIS sends."""

from __future__ import annotations

from typing import Any

from almatools.models import format_alma_date
from almatools.sandbox.generator.people import INSTITUTION_CODE, INSTITUTION_NAME, SIS_PROFILE, Group, Rec

_LANG = {"en": "English", "es": "Spanish", "de": "German", "fr": "French", "it": "Italian"}
_TITLES = {"": "", "Dr": "Dr.", "Prof": "Professor"}
_ID_TYPES = {"UNIV_ID": "University ID", "BARCODE": "Barcode", "NET_ID": "NetID"}
_TYPE_DESC = {"home": "Home", "work": "Work", "school": "School", "personal": "Personal",
              "mobile": "Mobile", "office": "Office", "alternative": "Alternative"}
_ROLE_DESC = {"200": "Patron", "21": "Circulation Desk Operator", "51": "Requests Operator"}
_SIS_KEYS = ("record_type", "primary_id", "first_name", "middle_name", "last_name", "user_title",
             "job_description", "gender", "user_group", "campus_code", "preferred_language",
             "birth_date", "expiry_date", "purge_date", "account_type", "external_id", "status",
             "contact_info", "user_identifier", "user_statistic")


def _c(value: Any, desc: Any) -> dict[str, Any]:
    """A code field as Alma writes it."""
    return {"value": value, "desc": desc}


def user_json(r: Rec, groups: dict[str, Group]) -> dict[str, Any]:
    """The record as ``GET /users/{id}`` returns it (``groups``: the policy's user groups)."""
    seg = "External" if r.external else "Internal"
    g = groups[r.group]
    u: dict[str, Any] = {
        "record_type": _c(r.record_type, r.record_type.title()),
        "primary_id": r.primary_id, "first_name": r.first, "middle_name": r.middle,
        "last_name": r.last, "full_name": " ".join(x for x in (r.first, r.middle, r.last) if x),
        "user_title": _c(r.title, _TITLES[r.title]), "job_category": _c("", ""),
        "job_description": r.job,
        "gender": _c(r.person.gender, r.person.gender.title()) if r.person.show_gender else _c("", ""),
        "user_group": _c(r.group, g.description),
        "campus_code": _c(r.campus, "Main Campus" if r.campus else ""), "web_site_url": "",
        "cataloger_level": _c("00", "[00] Default Level"),
        "preferred_language": _c(r.language, _LANG[r.language]),
    }
    for key, value in (("birth_date", r.birth), ("expiry_date", r.expiry), ("purge_date", r.purge)):
        if value is not None:
            u[key] = format_alma_date(value)
    u["account_type"] = _c("EXTERNAL", "External") if r.external else _c("INTERNAL", "Internal")
    u["external_id"] = r.external_id
    u["password"] = ""
    u["force_password_change"] = r.force_password_change
    u["status"] = _c(r.status, r.status.title())
    u["status_date"] = format_alma_date(r.status_date)
    if r.last_activity is not None and r.status == "ACTIVE":
        u["last_patron_activity_date"] = format_alma_date(r.last_activity)
    requests, loans, fees = r.counts
    u["requests"], u["loans"], u["fees"] = {"value": requests}, {"value": loans}, {"value": fees}
    u["contact_info"] = {
        "address": [{"line1": a["line1"], "line2": a["line2"], "line3": None, "line4": None,
                     "line5": None, "city": a["city"], "state_province": a["state_province"],
                     "postal_code": a["postal_code"], "country": _c("USA", "United States"),
                     "address_note": "", "start_date": format_alma_date(r.status_date), "preferred": i == 0,
                     "segment_type": seg,
                     "address_type": [_c(t, _TYPE_DESC[t]) for t in a["types"]]}
                    for i, a in enumerate(r.addresses)],
        "email": [{"email_address": addr, "description": None, "preferred": pref, "segment_type": seg,
                   "email_type": [_c(t, _TYPE_DESC[t]) for t in types]} for addr, types, pref in r.emails],
        "phone": [{"phone_number": num, "preferred": pref, "preferred_sms": False, "segment_type": seg,
                   "phone_type": [_c(t, _TYPE_DESC[t]) for t in types]} for num, types, pref in r.phones],
    }
    u.update(pref_first_name=r.pref_first, pref_middle_name="", pref_last_name="", pref_name_suffix="",
             is_researcher=False, researcher=None, link=None)
    u["user_identifier"] = [{"value": v, "id_type": _c(t, _ID_TYPES[t]), "note": "", "status": st,
                             "segment_type": seg} for t, v, st in r.identifiers]
    roles = [{"status": _c("ACTIVE", "Active"), "scope": _c(INSTITUTION_CODE, INSTITUTION_NAME),
              "role_type": _c("200", "Patron"), "parameter": []}]
    for code in r.roles:
        roles.append({"status": _c("ACTIVE", "Active"), "scope": _c("MAIN", "Main Library"),
                      "role_type": _c(code, _ROLE_DESC[code]),
                      "parameter": [{"type": _c("CirculationDesk", None), "scope": _c("MAIN", "Main Library"),
                                     "value": _c("DEFAULT_CIRC_DESK", "Main Circulation Desk")}]})
    u["user_role"] = roles
    u["user_block"] = [{"block_type": _c("GENERAL", "General"), "block_description": _c("02", "Overdue items"),
                        "block_status": "ACTIVE", "block_note": "", "created_by": "System",
                        "created_date": f"{b['date'].isoformat()}T02:00:00.000Z", "segment_type": "Internal"}
                       for b in r.blocks]
    u["user_note"] = [{"note_type": _c(n["type"], n["type"].title()), "note_text": n["text"],
                       "user_viewable": False, "popup_note": False, "created_by": "System",
                       "created_date": n["date"], "segment_type": "Internal"} for n in r.notes]
    # No category_type: it is output-only and absent on real records (see sandbox.app).
    u["user_statistic"] = [{"statistic_category": _c(g.patron_type, g.patron_type.title()),
                            "statistic_note": "", "segment_type": seg}]
    u["proxy_for_user"] = []
    return u


def sis_json(user: dict[str, Any]) -> dict[str, Any]:
    """What the SIS sends for a person: the external segments of the record, no nulls, as SIS."""
    s: dict[str, Any] = {}
    for key in _SIS_KEYS:
        if key not in user:
            continue
        value = user[key]
        if key == "contact_info":
            value = {k: [{f: v for f, v in item.items() if v is not None} for item in items]
                     for k, items in value.items()}
        elif key in ("user_identifier", "user_statistic"):
            value = [i for i in value if i.get("segment_type") == "External"]
        elif isinstance(value, dict) and value.get("value") is None:
            continue
        s[key] = value
    s["record_type"] = _c("PUBLIC", "Public")
    s["account_type"] = _c("EXTERNAL", "External")
    s["external_id"] = SIS_PROFILE
    s["status"] = _c("ACTIVE", "Active")
    return s


