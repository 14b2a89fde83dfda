"""`myo export --bvh`: rotations by inverse kinematics, a BVH that reads back to the same positions."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_clean_failure, myo

from myocli import skeleton as sk
from myocli.data.h5 import read_dataset
from myocli.motion import ik
from myocli.rotations import euler_to_matrix, matrix_to_euler_zxy


def test_zxy_euler_round_trip():
    angles = np.random.default_rng(0).uniform(-85, 85, (200, 3))
    np.testing.assert_allclose(matrix_to_euler_zxy(euler_to_matrix(angles, "zxy")), angles, atol=1e-9)


def test_ik_rotations_rebuild_single_child_chains(motion_sets):
    motion = read_dataset(motion_sets["train"]).sequences[3].motion.astype(np.float64)
    root, local = ik.solve(motion)
    assert np.allclose(local @ local.transpose(0, 1, 3, 2), np.eye(3), atol=1e-9)  # proper rotations
    positions, world = sk.forward_kinematics(root, local)
    # Bone directions of single-child joints are reproduced exactly, e.g. every knee->ankle bone.
    for child in (sk.JOINT_INDEX["left_ankle"], sk.JOINT_INDEX["right_elbow"], sk.JOINT_INDEX["head"]):
        parent = sk.PARENTS[child]
        seen = motion[:, child] - motion[:, parent]
        made = positions[:, child] - positions[:, parent]
        cos = (seen * made).sum(-1) / np.linalg.norm(seen, axis=-1) / np.linalg.norm(made, axis=-1)
        assert cos.min() > 1 - 1e-9


@pytest.mark.parametrize("index", [0, 3, 20])
def test_bvh_round_trip_through_myo_data_convert(motion_sets, tmp_path, index):
    dataset = read_dataset(motion_sets["train"])
    original = dataset.sequences[index].motion
    bvh = tmp_path / "clip.bvh"
    result = myo("export", f"{motion_sets['train']}:{index}", "--bvh", str(bvh))
    assert result.returncode == 0, result.stderr
    assert bvh.read_text().startswith("HIERARCHY\nROOT pelvis")
    back_path = tmp_path / "back.h5"
    converted = myo("data", "convert", str(bvh), "-o", str(back_path), "--text", "round trip")
    assert converted.returncode == 0, converted.stderr
    back = read_dataset(back_path).sequences[0].motion
    assert back.shape == original.shape
    assert np.linalg.norm(back - original, axis=-1).mean() < 0.01  # the bar: 1 cm mean per joint


def test_export_bad_input(motion_sets, tmp_path):
    assert_clean_failure(myo("export", f"{motion_sets['train']}:0", "--bvh", str(tmp_path / "x.txt")), "must end in .bvh")
    np.save(tmp_path / "bad.npy", np.zeros((4, 27, 3)))
    assert_clean_failure(myo("export", str(tmp_path / "bad.npy"), "--bvh", str(tmp_path / "x.bvh")), "(4, 27, 3)")
    assert not (tmp_path / "x.bvh").exists() and not (tmp_path / "x.txt").exists()


def test_source_proportions_survive_and_angles_do_not_jump(shared_data, tmp_path):
    from pathlib import Path

    from myocli.data.bvh_export import write_bvh
    from myocli.data.convert import ConvertOptions, convert_file
    from myocli.data.converters.bvh import read_bvh

    options = ConvertOptions(text="walk", keep_proportions=True)
    clip = convert_file(shared_data / "cmu" / "bvh" / "02_01.bvh", options)[0].motion
    assert np.abs(sk.bone_lengths(clip).mean(0) - sk.CANONICAL_BONE_LENGTHS).max() > 0.02  # really not myo28's
    write_bvh(tmp_path / "walk.bvh", clip, 20.0)
    back = convert_file(Path(tmp_path / "walk.bvh"), options)[0].motion
    assert np.linalg.norm(back - clip, axis=-1).mean() < 0.002
    _, values, _ = read_bvh(tmp_path / "walk.bvh")
    assert np.abs(np.diff(values[:, 3:], axis=0)).max() < 90  # a walk at 20 fps: no 180/360-degree flips
