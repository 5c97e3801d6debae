"""Duplicate patron records: which records belong to one person, how sure we are, and why.

For librarians
--------------
Two records are compared only when they share something that a person's records usually share: an
email address, an identifier, a phone number, the local part of an email (``jane.doe`` at two
providers), or the birth date together with the first name, the last name, or the two names in
either order. Each compared pair is then scored field by field: first and last name (equal, a
nickname such as Bill for William, a one-letter typo, first and last swapped, or different), birth
date, email, phone, address, middle name and identifiers. Every field that agrees adds evidence,
every field that disagrees takes some away, and a field that one record lacks counts for nothing.
A rare agreement counts more than a common one (two records sharing an email address is strong
evidence; sharing a postcode is weak), and disagreements that happen to the records of one person
(a new surname after marriage, a new address) cost less than those that do not (another birth
date, a first name that is not a nickname or a typo). The result is a match probability; pairs
above the threshold (default 0.9) are linked, and linked records form a cluster, one per person.
Identifiers and emails are the exact evidence: they are compared first and weigh the most, but a
shared identifier does not link two records whose names and birth dates disagree, because an
identifier typed in another case or with a stray space can belong to someone else (the
``ID_COLLISION`` finding), and a family may share one email address.

Technical detail
----------------
The model is a Fellegi-Sunter model run by splink (DuckDB by default; ``backend="spark"`` runs the
same settings through splink's ``SparkAPI``). Its parameters are fixed, not trained per run: each
comparison level has an m probability (how often the records of one person fall in the level) and
a u probability (how often the records of two people do), see :data:`MODEL`. The u values were
measured once on random pairs of Sandbox University records and rounded; the m values were read
from its planted duplicates and then widened for errors the sandbox does not plant (birth-date
typos, changed phones). Three u values are raised on purpose because the fields are not
independent for the people who are easiest to confuse (twins and parents with their children share
a surname and an address, and often a middle name): address and middle-name agreement are weak
evidence here. The prior, the probability that two random records are one person, is
``2 * DUPLICATE_RATE / (n - 1)`` for ``n`` records: about one record in a hundred has a duplicate,
so a coincidence of name and birth date counts for less in a million records than in five
thousand. Blocking rules (:data:`BLOCKING_RULES`) are equi-joins, so candidate pairs grow about
linearly with the number of records; keys that more than :data:`MAX_KEY_RECORDS` records share
(``none@none.com``, a dormitory address, a switchboard number) are placeholders, not identities, and
are dropped before blocking and scoring. Names are compared after folding accents and case and
dropping everything but letters; emails lower case; phones as their last ten digits; identifiers
as letters and digits only, case folded (so ``CB-1234`` and ``cb1234`` agree). Clusters are the
connected components of the linked pairs (union-find); a cluster's id is ``"C-"`` and a hash of
its sorted member ids, so it is the same in every run that finds the same members.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pandas as pd

__all__ = [
    "BLOCKING_RULES",
    "DEFAULT_THRESHOLD",
    "DUPLICATE_RATE",
    "MAX_KEY_RECORDS",
    "MODEL",
    "NICKNAMES",
    "DuplicateResult",
    "find_duplicates",
    "linkage_settings",
    "prepare_records",
    "spark_session",
]

logger = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.9
"""Match probability at and above which a pair is linked."""
DUPLICATE_RATE = 0.01
"""The share of records assumed to have a duplicate; sets the model's prior."""
MAX_KEY_RECORDS = 20
"""An email, phone, identifier or address held by more records than this is ignored as a placeholder."""
DISPLAY_COLUMNS = ("first_name", "last_name", "user_group", "account_type", "birth_date", "email")

