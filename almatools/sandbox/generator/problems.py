"""Planted problems of single records: SIS and local records, dates, fields, profiles, ids, emails."""

from __future__ import annotations

from datetime import timedelta

from almatools.models import format_alma_date
from almatools.sandbox.generator.chunk import Chunk
from almatools.sandbox.generator.names import FREEMAIL
from almatools.sandbox.generator.people import LOCAL_BORROWERS, SIS_GROUPS
from almatools.sandbox.generator.variations import CLASSIC, dup_person, pick_kind, vary

_PROFILE_OLD = ("OLD_SIS", "SIS2019", "BANNER")


def sis_local_other_id(chunk: Chunk) -> None:
    """A desk record of someone the next SIS load brings under another id (``not_in_alma``)."""
    kind = pick_kind(chunk, only=CLASSIC)
    group = chunk.rng.choice(SIS_GROUPS)
    p = dup_person(chunk, group, [kind])
    s = chunk.sis_rec(p, group)
    if len(s.emails) == 1:  # the SIS knows the personal email the library registered
        s.emails.append([chunk.personal_email(p), ["personal"], False])
    s.record_type, s.roles = "PUBLIC", []
    loc = chunk.local_rec(p, chunk.rng.choice(LOCAL_BORROWERS), active=True)
    vary(chunk, s, loc, kind)
    chunk.sis_only.append(s)
    chunk.add(loc)
    chunk.row("SIS_LOCAL_OTHER_ID", loc.primary_id, s.primary_id, "", f"not_in_alma;{kind}")


def sis_local_same_id(chunk: Chunk) -> None:
    """A desk record under the very id the next SIS load brings for its person."""
    group = chunk.rng.choice(SIS_GROUPS)
    p = chunk.person(group)
    s = chunk.sis_rec(p, group)
    s.record_type, s.roles = "PUBLIC", []
    loc = chunk.local_rec(p, "COMMUNITY", pid=s.primary_id, active=True)
    loc.group = group
    loc.force_password_change = ""
    chunk.sis_only.append(s)
    chunk.add(loc)
    chunk.row("SIS_LOCAL_SAME_ID", loc.primary_id, detail=group)


def stale(chunk: Chunk) -> None:
    """A SIS record the extract no longer carries; some are already expired and inactive."""
    group = chunk.rng.choices(SIS_GROUPS, (55, 15, 12, 18))[0]
    r = chunk.sis_rec(chunk.person(group), group, in_sis=False)
    if chunk.rng.random() < 0.3:  # expired and deactivated, not yet purgeable
        r.expiry = chunk.today - timedelta(days=chunk.rng.randint(1, 300))
        r.purge = r.expiry + timedelta(days=chunk.retention)
        r.status = "INACTIVE"
    chunk.add(r)
    chunk.row("STALE_SIS_MISSING", r.primary_id, detail=group)


def expired_active(chunk: Chunk) -> None:
    """A desk record still ACTIVE after its expiry date."""
    group = chunk.rng.choice(LOCAL_BORROWERS)
    r = chunk.local_rec(chunk.person(group), group, active=True)
    r.expiry = chunk.today - timedelta(days=chunk.rng.randint(1, 300))
    r.purge = r.expiry + timedelta(days=chunk.retention)
    chunk.add(r)
    chunk.row("EXPIRED_ACTIVE", r.primary_id, detail=format_alma_date(r.expiry) or "")


def no_purge(chunk: Chunk) -> None:
    """A clean record without a purge date."""
    group = chunk.rng.choice(LOCAL_BORROWERS + ("LIBSTAFF", "UGRAD", "FACULTY"))
    r = chunk.clean(group)
    r.purge = None
    chunk.add(r)
    chunk.row("NO_PURGE_DATE", r.primary_id, detail=group)


