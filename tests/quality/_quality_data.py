"""The test sandbox's institution again, with its Export Users file (the sandbox itself keeps users in SQLite).

The generator is deterministic: the same users, seed and day give the same records, SIS extract and
ground truth as the sandbox's own. It is made once per run, next to the sandbox's folder.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from almatools.sandbox.generator import generate_institution


def institution(sandbox_dir: Path) -> tuple[Path, date]:
    """(folder with users_export.zip, sis_extract.zip and ground_truth.csv, the day it is as of)."""
    info = json.loads((sandbox_dir / "institution.json").read_text(encoding="utf-8"))
    today = date.fromisoformat(info["today"])
    folder = sandbox_dir.parent / "quality-institution"
    if not (folder / "institution.json").exists():
        generate_institution(folder, users=info["users"], seed=info["seed"], today=today, export=True)
    return folder, today
