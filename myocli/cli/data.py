"""`myo data`: convert real mocap into myo28 datasets, and look inside them."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from myocli.cli.numbers import MAX_FPS, SEED_MAX, number
from myocli.cli.outputs import all_or_none, check_free, check_not_inputs, check_suffix
from myocli.errors import MyoError

app = typer.Typer(
    help="Real mocap -> myo28 H5 datasets, and a look inside.\n\n"
    "Example: myo data convert ../shared/data/hdm05 --mirror --split 0.8,0.1,0.1 -o datasets/hdm05.h5",
    no_args_is_help=True,
)


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True)


@app.command()
def convert(
    sources: list[str] = typer.Argument(..., help="Clip files, folders, glob patterns, or @pybullet (pybullet's 15 DeepMimic clips)."),
    output: Path = typer.Option(..., "--output", "-o", help="Output .h5 file (with --split: OUT_train.h5, OUT_val.h5, OUT_test.h5)."),
    fps: float = number(20.0, "--fps", low=1, high=MAX_FPS, help="Frame rate of the output."),
    keep_proportions: bool = typer.Option(False, "--keep-proportions", help="Keep the source's bone lengths instead of the canonical myo28 ones."),
    mirror: bool = typer.Option(False, "--mirror", help="Also add a left/right mirrored copy of every clip (left/right swapped in its text too)."),
    text: str | None = typer.Option(None, "--text", help="Caption for clips that have none of their own (no labels.csv entry)."),
    skeleton: Path | None = typer.Option(None, "--skeleton", exists=True, dir_okay=False, help="ASF skeleton for every AMC clip (default: each clip's own, found beside it or in labels.csv)."),
    labels: Path | None = typer.Option(None, "--labels", exists=True, dir_okay=False, help="A labels.csv (file,text columns) to take captions from instead of the nearest one."),
    source_fps: float | None = number(None, "--source-fps", low=1, high=MAX_FPS, help="Frame rate of sources that do not say (.npy: 20, AMC: 120)."),
    scale: float | None = number(None, "--scale", above=0, help="Metres per BVH unit (default: inferred from the leg length)."),
    license_text: str | None = typer.Option(None, "--license", help="Licence to record for every clip (default: from the source's LICENSE file)."),
    loop: float = number(0.0, "--loop", low=0, help="Repeat clips their source marks as cycles (DeepMimic's Loop: wrap) until they last this many seconds."),
    split: str | None = typer.Option(None, "--split", help="Write train,val,test files by these fractions, split by recording, e.g. 0.8,0.1,0.1."),
    seed: int = number(0, "--seed", low=0, high=SEED_MAX, help="Seed of the split."),
    strict: bool = typer.Option(False, "--strict", help="Stop at the first bad clip instead of reporting it and going on."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace output files that already exist."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document with the outputs and failures on stdout."),
) -> None:
    """Convert mocap (BVH, ASF/AMC, DeepMimic, HumanML3D joints, .npy, myo28 H5) into a myo28 dataset.

    Example: myo data convert @pybullet ../shared/data/cmu/bvh -o datasets/demo.h5 --mirror
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from myocli.atomic import raise_if_interrupted
    from myocli.data import convert as conv
    from myocli.data.converters.myo28 import H5_EXTENSIONS

    try:
        fractions = conv.parse_split(split) if split else None
    except MyoError as exc:  # a bad option value is a usage error (exit 2)
        raise typer.BadParameter(str(exc).removeprefix(f"--split {split!r}: "), param_hint="--split") from exc
    targets = list(conv.split_paths(output, conv.SPLIT_NAMES).values()) if fractions else [output]
    paths = conv.expand_sources(sources)
    # A folder or pattern may hold the output itself (an earlier run's): it would be read and replaced.
    check_not_inputs(targets, [*paths, *(p for p in (skeleton, labels) if p is not None)])
    check_suffix(output, H5_EXTENSIONS, "a myo28 HDF5 dataset")
    check_free(targets, overwrite)
    options = conv.ConvertOptions(
        fps=fps, keep_proportions=keep_proportions, mirror=mirror, text=text, skeleton=skeleton, labels=labels,
        source_fps=source_fps, scale=scale, license=license_text, loop=loop, strict=strict,
    )  # fmt: skip
    console = _stderr_console()
    with Progress(
        TextColumn("converting"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
        TimeRemainingColumn(), console=console, transient=True, disable=not console.is_terminal,
    ) as progress:  # fmt: skip
        task = progress.add_task("", total=len(paths))

        def on_file(path: Path) -> None:
            progress.update(task, advance=1, description=path.name)
            raise_if_interrupted()  # a Ctrl-C that Python had to swallow stops the command here, not at the end

        report = conv.convert(paths, options, on_file=on_file)
    for _path, reason in report.failures:
        console.print(f"[yellow]Skipped[/] {reason}", highlight=False, soft_wrap=True)
    if report.uncaptioned:
        sys.stderr.write(_uncaptioned_warning(report.uncaptioned))
    if not report.sequences:
        raise MyoError(f"none of the {len(paths)} file(s) converted; nothing was written (reasons above)")
    with all_or_none(targets):  # with --split, never some of the three files
        written = conv.write_outputs(output, report.sequences, fps, fractions, seed)
    summary = {
        "outputs": {name: str(path) for name, path in written.items()},
        "files": report.files,
        "sequences": len(report.sequences),
        "failures": [{"file": str(p), "error": reason} for p, reason in report.failures],
        "uncaptioned": report.uncaptioned,
    }
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
        return
    frames = sum(len(s) for s in report.sequences)
    typer.echo(
        f"Converted {report.files - len(report.failures)} of {report.files} files into {len(report.sequences)} "
        f"sequences ({frames / fps / 60:.1f} min at {fps:g} fps)"
    )
    for name, path in written.items():
        typer.echo(f"  {name}: {path}")
    if report.failures:
        typer.echo(f"  {len(report.failures)} file(s) skipped (listed on stderr)")


def _uncaptioned_warning(names: list[str]) -> str:
    """The stderr line naming the sequences converted without a caption, and what they are good for."""
    shown = ", ".join(repr(name) for name in names[:5]) + (", ..." if len(names) > 5 else "")
    return (f"Warning: {len(names)} sequence(s) have no caption ({shown}) and were kept with an empty one: tokenizer and RL "
            "training use them, while SSM, language-model and retrieval training refuse them. To caption them, put a "
            "labels.csv (file,text columns) beside the clips or pass --text \"a person ...\"\n")  # fmt: skip


@app.command()
def inspect(
    file: Path = typer.Argument(..., help="A myo28 .h5 dataset."),
    as_json: bool = typer.Option(False, "--json", help="Print the facts as one JSON document on stdout."),
    samples: int = number(5, "--samples", low=0, help="How many captions to show."),
) -> None:
    """Summarise a myo28 dataset: sequences, lengths, captions, bone lengths, floor contact, bad values.

    Example: myo data inspect datasets/pybullet.h5 --json | jq .duration_s
    """
    from myocli.data.inspect import inspect_file

    facts = inspect_file(file, samples=samples)
    if as_json:
        sys.stdout.write(json.dumps(facts, indent=2) + "\n")
        return
    _print_inspection(facts)


def _print_inspection(facts: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    overview = Table(title=f"{facts['file']}", show_header=False, title_justify="left")
    length = facts["length_s"]
    standing = facts["standing_head_height_m"]
    rows = [
        ("format", f"{facts['format']} v{facts['format_version']}, skeleton {facts['skeleton']} ({len(facts['joint_names'])} joints)"),
        ("sequences", f"{facts['sequences']} from {facts['recordings']} recordings"),
        ("frames", f"{facts['frames']} at {facts['fps']:g} fps = {facts['duration_s'] / 60:.2f} min"),
        ("length", f"min {length['min']:.2f} s, median {length['median']:.2f} s, max {length['max']:.2f} s"),
        ("captions", f"{facts['captions']['total']} ({facts['captions']['unique']} unique)"),
        ("sources", ", ".join(f"{k} {v}" for k, v in facts["sources"].items())),
        ("licences", ", ".join(f"{k} {v}" for k, v in facts["licenses"].items())),
        ("bone lengths", f"largest deviation from myo28 {1000 * (facts['max_bone_deviation_m'] or 0):.2f} mm"),
        ("lowest foot", f"{100 * facts['lowest_foot_height_m']:.1f} cm (per sequence: max {100 * facts['lowest_foot_height_per_sequence_m']['max']:.1f} cm)"),
        ("lowest joint", f"{100 * (facts['lowest_joint_height_m'] or 0):.1f} cm"),
        ("standing head", f"median {standing['median']:.2f} m" if standing else "no standing frames"),
        ("NaN/Inf", f"{facts['nonfinite_values']} values in {facts['nonfinite_frames']} frames"),
    ]  # fmt: skip
    for key, value in rows:
        overview.add_row(key, value)
    console.print(overview)
    histogram = facts["length_histogram_s"]
    peak = max(histogram["counts"]) or 1
    lengths = Table(title="length distribution", title_justify="left", show_header=False, box=None)
    for lo, hi, count in zip(histogram["edges"], histogram["edges"][1:], histogram["counts"], strict=False):
        lengths.add_row(f"{lo:6.1f}-{hi:5.1f} s", "█" * max(0, round(30 * count / peak)), str(count))
    console.print(lengths)
    bones = Table(title="bone lengths (m)", title_justify="left")
    for column in ("bone", "canonical", "min", "max", "std"):
        bones.add_column(column, justify="left" if column == "bone" else "right")
    for name, b in facts["bone_length_m"].items():
        bones.add_row(name, f"{b['canonical']:.3f}", f"{b['min']:.3f}", f"{b['max']:.3f}", f"{b['std']:.4f}")
    console.print(bones)
    captions = Table(title="caption samples", title_justify="left")
    captions.add_column("sequence")
    captions.add_column("text")
    for sample in facts["captions"]["samples"]:
        captions.add_row(sample["name"], sample["text"])
    console.print(captions)
