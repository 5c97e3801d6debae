"""End-to-end data-quality run at scale: parse the export and the SIS extract, run the rules and the linkage.

For each size it generates Sandbox University once (Export Users zip, SIS extract, ground truth; cached
in --cache), then prints, measured in this one run:

* the **parse floor**: a bare streaming parse of the same two zips with the same library (lxml
  ``iterparse`` of every member, each ``<user>`` cleared once seen, nothing read from it), in one process
  and in two (the members shared out);
* a **first run** in a fresh process with an empty kit cache: ``load_users`` + ``load_sis`` + ``analyse``;
  seconds (load, that is the kit's parse, against the two-process floor; rules; duplicates and the
  linkage's stages; total), candidate pairs per record (the linkage's blocking, counted after the timed
  run), peak RSS of the main process and of its worker processes, each rule's recall and precision
  against the planted ground truth;
* a **re-run** on the unchanged files in a fresh process, reading the kit's cache (the parsed tables and
  the linkage), and its seconds;
* the ratio of the largest size's time to the smallest's (at 10x the records it must stay near 10).

``--realistic N``: also the same first run and re-run on the independent realistic population of
``bench/realistic_population.py`` (N users, Alma user JSON lines; no SIS extract), whose more varied
names make more candidate pairs.

Targets on 2 cores: 1M first run in at most 70 s and 3 GiB, with the kit's parse at most 1.3x the
two-process floor; 100k in 7 s; a re-run at 1M in 15 s; the realistic 100k in 10 s.

    python bench/quality_scale.py [--sizes 100000 1000000] [--realistic 100000] [--cache DIR]
                                  [--no-duplicates] [--no-floor]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

SEED = 1


def _generate(folder: Path, users: int) -> None:
    from almatools.sandbox.generator import generate_institution

    if not (folder / "institution.json").exists() or not (folder / "users_export.zip").exists():
        started = time.perf_counter()
        generate_institution(folder, users=users, seed=SEED, export=True, progress=True)
        print(f"generated {users:,} users in {time.perf_counter() - started:.0f} s ({folder})", flush=True)


def _scores(findings, truth) -> dict[str, tuple[int, int, int]]:
    """Per rule: (expected, found, found and expected), pairs compared where the rule names two records."""
    from almatools.quality.rules import RECORD_RULES

    out = {}
    for rule in (*RECORD_RULES, "DUPLICATE"):
        f, t = findings[findings["rule_id"] == rule], truth[truth["rule_id"] == rule]
        if rule in ("ID_COLLISION", "DUPLICATE"):
            exp = {frozenset(p) for p in zip(t["primary_id"], t["other_primary_id"])}
            got = {frozenset(p) for p in zip(f["primary_id"].astype(str), f["other_primary_id"].astype(str))}
        elif rule == "SIS_LOCAL_OTHER_ID":
            exp, got = set(zip(t["primary_id"], t["other_primary_id"])), set(
                zip(f["primary_id"].astype(str), f["other_primary_id"].astype(str)))
        elif rule == "MISSING_FIELD":
            exp, got = set(zip(t["primary_id"], t["detail"])), set(zip(f["primary_id"].astype(str), f["field"].astype(str)))
        else:
            exp, got = set(t["primary_id"]), set(f["primary_id"].astype(str))
        out[rule] = (len(exp), len(got), len(exp & got))
    return out


def _bare_parse(task: tuple[str, list[str]]) -> int:
    """The floor's unit of work: every <user> of some zip members streamed and dropped; returns how many."""
    import zipfile

    from lxml import etree

    path, members = task
    n = 0
    with zipfile.ZipFile(path) as zf:
        for member in members:
            with zf.open(member) as fh:
                for _event, el in etree.iterparse(fh, events=("end",), tag="user"):
                    n += 1
                    el.clear(keep_tail=False)
                    while el.getprevious() is not None:
                        del el.getparent()[0]
    return n


def _floor(paths: list[Path], processes: int) -> tuple[float, int]:
    """Seconds for a bare streaming parse of the zips, in ``processes`` processes; and the users seen."""
    import zipfile
    from concurrent.futures import ProcessPoolExecutor

    tasks = []
    for path in paths:
        with zipfile.ZipFile(path) as zf:
            tasks.extend((str(path), [m]) for m in zf.namelist() if m.endswith(".xml"))
    started = time.perf_counter()
    if processes == 1:
        n = sum(map(_bare_parse, tasks))
    else:
        with ProcessPoolExecutor(processes) as pool:
            n = sum(pool.map(_bare_parse, tasks))
    return time.perf_counter() - started, n


def _run(users_path: Path, sis_path: Path | None, truth_path: Path | None, today: date, duplicates: bool) -> dict:
    """One end-to-end run (in its own process, so that peak memory is this run's)."""
    import pandas as pd
    from _sampler import Sampler

    from almatools.policy import load_policy
    from almatools.quality import analyse
    from almatools.sources import load_sis, load_users

    sampler = Sampler()
    cpu0 = time.process_time()
    started = time.perf_counter()
    users = load_users(users_path)
    sis = load_sis(sis_path) if sis_path else None
    loaded = time.perf_counter()
    result = analyse(users, sis, load_policy(), today=today, duplicates=duplicates)
    total = time.perf_counter() - started
    cpu_main = time.process_time() - cpu0
    peak, cpu_workers = sampler.close()
    stages = {k.removeprefix("linkage "): round(v, 1) for k, v in result.summary["timings"].items()
              if k.startswith("linkage ")}
    rss_main = _maxrss()  # before the candidate count below, which is not part of the run
    candidates = 0
    if duplicates:  # outside the timed run: every pair the blocking rules compare
        from almatools.quality.duplicates import candidate_pairs

        candidates = len(candidate_pairs(users))
    scores = {}
    if truth_path is not None:
        scores = _scores(result.findings, pd.read_csv(truth_path, dtype=str, keep_default_na=False))
    return {"users": len(users), "sis": len(sis) if sis is not None else 0, "load": loaded - started, "total": total,
            "linkage_stages": stages, "candidates_per_record": candidates / max(1, len(users)),
            "rules": result.summary["timings"].get("rules", 0.0),
            "duplicates": result.summary["timings"].get("duplicates", 0.0), "duplicates_status": result.summary["duplicates"],
            "cpu_main": cpu_main, "cpu_workers": cpu_workers, "peak_all": max(peak, rss_main), "rss_main": rss_main,
            "scores": scores}


