"""The two ways a librarian opens the notebooks: JupyterLab (``almatools lab``) and app mode
(``almatools app``: Voila, the same notebooks as pages with no code).

Both serve the **workspace** folder (:func:`almatools.config.workspace`, ``work/`` in the checkout).
The kit's notebooks are copied into it (see :func:`prepare_workspace`), and a kernel starts in the
workspace: every output a notebook writes by default lands there, where Lab's file browser shows it.
This module prepares the folder and builds the two command lines; the
command line (:mod:`almatools.cli`) runs them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from almatools.errors import ConfigError
from almatools.files import atomic_write

__all__ = ["LAB_PORT", "APP_PORT", "SANDBOX_PORT", "LAB_SETTINGS", "APP_FILE_TYPES", "prepare_workspace",
           "lab_command", "app_command", "APP_JUPYTER_PATH", "running_as_root", "Prepared"]

LAB_PORT = 8888
"""JupyterLab's default port (Lab moves to the next free one when it is taken)."""
APP_PORT = 8866
"""Voila's default port."""
SANDBOX_PORT = 8990
"""The sandbox's default port (a free one is picked when it is taken)."""
LAB_SETTINGS = Path(__file__).resolve().parent.parent / "jupyter" / "lab-settings"
"""The JupyterLab settings the kit ships (the news pop-up turned off): see its README."""
APP_JUPYTER_PATH = Path(__file__).resolve().parent.parent / "jupyter"
"""Put first on JUPYTER_PATH for Voila: it holds the ``almatools`` Voila template (``voila/templates/``),
whose landing page lists the tasks with what each is for."""
APP_FILE_TYPES = ("csv", "xlsx", "html", "json", "txt", "jsonl", "png", "svg", "pdf", "zip")
"""Files of the workspace that app mode lets a librarian open or download (outputs, never notebooks)."""


@dataclass(frozen=True)
class Prepared:
    """A prepared workspace: its folder, its notebooks, and what happened to each.

    Attributes:
        folder: the workspace.
        notebooks: the kit's notebooks in it.
        copied: those copied now (new, or updated from a newer kit version).
        kept: those the librarian changed in the workspace, kept as they are although the kit's copy changed.
    """

    folder: Path
    notebooks: tuple[Path, ...]
    copied: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()


MANIFEST = ".almatools-notebooks.json"
"""In the workspace: the digest of each notebook as the kit last copied it (to tell the librarian's edits)."""


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def running_as_root() -> bool:
    """True for the superuser (containers, VMs, many library servers), where Jupyter wants --allow-root."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


def prepare_workspace(folder: Path, notebooks: Path) -> Prepared:
    """Create the workspace and put the kit's notebooks in it.

    The notebooks are *copied*, so that running and saving them in Lab never writes outputs into the
    kit's checkout. A copy the librarian has not changed follows the kit (a newer version after a
    ``git pull`` replaces it); a copy they changed is kept, and reported in ``kept``.

    Raises:
        ConfigError: the workspace cannot be written, or the notebook folder has no notebooks.
    """
    found = sorted(notebooks.glob("*.ipynb"))
    if not found:
        raise ConfigError(f"No notebooks in {notebooks}: give the kit's notebooks folder (--notebooks DIR).")
    manifest_path = folder / MANIFEST
    try:
        folder.mkdir(parents=True, exist_ok=True)
        manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.is_file() else {}
    except (OSError, ValueError) as err:
        raise ConfigError(f"Cannot use the workspace {folder} ({err}): choose another with --workspace DIR "
                          "or ALMATOOLS_WORKSPACE.") from err
    placed, copied, kept = [], [], []
    try:
        for source in found:
            target = folder / source.name
            new = _digest(source)
            if target.is_symlink():
                target.unlink()  # an earlier kit linked the notebooks; copies keep the checkout clean
            if target.exists():
                current = _digest(target)
                if current != new:
                    if current == manifest.get(source.name):
                        shutil.copyfile(source, target)
                        copied.append(source.name)
                    else:
                        kept.append(source.name)
                        placed.append(target)
                        continue
            else:
                shutil.copyfile(source, target)
                copied.append(source.name)
            manifest[source.name] = new
            placed.append(target)
        atomic_write(manifest_path, (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode("utf-8"))
    except OSError as err:
        raise ConfigError(f"Cannot put the notebooks into the workspace {folder} ({err}).") from err
    return Prepared(folder, tuple(placed), tuple(copied), tuple(kept))


def _flags(extra: list[str], name: str) -> bool:
    return any(arg == name or arg.startswith(name + "=") for arg in extra)


def lab_command(folder: Path, *, port: int = LAB_PORT, allow_root: bool = False, open_browser: bool = True,
                extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The JupyterLab command line: on ``folder``, on 127.0.0.1, with the kit's settings.

    ``allow_root`` adds ``--allow-root`` (JupyterLab exits "Running as root is not recommended" without
    it when started by root).
    """
    extra = list(extra)
    command = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={folder}", f"--LabApp.app_settings_dir={LAB_SETTINGS}",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if not _flags(extra, "--port") and not _flags(extra, "--ServerApp.port"):
        command.append(f"--port={port}")
    if not _flags(extra, "--ip") and not _flags(extra, "--ServerApp.ip"):
        command.append("--ServerApp.ip=127.0.0.1")
    if allow_root and not _flags(extra, "--allow-root"):
        command.append("--allow-root")
    if not open_browser and not _flags(extra, "--no-browser"):
        command.append("--no-browser")
    return command + extra


def app_command(folder: Path, *, port: int = APP_PORT, open_browser: bool = True,
                extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The Voila command line: the workspace's notebooks as pages with no code, on 127.0.0.1.

    Voila's own page at ``/`` lists the notebooks (the landing page); ``/voila/render/NAME.ipynb`` is one
    task's page. Tracebacks are not shown to staff (the panels say what went wrong in words), and the
    workspace's output files can be opened through ``/voila/files/`` (never the notebooks or code).
    """
    extra = list(extra)
    # A list trait takes one item per flag (the list form is deprecated in traitlets 5).
    command = [sys.executable, "-m", "voila", str(folder), f"--port={port}", "--Voila.ip=127.0.0.1",
               f"--VoilaConfiguration.file_allowlist=.*\\.({'|'.join(APP_FILE_TYPES)})",
               "--VoilaConfiguration.file_denylist=.*\\.(ipynb|py)",
               "--VoilaConfiguration.file_denylist=(^|.*/)\\..*",
               "--VoilaConfiguration.show_tracebacks=False", "--theme=light",
               # the kit's template (found through JUPYTER_PATH, see APP_JUPYTER_PATH): the landing page
               "--template=almatools", "--VoilaConfiguration.classic_tree=True"]
    if not open_browser:
        command.append("--no-browser")
    return command + extra
