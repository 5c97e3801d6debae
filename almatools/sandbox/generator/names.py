"""Names, places and contact details: the data tables and the name pools drawn from Faker."""

from __future__ import annotations

import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate

NICKNAMES: dict[str, tuple[str, ...]] = {
    "William": ("Bill", "Will", "Billy"), "Robert": ("Bob", "Rob", "Bobby"),
    "James": ("Jim", "Jimmy", "Jamie"), "Michael": ("Mike", "Mikey"), "Richard": ("Rick", "Dick"),
    "Thomas": ("Tom", "Tommy"), "Joseph": ("Joe", "Joey"), "Daniel": ("Dan", "Danny"),
    "Matthew": ("Matt",), "Anthony": ("Tony",), "Edward": ("Ed", "Eddie", "Ted"),
    "Benjamin": ("Ben",), "Nicholas": ("Nick",), "Jonathan": ("Jon",), "Andrew": ("Andy", "Drew"),
    "Charles": ("Charlie", "Chuck"), "Steven": ("Steve",), "Timothy": ("Tim",),
    "Alexander": ("Alex",), "Christopher": ("Chris",), "Elizabeth": ("Liz", "Beth", "Betty"),
    "Katherine": ("Kate", "Katie", "Kathy"), "Margaret": ("Peggy", "Maggie", "Meg"),
    "Jennifer": ("Jen", "Jenny"), "Patricia": ("Pat", "Patty", "Trish"), "Susan": ("Sue", "Susie"),
    "Deborah": ("Deb", "Debbie"), "Rebecca": ("Becky", "Becca"), "Victoria": ("Vicky", "Tori"),
    "Jessica": ("Jess",), "Samantha": ("Sam",), "Abigail": ("Abby",), "Alexandra": ("Alex", "Sasha"),
    "Christina": ("Chris", "Tina"), "Kimberly": ("Kim",),
}
NICK_MALE = ("William", "Robert", "James", "Michael", "Richard", "Thomas", "Joseph", "Daniel",
             "Matthew", "Anthony", "Edward", "Benjamin", "Nicholas", "Jonathan", "Andrew", "Charles",
             "Steven", "Timothy", "Alexander", "Christopher")
NICK_FEMALE = ("Elizabeth", "Katherine", "Margaret", "Jennifer", "Patricia", "Susan", "Deborah",
               "Rebecca", "Victoria", "Jessica", "Samantha", "Abigail", "Alexandra", "Christina",
               "Kimberly")

# Origins of names (shares of people): a US university's mix, with the letters that do not decompose
# (Vietnamese Đ, Danish/Norwegian ø and æ, Polish Ł, German ß, Turkish ı) and surname particles (nl, es).
LOCALES = (("en_US", 62), ("es_MX", 11), ("zh_CN", 5), ("vi_VN", 3), ("ko_KR", 2.5), ("de_DE", 3),
           ("fr_FR", 3), ("it_IT", 2), ("nl_NL", 2), ("pl_PL", 1.5), ("no_NO", 1), ("da_DK", 1.5),
           ("tr_TR", 1.5))
LOCALE_CODES = tuple(code for code, _ in LOCALES)
LOCALE_CUM = tuple(accumulate(weight for _, weight in LOCALES))  # choices() would sum them per call
EAST_ASIAN = ("zh_CN", "vi_VN", "ko_KR")
# Korean names romanised as US registrars write them (Faker's ko_KR is Hangul): surnames by their
# approximate national shares (Kim about a fifth, Lee and Park next), given names hyphenated.
_KO_LAST = (("Kim", 21), ("Lee", 15), ("Park", 8), ("Choi", 5), ("Jung", 4), ("Kang", 2), ("Cho", 2),
            ("Yoon", 2), ("Jang", 2), ("Lim", 2), ("Han", 1), ("Oh", 1), ("Seo", 1), ("Shin", 1),
            ("Kwon", 1), ("Hwang", 1), ("Ahn", 1), ("Song", 1), ("Yoo", 1), ("Hong", 1))
# Given names are two syllables, so there are hundreds (a short list would make namesakes common).
_KO_SYLLABLES = {"MALE": (("Min", "Ji", "Hyun", "Jae", "Dong", "Seung", "Young", "Sung", "Jin", "Tae", "Joon",
                           "Sang", "Jong", "Kyung", "Do", "Chan"),
                          ("jun", "hoon", "woo", "won", "hyun", "ho", "min", "yang", "seok", "bin", "sik", "soo")),
                 "FEMALE": (("Seo", "Ji", "Eun", "Soo", "Ye", "Hye", "Mi", "Min", "Ha", "Yu", "Da", "So", "Hee",
                             "Su", "Na", "Yeon"),
                            ("yeon", "woo", "ji", "min", "jin", "kyung", "young", "seo", "eun", "na", "rin", "hee"))}
