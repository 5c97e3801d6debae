"""The cache: a parsed file and a linkage read back give exactly what parsing and linking give."""

from __future__ import annotations

import logging
import stat
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from _quality_data import institution

from almatools.cache import CacheFolder
from almatools.cli import main
from almatools.config import cache_home
from almatools.quality.duplicates import find_duplicates
from almatools.quality.frame import users_frame
from almatools.quality.review import PairDecisions
from almatools.sandbox.generator import iter_sandbox_users
from almatools.sources import load_report, load_sis, load_users
from almatools.sources.cache import ParseCache

NOTE = "read from the parse cache"


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    """A cache of the test's own (the run's shared one may already hold these files)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("ALMATOOLS_CACHE", str(folder))
    return folder


@pytest.fixture(scope="module")
def data(sandbox_dir):
    return institution(sandbox_dir)


def _with_bad_records(src: Path, out: Path) -> Path:
    """The export with two bad records in its first member (dates that are not dates)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for i, name in enumerate(zin.namelist()):
            data = zin.read(name)
            if i == 0:
                data = data.replace(b"<birth_date>", b"<birth_date>x", 1)
                at = -1
                for _ in range(10):  # the tenth record's expiry date
                    at = data.index(b"<expiry_date>", at + 1)
                data = data[:at] + b"<expiry_date>never" + data[at + len(b"<expiry_date>"):]
            zout.writestr(name, data)
    return out


def test_a_cached_parse_is_the_parse(data, tmp_path, cache_dir):
    folder, _ = data
    users_zip = _with_bad_records(folder / "users_export.zip", tmp_path / "users.zip")
    seen: list[list[str]] = [[], [], []]
    parsed = load_users(users_zip, on_error=lambda e: seen[0].append(str(e)))
    again = load_users(users_zip, on_error=lambda e: seen[1].append(str(e)))
    plain = load_users(users_zip, on_error=lambda e: seen[2].append(str(e)), cache=False)
    pd.testing.assert_frame_equal(parsed, again)
    pd.testing.assert_frame_equal(parsed, plain)
    assert len(seen[0]) >= 2 and seen[0] == seen[1] == seen[2]  # every bad record is reported again
    first, second = load_report(parsed), load_report(again)
    assert NOTE not in " ".join(first.notes) and NOTE in " ".join(second.notes)
    assert NOTE not in " ".join(load_report(plain).notes)
    assert (first.files, first.records, first.skipped) == (second.files, second.records, second.skipped)
    assert [str(e) for e in first.errors] == [str(e) for e in second.errors]
    with pytest.raises(Exception, match="bad record"):  # on_error="raise" still stops at the first
        load_users(users_zip, on_error="raise")

    sis = load_sis(folder / "sis_extract.zip")
    pd.testing.assert_frame_equal(sis, load_sis(folder / "sis_extract.zip"))
    entries = sorted((cache_dir / "parsed").glob("*.parquet"))
    assert len(entries) == 2  # one per file; cache=False wrote nothing
    assert stat.S_IMODE(cache_dir.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in entries)


def test_a_changed_file_is_parsed_again_and_a_broken_entry_is_replaced(data, tmp_path, cache_dir, caplog):
    folder, _ = data
    copy = tmp_path / "sis.zip"
    copy.write_bytes((folder / "sis_extract.zip").read_bytes())
    first = load_sis(copy)
    cache = ParseCache(cache_dir)
    (entry,) = cache.folder.glob("*.parquet")
    entry.write_bytes(b"not parquet")
    with caplog.at_level(logging.WARNING):
        again = load_sis(copy)
    assert "cannot be read" in caplog.text and NOTE not in " ".join(load_report(again).notes)
    pd.testing.assert_frame_equal(first, again)

    with zipfile.ZipFile(copy, "a") as z:  # a changed file: one member more
        z.writestr("extra.xml", "<users><user><primary_id>NEW-1</primary_id></user></users>")
    changed = load_sis(copy)
    assert NOTE not in " ".join(load_report(changed).notes)
    assert len(changed) == len(first) + 1 and "NEW-1" in set(changed["primary_id"])
    assert len(list(cache.folder.glob("*.parquet"))) == 2


def test_the_cache_can_be_turned_off(data, tmp_path, monkeypatch):
    monkeypatch.setenv("ALMATOOLS_CACHE", "off")
    assert cache_home() is None
    folder, _ = data
    load_sis(folder / "sis_extract.zip")
    assert NOTE not in " ".join(load_report(load_sis(folder / "sis_extract.zip")).notes)