# Nicknames and short forms of given names: "formal: nickname nickname ...". A name may be the
# short form of several (Alex: Alexander, Alexandra); a formal name is also a form of itself.
_NICKNAME_TEXT = """
abigail: abby abbie; abraham: abe bram; adam: ad; adrian: adi; albert: al bert bertie;
alexander: alex alec al xander sandy sasha lex; alexandra: alex sasha lexi alexa sandy;
alfred: al alf alfie fred; alice: allie ally; allison: ally allie; amanda: mandy manda;
andrew: andy drew; angela: angie; anthony: tony ant; antonio: tono tony; arthur: art artie;
barbara: barb babs barbie; benjamin: ben benny benji; bernard: bernie; beverly: bev;
bradley: brad; brian: bri; calvin: cal; cameron: cam; caroline: carol carrie caro; catherine: cathy kate
katie cat; charles: charlie chuck chas chaz; charlotte: lottie charlie; christina: chris tina christy;
christine: chris tina chrissy; christopher: chris kit topher; cynthia: cindy; daniel: dan danny;
david: dave davey; deborah: deb debbie debra; dennis: denny; dominic: dom; donald: don donny;
dorothy: dot dottie; douglas: doug; edward: ed eddie ted ned; eleanor: ellie nell;
elizabeth: liz beth betty eliza libby lizzie bess; emily: em emmy; eugene: gene;
frances: fran frannie; francis: frank fran; francisco: paco pancho frank cisco; frederick: fred freddie;
gabriel: gabe; gabriela: gaby gabi; gerald: gerry jerry; gregory: greg; guillermo: memo willy;
harold: harry hal; henry: hank harry hal; isabel: izzy bel isa; jacob: jake; james: jim jimmy
jamie; janet: jan; jeffrey: jeff; jennifer: jen jenny jenn; jessica: jess jessie; joanna: jo
joanne: jo; johann: hans jo; johannes: hans jo; john: jack johnny jon; jonathan: jon jonny;
jose: pepe chepe; joseph: joe joey jo; joshua: josh; judith: judy jude; katherine: kate katie kathy
kat kay kitty; kathleen: kathy kate kay; kenneth: ken kenny; kimberly: kim kimmy; lawrence: larry
laurie; leonard: leo len lenny; louis: lou lewis; lucas: luke; luis: lucho; margaret: maggie meg
peggy marge maisie; matthew: matt matty; melissa: mel missy; michael: mike mikey mick
mickey; nathaniel: nate nat; nicholas: nick nicky nico; nicole: nikki nicky; olivia: liv
livvy; pamela: pam; patricia: pat patty trish tricia; patrick: pat paddy rick; peter: pete;
philip: phil pip; rebecca: becky becca; richard: rick rich dick ricky; robert: bob rob bobby robbie
bert; ronald: ron ronnie; samantha: sam sammy; samuel: sam sammy; sandra: sandy; stephanie: steph
stevie; stephen: steve stevie; steven: steve stevie; susan: sue susie suzy; terence: terry;
theodore: ted teddy theo; thomas: tom tommy; timothy: tim timmy; valerie: val; victoria: vicky tori
vic; vincent: vince vinny; walter: walt wally; william: bill will billy willy; zachary: zach zack
"""


def _nicknames() -> dict[str, frozenset[str]]:
    forms: dict[str, set[str]] = {}
    for entry in _NICKNAME_TEXT.replace("\n", " ").split(";"):
        if ":" not in entry:
            continue
        formal, _, short = entry.partition(":")
        formal = formal.strip()
        forms.setdefault(formal, set()).add(formal)
        for name in short.split():
            forms.setdefault(name, set()).add(formal)
    return {name: frozenset(v) for name, v in forms.items()}


NICKNAMES: dict[str, frozenset[str]] = _nicknames()
"""Folded given name -> the formal names it is a form of (``"bill" -> {"william"}``)."""


# ---------------------------------------------------------------------------------------------
# The model


@dataclass(frozen=True)
class _Level:
    """One comparison level: the evidence phrase, the SQL (a splink level creator) and m, u."""

    phrase: str  # "" for null levels; "{l}" / "{r}" are replaced by the two records' values
    make: Callable[[], Any]
    m: float
    u: float
    agrees: bool = True  # listed as agreement (else as a difference) in the evidence
    tf: str | None = None  # term-frequency adjusted on this column: common values count less


@dataclass(frozen=True)
class _Comparison:
    name: str  # output column name, e.g. "first_name"
    shown: str  # the frame column whose values fill "{l}" / "{r}"
    levels: tuple[_Level, ...]


def _cl() -> Any:
    import splink.comparison_level_library as cl

    return cl


