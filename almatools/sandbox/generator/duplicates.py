"""Planted duplicates: several records of one person (``DUPLICATE``, detail ``scenario;kind``)."""

from __future__ import annotations

from datetime import timedelta

from almatools.sandbox.generator.chunk import Chunk
from almatools.sandbox.generator.people import LOCAL_BORROWERS, SIS_GROUPS, Rec
from almatools.sandbox.generator.variations import DOB, LIGHT, NO_BIRTH, dup_person, pick_kind, vary

_SEP = ("-", ".", "_", "/")


def dup_rows(chunk: Chunk, recs: list[Rec], cluster: str, detail: str) -> None:
    """One ``DUPLICATE`` row per unordered pair of ``recs``."""
    for i, a in enumerate(recs):
        for b in recs[i + 1:]:
            chunk.row("DUPLICATE", a.primary_id, b.primary_id, cluster, detail)


def local_twice(chunk: Chunk) -> None:
    """Two desk records of one person that differ in one kind."""
    kind = pick_kind(chunk)
    g1, g2 = chunk.rng.choice(LOCAL_BORROWERS), chunk.rng.choice(LOCAL_BORROWERS)
    p = dup_person(chunk, g1, [kind])
    a = chunk.local_rec(p, g1, active=True)
    b = chunk.local_rec(p, g2, active=True)
    vary(chunk, a, b, kind)
    chunk.add(a, b)
    dup_rows(chunk, [a, b], chunk.cluster("D"), f"local_twice;{kind}")


def local_twice_id_format(chunk: Chunk) -> None:
    """A second desk record under the first's id with a separator typed in (also ``BAD_ID_FORMAT``)."""
    p = dup_person(chunk, "COMMUNITY", [])
    a = chunk.local_rec(p, "COMMUNITY", active=True)
    pid = a.primary_id[:2] + chunk.rng.choice(_SEP) + a.primary_id[2:]
    b = chunk.local_rec(p, "COMMUNITY", pid=pid, active=True)
    vary(chunk, a, b, "exact")
    b.emails = [list(e) for e in a.emails]
    chunk.add(a, b)
    dup_rows(chunk, [a, b], chunk.cluster("D"), "local_twice_id_format;exact")
    chunk.row("BAD_ID_FORMAT", pid, detail=pid)


def alum_old_sis(chunk: Chunk) -> None:
    """A recent graduate's old SIS record, no longer in the extract, and their alumni desk record."""
    kind = pick_kind(chunk, exclude=("no_birth",))
    p = dup_person(chunk, "GRAD", [kind])  # a recent graduate
    old = chunk.sis_rec(p, chunk.rng.choice(("UGRAD", "GRAD")), in_sis=False)
    old.expiry = chunk.today + timedelta(days=chunk.rng.randint(20, 300))
    old.purge = old.expiry + timedelta(days=chunk.retention)
    if len(old.emails) == 1:
        old.emails.append([chunk.personal_email(p), ["personal"], False])
    new = chunk.local_rec(p, "ALUMNI", active=True)
    vary(chunk, old, new, kind)
    chunk.add(old, new)
    dup_rows(chunk, [old, new], chunk.cluster("D"), f"alum_old_sis;{kind}")
    chunk.row("STALE_SIS_MISSING", old.primary_id, detail="left; now an alum")


def sis_and_local(chunk: Chunk) -> None:
    """A SIS record and one or two desk records of its person (also ``SIS_LOCAL_OTHER_ID``, ``in_alma``)."""
    group = chunk.rng.choice(SIS_GROUPS)
    n_local = 2 if chunk.rng.random() < 0.25 else 1
    kinds = [pick_kind(chunk, exclude=("swapped", "no_birth") + (DOB + NO_BIRTH if n_local == 2 else ()))]
    if n_local == 2:  # the second desk record differs in a way that combines with the first
        kinds.append(pick_kind(chunk, only=LIGHT))
    p = dup_person(chunk, group, kinds)
    s = chunk.sis_rec(p, group)
    s.record_type, s.roles = "PUBLIC", []
    recs = [s]
    for kind in kinds:
        lg = "LIBSTAFF" if group == "STAFF" and chunk.rng.random() < 0.5 else chunk.rng.choice(LOCAL_BORROWERS)
        loc = chunk.local_rec(p, lg, active=True)
        vary(chunk, s, loc, kind)
        recs.append(loc)
    chunk.add(*recs)
    cluster = chunk.cluster("D")
    dup_rows(chunk, recs, cluster, "sis_and_local;" + "+".join(kinds))
    for loc in recs[1:]:
        chunk.row("SIS_LOCAL_OTHER_ID", loc.primary_id, s.primary_id, cluster, "in_alma")


def readmitted(chunk: Chunk) -> None:
    """Two SIS records under two university ids; the old one is no longer in the extract."""
    kind = pick_kind(chunk, exclude=("swapped", "married", "married_new_email", "pref_name", "initial") + NO_BIRTH)
    p = dup_person(chunk, "GRAD", [kind])
    old = chunk.sis_rec(p, "UGRAD", in_sis=False)
    old.identifiers = old.identifiers[:2]  # no NetID on the old record: the NetID moved on
    old.record_type, old.roles = "PUBLIC", []
    if chunk.rng.random() < 0.4:  # the SIS replaced the old record's school email by a personal one
        old.emails = [[chunk.other_email(p, 3), ["personal"], True]]
    new = chunk.sis_rec(p, "GRAD")
    vary(chunk, old, new, kind)
    chunk.add(old, new)
    dup_rows(chunk, [old, new], chunk.cluster("D"), f"readmitted;{kind}")
    chunk.row("STALE_SIS_MISSING", old.primary_id, detail="re-admitted under a new id")


def local_three(chunk: Chunk) -> None:
    """Three desk records of one person: the second and third differ from the first in two kinds."""
    k1 = pick_kind(chunk, exclude=("swapped", "married_new_email") + NO_BIRTH + DOB)
    k2 = pick_kind(chunk, only=LIGHT, exclude=(k1,))
    p = dup_person(chunk, "COMMUNITY", [k1, k2])
    groups = chunk.rng.sample(LOCAL_BORROWERS, 3)
    a = chunk.local_rec(p, groups[0], active=True)
    b = chunk.local_rec(p, groups[1], active=True)
    c = chunk.local_rec(p, groups[2], active=True)
    vary(chunk, a, b, k1)
    vary(chunk, a, c, k2)
    chunk.add(a, b, c)
    dup_rows(chunk, [a, b, c], chunk.cluster("D"), f"local_three;{k1}+{k2}")

