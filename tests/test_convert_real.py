"""Converting every real clip in ../shared/data and pybullet: the myo28 invariants and known facts."""

from __future__ import annotations

import numpy as np
import pytest

from myocli import skeleton as sk
from myocli.data import convert as conv
from myocli.data.inspect import standing_frames
from myocli.errors import MyoError

J = sk.JOINT_INDEX
SOURCES = ["hdm05", "cmu", "deepmimic", "bandai_namco_1", "bandai_namco_2", "pybullet"]


@pytest.fixture(scope="module")
def converted(shared_data, pybullet_motions) -> dict[str, list]:
    """Every clip of every source, converted once for the whole module."""
    result = {}
    for source in SOURCES:
        target = "@pybullet" if source == "pybullet" else str(shared_data / source)
        report = conv.convert(conv.expand_sources([target]), conv.ConvertOptions())
        assert not report.failures, report.failures[:3]
        result[source] = report.sequences
    return result


def _by_name(sequences, fragment):
    picked = [s for s in sequences if fragment in s.name]
    assert picked, f"no clip named like {fragment!r}"
    return picked


@pytest.mark.parametrize("source", SOURCES)
def test_every_clip_has_the_myo28_invariants(converted, source):
    sequences = converted[source]
    assert len(sequences) >= {"hdm05": 233, "bandai_namco_1": 141, "bandai_namco_2": 140, "pybullet": 15}.get(source, 6)
    for seq in sequences:
        motion = seq.motion.astype(np.float64)
        assert motion.shape[1:] == (28, 3) and np.isfinite(motion).all(), seq.name
        # Canonical proportions: every bone within 1 mm of the table in every frame.
        assert np.abs(sk.bone_lengths(motion) - sk.CANONICAL_BONE_LENGTHS).max() < 1e-3, seq.name
        # Feet on the floor: the lowest foot point over the clip within 2 cm of y=0.
        assert abs(motion[:, sk.FOOT_CONTACT_JOINTS, 1].min()) < 0.02, seq.name
        # Facing +Z at frame 0, root above the origin.
        np.testing.assert_allclose(sk.facing_directions(motion[0]), [0, 0, 1], atol=1e-5, err_msg=seq.name)
        np.testing.assert_allclose(motion[0, 0, [0, 2]], [0, 0], atol=1e-5, err_msg=seq.name)
        standing = standing_frames(motion)
        if standing.any():
            head = motion[standing, J["head"], 1].max()  # the most upright standing frame
            assert 1.5 <= head <= 1.75, (seq.name, head)
        assert seq.captions and all(c.strip() for c in seq.captions), seq.name


@pytest.mark.parametrize("source", SOURCES)
def test_left_and_right_are_not_mirrored(converted, source):
    """A wrong-handed conversion makes the computed facing point backwards: then the toes point
    backwards and the body travels backwards. Check toes for all but sprints (whose feet point
    down and back most of the time) and travel for everything that moves along."""
    checked = 0
    for seq in converted[source]:
        if any(word in seq.name for word in ("crawl", "getup", "lieDown", "roll", "walk-back", "cartwheel")):
            continue  # on hands and knees, lying, or walking backwards: the feet or travel point elsewhere
        facing = sk.facing_directions(seq.motion)
        velocity = np.diff(seq.motion[:, J["pelvis"]], axis=0) * 20.0 * [1, 0, 1]
        speed = np.median(np.linalg.norm(velocity, axis=-1))
        if speed > 0.5 and any(word in seq.name for word in ("walk", "run", "jog", "dash", "sneak")):
            assert np.median((velocity * facing[1:]).sum(-1)) > 0.3 * speed, seq.name
            checked += 1
        if speed < 2.0:
            toes = ((seq.motion[:, J["left_foot"]] - seq.motion[:, J["left_ankle"]]) * facing).sum(-1)
            assert np.median(toes) > 0.02, seq.name
            checked += 1
    assert checked >= 6


def test_sources_have_humanlike_standing_height(converted):
    standing_heads = [
        s.motion[standing_frames(s.motion), J["head"], 1].max()
        for source in SOURCES for s in converted[source] if standing_frames(s.motion).any()
    ]  # fmt: skip
    assert len(standing_heads) > 200  # the check above is not vacuous