# Letters NFKD cannot take apart, as a clerk types them on a US keyboard (the first spelling is the
# usual one; German and Scandinavian clerks write the second).
_TYPED = {"Đ": ("D",), "đ": ("d",), "Ø": ("O", "Oe"), "ø": ("o", "oe"), "Æ": ("Ae",), "æ": ("ae",),
          "Ł": ("L",), "ł": ("l",), "ß": ("ss",), "ı": ("i",), "İ": ("I",), "Œ": ("Oe",), "œ": ("oe",),
          "Þ": ("Th",), "þ": ("th",), "ð": ("d",), "ä": ("a", "ae"), "ö": ("o", "oe"), "ü": ("u", "ue"),
          "Ä": ("A", "Ae"), "Ö": ("O", "Oe"), "Ü": ("U", "Ue"), "å": ("a", "aa"), "Å": ("A", "Aa")}
PARTICLES = (("van der", "nl_NL"), ("van den", "nl_NL"), ("van", "nl_NL"), ("de", "nl_NL"),
             ("de la", "es_MX"), ("del", "es_MX"), ("de", "fr_FR"), ("von", "de_DE"), ("di", "it_IT"),
             ("da", "it_IT"))
SUFFIXES = ("Jr", "Jr.", "Sr", "II", "III")
HOME_AREA_CODES = ("203", "212", "240", "301", "412", "516", "570", "585", "607", "631", "717", "724",
                   "814", "845", "914", "315", "860", "443", "540", "703")
FREEMAIL = ("gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com", "aol.com",
            "proton.me", "comcast.net")
FREEMAIL_CUM = tuple(accumulate((40, 15, 15, 8, 8, 5, 4, 5)))
AREA_CODES = ("201", "215", "267", "302", "347", "410", "484", "551", "609", "610", "646", "718",
              "732", "848", "856", "862", "908", "917", "973", "929")


@dataclass(frozen=True)
class Pools:
    """Names by locale (and gender) and US addresses, in the frequencies Faker draws them."""

    first: dict[tuple[str, str], tuple[str, ...]]  # (locale, FEMALE|MALE) -> names, by frequency
    last: dict[str, tuple[str, ...]]
    streets: tuple[str, ...]
    places: tuple[tuple[str, str, str], ...]  # city, state, postal code
    common_first: dict[tuple[str, str], tuple[str, ...]]  # the commonest names, for namesakes
    common_last: dict[str, tuple[str, ...]]


@lru_cache(maxsize=1)
def name_pools() -> Pools:
    """Name and address pools, drawn once from Faker with a fixed seed (draws keep the frequencies)."""
    from faker import Faker

    first: dict[tuple[str, str], tuple[str, ...]] = {}
    last: dict[str, tuple[str, ...]] = {}
    for loc, _w in LOCALES:
        if loc == "ko_KR":
            last[loc] = tuple(name for name, share in _KO_LAST for _ in range(share))
            for gender, (heads, tails) in _KO_SYLLABLES.items():
                first[(loc, gender)] = tuple(f"{h}-{t}" for h in heads for t in tails if h.lower() != t)
            continue
        fk = Faker(loc)
        fk.seed_instance(20240501)
        n = 1500 if loc == "en_US" else 400
        if loc == "zh_CN":  # romanised: the kit keeps to Latin script
            first[(loc, "FEMALE")] = first[(loc, "MALE")] = tuple(fk.first_romanized_name() for _ in range(n))
            last[loc] = tuple(fk.last_romanized_name() for _ in range(n))
            continue
        first[(loc, "FEMALE")] = tuple(fk.first_name_female() for _ in range(n))
        first[(loc, "MALE")] = tuple(fk.first_name_male() for _ in range(n))
        last[loc] = tuple(fk.last_name() for _ in range(n))
    fk = Faker("en_US")
    fk.seed_instance(20240502)
    streets = tuple(fk.street_name() for _ in range(600))
    places = tuple((fk.city(), fk.state_abbr(include_territories=False), fk.zipcode()) for _ in range(300))
    common_first = {key: tuple(n for n, _ in Counter(names).most_common(12)) for key, names in first.items()}
    common_last = {loc: tuple(n for n, _ in Counter(names).most_common(8)) for loc, names in last.items()}
    return Pools(first, last, streets, places, common_first, common_last)


@lru_cache(maxsize=65536)
def typed(s: str, variant: int = 0) -> str:
    """The name as typed on a US keyboard: accents dropped, Đ ø æ Ł ß ı spelled out.

    ``variant`` 1 writes the German and Scandinavian spellings (ø -> oe, ü -> ue, å -> aa).
    """
    out = []
    for ch in s:
        spellings = _TYPED.get(ch)
        if spellings is None:
            out.append(ch)
        else:
            out.append(spellings[min(variant, len(spellings) - 1)])
    return "".join(c for c in unicodedata.normalize("NFKD", "".join(out)) if not unicodedata.combining(c))


@lru_cache(maxsize=65536)
def ascii_lower(s: str) -> str:
    """Lower-case ASCII letters and digits only, for emails and logins (Đặng -> dang, not ang)."""
    return "".join(c for c in typed(s).lower() if c.isascii() and c.isalnum())

