"""Time the parse alone: ``load_users`` + ``load_sis`` on a generated population's two zips, one run.

    .venv/bin/python bench/load_time.py /tmp/qscale/quality-1000000-seed1 [--workers N]
    .venv/bin/python bench/load_time.py --file users.xml [--workers N]   # one file's load_users alone
    .venv/bin/python bench/load_time.py --make-xml users_export.zip users.xml   # one .xml of a zip's users

Prints wall seconds of each load, the main process's CPU seconds (``time.process_time()``: joining the
workers' tables), the load average before and after (the machine is shared: a figure taken while it
was busy says so), and the rows read. The kit's parse cache is off: every run parses.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path


def _usage(sampler) -> str:
    peak, cpu = sampler.close()
    return f"workers CPU {cpu:.1f} s; peak RSS {peak / (1 << 30):.2f} GiB"


def _make_xml(archive: Path, out: Path) -> None:
    """One Alma user XML file holding the ``<user>`` records of every member of a zip, in order."""
    import zipfile

    with zipfile.ZipFile(archive) as zf, open(out, "wb") as fh:
        fh.write(b'<?xml version="1.0" encoding="UTF-8"?>\n<users xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n')
        for name in zf.namelist():
            data = zf.read(name)
            fh.write(data[data.index(b">", data.index(b"<users")) + 1:data.rindex(b"</users>")])
        fh.write(b"</users>\n")
    print(f"wrote {out} ({out.stat().st_size / (1 << 20):.0f} MiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, nargs="?")
    parser.add_argument("--file", type=Path, help="time load_users of this one file instead")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--make-xml", type=Path, nargs=2, metavar=("ZIP", "XML"),
                        help="write the users of every member of ZIP into one XML file, and stop")
    args = parser.parse_args()
    if args.make_xml:
        _make_xml(*args.make_xml)
        return

    from almatools.sources import load_sis, load_users

    before = os.getloadavg()
    from _sampler import Sampler

    sampler = Sampler()
    cpu0 = time.process_time()
    if args.file:
        started = time.perf_counter()
        users = load_users(args.file, workers=args.workers)
        took, cpu = time.perf_counter() - started, time.process_time() - cpu0
        print(f"{args.file.name}: {len(users):,} rows in {took:.1f} s wall, main process CPU {cpu:.1f} s, "
              f"{_usage(sampler)}; load average {before[0]:.2f} before, {os.getloadavg()[0]:.2f} after")
        return
    started = time.perf_counter()
    users = load_users(args.folder / "users_export.zip", workers=args.workers)
    mid = time.perf_counter()
    sis = load_sis(args.folder / "sis_extract.zip", workers=args.workers)
    done = time.perf_counter()
    cpu = time.process_time() - cpu0
    after = os.getloadavg()
    print(f"{args.folder.name}: users {len(users):,} rows in {mid - started:.1f} s; SIS {len(sis):,} rows in "
          f"{done - mid:.1f} s; total {done - started:.1f} s wall, main process CPU {cpu:.1f} s, {_usage(sampler)}; "
          f"load average {before[0]:.2f} before, {after[0]:.2f} after")


if __name__ == "__main__":
    os.environ["ALMATOOLS_CACHE"] = "off"  # every load parses: the parse cache would answer a second one
    main()