def test_hdm05_squat_drops_the_pelvis(converted):
    for seq in _by_name(converted["hdm05"], "squat1Reps"):
        pelvis = seq.motion[:, J["pelvis"], 1]
        assert pelvis.max() - pelvis.min() > 0.25, seq.name


def test_hdm05_left_kick_raises_the_left_foot(converted):
    for seq in _by_name(converted["hdm05"], "kickLFront1Reps"):
        left, right = seq.motion[:, J["left_foot"], 1].max(), seq.motion[:, J["right_foot"], 1].max()
        assert left > 0.4 and left > right + 0.2, (seq.name, left, right)


def test_hdm05_right_hand_reaches_high(converted):
    for seq in _by_name(converted["hdm05"], "grabHighR"):
        right, left = seq.motion[:, J["right_hand"], 1].max(), seq.motion[:, J["left_hand"], 1].max()
        assert right > seq.motion[:, J["right_shoulder"], 1].max() and right > left + 0.1, (seq.name, right, left)


def test_bandai_left_hand_raise(converted):
    """raise-up-left-hand: the left hand goes above the head and the right does not (normal style)."""
    for seq in _by_name(converted["bandai_namco_2"], "raise-up-left-hand_normal"):
        head = seq.motion[:, J["head"], 1]
        assert (seq.motion[:, J["left_hand"], 1] > head).any(), seq.name
        assert not (seq.motion[:, J["right_hand"], 1] > head).any(), seq.name


def test_cmu_soccer_kick_and_walk(converted):
    kick = _by_name(converted["cmu"], "11_01")[0].motion
    assert kick[:, J["right_foot"], 1].max() > kick[:, J["left_foot"], 1].max() + 0.3
    walk = _by_name(converted["cmu"], "02_01")[0].motion
    assert walk[-1, J["pelvis"], 2] > 1.0  # walks forward (+Z) more than a metre


def test_cmu_bvh_and_amc_of_the_same_trial_agree(converted):
    """01_01 exists as BVH and as ASF/AMC: both converters must give the same motion."""
    bvh, amc = (s.motion for s in converted["cmu"] if s.name == "01_01")
    frames = min(len(bvh), len(amc))
    # Root-relative poses (the BVH has one more leading frame, 1/120 s).
    rel = lambda m: m[:frames] - m[:frames, :1]
    error = np.linalg.norm(rel(bvh) - rel(amc), axis=-1).mean()
    assert error < 0.05, error


def test_deepmimic_kick_uses_the_right_leg_and_backflip_leaves_the_ground(converted):
    kick = _by_name(converted["pybullet"], "humanoid3d_kick")[0].motion
    assert kick[:, J["right_foot"], 1].max() > 1.0 > kick[:, J["left_foot"], 1].max()
    flip = _by_name(converted["pybullet"], "humanoid3d_backflip")[0].motion
    assert flip[:, sk.FOOT_CONTACT_JOINTS, 1].min(axis=1).max() > 0.4  # both feet high in the air


def test_mirror_and_split_keep_recordings_together(shared_data, tmp_path):
    from myocli.data.h5 import read_dataset

    options = conv.ConvertOptions(mirror=True)
    report = conv.convert(conv.expand_sources([str(shared_data / "bandai_namco_2")]), options)
    assert len(report.sequences) == 280
    written = conv.write_outputs(tmp_path / "b.h5", report.sequences, 20.0, (0.8, 0.1, 0.1), seed=3)
    splits = {name: read_dataset(path) for name, path in written.items()}
    groups = {name: {s.group for s in ds.sequences} for name, ds in splits.items()}
    assert not (groups["train"] & groups["val"]) and not (groups["train"] & groups["test"]) and not (groups["val"] & groups["test"])
    assert sum(len(ds) for ds in splits.values()) == 280
    train = {s.name: s for s in splits["train"].sequences}
    original = next(s for s in train.values() if "wave-left-hand" in s.name and not s.name.endswith("_mirror"))
    mirrored = train[f"{original.name}_mirror"]
    assert "right hand" in mirrored.captions[0] and "left hand" in original.captions[0]
    np.testing.assert_allclose(mirrored.motion, sk.mirror(original.motion), atol=1e-6)
    # The same seed gives the same split.
    again = conv.split_by_group(report.sequences, (0.8, 0.1, 0.1), seed=3)
    assert [s.name for s in again["test"]] == [s.name for s in splits["test"].sequences]


