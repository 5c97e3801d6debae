"""One chunk of the institution: its random stream, its people and their clean records."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from almatools.sandbox.generator.names import (
    AREA_CODES,
    EAST_ASIAN,
    FREEMAIL,
    FREEMAIL_CUM,
    HOME_AREA_CODES,
    LOCALE_CODES,
    LOCALE_CUM,
    NICKNAMES,
    ascii_lower,
    name_pools,
)
from almatools.sandbox.generator.people import (
    AGES,
    LOCAL_PREFIX,
    SCHOOL_DOMAIN,
    SIS_PROFILE,
    Ids,
    Person,
    Rec,
    load_policy,
    permute,
)

_JOBS = {"FACULTY": ("Assistant Professor", "Associate Professor", "Professor", "Lecturer",
                     "Research Professor"),
         "STAFF": ("Administrative Assistant", "Program Coordinator", "IT Analyst", "Accountant",
                   "Facilities Technician", "Academic Advisor")}
_NOTES = ("Registered at the Main Library circulation desk; photo ID checked.",
          "Proof of local address seen (utility bill).", "Prefers contact by phone.",
          "Borrowing privileges renewed at the desk.", "Card replaced (lost).")


class Chunk:
    """One chunk of the institution: its Alma records, SIS extract and ground-truth rows.

    It makes people and their clean records from its own random stream; the planted scenarios
    (:mod:`.duplicates`, :mod:`.lookalikes`, :mod:`.problems`) work on it, and :func:`.plan.build`
    fills it in the plan's order.
    """

    def __init__(self, k: int, size: int, seed: int, today: date, n_chunks: int) -> None:
        self.k, self.size, self.today = k, size, today
        self.rng = random.Random(f"almatools-sandbox:{seed}:{k}")
        self.ids = Ids(k, n_chunks, seed)
        self.groups, self.retention = load_policy()
        self.pools = name_pools()
        self.alma: list[Rec] = []
        self.sis_only: list[Rec] = []  # people in the extract under an id Alma does not have
        self.rows: list[tuple[str, str, str, str, str]] = []
        self.taken: set[tuple[str, int]] = set()  # (last name, birth) of the chunk's people
        self.n_clusters = Counter[str]()

    # -- people -------------------------------------------------------------------------------

    def person(self, group: str, *, gender: str | None = None, first: str | None = None,
               last: str | None = None, middle: str | None = None, birth: date | None | str = "auto",
               locale: str | None = None, address: dict[str, Any] | None = None,
               register: bool = True, pref: str | None = None) -> Person:
        rng, pools = self.rng, self.pools
        loc = locale or rng.choices(LOCALE_CODES, cum_weights=LOCALE_CUM)[0]
        gender = gender or rng.choice(("FEMALE", "MALE"))
        first = first or rng.choice(pools.first[(loc, gender)])
        if last is None:
            last = rng.choice(pools.last[loc])
            roll = rng.random()
            if roll < 0.25 and loc == "es_MX" and " " not in last:  # paternal and maternal surnames
                second = rng.choice(pools.last[loc])
                last = f"{last} {second}" if second != last and " " not in second else last
            elif roll < 0.04 and loc == "en_US":  # a hyphenated surname
                second = rng.choice(pools.last[loc])
                last = f"{last}-{second}" if second != last else last
        if middle is None:
            middle = rng.choice(pools.first[(loc, gender)]) if rng.random() < 0.35 else ""
        if middle == first:
            middle = ""
        if pref is None:  # Alma's preferred first name: an English name, a nickname or the middle name
            pref = ""
            if loc in EAST_ASIAN:
                if rng.random() < 0.45:
                    pref = rng.choice(pools.first[("en_US", gender)])
            elif rng.random() < 0.06:
                pref = rng.choice(NICKNAMES[first]) if first in NICKNAMES else middle
        if birth == "auto":  # the SIS nearly always sends it; a desk form often leaves it out
            birth = self.birth(group, last) if rng.random() < (0.98 if self.groups[group].sis_loaded else 0.6) else None
        elif birth == "need":
            birth = self.birth(group, last)
        if register and isinstance(birth, date):
            self.taken.add((last.casefold(), birth.toordinal()))
        assert birth is None or isinstance(birth, date)
        return Person(self.ids.person(), first, middle, last, gender, rng.random() < 0.6, birth, loc,
                      address or self.address(), rng.randrange(5),
                      rng.choices(FREEMAIL, cum_weights=FREEMAIL_CUM)[0], pref if pref != first else "")

    def birth(self, group: str, last: str, ages: tuple[int, int] | None = None) -> date:
        lo, hi = ages or AGES[group]
        for _ in range(50):
            b = self.today - timedelta(days=self.rng.randint(lo * 365, hi * 365 + 364))
            if (last.casefold(), b.toordinal()) not in self.taken:
                return b
        raise RuntimeError("sandbox generator: could not find a free birth date")

    def address(self) -> dict[str, Any]:
        rng = self.rng
        city, state, postal = rng.choice(self.pools.places)
        line2 = f"Apt {rng.randint(1, 30)}{rng.choice('ABCD')}" if rng.random() < 0.2 else None
        return {"line1": f"{rng.randint(1, 9999)} {rng.choice(self.pools.streets)}", "line2": line2,
                "city": city, "state_province": state, "postal_code": postal}

    def email_local(self, person: Person, last: str | None = None) -> str:
        given, family = ascii_lower(person.first) or "x", ascii_lower(last or person.last) or "x"
        n = permute(person.p, self.ids.person_space, self.ids.key(10))
        return (f"{given}.{family}{n}", f"{given}{family}{n}", f"{given[0]}{family}{n}", f"{given}_{family}{n}",
                f"{family}.{given}{n}")[person.email_style]

    def personal_email(self, person: Person, domain: str | None = None, last: str | None = None) -> str:
        return f"{self.email_local(person, last)}@{domain or person.email_domain}"

    def other_email(self, person: Person, k: int = 1) -> str:
        """The person's ``k``-th other personal address (1..7): another user name at another provider,
        so it differs from :meth:`personal_email` and from every other ``k``."""
        style = (person.email_style + k) % 5
        domain = FREEMAIL[(FREEMAIL.index(person.email_domain) + k) % len(FREEMAIL)]
        return f"{self.email_local(replace(person, email_style=style))}@{domain}"

    def netid(self, person: Person) -> str:
        ini = [(ascii_lower(s) or "x")[0] for s in (person.first, person.middle or "x", person.last)]
        return "".join(ini) + str(permute(person.p, self.ids.person_space, self.ids.key(11)))

    def school_email(self, person: Person) -> str:
        return f"{self.netid(person)}@{SCHOOL_DOMAIN}"

    def phone(self, person: Person, style: int = 0, *, home: bool = False) -> str:
        """The person's mobile, or (``home``) the household's landline: area codes of their own, so
        a home number never equals anyone's mobile."""
        slot = person.home_p if home and person.home_p >= 0 else person.p
        v = permute(slot, 8 * 10**6, self.ids.key(13 if home else 12))
        area = (HOME_AREA_CODES if home else AREA_CODES)[slot % len(AREA_CODES)]
        exch, line = 200 + v // 10_000, v % 10_000
        return (f"({area}) {exch}-{line:04d}", f"{area}-{exch}-{line:04d}", f"{area}{exch}{line:04d}",
                f"+1 {area} {exch} {line:04d}")[style]

    # -- records ------------------------------------------------------------------------------

    def _base(self, person: Person, group: str, pid: str, external: bool) -> Rec:
        rng, today = self.rng, self.today
        r = Rec(person, group, pid, external, person.first, person.middle, person.last, person.birth)
        r.status_date = today - timedelta(days=rng.randint(0, 400))
        if rng.random() < 0.6:
            r.last_activity = today - timedelta(days=rng.randint(0, 365))
        lang = {"es_MX": "es", "de_DE": "de", "fr_FR": "fr", "it_IT": "it"}.get(person.locale)
        r.language = lang if lang and rng.random() < 0.3 else "en"
        loans = 0 if rng.random() < 0.6 else rng.randint(1, 12)
        requests = 0 if rng.random() < 0.85 else rng.randint(1, 4)
        fees = 0.0 if rng.random() < 0.9 else round(rng.uniform(0.5, 60.0), 2)
        r.counts = (requests, loans, fees)
        return r

    def _dates(self, r: Rec, *, jitter: int) -> None:
        days = self.groups[r.group].expiry_days
        r.expiry = self.today + timedelta(days=days - self.rng.randint(0, jitter))
        r.purge = r.expiry + timedelta(days=self.retention)

    def sis_rec(self, person: Person, group: str, *, in_sis: bool = True) -> Rec:
        """A clean SIS-managed record (EXTERNAL, "SIS")."""
        rng = self.rng
        pid = self.ids.univ()
        r = self._base(person, group, pid, True)
        r.external_id, r.in_sis = SIS_PROFILE, in_sis
        self._dates(r, jitter=60)  # set by the SIS at its last update
        r.identifiers = [["UNIV_ID", pid, "ACTIVE"], ["BARCODE", self.ids.barcode(), "ACTIVE"],
                         ["NET_ID", self.netid(person), "ACTIVE"]]
        r.pref_first = person.pref_first
        r.emails = [[self.school_email(person), ["school"], True]]
        if rng.random() < 0.45:
            r.emails.append([self.personal_email(person), ["personal"], False])
        if rng.random() < 0.75:
            r.phones = [[self.phone(person), ["mobile"], True]]
        if rng.random() < 0.3:  # the family's landline
            r.phones.append([self.phone(person, home=True), ["home"], not r.phones])
        if rng.random() < 0.6:
            r.addresses = [dict(person.address, types=["home"])]
        if rng.random() < 0.25:  # a term-time or office address besides the permanent one
            r.addresses.append(dict(self.address(), types=["work" if group in ("FACULTY", "STAFF") else "school"]))
        if group in ("FACULTY", "STAFF"):
            r.job = rng.choice(_JOBS[group])
            if group == "FACULTY" and rng.random() < 0.5:
                r.title = rng.choice(("Dr", "Prof"))
        r.campus = "MAIN" if rng.random() < 0.3 else None
        if group == "STAFF" and rng.random() < 0.05:  # library employees: one account, two roles
            r.record_type, r.roles = "STAFF", ["21"]
        return r

    def local_rec(self, person: Person, group: str, *, pid: str | None = None,
                  active: bool | None = None) -> Rec:
        """A clean locally managed record (INTERNAL)."""
        rng, today = self.rng, self.today
        if pid is None:
            pid = self.login(person) if group == "LIBSTAFF" else self.ids.local(LOCAL_PREFIX[group])
        r = self._base(person, group, pid, False)
        days = self.groups[group].expiry_days
        if active is None:
            active = group == "LIBSTAFF" or rng.random() < 0.92
        if active:
            r.expiry = today + timedelta(days=rng.randint(1, days))
        else:  # expired and deactivated within the year: still inside retention
            r.expiry = today - timedelta(days=rng.randint(1, 300))
            r.status, r.counts = "INACTIVE", (0, 0, r.counts[2])
            r.status_date = r.expiry + timedelta(days=rng.randint(0, today.toordinal() - r.expiry.toordinal()))
        r.purge = r.expiry + timedelta(days=self.retention)
        legacy = group in ("ALUMNI", "FRIENDS") and rng.random() < 0.2
        r.identifiers = [["BARCODE", self.ids.legacy_barcode() if legacy else self.ids.barcode(), "ACTIVE"]]
        if rng.random() < 0.1:
            r.identifiers.append(["BARCODE", self.ids.barcode(), "INACTIVE"])
        if group == "LIBSTAFF":
            r.emails = [[f"{pid}@library.{SCHOOL_DOMAIN}", ["work"], True]]
            r.record_type = "STAFF"
            r.roles = ["21", "51"] if rng.random() < 0.3 else ["21"]
        else:
            r.emails = [[self.personal_email(person), ["personal"], True]]
            if rng.random() < 0.1:
                r.emails.append([self.other_email(person), ["personal"], False])
            r.force_password_change = "TRUE" if rng.random() < 0.5 else ""
        if rng.random() < 0.5:
            r.pref_first = person.pref_first
        if rng.random() < 0.8:
            home = rng.random() < 0.4
            r.phones = [[self.phone(person, rng.randrange(2), home=home), ["home" if home else "mobile"], True]]
            if rng.random() < 0.15:
                r.phones.append([self.phone(person, home=not home), ["mobile" if home else "home"], False])
        if rng.random() < 0.85:
            r.addresses = [dict(person.address, types=["home"])]
        if rng.random() < 0.25:
            stamp = today - timedelta(days=rng.randint(0, 700))
            r.notes = [{"type": rng.choice(("CIRCULATION", "LIBRARY")), "text": rng.choice(_NOTES),
                        "date": f"{stamp.isoformat()}T{rng.randint(8, 19):02d}:{rng.randint(0, 59):02d}:"
                                f"{rng.randint(0, 59):02d}.{rng.randint(0, 999):03d}Z"}]
        if rng.random() < 0.03:
            r.blocks = [{"date": today - timedelta(days=rng.randint(1, 90))}]
        return r

    def login(self, person: Person) -> str:
        letters = (ascii_lower(person.first)[:1] + ascii_lower(person.last))[:8]
        if len(letters) < 4:  # keep 4+ letters: NetIDs have exactly three
            letters = (letters + ascii_lower(person.first) + "xxxx")[:4]
        return f"{letters}{self.ids.libstaff()}"

    def clean(self, group: str, person: Person | None = None, **kw: Any) -> Rec:
        person = person or self.person(group)
        if self.groups[group].sis_loaded:
            return self.sis_rec(person, group, **kw)
        return self.local_rec(person, group, **kw)

    def add(self, *recs: Rec) -> None:
        self.alma.extend(recs)

    def row(self, rule: str, pid: str, other: str = "", cluster: str = "", detail: str = "") -> None:
        self.rows.append((rule, pid, other, cluster, detail))

    def cluster(self, kind: str) -> str:
        self.n_clusters[kind] += 1
        return f"{kind}{self.k + 1:04d}-{self.n_clusters[kind]:03d}"
