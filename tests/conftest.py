"""Shared fixtures: where the real mocap lives, converted copies of it built once per run, and what the demo's tests need."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import TINY_LM, TINY_TOKENIZER, myo, ok

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


# CI has the data: there (MYO_REQUIRE_DATA=1, set in .ci/run) a missing input fails the tests that
# need it instead of skipping them. Likewise CI installs the demo extra and Chromium for its slow step:
# there (MYO_REQUIRE_DEMO=1) a test of `myo demo`'s server, API or page fails when they are missing.
def _missing(what: str, variable: str = "MYO_REQUIRE_DATA") -> None:
    if os.environ.get(variable, "") not in ("", "0"):
        pytest.fail(f"{what}, and {variable} is set")
    pytest.skip(what)


def _require(path: Path) -> Path:
    if not path.exists():
        _missing(f"real mocap not found at {path} (the project's ../shared/data)")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return _require(SHARED_DATA)


@pytest.fixture(scope="session")
def pybullet_motions() -> Path:
    try:
        import pybullet_data
    except ImportError:
        _missing("pybullet_data is not installed (pip install pybullet)")
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


@pytest.fixture()
def tiny_tokenizer_config(tmp_path) -> Path:
    """A tokenizer small enough to train for a few steps in a test, as a user's own YAML file."""
    path = tmp_path / "tiny_test.yaml"
    path.write_text(TINY_TOKENIZER)
    return path


@pytest.fixture(scope="session")
def cmu_walk(shared_data):
    """A real walk on myo28 (CMU subject 2's 02_01, 2.9 s), converted once."""
    from myocli.data.convert import ConvertOptions, convert_file

    return convert_file(shared_data / "cmu" / "bvh" / "02_01.bvh", ConvertOptions())[0]


@pytest.fixture(scope="session")
def cmu_walk_h5(tmp_path_factory, cmu_walk) -> Path:
    """The same walk as a one-sequence dataset file."""
    from myocli.data.h5 import write_dataset

    path = tmp_path_factory.mktemp("walk") / "walk.h5"
    write_dataset(path, [cmu_walk], 20.0)
    return path


@pytest.fixture(scope="module")
def walk_reference(cmu_walk_h5):
    """The real walk as the simulated humanoid's reference (rl/reference.py), built once per test module."""
    from myocli.data.h5 import read_dataset
    from myocli.rl import reference as rf

    sequence = read_dataset(cmu_walk_h5)[0]
    return rf.build(sequence.motion, 20.0, sequence.name)


@pytest.fixture(scope="session")
def trained_tiny_tokenizer(tmp_path_factory, motion_sets) -> Path:
    """The tiny tokenizer trained once on pybullet's clips: a registry home holding tokenizer/tok@1."""
    root = tmp_path_factory.mktemp("tiny_tokenizer")
    (root / "tok.yaml").write_text(TINY_TOKENIZER)
    ok(myo("tokenizer", "train", "--data", str(motion_sets["train"]), "--config", str(root / "tok.yaml"), "--name", "tok",
           env={"MYO_HOME": str(root / "home")}))  # fmt: skip
    return root / "home"


@pytest.fixture(scope="session")
def tiny_lm_tokens(tmp_path_factory, motion_sets, trained_tiny_tokenizer) -> dict[str, Path]:
    """Token files of the train and val clips made once by the tiny tokenizer (valid in any registry
    holding a copy of it: add_tiny_tokenizer), and the tiny LM recipe as a YAML file."""
    root = tmp_path_factory.mktemp("tiny_lm_tokens")
    paths = {"config": root / "lm.yaml", "train": root / "train_tokens.h5", "val": root / "val_tokens.h5"}
    paths["config"].write_text(TINY_LM)
    for split in ("train", "val"):
        ok(myo("tokenizer", "encode", "tok", "--data", str(motion_sets[split]), "-o", str(paths[split]),
               env={"MYO_HOME": str(trained_tiny_tokenizer)}))  # fmt: skip
    return paths


@pytest.fixture(scope="session")
def gradio():
    """Gradio and its client, from the demo extra."""
    try:
        import gradio
        import gradio_client  # noqa: F401
    except ImportError:
        _missing('gradio is not installed (pip install -e ".[demo]")', "MYO_REQUIRE_DEMO")
    return gradio


@pytest.fixture(scope="session")
def chromium() -> dict[str, str]:
    """Headless Chromium for the demo's browser test: Debian's `chromium` and `chromium-driver`, driven by selenium."""
    import shutil

    browser = next((shutil.which(name) for name in ("chromium", "chromium-browser") if shutil.which(name)), None)
    driver = shutil.which("chromedriver")
    try:
        import selenium  # noqa: F401
    except ImportError:
        _missing('selenium is not installed (pip install -e ".[dev]")', "MYO_REQUIRE_DEMO")
    if browser is None or driver is None:
        _missing("Chromium and its driver are not installed (apt-get install chromium chromium-driver)", "MYO_REQUIRE_DEMO")
    return {"browser": browser, "driver": driver}
