"""`myo export`: a myo28 motion as BVH for animation tools."""

from __future__ import annotations

from pathlib import Path

import typer

from myocli.cli.numbers import MAX_FPS, number
from myocli.cli.outputs import check_outputs
from myocli.errors import MyoError


def export(
    motion: str = typer.Argument(..., help="A .npy (T, 28, 3) or (T, 84), or a myo28 .h5 as FILE.h5:INDEX or FILE.h5:NAME."),
    bvh: Path = typer.Option(..., "--bvh", help="Output .bvh file (centimetres, Y up, myo28 hierarchy)."),
    index: int | None = number(None, "--index", low=0, help="Sequence of an .h5 input given without :INDEX or :NAME (default 0)."),
    fps: float | None = number(None, "--fps", low=1, high=MAX_FPS, help="Frame rate of a .npy motion (default 20; an .h5 says its own)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the output if it exists."),
) -> None:
    """Export a motion as BVH: joint rotations solved by inverse kinematics on the myo28 hierarchy.

    Example: myo export datasets/pybullet.h5:3 --bvh cartwheel.bvh   (then File > Import > BVH in Blender)
    """
    from myocli.data.bvh_export import write_bvh
    from myocli.data.motion_input import load_motion, parse_spec

    check_outputs([bvh], overwrite, inputs=[parse_spec(motion, index)[0]], option="--bvh", suffixes=(".bvh",), contents="BVH")
    source = load_motion(motion, index)
    if source.fps and fps and abs(source.fps - fps) > 1e-6:
        raise MyoError(f"{motion} is at {source.fps:g} fps; --fps only applies to .npy motions (resample with `myo data convert --fps`)")
    rate = source.fps or fps or 20.0
    write_bvh(bvh, source.motion, rate)
    typer.echo(f"Wrote {bvh} ({len(source.motion)} frames at {rate:g} fps, {len(source.motion) / rate:.1f} s)")
