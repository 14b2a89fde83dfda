"""What every command that writes files shares: the check made first (never a folder, never
replace silently), and writing a motion .npy atomically."""

from __future__ import annotations

from pathlib import Path

from myocli.errors import MyoError


def check_free(paths: list[Path], overwrite: bool, option: str = "-o") -> None:
    """Refuse outputs that are folders, or that exist without --overwrite (naming `option`)."""
    for path in paths:
        if path.is_dir():
            raise MyoError(f"{path} is a folder; give a file name to {option}")
    existing = [str(p) for p in paths if p.exists()]
    if existing and not overwrite:
        raise MyoError(f"{', '.join(existing)} already exists; pass --overwrite to replace it, or choose another {option}")


def save_motion(path: Path, positions) -> None:
    """A motion (T, 28, 3) as float32 metres in a .npy, written atomically."""
    import numpy as np

    from myocli.atomic import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, np.asarray(positions, dtype=np.float32))