def _null(*cols: str) -> Callable[[], Any]:
    def make() -> Any:
        cl = _cl()
        return cl.Or(*(cl.NullLevel(c) for c in cols)) if len(cols) > 1 else cl.NullLevel(cols[0])

    return make


def _sql(condition: str) -> Callable[[], Any]:
    return lambda: _cl().CustomLevel(condition)


def _exact(col: str) -> Callable[[], Any]:
    return lambda: _cl().ExactMatchLevel(col)


def _typo(col: str, short: bool = False) -> Callable[[], Any]:
    """A typo: one edit (Damerau-Levenshtein <= 1); ``short``: in a name of 3 letters or fewer,
    which is weak evidence (Yan and Yang, Li and Lai are other people)."""
    def make() -> Any:
        cl = _cl()
        size = "<= 3" if short else ">= 4"
        return cl.And(cl.CustomLevel(f"least(length({col}_l), length({col}_r)) {size}"),
                      cl.DamerauLevenshteinLevel(col, 1))

    return make


def _similar(col: str) -> Callable[[], Any]:
    """Jaro-Winkler >= 0.9: alike, but not a one-letter typo (Michael and Michelle)."""
    return lambda: _cl().JaroWinklerLevel(col, 0.9)


def _intersect(col: str) -> Callable[[], Any]:
    return lambda: _cl().ArrayIntersectLevel(col, 1)


def _else() -> Any:
    return _cl().ElseLevel()


_SWAPPED = "fn_l = ln_r AND ln_l = fn_r"

MODEL: tuple[_Comparison, ...] = (
    _Comparison("first_name", "first_name", (
        _Level("", _null("fn"), 1, 1),
        _Level("first name equal", _exact("fn"), 0.65, 0.003, tf="fn"),
        _Level("first and last name swapped ({l}/{r})", _sql(_SWAPPED), 0.03, 2e-7),
        _Level("first name nickname ({l}/{r})", _intersect("fn_forms"), 0.15, 0.0006),
        _Level("first name typo ({l}/{r})", _typo("fn"), 0.14, 0.0008),
        _Level("first name typo ({l}/{r})", _typo("fn", short=True), 0.015, 0.002),
        _Level("first name similar ({l}/{r})", _similar("fn"), 0.01, 0.0008),
        _Level("first name initial ({l}/{r})", _sql("substr(fn_l, 1, 1) = substr(fn_r, 1, 1)"), 0.02, 0.06),
        _Level("first name differs ({l}/{r})", _else, 0.003, 0.93, agrees=False),
    )),
    _Comparison("last_name", "last_name", (
        _Level("", _null("ln"), 1, 1),
        _Level("last name equal", _exact("ln"), 0.72, 0.002, tf="ln"),
        # a swap is scored once, on the first name: here it weighs nothing
        _Level("", _sql(_SWAPPED), 1e-5, 1e-5),
        _Level("last name typo ({l}/{r})", _typo("ln"), 0.15, 0.0004),
        _Level("last name typo ({l}/{r})", _typo("ln", short=True), 0.013, 0.002),
        _Level("last name similar ({l}/{r})", _similar("ln"), 0.01, 0.0004),
        _Level("last name part of the other ({l}/{r})",
               _sql("length(ln_l) > 2 AND length(ln_r) > 2 AND "
                    "(instr(ln_l, ln_r) > 0 OR instr(ln_r, ln_l) > 0)"), 0.01, 0.0005),
        _Level("last name changed, the old one in an email ({l}/{r})",
               _sql("(length(ln_l) >= 3 AND instr(email_names_r, ln_l) > 0) OR "
                    "(length(ln_r) >= 3 AND instr(email_names_l, ln_r) > 0)"), 0.04, 0.001),
        _Level("last name differs ({l}/{r})", _else, 0.06, 0.997, agrees=False),
    )),
    _Comparison("birth_date", "birth_date", (
        _Level("", _null("birth_date"), 1, 1),
        _Level("same birth date", _exact("birth_date"), 0.96, 0.00013),
        _Level("birth date typo ({l}/{r})",
               _sql("damerau_levenshtein(birth_date_l, birth_date_r) <= 1 OR ("
                    "substr(birth_date_l, 1, 4) = substr(birth_date_r, 1, 4) AND "
                    "substr(birth_date_l, 6, 2) = substr(birth_date_r, 9, 2) AND "
                    "substr(birth_date_l, 9, 2) = substr(birth_date_r, 6, 2))"), 0.02, 0.003),
        _Level("birth date differs ({l}/{r})", _else, 0.02, 0.997, agrees=False),
    )),
    _Comparison("email", "email", (
        _Level("", _null("emails"), 1, 1),
        _Level("email equal", _intersect("emails"), 0.60, 1e-5),
        _Level("email user name equal", _intersect("email_users"), 0.15, 2e-5),
        _Level("", _else, 0.25, 1.0),
    )),
    _Comparison("phone", "phone", (
        _Level("", _null("phone10"), 1, 1),
        _Level("phone equal", _exact("phone10"), 0.85, 1e-5),
        _Level("phone differs", _else, 0.15, 1.0, agrees=False),
    )),
    _Comparison("address", "line1", (
        _Level("", _null("address"), 1, 1),
        _Level("address equal", _exact("address"), 0.60, 0.03),
        _Level("", _else, 0.40, 0.97),
    )),
    _Comparison("middle_name", "middle_name", (
        _Level("", _null("mn"), 1, 1),
        _Level("middle name equal", _sql("mn_l = mn_r OR ((length(mn_l) = 1 OR length(mn_r) = 1) "
                                         "AND substr(mn_l, 1, 1) = substr(mn_r, 1, 1))"), 0.9, 0.5),
        _Level("middle name differs ({l}/{r})", _else, 0.1, 0.5, agrees=False),
    )),
    _Comparison("identifier", "identifier_values", (
        _Level("", _null("ids"), 1, 1),
        _Level("identifier equal", _intersect("ids"), 0.06, 2e-7),
        _Level("", _else, 0.94, 1.0),
    )),
    # Most duplicates in Alma are a record made by hand for someone the SIS also loads; two
    # SIS-loaded records of one person are rarer (the SIS keeps its own people apart).
    _Comparison("account_type", "account_type", (
        _Level("", _null("sis"), 1, 1),
        _Level("", _sql("sis_l AND sis_r"), 0.15, 0.75),
        _Level("", _else, 0.85, 0.25),
    )),
)
"""The comparisons, their levels in order (the first that holds applies) and m/u probabilities."""

