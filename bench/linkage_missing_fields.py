"""Duplicate linkage when a field is empty in the whole file: an export without birth dates (community
borrowers), without emails or phones, with names only.

Real files often lack a field altogether. This bench links the independent realistic population
(``bench/realistic_population.py``) as it is, then with one field (or group of fields) emptied in every
record, and prints pairwise precision and recall against its ``truth.csv``, the possible tier's size,
whether the weights were learnt, and seconds. Nothing may fail: a field missing everywhere is data, not an
error. The figures are ratios of one run, not targets.

    python bench/linkage_missing_fields.py [--size 20000] [--seed 1] [--cache DIR]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import sys
import tempfile
import time
from collections import defaultdict
from itertools import combinations
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

EMPTIED: dict[str, tuple[str, ...]] = {
    "as written": (),
    "no birth dates": ("birth_date",),
    "no emails": ("email", "emails"),
    "no phones": ("phone", "phones"),
    "no addresses": ("line1", "city", "postal_code", "addresses"),
    "no identifiers": ("identifiers", "identifier_values"),
    "no middle or preferred names": ("middle_name", "pref_first_name"),
    "names only": ("birth_date", "email", "emails", "phone", "phones", "line1", "city", "postal_code", "addresses",
                   "identifiers", "identifier_values"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cache", type=Path, help="keep the generated population here (default: "
                        "almatools_linkage_realistic in the temporary folder, shared with linkage_realistic.py)")
    args = parser.parse_args()

    from realistic_population import write_population

    from almatools.quality.duplicates import find_duplicates
    from almatools.sources import load_users

    version = hashlib.sha1((HERE / "realistic_population.py").read_bytes()).hexdigest()[:8]
    folder = (args.cache or Path(tempfile.gettempdir()) / "almatools_linkage_realistic") / \
        f"realistic_{args.size}_{args.seed}_{version}"
    if not (folder / "users.jsonl").exists():
        write_population(folder, args.size, args.seed)
    users = load_users(folder / "users.jsonl")
    accounts: dict[str, list[str]] = defaultdict(list)
    with open(folder / "truth.csv", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            accounts[row["person_id"]].append(row["primary_id"])
    true = {frozenset(p) for ids in accounts.values() for p in combinations(sorted(ids), 2)}
    print(f"{len(users):,} users, {len(true):,} true pairs (realistic population, seed {args.seed})")
    print(f"  {'':30s} {'linked':>7s} {'precision':>9s} {'recall':>7s} {'possible':>8s} {'learnt':>6s} {'seconds':>7s}")
    for label, columns in EMPTIED.items():
        frame = users.copy()
        for column in columns:
            frame[column] = ""
        started = time.perf_counter()
        result = find_duplicates(frame, cache=False)
        seconds = time.perf_counter() - started
        linked = result.linked_pairs()
        hits = len(linked & true)
        precision = hits / len(linked) if linked else float("nan")
        print(f"  {label:30s} {len(linked):7,d} {precision:9.3f} {hits / len(true):7.3f} {len(result.possible):8,d} "
              f"{'yes' if result.model['trained'] else 'no':>6s} {seconds:7.1f}", flush=True)


if __name__ == "__main__":
    os.environ["ALMATOOLS_CACHE"] = "off"
    main()
