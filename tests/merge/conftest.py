"""Fixtures of the merge tests: synthetic Alma users and a small saved worklist."""

from __future__ import annotations

from pathlib import Path

import pytest
from merge_data import STANDARD_CLUSTERS, STANDARD_SIS, STANDARD_USERS, alma_user, clusters_frame

from almatools import merge
from almatools.quality.frame import users_frame


@pytest.fixture
def make_user():
    return alma_user


@pytest.fixture
def standard_worklist(tmp_path: Path) -> merge.Worklist:
    """Pairs P0001 L2→S1 (hard: staff role), P0002 L1→S1 (soft: loans), P0003 OLD→NEW, P0004 A→B; c3 held."""
    return merge.propose(clusters_frame(STANDARD_CLUSTERS), users_frame(STANDARD_USERS), STANDARD_SIS,
                         folder=tmp_path / "worklist")
