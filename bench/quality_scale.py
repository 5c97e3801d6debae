"""End-to-end data-quality run at scale: parse the export and the SIS extract, run the rules and the linkage.

For each size it generates Sandbox University once (Export Users zip, SIS extract, ground truth; cached
in --cache), then runs ``load_users`` + ``load_sis`` + ``analyse`` in a fresh process and prints, measured
in this one run: seconds (load, rules, duplicates and the linkage's stages, total), candidate pairs per
record (the linkage's blocking, counted after the timed run), peak RSS of the main process and of its
worker processes, each rule's recall and precision against the planted ground truth, and the ratio of
the largest size's time to the smallest's (at 10x the records it must stay near 10, not 100).
Targets on 2 cores: 1M in at most 120 s and 4 GiB; next, near the parsing floor: 1M in 70 s and 3 GiB, 100k in 7 s.

    python bench/quality_scale.py [--sizes 100000 1000000] [--cache DIR] [--no-duplicates]
"""

from __future__ import annotations

import argparse
import json
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


class _Sampler:
    """Peak RSS of this process plus all its descendants (the parse workers are the forkserver's children,
    which ``getrusage`` does not see), and their CPU time, sampled every 0.1 s (psutil)."""

    def __init__(self) -> None:
        import threading

        import psutil

        self.me, self.peak, self.cpu, self.stop = psutil.Process(), 0, {}, threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        import psutil

        while not self.stop.wait(0.1):
            total = 0
            for p in [self.me, *self.me.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                    if p.pid != self.me.pid:
                        t = p.cpu_times()
                        self.cpu[p.pid] = t.user + t.system
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)

    def close(self) -> tuple[int, float]:
        self.stop.set()
        self.thread.join()
        return self.peak, sum(self.cpu.values())


def _run(folder: Path, duplicates: bool) -> dict:
    """One end-to-end run (in its own process, so that peak memory is this run's)."""
    import pandas as pd

    from almatools.policy import load_policy
    from almatools.quality import analyse
    from almatools.sources import load_sis, load_users

    today = date.fromisoformat(json.loads((folder / "institution.json").read_text())["today"])
    sampler = _Sampler()
    cpu0 = time.process_time()
    started = time.perf_counter()
    users = load_users(folder / "users_export.zip")
    sis = load_sis(folder / "sis_extract.zip")
    loaded = time.perf_counter()
    result = analyse(users, sis, load_policy(), today=today, duplicates=duplicates)
    total = time.perf_counter() - started
    cpu_main = time.process_time() - cpu0
    peak, cpu_workers = sampler.close()
    truth = pd.read_csv(folder / "ground_truth.csv", dtype=str, keep_default_na=False)
    stages = {k.removeprefix("linkage "): round(v, 1) for k, v in result.summary["timings"].items()
              if k.startswith("linkage ")}
    rss_main = _maxrss()  # before the candidate count below, which is not part of the run
    candidates = 0
    if duplicates:  # outside the timed run: every pair the blocking rules compare
        from almatools.quality.duplicates import candidate_pairs

        candidates = len(candidate_pairs(users))
    return {"users": len(users), "sis": len(sis), "load": loaded - started, "total": total,
            "linkage_stages": stages, "candidates_per_record": candidates / max(1, len(users)),
            "rules": result.summary["timings"].get("rules", 0.0),
            "duplicates": result.summary["timings"].get("duplicates", 0.0), "duplicates_status": result.summary["duplicates"],
            "cpu_main": cpu_main, "cpu_workers": cpu_workers, "peak_all": max(peak, rss_main), "rss_main": rss_main,
            "scores": _scores(result.findings, truth)}


def _maxrss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "almatools-bench")
    parser.add_argument("--no-duplicates", action="store_true", help="rules only, no duplicate linkage")
    parser.add_argument("--run", type=Path, help=argparse.SUPPRESS)  # internal: one run, JSON to stdout
    args = parser.parse_args()
    if args.run:
        print(json.dumps(_run(args.run, not args.no_duplicates)))
        return
    runs = {}
    for n in args.sizes:
        folder = args.cache / f"quality-{n}-seed{SEED}"
        _generate(folder, n)
        cmd = [sys.executable, __file__, "--run", str(folder)] + (["--no-duplicates"] if args.no_duplicates else [])
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        r = runs[n] = json.loads(out.strip().splitlines()[-1])
        gib = 1 << 30
        print(f"\n{n:,} users ({r['sis']:,} in the SIS extract): {r['total']:.1f} s end to end "
              f"(load {r['load']:.1f} s, rules {r['rules']:.1f} s, duplicates {r['duplicates']:.1f} s: "
              f"{r['duplicates_status']})")
        if r["linkage_stages"]:
            print("  linkage: " + ", ".join(f"{k} {v} s" for k, v in r["linkage_stages"].items())
                  + f"; {r['candidates_per_record']:.2f} candidate pairs per record (Alma's users alone)")
        print(f"  CPU {r['cpu_main']:.0f} s main + {r['cpu_workers']:.0f} s parse workers; peak RSS "
              f"{r['peak_all'] / gib:.2f} GiB (main process and workers together; main alone {r['rss_main'] / gib:.2f} GiB)")
        for rule, (exp, got, hit) in r["scores"].items():
            print(f"  {rule:<22} expected {exp:>6,} found {got:>6,}  recall {hit / exp if exp else 1:.4f}"
                  f"  precision {hit / got if got else 1:.4f}")
    if len(runs) > 1:
        small, large = min(runs), max(runs)
        print(f"\n{large:,}/{small:,} users: time ratio {runs[large]['total'] / runs[small]['total']:.1f} "
              f"(records x{large / small:.0f})")


if __name__ == "__main__":
    main()
