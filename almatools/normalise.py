"""Names, identifiers, emails, phones and addresses, normalised: one definition for the whole kit.

The quality rules, the duplicate linkage and registration's existing-account search all compare
people's details; they compare them after the functions here, so a name folds the same way
everywhere. Each function has a scalar form (one value, used by registration and tests) and, where a
million values must be done in seconds, a column form (``*_column``) that runs the scalar function
once per *distinct* value (names, tokens) or a few Arrow kernels, so both always agree: the column
form is built from the scalar one, not written twice. ``tests/unit/test_normalise.py`` holds the
table of cases every caller relies on.

Folding
    :func:`fold` transliterates with `anyascii` (a maintained table of every Unicode letter: Đặng ->
    dang, Søren -> soren, Łukasz -> lukasz, Straße -> strasse, ı -> i, æ -> ae, 王 -> wang), lower-cases,
    and keeps letters and digits separated by single spaces. Accents and letters that do not decompose
    are never dropped.

Names
    :func:`name_tokens` splits a name into words: hyphens, spaces, commas and periods separate words;
    apostrophes join (O'Brien -> obrien). Generational suffixes (Jr, Sr, II, III, IV, 2nd, 3rd) are taken
    out and returned by :func:`name_suffix`. :func:`surname_key` is the surname's words joined
    (``García López``, ``Garcia-Lopez`` and ``garcia lopez`` -> ``garcialopez``; ``van der Berg`` ->
    ``vanderberg``); :func:`surname_parts` its words without particles (de, la, van, der, al…), so a
    double surname can be matched on one of its parts. :func:`given_name` is the first word of the
    first name (``Mary Ann`` -> ``mary``; ``J.`` -> ``j``, an initial); :func:`name_forms` is the
    given name with the formal names it is a nickname of, from the `nicknames` package's curated
    table (``bill`` -> bill, william, robert…), so ``Bill`` and ``William`` share a form.

Contacts
    :func:`email_key` is an address trimmed and lower-cased; :func:`is_email` the one check of an
    address's form (``local@domain.tld``); :func:`email_user` the user name without a ``+tag`` and
    without punctuation (``Jane.Doe+lib@x.org`` -> ``janedoe``); :func:`is_institutional` tells whether
    an address is at one of the institution's domains (sub-domains included). :func:`phone_key` is a
    number's last ten digits (country code and trunk prefix drop off: ``+1 (919) 555-0134``,
    ``919.555.0134`` and ``1-919-555-0134`` agree; ``+44 20 7946 0958`` and ``020 7946 0958`` agree);
    fewer than seven digits is no number. :func:`address_key` is the street line folded, with the
    usual abbreviations made one (Street/St./St -> st, Apartment/Apt./# -> apt, North -> n…) and the
    postal code (US ZIP+4 cut to five digits) after a ``|``.

Identifiers
    :func:`identifier_key` compares as Alma does (case folded, whitespace removed);
    :func:`identifier_loose` also drops punctuation (``CB-1234`` and ``cb 1234`` agree), for linkage.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from anyascii import anyascii

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "EMAIL_PATTERN",
    "PARTICLES",
    "SUFFIXES",
    "address_key",
    "address_key_column",
    "email_key",
    "email_key_column",
    "email_user",
    "email_user_column",
    "fold",
    "given_name",
    "given_tokens",
    "identifier_key",
    "identifier_loose",
    "identifier_loose_column",
    "id_key_column",
    "ids_in",
    "is_email",
    "is_email_column",
    "is_academic_column",
    "is_academic",
    "is_initial",
    "is_institutional",
    "map_distinct",
    "name_forms",
    "name_suffix",
    "name_tokens",
    "phone_key",
    "phone_key_column",
    "surname_key",
    "surname_parts",
    "text_column",
]

EMAIL_PATTERN = r"[^@\s]+@(?:[^@\s.,;]+\.)+[a-z]{2,}"
"""An email address's form, on the lower-cased address: ``local@domain.tld`` (the one check of the kit)."""
_EMAIL = re.compile(EMAIL_PATTERN)