BLOCKING_RULES: tuple[tuple[str, ...], ...] = (
    ("emails",), ("ids",), ("phone10",), ("email_users",),
    ("birth_date", "ln"), ("birth_date", "fn"), ("birth_date", "name_key"),
)
"""Candidate pairs: records equal on all columns of a rule (list columns: share an element)."""
_ARRAYS = frozenset({"emails", "ids", "email_users"})


def linkage_settings(n_records: int) -> Any:
    """The splink settings of the model for a table of ``n_records`` records.

    Args:
        n_records: Number of records; sets the prior (see the module docstring).

    Returns:
        A ``splink.SettingsCreator`` usable with any splink backend.
    """
    import splink.comparison_library as cll
    from splink import SettingsCreator, block_on

    comparisons = []
    for comp in MODEL:
        levels = []
        for i, level in enumerate(comp.levels):
            creator = level.make()  # the first level of each comparison is its null level
            if i == 0:
                creator = creator.configure(is_null_level=True)
            else:
                creator = creator.configure(m_probability=level.m, u_probability=level.u)
                if level.tf:
                    creator = creator.configure(tf_adjustment_column=level.tf, tf_adjustment_weight=1.0)
            levels.append(creator)
        comparisons.append(cll.CustomComparison(levels, output_column_name=comp.name))
    rules = [block_on(*cols, arrays_to_explode=[c for c in cols if c in _ARRAYS] or None)
             for cols in BLOCKING_RULES]
    prior = min(0.5, 2 * DUPLICATE_RATE / max(1, n_records - 1))
    return SettingsCreator(
        link_type="dedupe_only", unique_id_column_name="unique_id", comparisons=comparisons,
        blocking_rules_to_generate_predictions=rules, probability_two_random_records_match=prior,
        retain_matching_columns=True, retain_intermediate_calculation_columns=False,
    )


