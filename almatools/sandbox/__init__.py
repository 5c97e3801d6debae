"""The local Alma sandbox: a real HTTP server that answers like Alma's Users API.

It keeps its users in SQLite in a data folder, seeded with the synthetic institution "Sandbox
University" (see :mod:`almatools.sandbox.generator`): SIS-managed and locally managed patrons with
planted problems, the matching SIS extract (``sis_extract.zip``) and a ground-truth file
(``ground_truth.csv``) that says which records carry which problem.

    >>> with start_sandbox(tmp_path) as sandbox:         # doctest: +SKIP
    ...     print(sandbox.base_url)
"""

from __future__ import annotations

import json
import logging
import secrets
import shutil
from pathlib import Path

from almatools.config import data_home

__all__ = ["DEFAULT_USERS", "default_data_dir", "prepare", "start_sandbox", "built_info"]

log = logging.getLogger(__name__)

DEFAULT_USERS = 5000
_BUILT = "built"  # store meta key, written only after the institution was generated completely


def default_data_dir() -> Path:
    """Where the sandbox keeps its data unless told otherwise: ``$ALMATOOLS_DATA/sandbox``."""
    return data_home() / "sandbox"


def built_info(store) -> dict | None:
    """What the store was generated with (users, seed, today), or None if it was never built completely."""
    raw = store.meta_get(_BUILT)
    return json.loads(raw) if raw else None


def prepare(data_dir: Path | str | None = None, *, users: int = DEFAULT_USERS, seed: int = 0, reset: bool = False,
            api_key: str | None = None, progress: bool = False):
    """Open the sandbox's store, generating the synthetic institution on first use.

    Args:
        data_dir: the data folder (default :func:`default_data_dir`).
        users: how many users to generate on first use (or with ``reset``).
        seed: the generator's seed.
        reset: throw the folder's data away and generate anew.
        api_key: the key the sandbox accepts; by default one is made on first use and kept in the store.
        progress: show a progress bar while generating.

    Returns:
        (store, api_key).
    """
    from almatools.sandbox.generator import generate_institution
    from almatools.sandbox.store import Store

    folder = Path(data_dir) if data_dir is not None else default_data_dir()
    if reset and folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "sandbox.sqlite"
    store = Store(db)
    try:
        info = built_info(store)
        if info is None:
            if store.count():  # an earlier build was interrupted: start again from nothing
                store.close()
                for leftover in folder.glob("sandbox.sqlite*"):
                    leftover.unlink()
                store = Store(db)
            log.info("generating the sandbox institution: %d users (seed %d) in %s", users, seed, folder)
            with store.bulk_load():  # one transaction, indexes built once at the end
                made = generate_institution(folder, users=users, seed=seed, sink=store.insert_many, progress=progress)
            store.meta_set(_BUILT, json.dumps({"users": made.users, "seed": made.seed, "today": made.today.isoformat()}))
        elif (info.get("users"), info.get("seed")) != (users, seed):
            log.warning("the sandbox in %s holds %s users from seed %s; pass reset to generate %d users from seed %d",
                        folder, info.get("users"), info.get("seed"), users, seed)
        key = api_key or store.meta_get("api_key") or f"sandbox-{secrets.token_hex(12)}"
        store.meta_set("api_key", key)
    except BaseException:  # generation stopped or failed: close the store, not leave it to the collector
        store.close()
        raise
    return store, key


def start_sandbox(data_dir: Path | str | None = None, *, users: int = DEFAULT_USERS, seed: int = 0,
                  reset: bool = False, api_key: str | None = None, host: str = "127.0.0.1", port: int = 0,
                  progress: bool = False, **knobs):
    """Prepare the data folder and start the sandbox server in a background thread.

    Args:
        data_dir, users, seed, reset, api_key, progress: as for :func:`prepare`.
        host, port: where to listen (port 0 picks a free port).
        **knobs: ``latency_ms``, ``fault_rate``, ``per_second``, ``daily_limit`` (see
            :class:`almatools.sandbox.server.SandboxServer`).

    Returns:
        The started :class:`~almatools.sandbox.server.SandboxServer`; ``stop()`` it (or use ``with``).
    """
    from almatools.sandbox.server import SandboxServer

    store, key = prepare(data_dir, users=users, seed=seed, reset=reset, api_key=api_key, progress=progress)
    try:
        server = SandboxServer(store, api_key=key, host=host, port=port, **knobs)
        server.owns_store = True
        server.data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
        return server.start()
    except BaseException:
        store.close()
        raise
