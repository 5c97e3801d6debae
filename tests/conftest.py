"""Shared fixtures: one sandbox for the whole run, on a free loopback port, with a synthetic institution.

The sandbox is started lazily, once, and its URL and key are put into the environment so that notebook
kernels (nbval, papermill) started later inherit them. The network is limited to loopback.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from almatools.client import AlmaClient

SANDBOX_USERS = 5000
SANDBOX_SEED = 7

_state: dict = {}

# Property tests explore new examples on every developer run. CI (HYPOTHESIS_PROFILE=ci, set by .ci/run)
# draws the same examples every time, so a landing never turns on a newly drawn case; cases found locally
# are fixed and then kept as explicit examples.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def _loopback_only() -> None:
    """Refuse any connection that leaves this machine (tests must never reach a real Alma)."""
    original = socket.socket.connect

    def connect(self, address):  # noqa: ANN001
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host = str(address[0])
            if not (host.startswith("127.") or host in ("localhost", "::1")):
                raise OSError(f"tests may only connect to loopback, not {host}")
        return original(self, address)

    socket.socket.connect = connect


def shared_sandbox():
    """Start (once) the run's sandbox and publish it to the environment for notebook kernels."""
    if "server" not in _state:
        from almatools.sandbox import start_sandbox

        root = Path(tempfile.mkdtemp(prefix="almatools-test-"))
        server = start_sandbox(root / "sandbox", users=SANDBOX_USERS, seed=SANDBOX_SEED, per_second=0, daily_limit=0)
        _state.update(server=server, root=root)
        # ALMATOOLS_DATA/sandbox is where the kit looks for the sandbox's files (SIS extract, ground truth)
        # ALMATOOLS_WORKSPACE: the notebooks' default outputs go to the run's folder, not the checkout's work/
        os.environ.update(ALMA_BASE_URL=server.base_url, ALMA_API_KEY=server.api_key, ALMATOOLS_DATA=str(root),
                          ALMATOOLS_WORKSPACE=str(root / "work"))
    return _state["server"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-integration", action="store_true",
                     help="also run the tests marked integration, against the live Alma of ALMA_API_KEY")


def pytest_configure(config: pytest.Config) -> None:
    # The run's own parse cache (notebook kernels inherit it): never the user's, and gone at the end.
    _state["cache"] = tempfile.mkdtemp(prefix="almatools-cache-")
    os.environ["ALMATOOLS_CACHE"] = _state["cache"]
    if not config.getoption("--run-integration"):
        _loopback_only()


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--run-integration"):
        skip = pytest.mark.skip(reason="live Alma: run with --run-integration and ALMA_API_KEY set")
        for item in items:
            if "integration" in item.keywords:
                item.add_marker(skip)
    # Notebook cells run in a kernel of their own: it must find the sandbox in its environment at start.
    if any(str(item.fspath).endswith(".ipynb") for item in items):
        shared_sandbox()


def pytest_unconfigure(config: pytest.Config) -> None:
    if "server" in _state:
        _state["server"].stop()
        shutil.rmtree(_state["root"], ignore_errors=True)
    if "cache" in _state:
        shutil.rmtree(_state["cache"], ignore_errors=True)
    _state.clear()


@pytest.fixture(scope="session")
def sandbox():
    """The run's sandbox server (knobs at rest: no latency, faults or limits)."""
    return shared_sandbox()


@pytest.fixture(scope="session")
def sandbox_dir(sandbox) -> Path:
    """The sandbox's data folder: ``sis_extract.zip``, ``ground_truth.csv``, ``institution.json``."""
    return Path(sandbox.data_dir)


@pytest.fixture
def knobs(sandbox) -> Iterator:
    """The sandbox's fault knobs, put back to rest after the test."""
    saved = dict(vars(sandbox.knobs))
    yield sandbox.knobs
    for name, value in saved.items():
        setattr(sandbox.knobs, name, value)


@pytest.fixture
def client(sandbox) -> Iterator[AlmaClient]:
    """A client of the run's sandbox with a fast throttle and short back-off."""
    with AlmaClient(api_key=sandbox.api_key, base_url=sandbox.base_url, per_second=500, backoff=0.01) as alma:
        yield alma
