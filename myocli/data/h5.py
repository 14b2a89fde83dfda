"""The myo28 dataset file (HDF5, format_version 1): schema, validating reader, atomic writer.

Layout (docs/data.md, "The dataset file"). Required, and all that the seed layout has:

    motion   float32 (N, T_max, 84)  global joint positions, myo28 order, metres; zero past each length
    lengths  int32   (N,)            valid frames of each sequence
    text     utf-8   (N,)            the first caption of each sequence

Always written, optional when reading:

    captions utf-8 (N,)  every caption of the sequence, one per line
    names    utf-8 (N,)  clip name
    group    utf-8 (N,)  recording the clip came from (mirrored copies and crops share it)
    source   utf-8 (N,)  format / dataset
    license  utf-8 (N,)  licence of the source data

File attributes: format="myo-motion", format_version=1, skeleton="myo28", joint_names, fps,
units="m", up_axis="y", myo_version. A file without attributes (the seed layout) is read as
myo28 at 20 fps.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from myocli import __version__
from myocli import skeleton as sk
from myocli.atomic import atomic_path
from myocli.errors import MyoError

FORMAT = "myo-motion"
FORMAT_VERSION = 1
DEFAULT_FPS = 20.0
_STRING_FIELDS = ("names", "group", "source", "license")


@dataclass
class Sequence:
    """One motion with its captions and provenance."""

    name: str
    motion: np.ndarray  # (T, 28, 3) float32, metres
    captions: list[str]
    group: str = ""
    source: str = ""
    license: str = ""

    def __len__(self) -> int:
        return len(self.motion)


@dataclass
class MotionDataset:
    """A whole myo28 dataset file in memory."""

    sequences: list[Sequence]
    fps: float = DEFAULT_FPS
    format_version: int = FORMAT_VERSION
    attrs: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, index: int) -> Sequence:
        return self.sequences[index]

    def named(self, name: str, path: str | Path, asked_by: str = "") -> Sequence:
        """The sequence called `name`; one not in the file is a MyoError that names the file, the
        option that asked (`asked_by`, e.g. "--clip"), and some of the names the file has."""
        for sequence in self.sequences:
            if sequence.name == name:
                return sequence
        names = [s.name for s in self.sequences]
        listed = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
        message = f"no sequence named {name!r} in {path} (it has: {listed}); see `myo data inspect {path}`"
        raise MyoError(f"{asked_by}: {message}" if asked_by else message)


def open_h5(path: Path):
    """(open h5py.File, its attributes as str/number values); a missing or damaged file is a MyoError."""
    import h5py

    if not path.is_file():
        raise MyoError(f"{path}: no such file")
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise MyoError(f"{path}: not a readable HDF5 file ({exc}); is it damaged or still being written?") from exc
    return handle, {k: (v.decode() if isinstance(v, bytes) else v) for k, v in handle.attrs.items()}


def read_strings(dataset) -> list[str]:
    """Read an HDF5 string dataset (variable or fixed length, bytes or str) as Python strings."""
    values = dataset[()]
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in np.atleast_1d(values)]


def _label(index: int, names: list[str] | None) -> str:
    return f"sequence {index} ({names[index]!r})" if names else f"sequence {index}"


def read_dataset(path: str | Path, check_values: bool = True) -> MotionDataset:
    """Read and validate a myo28 H5 file; any problem raises MyoError naming file and sequence.

    `check_values=False` still checks the structure but lets NaN/Inf through, for tools such as
    `myo data inspect` that report them instead of refusing the file.
    """
    path = Path(path)
    handle, attrs = open_h5(path)
    with handle:
        skeleton = str(attrs.get("skeleton", sk.NAME))
        if skeleton != sk.NAME:
            raise MyoError(f"{path}: skeleton is {skeleton!r}, not {sk.NAME}; convert it with `myo data convert`")
        version = int(attrs.get("format_version", FORMAT_VERSION))
        if version > FORMAT_VERSION:
            raise MyoError(f"{path}: format_version {version} is newer than this myo reads ({FORMAT_VERSION}); upgrade myo")
        for required in ("motion", "lengths", "text"):
            if required not in handle:
                raise MyoError(f"{path}: no '{required}' dataset; a myo28 file has motion, lengths and text")
        motion_ds = handle["motion"]
        if motion_ds.ndim != 3 or motion_ds.shape[-1] != sk.NUM_FEATURES:
            shape = motion_ds.shape
            features = shape[-1] if motion_ds.ndim else "no"
            raise MyoError(
                f"{path}: 'motion' is shaped {shape} with {features} features per frame; "
                f"myo28 needs (N, T_max, {sk.NUM_FEATURES}) ({sk.NUM_JOINTS} joints x 3). "
                "Re-convert the source with `myo data convert`"
            )
        if motion_ds.dtype.kind != "f":
            raise MyoError(f"{path}: 'motion' has dtype {motion_ds.dtype}; it must be floating point (float32)")
        lengths_ds = handle["lengths"]
        if lengths_ds.dtype.kind not in "iu":
            raise MyoError(f"{path}: 'lengths' has dtype {lengths_ds.dtype}; it must be integer (int32)")
        count, t_max, _ = motion_ds.shape
        lengths = np.asarray(lengths_ds[()]).reshape(-1)
        texts = read_strings(handle["text"])
        if len(lengths) != count or len(texts) != count:
            raise MyoError(f"{path}: {count} motions but {len(lengths)} lengths and {len(texts)} texts; they must match")
        extra = {name: read_strings(handle[name]) for name in _STRING_FIELDS if name in handle}
        captions = read_strings(handle["captions"]) if "captions" in handle else texts
        names = extra.get("names")
        motion = motion_ds[()].astype(np.float32, copy=False)

    sequences = []
    for i in range(count):
        where = f"{path}: {_label(i, names)}"
        length = int(lengths[i])
        if length < 1 or length > t_max:
            raise MyoError(f"{where}: length {length} is outside 1..T_max ({t_max})")
        clip = motion[i, :length]
        bad = ~np.isfinite(clip)
        if check_values and bad.any():
            frame = int(np.argwhere(bad)[0][0])
            raise MyoError(f"{where}: NaN or Inf in motion at frame {frame}; re-convert or drop this sequence")
        caption_list = [c.strip() for c in captions[i].split("\n") if c.strip()]
        if not caption_list:
            raise MyoError(f"{where}: empty text; every sequence needs a caption")
        sequences.append(
            Sequence(
                name=names[i] if names else f"seq{i:06d}",
                motion=clip.reshape(length, sk.NUM_JOINTS, 3),
                captions=caption_list,
                **{key: extra[key][i] for key in ("group", "source", "license") if key in extra},
            )
        )
    fps = float(attrs.get("fps", DEFAULT_FPS))
    return MotionDataset(sequences=sequences, fps=fps, format_version=version, attrs=attrs)


def write_dataset(path: str | Path, sequences: list[Sequence], fps: float = DEFAULT_FPS, attrs: dict | None = None) -> None:
    """Write sequences atomically: a temporary file beside `path`, renamed over it when complete."""
    import h5py

    if not sequences:
        raise MyoError(f"{path}: nothing to write (no sequences)")
    path = Path(path)
    for i, seq in enumerate(sequences):
        if np.asarray(seq.motion).shape[1:] not in ((sk.NUM_JOINTS, 3), (sk.NUM_FEATURES,)) or len(seq) < 1:
            raise MyoError(f"{path}: sequence {i} ({seq.name!r}) is shaped {np.shape(seq.motion)}, not (T, 28, 3)")
        if not any(c.strip() for c in seq.captions):
            raise MyoError(f"{path}: sequence {i} ({seq.name!r}) has no caption")
    t_max = max(len(s) for s in sequences)
    string = h5py.string_dtype("utf-8")
    with atomic_path(path) as tmp_path:
        with h5py.File(tmp_path, "w") as handle:
            motion = handle.create_dataset(
                "motion", shape=(len(sequences), t_max, sk.NUM_FEATURES), dtype=np.float32,
                chunks=(1, t_max, sk.NUM_FEATURES), compression="gzip", compression_opts=1,
            )  # fmt: skip
            for i, seq in enumerate(sequences):
                motion[i, : len(seq)] = np.asarray(seq.motion, dtype=np.float32).reshape(len(seq), -1)
            handle["lengths"] = np.array([len(s) for s in sequences], dtype=np.int32)
            handle.create_dataset("text", data=[s.captions[0] for s in sequences], dtype=string)
            handle.create_dataset("captions", data=["\n".join(s.captions) for s in sequences], dtype=string)
            for name, values in (
                ("names", [s.name for s in sequences]),
                ("group", [s.group or s.name for s in sequences]),
                ("source", [s.source for s in sequences]),
                ("license", [s.license for s in sequences]),
            ):
                handle.create_dataset(name, data=values, dtype=string)
            handle.attrs.update(
                {
                    "format": FORMAT,
                    "format_version": FORMAT_VERSION,
                    "skeleton": sk.NAME,
                    "joint_names": json.dumps(sk.JOINT_NAMES),
                    "fps": float(fps),
                    "units": "m",
                    "up_axis": "y",
                    "myo_version": __version__,
                    **(attrs or {}),
                }
            )
