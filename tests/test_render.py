"""`myo render` and `render_motion` on real clips: files that decode, a body in every frame, clean errors."""

from __future__ import annotations

import importlib.util

import imageio.v2 as imageio
import numpy as np
import pytest
from helpers import assert_clean_failure, myo

from myocli import skeleton as sk
from myocli.data.h5 import read_dataset
from myocli.render.api import render_frames, render_motion

if importlib.util.find_spec("mujoco") is None:  # not importorskip: importing mujoco picks its GL backend
    pytest.skip("mujoco is not installed", allow_module_level=True)
SIZE = (160, 120)


def limb_pixels(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the limb colours: blue (left limbs) and orange (right); the floor and sky are grey/pale."""
    r, g, b = (frame[..., k].astype(int) for k in range(3))
    return (b - r > 60) & (b - g > 30), (r - b > 80) & (r - g > 30)


def body_pixels(frame: np.ndarray) -> np.ndarray:
    """Mask of either limb colour."""
    blue, orange = limb_pixels(frame)
    return blue | orange


@pytest.fixture(scope="module")
def clips(motion_sets):
    train, val = read_dataset(motion_sets["train"]), read_dataset(motion_sets["val"])
    pick = lambda d, part: next(s for s in d.sequences if part in s.name)  # noqa: E731
    def excursion(s):
        return np.linalg.norm(s.motion[:, 0, [0, 2]] - s.motion[0, 0, [0, 2]], axis=-1).max()

    longest = max((s for s in val.sequences if "long" in s.name), key=excursion)
    return {"walk": pick(train, "walk"), "backflip": pick(train, "backflip"), "long_walk": longest}


def test_mp4_gif_and_png_decode_with_the_right_frames_and_size(clips, tmp_path):
    walk = clips["walk"]
    frames = len(walk.motion)
    mp4 = render_motion(walk.motion, tmp_path / "walk.mp4", size=SIZE, captions=[walk.captions[0]])
    video = imageio.mimread(mp4, memtest=False)
    assert len(video) == frames and video[0].shape == (SIZE[1], SIZE[0], 3)
    gif = imageio.mimread(render_motion(walk.motion, tmp_path / "walk.gif", size=SIZE))
    assert len(gif) == frames and gif[0].shape[:2] == (SIZE[1], SIZE[0])
    sheet = imageio.imread(render_motion(walk.motion, tmp_path / "walk.png", size=SIZE))
    assert sheet.shape[:2] == (2 * SIZE[1], 4 * SIZE[0])  # 8 frames in 2 rows
    for frame in (video[0], video[-1], gif[frames // 2]):
        assert frame.std() > 10 and body_pixels(frame).sum() > 50  # not blank: a body on a floor


def test_side_by_side_panels_each_hold_a_body(clips, tmp_path):
    pair = [clips["walk"].motion, clips["backflip"].motion]
    video = imageio.mimread(render_motion(pair, tmp_path / "pair.mp4", size=SIZE, captions=["walk", "backflip"]))
    assert len(video) == max(len(m) for m in pair) and video[0].shape == (SIZE[1], 2 * SIZE[0], 3)
    for frame in video[:: max(1, len(video) // 6)]:
        assert body_pixels(frame[:, : SIZE[0]]).sum() > 30 and body_pixels(frame[:, SIZE[0] :]).sum() > 30


def test_follow_camera_keeps_a_long_walk_in_frame(clips):
    walk = clips["long_walk"].motion
    excursion = np.linalg.norm(walk[:, 0, [0, 2]] - walk[0, 0, [0, 2]], axis=-1).max()
    assert len(walk) > 300 and excursion > 3.5  # far enough that a camera left at the start loses it
    for t, frame in enumerate(render_frames([walk], size=SIZE, camera="follow")):
        mask = body_pixels(frame)
        assert mask.sum() > 30, f"no body in frame {t}"
        columns = np.flatnonzero(mask.any(axis=0))
        assert columns.min() > 2 and columns.max() < SIZE[0] - 3, f"body cut at the edge in frame {t}"


def test_bad_input_gives_one_clear_error_and_no_output(motion_sets, tmp_path):
    out = tmp_path / "out.mp4"
    assert_clean_failure(myo("render", f"{motion_sets['train']}:9999", "-o", str(out)), "index 9999 is out of range")
    assert_clean_failure(myo("render", f"{motion_sets['train']}:no_such_clip", "-o", str(out)), "'no_such_clip'", "train.h5", "myo data inspect")
    np.save(tmp_path / "short.npy", np.zeros((5, 27, 3)))
    assert_clean_failure(myo("render", str(tmp_path / "short.npy"), "-o", str(out)), "(5, 27, 3)", "(T, 28, 3)")
    assert_clean_failure(myo("render", f"{motion_sets['train']}:0", "-o", str(tmp_path / "out.avi")), "unknown output type '.avi'")
    (tmp_path / "motion.txt").write_text("1 2 3")
    assert_clean_failure(myo("render", str(tmp_path / "motion.txt"), "-o", str(out)), "motion.txt", ".npy")
    assert not out.exists() and not (tmp_path / "out.avi").exists()
    assert not list(tmp_path.glob(".*tmp*"))
    ok = myo("render", f"{motion_sets['train']}:0", "-o", str(tmp_path / "ok.png"), "--size", "160x120")
    assert ok.returncode == 0 and (tmp_path / "ok.png").is_file()


def test_pybullet_fallback_draws_the_same_scene(clips, tmp_path):
    walk = clips["walk"]
    frames = list(render_frames([walk.motion], size=SIZE, renderer="pybullet"))
    assert len(frames) == len(walk.motion) and frames[0].shape == (SIZE[1], SIZE[0], 3)
    assert all(body_pixels(f).sum() > 30 for f in frames)
    from myocli.axes import to_mujoco
    from myocli.render.api import AZIMUTH, ELEVATION, open_renderer

    renderer = open_renderer("pybullet", *SIZE)
    far = to_mujoco(walk.motion[0]) + np.array([100.0, 0.0, 0.0])  # the body 100 m away from where the camera looks
    empty = renderer.render(far, np.array([0.0, 0.0, 0.9]), 3.3, AZIMUTH, ELEVATION)
    renderer.close()
    assert body_pixels(empty).sum() < 5  # the floor itself has no limb colours


def raised_left_arm() -> np.ndarray:
    """The rest pose with the left arm raised up and out to the side: the left shoulder turned 160
    degrees about the forward axis (+Z), which swings the hanging arm from -Y towards +X (left)."""
    angle = np.radians(160.0)
    rotations = np.broadcast_to(np.eye(3), (sk.NUM_JOINTS, 3, 3)).copy()
    rotations[sk.JOINT_INDEX["left_shoulder"]] = [[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]]
    positions, _ = sk.forward_kinematics(np.zeros(3), rotations)
    positions[:, 1] -= positions[:, 1].min()
    return positions


def empty_scene(renderer_name: str) -> np.ndarray:
    """What the follow camera sees around a body standing at the origin, with the body 100 m away."""
    from myocli.axes import to_mujoco
    from myocli.render.api import AZIMUTH, ELEVATION, FOLLOW_DISTANCE, LOOKAT_HEIGHT, open_renderer

    renderer = open_renderer(renderer_name, *SIZE)
    try:
        far = to_mujoco(sk.rest_pose()) + np.array([100.0, 0.0, 0.0])
        return renderer.render(far, np.array([0.0, 0.0, LOOKAT_HEIGHT]), FOLLOW_DISTANCE, AZIMUTH, ELEVATION)
    finally:
        renderer.close()


@pytest.mark.parametrize("renderer", ["mujoco", "pybullet"])
def test_a_raised_left_hand_is_drawn_above_the_head_on_the_image_right(renderer):
    """Left is left: a body drawn mirrored (left and right swapped) must fail this.

    The camera looks at the character's front (its azimuth points the view against the body's
    facing, MuJoCo's +x), so, as when facing a person, the character's left is on the image's right."""
    from myocli.render.api import AZIMUTH

    assert np.cos(np.radians(AZIMUTH)) < 0  # the view direction opposes the facing: a front view
    rest, raised = sk.rest_pose(), raised_left_arm()
    hand, head = raised[sk.JOINT_INDEX["left_hand"]], raised[sk.JOINT_INDEX["head"]]
    assert hand[1] > head[1] + 0.3 and hand[0] > 0.3  # the pose: left hand 0.43 m above the head joint, 0.39 m to the left

    # Both poses stand at the origin, so the follow camera is the same for both frames.
    rest_frame, raised_frame = render_frames([np.stack([rest, raised])], size=SIZE, renderer=renderer)
    body = np.abs(rest_frame.astype(int) - empty_scene(renderer)).max(axis=-1) > 20
    head_top = np.flatnonzero(body.any(axis=1)).min()  # arms down: the head is the highest thing
    head_column = np.nonzero(body[head_top : head_top + 4])[1].mean()

    blue, orange = (mask[:head_top] for mask in limb_pixels(raised_frame))  # what is drawn above the head
    # Measured at 160x120: 75 (MuJoCo) and 68 (pybullet) blue pixels above the head, no orange,
    # centred 14 pixels right of the head's centre; mirrored, they sit 14 pixels left of it.
    assert blue.sum() > 30 and orange.sum() == 0, (blue.sum(), orange.sum())
    assert np.nonzero(blue)[1].mean() > head_column + 5, (np.nonzero(blue)[1].mean(), head_column)


def test_pybullet_fallback_draws_what_mujoco_draws(clips):
    """The fallback's picture is MuJoCo's: same camera, same side, same colours, frame for frame.

    Measured on these four frames of the walk at 160x120: the left (blue) and right (orange) limb
    masks of the two renderers overlap with IoU 0.67-0.74; the mirrored walk drawn by pybullet
    overlaps MuJoCo's with 0.00-0.04 (and at most 0.23 over frames of four pybullet clips)."""
    walk = clips["walk"].motion
    mirrored = walk * np.array([-1.0, 1.0, 1.0])  # x negated: the same walk seen in a mirror
    picks = np.linspace(0, len(walk) - 1, 4).round().astype(int)

    def iou(a, b):
        return (a & b).sum() / max((a | b).sum(), 1)

    def overlap(first, second):
        """Mean IoU of the blue masks and of the orange masks: a mirror image overlaps in neither."""
        return np.mean([iou(a, b) for a, b in zip(limb_pixels(first), limb_pixels(second), strict=True)])

    mujoco = list(render_frames([walk], size=SIZE, renderer="mujoco", frame_indices=picks))
    fallback = list(render_frames([walk, mirrored], size=SIZE, renderer="pybullet", frame_indices=picks))
    for t, reference, both in zip(picks, mujoco, fallback, strict=True):
        same, mirror = both[:, : SIZE[0]], both[:, SIZE[0] :]
        assert overlap(reference, same) > 0.5, f"frame {t}: pybullet's body is not where MuJoCo's is"
        assert overlap(reference, mirror) < 0.3, f"frame {t}: the overlap cannot tell a mirror image"


def test_auto_falls_back_when_mujoco_has_no_gl(motion_sets, tmp_path):
    out = tmp_path / "fallback.png"
    result = myo("render", f"{motion_sets['train']}:0", "-o", str(out), "--size", "160x120", env={"MUJOCO_GL": "no-such-backend"})
    assert result.returncode == 0, result.stderr
    assert "Falling back to pybullet" in result.stderr and out.is_file()
    forced = myo("render", f"{motion_sets['train']}:0", "-o", str(tmp_path / "x.png"), "--renderer", "mujoco",
                 env={"MUJOCO_GL": "no-such-backend"})  # fmt: skip
    assert_clean_failure(forced, "MuJoCo cannot be used here")
    assert not (tmp_path / "x.png").exists()


def test_input_specs_and_default_names(tmp_path, motion_sets):
    from pathlib import Path

    from myocli.cli.outputs import input_stem
    from myocli.data.motion_input import load_motion, parse_spec
    from myocli.errors import MyoError

    assert parse_spec("a/take.v2.h5:3") == (Path("a/take.v2.h5"), 3)
    assert parse_spec("DATA.HDF5:-1") == (Path("DATA.HDF5"), -1)
    assert parse_spec("walk.npy", None) == (Path("walk.npy"), None)
    assert parse_spec("a/walks.h5:02_01") == (Path("a/walks.h5"), "02_01")
    assert Path(input_stem("a/take.v2.h5:3") + ".mp4") == Path("take.v2_3.mp4")  # the default names of render's outputs
    assert Path(input_stem("walks.h5:02_01") + ".mp4") == Path("walks_02_01.mp4")
    # A sequence by name is the same motion as by its index, caption and all.
    dataset = read_dataset(motion_sets["train"])
    third = dataset.sequences[3]
    by_name = load_motion(f"{motion_sets['train']}:{third.name}")
    by_index = load_motion(f"{motion_sets['train']}:3")
    assert np.array_equal(by_name.motion, by_index.motion) and by_name.caption == by_index.caption == third.captions[0]
    with pytest.raises(MyoError, match=f"no sequence named 'nope' in .*train.h5 \\(it has: {dataset.sequences[0].name}, "):
        load_motion(f"{motion_sets['train']}:nope")
    with pytest.raises(MyoError, match="not both"):
        parse_spec("x.h5:2", 5)
    (tmp_path / "empty.npy").write_bytes(b"")
    with pytest.raises(MyoError, match="empty.npy"):
        load_motion(str(tmp_path / "empty.npy"))
    np.save(tmp_path / "words.npy", np.array([["a"] * 3] * 28 * 2).reshape(2, 28, 3))
    with pytest.raises(MyoError, match="holds <U1"):
        load_motion(str(tmp_path / "words.npy"))


def test_rendering_then_training_in_one_process(tmp_path):
    """Generators render and keep using torch; with a CUDA build of torch, Triton loaded after
    Mesa's GL used to crash the process (scene._choose_gl loads it first)."""
    import subprocess
    import sys

    script = (
        "import numpy as np, torch\n"
        "from myocli import skeleton as sk\n"
        "from myocli.render.api import render_frames\n"
        "frames = list(render_frames([np.repeat(sk.rest_pose()[None], 2, 0)], size=(64, 48)))\n"
        "model = torch.nn.Linear(4, 4)\n"
        "model(torch.randn(8, 4)).sum().backward()\n"
        "torch.optim.AdamW(model.parameters()).step()\n"
        "print('ok', len(frames))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok 2", result.stderr[-2000:]