def purge_passed(chunk: Chunk) -> None:
    """An inactive desk record whose purge date has passed."""
    group = chunk.rng.choice(LOCAL_BORROWERS)
    r = chunk.local_rec(chunk.person(group), group, active=False)
    r.expiry = chunk.today - timedelta(days=chunk.rng.randint(chunk.retention + 1, 3 * 365))
    r.purge = r.expiry + timedelta(days=chunk.retention)
    r.status_date = r.expiry
    chunk.add(r)
    chunk.row("PURGE_PASSED", r.primary_id, detail=format_alma_date(r.purge) or "")


def purge_too_soon(chunk: Chunk) -> None:
    """A purge date before the expiry date plus the retention period."""
    group = chunk.rng.choice(LOCAL_BORROWERS + ("LIBSTAFF", "GRAD"))
    r = chunk.clean(group, active=True) if group not in SIS_GROUPS else chunk.clean(group)
    assert r.expiry is not None
    r.expiry = max(r.expiry, chunk.today + timedelta(days=40))
    gap = chunk.rng.choice((0, 0, 30, 90, 180, -20))
    r.purge = r.expiry + timedelta(days=gap)
    chunk.add(r)
    chunk.row("PURGE_TOO_SOON", r.primary_id, detail=f"purge = expiry {gap:+d} days")


def missing_field(chunk: Chunk) -> None:
    """A record without a first or last name, an expiry date, any email, or an email type."""
    what = chunk.rng.choice(("first_name", "first_name", "last_name", "expiry_date", "email_address",
                             "email_type"))
    group = "UGRAD" if what == "first_name" and chunk.rng.random() < 0.5 else chunk.rng.choice(LOCAL_BORROWERS)
    r = chunk.clean(group) if group in SIS_GROUPS else chunk.clean(group, active=True)
    if what == "first_name":  # a mononym, or a form saved without it
        r.first, r.middle = "", ""
    elif what == "last_name":
        r.last = ""
    elif what == "expiry_date":
        r.expiry = None
        r.purge = chunk.today + timedelta(days=chunk.rng.randint(200, 700))
    elif what == "email_address":
        r.emails = []
    else:
        r.emails[0][1] = []
    chunk.add(r)
    chunk.row("MISSING_FIELD", r.primary_id, detail=what)


def profile_missing(chunk: Chunk) -> None:
    """A SIS record with an empty ``external_id``."""
    group = chunk.rng.choice(SIS_GROUPS)
    r = chunk.sis_rec(chunk.person(group), group)
    r.external_id = ""
    chunk.add(r)
    chunk.row("SIS_PROFILE_MISSING", r.primary_id, detail=group)


def profile_unknown(chunk: Chunk) -> None:
    """A SIS record with an old integration profile code."""
    group = chunk.rng.choice(SIS_GROUPS)
    r = chunk.sis_rec(chunk.person(group), group)
    r.external_id = chunk.rng.choice(_PROFILE_OLD)
    chunk.add(r)
    chunk.row("SIS_PROFILE_UNKNOWN", r.primary_id, detail=r.external_id)


def local_in_sis_group(chunk: Chunk) -> None:
    """A desk record (a visiting scholar, a guest) in a SIS-loaded group, under a university id."""
    group = chunk.rng.choices(SIS_GROUPS, (30, 20, 35, 15))[0]  # visiting scholars, guests
    p = chunk.person(group)
    r = chunk.local_rec(p, "COMMUNITY", pid=chunk.ids.univ(), active=True)
    r.group, r.force_password_change = group, ""
    chunk.add(r)
    chunk.row("LOCAL_IN_SIS_GROUP", r.primary_id, detail=group)


