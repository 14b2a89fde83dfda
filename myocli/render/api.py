"""`render_motion`: myo28 motions -> .mp4 / .gif / .png (a contact sheet), one panel per motion.

The generators call this; `myo render` is a thin wrapper. Several motions are drawn side by
side, each with its own camera and label (say ground truth next to generated).
"""

from __future__ import annotations

import errno
import os
import signal
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing, suppress
from pathlib import Path

import numpy as np

from myocli import skeleton as sk
from myocli.atomic import atomic_path
from myocli.errors import MyoError

FORMATS = (".mp4", ".gif", ".png")
RENDERERS = ("auto", "mujoco", "pybullet")
CAMERAS = ("follow", "fixed")
SHEET_FRAMES = 8  # frames on a .png contact sheet, in 2 rows
AZIMUTH = 150.0  # degrees: a front three-quarter view, from the character's right, of a body that starts facing +x (myo's +Z)
ELEVATION = -15.0
FOLLOW_DISTANCE = 3.3
LOOKAT_HEIGHT = 0.9
FOVY_DEGREES = 45.0  # MuJoCo's default free camera


def check_output(path: Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise MyoError(f"{path}: unknown output type {suffix or '(none)'!r}; use .mp4, .gif or .png")
    return suffix


def _smooth(path: np.ndarray, frames: int) -> np.ndarray:
    """Centred moving average along time (edges padded), so a follow camera does not jitter."""
    from myocli.motion.stats import over_centred_window

    return path if len(path) < 3 else over_centred_window(path, frames)


def camera_path(joints: np.ndarray, mode: str, fps: float, aspect: float = 4 / 3) -> tuple[np.ndarray, float]:
    """Look-at point per frame (T, 3) and distance, for joints (T, 28, 3) in MuJoCo axes."""
    ground = joints[:, 0, :2]
    if mode == "follow":
        centre = _smooth(ground, max(1, int(fps)))  # one second
        distance = FOLLOW_DISTANCE
    elif mode == "fixed":
        low, high = joints[..., :2].reshape(-1, 2).min(0), joints[..., :2].reshape(-1, 2).max(0)
        centre = np.broadcast_to((low + high) / 2, ground.shape)
        half_extent = float(np.max(high - low)) / 2 + 1.0
        # The narrower of the two fields of view must hold the extent (portrait panels too).
        half_fov = min(np.radians(FOVY_DEGREES / 2), np.arctan(np.tan(np.radians(FOVY_DEGREES / 2)) * aspect))
        distance = max(FOLLOW_DISTANCE, half_extent / np.tan(half_fov))
    else:
        raise MyoError(f"--camera {mode!r}: use follow or fixed")
    lookat = np.concatenate([centre, np.full((len(centre), 1), LOOKAT_HEIGHT)], axis=1)
    return lookat, distance


def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def draw_text(frame: np.ndarray, lines: list[str]) -> np.ndarray:
    """Caption lines on a dark band at the top of the frame."""
    from PIL import Image, ImageDraw

    lines = [line for line in lines if line]
    if not lines:
        return frame
    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image, "RGBA")
    size = max(12, frame.shape[0] // 28)
    font = _font(size)
    wrapped = []
    for line in lines:
        words, current = line.split(), ""
        for word in words:
            trial = f"{current} {word}".strip()
            if draw.textlength(trial, font=font) > frame.shape[1] - 2 * size and current:
                wrapped.append(current)
                current = word
            else:
                current = trial
        wrapped.append(current)
    band = int(len(wrapped) * size * 1.3 + size * 0.6)
    draw.rectangle((0, 0, frame.shape[1], band), fill=(0, 0, 0, 150))
    for i, line in enumerate(wrapped):
        draw.text((size // 2, size * 0.3 + i * size * 1.3), line, font=font, fill=(255, 255, 255, 255))
    return np.asarray(image)


def open_renderer(name: str, width: int, height: int):
    """MuJoCo (fast, needs OpenGL: EGL or OSMesa), or pybullet's software TinyRenderer; `auto`
    tries MuJoCo and falls back with a warning."""
    import sys

    if name not in RENDERERS:
        raise MyoError(f"--renderer {name!r}: use auto, mujoco or pybullet")
    if name in ("auto", "mujoco"):
        from myocli.render.scene import BodyRenderer

        try:
            return BodyRenderer(width, height)
        except MyoError as exc:
            if name == "mujoco":
                raise
            sys.stderr.write(f"Warning: {exc}\nFalling back to pybullet's TinyRenderer (slower).\n")
    from myocli.render.tiny import TinyBodyRenderer

    return TinyBodyRenderer(width, height)


def render_frames(
    motions: Sequence[np.ndarray],
    fps: float = 20.0,
    size: tuple[int, int] = (640, 480),
    camera: str = "follow",
    captions: Sequence[str] | None = None,
    on_frame: Callable[[int], None] | None = None,
    frame_indices: Sequence[int] | None = None,
    renderer: str = "auto",
):
    """Yield frames (H, W * len(motions), 3) uint8; shorter motions hold their last pose."""
    from myocli.axes import to_mujoco

    width, height = size
    joints = [to_mujoco(sk.as_joints(m)) for m in motions]
    cameras = [camera_path(j, camera, fps, width / height) for j in joints]
    captions = list(captions or [""] * len(motions))
    total = max(len(j) for j in joints)
    renderer = open_renderer(renderer, width, height)
    try:
        for t in frame_indices if frame_indices is not None else range(total):
            panels = []
            for j, (lookat, distance), caption in zip(joints, cameras, captions, strict=True):
                k = min(t, len(j) - 1)
                frame = renderer.render(j[k], lookat[k], distance, AZIMUTH, ELEVATION)
                panels.append(draw_text(frame, [caption]))
            if on_frame:
                on_frame(t)
            yield np.concatenate(panels, axis=1)
    finally:
        renderer.close()


def render_motion(
    motions: np.ndarray | Sequence[np.ndarray],
    output: str | Path,
    fps: float = 20.0,
    size: tuple[int, int] = (640, 480),
    camera: str = "follow",
    captions: Sequence[str] | None = None,
    on_frame: Callable[[int], None] | None = None,
    renderer: str = "auto",
) -> Path:
    """Render one motion (T, 28, 3) or several side by side to .mp4, .gif or .png; returns the path.

    Written atomically: a failure leaves no file, and an existing file is only replaced on success.
    """
    output = Path(output)
    kind = check_output(output)
    if isinstance(motions, np.ndarray):
        motions = [motions]
    motions = [sk.as_joints(np.asarray(m, dtype=np.float64)) for m in motions]
    if not motions or any(len(m) == 0 for m in motions):
        raise MyoError(f"{output}: nothing to render (an empty motion)")
    width, height = size
    if width < 16 or height < 16 or (kind == ".mp4" and (width % 2 or height % 2)):
        raise MyoError(f"--size {width}x{height}: use at least 16x16, and even numbers for .mp4")
    total = max(len(m) for m in motions)
    options = dict(fps=fps, size=size, camera=camera, captions=captions, on_frame=on_frame, renderer=renderer)
    import imageio.v2 as imageio

    with atomic_path(output) as tmp:
        # Images are encoded in memory and written in one plain write: a refused write is then one
        # OSError (atomic_path names the output), not a Pillow writer failing again as it is collected.
        if kind == ".png":
            picks = np.linspace(0, total - 1, min(SHEET_FRAMES, total)).round().astype(int)
            frames = list(render_frames(motions, frame_indices=picks, **options))
            columns = max(1, (len(frames) + 1) // 2)  # two rows (one for a single frame), white padding
            frames += [np.full_like(frames[0], 255)] * (-len(frames) % columns)
            rows = [np.concatenate(frames[i : i + columns], axis=1) for i in range(0, len(frames), columns)]
            tmp.write_bytes(imageio.imwrite("<bytes>", np.concatenate(rows, axis=0), format="PNG"))
        elif kind == ".gif":
            frames = list(render_frames(motions, **options))
            tmp.write_bytes(imageio.mimwrite("<bytes>", frames, format="GIF", duration=1000.0 / fps, loop=0))
        else:
            with closing(render_frames(motions, **options)) as frames:  # the renderer closes even if ffmpeg stops early
                encode_mp4(frames, tmp, fps, (width * len(motions), height), output)
    return output


# H.264 at constant quality 15 (imageio's quality 7, which the videos were first made with).
MP4_OPTIONS = ["-an", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "15", "-f", "mp4"]


def encode_mp4(frames: Iterable[np.ndarray], tmp: Path, fps: float, size: tuple[int, int], output: Path) -> None:
    """Pipe RGB frames (H, W, 3) uint8 of `size` (W, H) into ffmpeg, writing an MP4 to `tmp`.

    ffmpeg is run here rather than through imageio's writer, which never looks at ffmpeg's exit
    status (a full disk gave a cut-off video and "Wrote ...") and lets ffmpeg print on the terminal.
    A failed encoder is a MyoError that names `output` (the real path, not `tmp`) and ffmpeg's reason.
    """
    import subprocess
    import tempfile
    from fractions import Fraction

    command = [_ffmpeg(output), "-hide_banner", "-nostats", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
               "-s", f"{size[0]}x{size[1]}", "-r", str(Fraction(fps).limit_denominator()), "-i", "-", *MP4_OPTIONS, str(tmp)]  # fmt: skip
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: a chatty ffmpeg never blocks on it
        try:
            # A session of its own: Ctrl-C in a terminal reaches only myo, which stops ffmpeg itself.
            process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log,
                                       bufsize=0, start_new_session=True)  # fmt: skip
        except OSError as exc:
            raise MyoError(f"cannot write {output}: the video encoder {command[0]} does not start ({exc.strerror or exc})") from exc
        try:
            complete = _feed(process, frames)
            status = process.wait()
        except BaseException:  # Ctrl-C, or a renderer that failed: no encoder is left running (nor half a video)
            process.kill()
            process.wait()
            raise
        log.seek(0)
        said = log.read().decode("utf-8", "replace").replace(str(tmp), str(output))
    _check_encoded(tmp, output, status, complete, said)


def _ffmpeg(output: Path) -> str:
    """The ffmpeg program: IMAGEIO_FFMPEG_EXE, else the one imageio-ffmpeg ships, else one on PATH."""
    from imageio_ffmpeg import get_ffmpeg_exe

    try:
        return get_ffmpeg_exe()
    except RuntimeError as exc:
        raise MyoError(f"cannot write {output}: no video encoder (ffmpeg) found ({exc}); pip install imageio-ffmpeg") from exc


def _feed(process, frames: Iterable[np.ndarray]) -> bool:
    """Write every frame to ffmpeg's input; False when ffmpeg stopped reading first (it has failed)."""
    try:
        for frame in frames:
            data = memoryview(np.ascontiguousarray(frame, dtype=np.uint8)).cast("B")
            while data:  # unbuffered, so nothing is left to flush into a dead pipe at exit
                data = data[process.stdin.write(data) :]
    except BrokenPipeError:
        return False
    finally:
        with suppress(OSError):
            process.stdin.close()
    return True


def _check_encoded(tmp: Path, output: Path, status: int, complete: bool, said: str) -> None:
    """A MyoError unless ffmpeg took every frame, exited with 0, and left what starts like an MP4."""
    if status != 0 or not complete:
        if status < 0:  # killed; SIGXFSZ: the video outgrew the file-size limit (`ulimit -f`)
            reason = os.strerror(errno.EFBIG) if -status == signal.SIGXFSZ else _last_line(said)
            how = f"was stopped by {signal.Signals(-status).name}"
        else:
            reason, how = _last_line(said), f"failed (exit status {status})"
        raise MyoError(f"cannot write {output}: the video encoder (ffmpeg) {how}: {reason}")
    with open(tmp, "rb") as video:
        head = video.read(8)
    if head[4:8] != b"ftyp":  # every MP4 starts with its file-type box
        raise MyoError(f"cannot write {output}: the video encoder (ffmpeg) reported success but wrote no MP4 video")


def _last_line(text: str) -> str:
    """ffmpeg's last message, without its `[component @ 0x...]` prefix: the reason it stopped."""
    import re

    lines = [re.sub(r"^(\[[^]]*\]\s*)+", "", line).strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    return lines[-1][:300] if lines else "it gave no reason"