PARTICLES = frozenset({
    "al", "bin", "binti", "bint", "da", "das", "de", "del", "della", "der", "di", "do", "dos", "du", "e",
    "el", "ibn", "la", "le", "les", "lo", "st", "ten", "ter", "van", "von", "vom", "y", "zu",
})
"""Surname words that are not a surname on their own (van der Berg is not "Berg" twice)."""

SUFFIXES = {"jr": "jr", "junior": "jr", "sr": "sr", "senior": "sr", "ii": "ii", "2nd": "ii", "iii": "iii",
            "3rd": "iii", "iv": "iv", "4th": "iv"}
"""Generational suffixes, as written -> as compared."""

_SPLIT = re.compile(r"[^a-z0-9]+")
_APOSTROPHES = re.compile(r"['`´’‘ʼ]")


@lru_cache(maxsize=200_000)
def fold(text: str | None) -> str:
    """Transliterate to ASCII, lower-case, keep letters and digits separated by single spaces."""
    if not text:
        return ""
    ascii_text = text if text.isascii() else anyascii(text)
    return " ".join(_SPLIT.split(ascii_text.lower())).strip()


@lru_cache(maxsize=200_000)
def _words(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    ascii_text = text if text.isascii() else anyascii(text)
    return tuple(w for w in _SPLIT.split(_APOSTROPHES.sub("", ascii_text.lower())) if w)


def name_tokens(text: str | None) -> tuple[str, ...]:
    """The words of a name, folded, without generational suffixes (``O'Brien-Smith Jr.`` -> obrien, smith)."""
    return tuple(w for w in _words(text) if w not in SUFFIXES)


def name_suffix(*names: str | None) -> str:
    """The generational suffix written in any of ``names`` (``jr``, ``sr``, ``ii``…), else ""."""
    for name in names:
        for word in _words(name):
            if word in SUFFIXES:
                return SUFFIXES[word]
    return ""


def surname_key(text: str | None) -> str:
    """The surname's words joined: ``García López`` / ``Garcia-Lopez`` -> ``garcialopez``."""
    return "".join(name_tokens(text))


def surname_parts(text: str | None) -> tuple[str, ...]:
    """The surname's words that can stand alone (particles and single letters left out), sorted."""
    return tuple(sorted({w for w in name_tokens(text) if w not in PARTICLES and len(w) > 1}))


@lru_cache(maxsize=200_000)
def given_tokens(text: str | None) -> tuple[str, ...]:
    """The words of a given name: like :func:`name_tokens`, but a hyphen joins (``Min-seo`` -> ``minseo``,
    ``Jean-Luc`` -> ``jeanluc``: one name, not two)."""
    if not text:
        return ()
    return name_tokens(re.sub(r"(?<=\w)[-‐‑](?=\w)", "", text))


def given_name(text: str | None) -> str:
    """The first word of a first name (``Mary Ann`` -> ``mary``, ``J.`` -> ``j``, ``Min-seo`` -> ``minseo``)."""
    words = given_tokens(text)
    return words[0] if words else ""


_ACADEMIC = re.compile(r"(?:^|\.)(?:edu|ac|edu\.[a-z]{2}|ac\.[a-z]{2})$")


def is_academic(text: str | None) -> bool:
    """The address is at an academic domain (``.edu``, ``.ac.uk``, ``.edu.au``…), where user names are
    assigned by the institution (``slee6@``), so the same user name elsewhere is another person."""
    domain = email_key(text).rpartition("@")[2]
    return bool(_ACADEMIC.search(domain))


def is_initial(name: str) -> bool:
    """A folded given name that is a single letter."""
    return len(name) == 1


@lru_cache(maxsize=1)
def _namer():  # noqa: ANN202 - the nicknames package's lookup object
    from nicknames import NickNamer

    return NickNamer()


# Short forms the `nicknames` package (English names) does not hold: the usual Spanish, Portuguese,
# Italian, German, French and Slavic hypocorisms of a US university's patrons. "formal: short short".
_MORE_FORMS = """
alberto: beto tito; alejandro: alex ale jandro; alejandra: ale alex jandra; alexander: xander sasha sandro;
alexandra: sasha sandra; alfonso: poncho; antonio: tono toni tony; beatriz: bea; carlos: carlitos;
concepcion: concha conchita; dolores: lola; eduardo: lalo edu; enrique: kike quique; esperanza: espe;
federico: fede; fernando: fer nando; francisco: paco pancho cisco curro; gabriela: gabi gaby;
giuseppe: beppe peppe; guadalupe: lupe lupita; guillermo: memo guille; ignacio: nacho; jesus: chuy chucho;
jose: pepe chepe; josemaria: chema; juanjose: juanjo; manuel: manu manolo; maria: mari; mariadelpilar: pili;
mariateresa: maite; nicolas: nico; rafael: rafa; ramon: moncho; roberto: beto; rosario: chayo charo;
santiago: santi; catalina: cata; johannes: hans hansi; josef: sepp; friedrich: fritz; dmitri: dima;
ivan: vanya; mikhail: misha; nikolai: kolya; ekaterina: katya; anastasia: nastya; olivia: liv;
"""


@lru_cache(maxsize=1)
def _more_forms() -> dict[str, frozenset[str]]:
    forms: dict[str, set[str]] = {}
    for entry in _MORE_FORMS.replace("\n", " ").split(";"):
        formal, _, short = entry.partition(":")
        if formal.strip():
            for name in short.split():
                forms.setdefault(name, set()).add(formal.strip())
    return {k: frozenset(v) for k, v in forms.items()}


@lru_cache(maxsize=200_000)
def name_forms(given: str) -> frozenset[str]:
    """A folded given name and the formal names it is a short form of (``bill`` -> bill, william…).

    A formal name is a form of itself, so two names that share a form are the same name to a person
    who knows them (Bill and William; Liz and Elizabeth; not Bill and Liz). The forms come from the
    `nicknames` package, with the common Spanish and other hypocorisms it lacks (Beto, Lalo, Paco…).
    """
    if not given or len(given) < 2:
        return frozenset({given} - {""})
    return frozenset({given, *(fold(n) for n in _namer().canonicals_of(given)), *_more_forms().get(given, ())})


def email_key(text: str | None) -> str:
    """An email address compared: trimmed, lower-cased."""
    return (text or "").strip().lower()


def is_email(text: str | None) -> bool:
    """The address has the form ``local@domain.tld`` (after :func:`email_key`)."""
    return bool(_EMAIL.fullmatch(email_key(text)))


def email_user(text: str | None) -> str:
    """The user name of an address, without a ``+tag`` and punctuation (``Jane.Doe+x@y.org`` -> ``janedoe``)."""
    local = email_key(text).split("@", 1)[0].split("+", 1)[0]
    return "".join(fold(local).split())


def is_institutional(text: str | None, domains: Iterable[str]) -> bool:
    """The address is at one of ``domains`` or a sub-domain of one (``alumni.duke.edu`` for ``duke.edu``)."""
    domain = email_key(text).rpartition("@")[2]
    return bool(domain) and any(domain == d or domain.endswith("." + d) for d in (x.lower().strip() for x in domains)
                                if d)


_NOT_DIGIT = re.compile(r"\D")


def phone_key(text: str | None) -> str:
    """A phone number's last ten digits; "" for fewer than seven digits (an extension, a typo)."""
    digits = _NOT_DIGIT.sub("", text or "") if (text or "").isascii() else "".join(
        c for c in text or "" if c.isdigit() and c.isascii())
    return digits[-10:] if len(digits) >= 7 else ""


# USPS street suffixes and unit designators (Publication 28), the common ones, and directions.
_ADDRESS_WORDS = {
    "street": "st", "str": "st", "avenue": "ave", "av": "ave", "avn": "ave", "road": "rd", "drive": "dr",
    "drv": "dr", "boulevard": "blvd", "blvrd": "blvd", "lane": "ln", "court": "ct", "place": "pl",
    "terrace": "ter", "parkway": "pkwy", "highway": "hwy", "circle": "cir", "square": "sq", "trail": "trl",
    "way": "way", "apartment": "apt", "apt": "apt", "unit": "apt", "suite": "ste", "ste": "ste", "room": "rm",
    "floor": "fl", "building": "bldg", "north": "n", "south": "s", "east": "e", "west": "w",
    "northeast": "ne", "northwest": "nw", "southeast": "se", "southwest": "sw", "mount": "mt",
    "fort": "ft", "saint": "st", "first": "1st", "second": "2nd", "third": "3rd", "fourth": "4th",
    "fifth": "5th", "po": "po", "box": "box", "pobox": "po box",
}
_ZIP = re.compile(r"\d{5}(?:\d{4})?")


def _address_word(word: str) -> str:
    return _ADDRESS_WORDS.get(word, word)


def _postal(text: str | None) -> str:
    compact = "".join(_SPLIT.split(fold(text)))
    return compact[:5] if _ZIP.fullmatch(compact) else compact


@lru_cache(maxsize=50_000)
def _street(line: str) -> str:
    return " ".join(_address_word(w) for w in fold(line.replace("#", " apt ")).split())


def address_key(line1: str | None, postal_code: str | None = "") -> str:
    """A street address compared: the first line folded, abbreviations made one, ``|``, the postal code.

    "" when there is no street line.
    """
    street = _street(line1 or "")
    return f"{street}|{_postal(postal_code)}" if street else ""


def identifier_key(value: object) -> str:
    """An identifier as Alma compares it: case folded, all whitespace removed."""
    return "".join(str(value if value is not None else "").split()).casefold()


def identifier_loose(value: object) -> str:
    """An identifier with only its letters and digits, folded (``CB-1234`` -> ``cb1234``), for linkage."""
    return "".join(_SPLIT.split(fold(str(value if value is not None else ""))))


def map_distinct(values: pd.Series, fn: Callable[[str], object]) -> pd.Series:
    """``fn`` of each value, computed once per distinct value (names repeat: a million rows hold far
    fewer distinct spellings). Missing values are given as ""."""
    codes, uniques = pd.factorize(values.astype("string").fillna(""), sort=False)
    mapped = pd.Series([fn(u) for u in uniques], dtype=object)
    if len(codes) == 0:
        return pd.Series([], dtype=object, index=values.index)
    out = mapped.take(codes)
    out.index = values.index
    return out


# ---------------------------------------------------------------------------------------------
# Column forms: the same results as the scalar functions above, for a million values at once. Plain
# ASCII values (nearly all emails, phones and identifiers) go through Arrow kernels that do exactly
# what the scalar function does to ASCII text; the others go through the scalar function itself.
# tests/unit/test_normalise.py checks both forms agree on the case table and on random text.


def text_column(values: Any) -> pa.Array:
    """A text column (a pandas Series, an Arrow array or any iterable of text) as one Arrow string array,
    missing values as "": what every vectorised kernel of the kit works on."""
    import pyarrow as pa

    if isinstance(values, pd.Series):
        values = pa.array(values.astype("string").fillna(""))
    elif not isinstance(values, (pa.Array, pa.ChunkedArray)):
        values = pa.array(list(values), pa.string())
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return values.cast(pa.string()).fill_null("")


def _ascii_or(values: Any, fast: Callable[[pa.Array], pa.Array], slow: Callable[[str], Any]) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = text_column(values)
    out = fast(arr)
    other = pc.invert(pc.string_is_ascii(arr))
    if not pc.any(other).as_py():
        return out
    slow_values = pa.array([slow(text) for text in pc.filter(arr, other).to_pylist()], out.type)
    return pc.replace_with_mask(out, other, slow_values)


def email_key_column(values: Any) -> pa.Array:
    """:func:`email_key` of each value."""
    import pyarrow.compute as pc

    return _ascii_or(values, lambda a: pc.utf8_lower(pc.utf8_trim_whitespace(a)), email_key)


def is_email_column(values: Any) -> pa.Array:
    """:func:`is_email` of each value."""
    import pyarrow.compute as pc

    return _ascii_or(values, lambda a: pc.match_substring_regex(pc.utf8_lower(pc.utf8_trim_whitespace(a)),
                                                                f"^(?:{EMAIL_PATTERN})$"), is_email)


def email_user_column(values: Any) -> pa.Array:
    """:func:`email_user` of each value."""
    import pyarrow.compute as pc

    def fast(a: pa.Array) -> pa.Array:
        local = pc.list_element(pc.split_pattern(pc.utf8_lower(pc.utf8_trim_whitespace(a)), "@", max_splits=1), 0)
        local = pc.list_element(pc.split_pattern(local, "+", max_splits=1), 0)
        return pc.replace_substring_regex(local, "[^a-z0-9]", "")

    return _ascii_or(values, fast, email_user)


def phone_key_column(values: Any) -> pa.Array:
    """:func:`phone_key` of each value."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def fast(a: pa.Array) -> pa.Array:
        digits = pc.replace_substring_regex(a, "[^0-9]", "")
        return pc.if_else(pc.greater_equal(pc.utf8_length(digits), 7), pc.utf8_slice_codeunits(digits, -10),
                          pa.scalar("", pa.string()))

    return _ascii_or(values, fast, phone_key)


def identifier_loose_column(values: Any) -> pa.Array:
    """:func:`identifier_loose` of each value."""
    import pyarrow.compute as pc

    return _ascii_or(values, lambda a: pc.replace_substring_regex(pc.utf8_lower(a), "[^a-z0-9]", ""),
                     identifier_loose)


def _street_column(line1: Any) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    def fast(a: pa.Array) -> pa.Array:
        words = pc.utf8_trim(pc.replace_substring_regex(pc.replace_substring(pc.utf8_lower(a), "#", " apt "),
                                                         "[^a-z0-9]+", " "), " ")
        lists = pc.split_pattern(words, " ")
        flat = pc.list_flatten(lists)
        coded = pc.dictionary_encode(flat)
        mapped_words = pa.array([_address_word(w) for w in coded.dictionary.to_pylist()], pa.string())
        flat = pc.take(mapped_words, coded.indices)
        rebuilt = pa.ListArray.from_arrays(lists.offsets, flat)
        return pc.binary_join(rebuilt, " ")

    return _ascii_or(line1, fast, _street)


def _postal_column(postal_code: Any) -> pa.Array:
    import pyarrow.compute as pc

    def fast(a: pa.Array) -> pa.Array:
        compact = pc.replace_substring_regex(pc.utf8_lower(a), "[^a-z0-9]", "")
        is_zip = pc.match_substring_regex(compact, r"^\d{5}(?:\d{4})?$")
        return pc.if_else(is_zip, pc.utf8_slice_codeunits(compact, 0, 5), compact)

    return _ascii_or(postal_code, fast, _postal)


def address_key_column(line1: Any, postal_code: Any) -> pa.Array:
    """:func:`address_key` of each row."""
    import pyarrow as pa
    import pyarrow.compute as pc

    street = _street_column(line1)
    joined = pc.binary_join_element_wise(street, _postal_column(postal_code), "|")
    return pc.if_else(pc.equal(street, ""), pa.scalar("", pa.string()), joined)


def is_academic_column(values: Any) -> pa.Array:
    """:func:`is_academic` of each value."""
    import pyarrow.compute as pc

    return _ascii_or(values, lambda a: pc.match_substring_regex(
        pc.replace_substring_regex(pc.utf8_lower(pc.utf8_trim_whitespace(a)), "^.*@", ""),
        r"(?:^|\.)(?:edu|ac|edu\.[a-z]{2}|ac\.[a-z]{2})$"), is_academic)


def id_key_column(values: Any) -> pa.Array:
    """Primary ids as Alma compares them, case folded (:meth:`str.casefold`), for a million at once."""
    import pyarrow.compute as pc

    return _ascii_or(values, pc.utf8_lower, lambda text: text.casefold())


def ids_in(values: Any, others: Any) -> np.ndarray:
    """For each of ``values``, whether ``others`` holds the same primary id ignoring case (a bool array)."""
    import pyarrow.compute as pc

    return pc.is_in(id_key_column(values), value_set=pc.unique(id_key_column(others))).to_numpy(zero_copy_only=False)