def id_collision(chunk: Chunk) -> None:
    """A barcode equal to another record's identifier once case and spaces are ignored."""
    rng = chunk.rng
    ga = rng.choice(("UGRAD", "GRAD", "STAFF") + LOCAL_BORROWERS)
    gb = rng.choice(LOCAL_BORROWERS)
    a = chunk.clean(ga) if ga in SIS_GROUPS else chunk.clean(ga, active=True)
    b = chunk.clean(gb, active=True)
    how = rng.randrange(3)
    if how == 0:  # the same barcode typed with stray spaces
        ref = next(i for i in a.identifiers if i[0] == "BARCODE")[1]
        value = rng.choice((ref + " ", " " + ref, ref[:5] + " " + ref[5:]))
    elif how == 1 or ga in SIS_GROUPS:  # an old letter barcode, typed in another case
        ref = chunk.ids.legacy_barcode()
        a.identifiers.append(["BARCODE", ref, "ACTIVE"])
        value = ref.lower() + rng.choice(("", " "))
    else:  # the other record's primary id typed into the barcode field
        ref = a.primary_id
        value = ref.lower()
    b.identifiers[0][1] = value
    chunk.add(a, b)
    chunk.row("ID_COLLISION", b.primary_id, a.primary_id, "", f"BARCODE: {value!r} vs {ref!r}")


def multi_preferred(chunk: Chunk) -> None:
    """A record with a second preferred email."""
    group = chunk.rng.choice(("UGRAD", "GRAD", "FACULTY") + LOCAL_BORROWERS)
    r = chunk.clean(group) if group in SIS_GROUPS else chunk.clean(group, active=True)
    p = r.person
    extra = (chunk.personal_email(p, "work.example.com") if r.external else
             chunk.personal_email(p, chunk.rng.choice([d for d in FREEMAIL if d != p.email_domain])))
    r.emails = [e for e in r.emails if e[2]] + [[extra, ["work" if r.external else "personal"], True]]
    chunk.add(r)
    chunk.row("MULTI_PREFERRED_EMAIL", r.primary_id, detail=extra)


def bad_email(chunk: Chunk) -> None:
    """A record whose first email is malformed."""
    group = chunk.rng.choice(("UGRAD",) + LOCAL_BORROWERS + LOCAL_BORROWERS)
    r = chunk.clean(group) if group in SIS_GROUPS else chunk.clean(group, active=True)
    good = r.emails[0][0]
    local, _, domain = good.partition("@")
    host = domain.rsplit(".", 1)[0]
    bad = chunk.rng.choice((f"{local}@@{domain}", f"{local[:3]} {local[3:]}@{domain}", f"{local}@{host}",
                            f"{local}.{domain}", f"{local}@{host},{domain.rsplit('.', 1)[1]}",
                            f"{local}@.{domain}"))
    r.emails[0][0] = bad
    chunk.add(r)
    chunk.row("BAD_EMAIL", r.primary_id, detail=bad)


def bad_id_format(chunk: Chunk) -> None:
    """A desk record whose primary id does not match its group's pattern."""
    how = chunk.rng.randrange(5)
    group = ("ALUMNI", "ALUMNI", "FRIENDS", "COMMUNITY", "LIBSTAFF")[how]
    p = chunk.person(group)
    if how == 0:
        pid = chunk.ids.local("AL")[2:]  # the prefix left off
    elif how == 1:
        pid = "AL " + chunk.ids.local("AL")[2:]
    elif how == 2:
        pid = chunk.ids.local("FR") + str(chunk.rng.randrange(10))
    elif how == 3:
        pid = chunk.ids.local("RB")  # moved from reciprocal to community, id kept
    else:
        login = chunk.login(p)
        pid = login[0] + "." + login[1:]
    r = chunk.local_rec(p, group, pid=pid, active=True)
    chunk.add(r)
    chunk.row("BAD_ID_FORMAT", pid, detail=pid)


def sis_new(chunk: Chunk) -> None:
    """A person in the SIS extract whom Alma does not have yet (no ground-truth row)."""
    group = chunk.rng.choices(SIS_GROUPS, (70, 20, 5, 5))[0]
    s = chunk.sis_rec(chunk.person(group), group)
    s.record_type, s.roles = "PUBLIC", []
    chunk.sis_only.append(s)

