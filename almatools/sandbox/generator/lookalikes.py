"""Planted look-alikes: different people whose records look alike (``NOT_DUPLICATE``, detail the pattern).

All have both birth dates, so the records can tell the people apart.
"""

from __future__ import annotations

from almatools.sandbox.generator.chunk import Chunk
from almatools.sandbox.generator.names import ascii_lower
from almatools.sandbox.generator.people import GROUP_WEIGHTS, Rec, permute


def same_name(chunk: Chunk) -> None:
    """Namesakes: one of the commonest full names (John Smith, Fang Li), nothing else shared."""
    rng, pools = chunk.rng, chunk.pools
    loc = "zh_CN" if rng.random() < 0.25 else "en_US"
    gender = rng.choice(("FEMALE", "MALE"))
    first, last = rng.choice(pools.common_first[(loc, gender)]), rng.choice(pools.common_last[loc])
    g1, g2 = rng.choice(list(GROUP_WEIGHTS)), rng.choice(("UGRAD", "COMMUNITY", "ALUMNI", "STAFF"))
    x = chunk.person(g1, locale=loc, gender=gender, first=first, last=last, birth="need", pref="")
    birth = chunk.birth(g2, x.last)
    for _ in range(50):
        if x.birth is not None and abs(birth.toordinal() - x.birth.toordinal()) > 730:
            break
        birth = chunk.birth(g2, x.last, (16, 90))
    y = chunk.person(g2, locale=loc, gender=gender, first=first, last=last, birth=birth, pref="")
    a, b = chunk.clean(g1, x), chunk.clean(g2, y)
    chunk.add(a, b)
    chunk.row("NOT_DUPLICATE", a.primary_id, b.primary_id, chunk.cluster("N"), "same_name")


def household(chunk: Chunk, a: Rec, b: Rec, *, phone: bool = True) -> None:
    """``a`` and ``b`` live at one address (preferred) and, with ``phone``, share its landline."""
    for r in (a, b):
        r.addresses = [dict(a.person.address, types=["home"])]
        if phone:
            home = chunk.phone(r.person, home=True)
            r.phones = [[n, t, False] for n, t, _ in r.phones if n != home] + [[home, ["home"], False]]
            r.phones[0][2] = True  # the mobile if there is one, else the landline


def twins(chunk: Chunk) -> None:
    """Twins: surname, birth date, address and home phone shared; first names differ."""
    x = chunk.person("UGRAD", birth="need")
    y = chunk.person("UGRAD", last=x.last, birth=x.birth, locale=x.locale, address=x.address,
                     register=False)
    y.home_p = x.p
    while y.first.casefold() == x.first.casefold() or ascii_lower(y.first)[:1] == ascii_lower(x.first)[:1]:
        y.first = chunk.rng.choice(chunk.pools.first[(y.locale, y.gender)])
    y.pref_first = ""
    g2 = "UGRAD" if chunk.rng.random() < 0.6 else "COMMUNITY"
    a, b = chunk.sis_rec(x, "UGRAD"), chunk.clean(g2, y)
    household(chunk, a, b)
    chunk.add(a, b)
    chunk.row("NOT_DUPLICATE", a.primary_id, b.primary_id, chunk.cluster("N"), "twins")


def parent_child(chunk: Chunk) -> None:
    """A father and son of one full name, decades apart, at one address; Jr/Sr on some."""
    rng = chunk.rng
    parent = chunk.person("FACULTY", gender="MALE", locale="en_US", birth=None, pref="")
    parent.birth = chunk.birth("FACULTY", parent.last, (45, 68))
    chunk.taken.add((parent.last.casefold(), parent.birth.toordinal()))
    child = chunk.person("UGRAD", gender="MALE", first=parent.first, last=parent.last,
                         middle=parent.middle, locale="en_US", address=parent.address, birth="need", pref="")
    child.home_p = parent.p
    a, b = chunk.sis_rec(parent, rng.choice(("FACULTY", "STAFF"))), chunk.sis_rec(child, "UGRAD")
    household(chunk, a, b, phone=rng.random() < 0.5)
    how = rng.randrange(5)  # the suffix on both, on the son only, on the father only, or on neither
    if how == 0:
        a.last, b.last = f"{parent.last} Sr", f"{parent.last} Jr"
    elif how == 1:
        b.last = f"{parent.last} {rng.choice(('Jr', 'Jr.', 'II'))}"
    elif how == 2:
        a.last = f"{parent.last} Sr."
    chunk.add(a, b)
    chunk.row("NOT_DUPLICATE", a.primary_id, b.primary_id, chunk.cluster("N"), "parent_child")


def spouses(chunk: Chunk) -> None:
    """Spouses: one address and home phone, the surname shared in half; first names and births differ."""
    rng = chunk.rng
    g1, g2 = rng.choice(("FACULTY", "STAFF", "GRAD", "COMMUNITY")), rng.choice(("STAFF", "COMMUNITY", "ALUMNI", "FRIENDS"))
    x = chunk.person(g1, gender="MALE", birth="need")
    last = x.last if rng.random() < 0.5 else None
    y = chunk.person(g2, gender="FEMALE", last=last, locale=x.locale, address=x.address, birth="need")
    while ascii_lower(y.first)[:1] == ascii_lower(x.first)[:1] or (y.pref_first or y.first) == (x.pref_first or x.first):
        y.first = chunk.rng.choice(chunk.pools.first[(y.locale, y.gender)])
    y.home_p = x.p
    a, b = chunk.clean(g1, x), chunk.clean(g2, y)
    household(chunk, a, b)
    chunk.add(a, b)
    chunk.row("NOT_DUPLICATE", a.primary_id, b.primary_id, chunk.cluster("N"), "spouses")


def family_email(chunk: Chunk) -> None:
    """A parent and a child who give one family email; other first names, decades apart."""
    rng = chunk.rng
    parent = chunk.person("COMMUNITY", birth=None, pref="")
    parent.birth = chunk.birth("COMMUNITY", parent.last, (42, 65))
    chunk.taken.add((parent.last.casefold(), parent.birth.toordinal()))
    child = chunk.person("UGRAD", last=parent.last, locale=parent.locale, address=parent.address,
                         birth="need", pref="")
    while ascii_lower(child.first)[:1] == ascii_lower(parent.first)[:1]:
        child.first = chunk.rng.choice(chunk.pools.first[(child.locale, child.gender)])
    n = permute(parent.p, chunk.ids.person_space, chunk.ids.key(14))
    family = f"{ascii_lower(parent.last) or 'the'}family{n}@{parent.email_domain}"
    a = chunk.local_rec(parent, rng.choice(("COMMUNITY", "FRIENDS")), active=True)
    g2 = rng.choice(("UGRAD", "COMMUNITY"))
    b = chunk.clean(g2, child) if g2 == "UGRAD" else chunk.local_rec(child, g2, active=True)
    a.emails = [[family, ["personal"], True]]
    if b.external:
        b.emails.append([family, ["personal"], False])
    else:
        b.emails = [[family, ["personal"], True]]
    household(chunk, a, b, phone=False)
    chunk.add(a, b)
    chunk.row("NOT_DUPLICATE", a.primary_id, b.primary_id, chunk.cluster("N"), "family_email")

