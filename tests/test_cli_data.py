"""`myo data convert|inspect` as a user runs them: outputs, exit codes, and one-line errors for bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import assert_clean_failure, myo

from myocli import skeleton as sk


def test_help_version_and_usage_errors():
    top = myo("--help")
    assert top.returncode == 0 and "data" in top.stdout and "Example" in top.stdout
    data = myo("data", "--help")
    assert "convert" in data.stdout and "inspect" in data.stdout
    assert myo("--version").stdout.startswith("myo ")
    usage = myo("data", "convert", "@pybullet")  # no -o
    assert usage.returncode == 2


def test_convert_pybullet_then_inspect_json(tmp_path, pybullet_motions):
    out = tmp_path / "pb.h5"
    result = myo("data", "convert", "@pybullet", "-o", str(out), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["sequences"] == 15 and summary["failures"] == []
    facts = json.loads(myo("data", "inspect", str(out), "--json").stdout)
    assert facts["sequences"] == 15 and facts["fps"] == 20.0 and facts["skeleton"] == "myo28"
    assert facts["max_bone_deviation_m"] < 1e-3 and abs(facts["lowest_foot_height_m"]) < 0.02
    assert facts["nonfinite_values"] == 0 and len(facts["joint_names"]) == 28
    assert 1.5 < facts["standing_head_height_m"]["median"] < 1.75
    human = myo("data", "inspect", str(out))
    assert human.returncode == 0 and "standing head" in human.stdout and "humanoid3d" in human.stdout
    again = myo("data", "convert", "@pybullet", "-o", str(out))
    assert_clean_failure(again, "already exists", "--overwrite")


@pytest.fixture
def bad_inputs(tmp_path, shared_data) -> dict[str, Path]:
    """One broken file of each kind, made from real clips."""
    files = {}
    bvh = (shared_data / "cmu/bvh/02_01.bvh").read_text()
    files["truncated_bvh"] = tmp_path / "truncated.bvh"
    files["truncated_bvh"].write_text(bvh[: len(bvh) * 2 // 3])
    amc_dir = tmp_path / "amc"
    amc_dir.mkdir()
    shutil.copy(shared_data / "cmu/asf_amc/11.asf", amc_dir / "11.asf")
    lines = (shared_data / "cmu/asf_amc/11_01.amc").read_text(encoding="latin-1").splitlines()
    frame3 = lines.index("3")
    del lines[frame3 + 5]  # one bone line of frame 3
    files["amc_missing_bone"] = amc_dir / "11_01.amc"
    files["amc_missing_bone"].write_text("\n".join(lines), encoding="latin-1")
    files["h5_78"] = tmp_path / "seventy_eight.h5"
    with h5py.File(files["h5_78"], "w") as handle:
        handle["motion"] = np.zeros((1, 10, 78), np.float32)
        handle["lengths"] = np.array([10], np.int32)
        handle.create_dataset("text", data=["a person"], dtype=h5py.string_dtype())
    nan = np.repeat(sk.rest_pose()[None], 10, axis=0)
    nan[4, 3, 0] = np.nan
    files["nan_npy"] = tmp_path / "nan.npy"
    np.save(files["nan_npy"], nan)
    files["unknown"] = tmp_path / "motion.fbx"
    files["unknown"].write_bytes(b"\x00" * 64)
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    shutil.copy(shared_data / "cmu/asf_amc/11_01.amc", lonely / "11_01.amc")
    files["no_skeleton"] = lonely / "11_01.amc"
    return files


@pytest.mark.parametrize(
    "case, fragments",
    [
        ("truncated_bvh", ["truncated.bvh", "truncated or damaged"]),
        ("amc_missing_bone", ["11_01.amc", "frame 3 is missing bone"]),
        ("h5_78", ["seventy_eight.h5", "78 features", "84"]),
        ("nan_npy", ["nan.npy", "NaN", "frame 4"]),
        ("unknown", ["motion.fbx", "unknown format"]),
        ("no_skeleton", ["11_01.amc", "no skeleton file", "--skeleton"]),
    ],
)
def test_bad_input_gives_one_clear_error_and_no_output(bad_inputs, tmp_path, case, fragments):
    out = tmp_path / "out" / "result.h5"
    result = myo("data", "convert", str(bad_inputs[case]), "-o", str(out), "--text", "a person moves", "--strict")
    assert_clean_failure(result, *fragments)
    assert not out.exists() and not (out.parent.exists() and any(out.parent.iterdir()))
    # Without --strict the clip is reported by name and, as nothing converted, nothing is written.
    lenient = myo("data", "convert", str(bad_inputs[case]), "-o", str(out), "--text", "a person moves")
    assert lenient.returncode == 1 and bad_inputs[case].name in lenient.stderr
    assert not out.exists()


def test_a_bad_clip_among_good_ones_is_reported_and_skipped(bad_inputs, tmp_path, pybullet_motions):
    out = tmp_path / "mixed.h5"
    result = myo("data", "convert", "@pybullet", str(bad_inputs["truncated_bvh"]), "-o", str(out), "--json")
    assert result.returncode == 0
    summary = json.loads(result.stdout)
    assert summary["sequences"] == 15 and summary["failures"][0]["file"].endswith("truncated.bvh")
    assert "Skipped" in result.stderr and "truncated.bvh" in result.stderr


def test_inspect_refuses_non_myo28_and_damaged_files(tmp_path, bad_inputs):
    assert_clean_failure(myo("data", "inspect", str(bad_inputs["h5_78"])), "78 features")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"garbage" * 100)
    assert_clean_failure(myo("data", "inspect", str(junk)), "junk.h5", "not a readable HDF5 file")
    assert_clean_failure(myo("data", "inspect", str(tmp_path / "absent.h5")), "absent.h5", "no such file")


def test_debug_mode_shows_the_traceback(tmp_path):
    env = {**os.environ, "MYO_DEBUG": "1"}
    result = subprocess.run([sys.executable, "-m", "myocli", "data", "inspect", str(tmp_path / "absent.h5")],
                            capture_output=True, text=True, env=env)  # fmt: skip
    assert result.returncode != 0 and "Traceback" in result.stderr
