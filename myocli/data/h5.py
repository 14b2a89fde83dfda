"""The myo28 dataset file (HDF5, format_version 1): schema, validating reader, atomic writer.

Layout (docs/data.md, "The dataset file"). Required, and all that the seed layout has:

    motion   float32 (N, T_max, 84)  global joint positions, myo28 order, metres; zero past each length
    lengths  int32   (N,)            valid frames of each sequence
    text     utf-8   (N,)            the first caption of each sequence ("" for one without a caption)

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
#: Frame rates a dataset may declare; outside them (0, NaN, 1e-300...) every time stamp is wrong.
FPS_RANGE = (1.0, 10_000.0)
_STRING_FIELDS = ("names", "group", "source", "license")
#: What h5py raises for a damaged file, depending on which structure the damage hits (a bad
#: checksum, symbol table or filter: OSError, RuntimeError, KeyError; odd types: TypeError,
#: ValueError, which includes UnicodeDecodeError; a damaged shape asking for terabytes: MemoryError).
H5_ERRORS = (OSError, RuntimeError, KeyError, ValueError, TypeError, MemoryError)


@dataclass
class Sequence:
    """One motion with its captions and provenance. A clip without a caption (a BVH brought back
    from another tool, say) has captions [""]: the tokenizer and RL training need none."""

    name: str
    motion: np.ndarray  # (T, 28, 3) float32, metres
    captions: list[str]
    group: str = ""
    source: str = ""
    license: str = ""

    def __len__(self) -> int:
        return len(self.motion)


def has_caption(captions: list[str]) -> bool:
    """Whether a sequence's captions say anything ([""] is how an uncaptioned one is recorded)."""
    return any(c.strip() for c in captions)


def require_captions(names: list[str], captions: list[list[str]], where: str, needed_by: str) -> None:
    """Refuse, in one MyoError, a set where some sequence has no caption: `needed_by` (e.g. "text-to-motion
    training") learns from captions, and an uncaptioned clip would teach it that "" means a motion.
    Names the first few such sequences and the count, and says how to caption them."""
    missing = [name for name, caps in zip(names, captions, strict=True) if not has_caption(caps)]
    if not missing:
        return
    shown = ", ".join(repr(name) for name in missing[:5]) + (", ..." if len(missing) > 5 else "")
    raise MyoError(f"{where}: {len(missing)} of {len(names)} sequences have no caption ({shown}), and {needed_by} needs one "
                   "for every clip; convert them again with captions (a labels.csv with file,text columns beside the clips, "
                   "or --text \"a person ...\"), or leave them out")  # fmt: skip


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

    def require_captions(self, where: str, needed_by: str) -> None:
        """`require_captions` for this set's sequences."""
        require_captions([s.name for s in self.sequences], [s.captions for s in self.sequences], where, needed_by)

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
    except H5_ERRORS as exc:
        raise MyoError(f"{path}: not a readable HDF5 file ({exc}); is it damaged or still being written?") from exc
    try:
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in handle.attrs.items()}
    except H5_ERRORS as exc:  # a damaged attribute table, or bytes that are not UTF-8
        handle.close()
        raise MyoError(f"{path}: unreadable file attributes ({exc}); is the file damaged?") from exc
    return handle, attrs


def read_strings(dataset) -> list[str]:
    """Read an HDF5 string dataset (variable or fixed length, bytes or str) as Python strings."""
    values = dataset[()]
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in np.atleast_1d(values)]


def _label(index: int, names: list[str] | None) -> str:
    return f"sequence {index} ({names[index]!r})" if names else f"sequence {index}"


