"""`myo data convert`: find clips, read each with its converter, retarget, caption, split, write.

Sources are files, folders (searched recursively for clips) and glob patterns, plus the alias
`@pybullet` for the 15 DeepMimic humanoid clips inside the pybullet wheel. A clip that fails
is reported by name with its reason and skipped; with `strict` the first failure stops the
run. A clip with no caption at all is kept with an empty one, and listed in the report (the
tokenizer and RL training need no caption; the trainers that do refuse such a set, naming them).
Nothing is written unless at least one clip converted, and every file is written atomically.
"""

from __future__ import annotations

import glob
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from myocli import skeleton as sk
from myocli.data import captions as cap
from myocli.data.converters import acclaim, bvh, deepmimic, myo28
from myocli.data.h5 import Sequence, has_caption, write_dataset
from myocli.data.retarget import SourceClip, normalise
from myocli.errors import MyoError

PYBULLET_ALIAS = "@pybullet"
SPLIT_NAMES = ("train", "val", "test")
CLIP_EXTENSIONS = (
    acclaim.EXTENSIONS + bvh.EXTENSIONS + deepmimic.EXTENSIONS + myo28.NPY_EXTENSIONS + myo28.H5_EXTENSIONS
)


@dataclass
class ConvertOptions:
    fps: float = 20.0
    keep_proportions: bool = False
    mirror: bool = False
    text: str | None = None
    skeleton: Path | None = None
    labels: Path | None = None
    source_fps: float | None = None
    scale: float | None = None
    license: str | None = None
    loop: float = 0.0  # seconds to repeat clips their source marks as cycles up to (0: never)
    strict: bool = False


@dataclass
class ConvertReport:
    sequences: list[Sequence] = field(default_factory=list)
    failures: list[tuple[Path, str]] = field(default_factory=list)
    files: int = 0
    uncaptioned: list[str] = field(default_factory=list)  # names of the sequences kept with an empty caption


def pybullet_clips() -> list[Path]:
    try:
        import pybullet_data
    except ImportError as exc:
        raise MyoError(f"{PYBULLET_ALIAS} needs the pybullet package: pip install pybullet") from exc
    return sorted((Path(pybullet_data.getDataPath()) / "data" / "motions").glob("humanoid3d_*.txt"))


def _is_clip(path: Path) -> bool:
    """Whether a file met while scanning a folder is a motion clip (sidecars and docs are not)."""
    suffix = path.suffix.lower()
    if suffix not in CLIP_EXTENSIONS:
        return False
    if suffix in deepmimic.EXTENSIONS:
        return deepmimic.looks_like_clip(path)
    return True


def expand_sources(sources: Iterable[str]) -> list[Path]:
    """Files, folders, globs and @pybullet -> a sorted, de-duplicated list of clip files."""
    found: dict[Path, None] = {}
    for source in sources:
        if source == PYBULLET_ALIAS:
            paths = pybullet_clips()
        elif glob.has_magic(source):
            paths = [Path(p) for p in sorted(glob.glob(source, recursive=True))]
            paths = [p for p in paths if p.is_file() and _is_clip(p)] + [
                q for p in paths if p.is_dir() for q in sorted(p.rglob("*")) if q.is_file() and _is_clip(q)
            ]
            if not paths:
                raise MyoError(f"{source}: the pattern matches no motion clips")
        elif Path(source).is_dir():
            paths = [p for p in sorted(Path(source).rglob("*")) if p.is_file() and _is_clip(p)]
            if not paths:
                raise MyoError(f"{source}: the folder holds no motion clips ({', '.join(CLIP_EXTENSIONS)})")
        elif Path(source).is_file():
            path = Path(source)
            if path.suffix.lower() not in CLIP_EXTENSIONS:
                raise MyoError(
                    f"{path}: unknown format {path.suffix or '(no extension)'!r}; myo reads "
                    f"{', '.join(CLIP_EXTENSIONS)} (ASF skeletons are found from their AMC clips)"
                )
            paths = [path]
        else:
            raise MyoError(f"{source}: no such file or folder")
        found.update(dict.fromkeys(paths))
    return list(found)


def read_clips(path: Path, options: ConvertOptions, labels: cap.Labels) -> list[SourceClip]:
    """Dispatch one file to its converter."""
    suffix = path.suffix.lower()
    if suffix in acclaim.EXTENSIONS:
        skeleton = options.skeleton or labels.skeleton
        if skeleton is None:
            skeleton = next((p for p in acclaim.skeleton_candidates(path) if p.is_file()), None)
        if skeleton is None or not Path(skeleton).is_file():
            where = f" ({skeleton} does not exist)" if skeleton else ""
            raise MyoError(
                f"{path}: no skeleton file (.asf) found for this AMC clip{where}; pass --skeleton FILE.asf "
                "or add a labels.csv with a skeleton column"
            )
        return acclaim.read(path, Path(skeleton), options.source_fps or labels.fps or acclaim.AMC_FPS)
    if suffix in bvh.EXTENSIONS:
        return bvh.read(path, options.scale)
    if suffix in deepmimic.EXTENSIONS:
        return deepmimic.read(path, options.loop)
    if suffix in myo28.NPY_EXTENSIONS:
        return myo28.read_npy(path, options.source_fps)
    if suffix in myo28.H5_EXTENSIONS:
        return myo28.read_h5(path)
    raise MyoError(f"{path}: unknown format {suffix!r}")


