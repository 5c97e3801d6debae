"""Reading the parts of a source (zip members, parts of a JSON lines or XML file) in worker processes, in order."""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import zipfile
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

import pandas as pd

from almatools.errors import SourceError
from almatools.models import RecordError
from almatools.quality.frame import (
    rows_frame,
)
from almatools.sources.alma_xml import _xml_rows
from almatools.sources.base import LoadReport, _error_of
from almatools.sources.jsonl import _jsonl_rows
from almatools.sources.xml_parts import PartReader

log = logging.getLogger(__name__)

_PARALLEL_BYTES = 48 << 20  # below this much (uncompressed) input, one process reads it all


@dataclass(frozen=True)
class _Task:
    kind: str  # xml | xmlpart | zip | jsonl
    path: str
    members: tuple[str, ...] = ()  # zip members read by this task (the zip is opened once for them all)
    start: int = 0
    end: int | None = None
    size: int = 0  # bytes, for the progress bar
    head: bytes = b""  # xmlpart: read before the part's bytes (the root's start tag; none for the first part)
    tail: bytes = b""  # xmlpart: read after them (the root's end tag; none for the last part)

    @property
    def names(self) -> list[str]:
        return [f"{self.path}:{m}" for m in self.members] if self.members else [self.path]


def _run_task(task: _Task, ptype: str, tick: Callable[[int], None] | None = None
              ) -> tuple[pd.DataFrame, list[tuple[Any, ...]], int, int]:
    """Read one file, some zip members or part of a JSON lines or XML file into a table (runs in a worker
    process). Returns the table, the bad records' errors, the records seen and, for a part of an XML
    file, the newlines in its bytes (to number the lines of the next parts)."""
    newlines = 0
    if task.kind == "jsonl":
        rows, errors, n = _jsonl_rows(task.path, task.path, ptype, task.start, task.end, tick)
    elif task.kind == "xmlpart":
        try:
            with open(task.path, "rb") as fh:
                part = PartReader(fh, task.head, task.start, task.end or 0, task.tail)
                rows, errors, n = _xml_rows(part, task.path, ptype, tick)  # type: ignore[arg-type]
                newlines = part.newlines
        except OSError as err:
            raise SourceError(f"{task.path} cannot be read: {err}") from None
    elif task.kind == "zip":
        rows, errors, n = [], [], 0
        done = 0
        member = ""
        try:
            with zipfile.ZipFile(task.path) as zf:  # opened once: its directory is read once per task
                for member in task.members:
                    with zf.open(member) as fh:
                        inner = (lambda pos, done=done: tick(done + pos)) if tick is not None else None
                        r, e, k = _xml_rows(fh, f"{task.path}:{member}", ptype, inner)
                    rows.extend(r)
                    errors.extend(e)
                    n += k
                    done += zf.getinfo(member).file_size
        except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, EOFError) as err:
            hint = ("; unpack it with its password and zip the files again without one" if "encrypted" in str(err)
                    else "")
            raise SourceError(f"{task.path}:{member} cannot be read from the zip: {err}{hint}") from None
        except OSError as err:
            raise SourceError(f"{task.path} cannot be read: {err}") from None
    else:
        try:
            with open(task.path, "rb") as fh:
                rows, errors, n = _xml_rows(fh, task.path, ptype, tick)
        except OSError as err:
            raise SourceError(f"{task.path} cannot be read: {err}") from None
    return rows_frame(rows), errors, n, newlines


def _workers(requested: int | None) -> int:
    if requested:
        return max(1, requested)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cpus, 8))


def _pool(workers: int) -> ProcessPoolExecutor:
    # forkserver: workers do not inherit this process's threads (the sandbox, Jupyter), which fork would.
    method = "forkserver" if sys.platform.startswith("linux") else "spawn"
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload(["almatools.sources"])
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx)


def _run(tasks: list[_Task], ptype: str, report: LoadReport, bad: Callable[[RecordError], None], *,
         progress: bool, workers: int | None, label: str) -> pd.DataFrame:
    """Run the read tasks (in parallel when worth it) and join their tables in task order.

    The parts of one XML file that cannot all be read as parts (one is not well formed, or a cut fell
    inside a comment, a CDATA section or another element) are read again as the whole file, in one
    process, so its errors are exactly those of a whole read.
    """
    try:
        results = _execute(tasks, ptype, progress=progress, workers=workers, label=label)
    except SourceError as err:
        if tasks[0].kind != "xmlpart":
            raise
        log.info("%s: read whole, as its parts could not be read apart (%s)", tasks[0].path, err)
        tasks = [_Task("xml", tasks[0].path, size=sum(t.size for t in tasks))]
        results = _execute(tasks, ptype, progress=progress, workers=workers, label=label)
    frames, line_offset, record_offset = [], 0, 0
    for i, task in enumerate(tasks):
        frame, errors, n, newlines = results[i]
        frames.append(frame)
        for e in errors:
            err = _error_of(e)
            if task.kind == "jsonl":  # number the lines of the whole file, not of this part
                err = RecordError(err.reason, file=task.path, record=err.record + line_offset,
                                  field=err.field, line=err.line + line_offset)
            elif task.kind == "xmlpart" and task.start:  # records and lines of the whole file
                # line_offset counts the newlines before this part; the part's own head (the root's start
                # tag) took head.count(b"\n") lines before the part's first byte, which is on line 1 + that.
                line = None if err.line is None else err.line - task.head.count(b"\n") + line_offset
                err = RecordError(err.reason, file=task.path, record=err.record + record_offset,
                                  field=err.field, line=line)
            bad(err)
        if task.kind == "jsonl":
            line_offset += n
        elif task.kind == "xmlpart":
            line_offset += newlines
            record_offset += n
    out = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if report.kind == "jsonl" and not len(out) and report.skipped:
        raise SourceError(f"{report.source} is not JSON lines of Alma users: {report.errors[0]}")
    return out


def _execute(tasks: list[_Task], ptype: str, *, progress: bool, workers: int | None, label: str
             ) -> dict[int, tuple[pd.DataFrame, list[tuple[Any, ...]], int, int]]:
    """Each task's result, by task number (in worker processes when worth it)."""
    total = sum(t.size for t in tasks)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, unit="B", unit_scale=True, desc=label)
    results: dict[int, tuple[pd.DataFrame, list[tuple[Any, ...]], int, int]] = {}
    n_workers = min(_workers(workers), len(tasks))
    try:
        if n_workers > 1 and total >= _PARALLEL_BYTES:
            with _pool(n_workers) as pool:
                futures: dict[Future, int] = {pool.submit(_run_task, t, ptype): i for i, t in enumerate(tasks)}
                pending = set(futures)
                try:
                    while pending:
                        done, pending = wait(pending, return_when=FIRST_COMPLETED)
                        for fut in done:
                            try:
                                results[futures[fut]] = fut.result()
                            except BrokenProcessPool:
                                raise SourceError(f"{tasks[futures[fut]].path}: a reader process died while reading "
                                                  "it (out of memory?)") from None
                            if bar is not None:
                                bar.update(tasks[futures[fut]].size)
                finally:
                    for fut in pending:
                        fut.cancel()
        else:
            for i, t in enumerate(tasks):
                base = bar.n if bar is not None else 0
                tick = (lambda pos, base=base: bar.update(max(0, base + pos - bar.n))) if bar is not None else None
                results[i] = _run_task(t, ptype, tick)
                if tick is not None:
                    tick(t.size)
    finally:
        if bar is not None:
            bar.close()
    return results
