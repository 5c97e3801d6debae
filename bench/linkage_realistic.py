"""Duplicate linkage on an independent, realistic population: precision, recall, blocking, look-alikes.

The population (``bench/realistic_population.py``) is a US university's Alma patron base built with
its own generator, not the sandbox's: labelled duplicate patterns (``truth.csv``) and planted
look-alikes of different people (``lookalikes.csv``). For each size and seed it is generated once
(cached under ``--cache``), then read in a fresh process through the kit's own reader
(``almatools.sources.load_users``) and linked with ``almatools.quality.duplicates.find_duplicates``.
Printed, all measured in this one run:

* **Likely tier**: the pairs of records that share a ``cluster_id`` (``DuplicateResult.linked_pairs()``)
  against the true pairs (every two accounts of one person). Pairwise precision; recall overall;
  recall among true pairs with **evidence**, i.e. that share at least one exact field besides the name:
  any email (case folded), a phone (its last ten digits), the birth date, an address (line 1 and 2
  with case, punctuation, ``Street/St``, ``Apt/#/Unit``, ``Straße/Strasse`` folded, and the 5-digit
  ZIP) or an identifier (primary id or any ``user_identifier`` value, case and spaces folded). A
  value that records of more than :data:`PLACEHOLDER_PEOPLE` different people hold
  (``none@none.com``, a department's main number) is not evidence. This test is computed here from
  the raw JSON, not with the kit's normaliser. Recall by pattern.
* **Possible tier**: if the result has ``possible`` (a DataFrame with ``primary_id_l``,
  ``primary_id_r``), how many of the true pairs the likely tier missed it adds, overall and among
  those with evidence, and its precision.
* **Blocking recall**: if the module has ``candidate_pairs(users)`` (every pair compared, as a
  DataFrame with ``primary_id_l``, ``primary_id_r``), the share of true pairs compared at all.
* **Look-alike false links** by pattern: the share of planted look-alike pairs (different people)
  in one cluster, and in the possible tier; the target applies to the look-alikes whose records tell the
  two people apart (different first names, birth dates or suffixes: :func:`told_apart`), since a parent
  and a child of one name, one record without a birth date, cannot be told apart by any linker; false links by cause (planted pattern, or for the rest
  what the two records share).
* Seconds of ``find_duplicates`` and the peak RSS of the process that loads and links.

Targets: precision >= 0.97, recall with evidence >= 0.95, look-alikes linked <= 1%, the
possible tier adds at least half of the remaining true pairs with evidence.

    python bench/linkage_realistic.py [--sizes 50000 100000] [--seeds 1] [--cache DIR]
                                      [--json FILE] [--dump-misses N]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections import Counter, defaultdict
from itertools import combinations
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]  # this checkout's almatools, then the generator

PLACEHOLDER_PEOPLE = 5
"""A contact value or identifier held by more different people than this is a placeholder, not evidence."""
TARGETS = {"precision": 0.97, "recall_evidence": 0.95, "lookalikes_linked": 0.01, "possible_adds": 0.5}

# ---------------------------------------------------------------------------------------------
# Evidence from the raw records (this benchmark's own reading, independent of almatools.normalise)

_ADDRESS_WORDS = {"street": "st", "avenue": "ave", "road": "rd", "drive": "dr", "lane": "ln", "court": "ct",
                  "boulevard": "blvd", "trail": "trl", "place": "pl", "apartment": "apt", "unit": "apt",
                  "room": "", "strasse": "str", "north": "n", "south": "s", "east": "e", "west": "w"}


# letters NFKD does not decompose; the benchmark's own reading (the kit's folding is what is measured)
_UNDECOMPOSED = str.maketrans({"ø": "o", "æ": "ae", "ł": "l", "đ": "d", "ı": "i", "þ": "th", "ð": "d", "œ": "oe",
                               "ß": "ss", "\u2019": "'"})


def _fold(text: str) -> str:
    text = text.casefold().translate(_UNDECOMPOSED)
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def address_key(addr: dict[str, Any]) -> str | None:
    """Line 1 and 2 folded (``Apt. 4B`` = ``#4B``, ``St.`` = ``Street``) with the 5-digit ZIP."""
    line = " ".join(str(addr.get(k) or "") for k in ("line1", "line2"))
    text = _fold(line).replace("#", " apt ")
    text = re.sub(r"strasse\b|str\.", " str ", text)
    tokens = [_ADDRESS_WORDS.get(t, t) for t in re.findall(r"[a-z0-9]+", text)]
    tokens = [t for t in tokens if t]
    if not tokens:
        return None
    zip5 = re.sub(r"\D", "", str(addr.get("postal_code") or ""))[:5]
    return " ".join(tokens) + "|" + zip5


def phone_key(number: Any) -> str | None:
    digits = re.sub(r"\D", "", str(number or ""))
    return digits[-10:] if len(digits) >= 7 else None


def record_keys(user: dict[str, Any]) -> dict[str, set[str]]:
    """The exact fields of one Alma user object that a pair may share."""
    ci = user.get("contact_info") or {}
    ids = {"".join(str(user.get("primary_id") or "").split()).casefold()}
    ids |= {"".join(str(i.get("value") or "").split()).casefold() for i in user.get("user_identifier") or []}
    birth = str(user.get("birth_date") or "")[:10]
    return {
        "email": {str(e.get("email_address") or "").strip().casefold() for e in ci.get("email") or []} - {""},
        "phone": {k for k in (phone_key(p.get("phone_number")) for p in ci.get("phone") or []) if k},
        "address": {k for k in (address_key(a) for a in ci.get("address") or []) if k},
        "identifier": ids - {""},
        "birth_date": {birth} if re.fullmatch(r"\d{4}-\d{2}-\d{2}", birth) else set(),
    }


def shown(user: dict[str, Any]) -> str:
    """A record's key fields on one line, for the dumps."""
    ci = user.get("contact_info") or {}
    name = " ".join(x for x in (user.get("first_name"), f"[{user.get('middle_name')}]" if user.get("middle_name")
                                else "", user.get("last_name")) if x)
    pref = f" pref={user['pref_first_name']}" if user.get("pref_first_name") else ""
    emails = ",".join(("*" if e.get("preferred") else "") + str(e.get("email_address")) for e in ci.get("email") or [])
    phones = ",".join(("*" if p.get("preferred") else "") + str(p.get("phone_number")) for p in ci.get("phone") or [])
    addrs = ",".join(f"{a.get('line1')}/{a.get('line2') or ''}/{a.get('postal_code')}" for a in ci.get("address") or [])
    return (f"{user.get('primary_id')} {user.get('account_type', {}).get('value')} {user.get('user_group', {}).get('value')}"
            f" | {name}{pref} | b={str(user.get('birth_date') or '-')[:10]} | e={emails or '-'} | p={phones or '-'}"
            f" | a={addrs or '-'}")


# ---------------------------------------------------------------------------------------------
# The measurement (in a fresh process)


def _pairs_frame(df: Any) -> set[frozenset[str]]:
    return {frozenset(p) for p in zip(df["primary_id_l"].astype(str), df["primary_id_r"].astype(str))}


def told_apart(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two records themselves say they are two people (the issue's "look-alikes that can be told
    apart"): different first names (neither a bare initial), two birth dates that differ, or different
    generational suffixes written in the names. Read from the raw records, not with the kit's normaliser."""
    def first(u: dict[str, Any]) -> str:
        words = re.sub(r"[^a-z0-9]+", " ", _fold(u.get("first_name") or "")).split()
        return words[0] if words else ""

    def suffix(u: dict[str, Any]) -> str:
        words = set(re.sub(r"[^a-z0-9]+", " ", _fold(" ".join(str(u.get(k) or "")
                                                              for k in ("first_name", "last_name")))).split())
        return next((w for w in ("jr", "sr", "ii", "iii", "iv") if w in words), "")

    fa, fb = first(a), first(b)
    if len(fa) > 1 and len(fb) > 1 and fa != fb:
        return True
    ba, bb = (str(u.get("birth_date") or "")[:10] for u in (a, b))
    if ba and bb and ba != bb:
        return True
    sa, sb = suffix(a), suffix(b)
    return bool(sa and sb and sa != sb)


def measure(folder: Path, dump: int) -> dict[str, Any]:
    """Load, link and score the population in ``folder``."""
    from almatools.quality import duplicates as dup
    from almatools.sources import load_users

    t0 = time.perf_counter()
    users = load_users(folder / "users.jsonl")
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = dup.find_duplicates(users)
    link_s = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    linked = result.linked_pairs()
    possible_df = getattr(result, "possible", None)
    possible = _pairs_frame(possible_df) if possible_df is not None else None
    candidates_fn = getattr(dup, "candidate_pairs", None)
    candidate_s = None
    if callable(candidates_fn):
        t0 = time.perf_counter()
        cand_df = candidates_fn(users)
        candidate_s = time.perf_counter() - t0
        n_candidates = len(cand_df)
    direct = {frozenset((a, b)): (p, ev) for a, b, p, ev in zip(result.pairs["primary_id_l"], result.pairs["primary_id_r"],
                                                               result.pairs["match_probability"], result.pairs["evidence"])}
    cluster_sizes = Counter(result.clusters.groupby("cluster_id").size().tolist())
    del users

    # the truth and the raw records
    with open(folder / "truth.csv", encoding="utf-8", newline="") as fh:
        truth = list(csv.DictReader(fh))
    person = {r["primary_id"]: r["person_id"] for r in truth}
    pattern = {r["primary_id"]: r["pattern"] for r in truth}
    with open(folder / "lookalikes.csv", encoding="utf-8", newline="") as fh:
        lookalikes = {frozenset((r["primary_id_l"], r["primary_id_r"])): r["pattern"] for r in csv.DictReader(fh)}
    raw: dict[str, dict[str, Any]] = {}
    keys: dict[str, dict[str, set[str]]] = {}
    holders: dict[tuple[str, str], set[str]] = defaultdict(set)
    with open(folder / "users.jsonl", encoding="utf-8") as fh:
        for line in fh:
            user = json.loads(line)
            pid = user["primary_id"]
            raw[pid] = user
            keys[pid] = k = record_keys(user)
            for field in ("email", "phone", "address", "identifier"):
                for v in k[field]:
                    holders[(field, v)].add(person[pid])

    def shared(a: str, b: str) -> list[str]:
        out = []
        for field, va in keys[a].items():
            common = va & keys[b][field]
            if field != "birth_date":
                common = {v for v in common if len(holders[(field, v)]) <= PLACEHOLDER_PEOPLE}
            if common:
                out.append(field)
        return out

    accounts: dict[str, list[str]] = defaultdict(list)
    for pid, per in person.items():
        accounts[per].append(pid)
    true: dict[frozenset[str], str] = {}
    for ids in accounts.values():
        for a, b in combinations(sorted(ids), 2):
            pa, pb = pattern[a], pattern[b]
            true[frozenset((a, b))] = pb if pa == "original" else pa if pb == "original" else "between_extras"
    evidence = {pair: shared(*sorted(pair)) for pair in true}
    with_ev = {p for p, ev in evidence.items() if ev}
    tset = set(true)

    hits = linked & tset
    out: dict[str, Any] = {
        "users": len(raw), "people": len(accounts), "multi_account_people": sum(1 for v in accounts.values() if len(v) > 1),
        "true_pairs": len(tset), "true_pairs_with_evidence": len(with_ev), "lookalike_pairs": len(lookalikes),
        "load_s": round(load_s, 2), "find_duplicates_s": round(link_s, 2), "timings": result.timings,
        "peak_rss_mib": round(rss), "candidate_pairs_s": None if candidate_s is None else round(candidate_s, 2),
        "likely": {"linked_pairs": len(linked), "true_linked": len(hits),
                   "precision": len(hits) / max(1, len(linked)), "recall": len(hits) / max(1, len(tset)),
                   "recall_evidence": len(linked & with_ev) / max(1, len(with_ev)),
                   "clusters": sum(cluster_sizes.values()), "largest_cluster": max(cluster_sizes, default=0),
                   "clusters_over_3": sum(n for size, n in cluster_sizes.items() if size > 3)},
    }
    missed, missed_ev = tset - linked, with_ev - linked
    if possible is not None:
        out["possible"] = {"pairs": len(possible), "precision": len(possible & tset) / max(1, len(possible)),
                           "adds": len(missed & possible), "missed": len(missed),
                           "adds_evidence": len(missed_ev & possible), "missed_evidence": len(missed_ev),
                           "share_adds_evidence": len(missed_ev & possible) / max(1, len(missed_ev))}
    compared: set[frozenset[str]] | None = None
    if candidates_fn is not None:
        compared = {p for p in _pairs_frame(cand_df) if p in tset}
        out["blocking"] = {"candidate_pairs": n_candidates, "recall": len(compared) / max(1, len(tset)),
                           "recall_evidence": len(compared & with_ev) / max(1, len(with_ev))}
    # by pattern
    by_pattern: dict[str, dict[str, Any]] = {}
    for pair, pat in true.items():
        row = by_pattern.setdefault(pat, {"pairs": 0, "evidence": 0, "linked": 0, "linked_evidence": 0,
                                          "possible": 0, "compared": 0})
        row["pairs"] += 1
        row["evidence"] += pair in with_ev
        row["linked"] += pair in linked
        row["linked_evidence"] += pair in linked and pair in with_ev
        row["possible"] += bool(possible is not None and pair in possible and pair not in linked)
        row["compared"] += bool(compared is not None and pair in compared)
    out["by_pattern"] = by_pattern
    fields = Counter(f for ev in evidence.values() for f in ev)
    out["evidence_fields"] = dict(fields)
    # look-alikes and other false links
    look: dict[str, dict[str, int]] = {}
    apart = {"pairs": 0, "linked": 0}
    for pair, pat in lookalikes.items():
        row = look.setdefault(pat, {"pairs": 0, "linked": 0, "possible": 0})
        row["pairs"] += 1
        row["linked"] += pair in linked
        row["possible"] += bool(possible is not None and pair in possible)
        if told_apart(*(raw[p] for p in sorted(pair))):
            apart["pairs"] += 1
            apart["linked"] += pair in linked
    out["lookalikes"] = look
    out["lookalikes_told_apart"] = apart
    false_links = linked - tset

    def cause(pair: frozenset[str]) -> str:
        if pair in lookalikes:
            return f"planted:{lookalikes[pair]}"
        a, b = sorted(pair)
        ra, rb = raw[a], raw[b]
        same_name = (_fold(ra.get("first_name") or ""), _fold(ra.get("last_name") or "")) == \
            (_fold(rb.get("first_name") or ""), _fold(rb.get("last_name") or ""))
        via = "" if pair in direct else " (via cluster)"
        ev = shared(a, b)
        return ("same name" if same_name else "other name") + (" + " + "+".join(ev) if ev else " only") + via

    causes = Counter(cause(p) for p in false_links)
    out["false_links"] = dict(causes.most_common())
    if dump:
        lines: list[str] = []

        def block(title: str, pairs: list[frozenset[str]]) -> None:
            for pair in pairs[:dump]:
                a, b = sorted(pair)
                prob, why = direct.get(pair, (None, "not linked" if pair not in linked else "linked via the cluster"))
                lines.append(f"  [{title}] shares: {','.join(evidence.get(pair) or shared(a, b)) or 'nothing'}"
                             f" | kit: {prob if prob is None else round(float(prob), 3)} {why}")
                lines.append(f"      {shown(raw[a])}")
                lines.append(f"      {shown(raw[b])}")

        lines.append("Missed true pairs (with evidence first), by pattern:")
        for pat in sorted(by_pattern):
            pairs = sorted((p for p in missed if true[p] == pat), key=lambda p: (p not in with_ev, sorted(p)))
            block(f"miss {pat}", pairs)
        lines.append("False links, by cause:")
        for c in causes:
            block(f"false {c}", sorted((p for p in false_links if cause(p) == c), key=sorted))
        out["dump"] = lines
    return out


# ---------------------------------------------------------------------------------------------
# The table


def _mark(ok: bool) -> str:
    return "ok" if ok else "MISS"


def report(r: dict[str, Any], size: int, seed: int) -> None:
    lk = r["likely"]
    print(f"\n== {r['users']:,} users, seed {seed}: {r['people']:,} people, {r['multi_account_people']:,} with 2+ "
          f"accounts; {r['true_pairs']:,} true pairs ({r['true_pairs_with_evidence']:,} share a field besides the "
          f"name); {r['lookalike_pairs']:,} planted look-alike pairs")
    steps = " ".join(f"{k} {v:.1f}" for k, v in (r.get("timings") or {}).items() if k != "total")
    print(f"   find_duplicates {r['find_duplicates_s']:.1f} s ({steps}); load {r['load_s']:.1f} s; "
          f"peak RSS {r['peak_rss_mib']:,} MiB")
    print(f"   {'likely tier':<34}{'value':>8}  target")
    print(f"   {'precision':<34}{lk['precision']:>8.3f}  >= {TARGETS['precision']}  {_mark(lk['precision'] >= TARGETS['precision'])}")
    print(f"   {'recall with evidence':<34}{lk['recall_evidence']:>8.3f}  >= {TARGETS['recall_evidence']}  "
          f"{_mark(lk['recall_evidence'] >= TARGETS['recall_evidence'])}")
    print(f"   {'recall overall':<34}{lk['recall']:>8.3f}  (reported)")
    print(f"   {'linked pairs / true among them':<34}{lk['linked_pairs']:>8,}  {lk['true_linked']:,}")
    print(f"   {'clusters / over 3 records / largest':<34}{lk['clusters']:>8,}  {lk['clusters_over_3']:,} / "
          f"{lk['largest_cluster']}")
    if "possible" in r:
        p = r["possible"]
        print(f"   possible tier: {p['pairs']:,} pairs, precision {p['precision']:.3f}; adds {p['adds']:,} of "
              f"{p['missed']:,} missed pairs; with evidence {p['adds_evidence']:,} of {p['missed_evidence']:,} = "
              f"{p['share_adds_evidence']:.3f} (target >= {TARGETS['possible_adds']}) "
              f"{_mark(p['share_adds_evidence'] >= TARGETS['possible_adds'])}")
    else:
        print("   possible tier: n/a (no possible tier)")
    if "blocking" in r:
        b = r["blocking"]
        print(f"   blocking recall: {b['recall']:.3f} of true pairs compared ({b['recall_evidence']:.3f} of those "
              f"with evidence); {b['candidate_pairs']:,} candidate pairs")
    else:
        print("   blocking recall: n/a (no candidate_pairs)")
    print(f"\n   {'recall by pattern':<26}{'pairs':>6}{'w/ ev.':>7}{'linked':>8}{'recall':>8}{'rec. ev.':>9}"
          f"{'+possible':>10}{'compared':>9}")
    for pat, row in sorted(r["by_pattern"].items(), key=lambda kv: -kv[1]["pairs"]):
        rec = row["linked"] / max(1, row["pairs"])
        rec_ev = row["linked_evidence"] / row["evidence"] if row["evidence"] else float("nan")
        poss = str(row["possible"]) if "possible" in r else "n/a"
        comp = f"{row['compared'] / max(1, row['pairs']):.2f}" if "blocking" in r else "n/a"
        print(f"   {pat:<26}{row['pairs']:>6}{row['evidence']:>7}{row['linked']:>8}{rec:>8.2f}{rec_ev:>9.2f}"
              f"{poss:>10}{comp:>9}")
    total = sum(v["pairs"] for v in r["lookalikes"].values())
    linked = sum(v["linked"] for v in r["lookalikes"].values())
    print(f"\n   {'look-alike false links':<26}{'pairs':>6}{'linked':>8}{'share':>8}{'possible':>9}")
    for pat, row in sorted(r["lookalikes"].items()):
        poss = str(row["possible"]) if "possible" in r else "n/a"
        print(f"   {pat:<26}{row['pairs']:>6}{row['linked']:>8}{row['linked'] / max(1, row['pairs']):>8.3f}{poss:>9}")
    share = linked / max(1, total)
    print(f"   {'all look-alikes':<26}{total:>6}{linked:>8}{share:>8.3f}  (reported)")
    apart = r["lookalikes_told_apart"]
    share = apart["linked"] / max(1, apart["pairs"])
    print(f"   {'that the records tell apart':<26}{apart['pairs']:>6}{apart['linked']:>8}{share:>8.3f}  target <= "
          f"{TARGETS['lookalikes_linked']}  {_mark(share <= TARGETS['lookalikes_linked'])}")
    print(f"\n   false links by cause ({lk['linked_pairs'] - lk['true_linked']:,} pairs):")
    for c, n in list(r["false_links"].items())[:15]:
        print(f"   {n:>7,}  {c}")
    for line in r.get("dump") or []:
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[50_000, 100_000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--cache", type=Path, help="keep generated populations here (default: "
                        "almatools_linkage_realistic in the temporary folder), one folder per size, seed and "
                        "generator version")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--dump-misses", type=int, default=0, metavar="N",
                        help="list N missed pairs per pattern and N false links per cause, with both records")
    parser.add_argument("--link-only", type=Path, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.link_only:
        print(json.dumps(measure(args.link_only, args.dump_misses), default=str))
        return
    from realistic_population import write_population

    results = []
    # keyed by the generator's own text too, so a changed generator never reuses an old population
    version = hashlib.sha1((HERE / "realistic_population.py").read_bytes()).hexdigest()[:8]
    cache = args.cache or Path(tempfile.gettempdir()) / "almatools_linkage_realistic"
    for size in args.sizes:
        for seed in args.seeds:
            folder = cache / f"realistic_{size}_{seed}_{version}"
            if not (folder / "users.jsonl").exists():
                summary = write_population(folder, size, seed)
                print(f"(generated {size:,} users, seed {seed}, in {summary['seconds']:.0f} s: {folder})", flush=True)
            child = subprocess.run([sys.executable, __file__, "--link-only", str(folder),
                                    "--dump-misses", str(args.dump_misses)],
                                   capture_output=True, text=True)
            if child.returncode:
                sys.stderr.write(child.stderr[-4000:])
                raise SystemExit(f"linking {folder} failed (exit {child.returncode})")
            r = json.loads(child.stdout.strip().splitlines()[-1])
            report(r, size, seed)
            r["size"], r["seed"] = size, seed
            r.pop("dump", None)
            results.append(r)
    if args.json:
        args.json.write_text(json.dumps({"targets": TARGETS, "runs": results}, indent=2, default=str))
        print(f"\nfigures written to {args.json}")


if __name__ == "__main__":
    os.environ["ALMATOOLS_CACHE"] = "off"  # every run links afresh: the seconds are a first run's
    main()