# ---------------------------------------------------------------------------------------------
# Preparing the records

_INPUT_COLUMNS = ("primary_id", "first_name", "middle_name", "last_name", "birth_date", "emails", "phone",
                  "identifier_values", "line1", "postal_code", "account_type")
_RECORDS = "almatools_dup_records"


def _prepare(con: duckdb.DuckDBPyConnection, users: pd.DataFrame) -> str:
    """Create the linkage table in ``con`` (see :func:`prepare_records`); return its name."""
    src = users.loc[:, list(_INPUT_COLUMNS)].reset_index(drop=True)
    src.insert(0, "unique_id", np.arange(len(src), dtype="int64"))
    nick = pd.DataFrame([(k, sorted(v)) for k, v in NICKNAMES.items()], columns=["name", "forms"])
    con.register("__almatools_users", src)
    con.register("__almatools_nick", nick)
    try:
        # Everything per row (no regrouping): names are folded once per distinct spelling.
        con.execute("""
        CREATE OR REPLACE TEMP TABLE __almatools_base AS
        WITH spellings AS (
            SELECT n, nullif(regexp_replace(lower(strip_accents(n)), '[^a-z]', '', 'g'), '') AS folded
            FROM (SELECT first_name AS n FROM __almatools_users UNION SELECT last_name FROM __almatools_users
                  UNION SELECT middle_name FROM __almatools_users)
            WHERE n IS NOT NULL
        )
        SELECT s.unique_id, f.folded AS fn, l.folded AS ln, m.folded AS mn,
               CASE upper(trim(s.account_type)) WHEN 'EXTERNAL' THEN true WHEN 'INTERNAL' THEN false END AS sis,
               CASE WHEN regexp_full_match(s.birth_date, '\\d{4}-\\d{2}-\\d{2}') THEN s.birth_date END AS birth_date,
               list_distinct(list_filter(string_split(lower(s.emails), ';'), lambda e: e LIKE '%_@_%.%')) AS emails,
               nullif(right(regexp_replace(coalesce(s.phone, ''), '[^0-9]', '', 'g'), 10), '') AS phone10,
               list_distinct(list_filter(list_transform(string_split(s.identifier_values, ';'),
                                                        lambda i: regexp_replace(lower(i), '[^a-z0-9]', '', 'g')),
                                         lambda i: length(i) >= 4)) AS ids,
               CASE WHEN trim(coalesce(s.line1, '')) <> '' THEN
                   regexp_replace(lower(s.line1 || '|' || coalesce(s.postal_code, '')), '[^a-z0-9|]', '', 'g')
               END AS address
        FROM __almatools_users s
        LEFT JOIN spellings f ON f.n = s.first_name
        LEFT JOIN spellings l ON l.n = s.last_name
        LEFT JOIN spellings m ON m.n = s.middle_name
        """)
        # A key that many records hold is a placeholder (none@none.com, a dormitory), not an identity.
        cap = int(MAX_KEY_RECORDS)
        placeholders = dict(con.execute(f"""
            WITH keys AS (
                SELECT 'emails' AS col, unnest(emails) AS k FROM __almatools_base
                UNION ALL SELECT 'ids', unnest(ids) FROM __almatools_base
                UNION ALL SELECT 'phone10', phone10 FROM __almatools_base WHERE length(phone10) >= 7
                UNION ALL SELECT 'address', address FROM __almatools_base WHERE address IS NOT NULL
            ), crowded AS (SELECT col, k FROM keys GROUP BY col, k HAVING count(*) > {cap})
            SELECT c.col, coalesce(list(k) FILTER (WHERE k IS NOT NULL), [])
            FROM (VALUES ('emails'), ('ids'), ('phone10'), ('address')) c(col)
            LEFT JOIN crowded USING (col) GROUP BY c.col
        """).fetchall())
        emails = "emails" if not placeholders.get("emails") else "list_filter(emails, lambda e: NOT list_contains($emails, e))"
        ids = "ids" if not placeholders.get("ids") else "list_filter(ids, lambda i: NOT list_contains($ids, i))"
        con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {_RECORDS} AS
        WITH kept AS (
            SELECT b.* REPLACE (
                       nullif({emails}, []) AS emails,
                       nullif({ids}, []) AS ids,
                       CASE WHEN length(phone10) >= 7 AND NOT list_contains($phone10, phone10) THEN phone10 END
                           AS phone10,
                       CASE WHEN NOT list_contains($address, address) THEN address END AS address),
                   n.forms
            FROM __almatools_base b LEFT JOIN __almatools_nick n ON n.name = b.fn
        )
        SELECT unique_id, fn, ln, mn, sis,
               CASE WHEN fn IS NOT NULL THEN list_distinct(list_append(coalesce(forms, []), fn)) END AS fn_forms,
               CASE WHEN fn IS NOT NULL AND ln IS NOT NULL THEN least(fn, ln) || '|' || greatest(fn, ln) END
                   AS name_key,
               birth_date, emails,
               nullif(list_distinct(list_transform(
                   list_filter(emails, lambda e: length(split_part(e, '@', 1)) >= 5),
                   lambda e: regexp_replace(split_part(split_part(e, '@', 1), '+', 1), '[^a-z0-9]', '', 'g'))), [])
                   AS email_users,
               array_to_string(list_transform(emails, lambda e: regexp_replace(split_part(e, '@', 1), '[^a-z]', '', 'g')),
                               ' ') AS email_names,
               phone10, ids, address
        FROM kept
        """, {name: placeholders.get(name, []) for name in ("phone10", "address")}
            | ({"emails": placeholders["emails"]} if placeholders.get("emails") else {})
            | ({"ids": placeholders["ids"]} if placeholders.get("ids") else {}))
        con.execute("DROP TABLE __almatools_base")
    finally:
        con.unregister("__almatools_users")
        con.unregister("__almatools_nick")
    return _RECORDS


def prepare_records(users: pd.DataFrame) -> pd.DataFrame:
    """The linkage table: the normalised fields of each record that the model compares.

    Args:
        users: The patron table (:func:`almatools.quality.frame.users_frame`).

    Returns:
        One row per record, in the order of ``users``, with ``unique_id`` (the row position) and
        ``fn``, ``ln``, ``mn`` (folded names), ``sis`` (SIS-managed), ``fn_forms`` (the first name
        and the formal names it is a nickname of), ``name_key`` (the two names in sorted order),
        ``birth_date``, ``emails``, ``email_users`` (user names without punctuation),
        ``email_names`` (their letters), ``phone10``, ``ids`` and ``address``.
    """
    with duckdb.connect() as con:
        return con.sql(f"SELECT * FROM {_prepare(con, users)} ORDER BY unique_id").df()


# ---------------------------------------------------------------------------------------------
# Results


@dataclass
class DuplicateResult:
    """What :func:`find_duplicates` found.

    Attributes:
        pairs: One row per linked pair: ``primary_id_l``, ``primary_id_r``, ``match_probability``,
            ``evidence`` (what agreed, then what differed, in words) and ``cluster_id``; sorted by
            cluster and descending probability.
        clusters: One row per record in a cluster of two or more: ``cluster_id``, ``primary_id``
            and the display columns ``first_name``, ``last_name``, ``user_group``,
            ``account_type``, ``birth_date``, ``email``.
        timings: Seconds per step (``prepare``, ``predict``, ``evidence``, ``cluster``, ``total``).
        threshold: The match probability threshold used.
    """

    pairs: pd.DataFrame
    clusters: pd.DataFrame
    timings: dict[str, float] = field(default_factory=dict)
    threshold: float = DEFAULT_THRESHOLD

    def linked_pairs(self) -> set[frozenset[str]]:
        """Every pair of records that share a cluster (the transitive closure of :attr:`pairs`)."""
        out: set[frozenset[str]] = set()
        for ids in self.clusters.groupby("cluster_id", sort=False)["primary_id"]:
            members = list(ids[1])
            out.update(frozenset((a, b)) for i, a in enumerate(members) for b in members[i + 1:])
        return out


class _Timer:
    def __init__(self, progress: bool) -> None:
        self.timings: dict[str, float] = {}
        self.bar = None
        if progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=4, desc="Duplicates", unit="step")
        self.start = time.perf_counter()

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        t = time.perf_counter()
        if self.bar is not None:
            self.bar.set_postfix_str(name)
        yield
        self.timings[name] = round(time.perf_counter() - t, 3)
        logger.debug("duplicates: %s took %.2f s", name, self.timings[name])
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> dict[str, float]:
        self.timings["total"] = round(time.perf_counter() - self.start, 3)
        if self.bar is not None:
            self.bar.close()
        return self.timings


def _cluster_ids(n: int, left: list[int], right: list[int]) -> dict[int, int]:
    """Union-find over record positions; returns position -> root for linked records."""
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in zip(left, right):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {x: find(x) for x in set(left) | set(right)}


def _evidence(row: dict[str, Any], left: dict[str, str], right: dict[str, str]) -> str:
    """The evidence of a scored pair in words: what agreed, then what differed."""
    agreed, differed = [], []
    for comp in MODEL:
        gamma = int(row[f"gamma_{comp.name}"])
        level = comp.levels[len(comp.levels) - 1 - gamma] if gamma >= 0 else comp.levels[0]
        if level.phrase:
            text = level.phrase.replace("{l}", left[comp.shown]).replace("{r}", right[comp.shown])
            (agreed if level.agrees else differed).append(text)
    return "; ".join(agreed + differed)


def _clusters(users: pd.DataFrame, left: list[int], right: list[int], probability: pd.Series,
              evidence: list[str], record: dict[int, dict[str, str]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The pairs and clusters tables: connected components of the linked pairs, with stable ids."""
    roots = _cluster_ids(len(users), left, right)
    members: dict[int, list[int]] = {}
    for pos, root in roots.items():
        members.setdefault(root, []).append(pos)
    cluster_of: dict[int, str] = {}
    for group in members.values():
        key = "\x1f".join(sorted(record[p]["primary_id"] for p in group))
        cid = "C-" + hashlib.sha1(key.encode("utf-8")).hexdigest()[:10]
        cluster_of.update((p, cid) for p in group)
    ids = [sorted((record[a]["primary_id"], record[b]["primary_id"])) for a, b in zip(left, right)]
    pairs = pd.DataFrame({
        "primary_id_l": pd.array([x[0] for x in ids], dtype="string"),
        "primary_id_r": pd.array([x[1] for x in ids], dtype="string"),
        "match_probability": probability.astype("float64").round(6).to_numpy(),
        "evidence": pd.array(evidence, dtype="string"),
        "cluster_id": pd.array([cluster_of[a] for a in left], dtype="string"),
    }).sort_values(["cluster_id", "match_probability", "primary_id_l", "primary_id_r"],
                   ascending=[True, False, True, True], ignore_index=True)
    positions = sorted(cluster_of)
    clusters = pd.DataFrame({"cluster_id": [cluster_of[p] for p in positions]}, dtype="string")
    for c in ("primary_id", *DISPLAY_COLUMNS):
        clusters[c] = pd.array([record[p][c] for p in positions], dtype="string")
    return pairs, clusters.sort_values(["cluster_id", "primary_id"], ignore_index=True)


