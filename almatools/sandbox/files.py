"""The local sandbox's own data as files (its users exported, its SIS extract), for analysing it
without the API (:func:`almatools.sources.load_sources` with no users source).
"""

from __future__ import annotations

import logging
import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from almatools.errors import SourceError
from almatools.files import atomic_path
from almatools.models import user_to_xml_bytes, write_users_xml

if TYPE_CHECKING:
    from almatools.client import AlmaClient

__all__ = ["sandbox_files", "sandbox_sis_extract"]

log = logging.getLogger(__name__)


def _sandbox_folder(client: AlmaClient | None, data_dir: str | os.PathLike[str] | None) -> Path | None:
    import almatools
    from almatools.sandbox import default_data_dir

    running = getattr(almatools, "_sandbox", None)
    candidates = [Path(data_dir)] if data_dir is not None else []
    if running is not None and getattr(running, "data_dir", None) is not None:
        candidates.append(Path(running.data_dir))
    candidates.append(default_data_dir())
    for folder in candidates:
        if (folder / "sandbox.sqlite").is_file() and (client is None or _same_sandbox(client, folder)):
            return folder
    return None


def _same_sandbox(client: AlmaClient, folder: Path) -> bool:
    """Whether the client talks to the sandbox whose data is in ``folder`` (one user compared)."""
    from almatools.sandbox.store import Store

    with Store(folder / "sandbox.sqlite") as store:
        _, first = store.query(order_by="primary_id", limit=1)
    if not first:
        return False
    theirs = client.find_user(str(first[0]["primary_id"]))
    return theirs is not None and all(theirs.get(k) == first[0].get(k) for k in ("first_name", "last_name"))


def _export_store(db: Path, out: Path, users_per_file: int = 20_000) -> None:
    """Write the users of a sandbox store as Export Users v2 XML files in a zip (replaced atomically)."""
    from almatools.sandbox.store import Store

    with atomic_path(out) as tmp:
        with Store(db) as store, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            total, _ = store.query(order_by="primary_id", limit=0)
            for k, offset in enumerate(range(0, total, users_per_file), 1):
                _, users = store.query(order_by="primary_id", limit=users_per_file, offset=offset)
                with zf.open(f"users_{k:04d}.xml", "w") as fh:
                    write_users_xml(fh, (user_to_xml_bytes(u, xml_declaration=False) for u in users), len(users))


def sandbox_sis_extract(client: AlmaClient | None = None, *, data_dir: str | os.PathLike[str] | None = None
                        ) -> str | None:
    """The local sandbox's SIS extract (``sis_extract.zip``), without exporting its users; None when there is none
    on this machine or ``client`` works on production Alma."""
    if client is not None and client.environment != "SANDBOX":
        return None
    folder = _sandbox_folder(client, data_dir)
    sis = folder / "sis_extract.zip" if folder is not None else None
    return str(sis) if sis is not None and sis.exists() else None


def sandbox_files(client: AlmaClient | None = None, *, data_dir: str | os.PathLike[str] | None = None
                  ) -> tuple[str, str | None]:
    """The users source and SIS extract of the local sandbox, for analysing it without the API.

    The sandbox keeps its users in SQLite next to its SIS extract (``sis_extract.zip``). This writes
    them as an Export Users file (``users_export.zip`` in the same folder, refreshed when the store
    changed since) and returns both paths. When the sandbox's folder is not on this machine (the
    server runs elsewhere), the users come from ``"api:"`` and there is no SIS extract (None).

    Args:
        client: The client of the sandbox (to check the folder holds its data); None trusts the folder.
        data_dir: The sandbox's data folder (default: the sandbox this process started, else
            :func:`almatools.sandbox.default_data_dir`).

    Raises:
        SourceError: ``client`` works on production Alma, which has no sandbox files.
    """
    if client is not None and client.environment != "SANDBOX":
        raise SourceError("This client works on production Alma: give the users source and SIS extract yourself.")
    folder = _sandbox_folder(client, data_dir)
    if folder is None:
        log.info("the sandbox's data folder is not on this machine: users come from the API, no SIS extract")
        return "api:", None
    db, users = folder / "sandbox.sqlite", folder / "users_export.zip"
    changed = max((p.stat().st_mtime for p in (db, folder / "sandbox.sqlite-wal") if p.exists()), default=0.0)
    if not users.exists() or users.stat().st_mtime < changed:
        _export_store(db, users)
    sis = folder / "sis_extract.zip"
    return str(users), str(sis) if sis.exists() else None
