"""A motion's frame rate: samples at any times onto a uniform grid of frames, by linear interpolation.

The converters resample each source clip, whatever its frame times, to the dataset's rate; the
simulated humanoid takes a clip at its control rate (twice the motion's) and gives it back at the
motion's.
"""

from __future__ import annotations

import numpy as np


def resample(positions: np.ndarray, times: np.ndarray, fps: float) -> np.ndarray:
    """Linear interpolation of (T, ...) samples taken at `times` onto a uniform `fps` grid."""
    duration = float(times[-1] - times[0])
    count = int(np.floor(duration * fps + 1e-6)) + 1
    grid = times[0] + np.arange(count) / fps
    index = np.clip(np.searchsorted(times, grid, side="right") - 1, 0, len(times) - 2)
    span = np.maximum(times[index + 1] - times[index], 1e-12)
    blend = np.clip((grid - times[index]) / span, 0.0, 1.0)
    blend = blend.reshape(-1, *([1] * (positions.ndim - 1)))
    return positions[index] + blend * (positions[index + 1] - positions[index])


def change_fps(positions: np.ndarray, fps: float, new_fps: float) -> np.ndarray:
    """A motion at `fps` (uniform frames) linearly interpolated to `new_fps`."""
    return resample(positions, np.arange(len(positions)) / fps, new_fps)
