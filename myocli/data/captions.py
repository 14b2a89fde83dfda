"""Captions and per-clip metadata from sidecar files, and left/right swapping for mirrors.

A sidecar is a `labels.csv` with at least a `file` column (the clip's path relative to the csv)
and a `text` column; several rows for one file give several captions. Optional columns used
when present: `skeleton` (an ASF/AMC clip's skeleton file), `fps`, `license`, `dataset` (default:
the csv's folder name). The nearest
labels.csv in the clip's folder or up to three folders above wins; `--labels` names one
explicitly. DeepMimic's humanoid clips carry no captions, so myo ships its own sentences for
the known clip names (deepmimic_captions.csv, written for this project).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from myocli.errors import MyoError

SIDECAR_NAME = "labels.csv"
_BUILTIN_DEEPMIMIC = Path(__file__).with_name("deepmimic_captions.csv")
_KNOWN_LICENSES = {
    "LICENSE-hdm05.txt": "CC BY-SA 3.0 (HDM05)",
    "LICENSE-cmu.txt": "CMU mocap terms (free for all uses, no resale)",
    "LICENSE-deepmimic.txt": "MIT (DeepMimic)",
    "LICENSE-bandai-namco.txt": "CC BY-NC 4.0 (Bandai Namco Research)",
}


def license_near(*folders: Path) -> str:
    """The licence named by a known LICENSE-<source>.txt file in the first folder that has one."""
    return next((text for folder in folders for name, text in _KNOWN_LICENSES.items() if (folder / name).exists()), "")


@dataclass
class Labels:
    captions: list[str] = field(default_factory=list)
    skeleton: Path | None = None
    fps: float | None = None
    license: str = ""
    dataset: str = ""


@lru_cache(maxsize=64)
def read_sidecar(csv_path: Path) -> dict[Path, Labels]:
    """Rows of a labels.csv keyed by the resolved path of the clip each names."""
    table: dict[Path, Labels] = {}
    folder = csv_path.parent
    license_text = license_near(folder)
    try:
        with open(csv_path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or "file" not in reader.fieldnames:
                raise MyoError(f"{csv_path}: a labels file needs a 'file' column (and a 'text' column for captions)")
            for row in reader:
                key = (folder / row["file"]).resolve()
                labels = table.setdefault(key, Labels(license=row.get("license") or license_text, dataset=row.get("dataset") or folder.name))
                text = " ".join((row.get("text") or "").split())
                if text and text not in labels.captions:
                    labels.captions.append(text)
                if row.get("skeleton"):
                    labels.skeleton = folder / row["skeleton"]
                if row.get("fps"):
                    labels.fps = float(row["fps"])
    except (OSError, UnicodeDecodeError, csv.Error, ValueError) as exc:
        raise MyoError(f"{csv_path}: unreadable labels file ({exc})") from exc
    return table


def find_labels(clip: Path, explicit: Path | None = None) -> Labels:
    """The sidecar entry for a clip (empty Labels when none names it)."""
    clip = clip.resolve()
    candidates = [explicit] if explicit else [p / SIDECAR_NAME for p in [clip.parent, *list(clip.parents)[1:4]]]
    for csv_path in candidates:
        if csv_path.is_file():
            labels = read_sidecar(csv_path.resolve()).get(clip)
            if labels:
                return labels
    builtin = {p.name: labels for p, labels in read_sidecar(_BUILTIN_DEEPMIMIC).items()}
    if clip.name in builtin:
        labels = builtin[clip.name]
        if "pybullet_data" in clip.parts:
            return Labels(captions=list(labels.captions), license="zlib (pybullet_data)", dataset="pybullet")
        return Labels(captions=list(labels.captions), license=license_near(clip.parent, clip.parent.parent), dataset="deepmimic")
    return Labels()


_SWAPS = {"left": "right", "right": "left", "clockwise": "counterclockwise", "counterclockwise": "clockwise",
          "counter-clockwise": "clockwise", "anticlockwise": "clockwise", "leftward": "rightward",
          "rightward": "leftward", "leftwards": "rightwards", "rightwards": "leftwards"}  # fmt: skip
_SWAP_PATTERN = re.compile(r"\b(" + "|".join(sorted(map(re.escape, _SWAPS), key=len, reverse=True)) + r")\b", re.IGNORECASE)


def mirror_text(text: str) -> str:
    """Swap left/right (and turning directions) in a caption, keeping each word's capitalisation."""

    def swap(match: re.Match) -> str:
        word = match.group(0)
        new = _SWAPS[word.lower()]
        return new.upper() if word.isupper() else new.capitalize() if word[0].isupper() else new

    return _SWAP_PATTERN.sub(swap, text)
