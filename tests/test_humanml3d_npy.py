"""HumanML3D joints with crop times, plain .npy myo28 arrays, keep-proportions and H5 merging."""

from __future__ import annotations

import numpy as np

from myocli import skeleton as sk
from myocli.data import convert as conv
from myocli.data.h5 import write_dataset


def test_humanml3d_folder_with_crops_and_mirrored_copy(tmp_path, cmu_walk):
    joints, texts = tmp_path / "HumanML3D/new_joints", tmp_path / "HumanML3D/texts"
    joints.mkdir(parents=True)
    texts.mkdir()
    smpl22 = cmu_walk.motion[:, :22] * 1.1  # a different body size, as HumanML3D's skeleton is
    np.save(joints / "000001.npy", smpl22)
    np.save(joints / "M000001.npy", sk.mirror(cmu_walk.motion)[:, :22])
    (texts / "000001.txt").write_text(
        "a person walks forward#a/DET person/NOUN#0.0#0.0\n"
        "someone walks straight ahead#someone/PRON#0.0#0.0\n"
        "a person takes a step#a/DET#1.0#2.5\n"
    )
    report = conv.convert(conv.expand_sources([str(tmp_path / "HumanML3D")]), conv.ConvertOptions(text="a person walks"))
    assert not report.failures
    by_name = {s.name: s for s in report.sequences}
    whole, crop, mirrored = by_name["000001"], by_name["000001_1-2.5s"], by_name["M000001"]
    assert whole.captions == ["a person walks forward", "someone walks straight ahead"]
    assert len(whole) == len(cmu_walk.motion) and len(crop) == 30  # (2.5 - 1.0) s at 20 fps
    assert crop.captions == ["a person takes a step"]
    assert whole.group == crop.group == mirrored.group == "000001"
    assert np.abs(sk.bone_lengths(crop.motion) - sk.CANONICAL_BONE_LENGTHS).max() < 1e-3
    # The crop is that stretch of the clip (turned to face +Z on its own): same distances to the pelvis.
    dist = lambda m: np.linalg.norm(m - m[:, :1], axis=-1)
    np.testing.assert_allclose(dist(crop.motion), dist(whole.motion[20:50]), atol=2e-3)


def test_npy_round_trip_is_unchanged(tmp_path, cmu_walk):
    """A normalised myo28 motion converts to itself: retargeting is idempotent."""
    flat = tmp_path / "flat.npy"
    np.save(flat, cmu_walk.motion.reshape(len(cmu_walk.motion), 84))
    again = conv.convert_file(flat, conv.ConvertOptions(text="a person walks"))[0]
    np.testing.assert_allclose(again.motion, cmu_walk.motion, atol=1e-5)


def test_keep_proportions_keeps_source_bones(shared_data):
    clip = shared_data / "cmu/bvh/131_01.bvh"
    kept = conv.convert_file(clip, conv.ConvertOptions(keep_proportions=True))[0].motion
    canonical = conv.convert_file(clip, conv.ConvertOptions())[0].motion
    femur = sk.BONE_NAMES.index("left_hip->left_knee")
    source_femur = np.linalg.norm([2.49329, -6.85026, 0.0]) * 0.0254 / 0.45  # LeftKnee OFFSET, CMU units
    assert abs(sk.bone_lengths(kept)[:, femur].mean() - source_femur) < 2e-3
    assert sk.bone_lengths(kept)[:, femur].std() < 1e-3  # still a rigid bone
    assert np.abs(sk.bone_lengths(canonical) - sk.CANONICAL_BONE_LENGTHS).max() < 1e-3


def test_h5_inputs_merge_and_resample(tmp_path, cmu_walk, pybullet_motions):
    first = tmp_path / "walk.h5"
    write_dataset(first, [cmu_walk])
    pybullet = conv.convert(conv.expand_sources(["@pybullet"]), conv.ConvertOptions()).sequences
    second = tmp_path / "pb.h5"
    write_dataset(second, pybullet)
    merged = conv.convert(conv.expand_sources([str(first), str(second)]), conv.ConvertOptions(fps=30.0))
    assert len(merged.sequences) == 16
    resampled = next(s for s in merged.sequences if s.name == cmu_walk.name)
    assert abs(len(resampled) - (len(cmu_walk) - 1) * 1.5 - 1) <= 1
    assert resampled.captions == cmu_walk.captions
