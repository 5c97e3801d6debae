"""How the records of one person differ: typos, nicknames, new surnames, other emails..."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

from almatools.sandbox.generator.chunk import Chunk
from almatools.sandbox.generator.names import EAST_ASIAN, FREEMAIL, NICK_FEMALE, NICK_MALE, NICKNAMES, PARTICLES, SUFFIXES, typed
from almatools.sandbox.generator.people import Person, Rec

_NEIGHBOURS = {c: n for c, n in zip("abcdefghijklmnopqrstuvwxyz",
                                    ("sq", "vn", "xv", "sf", "wr", "dg", "fh", "gj", "uo", "hk", "jl",
                                     "ko", "nk", "bm", "ip", "ol", "wa", "et", "ad", "ry", "yi", "cb",
                                     "qe", "zc", "tu", "xa"))}

# How records of one person differ (weights; see vary below). The first seven are the classics.
KINDS: tuple[tuple[str, float], ...] = (
    ("typo_first", 6), ("typo_last", 6), ("nickname", 7), ("married", 6), ("middle", 5), ("email_domain", 8),
    ("exact", 8), ("married_new_email", 4), ("swapped", 3), ("no_birth", 6), ("pref_name", 6), ("ascii", 5),
    ("double_surname", 5), ("particle", 3), ("suffix", 3), ("initial", 3), ("middle_in_first", 3),
    ("dob_swap", 3), ("dob_typo", 3), ("other_email_only", 2), ("other_phone_only", 2), ("address_only", 2))
CLASSIC = tuple(k for k, _ in KINDS[:7])
NO_BIRTH = ("no_birth", "other_email_only", "other_phone_only", "address_only")
DOB = ("dob_swap", "dob_typo")
LIGHT = ("typo_first", "typo_last", "middle", "email_domain", "exact", "initial")
"""Kinds that combine with any other on a third record (they shape neither the person nor the contacts)."""


def typo(chunk: Chunk, name: str) -> str:
    """One edit (substitute a neighbouring key, drop, double or swap a letter)."""
    rng = chunk.rng
    for _ in range(20):
        pos = [i for i, ch in enumerate(name) if ch.isalpha() and ch.isascii()]
        if len(pos) < 3:
            break
        i = rng.choice(pos[1:])  # keep the initial
        ch = name[i]
        op = rng.randrange(4)
        if op == 0 and ch.lower() in _NEIGHBOURS:
            new = rng.choice(_NEIGHBOURS[ch.lower()])
            out = name[:i] + (new.upper() if ch.isupper() else new) + name[i + 1:]
        elif op == 1 and len(pos) > 3:
            out = name[:i] + name[i + 1:]
        elif op == 2:
            out = name[:i] + ch + name[i:]
        elif op == 3 and i + 1 < len(name) and name[i + 1].isalpha() and name[i + 1] != ch:
            out = name[:i] + name[i + 1] + ch + name[i + 2:]
        else:
            continue
        if out.casefold() != name.casefold():
            return out
    return name + ("e" if not name.endswith("e") else "a")


def vary(chunk: Chunk, base: Rec, r: Rec, kind: str) -> None:
    """Make ``r`` (another record of ``base``'s person) differ from ``base`` in one way.

    Every pair keeps some evidence besides the name, as real duplicates do: the birth date, or
    (where the birth date differs or is missing) a shared email, phone or address.
    """
    rng, p = chunk.rng, base.person
    r.first, r.middle, r.last, r.birth = base.first, base.middle, base.last, base.birth
    reroll = True
    if kind == "typo_first":
        r.first = typo(chunk, base.first)
    elif kind == "typo_last":
        r.last = typo(chunk, base.last)
    elif kind == "nickname":
        r.first = rng.choice(NICKNAMES[base.first])
    elif kind in ("married", "married_new_email"):
        while True:
            new = rng.choice(chunk.pools.last[p.locale])
            key = (new.casefold(), p.birth.toordinal() if p.birth else 0)
            if new.casefold() != base.last.casefold() and key not in chunk.taken:
                break
        chunk.taken.add(key)
        r.last, reroll = new, False
        if kind == "married":  # the personal email still names the maiden surname
            old = chunk.personal_email(p)
            if not any(e[0] == old for e in base.emails):
                base.emails.append([old, ["personal"], False])
            r.emails = [[old, ["personal"], True]]
        else:  # a new email under the new surname; the mobile kept
            r.emails = [[chunk.personal_email(p, last=new), ["personal"], True]]
            r.phones = [[chunk.phone(p, 2), ["mobile"], True]]
            ensure_mobile(chunk, base)
    elif kind == "swapped":
        r.first, r.last = base.last, base.first
    elif kind == "middle":
        if base.middle:
            r.middle = ""
        else:
            r.middle = rng.choice(chunk.pools.first[(p.locale, p.gender)])
    elif kind == "email_domain":
        if not any(e[0] == chunk.personal_email(p) for e in base.emails):
            base.emails.append([chunk.personal_email(p), ["personal"], False])
        other = rng.choice([d for d in FREEMAIL if d != p.email_domain])
        if r.external:
            r.emails.append([chunk.personal_email(p, other), ["personal"], False])
        else:
            r.emails = [[chunk.personal_email(p, other), ["personal"], True]]
        reroll = False
    elif kind == "no_birth":  # a desk record without a birth date; the mobile shared
        r.birth, reroll = None, False
        r.phones = [[chunk.phone(p, 3), ["mobile"], True]]
        ensure_mobile(chunk, base)
    elif kind == "pref_name":  # the preferred name typed as the first name at the desk
        base.pref_first, r.first, r.pref_first = p.pref_first, p.pref_first, ""
    elif kind == "ascii":  # Đặng -> Dang, Søren -> Soren or Soeren, Łukasz -> Lukasz, Strauß -> Strauss
        variant = 1 if p.locale in ("de_DE", "no_NO", "da_DK") and rng.random() < 0.5 else 0
        r.first, r.middle, r.last = (typed(x, variant) for x in (base.first, base.middle, base.last))
    elif kind == "double_surname":  # García López -> Garcia-Lopez, Garcia or Lopez
        parts = base.last.replace("-", " ").split()
        joined = " ".join(parts) if "-" in base.last else "-".join(parts)
        r.last = rng.choice((typed(joined), joined, parts[0], parts[-1]))
    elif kind == "particle":  # van der Berg -> Van Der Berg, Vanderberg or Berg
        *particle, core = base.last.split()
        r.last = rng.choice((" ".join(w.title() for w in base.last.split()),
                             ("".join(particle) + core).title(), core))
    elif kind == "suffix":  # "Smith Jr" on one record, the suffix left off on the other
        r.last = base.last.rsplit(" ", 1)[0]
    elif kind == "initial":  # J. Smith
        r.first = base.first[0] + rng.choice((".", ""))
    elif kind == "middle_in_first":  # "Mary Ann", no middle name
        r.first, r.middle = f"{base.first} {base.middle}", ""
    elif kind in ("dob_swap", "dob_typo"):
        assert base.birth is not None
        r.birth = swapped_date(base.birth) if kind == "dob_swap" else typo_date(chunk, base.birth)
        chunk.taken.add((r.last.casefold(), r.birth.toordinal()))
        share_email(chunk, base, r)
        reroll = False
    elif kind in ("other_email_only", "other_phone_only", "address_only"):
        # The same name, no birth date on the desk record, and just one shared field.
        r.birth, reroll = None, False
        r.emails = [[chunk.other_email(p, 2), ["personal"], True]]
        r.phones, r.addresses = [], [dict(chunk.address(), types=["home"])]
        if kind == "other_email_only":
            shared = chunk.other_email(p, 1)
            base.emails = [e for e in base.emails if e[0] != shared] + [[shared, ["personal"], False]]
            r.emails.append([shared, ["personal"], False])
        elif kind == "other_phone_only":
            ensure_mobile(chunk, base)
            home = chunk.phone(p, home=True)
            base.phones = [ph for ph in base.phones if ph[0] != home] + [[home, ["home"], False]]
            r.phones = [[chunk.phone(p, 1, home=True), ["home"], True]]
        else:
            if not any(a["line1"] == p.address["line1"] for a in base.addresses):
                base.addresses.insert(0, dict(p.address, types=["home"]))
            r.addresses = [dict(p.address, types=["home"])]
    elif kind != "exact":
        raise ValueError(kind)
    if reroll and not r.external and r.group != "LIBSTAFF":
        # The same email (as registered), or another address and perhaps the same phone.
        roll = rng.random()
        if roll >= 0.4:
            style = (p.email_style + 1 + rng.randrange(4)) % 5
            local = chunk.email_local(replace(p, email_style=style))
            r.emails = [[f"{local}@{rng.choice(FREEMAIL)}", ["personal"], True]]
            r.phones = [[chunk.phone(p, rng.randrange(4)), ["mobile"], True]] if roll < 0.7 else []


def ensure_mobile(chunk: Chunk, r: Rec) -> None:
    """Give ``r`` its person's mobile as the preferred phone (keeping its other phones)."""
    mobile = chunk.phone(r.person)
    rest = [[n, t, False] for n, t, _ in r.phones if n != mobile]
    r.phones = [[mobile, ["mobile"], True]] + rest


def share_email(chunk: Chunk, base: Rec, r: Rec) -> None:
    """Both records carry the person's personal email (preferred on a desk record)."""
    email = chunk.personal_email(base.person)
    for rec in (base, r):
        if not any(e[0] == email for e in rec.emails):
            if rec.external:
                rec.emails.append([email, ["personal"], False])
            else:
                rec.emails = [[email, ["personal"], True]] + [[a, t, False] for a, t, _ in rec.emails]


def swapped_date(d: date) -> date:
    """The date with its day and month swapped."""
    return date(d.year, d.day, d.month)


def typo_date(chunk: Chunk, d: date) -> date:
    """The date with one digit of ``YYYY-MM-DD`` mistyped (still a valid date, not in the future)."""
    text = d.strftime("%Y%m%d")
    options = []
    for i in range(2, 8):  # the century is never mistyped
        for digit in "0123456789":
            if digit == text[i]:
                continue
            t = text[:i] + digit + text[i + 1:]
            try:
                new = date(int(t[:4]), int(t[4:6]), int(t[6:]))
            except ValueError:
                continue
            if new < chunk.today and not (d.day <= 12 and new == swapped_date(d)):
                options.append(new)
    return chunk.rng.choice(options)


def dup_person(chunk: Chunk, group: str, kinds: list[str], **kw: Any) -> Person:
    """A person fit for the given variations (nicknames need a nickname-able first name...)."""
    rng, pools = chunk.rng, chunk.pools
    gender = rng.choice(("FEMALE", "MALE"))
    first = last = middle = pref = None
    if "married" in kinds or "married_new_email" in kinds:
        gender = "FEMALE"
    if "suffix" in kinds:
        gender = "MALE"
    if "nickname" in kinds:
        first = rng.choice(NICK_FEMALE if gender == "FEMALE" else NICK_MALE)
        kw.setdefault("locale", "en_US")
    if "pref_name" in kinds and first is None:
        if rng.random() < 0.7:  # an English name for an East-Asian given name
            kw.setdefault("locale", rng.choice(EAST_ASIAN))
            pref = rng.choice(pools.first[("en_US", gender)])
        else:  # a nickname
            first = rng.choice(NICK_FEMALE if gender == "FEMALE" else NICK_MALE)
            kw.setdefault("locale", "en_US")
            pref = rng.choice(NICKNAMES[first])
    if "middle" in kinds or "middle_in_first" in kinds:
        middle = rng.choice(pools.first[("en_US", gender)])
    if "ascii" in kinds:
        loc = kw.setdefault("locale", rng.choice(("vi_VN", "pl_PL", "no_NO", "da_DK", "tr_TR", "de_DE")))
        for _ in range(200):  # a name with letters a US keyboard does not have
            first = first or rng.choice(pools.first[(loc, gender)])
            last = rng.choice(pools.last[loc])
            if typed(first + last) != first + last and " " not in last:
                break
            first = None if "nickname" not in kinds else first
    elif "double_surname" in kinds:
        loc = kw.setdefault("locale", "es_MX" if rng.random() < 0.7 else "en_US")
        single = [n for n in pools.last[loc] if " " not in n and "-" not in n]
        a, b = rng.sample(single, 2)
        last = f"{a} {b}" if loc != "en_US" else f"{a}-{b}"
    elif "particle" in kinds:
        particle, loc = rng.choice(PARTICLES)
        kw.setdefault("locale", loc)
        last = f"{particle} {rng.choice([n for n in pools.last[loc] if ' ' not in n and '-' not in n])}"
    elif "suffix" in kinds:
        kw.setdefault("locale", "en_US")
        core = rng.choice([n for n in pools.last["en_US"] if " " not in n and "-" not in n])
        last = f"{core} {rng.choice(SUFFIXES)}"
    p = chunk.person(group, gender=gender, first=first, last=last, middle=middle, birth="need", pref=pref, **kw)
    if "dob_swap" in kinds:  # a birth date that can be read both ways
        while p.birth is None or p.birth.day > 12 or p.birth.day == p.birth.month:
            p.birth = chunk.birth(group, p.last)
        chunk.taken.add((p.last.casefold(), p.birth.toordinal()))
    return p


def pick_kind(chunk: Chunk, *, exclude: tuple[str, ...] = (), only: tuple[str, ...] = ()) -> str:
    """A kind of :data:`KINDS` drawn by weight, among ``only`` (if given) less ``exclude``."""
    names = [k for k, _ in KINDS if k not in exclude and (not only or k in only)]
    return chunk.rng.choices(names, [w for k, w in KINDS if k in names])[0]