def cut_piece(clip: SourceClip, piece: cap.Piece, path: Path) -> SourceClip:
    """The part of a clip a labels.csv row names (start/end in seconds of the clip), backwards if asked."""
    duration = float(clip.times[-1] - clip.times[0])
    start = piece.start or 0.0
    end = duration if piece.end is None else piece.end
    span = f"{start:g}-{end:g} s" if piece.end is not None else f"{start:g} s to the end"
    if end > duration + 1e-6 or start >= duration:
        raise MyoError(f"{path}: labels ask for {span} of clip {clip.name!r}, which lasts {duration:.2f} s; fix its start/end in labels.csv")
    keep = (clip.times - clip.times[0] >= start - 1e-6) & (clip.times - clip.times[0] <= end + 1e-6)
    positions, times = clip.positions[keep], clip.times[keep]
    name = f"{clip.name}@{start:g}-{'end' if piece.end is None else f'{end:g}'}" if piece.start is not None or piece.end is not None else clip.name
    if piece.reverse:
        positions, times, name = positions[::-1], times[-1] - times[::-1], f"{name}_reversed"
    return SourceClip(name, np.ascontiguousarray(positions), times, list(piece.captions), clip.group or clip.name, clip.source, clip.license)


def convert_file(path: Path, options: ConvertOptions) -> list[Sequence]:
    """Every sequence one source file yields (the pieces its labels name, and its mirrors)."""
    labels = cap.find_labels(path, options.labels)
    clips = read_clips(path, options, labels)
    whole = [clip for clip in clips if clip.captions or labels.captions or options.text or not labels.pieces]
    pieces = [cut_piece(clip, piece, path) for clip in clips for piece in labels.pieces]
    sequences = []
    for clip in whole + pieces:
        # Blank captions count as none (a myo28 .h5 records an uncaptioned clip as [""]).
        own = [c for c in clip.captions if c.strip()]
        captions = own or labels.captions or ([options.text] if options.text else [])
        captions = [" ".join(c.split()) for c in captions] or [""]  # [""]: uncaptioned, the caller says so
        motion = normalise(clip, options.fps, options.keep_proportions)
        source = f"{labels.dataset}/{clip.source}" if labels.dataset not in ("", clip.source) else clip.source
        license_text = options.license or clip.license or labels.license
        group = clip.group or clip.name
        sequences.append(Sequence(clip.name, motion, captions, group, source, license_text))
        if options.mirror:
            sequences.append(
                Sequence(f"{clip.name}_mirror", sk.mirror(motion), [cap.mirror_text(c) for c in captions],
                         group, source, license_text)
            )
    return sequences


def convert(
    paths: list[Path], options: ConvertOptions, on_file: Callable[[Path], None] | None = None
) -> ConvertReport:
    """Convert every file, collecting failures by name (or raising the first with `strict`)."""
    report = ConvertReport(files=len(paths))
    for path in paths:
        try:
            sequences = convert_file(path, options)
            report.sequences.extend(sequences)
            report.uncaptioned.extend(s.name for s in sequences if not has_caption(s.captions))
        except MyoError as exc:
            message = str(exc) if str(path) in str(exc) else f"{path}: {exc}"
            if options.strict:
                raise MyoError(f"{message} (--strict: nothing was written)") from exc
            report.failures.append((path, message))
        if on_file:
            on_file(path)
    return report


def parse_split(text: str) -> tuple[float, ...]:
    try:
        fractions = tuple(float(v) for v in text.split(","))
    except ValueError as exc:
        raise MyoError(f"--split {text!r}: give fractions like 0.8,0.1,0.1") from exc
    if not 1 <= len(fractions) <= 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise MyoError(f"--split {text!r}: give up to three non-negative fractions (train,val,test) that sum to 1")
    return fractions


def split_by_group(sequences: list[Sequence], fractions: tuple[float, ...], seed: int) -> dict[str, list[Sequence]]:
    """Shuffle recordings (groups) with a seed and deal them into splits by the given fractions.

    Splitting by group keeps mirrored copies and crops of one recording in the same split.
    """
    groups = list(dict.fromkeys(s.group for s in sequences))
    random.Random(seed).shuffle(groups)
    wanted = [(name, f) for name, f in zip(SPLIT_NAMES, fractions, strict=False) if f > 0]
    if len(groups) < len(wanted):
        raise MyoError(f"--split: {len(groups)} recording(s) cannot fill {len(wanted)} splits; convert more clips or use fewer splits")
    counts = [max(1, round(f * len(groups))) for _, f in wanted]
    counts[0] = len(groups) - sum(counts[1:])  # the train split absorbs rounding
    if counts[0] < 1:
        raise MyoError(f"--split: {len(groups)} recordings are too few for these fractions")
    assignment, start = {}, 0
    for (name, _), count in zip(wanted, counts, strict=True):
        for group in groups[start : start + count]:
            assignment[group] = name
        start += count
    return {name: [s for s in sequences if assignment[s.group] == name] for name, _ in wanted}


def split_paths(output: Path, names: Iterable[str]) -> dict[str, Path]:
    return {name: output.with_name(f"{output.stem}_{name}{output.suffix}") for name in names}


def write_outputs(
    output: Path, sequences: list[Sequence], fps: float, split: tuple[float, ...] | None, seed: int
) -> dict[str, Path]:
    """Write one file, or one per split (`out_train.h5`, ...); returns what was written."""
    if not split:
        write_dataset(output, sequences, fps)
        return {"all": output}
    parts = split_by_group(sequences, split, seed)
    paths = split_paths(output, parts)
    for name, part in parts.items():
        write_dataset(paths[name], part, fps, attrs={"split": name, "split_seed": seed})
    return paths
