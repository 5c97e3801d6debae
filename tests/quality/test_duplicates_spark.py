"""The duplicate model on splink's Spark backend gives what it gives on DuckDB (needs the ``spark`` extra)."""

from __future__ import annotations

from datetime import date

import pytest

pytest.importorskip("pyspark")

from almatools.quality.duplicates import find_duplicates, spark_session  # noqa: E402
from almatools.quality.frame import users_frame  # noqa: E402
from almatools.sandbox.generator import iter_sandbox_users  # noqa: E402


@pytest.fixture(scope="module")
def spark():
    session = spark_session(master="local[2]", **{"spark.sql.shuffle.partitions": "4", "spark.ui.enabled": "false",
                                                  "spark.driver.memory": "3g"})
    yield session
    session.stop()


@pytest.mark.slow
def test_spark_backend_matches_duckdb(spark):
    users = users_frame(iter_sandbox_users(20_000, seed=4, today=date(2026, 1, 15)))
    on_duckdb = find_duplicates(users)
    on_spark = find_duplicates(users, backend="spark", spark=spark)
    assert on_duckdb.model["trained"] and on_duckdb.model == on_spark.model
    assert len(on_duckdb.pairs) > 100
    key = ["primary_id_l", "primary_id_r"]
    left = on_duckdb.pairs.sort_values(key, ignore_index=True)
    right = on_spark.pairs.sort_values(key, ignore_index=True)
    assert left[key + ["cluster_id", "evidence"]].equals(right[key + ["cluster_id", "evidence"]])
    assert (left["match_probability"] - right["match_probability"]).abs().max() < 1e-6
    assert on_duckdb.clusters.equals(on_spark.clusters)
    assert on_duckdb.possible.sort_values(key, ignore_index=True)[key + ["reason"]].equals(
        on_spark.possible.sort_values(key, ignore_index=True)[key + ["reason"]])
