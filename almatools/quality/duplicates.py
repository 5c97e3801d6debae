"""Duplicate patron records: which records belong to one person, how sure we are, and why.

For librarians
--------------
Two records are compared when they share something a person's records usually share: any email
address, any phone number, any identifier, an email user name (``jane.doe`` at two providers), an
address together with the surname or the first name, the birth date together with a first name or
a part of the surname, a name that sounds the same (Double-Metaphone-like keys) born the same year,
or the same full name when few people have it. Each compared pair is then scored field by field:

* **first name**: equal; a nickname or the preferred name (Bill and William, "Jack" for Hương); the
  names swapped with the surname; a one-letter typo; a middle name used as the first name; an
  initial (J. and John); alike; or different, which is strong evidence of two people;
* **surname**: equal; one part of a double surname (García López and Lopez); a typo; the old surname
  still in an email address (a married name); or different (allowed only with strong other evidence);
* **birth date**: equal; day and month swapped; one digit off; or different, and far apart (a parent
  and a child) counts heavily against;
* **email**, **phone**, **address**, **identifier**: any shared value; the **middle name** and a
  **generational suffix** (Jr/Sr, different ones are two people).

A rare agreement counts more than a common one: agreeing on "Smith" is weaker evidence than on
"Quackenbush", and the kit learns how common each name is from the data. A household (an address,
a phone or a family email shared by twins, spouses, a parent and a child) never links people whose
first names differ or whose birth dates disagree.

Two tiers come out. **Likely** pairs (match probability at or above :data:`DEFAULT_THRESHOLD`, and
no conflict) go to ``duplicates.csv`` and the merge proposals. **Possible** pairs (probability at or
above :data:`POSSIBLE_THRESHOLD`, or a likely score held back by a conflict that a person should look
at: a changed surname with only name and birth date, birth dates that disagree, two live SIS records)
go to ``possible_duplicates.csv`` for review. Staff decisions on pairs (:mod:`almatools.quality.review`)
are kept between runs: "different people" is never proposed again, "same person" joins the likely tier.

Linked records form clusters, one per person. A cluster is accepted only if every two members are
consistent (no conflicting first names or birth dates, no two live SIS identities, no pair marked
different); otherwise it is split at its weakest link, and the links cut go to the possible tier.

Technical detail
----------------
A Fellegi-Sunter model run by splink (DuckDB by default; ``backend="spark"`` runs the same settings
through splink's ``SparkAPI``). Each comparison level has an m probability (how often the records of
one person fall in the level) and a u probability (how often two people's do), see :data:`MODEL`.

Weights are learnt from the data being analysed when it is large enough (:data:`MIN_TRAIN_RECORDS`):
u by random sampling of record pairs, m by expectation-maximisation over the pairs that share a birth
date and surname, then over those that share their first email address (each pass learns the comparisons its
blocking rule does not fix). Learnt values are **clamped to each level's bounds** (:class:`_Level`
``m_range``/``u_range``): EM on a population of namesakes can otherwise decide that ``jwang@`` and
``lwang@`` are strong evidence, or that a different first name is a usual thing for one person. The
values used are in :attr:`DuplicateResult.model` (and the run's summary); if training fails or the
input is small, the fixed values below are used. Training always runs on DuckDB (the prepared table is
there), so the Spark backend scores with the same model. Name agreement is term-frequency adjusted.

The prior, the probability that two random records are one person, is
``2 * DUPLICATE_RATE / (n - 1)``. Blocking rules (:data:`BLOCKING_RULES`) are equi-joins on exploded
keys, so candidate pairs grow about linearly; a key that more than :data:`MAX_KEY_RECORDS` records
share (``none@none.com``, a switchboard, ``N/A``) is a placeholder and is dropped first, and a full name
brings records together only when at most :data:`MAX_NAME_RECORDS` hold it. Every value is
normalised by :mod:`almatools.normalise`, the kit's one definition. A cluster's id is ``"C-"`` and a
hash of its sorted member ids, the same in every run that finds the same members.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from almatools.quality.linkage_cache import linkage_cache
from almatools.quality.linkage_model import (
    BLOCKING_RULES,
    DEFAULT_THRESHOLD,
    DUPLICATE_RATE,
    MAX_KEY_RECORDS,
    MAX_NAME_RECORDS,
    MIN_TRAIN_RECORDS,
    MODEL,
    POSSIBLE_THRESHOLD,
    U_SAMPLE_PAIRS,
    linkage_settings,
)
from almatools.quality.linkage_prepare import (
    _RECORDS,
    CACHE_KEY_COLUMNS,
    LINKAGE_COLUMNS,
    _check_columns,
    _connect,
    _prepare,
    prepare_records,
)
from almatools.quality.linkage_tiers import DuplicateResult, _tiers

__all__ = [
    "BLOCKING_RULES",
    "DEFAULT_THRESHOLD",
    "DUPLICATE_RATE",
    "LINKAGE_COLUMNS",
    "MAX_KEY_RECORDS",
    "MAX_NAME_RECORDS",
    "MIN_TRAIN_RECORDS",
    "MODEL",
    "POSSIBLE_THRESHOLD",
    "DuplicateResult",
    "candidate_pairs",
    "find_duplicates",
    "linkage_settings",
    "prepare_records",
    "spark_session",
]

logger = logging.getLogger(__name__)

# The expectation-maximisation passes that learn the m values: the columns each blocks on, in plain words.
_EM_PASSES = ((("birth_date", "ln"), "a birth date and a last name"), (("email1",), "an email address"))


class _Timer:
    def __init__(self, progress: bool) -> None:
        self.timings: dict[str, float] = {}
        self.bar = None
        if progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=4, desc="Duplicates", unit="step")  # prepare, train, predict, tiers
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
            self.bar.update(self.bar.total - self.bar.n)  # steps with nothing to do (one record) count as done
            self.bar.close()
        return self.timings


# ---------------------------------------------------------------------------------------------
# Scoring with splink


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


class _Scorer:
    """One splink database API over the prepared table; scores candidate pairs, learns weights."""

    def __init__(self, con: duckdb.DuckDBPyConnection, table: str, n: int, backend: str, spark: Any) -> None:
        self.n, self.con, self.table = n, con, table
        if backend == "duckdb":
            from splink import DuckDBAPI

            self.api = DuckDBAPI(connection=con)
            self.records = self.api.register(table)
        else:
            from splink import SparkAPI

            spark = spark if spark is not None else spark_session()
            # splink breaks long lineages with checkpoints when it can, else it keeps tables in memory
            lineage = None if spark.sparkContext.getCheckpointDir() else "persist"
            self.api = SparkAPI(spark_session=spark, break_lineage_method=lineage)
            # Arrow both ways: PySpark's pandas conversion does not support pandas 3 yet
            arrow = con.sql(f"SELECT * FROM {table} ORDER BY unique_id").to_arrow_table()
            self.records = self.api.register(arrow, table_name=f"almatools_records_{id(arrow):x}")

    def linker(self, model: dict[tuple[str, str], tuple[float, float]] | None,
               blocking: Iterable[tuple[str, ...]] = BLOCKING_RULES) -> Any:
        from splink import Linker

        return Linker(self.records, linkage_settings(self.n, model, blocking), log_level=None)

    def train(self) -> dict[tuple[str, str], tuple[float, float]]:
        """u by random sampling, m by EM on two blocking passes; each value clamped to its level's bounds.

        A level no pair of a pass falls in keeps its fixed value: splink's warning about it ("not observed in
        dataset, unable to train m value"), one per level and pass, is expected and kept out of the output.
        """
        from splink import block_on

        # A pass that no pair passes (a file without birth dates) would stop splink with an error that leaves
        # its settings half-trained: such a pass is found here first and skipped, and then the m values keep
        # their fixed values (the other pass alone learns them worse), while u is still learnt.
        missing = [shared for cols, shared in _EM_PASSES if not self.con.sql(
            f"SELECT 1 FROM {self.table} WHERE {' AND '.join(f'{c} IS NOT NULL' for c in cols)} "
            f"GROUP BY {', '.join(cols)} HAVING count(*) > 1 LIMIT 1").fetchall()]
        if missing:
            logger.info("duplicates: no two records share %s, so the match weights keep their fixed values (the "
                        "other pass alone learns them worse)", " or ".join(missing))
        linker = self.linker(None)
        with _splink_warnings_silenced():
            # One pass over the whole sample (num_chunks=1): in chunks, splink stops a comparison early once each
            # level has been seen 100 times, which left the SIS-managed level of account_type estimated from a
            # tenth of the sample; the whole sample is also faster (one query per comparison, not ten).
            linker.training.estimate_u_using_random_sampling(max_pairs=U_SAMPLE_PAIRS, seed=1, num_chunks=1)
            for cols, shared in _EM_PASSES:
                if shared not in missing:
                    linker.training.estimate_parameters_using_expectation_maximisation(
                        block_on(*cols), fix_u_probabilities=True, record_sample_proportion=1.0)
        learnt: dict[tuple[str, str], tuple[float, float]] = {}
        settings = linker._settings_obj  # noqa: SLF001 - splink keeps trained values here
        for comp, trained in zip(MODEL, settings.comparisons):
            levels = [lv for lv in trained.comparison_levels if not lv.is_null_level]
            for level, got in zip(comp.levels[1:], levels):
                (m_lo, m_hi), (u_lo, u_hi) = level.bounds()
                m = got.m_probability if _finite(got.m_probability) and not missing else level.m
                u = got.u_probability if _finite(got.u_probability) else level.u
                learnt[(comp.name, level.key)] = (min(max(m, m_lo), m_hi), min(max(u, u_lo), u_hi))
        return learnt

    def predict(self, model: dict[tuple[str, str], tuple[float, float]] | None, threshold: float,
                blocking: Iterable[tuple[str, ...]] = BLOCKING_RULES) -> pd.DataFrame:
        linker = self.linker(model, blocking)
        predictions = linker.inference.predict(threshold_match_probability=threshold, warning_mode="never")
        return predictions.as_pyarrow_table().to_pandas()

    def score_within(self, groups: list[list[int]], model: dict[tuple[str, str], tuple[float, float]] | None
                     ) -> tuple[pd.DataFrame, dict[int, frozenset[str]]]:
        """Every pair of records within each group (by ``unique_id``), scored; and each member's name forms."""
        from splink import Linker, block_on

        rows = pa.table({"unique_id": pa.array([x for g in groups for x in g], pa.int64()),
                         "grp": pa.array([i for i, g in enumerate(groups) for _ in g], pa.int64())})
        self.con.register("__almatools_groups", rows)
        try:
            subset = self.con.sql(f"SELECT r.*, g.grp FROM {self.table} r JOIN __almatools_groups g USING (unique_id)"
                                  ).to_arrow_table()
        finally:
            self.con.unregister("__almatools_groups")
        settings = linkage_settings(self.n, model, ())
        settings.blocking_rules_to_generate_predictions = [block_on("grp")]
        records = self.api.register(subset, table_name=f"almatools_groups_{id(subset):x}")
        linker = Linker(records, settings, log_level=None)
        scored = linker.inference.predict(threshold_match_probability=0.0, warning_mode="never"
                                          ).as_pyarrow_table().to_pandas()
        forms = {int(i): frozenset(f or ()) for i, f in zip(subset["unique_id"].to_pylist(),
                                                             subset["fn_forms"].to_pylist())}
        return scored, forms

    def candidates(self) -> pd.DataFrame:
        """Every pair the blocking rules compare (``unique_id_l``, ``unique_id_r``; DuckDB only).

        Only the two id columns leave DuckDB: the scored pairs of a million records, every compared field
        with them, would take over ten GiB as a pandas table."""
        predictions = self.linker(None).inference.predict(threshold_match_probability=0.0, warning_mode="never")
        return predictions.as_duckdbpyrelation().select("unique_id_l, unique_id_r").df()

    def close(self) -> None:
        self.api.delete_tables_created_by_splink_from_db()