def test_the_least_recently_used_entries_go_first(tmp_path):
    store = CacheFolder(tmp_path / "c" / "x", max_bytes=2500)
    for name in ("a", "b", "c"):
        store.write(name, lambda p: p.write_bytes(b"x" * 1000))
    assert sorted(p.name for p in store.folder.iterdir()) == ["b", "c"]
    store.entry("b")  # used: now newer than c
    store.write("d", lambda p: p.write_bytes(b"x" * 1000))
    assert sorted(p.name for p in store.folder.iterdir()) == ["b", "d"]


def _result(r) -> tuple:
    return (sorted(map(tuple, r.pairs[["primary_id_l", "primary_id_r", "evidence"]].to_numpy().tolist())),
            sorted(map(tuple, r.clusters.to_numpy().tolist())),
            sorted(map(tuple, r.possible[["primary_id_l", "primary_id_r"]].to_numpy().tolist())))


def test_a_cached_linkage_is_the_linkage(tmp_path, cache_dir):
    users = users_frame(list(iter_sandbox_users(5200, seed=21)))
    linked = find_duplicates(users)  # trained: 5,000 records or more
    again = find_duplicates(users)
    plain = find_duplicates(users, cache=False)
    assert linked.model["trained"] and not linked.model["from_cache"] and again.model["from_cache"]
    assert not plain.model["from_cache"]
    assert len(linked.pairs) > 20
    assert _result(linked) == _result(again) == _result(plain)
    pd.testing.assert_frame_equal(linked.pairs.reset_index(drop=True), again.pairs.reset_index(drop=True))
    assert {k: v for k, v in linked.model.items() if k != "from_cache"} == \
        {k: v for k, v in again.model.items() if k != "from_cache"}

    # The tiers are made anew: a staff decision applies to a cached linkage.
    a, b = linked.pairs.iloc[0][["primary_id_l", "primary_id_r"]]
    decisions = PairDecisions(tmp_path / "decisions.jsonl")
    decisions.decide(a, b, "different", by="reviewer")
    decided = find_duplicates(users, decisions=decisions)
    assert decided.model["from_cache"] and frozenset((a, b)) not in decided.linked_pairs()

    # Any change in a record's linkage fields is a new entry.
    changed = users.copy()
    changed.loc[0, "first_name"] = changed.loc[0, "first_name"] + "x"
    assert not find_duplicates(changed).model["from_cache"]
    assert len(list((cache_dir / "linkage").iterdir())) == 2


def test_the_quality_command_gives_the_same_files_from_the_cache(data, tmp_path, cache_dir):
    folder, today = data
    runs = []
    for name, extra in (("first", []), ("again", []), ("plain", ["--no-cache"])):
        out = tmp_path / name
        assert main(["quality", "--users", str(folder / "users_export.zip"), "--sis", str(folder / "sis_extract.zip"),
                     "--out", str(out), "--quiet", "--today", today.isoformat(), *extra]) == 0
        runs.append({p.name: p.read_bytes() for p in out.iterdir() if p.suffix == ".csv"})
    assert runs[0] == runs[1] == runs[2] and len(runs[0]["findings.csv"]) > 1000
    assert len(list((cache_dir / "parsed").glob("*.parquet"))) == 2
    assert len(list((cache_dir / "linkage").iterdir())) == 1


def test_the_linkage_key_depends_on_the_values_not_on_how_columns_are_cut():
    from almatools.quality.linkage_cache import LinkageCache
    from almatools.quality.linkage_prepare import CACHE_KEY_COLUMNS

    users = users_frame(list(iter_sandbox_users(600, seed=4)))
    users["in_sis_extract"] = False
    halves = pd.concat([users.iloc[:250], users.iloc[250:]], ignore_index=True)  # columns in two chunks
    cache = LinkageCache(Path("unused"))
    key = cache.key(users, CACHE_KEY_COLUMNS, backend="duckdb")
    assert cache.key(halves, CACHE_KEY_COLUMNS, backend="duckdb") == key
    assert cache.key(users, CACHE_KEY_COLUMNS, backend="spark") != key
    for column, value in (("emails", "someone@else.org"), ("first_name", pd.NA), ("in_sis_extract", True)):
        changed = users.copy()
        changed.loc[3, column] = value
        assert cache.key(changed, CACHE_KEY_COLUMNS, backend="duckdb") != key, column