def _maxrss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _in_process(cache_dir: Path, spec: dict, duplicates: bool) -> dict:
    """Run ``_run`` in a fresh process whose kit cache is ``cache_dir``."""
    env = {**os.environ, "ALMATOOLS_CACHE": str(cache_dir)}
    cmd = [sys.executable, __file__, "--run", json.dumps(spec)] + ([] if duplicates else ["--no-duplicates"])
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def _print_run(title: str, r: dict, floor2: float | None) -> None:
    gib = 1 << 30
    sis = f" + {r['sis']:,} in the SIS extract" if r["sis"] else ""
    print(f"  {title}: {r['users']:,} users{sis}: {r['total']:.1f} s end to end "
          f"(load {r['load']:.1f} s, rules {r['rules']:.1f} s, duplicates {r['duplicates']:.1f} s: "
          f"{r['duplicates_status']})")
    if floor2:
        print(f"    the kit's parse: {r['load']:.1f} s = {r['load'] / floor2:.2f}x the two-process floor")
    if r["linkage_stages"]:
        print("    linkage: " + ", ".join(f"{k} {v} s" for k, v in r["linkage_stages"].items())
              + f"; {r['candidates_per_record']:.2f} candidate pairs per record (Alma's users alone)")
    print(f"    CPU {r['cpu_main']:.0f} s main + {r['cpu_workers']:.0f} s parse workers; peak RSS "
          f"{r['peak_all'] / gib:.2f} GiB (main process and workers together; main alone {r['rss_main'] / gib:.2f} GiB)")
    for rule, (exp, got, hit) in r["scores"].items():
        print(f"    {rule:<22} expected {exp:>6,} found {got:>6,}  recall {hit / exp if exp else 1:.4f}"
              f"  precision {hit / got if got else 1:.4f}")


def _first_and_again(spec: dict, duplicates: bool, floor2: float | None) -> dict:
    with tempfile.TemporaryDirectory(prefix="almatools-bench-cache-") as cache_dir:
        first = _in_process(Path(cache_dir), spec, duplicates)
        _print_run("first run", first, floor2)
        again = _in_process(Path(cache_dir), spec, duplicates)
        _print_run("re-run on the unchanged files (the kit's cache)", again, None)
    return first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--realistic", type=int, nargs="*", default=[], metavar="N",
                        help="also run on the realistic population of N users")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "almatools-bench")
    parser.add_argument("--no-duplicates", action="store_true", help="rules only, no duplicate linkage")
    parser.add_argument("--no-floor", action="store_true", help="do not measure the parse floor")
    parser.add_argument("--run", help=argparse.SUPPRESS)  # internal: one run, JSON to stdout
    args = parser.parse_args()
    duplicates = not args.no_duplicates
    if args.run:
        spec = json.loads(args.run)
        print(json.dumps(_run(Path(spec["users"]), Path(spec["sis"]) if spec["sis"] else None,
                              Path(spec["truth"]) if spec["truth"] else None, date.fromisoformat(spec["today"]),
                              duplicates)))
        return
    runs = {}
    for n in args.sizes:
        folder = args.cache / f"quality-{n}-seed{SEED}"
        _generate(folder, n)
        today = json.loads((folder / "institution.json").read_text())["today"]
        zips = [folder / "users_export.zip", folder / "sis_extract.zip"]
        print(f"\n{n:,} users, Sandbox University")
        floor2 = None
        if not args.no_floor:
            floor1, seen = _floor(zips, 1)
            floor2, _ = _floor(zips, 2)
            print(f"  parse floor (bare lxml iterparse of both zips, {seen:,} users): {floor1:.1f} s in one process, "
                  f"{floor2:.1f} s in two")
        spec = {"users": str(zips[0]), "sis": str(zips[1]), "truth": str(folder / "ground_truth.csv"), "today": today}
        runs[n] = _first_and_again(spec, duplicates, floor2)
    for n in args.realistic:
        folder = args.cache / f"realistic-{n}-seed{SEED}"
        if not (folder / "users.jsonl").exists():
            sys.path.insert(0, str(Path(__file__).parent))
            from realistic_population import write_population

            print(f"generated the realistic population: {write_population(folder, n, SEED)}", flush=True)
        print(f"\n{n:,} users, the realistic population (JSON lines, no SIS extract)")
        spec = {"users": str(folder / "users.jsonl"), "sis": "", "truth": "", "today": date.today().isoformat()}
        _first_and_again(spec, duplicates, None)
    if len(runs) > 1:
        small, large = min(runs), max(runs)
        print(f"\n{large:,}/{small:,} users: time ratio {runs[large]['total'] / runs[small]['total']:.1f} "
              f"(records x{large / small:.0f})")


if __name__ == "__main__":
    main()
