"""Duplicate linkage against Sandbox University's planted ground truth: accuracy, time and memory.

For each size and seed, generates the institution (cached under --cache), then links it in a fresh
process and prints, measured in this one run:
    precision, recall, F1 of the duplicate pairs (every pair of records that share a cluster,
        against the ground truth's DUPLICATE pairs; targets: precision >= 0.98, recall >= 0.95)
    direct: the same for the scored pairs alone (without the pairs implied through a cluster)
    negatives linked: NOT_DUPLICATE (same name, twins, parent and child) and ID_COLLISION pairs linked (target 0)
    link s: seconds of find_duplicates (prepare + predict + evidence + cluster)
    peak RSS: of the process that reads the patron table and links it

    python bench/quality_accuracy.py [--sizes 5000 100000] [--seeds 1 2] [--cache DIR] [--backend duckdb]
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

TODAY = date(2026, 1, 15)


def generate(folder: Path, users: int, seed: int) -> float:
    """Write the institution's patron table (users.parquet) and ground truth into ``folder``; return seconds."""
    import pandas as pd

    from almatools.quality.frame import users_frame
    from almatools.sandbox.generator import generate_institution

    start = time.perf_counter()
    frames: list[pd.DataFrame] = []
    generate_institution(folder, users=users, seed=seed, today=TODAY, sink=lambda b: frames.append(users_frame(b)))
    pd.concat(frames, ignore_index=True).to_parquet(folder / "users.parquet")
    return time.perf_counter() - start


def link(folder: Path, backend: str) -> dict:
    """Link the table in ``folder`` and score it against the ground truth (run in a fresh process)."""
    import pandas as pd

    from almatools.quality.duplicates import find_duplicates

    users = pd.read_parquet(folder / "users.parquet")
    truth = pd.read_csv(folder / "ground_truth.csv", dtype=str, keep_default_na=False)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = find_duplicates(users, backend=backend)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def pairs(rule: str) -> set[frozenset[str]]:
        rows = truth[truth["rule_id"] == rule]
        return {frozenset(p) for p in zip(rows["primary_id"], rows["other_primary_id"])}

    true, negatives = pairs("DUPLICATE"), pairs("NOT_DUPLICATE") | pairs("ID_COLLISION")
    out = {"users": len(users), "true": len(true), "timings": result.timings, "rss_mib": rss,
           "rss_table_mib": rss_before}
    for name, found in (("cluster", result.linked_pairs()),
                        ("direct", {frozenset(p) for p in zip(result.pairs["primary_id_l"], result.pairs["primary_id_r"])})):
        hits = len(found & true)
        precision, recall = hits / max(1, len(found)), hits / max(1, len(true))
        out[name] = {"linked": len(found), "precision": precision, "recall": recall,
                     "f1": 2 * precision * recall / max(1e-12, precision + recall),
                     "negatives": len(found & negatives)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 100_000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--cache", type=Path, help="keep generated institutions here (default: a temporary folder)")
    parser.add_argument("--backend", default="duckdb", choices=["duckdb", "spark"])
    parser.add_argument("--link-only", type=Path, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.link_only:
        print(json.dumps(link(args.link_only, args.backend)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache or Path(tmp)
        print(f"{'users':>9} {'seed':>4} {'true':>6} {'linked':>6} {'precision':>9} {'recall':>6} {'F1':>6} "
              f"{'direct P/R':>11} {'neg.':>4} {'link s':>7} {'peak RSS':>9}  steps")
        for size in args.sizes:
            for seed in args.seeds:
                folder = cache / f"sandbox_{size}_{seed}"
                if not (folder / "users.parquet").exists():
                    folder.mkdir(parents=True, exist_ok=True)
                    print(f"  (generating {size:,} users, seed {seed}: {generate(folder, size, seed):.0f} s)", flush=True)
                child = subprocess.run([sys.executable, __file__, "--link-only", str(folder), "--backend", args.backend],
                                       check=True, capture_output=True, text=True)
                r = json.loads(child.stdout.strip().splitlines()[-1])
                c, d, t = r["cluster"], r["direct"], r["timings"]
                steps = " ".join(f"{k} {v:.1f}" for k, v in t.items() if k != "total")
                print(f"{r['users']:>9,} {seed:>4} {r['true']:>6} {c['linked']:>6} {c['precision']:>9.4f} "
                      f"{c['recall']:>6.4f} {c['f1']:>6.4f} {d['precision']:>5.3f}/{d['recall']:.3f} "
                      f"{c['negatives']:>4} {t['total']:>7.1f} {r['rss_mib']:>6.0f} MiB  {steps}"
                      f" (table alone {r['rss_table_mib']:.0f} MiB)", flush=True)


if __name__ == "__main__":
    os.environ["ALMATOOLS_CACHE"] = "off"  # every run links afresh: the seconds are a first run's
    main()
