"""What `myo render` and `myo export` accept as a motion: a .npy motion, or one sequence of a myo28 H5 file (`file.h5:I` or --index)."""

from __future__ import annotations

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


def load_motion(spec: str, index: int | None = None) -> MotionInput:
    path_text, _, index_text = spec.rpartition(":") if spec.rpartition(":")[2].isdigit() and ".h5:" in spec else (spec, "", "")
    path = Path(path_text)
    if index_text:
        index = int(index_text)
    if not path.is_file():
        raise MyoError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise MyoError(f"{path}: not a plain numeric .npy file ({exc})") from exc
        if array.ndim not in (2, 3) or array.shape[1:] not in ((sk.NUM_JOINTS, 3), (sk.NUM_FEATURES,)) or not len(array):
            raise MyoError(f"{path}: shaped {array.shape}; a myo28 motion is (T, 28, 3) or (T, 84) in metres")
        if not np.isfinite(array).all():
            raise MyoError(f"{path}: contains NaN or Inf")
        return MotionInput(sk.as_joints(array.astype(np.float64)), path.stem, None)
    if suffix in (".h5", ".hdf5"):
        from myocli.data.h5 import read_dataset

        dataset = read_dataset(path)
        chosen = 0 if index is None else index
        if not 0 <= chosen < len(dataset):
            raise MyoError(f"{path}: index {chosen} is out of range; the file has {len(dataset)} sequences (0..{len(dataset) - 1})")
        sequence = dataset[chosen]
        return MotionInput(sequence.motion.astype(np.float64), sequence.captions[0], dataset.fps)
    raise MyoError(f"{path}: cannot render a {suffix or 'file without extension'}; give a .npy (T, 28, 3) or a myo28 .h5 (with :INDEX)")
