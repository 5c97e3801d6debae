"""How close the client gets to Alma's per-second limit when fetching full records, clean and under faults.

The sandbox runs as a separate process with 150 ms latency per call and a 25 calls/s limit (Alma's).
Prints, measured in this one run:
    clean:          records/s of fetch_users divided by the limit (target: at least 0.9)
    10% faults:     the same with 10% of calls failing (half 500/503, half dropped connections),
                    every record still fetched once, in order (target: at least 0.85)
    one at a time:  the ratio for sequential calls (bounded by latency: about 1/(0.15*25) = 0.27)
    paging:         calls made to list N users 100 per page (target: N/100, not one more)

    python bench/client_throughput.py [--records 500] [--latency-ms 150] [--limit 25] [--fault-rate 0.1]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

from _sandbox import sandbox_process

from almatools.client import AlmaClient


def fetch_rate(url: str, key: str, ids: list[str], limit: int, workers: int) -> tuple[float, int, bool]:
    """(records/s, calls made, all fetched once in order) for one fetch_users run with a fresh client."""
    with AlmaClient(api_key=key, base_url=url, per_second=limit, backoff=0.25, max_retries=8) as alma:
        start = time.perf_counter()
        got = [u["primary_id"] for u in alma.fetch_users(ids, workers=workers)]
        rate = len(got) / (time.perf_counter() - start)
        return rate, alma.calls, got == ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=500)
    parser.add_argument("--sequential", type=int, default=60)
    parser.add_argument("--latency-ms", type=int, default=150)
    parser.add_argument("--limit", type=int, default=25)
    parser.add_argument("--fault-rate", type=float, default=0.1)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the retries under faults are expected; keep the figures readable
    common = ["--users", "5000", "--latency-ms", str(args.latency_ms), "--per-second", str(args.limit),
              "--daily-limit", "0"]
    with tempfile.TemporaryDirectory() as tmp:
        with sandbox_process(Path(tmp), *common) as (url, key):
            with AlmaClient(api_key=key, base_url=url, per_second=args.limit) as alma:
                search = alma.search_users("ALL~ACTIVE", order_by="primary_id", page_size=100)
                total = search.count()
                calls = alma.calls
                ids = [u["primary_id"] for u in search.records()]
                paging_calls = alma.calls - calls
                ids = ids[: args.records]
                start = time.perf_counter()
                for uid in ids[: args.sequential]:
                    alma.get_user(uid)
                sequential = args.sequential / (time.perf_counter() - start)
            clean, clean_calls, clean_ok = fetch_rate(url, key, ids, args.limit, args.workers)
        with sandbox_process(Path(tmp), *common, "--fault-rate", str(args.fault_rate)) as (url, key):
            faulty, faulty_calls, faulty_ok = fetch_rate(url, key, ids, args.limit, args.workers)
    print(f"latency {args.latency_ms} ms; limit {args.limit}/s; {len(ids)} full records; {args.workers} workers")
    print(f"clean:          {clean:.2f} records/s = {clean / args.limit:.3f} of the limit "
          f"({clean_calls} calls; all once, in order: {clean_ok})")
    print(f"{args.fault_rate:.0%} faults:     {faulty:.2f} records/s = {faulty / args.limit:.3f} of the limit "
          f"({faulty_calls} calls; all once, in order: {faulty_ok})")
    print(f"one at a time:  {sequential:.2f} records/s = {sequential / args.limit:.3f} of the limit")
    print(f"paging:         {paging_calls} calls for {total} users at 100 per page "
          f"(count/100 rounded up = {-(-total // 100)})")


if __name__ == "__main__":
    main()
