"""Statistics of motions: over a training set, and over a moving window in time.

- `feature_stats`: per-feature mean and standard deviation of a training set, for normalising
  model inputs. They are part of a model: saved in its `model.safetensors` (as buffers) so a
  checkpoint always decodes with the numbers it was trained with.
- `over_centred_window`: a value per frame reduced over the frames around it (a follow
  camera's smoothed path, a clip's floor height, the reference's smoothed foot correction).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

MIN_STD = 1e-3  # features that never change (a contact that is always 0) must not blow up


def feature_stats(features: Iterable[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std (float32, per feature) over every frame of every sequence."""
    total, total_sq, count = 0.0, 0.0, 0
    for f in features:
        f = np.asarray(f, dtype=np.float64)
        total = total + f.sum(axis=0)
        total_sq = total_sq + (f * f).sum(axis=0)
        count += len(f)
    if count == 0:
        raise ValueError("no frames to compute feature statistics from")
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean * mean, 0.0))
    return mean.astype(np.float32), np.maximum(std, MIN_STD).astype(np.float32)


def over_centred_window(values: np.ndarray, size: int, reduce: Callable = np.mean) -> np.ndarray:
    """`reduce` (mean, min, ...) of `values` (T, ...) over `size` frames centred on each frame, along
    time; the ends are padded with the first and last frame, so the result is (T, ...) too."""
    values = np.asarray(values)
    padding = [(size // 2, size - 1 - size // 2)] + [(0, 0)] * (values.ndim - 1)
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(values, padding, mode="edge"), size, axis=0)
    return reduce(windows, axis=-1)
