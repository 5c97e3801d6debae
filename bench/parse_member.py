"""Where the time goes when the kit reads one member of an Alma user export (one process, in memory).

Reads one ``.xml`` member of a zip into memory and times, each on the same bytes:

- ``floor``: a bare lxml iterparse of ``<user>`` end events with ``clear()`` (the parse floor),
- ``elements``: the kit's streaming loop alone (:func:`almatools.sources.alma_xml._user_elements`),
- ``fields``: the field reader alone (the streaming loop with it, less the loop without it),
- ``table``: rows into the patron table, and pickling it (what crosses the worker boundary),
- ``kit``: the whole worker task on the member (``_xml_rows`` + the table), and its ratio to the floor.

    .venv/bin/python bench/parse_member.py /tmp/qscale/quality-1000000-seed1/users_export.zip [--member N]

Times are CPU seconds of this process (``time.process_time()``, best of ``--repeat``): less disturbed by
another program on the machine than wall time; the load average is printed with them.
"""

from __future__ import annotations

import argparse
import io
import os
import pickle
import time
import zipfile
from pathlib import Path

from lxml import etree


def _best(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        started = time.process_time()
        out = fn()
        best = min(best, time.process_time() - started)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("zip", type=Path)
    parser.add_argument("--member", type=int, default=0, help="which .xml member (from 0)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from almatools.quality.frame import rows_frame
    from almatools.sources.alma_xml import _user_elements, _xml_rows, element_row

    with zipfile.ZipFile(args.zip) as zf:
        name = [n for n in zf.namelist() if n.endswith(".xml")][args.member]
        started = time.process_time()
        data = zf.read(name)
        inflate = time.process_time() - started

    def floor() -> int:
        n = 0
        for _ev, el in etree.iterparse(io.BytesIO(data), events=("end",), tag="user"):
            n += 1
            el.clear(keep_tail=False)
        return n

    def elements() -> int:
        n = 0
        for n, _el in _user_elements(io.BytesIO(data)):
            pass
        return n

    def fields() -> list:  # streamed as the kit does: a record's tree is still in the CPU's cache
        return [element_row(el) for _n, el in _user_elements(io.BytesIO(data))]

    def kit() -> object:
        rows, _errors, _n = _xml_rows(io.BytesIO(data), name, "PATRON_TYPE")
        return pickle.dumps(rows_frame(rows), protocol=pickle.HIGHEST_PROTOCOL)

    t_floor, n = _best(floor, args.repeat)
    t_elements, _ = _best(elements, args.repeat)
    t_streamed, rows = _best(fields, args.repeat)
    t_fields = t_streamed - t_elements
    t_frame, frame = _best(lambda: rows_frame(rows), args.repeat)
    t_pickle, blob = _best(lambda: pickle.dumps(frame, protocol=pickle.HIGHEST_PROTOCOL), args.repeat)
    t_unpickle, _ = _best(lambda: pickle.loads(blob), args.repeat)
    t_kit, _ = _best(kit, args.repeat)
    print(f"{args.zip.name}:{name}: {len(data) / (1 << 20):.0f} MiB, {n:,} users; load average "
          f"{os.getloadavg()[0]:.2f}")
    print(f"  inflate            {inflate:6.2f} s")
    print(f"  floor (iterparse)  {t_floor:6.2f} s")
    print(f"  _user_elements     {t_elements:6.2f} s")
    print(f"  fields (per user)  {t_fields:6.2f} s  ({t_fields / n * 1e6:.1f} us/user)")
    print(f"  rows_frame         {t_frame:6.2f} s")
    print(f"  pickle / unpickle  {t_pickle:6.2f} s / {t_unpickle:.2f} s  ({len(blob) / (1 << 20):.0f} MiB)")
    print(f"  kit task           {t_kit:6.2f} s  = {t_kit / t_floor:.2f} x the floor")


if __name__ == "__main__":
    main()
