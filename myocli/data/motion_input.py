"""What `myo render`, `myo export`, `myo rl eval` and `myo generate --motion` accept as a motion: a .npy
motion, or one sequence of a myo28 H5 file (`file.h5:I` or --index, or `file.h5:NAME` by its name)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from myocli import skeleton as sk
from myocli.errors import MyoError


@dataclass
class MotionInput:
    motion: np.ndarray  # (T, 28, 3)
    caption: str
    fps: float | None  # None: the file does not say


_H5_SEQUENCE = re.compile(r"(.+\.(?:h5|hdf5)):(.+)", re.IGNORECASE)


def parse_spec(spec: str, index: int | None = None) -> tuple[Path, int | str | None]:
    """`file.h5:3` -> (file.h5, 3); `file.h5:02_01` -> (file.h5, "02_01"), a sequence by name; a plain
    path keeps --index. Both at once is a usage mistake."""
    match = _H5_SEQUENCE.fullmatch(spec)
    if not match:
        return Path(spec), index
    if index is not None:
        raise MyoError(f"{spec}: give the sequence either as FILE.h5:INDEX (or :NAME) or with --index, not both")
    chosen = match.group(2)
    return Path(match.group(1)), int(chosen) if re.fullmatch(r"-?[0-9]+", chosen) else chosen


def load_motion(spec: str, index: int | None = None) -> MotionInput:
    path, index = parse_spec(spec, index)
    if not path.is_file():
        raise MyoError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, EOFError, OSError) as exc:
            raise MyoError(f"{path}: not a readable numeric .npy file ({exc or 'empty'})") from exc
        if array.dtype.kind not in "fiu":
            raise MyoError(f"{path}: holds {array.dtype} values; a motion is numbers (float32 metres)")
        if index is not None:
            raise MyoError(f"{path}: --index applies to .h5 files only")
        if array.ndim not in (2, 3) or array.shape[1:] not in ((sk.NUM_JOINTS, 3), (sk.NUM_FEATURES,)) or not len(array):
            raise MyoError(f"{path}: shaped {array.shape}; a myo28 motion is (T, 28, 3) or (T, 84) in metres")
        if not np.isfinite(array).all():
            raise MyoError(f"{path}: contains NaN or Inf")
        return MotionInput(sk.as_joints(array.astype(np.float64)), path.stem, None)
    if suffix in (".h5", ".hdf5"):
        from myocli.data.h5 import read_dataset

        dataset = read_dataset(path)
        if isinstance(index, str):
            sequence = dataset.named(index, path)
        else:
            chosen = 0 if index is None else index
            if not 0 <= chosen < len(dataset):
                raise MyoError(f"{path}: index {chosen} is out of range; the file has {len(dataset)} sequences (0..{len(dataset) - 1})")
            sequence = dataset[chosen]
        return MotionInput(sequence.motion.astype(np.float64), sequence.captions[0], dataset.fps)
    raise MyoError(f"{path}: cannot render a {suffix or 'file without extension'}; give a .npy (T, 28, 3) or a myo28 .h5 (with :INDEX or :NAME)")
