"""Motions already on myo28: plain `.npy` arrays and myo28 H5 datasets (re-validated, merged).

A `.npy` holds global positions in metres, shaped (T, 28, 3) or (T, 84), Y up, sampled at
`--source-fps` (default 20). A (T, 22, 3) array is HumanML3D's joints (humanml3d.py).
An H5 file is read through the validating reader; each sequence keeps its captions, name,
group, source and licence, and goes through the same retargeting as every other clip (which
leaves an already normalised motion unchanged).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from myocli import skeleton as sk
from myocli.data import h5
from myocli.data.converters import humanml3d
from myocli.data.converters.checks import describe, first_bad
from myocli.data.retarget import SourceClip
from myocli.errors import MyoError

NPY_EXTENSIONS = (".npy",)
H5_EXTENSIONS = (".h5", ".hdf5")


def load_npy(path: Path) -> np.ndarray:
    """np.load for a file that may be damaged: any failure is a MyoError naming the file.

    The header is checked against the file's size first, as a damaged shape could otherwise
    ask for terabytes before numpy finds the data missing.
    """
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = header(handle)
            holds = os.fstat(handle.fileno()).st_size - handle.tell()
        needs = math.prod(shape) * dtype.itemsize
        if not dtype.hasobject and needs > holds:
            raise MyoError(f"{path}: the .npy header promises shape {shape} of {dtype} ({needs} bytes) but the file "
                           f"holds {holds} bytes of data; it is truncated or damaged")  # fmt: skip
        return np.load(path, allow_pickle=False)
    except MyoError:
        raise
    # A damaged header or body surfaces as ValueError, OSError, EOFError, SyntaxError,
    # tokenize.TokenError or MemoryError depending on where the damage is.
    except Exception as exc:
        raise MyoError(f"{path}: not a readable .npy array ({type(exc).__name__}: {exc})") from exc


def read_npy(path: Path, fps: float | None = None) -> list[SourceClip]:
    array = load_npy(path)
    if array.dtype.kind != "f":
        raise MyoError(f"{path}: dtype {array.dtype}; joint positions must be floating point")
    if array.ndim == 2 and array.shape[1] == sk.NUM_FEATURES:
        array = array.reshape(len(array), sk.NUM_JOINTS, 3)
    if not humanml3d.is_humanml3d(array) and (array.ndim != 3 or array.shape[1:] != (sk.NUM_JOINTS, 3)):
        raise MyoError(
            f"{path}: array shaped {array.shape}; expected myo28 positions (T, 28, 3) or (T, 84), "
            "or HumanML3D joints (T, 22, 3)"
        )
    bad = first_bad(array)
    if bad is not None:  # checked before any cast: a signalling NaN, or 1e308 into float32, warns when cast
        raise MyoError(f"{path}: frame {bad[0]} has {describe(array[bad])}; joint positions must be finite metres")
    if humanml3d.is_humanml3d(array):
        return humanml3d.read(path, array, fps or humanml3d.FPS)
    fps = fps or h5.DEFAULT_FPS
    return [SourceClip(name=path.stem, positions=array.astype(np.float64), times=np.arange(len(array)) / fps,
                       group=path.stem, source="npy")]  # fmt: skip


def read_h5(path: Path) -> list[SourceClip]:
    dataset = h5.read_dataset(path)
    # The reader lets through what a dataset may hold but a conversion cannot use; refused here,
    # where the message can name the file as well as the sequence.
    for i, seq in enumerate(dataset.sequences):
        if len(seq) < 2:
            raise MyoError(f"{path}: sequence {i} ({seq.name!r}) has {len(seq)} frame(s); a motion needs at least two")
        bad = first_bad(seq.motion)
        if bad is not None:
            raise MyoError(f"{path}: sequence {i} ({seq.name!r}) has {describe(seq.motion[bad])} at frame {bad[0]}")
    return [
        SourceClip(
            name=seq.name, positions=seq.motion.astype(np.float64), times=np.arange(len(seq)) / dataset.fps,
            captions=list(seq.captions), group=seq.group or seq.name, source=seq.source or "myo28", license=seq.license,
        )
        for seq in dataset.sequences
    ]  # fmt: skip
