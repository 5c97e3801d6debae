"""Set up almatools on first use, then run it.  Standard library only.

    ./kit lab [ARGS]     the sandbox (unless ALMA_API_KEY is set) and JupyterLab on the workspace work/
                         (port 8888, sandbox 8990; as root it passes --allow-root to JupyterLab itself;
                         ARGS: --port N, --sandbox-port N, --no-browser, ...: see ./kit lab --help)
    ./kit app [ARGS]     the same notebooks as apps with no code (Voila, port 8866), landing page at /
    ./kit test [ARGS]    the whole test suite (ARGS go to pytest)
    ./kit setup          only the setup: .venv, the pip packages, Debian's Chromium and Java

The pip packages come from the ``pip:`` section of environment.yml (so conda users and everyone
else install the same thing); a stamp file skips the install until that file or pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
STAMP = VENV / ".almatools-installed"
DEBIAN_PACKAGES = {"chromium": "chromium", "default-jre-headless": "java"}
"""Debian package -> the command that shows it is there."""


def say(message: str) -> None:
    print(f"[kit] {message}", flush=True)


def pip_requirements() -> list[str]:
    """The entries under ``- pip:`` in environment.yml."""
    lines = (ROOT / "environment.yml").read_text(encoding="utf-8").splitlines()
    reqs: list[str] = []
    in_pip = False
    pip_indent = 0
    for line in lines:
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        if stripped in ("- pip:", "-pip:"):
            in_pip, pip_indent = True, indent
            continue
        if in_pip:
            if indent <= pip_indent or not stripped.startswith("-"):
                in_pip = False
                continue
            reqs.extend(shlex.split(stripped[1:].strip()))
    if not reqs:
        sys.exit("[kit] environment.yml has no pip: section to install from")
    return reqs


def venv_python() -> Path:
    return VENV / "bin" / "python"


def ensure_venv() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this script runs before anything checks the interpreter
        sys.exit(f"[kit] Python 3.11 or newer is needed; this is {sys.version.split()[0]}")
    if not venv_python().exists():
        say(f"creating {VENV}")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    reqs = pip_requirements()
    digest = hashlib.sha256()
    for name in ("environment.yml", "pyproject.toml"):
        digest.update((ROOT / name).read_bytes())
    fingerprint = digest.hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == fingerprint:
        return
    say("installing the Python packages (first use, or the dependencies changed)")
    subprocess.run([str(venv_python()), "-m", "pip", "install", "--upgrade", "pip"], check=True, cwd=ROOT)
    subprocess.run([str(venv_python()), "-m", "pip", "install", *reqs], check=True, cwd=ROOT)
    STAMP.write_text(fingerprint)


def ensure_debian_packages() -> None:
    """Debian's Chromium drives the browser tests (Playwright's own browser download is not used), and a Java
    runtime runs the Spark backend's test of the duplicate linkage."""
    missing = [package for package, command in DEBIAN_PACKAGES.items()
               if not (shutil.which(command) or Path("/usr/bin", command).exists())]
    if not missing:
        return
    if not shutil.which("apt-get"):
        sys.exit(f"[kit] the tests need {', '.join(missing)}; install them with your system's package manager")
    prefix = [] if os.geteuid() == 0 else (["sudo"] if shutil.which("sudo") else None)
    if prefix is None:
        sys.exit(f"[kit] the tests need Debian's {' '.join(missing)}: run `apt-get install {' '.join(missing)}` as root")
    say(f"installing Debian's {', '.join(missing)} for the browser and Spark tests")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run([*prefix, "apt-get", "update", "-q"], check=True, env=env)
    subprocess.run([*prefix, "apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], check=True, env=env)


def main(argv: list[str]) -> int:
    command, rest = (argv[0], argv[1:]) if argv else ("help", [])
    if command in ("help", "-h", "--help"):
        print(__doc__)
        return 0
    if command not in ("lab", "app", "test", "setup"):
        print(__doc__)
        return 2
    ensure_venv()
    if command in ("test", "setup"):
        ensure_debian_packages()
    bindir = VENV / "bin"
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}", VIRTUAL_ENV=str(VENV))
    os.chdir(ROOT)
    if command == "setup":
        say("ready")
        return 0
    if command in ("lab", "app"):
        args = [str(venv_python()), "-m", "almatools", command, *rest]
    else:
        args = [str(venv_python()), "-m", "pytest", *rest]
    os.execve(args[0], args, env)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
