"""The check every command that writes files makes first: never a folder, never replace silently."""

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