def spark_session(master: str | None = None, **conf: str) -> Any:
    """A Spark session able to run the model: splink's similarity functions (Jaro-Winkler,
    Damerau-Levenshtein) are on its class path. Needs the ``spark`` extra and Java 17.

    Args:
        master: The Spark master, e.g. ``"local[4]"`` (default: Spark's, or the cluster's).
        **conf: Further Spark settings, e.g. ``{"spark.sql.shuffle.partitions": "64"}``.

    Returns:
        The active ``pyspark.sql.SparkSession`` if one exists (it must then have been started with
        ``spark.jars`` naming ``splink.backends.spark.similarity_jar_location()``), else a new one.
    """
    from pyspark.sql import SparkSession
    from splink.backends.spark import similarity_jar_location

    builder = SparkSession.builder.appName("almatools-duplicates").config("spark.jars", similarity_jar_location())
    if master:
        builder = builder.master(master)
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def _predict(con: duckdb.DuckDBPyConnection, table: str, n: int, threshold: float, backend: str,
             spark: Any) -> pd.DataFrame:
    """Score the candidate pairs of the prepared ``table`` with splink; the pairs at or above ``threshold``."""
    from splink import Linker

    if backend == "duckdb":
        from splink import DuckDBAPI

        db_api = DuckDBAPI(connection=con)
        records = db_api.register(table)
    else:
        from splink import SparkAPI

        spark = spark if spark is not None else spark_session()
        # splink breaks long lineages with checkpoints when it can, else it keeps tables in memory
        lineage = None if spark.sparkContext.getCheckpointDir() else "persist"
        db_api = SparkAPI(spark_session=spark, break_lineage_method=lineage)
        # Arrow both ways: PySpark's pandas conversion does not support pandas 3 yet
        arrow = con.sql(f"SELECT * FROM {table} ORDER BY unique_id").to_arrow_table()
        records = db_api.register(arrow, table_name=f"almatools_records_{id(arrow):x}")
    linker = Linker(records, linkage_settings(n), log_level=None)
    predictions = linker.inference.predict(threshold_match_probability=threshold, warning_mode="never")
    out = predictions.as_pyarrow_table().to_pandas()
    db_api.delete_tables_created_by_splink_from_db()
    return out


