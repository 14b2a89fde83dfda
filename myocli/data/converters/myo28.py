"""Motions already on myo28: plain `.npy` arrays and myo28 H5 datasets (re-validated, merged).

A `.npy` holds global positions in metres, shaped (T, 28, 3) or (T, 84), Y up, sampled at
`--source-fps` (default 20). A (T, 22, 3) array is HumanML3D's joints (humanml3d.py).
An H5 file is read through the validating reader; each sequence keeps its captions, name,
group, source and licence, and goes through the same retargeting as every other clip (which
leaves an already normalised motion unchanged).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from myocli import skeleton as sk
from myocli.data import h5
from myocli.data.converters import humanml3d
from myocli.data.retarget import SourceClip
from myocli.errors import MyoError

NPY_EXTENSIONS = (".npy",)
H5_EXTENSIONS = (".h5", ".hdf5")


def read_npy(path: Path, fps: float | None = None) -> list[SourceClip]:
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise MyoError(f"{path}: not a readable .npy array ({exc})") from exc
    if array.dtype.kind != "f":
        raise MyoError(f"{path}: dtype {array.dtype}; joint positions must be floating point")
    if humanml3d.is_humanml3d(array):
        return humanml3d.read(path, array, fps or humanml3d.FPS)
    if array.ndim == 2 and array.shape[1] == sk.NUM_FEATURES:
        array = array.reshape(len(array), sk.NUM_JOINTS, 3)
    if array.ndim != 3 or array.shape[1:] != (sk.NUM_JOINTS, 3):
        raise MyoError(
            f"{path}: array shaped {array.shape}; expected myo28 positions (T, 28, 3) or (T, 84), "
            "or HumanML3D joints (T, 22, 3)"
        )
    fps = fps or h5.DEFAULT_FPS
    return [SourceClip(name=path.stem, positions=array.astype(np.float64), times=np.arange(len(array)) / fps,
                       group=path.stem, source="npy")]  # fmt: skip


def read_h5(path: Path) -> list[SourceClip]:
    dataset = h5.read_dataset(path)
    return [
        SourceClip(
            name=seq.name, positions=seq.motion.astype(np.float64), times=np.arange(len(seq)) / dataset.fps,
            captions=list(seq.captions), group=seq.group or seq.name, source=seq.source or "myo28", license=seq.license,
        )
        for seq in dataset.sequences
    ]  # fmt: skip