def test_labels_caption_pieces_of_a_clip_and_play_clips_backwards(shared_data, tmp_path):
    """labels.csv rows with start/end cut a turn out of a long walk; reverse plays a lie-down as a get-up."""
    walk = shared_data / "deepmimic" / "long" / "humanoid3d_long_walk1.txt"
    lie = shared_data / "hdm05" / "amc" / "HDM_bd_lieDownFloor_001_120.amc"
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "file,text,start,end,reverse,skeleton\n"
        f"{walk},a person walks around,,,,\n"
        f"{walk},a person turns left,8.5,11.5,,\n"
        f"{lie},a person gets up,,,1,{shared_data / 'hdm05' / 'asf' / 'HDM_bd.asf'}\n"
    )
    report = conv.convert([walk, lie], conv.ConvertOptions(labels=labels, mirror=True, strict=True))
    by_name = {s.name: s for s in report.sequences}
    assert sorted(by_name) == sorted(["humanoid3d_long_walk1", "humanoid3d_long_walk1_mirror", "humanoid3d_long_walk1@8.5-11.5",
                                      "humanoid3d_long_walk1@8.5-11.5_mirror", "HDM_bd_lieDownFloor_001_120_reversed",
                                      "HDM_bd_lieDownFloor_001_120_reversed_mirror"])  # fmt: skip
    turn, whole = by_name["humanoid3d_long_walk1@8.5-11.5"], by_name["humanoid3d_long_walk1"]
    assert len(turn) == 60 and turn.captions == ["a person turns left"] and turn.group == whole.group
    # The piece starts facing forward like any clip and ends facing about 130 degrees to its left (+X).
    across = turn.motion[:, J["left_hip"]] - turn.motion[:, J["right_hip"]]
    facing = np.cross(across, [0.0, 1.0, 0.0])
    facing /= np.linalg.norm(facing, axis=-1, keepdims=True)
    assert facing[0, 2] > 0.9 and facing[-1, 0] > 0.5 and facing[-1, 2] < -0.4
    assert by_name["humanoid3d_long_walk1@8.5-11.5_mirror"].captions == ["a person turns right"]
    # Backwards: starts lying (head near the floor), ends standing; the whole lie-down is not kept (no caption of its own).
    up = by_name["HDM_bd_lieDownFloor_001_120_reversed"].motion[:, J["head"], 1]
    assert up[:5].mean() < 0.3 and up[-5:].mean() > 1.5


def test_labels_pieces_outside_the_clip_are_refused_by_file(shared_data, tmp_path):
    walk = shared_data / "deepmimic" / "long" / "humanoid3d_long_walk1.txt"
    labels = tmp_path / "labels.csv"
    labels.write_text(f"file,text,start,end\n{walk},a person turns,30,40\n")
    with pytest.raises(MyoError, match=r"humanoid3d_long_walk1\.txt: labels ask for 30-40 s of clip .* which lasts 32\.79 s"):
        conv.convert_file(walk, conv.ConvertOptions(labels=labels))
    labels.write_text(f"file,text,start,end\n{walk},a person turns,5,2\n")
    conv.cap.read_sidecar.cache_clear()
    with pytest.raises(MyoError, match=r"labels.csv: unreadable labels file \(start 5 s and end 2 s .*the end must come after"):
        conv.convert_file(walk, conv.ConvertOptions(labels=labels))
    # A piece starting after the clip's end (backwards or not) is refused the same way.
    labels.write_text(f"file,text,start,end,reverse\n{walk},a person gets up,40,,1\n")
    conv.cap.read_sidecar.cache_clear()
    with pytest.raises(MyoError, match=r"labels ask for 40 s to the end of clip .* which lasts 32\.79 s"):
        conv.convert_file(walk, conv.ConvertOptions(labels=labels))
