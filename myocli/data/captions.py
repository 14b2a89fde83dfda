"""Captions and per-clip metadata from sidecar files, and left/right swapping for mirrors.

A sidecar is a `labels.csv` with at least a `file` column (the clip's path relative to the csv)
and a `text` column; several rows for one file give several captions. Optional columns used
when present: `skeleton` (an ASF/AMC clip's skeleton file), `fps`, `license`, `dataset` (default:
the csv's folder name), and `start`, `end` (seconds) and `reverse` (1) to caption a piece of the clip
instead of all of it (as HumanML3D and BABEL annotate segments), played backwards with `reverse`.
A clip whose rows all name pieces yields the pieces alone. The nearest
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
class Piece:
    """Part of a clip with its own captions: from `start` to `end` seconds (None: the clip's own
    start or end), played backwards when `reverse`."""

    start: float | None
    end: float | None
    reverse: bool
    captions: list[str] = field(default_factory=list)


@dataclass
class Labels:
    captions: list[str] = field(default_factory=list)
    pieces: list[Piece] = field(default_factory=list)
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
                if not row["file"]:  # names no clip: empty, or missing from a row shorter than the header
                    continue
                key = (folder / row["file"]).resolve()
                labels = table.setdefault(key, Labels(license=row.get("license") or license_text, dataset=row.get("dataset") or folder.name))
                text = " ".join((row.get("text") or "").split())
                captions = _piece(labels, row, csv_path).captions if _names_a_piece(row) else labels.captions
                if text and text not in captions:
                    captions.append(text)
                if row.get("skeleton"):
                    labels.skeleton = folder / row["skeleton"]
                if row.get("fps"):
                    labels.fps = float(row["fps"])  # a ValueError is reported with the file below
                    if not 0 < labels.fps < float("inf"):  # also refuses NaN
                        raise ValueError(f"fps {row['fps']!r} for {row['file']}: give frames per second > 0")
    except (OSError, UnicodeDecodeError, csv.Error, ValueError) as exc:
        raise MyoError(f"{csv_path}: unreadable labels file ({exc})") from exc
    return table


_TRUE = ("1", "true", "yes")
_FALSE = ("", "0", "false", "no")


def _names_a_piece(row: dict) -> bool:
    return any((row.get(column) or "").strip() not in _FALSE for column in ("start", "end", "reverse"))


def _piece(labels: Labels, row: dict, csv_path: Path) -> Piece:
    """The piece a row names (rows naming the same piece share one), checked."""

    def seconds(column: str) -> float | None:
        text = (row.get(column) or "").strip()
        if not text:
            return None
        value = float(text)  # a ValueError is reported with the file below
        if not value >= 0 or value == float("inf"):
            raise ValueError(f"{column} {text!r} for {row['file']}: give seconds >= 0")
        return value

    reverse = (row.get("reverse") or "").strip().lower()
    if reverse not in _TRUE + _FALSE:
        raise ValueError(f"reverse {reverse!r} for {row['file']}: give 1 or leave it empty")
    start, end = seconds("start"), seconds("end")
    if start is not None and end is not None and end <= start:
        raise ValueError(f"start {start:g} s and end {end:g} s for {row['file']}: the end must come after the start")
    for piece in labels.pieces:
        if (piece.start, piece.end, piece.reverse) == (start, end, reverse in _TRUE):
            return piece
    labels.pieces.append(Piece(start, end, reverse in _TRUE))
    return labels.pieces[-1]


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
