"""``almatools report`` from an installed wheel, outside the checkout: the scheduled command needs no notebook."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest
from _report_data import AS_OF, runs

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_report_command_runs_from_an_installed_wheel_outside_the_checkout(institution, tmp_path):
    source = tmp_path / "source"  # a copy: building in the checkout would leave build/ behind in it
    shutil.copytree(ROOT / "almatools", source / "almatools", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(source), "-w", str(wheels)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = wheels.glob("almatools-*.whl")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    target = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                 check=True, capture_output=True, text=True).stdout.strip())
    # The dependencies come from this environment's site-packages, appended after the new venv's own (a .pth
    # line only adds a path: the checkout's editable-install hook there is not run).
    (target / "deps.pth").write_text("\n".join([sysconfig.get_paths()["purelib"], *site.getsitepackages()]) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
                   check=True, capture_output=True, timeout=300)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    where = subprocess.run([python, "-c", "import almatools; print(almatools.__file__)"], cwd=work, env=env,
                           check=True, capture_output=True, text=True).stdout.strip()
    assert Path(where).is_relative_to(target) and not Path(where).is_relative_to(ROOT), where
    script = env_dir / "bin" / "almatools"
    assert script.read_text().splitlines()[0] == f"#!{python}"  # the command runs the wheel's interpreter
    out = work / "reports"
    done = subprocess.run([env_dir / "bin" / "almatools", "report", "--out", str(out), "--quiet", "--today",
                           AS_OF.isoformat(), "--users", str(institution / "users_export.zip"), "--sis",
                           str(institution / "sis_extract.zip")], cwd=work, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    (run,) = runs(out)
    assert (run / "report.html").stat().st_size > 10_000 and (run / "report.xlsx").is_file()
    assert f"Report {run.name}:" in done.stdout