def find_duplicates(users: pd.DataFrame, *, backend: str = "duckdb", threshold: float = DEFAULT_THRESHOLD,
                    progress: bool = False, spark: Any = None) -> DuplicateResult:
    """Find the records that belong to one person.

    Args:
        users: The patron table (:func:`almatools.quality.frame.users_frame`): one row per record,
            with at least ``primary_id``, the name parts, ``birth_date``, ``emails``, ``phone``,
            ``identifier_values``, ``line1``, ``postal_code`` and the display columns.
        backend: ``"duckdb"`` (embedded, the default) or ``"spark"`` (needs the ``spark`` extra,
            ``pip install almatools[spark]``, and Java 17).
        threshold: Link pairs whose match probability is at least this (0 < threshold < 1).
        progress: Show a progress bar over the steps.
        spark: A ``pyspark.sql.SparkSession`` for ``backend="spark"`` (default: the active or a
            new local session).

    Returns:
        The linked pairs with their probability and evidence, and the clusters.

    Raises:
        ValueError: ``backend`` is unknown, ``threshold`` is out of range, or ``users`` lacks a column.
    """
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be between 0 and 1, not {threshold}")
    if backend not in ("duckdb", "spark"):
        raise ValueError(f"backend must be 'duckdb' or 'spark', not {backend!r}")
    missing = {*_INPUT_COLUMNS, *DISPLAY_COLUMNS} - set(users.columns)
    if missing:
        raise ValueError(f"the patron table lacks the columns {sorted(missing)}")
    timer = _Timer(progress)
    users = users.reset_index(drop=True)
    with duckdb.connect() as con:
        with timer.step("prepare"):
            table = _prepare(con, users)
        with timer.step("predict"):
            pred = (_predict(con, table, len(users), threshold, backend, spark) if len(users) > 1 else
                    pd.DataFrame({"unique_id_l": [], "unique_id_r": [], "match_probability": []}))
    with timer.step("evidence"):
        pred = pred[pred["match_probability"] >= threshold]
        left = pred["unique_id_l"].astype("int64").tolist()
        right = pred["unique_id_r"].astype("int64").tolist()
        involved = sorted(set(left) | set(right))
        shown_cols = sorted({comp.shown for comp in MODEL} | {"primary_id", *DISPLAY_COLUMNS})
        rows = users.loc[involved, shown_cols].astype(object).fillna("").astype(str)
        record = dict(zip(involved, rows.to_dict("records")))
        # show values in the order of the output columns (primary_id_l < primary_id_r)
        evidence = [_evidence(row, *sorted((record[a], record[b]), key=lambda r: r["primary_id"]))
                    for row, a, b in zip(pred.to_dict("records"), left, right)]
    with timer.step("cluster"):
        pairs, clusters = _clusters(users, left, right, pred["match_probability"], evidence, record)
    timings = timer.close()
    logger.info("duplicates: %d records, %d linked pairs, %d clusters in %.1f s", len(users), len(pairs),
                clusters["cluster_id"].nunique(), timings["total"])
    return DuplicateResult(pairs, clusters, timings, threshold)
