"""Shared fixtures: where the real mocap lives, and converted copies of it built once per run."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real mocap not found at {path} (the project's ../shared/data)")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return _require(SHARED_DATA)


@pytest.fixture(scope="session")
def pybullet_motions() -> Path:
    pybullet_data = pytest.importorskip("pybullet_data")
    return _require(Path(pybullet_data.getDataPath()) / "data" / "motions")
