"""Issue 11's table, measured: each hostile input through its command, under ``/usr/bin/time -v``.

Generates every file in a temporary folder (the same generators as ``tests/hostile``), starts a small
sandbox for the commands that talk to Alma, runs each command once and prints one Markdown row per case:
command, exit status, the last line on standard error (or the figure that matters), peak resident
memory (``Maximum resident set size`` from ``/usr/bin/time -v``) and wall seconds. Every case must end
with exit 0, 1 or 3, no traceback, under 1.5 GiB; the script says which do not.

    python bench/hostile_table.py [--keep DIR] [--only SUBSTRING]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "hostile"))
sys.path.insert(0, str(ROOT / "tests" / "merge"))

import _files as hostile  # noqa: E402

LIMIT_MIB = 1536


def timed(args: list[str], env: dict[str, str]) -> tuple[int, str, float, float]:
    """(exit status, standard error, peak RSS MiB, seconds) of ``almatools ARGS`` under /usr/bin/time -v."""
    with tempfile.NamedTemporaryFile("r+", suffix=".time") as report:
        started = time.monotonic()
        proc = subprocess.run(["/usr/bin/time", "-v", "-o", report.name, sys.executable, "-m", "almatools", *args],
                              cwd=ROOT, env=env, capture_output=True, text=True)
        seconds = time.monotonic() - started
        text = Path(report.name).read_text()
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1)) / 1024
    return proc.returncode, proc.stderr, peak, seconds


def last_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def formula_cells(folder: Path) -> int:
    """Cells in the CSVs and workbooks of ``folder`` that a spreadsheet would run as formulas."""
    from openpyxl import load_workbook

    found = 0
    for path in folder.rglob("*.csv"):
        with open(path, newline="", encoding="utf-8") as fh:
            found += sum(1 for row in csv.reader(fh) for c in row if c[:1] in ("=", "+", "-", "@", "\t", "\r"))
    for path in folder.rglob("*.xlsx"):
        found += sum(1 for s in load_workbook(path).worksheets for r in s.iter_rows() for c in r
                     if c.data_type == "f")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="generate the files here and keep them")
    parser.add_argument("--only", help="run only the cases whose name holds this")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="hostile-"))
    work.mkdir(parents=True, exist_ok=True)

    from almatools.sandbox import start_sandbox

    server = start_sandbox(work / "sandbox", users=300, seed=3)
    env = {**os.environ, "ALMA_BASE_URL": server.base_url, "ALMA_API_KEY": server.api_key,
           "ALMATOOLS_DATA": str(work / "data")}
    rows: list[tuple[str, str, int, str, float, float]] = []

    def case(name: str, command: list[str], note=None) -> None:
        if args.only and args.only not in name:
            return
        code, err, peak, seconds = timed([str(a) for a in command], env)
        try:
            shown = note() if note is not None and code in (0, 3) else last_line(err)
        except (OSError, KeyError, ValueError) as exc:
            shown = f"{last_line(err)} [figure unavailable: {exc}]"
        clean = code in (0, 1, 3) and "Traceback" not in err and peak < LIMIT_MIB
        rows.append((name, "almatools " + " ".join(str(c).replace(str(work) + "/", "") for c in command[:1]), code,
                     (shown[:150] + ("" if clean else "  **NOT CLEAN**")).replace("|", "/"), peak, seconds))
        print(f"{name}: exit {code}, {peak:.0f} MiB, {seconds:.1f} s: {shown[:150]}", file=sys.stderr)

    def quality(source: Path, out: str, *extra: str) -> list[str]:
        return ["quality", "--users", source, "--sis", "none", "--out", work / out, "--quiet", *extra]

    src = hostile.placeholder_users(work / "placeholder.xml", 5000)
    case("5,000 users with BARCODE=N/A (rules only)", quality(src, "q-placeholder", "--no-duplicates"),
         lambda: _collisions(work / "q-placeholder"))
    case("5,000 users with BARCODE=N/A (with the duplicate linkage)", quality(src, "q-placeholder-dup"),
         lambda: _collisions(work / "q-placeholder-dup"))
    case("zip: one member of 128 MiB of non-user elements",
         quality(hostile.junk_zip(work / "junk.zip", 128), "q-junk", "--no-duplicates"),
         lambda: _users(work / "q-junk"))
    case("400k users under a wrapping element", quality(hostile.wrapped_users(work / "wrapped.xml"), "q-wrap"))
    case("2 GB .jsonl of one line", quality(hostile.one_line_jsonl(work / "one.jsonl"), "q-jsonl"))
    case("2 GB .csv (one 2 GB line)", quality(hostile.big_csv(work / "big.csv"), "q-csv", "--no-duplicates"),
         lambda: _load_errors(work / "q-csv"))
    case("JSON nested 200,000 deep, null id, wrong types",
         quality(hostile.deep_jsonl(work / "deep.jsonl"), "q-deep", "--no-duplicates"),
         lambda: _load_errors(work / "q-deep"))
    case("registration CSV with a 200,000-character field",
         ["register", "--csv", hostile.long_field_registration(work / "patrons.csv"), "--dry-run", "--quiet"],
         lambda: _unreadable(work / "patrons.issues.csv"))
    for n in (3000, 10_000):
        case(f"zip of {n:,} one-user files",
             quality(hostile.many_member_zip(work / f"many{n}.zip", n), f"q-many{n}", "--no-duplicates"),
             lambda n=n: _users(work / f"q-many{n}"))
    formulas = hostile.users_file(work / "formulas.xml", [
        hostile.user_xml(f"F{i}", first=f, last=f, email=f"{f}@x.org", identifiers=(("BARCODE", f),))
        for i, f in enumerate(hostile.FORMULAS)])
    case("patron data starting with = + - @ (quality CSVs)", quality(formulas, "q-formulas"),
         lambda: f"formula cells: {formula_cells(work / 'q-formulas')}")
    case("patron data starting with = + - @ (registration issues file)",
         ["register", "--csv", hostile.formula_registration(work / "formulas.csv"), "--dry-run", "--quiet"],
         lambda: f"formula cells: {formula_cells_file(work / 'formulas.issues.csv')}")
    odd = hostile.users_file(work / "odd.xml", [
        hostile.user_xml("abc", first="Zyxwq", last="Qwxyz", email="yu.xi(at)mailhost.com"),
        hostile.user_xml("ABC2", first="Mo", last="Ro", identifiers=(("BARCODE", "ABC"),)),
        hostile.user_xml("AL123456", first="Ok", last="Fine")])
    case("--mask-pii with values the usual patterns miss",
         ["report", "--out", work / "r-masked", "--users", odd, "--mask-pii", "--quiet", "--no-duplicates"],
         lambda: _raw_values(work / "r-masked") + f"; formula cells: {formula_cells(work / 'r-masked')}")
    wl = _worklist(work / "worklist")
    case("merge-verify on a worklist whose FROM was edited to a typo", ["merge-verify", "--worklist", wl])
    left = _kill_report(work / "r-killed", odd, env)
    case(f"kill -9 during report ({left} .tmp- folder left), then report again",
         ["report", "--out", work / "r-killed", "--users", odd, "--quiet", "--no-duplicates"],
         lambda: f".tmp- folders after the next run: {len(list((work / 'r-killed').glob('.tmp-*')))}")
    (work / "a-file").write_text("x")
    case("--out below a regular file (quality)", quality(odd, "a-file/out"))
    case("--out below a regular file (report)", ["report", "--out", work / "a-file" / "r", "--users", odd, "--quiet"])
    server.stop()

    print("| input | command | exit | message or figure | peak RSS MiB | seconds |")
    print("|---|---|---|---|---|---|")
    for name, command, code, shown, peak, seconds in rows:
        print(f"| {name} | {command} | {code} | {shown} | {peak:.0f} | {seconds:.1f} |")
    bad = [r[0] for r in rows if "NOT CLEAN" in r[3]]
    print(f"\n{len(rows) - len(bad)} of {len(rows)} cases clean (exit 0/1/3, no traceback, under {LIMIT_MIB} MiB)"
          + (f"; not clean: {', '.join(bad)}" if bad else ""))
    return 1 if bad else 0


def formula_cells_file(path: Path) -> int:
    with open(path, newline="", encoding="utf-8") as fh:
        return sum(1 for row in csv.reader(fh) for c in row if c[:1] in ("=", "+", "-", "@", "\t", "\r"))


def _collisions(out: Path) -> str:
    with open(out / "findings.csv", newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["rule_id"] == "ID_COLLISION"]
    return f"ID_COLLISION findings: {len(rows)} ({rows[0]['message'][:60] if rows else ''}…)"


def _users(out: Path) -> str:
    return f"users loaded: {json.loads((out / 'summary.json').read_text())['users']:,}"


def _load_errors(out: Path) -> str:
    with open(out / "load_errors.csv", newline="", encoding="utf-8") as fh:
        errors = list(csv.DictReader(fh))
    users = json.loads((out / "summary.json").read_text())["users"]
    return f"users loaded: {users}; reported: " + "; ".join(f"rec {e['record']} {e['field']}: {e['reason'][:40]}"
                                                             for e in errors[:3]) + (" …" if len(errors) > 3 else "")


def _unreadable(path: Path) -> str:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["rule"] == "UNREADABLE_ROW"]
    return "; ".join(f"row {r['row']} UNREADABLE_ROW: {r['message'][:60]}" for r in rows)


def _raw_values(root: Path) -> str:
    from openpyxl import load_workbook

    text = []
    for path in root.rglob("*"):
        if path.suffix in (".html", ".csv", ".json", ".txt"):
            text.append(path.read_text(encoding="utf-8"))
        elif path.suffix == ".xlsx":
            text += [str(c.value) for s in load_workbook(path).worksheets for r in s.iter_rows() for c in r]
    joined = "\n".join(text)
    raw = [v for v in ("yu.xi(at)mailhost.com", "Zyxwq", "'ABC2'", "held by ABC") if v in joined]
    return f"raw values in the masked report: {len(raw)} {raw if raw else ''}"


def _worklist(folder: Path) -> Path:
    from merge_data import STANDARD_CLUSTERS, STANDARD_SIS, STANDARD_USERS, clusters_frame

    from almatools import merge
    from almatools.files import write_csv
    from almatools.quality.frame import users_frame

    worklist = merge.propose(clusters_frame(STANDARD_CLUSTERS), users_frame(STANDARD_USERS), STANDARD_SIS,
                             folder=folder)
    write_csv(worklist.to_frame(), folder / "proposals.csv")
    worklist.approve("P0003", reviewer="kim")
    body = json.loads((folder / merge.PROPOSALS_FILE).read_text())
    next(p for p in body["pairs"] if p["pair_id"] == "P0003")["from_id"] = "OLDD"
    (folder / merge.PROPOSALS_FILE).write_text(json.dumps(body))
    return folder


def _kill_report(root: Path, users: Path, env: dict[str, str]) -> int:
    """Start a report, kill -9 it (and its kernel) once its temporary folder exists; the folders left."""
    proc = subprocess.Popen([sys.executable, "-m", "almatools", "report", "--out", str(root), "--users", str(users),
                             "--quiet", "--no-duplicates"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(root.glob(".tmp-*/.owner.lock")):
        time.sleep(0.05)
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return len(list(root.glob(".tmp-*")))


if __name__ == "__main__":
    sys.exit(main())
