"""Reading the parts of a source (zip members, JSON lines parts) in worker processes, in order."""

from __future__ import annotations

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

_PARALLEL_BYTES = 48 << 20  # below this much (uncompressed) input, one process reads it all


@dataclass(frozen=True)
class _Task:
    kind: str  # xml | zip | jsonl
    path: str
    members: tuple[str, ...] = ()  # zip members read by this task (the zip is opened once for them all)
    start: int = 0
    end: int | None = None
    size: int = 0  # bytes, for the progress bar

    @property
    def names(self) -> list[str]:
        return [f"{self.path}:{m}" for m in self.members] if self.members else [self.path]


def _run_task(task: _Task, ptype: str, tick: Callable[[int], None] | None = None
              ) -> tuple[pd.DataFrame, list[tuple[Any, ...]], int]:
    """Read one file, some zip members or part of a JSON lines file into a table (runs in a worker process)."""
    if task.kind == "jsonl":
        rows, errors, n = _jsonl_rows(task.path, task.path, ptype, task.start, task.end, tick)
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
            raise SourceError(f"{task.path}:{member} cannot be read from the zip: {err}") from None
        except OSError as err:
            raise SourceError(f"{task.path} cannot be read: {err}") from None
    else:
        try:
            with open(task.path, "rb") as fh:
                rows, errors, n = _xml_rows(fh, task.path, ptype, tick)
        except OSError as err:
            raise SourceError(f"{task.path} cannot be read: {err}") from None
    return rows_frame(rows), errors, n


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
    """Run the read tasks (in parallel when worth it) and join their tables in task order."""
    total = sum(t.size for t in tasks)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, unit="B", unit_scale=True, desc=label)
    results: dict[int, tuple[pd.DataFrame, list[tuple[Any, ...]], int]] = {}
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
    frames, line_offset = [], 0
    for i, task in enumerate(tasks):
        frame, errors, n = results[i]
        frames.append(frame)
        for e in errors:
            err = _error_of(e)
            if task.kind == "jsonl":  # number the lines of the whole file, not of this part
                err = RecordError(err.reason, file=task.path, record=err.record + line_offset,
                                  field=err.field, line=err.line + line_offset)
            bad(err)
        line_offset = line_offset + n if task.kind == "jsonl" else 0
    out = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if report.kind == "jsonl" and not len(out) and report.skipped:
        raise SourceError(f"{report.source} is not JSON lines of Alma users: {report.errors[0]}")
    return out
