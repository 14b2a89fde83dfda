"""`myo render`: watch any myo28 motion as a video, gif or contact sheet."""

from __future__ import annotations

from pathlib import Path

import typer

from myocli.cli.numbers import MAX_FPS, number
from myocli.cli.outputs import check_outputs, input_stem


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise typer.BadParameter(f"{text!r}: write WIDTHxHEIGHT, e.g. 640x480", param_hint="--size") from exc
    if not (16 <= width <= 4096 and 16 <= height <= 4096):
        raise typer.BadParameter(f"{text!r}: each side must be 16 to 4096 pixels", param_hint="--size")
    return width, height


def render(
    inputs: list[str] = typer.Argument(..., help="Motions: a .npy (T, 28, 3) or (T, 84), or a myo28 .h5 as FILE.h5:INDEX or FILE.h5:NAME. Several render side by side."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Output: .mp4 (H.264), .gif, or .png (a contact sheet of 8 frames). Default: NAME.mp4 after the first input."),
    index: int | None = number(None, "--index", low=0, help="Sequence of an .h5 input given without :INDEX or :NAME (default 0)."),
    fps: float | None = number(None, "--fps", low=1, high=MAX_FPS, help="Frame rate of the motion and the video (default: the dataset's, else 20)."),
    size: str = typer.Option("640x480", "--size", help="Size of each panel, WIDTHxHEIGHT."),
    camera: str = typer.Option("follow", "--camera", help="follow (keeps the body in frame on long walks) or fixed."),
    caption: list[str] | None = typer.Option(None, "--caption", help="Text drawn on a panel (repeat once per input; default: the dataset's text, or the file name)."),
    renderer: str = typer.Option("auto", "--renderer", help="auto (MuJoCo, else pybullet), mujoco (needs OpenGL: EGL or OSMesa) or pybullet (software, slower)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the output if it exists."),
) -> None:
    """Render motions to video: a shaded body on a checkered floor, left limbs blue, right orange.

    Example: myo render datasets/pybullet.h5:3 datasets/pybullet.h5:4 -o compare.mp4 --caption truth --caption generated
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from myocli.data.motion_input import load_motion, parse_spec
    from myocli.render.api import CAMERAS, RENDERERS, check_output, render_motion

    width, height = _size(size)
    output = output or Path(input_stem(inputs[0], index) + ".mp4")
    if camera not in CAMERAS:
        raise typer.BadParameter(f"{camera!r}: use follow or fixed", param_hint="--camera")
    if renderer not in RENDERERS:
        raise typer.BadParameter(f"{renderer!r}: use auto, mujoco or pybullet", param_hint="--renderer")
    check_output(output)
    check_outputs([output], overwrite, inputs=[parse_spec(spec, index)[0] for spec in inputs])
    if caption and len(caption) != len(inputs):
        raise typer.BadParameter(f"{len(caption)} caption(s) for {len(inputs)} input(s): give one per input", param_hint="--caption")
    motions = [load_motion(spec, index) for spec in inputs]
    rate = fps or next((m.fps for m in motions if m.fps), 20.0)
    frames = max(len(m.motion) for m in motions)
    total = 8 if output.suffix.lower() == ".png" else frames
    from rich.console import Console

    console = Console(stderr=True)
    with Progress(TextColumn("rendering"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, transient=True, disable=not console.is_terminal) as progress:  # fmt: skip
        task = progress.add_task("", total=min(total, frames))
        render_motion(
            [m.motion for m in motions], output, fps=rate, size=(width, height), camera=camera,
            captions=caption or [m.caption for m in motions], on_frame=lambda _t: progress.advance(task), renderer=renderer,
        )  # fmt: skip
    shown = f"a sheet of {min(8, frames)} of {frames} frames" if output.suffix.lower() == ".png" else f"{frames} frames at {rate:g} fps"
    typer.echo(f"Wrote {output} ({shown}, {len(motions)} panel(s))")