def _attribute(path: Path, attrs: dict, key: str, default: float, kind: type) -> float:
    """A numeric file attribute (or its default) as `kind`; anything else is a MyoError."""
    value = attrs.get(key, default)
    try:
        if np.ndim(value) != 0:  # int() of a one-element array only warns, of a longer one fails
            raise TypeError("not a single value")
        return kind(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise MyoError(f"{path}: attribute {key} is {value!r}, not a {kind.__name__} ({exc})") from exc


def _dataset(path: Path, handle, name: str):
    import h5py

    item = handle[name]
    if not isinstance(item, h5py.Dataset):
        raise MyoError(f"{path}: '{name}' is a {type(item).__name__}, not a dataset")
    return item


def _strings(path: Path, handle, name: str, count: int) -> list[str]:
    """A string dataset with one entry per motion."""
    try:
        values = read_strings(_dataset(path, handle, name))
    except UnicodeDecodeError as exc:
        raise MyoError(f"{path}: '{name}' holds text that is not UTF-8 ({exc})") from exc
    if len(values) != count:
        raise MyoError(f"{path}: {count} motions but {len(values)} entries in '{name}'; they must match")
    return values


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
        version = _attribute(path, attrs, "format_version", FORMAT_VERSION, int)
        if version > FORMAT_VERSION:
            raise MyoError(f"{path}: format_version {version} is newer than this myo reads ({FORMAT_VERSION}); upgrade myo")
        fps = _attribute(path, attrs, "fps", DEFAULT_FPS, float)
        if not FPS_RANGE[0] <= fps <= FPS_RANGE[1]:  # also refuses NaN
            raise MyoError(f"{path}: attribute fps is {fps:g}; a motion dataset has {FPS_RANGE[0]:g} to {FPS_RANGE[1]:g} fps")
        try:
            count, t_max, lengths, texts, captions, extra, motion = _read_arrays(path, handle)
        except H5_ERRORS as exc:  # the layout is right but the damage is deeper (a bad chunk, checksum, link)
            raise MyoError(f"{path}: damaged HDF5 file ({type(exc).__name__}: {exc}); re-convert or copy it again") from exc
    names = extra.get("names")

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
        caption_list = [c.strip() for c in captions[i].split("\n") if c.strip()] or [""]  # [""]: uncaptioned
        sequences.append(
            Sequence(
                name=names[i] if names else f"seq{i:06d}",
                motion=clip.reshape(length, sk.NUM_JOINTS, 3),
                captions=caption_list,
                **{key: extra[key][i] for key in ("group", "source", "license") if key in extra},
            )
        )
    return MotionDataset(sequences=sequences, fps=fps, format_version=version, attrs=attrs)


def _read_arrays(path: Path, handle) -> tuple:
    """The checked layout of an open dataset file: count, T_max, lengths, texts, captions, the
    optional string fields, and the motion array (float32)."""
    for required in ("motion", "lengths", "text"):
        if required not in handle:
            raise MyoError(f"{path}: no '{required}' dataset; a myo28 file has motion, lengths and text")
    motion_ds = _dataset(path, handle, "motion")
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
    lengths_ds = _dataset(path, handle, "lengths")
    if lengths_ds.dtype.kind not in "iu":
        raise MyoError(f"{path}: 'lengths' has dtype {lengths_ds.dtype}; it must be integer (int32)")
    count, t_max, _ = motion_ds.shape
    lengths = np.asarray(lengths_ds[()]).reshape(-1)
    if len(lengths) != count:
        raise MyoError(f"{path}: {count} motions but {len(lengths)} lengths; they must match")
    texts = _strings(path, handle, "text", count)
    extra = {name: _strings(path, handle, name, count) for name in _STRING_FIELDS if name in handle}
    captions = _strings(path, handle, "captions", count) if "captions" in handle else texts
    # Values beyond float32 (a float64 file) become Inf here, which the value check reports.
    with np.errstate(over="ignore", invalid="ignore"):
        motion = motion_ds[()].astype(np.float32, copy=False)
    return count, t_max, lengths, texts, captions, extra, motion


def write_dataset(path: str | Path, sequences: list[Sequence], fps: float = DEFAULT_FPS, attrs: dict | None = None) -> None:
    """Write sequences atomically: a temporary file beside `path`, renamed over it when complete."""
    if not sequences:
        raise MyoError(f"{path}: nothing to write (no sequences)")
    path = Path(path)
    for i, seq in enumerate(sequences):
        if np.asarray(seq.motion).shape[1:] not in ((sk.NUM_JOINTS, 3), (sk.NUM_FEATURES,)) or len(seq) < 1:
            raise MyoError(f"{path}: sequence {i} ({seq.name!r}) is shaped {np.shape(seq.motion)}, not (T, 28, 3)")
    write_h5(path, lambda handle: _fill_dataset(handle, sequences, fps, attrs))


def write_h5(path: str | Path, fill) -> None:
    """Write an HDF5 file atomically: `fill(handle)` builds it in memory, then one plain write.

    Built in memory so that a full disk or a read-only folder is an ordinary OSError of one
    plain write (which atomic_path reports by the output's name): HDF5 writing to a disk that
    refuses fails deep inside its driver, and can crash the process at exit. Our files are
    smaller than the arrays they hold, which are in memory already."""
    import io

    import h5py

    with atomic_path(path) as tmp_path:  # made first: a folder that takes no file fails before the work
        buffer = io.BytesIO()
        with h5py.File(buffer, "w") as handle:
            fill(handle)
        tmp_path.write_bytes(buffer.getbuffer())  # the file as closed: complete


def _fill_dataset(handle, sequences: list[Sequence], fps: float, attrs: dict | None) -> None:
    """The datasets and attributes of a myo28 dataset file (the layout in docs/data.md)."""
    import h5py

    t_max = max(len(s) for s in sequences)
    string = h5py.string_dtype("utf-8")
    motion = handle.create_dataset(
        "motion", shape=(len(sequences), t_max, sk.NUM_FEATURES), dtype=np.float32,
        chunks=(1, t_max, sk.NUM_FEATURES), compression="gzip", compression_opts=1,
    )  # fmt: skip
    for i, seq in enumerate(sequences):
        motion[i, : len(seq)] = np.asarray(seq.motion, dtype=np.float32).reshape(len(seq), -1)
    handle["lengths"] = np.array([len(s) for s in sequences], dtype=np.int32)
    handle.create_dataset("text", data=[(s.captions or [""])[0] for s in sequences], dtype=string)
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
