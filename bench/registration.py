"""Registration: API calls per patron, validation time per form, and the bulk rate against the throttle.

The sandbox runs as a separate process with 50 ms latency per call and Alma's 25 calls/s limit.
Prints, measured in this one run:
    calls per registration: register() alone (it runs the duplicate search itself), find_existing() +
        register() from the form, a bulk row, and a renewal offered to someone registered again
        (target: at most 5 for a registration: identifier lookup, email and name searches, POST, GET;
        2 for a renewal: GET, PUT)
    validation time per form: median and 95th percentile of validate() over many forms (target: under 20 ms)
    bulk rate: API calls per second of a bulk run divided by the limit (target: at least 0.9)

    python bench/registration.py [--rows 300] [--forms 3000] [--latency-ms 50] [--limit 25]
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from _sandbox import sandbox_process

from almatools.bulk import CALLS_PER_ROW, register_csv
from almatools.client import AlmaClient
from almatools.policy import load_policy
from almatools.registration import PatronForm, find_existing, register, validate

ROOT = Path(__file__).resolve().parents[1]
POLICIES = [load_policy(ROOT / "almatools" / "policies" / "default.toml"),
            load_policy(ROOT / "examples" / "policies" / "consortium_quick_user.toml"),
            load_policy(ROOT / "examples" / "policies" / "external_identity_borrowers.toml")]
TODAY = date.today()


def name(rng: random.Random) -> str:
    return "".join(rng.choice("bcdfghjklmnprstvz") + rng.choice("aeiou") for _ in range(4)).capitalize()


def forms(n: int, rng: random.Random) -> list[tuple[PatronForm, object]]:
    """A mix of forms over the three policies: most valid, some with typical mistakes."""
    made = []
    for i in range(n):
        policy = POLICIES[i % len(POLICIES)]
        key = rng.choice(list(policy.affiliations))
        group = policy.groups[policy.affiliations[key].group]
        pid = rng.choice(["123456789", "G01234567", "1234567", "CB100234", "AL004211", "jsmith2", "AB12345"])
        form = PatronForm(affiliation=key, first_name=name(rng), last_name=name(rng) if rng.random() > 0.1 else "",
                          primary_id=pid, expiry_date=TODAY + timedelta(days=rng.randrange(-10, 900)),
                          email_address=f"{name(rng).lower()}@example.org" if rng.random() > 0.1 else "bad@",
                          birth_date=date(1950 + rng.randrange(50), 1 + rng.randrange(12), 1 + rng.randrange(28)),
                          password="Tr1cky-Horse" if group.password == "temporary" else "")
        made.append((form, policy))
    return made


def taken_ids(alma: AlmaClient, groups: list[str]) -> set[str]:
    return {u["primary_id"].upper() for g in groups for u in alma.search_users(user_group=g)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--forms", type=int, default=3000)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--limit", type=int, default=25)
    args = parser.parse_args()
    rng = random.Random(11)
    default = POLICIES[0]

    # Validation: no network.
    sample = forms(args.forms, rng)
    timings = []
    for form, policy in sample:
        start = time.perf_counter()
        validate(form, policy, today=TODAY)
        timings.append((time.perf_counter() - start) * 1000)
    timings.sort()
    median, p95 = statistics.median(timings), timings[int(0.95 * (len(timings) - 1))]

    with tempfile.TemporaryDirectory() as tmp, sandbox_process(
            Path(tmp) / "sandbox", "--users", "5000", "--latency-ms", str(args.latency_ms),
            "--per-second", str(args.limit), "--daily-limit", "0") as (url, key):
        with AlmaClient(api_key=key, base_url=url, per_second=args.limit) as alma:
            taken = taken_ids(alma, ["COMMUNITY", "FRIENDS"])
            free = (f"CB{n:06d}" for n in rng.sample(range(10**6), 20_000) if f"CB{n:06d}" not in taken)

            def patron(pid: str, **more) -> PatronForm:
                values = dict(affiliation="community", first_name=name(rng), last_name=name(rng), primary_id=pid,
                              expiry_date=TODAY + timedelta(days=365), email_address=f"{pid.lower()}@example.org",
                              birth_date=date(1980, 1, 2), password="Tr1cky-Horse")
                return PatronForm(**{**values, **more})

            # One patron, register() alone (it searches by identifier, email and name, then POST and GET).
            alone = []
            for _ in range(10):
                before = alma.calls
                assert register(alma, validate(patron(next(free)), default, today=TODAY)).status == "created"
                alone.append(alma.calls - before)
            # One patron from the form: find_existing() (identifier, email, name) then register().
            from_form = []
            for _ in range(10):
                form = patron(next(free))
                before = alma.calls
                search = find_existing(alma, form, default, today=TODAY)
                assert register(alma, validate(form, default, today=TODAY), search=search).status == "created"
                from_form.append(alma.calls - before)

            # The same person registered again under a new identifier: register() blocks and renews.
            again = []
            for _ in range(10):
                first = patron(next(free), expiry_date=TODAY + timedelta(days=30))
                assert register(alma, validate(first, default, today=TODAY)).status == "created"
                second = PatronForm(**{**first.__dict__, "primary_id": next(free), "expiry_date": None})
                before = alma.calls
                done = register(alma, validate(second, default, today=TODAY), renew_if_offered=True)
                assert done.status == "renewed" and alma.find_user(second.primary_id) is None, done.message
                again.append(alma.calls - before)

            # Bulk: the calls the run makes, per second, against the limit.
            source = Path(tmp) / "bulk.csv"
            with source.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(["affiliation", "first_name", "last_name", "primary_id", "expiry_date",
                                 "email_address", "password"])
                for _ in range(args.rows):
                    p = patron(next(free))
                    writer.writerow([p.affiliation, p.first_name, p.last_name, p.primary_id,
                                     p.expiry_date.isoformat(), p.email_address, f"Pw-{rng.randrange(10**9)}x"])
            start = time.perf_counter()
            result = register_csv(alma, source, default, today=TODAY, workers=8)
            elapsed = time.perf_counter() - start
            assert result.created == args.rows and result.complete, result
    per_row = (result.calls - 1) / args.rows  # one call asks for today's remaining quota before the run
    rate = result.calls / elapsed

    print(f"sandbox: {args.latency_ms} ms latency, limit {args.limit} calls/s; {args.forms} forms validated; "
          f"{args.rows} bulk rows")
    print(f"calls per registration, register() alone:            {statistics.mean(alone):.2f} (max {max(alone)}; "
          f"target <= 5: identifier, email and name searches, POST, GET)")
    print(f"calls per registration, form search + register():     {statistics.mean(from_form):.2f} "
          f"(max {max(from_form)}; identifier, email and name searches, POST, GET)")
    print(f"calls per registration, bulk row:                     {per_row:.2f} (CALLS_PER_ROW = {CALLS_PER_ROW}; "
          "target <= 5)")
    print(f"calls per registration again, search + renewal:       {statistics.mean(again):.2f} (max {max(again)}; "
          "the search, its hit's full record, then GET and PUT; nothing created)")
    print(f"validation time per form: median {median:.3f} ms, p95 {p95:.3f} ms, max {timings[-1]:.3f} ms "
          f"(target < 20 ms): {20 / p95:.0f}x under the target at p95")
    print(f"bulk rate: {rate:.2f} calls/s in {elapsed:.1f} s = {rate / args.limit:.3f} of the limit (target >= 0.9)")


if __name__ == "__main__":
    main()
