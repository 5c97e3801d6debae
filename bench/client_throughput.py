"""How close the client gets to Alma's per-second limit when fetching full records.

The sandbox runs as a separate process with 150 ms latency per call and a 25 calls/s limit (Alma's).
Prints, measured in this one run:
    concurrent: achieved calls/s divided by the limit (target: at least 0.9)
    one at a time: the same ratio for sequential calls (bounded by latency: about 1/(0.15*25) = 0.27)

    python bench/client_throughput.py [--records 500] [--latency-ms 150] [--limit 25]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _sandbox import sandbox_process

from almatools.client import AlmaClient


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=500)
    parser.add_argument("--sequential", type=int, default=60)
    parser.add_argument("--latency-ms", type=int, default=150)
    parser.add_argument("--limit", type=int, default=25)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, sandbox_process(
            Path(tmp), "--users", "5000", "--latency-ms", str(args.latency_ms),
            "--per-second", str(args.limit), "--daily-limit", "0") as (url, key):
        with AlmaClient(api_key=key, base_url=url, per_second=args.limit) as alma:
            ids = [u["primary_id"] for u in alma.search_users(general_info="ACTIVE", max_records=args.records)]
            start, calls = time.perf_counter(), alma.calls
            fetched = sum(1 for _ in alma.fetch_users(ids, workers=8))
            concurrent = fetched / (time.perf_counter() - start)
            refused = alma.calls - calls - fetched  # calls the server refused with 429 and the client retried
            start, calls = time.perf_counter(), alma.calls
            for uid in ids[: args.sequential]:
                alma.get_user(uid)
            sequential = args.sequential / (time.perf_counter() - start)
    print(f"fetched {fetched} full records; latency {args.latency_ms} ms; limit {args.limit}/s; "
          f"{refused} calls refused and retried")
    print(f"concurrent (8 workers): {concurrent:.2f} records/s = {concurrent / args.limit:.3f} of the limit")
    print(f"one at a time:          {sequential:.2f} records/s = {sequential / args.limit:.3f} of the limit")


if __name__ == "__main__":
    main()
