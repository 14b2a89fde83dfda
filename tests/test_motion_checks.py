"""The geometric checks of benchmarks/motion_checks.py pass on real clips of their motion, and not on a squat."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from motion_checks import CHECKS, check  # noqa: E402

REAL = {  # check: pybullet's DeepMimic clips of that motion
    "walk": "walk", "jog": "run", "run": "run", "jump": "jump", "cartwheel": "cartwheel", "backflip": "backflip",
    "crawl": "crawl", "get up": "getup_faceup", "kick": "kick", "punch": "punch", "turn": "spinkick",
}  # fmt: skip


@pytest.fixture(scope="module")
def clips(pybullet_motions):
    from myocli.data.convert import ConvertOptions, convert_file

    return {name: convert_file(pybullet_motions / f"humanoid3d_{name}.txt", ConvertOptions(loop=4.0))[0].motion
            for name in set(REAL.values())}  # fmt: skip


def test_every_motion_has_a_check():
    assert set(REAL) == set(CHECKS)


@pytest.mark.parametrize("motion", sorted(REAL))
def test_check_passes_on_a_real_clip_of_its_motion(motion, clips):
    assert check(motion, clips[REAL[motion]], 20.0)


def test_checks_fail_on_standing_still(clips, shared_data):
    from myocli.data.convert import ConvertOptions, convert_file

    squat = convert_file(shared_data / "hdm05" / "amc" / "HDM_bd_squat1Reps_001_120.amc", ConvertOptions())[0].motion
    assert [m for m in CHECKS if check(m, squat, 20.0)] == []
