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


@pytest.fixture(scope="session")
def motion_sets(tmp_path_factory, pybullet_motions, shared_data) -> dict[str, Path]:
    """Real clips converted once: pybullet's 15 DeepMimic clips (and mirrors) to train on,
    the shared DeepMimic clips to validate on, a few HDM05 clips as held-out actors."""
    from myocli.data.convert import ConvertOptions, convert, expand_sources
    from myocli.data.h5 import write_dataset

    folder = tmp_path_factory.mktemp("motion_sets")
    sources = {
        "train": (["@pybullet"], True),
        "val": ([str(shared_data / "deepmimic")], False),
        "test": (sorted(str(p) for p in (shared_data / "hdm05" / "amc").glob("HDM_mm_*.amc"))[:6], False),
    }
    paths = {}
    for name, (inputs, mirror) in sources.items():
        report = convert(expand_sources(inputs), ConvertOptions(mirror=mirror))
        paths[name] = folder / f"{name}.h5"
        write_dataset(paths[name], report.sequences, 20.0)
    return paths


TINY_TOKENIZER = """\
model:
  width: 32
  depth: 1
  codebook_size: 32
  code_dim: 16
train:
  window: 16
  batch_size: 8
  max_steps: 6
  learning_rate: 1.0e-3
  warmup_steps: 0
  lr_schedule: constant
  log_every: 1
  eval_every: 3
  save_every: 2
"""


@pytest.fixture()
def tiny_tokenizer_config(tmp_path) -> Path:
    """A tokenizer small enough to train for a few steps in a test, as a user's own YAML file."""
    path = tmp_path / "tiny_test.yaml"
    path.write_text(TINY_TOKENIZER)
    return path