@contextmanager
def _splink_warnings_silenced() -> Iterator[None]:
    """splink's own warnings off (errors still show) while it trains."""
    splink_log = logging.getLogger("splink")
    level = splink_log.level
    splink_log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        splink_log.setLevel(level)


def _finite(x: Any) -> bool:
    return isinstance(x, float) and math.isfinite(x) and 0 < x < 1


def candidate_pairs(users: pd.DataFrame) -> pd.DataFrame:
    """Every pair of records the blocking rules bring together (``primary_id_l``, ``primary_id_r``).

    For measuring blocking recall: a pair not here is never scored.
    """
    _check_columns(users)
    users = users.reset_index(drop=True)
    with _connect() as con:
        scorer = _Scorer(con, _prepare(con, users), len(users), "duckdb", None)
        pairs = scorer.candidates() if len(users) > 1 else pd.DataFrame({"unique_id_l": [], "unique_id_r": []})
        scorer.close()
    pid = users["primary_id"].astype(str).to_numpy()
    return pd.DataFrame({"primary_id_l": pid[pairs["unique_id_l"].astype("int64")],
                         "primary_id_r": pid[pairs["unique_id_r"].astype("int64")]})


# ---------------------------------------------------------------------------------------------
# The run


def find_duplicates(users: pd.DataFrame, *, backend: str = "duckdb", threshold: float = DEFAULT_THRESHOLD,
                    possible_threshold: float = POSSIBLE_THRESHOLD, progress: bool = False, spark: Any = None,
                    train: bool | None = None, decisions: Any = None, cache: bool = True) -> DuplicateResult:
    """Find the records that belong to one person.

    Args:
        users: The patron table (:func:`almatools.quality.frame.users_frame`): one row per record,
            with at least ``primary_id``, the name parts, ``birth_date``, ``emails``, ``phone``,
            ``identifier_values``, ``line1``, ``postal_code``, ``account_type`` and the display
            columns (``pref_first_name``, ``phones``, ``addresses`` and ``in_sis_extract``, a bool
            telling which records the current SIS extract holds, are used when present).
        backend: ``"duckdb"`` (embedded, the default) or ``"spark"`` (needs the ``spark`` extra,
            ``pip install almatools[spark]``, and Java 17).
        threshold: The likely tier: pairs whose match probability is at least this (0 < threshold < 1).
        possible_threshold: The possible tier's lower bound (at most ``threshold``).
        progress: Show a progress bar over the steps.
        spark: A ``pyspark.sql.SparkSession`` for ``backend="spark"`` (default: the active or a
            new local session).
        train: Learn the weights from ``users`` (default: when there are at least
            :data:`MIN_TRAIN_RECORDS` records); else the fixed values.
        decisions: Staff decisions on pairs (:class:`almatools.quality.review.PairDecisions`).
        cache: Keep the prepared records and scored pairs, and read them back when the same records are
            linked again with the same settings (:mod:`almatools.quality.linkage_cache`); the tiers are
            made anew either way.

    Returns:
        The likely pairs with their probability and evidence, the clusters, and the possible pairs.

    Raises:
        ValueError: ``backend`` is unknown, a threshold is out of range, or ``users`` lacks a column.
    """
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be between 0 and 1, not {threshold}")
    if not 0 < possible_threshold <= threshold:
        raise ValueError(f"possible_threshold must be between 0 and threshold, not {possible_threshold}")
    if backend not in ("duckdb", "spark"):
        raise ValueError(f"backend must be 'duckdb' or 'spark', not {backend!r}")
    _check_columns(users)
    timer = _Timer(progress)
    if not isinstance(users.index, pd.RangeIndex) or users.index.start != 0 or users.index.step != 1:
        users = users.reset_index(drop=True)
    train = len(users) >= MIN_TRAIN_RECORDS if train is None else train
    model: dict[tuple[str, str], tuple[float, float]] | None = None
    store = linkage_cache(cache) if len(users) > 1 else None
    key = store.key(users, CACHE_KEY_COLUMNS, backend=backend, train=train, possible=possible_threshold
                    ) if store is not None else ""
    hit = store.get(key) if store is not None else None
    with _connect() as con:
        with timer.step("prepare"):
            if hit is not None:
                table = _RECORDS
                store.restore(con, hit, table)
            else:
                table = _prepare(con, users)
            live = con.sql(f"SELECT live_sis FROM {table} ORDER BY unique_id").fetchnumpy()["live_sis"]
        if len(users) > 1:
            with timer.step("train"):
                if hit is not None:
                    model = hit.model
                elif train:
                    # always on DuckDB (the table is there already), so both backends score with one model
                    trainer = _Scorer(con, table, len(users), "duckdb", None)
                    try:
                        model = trainer.train()
                    except Exception as err:  # noqa: BLE001 - training is an improvement, never a failure
                        logger.warning("duplicates: learning the weights failed (%s); using the fixed values",
                                       str(err).splitlines()[0] if str(err) else type(err).__name__)
                        model = None
                    finally:
                        trainer.close()
            scorer = _Scorer(con, table, len(users), backend, spark)
            with timer.step("predict"):
                pred = hit.pairs if hit is not None else scorer.predict(model, possible_threshold)
            if store is not None and hit is None:
                with timer.step("cache"):
                    store.put(key, con, table, pred, model)
            with timer.step("tiers"):
                result = _tiers(users, pred, live, threshold, decisions, lambda g: scorer.score_within(g, model))
            scorer.close()
        else:
            pred = pd.DataFrame({"unique_id_l": [], "unique_id_r": [], "match_probability": [],
                                 **{f"gamma_{c.name}": [] for c in MODEL}})
            with timer.step("tiers"):
                result = _tiers(users, pred, live, threshold, decisions, None)
    result.timings = timer.close()
    result.model = {"trained": model is not None, "from_cache": hit is not None,
                    **{f"{c}/{k}": [round(m, 6), round(u, 8)] for (c, k), (m, u) in (model or {
                        (comp.name, lv.key): (lv.m, lv.u) for comp in MODEL for lv in comp.levels[1:]}).items()}}
    logger.info("duplicates: %d records, %d likely pairs, %d clusters, %d possible pairs in %.1f s", len(users),
                len(result.pairs), result.clusters["cluster_id"].nunique(), len(result.possible),
                result.timings["total"])
    return result


