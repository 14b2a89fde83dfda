"""Property-based fuzzing of every file reader: BVH, ASF, AMC, DeepMimic, HumanML3D joints and
texts, myo28 .npy arrays and H5 datasets, and labels.csv sidecars.

Each reader gets small real files (cut from ../shared/data and pybullet's clips) that hypothesis
damages: bytes flipped, the file truncated, lines deleted, duplicated or swapped, numbers replaced
by nan, inf, huge values or garbage, words dropped or added (wrong channel counts), random bytes
inserted; or random bytes alone. The .npy and H5 readers also get structurally odd arrays and
datasets (wrong shapes, dtypes, lengths, attributes, non-UTF-8 strings).

Whatever comes in, reading must end in a valid result (finite (T, 28, 3) motions) or in one
MyoError that names the file. Anything else is a bug: another exception type, a numpy warning
(turned into an error here, as `python -W error` would), a non-finite motion, or a hang.

The same machinery runs a larger campaign: `python benchmarks/fuzz_readers.py --examples N`.
"""

from __future__ import annotations

import io
import re
import signal
import tempfile
import traceback
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from myocli.data import captions as cap
from myocli.data.convert import ConvertOptions, convert_file
from myocli.data.h5 import Sequence, read_dataset, write_dataset
from myocli.errors import MyoError

TEXT = "a person moves"
TIME_LIMIT_S = 20.0  # one read of these small files takes milliseconds; 20 s means it hangs


# --------------------------------------------------------------------------------------------
# Inputs


@dataclass(repr=False)
class Case:
    """One input for a reader: which seed it grew from, its bytes (or an H5 layout), and how."""

    seed: str
    payload: bytes | dict
    description: str

    def __repr__(self) -> str:  # what hypothesis prints for a failing example: not the whole file
        size = f"{len(self.payload)} bytes" if isinstance(self.payload, bytes) else "an H5 layout"
        return f"Case({self.seed!r}, {size}, {self.description!r})"

    def _repr_pretty_(self, printer, cycle) -> None:  # hypothesis' printer would list every field
        printer.text(repr(self))


class Seeds(dict):
    """Seed files by name, with a short repr (hypothesis prints strategies and their arguments)."""

    def __repr__(self) -> str:
        return f"Seeds({', '.join(self)})"

    _repr_pretty_ = Case._repr_pretty_


# Replacements for one number: values the formats allow but no motion has, and non-numbers.
ODD_NUMBERS = [b"nan", b"NaN", b"-nan", b"inf", b"-inf", b"Infinity", b"1e308", b"-1e308", b"1e999", b"9" * 40,
               b"1e-320", b"1e-300", b"0", b"-0", b"-1", b"1e6", b"-123456789", b"abc", b"", b"1,5", b"0x1p3", b"--2",
               b"+", b".", b"\xff"]  # fmt: skip
NUMBER = re.compile(rb"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _flip_bytes(draw, data: bytes) -> tuple[bytes, str]:
    buffer = bytearray(data)
    spots = draw(st.lists(st.integers(0, len(buffer) - 1), min_size=1, max_size=8)) if buffer else []
    for spot in spots:
        buffer[spot] = draw(st.integers(0, 255))
    return bytes(buffer), f"bytes flipped at {spots}"


def _truncate(draw, data: bytes) -> tuple[bytes, str]:
    end = draw(st.integers(0, len(data)))
    return data[:end], f"truncated at byte {end}"


def _lines_op(kind: str) -> Callable:
    def op(draw, data: bytes) -> tuple[bytes, str]:
        lines = data.split(b"\n")
        i = draw(st.integers(0, len(lines) - 1))
        if kind == "delete":
            count = draw(st.integers(1, 3))
            del lines[i : i + count]
            return b"\n".join(lines), f"lines {i + 1}..{i + count} deleted"
        if kind == "duplicate":
            lines.insert(i, lines[i])
            return b"\n".join(lines), f"line {i + 1} duplicated"
        j = draw(st.integers(0, len(lines) - 1))
        lines[i], lines[j] = lines[j], lines[i]
        return b"\n".join(lines), f"lines {i + 1} and {j + 1} swapped"

    return op


def _replace_number(spread: str) -> Callable:
    """Replace one number: any in the file (most are frame values), or one on a line drawn first
    (which favours headers and hierarchies: offsets, channel counts, frame times, bone lengths)."""

    def op(draw, data: bytes) -> tuple[bytes, str]:
        if spread == "line":
            lines = data.split(b"\n")
            i = draw(st.integers(0, len(lines) - 1))
            start = sum(len(line) + 1 for line in lines[:i])
            numbers = list(NUMBER.finditer(data, start, start + len(lines[i])))
        else:
            numbers = list(NUMBER.finditer(data))
        if not numbers:
            return data, "no number to replace"
        found = numbers[draw(st.integers(0, len(numbers) - 1))]
        new = draw(st.sampled_from(ODD_NUMBERS) | st.floats().map(lambda v: repr(v).encode()))
        line = data.count(b"\n", 0, found.start()) + 1
        return data[: found.start()] + new + data[found.end() :], f"line {line}: {found.group().decode()} -> {new!r}"

    return op


def _replace_word(draw, data: bytes) -> tuple[bytes, str]:
    """Replace a word on a line by another word of the file (a keyword where a name belongs, ...)."""
    lines = data.split(b"\n")
    i = draw(st.integers(0, len(lines) - 1))
    words = lines[i].split()
    if not words:
        return data, "no word to replace"
    k = draw(st.integers(0, len(words) - 1))
    vocabulary = sorted(w for w in set(data.split()) if not NUMBER.fullmatch(w))[:500] or [b"x"]
    words[k] = draw(st.sampled_from(vocabulary) | st.sampled_from([b"x", b"-", b"{", b"}", b"#", b",", b'"']))
    lines[i] = b" ".join(words)
    return b"\n".join(lines), f"line {i + 1}: word {k + 1} -> {words[k]!r}"


def _word_op(kind: str) -> Callable:
    """Drop a word from a line, or add one: the wrong number of channels, DOFs or columns."""

    def op(draw, data: bytes) -> tuple[bytes, str]:
        lines = data.split(b"\n")
        i = draw(st.integers(0, len(lines) - 1))
        words = lines[i].split()
        k = draw(st.integers(0, len(words)))
        if kind == "drop" and words:
            del words[min(k, len(words) - 1)]
        elif kind == "add":
            words.insert(k, draw(st.sampled_from([b"0", b"1.5", b"-7", b"x", b"rx"])))
        lines[i] = b" ".join(words)
        return b"\n".join(lines), f"line {i + 1}: a word {'dropped' if kind == 'drop' else 'added'}"

    return op


def _insert_bytes(draw, data: bytes) -> tuple[bytes, str]:
    at = draw(st.integers(0, len(data)))
    new = draw(st.binary(min_size=1, max_size=16))
    return data[:at] + new + data[at:], f"{new!r} inserted at byte {at}"


MUTATIONS = [_flip_bytes, _truncate, _lines_op("delete"), _lines_op("duplicate"), _lines_op("swap"),
             _replace_number("file"), _replace_number("line"), _replace_number("line"), _replace_word,
             _word_op("drop"), _word_op("add"), _insert_bytes]  # fmt: skip


@st.composite
def mutated(draw, seeds: dict[str, bytes]) -> Case:
    """A seed file with one to three mutations."""
    name = draw(st.sampled_from(sorted(seeds)))
    data, steps = seeds[name], []
    for _ in range(draw(st.integers(1, 3))):
        data, step = draw(st.sampled_from(MUTATIONS))(draw, data)
        steps.append(step)
    return Case(name, data, "; ".join(steps))


def random_bytes(seeds: dict[str, bytes]) -> st.SearchStrategy:
    return st.builds(Case, st.sampled_from(sorted(seeds)), st.binary(max_size=2000), st.just("random bytes"))


def file_inputs(seeds: dict[str, bytes]) -> st.SearchStrategy:
    """Mostly mutated real files, sometimes random bytes."""
    seeds = Seeds(seeds)
    return st.one_of(mutated(seeds), mutated(seeds), mutated(seeds), random_bytes(seeds))


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


SPECIAL_FLOATS = [np.nan, np.inf, -np.inf, 1e308, -1e308, 1e30, 5e-324, 0.0]


@st.composite
def odd_arrays(draw, arrays: dict[str, np.ndarray]) -> Case:
    """A real motion array with odd values, too few frames, another shape or another dtype."""
    name = draw(st.sampled_from(sorted(arrays)))
    array = arrays[name].astype(np.float64)
    how = draw(st.sampled_from(["values", "frames", "constant", "shape", "dtype"]))
    if how == "values":
        flat = array.reshape(-1)
        spots = draw(st.lists(st.integers(0, flat.size - 1), min_size=1, max_size=5))
        value = draw(st.sampled_from(SPECIAL_FLOATS) | st.floats())
        flat[spots] = value
        what = f"{value!r} at flat indices {spots}"
    elif how == "frames":
        array = array[: draw(st.integers(0, 3))]
        what = f"{len(array)} frame(s)"
    elif how == "constant":
        value = draw(st.sampled_from([0.0, 1.0, 1e30]))
        array = np.full_like(array, value)
        what = f"every value {value}"
    elif how == "shape":
        shape = tuple(draw(st.lists(st.integers(0, 30), max_size=4)))
        array = np.ones(shape)
        what = f"shape {shape}"
    else:
        dtype = draw(st.sampled_from(["float16", "float32", "longdouble", "int32", "uint8", "bool", "complex64", "U3", "O"]))
        with np.errstate(all="ignore"):
            array = array.astype(dtype)
        what = f"dtype {dtype}"
    return Case(name, _npy_bytes(array), what)


def array_inputs(arrays: dict[str, np.ndarray]) -> st.SearchStrategy:
    arrays = Seeds(arrays)
    seeds = {name: _npy_bytes(array) for name, array in arrays.items()}
    return st.one_of(odd_arrays(arrays), odd_arrays(arrays), file_inputs(seeds))


# An H5 layout: {"datasets": {name: array | list[str] | GROUP}, "attrs": {...}}, written by _write_h5.
GROUP = "<group>"
_ODD_DATASETS = [np.zeros(2), np.zeros((2, 3, 84), np.int32), np.zeros((2, 3, 83)), np.array(5.0), np.zeros((0, 3, 84)),
                 np.array([b"\xff\xfe", b"ok"]), GROUP, np.zeros((2, 2)), np.array([], dtype="S1")]  # fmt: skip
_ODD_ATTRS = [np.nan, np.inf, 0.0, -1.0, 1e308, "abc", b"\xff", np.array([1, 2]), "20", 2, 1.5, "myo28", "smpl", ""]


def _layout(sequences: list[Sequence]) -> dict:
    """What write_dataset writes for these sequences, as plain arrays to damage."""
    t_max = max(len(s) for s in sequences)
    motion = np.zeros((len(sequences), t_max, 84), np.float32)
    for i, seq in enumerate(sequences):
        motion[i, : len(seq)] = seq.motion.reshape(len(seq), -1)
    strings = {name: [getattr(s, name) or s.name for s in sequences] for name in ("group", "source", "license")}
    return {
        "datasets": {"motion": motion, "lengths": np.array([len(s) for s in sequences], np.int32),
                     "text": [s.captions[0] for s in sequences], "captions": ["\n".join(s.captions) for s in sequences],
                     "names": [s.name for s in sequences], **strings},
        "attrs": {"format": "myo-motion", "format_version": 1, "skeleton": "myo28", "fps": 20.0, "units": "m"},
    }  # fmt: skip


@st.composite
def odd_layouts(draw, sequences: Seeds) -> Case:
    """A myo28 dataset (of these named sequences) with one to three structural faults."""
    layout = _layout(list(sequences.values()))
    datasets, attrs, steps = layout["datasets"], layout["attrs"], []
    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.sampled_from(["drop", "replace", "lengths", "attr", "strings", "value"]))
        name = draw(st.sampled_from(sorted(datasets) or ["motion"]))
        if how == "drop":
            datasets.pop(name, None)
            steps.append(f"{name} dropped")
        elif how == "replace":
            datasets[name] = draw(st.sampled_from(_ODD_DATASETS))
            steps.append(f"{name} replaced by {datasets[name]!r}"[:80])
        elif how == "lengths":
            values = draw(st.lists(st.integers(-5, 2**31 - 1) | st.sampled_from([0, 1, 30, 31]), min_size=0, max_size=3))
            dtype = draw(st.sampled_from(["int32", "int64", "uint8", "float32"]))
            datasets["lengths"] = np.array(values, dtype=np.int64).astype(dtype)  # wraps around for uint8
            steps.append(f"lengths {values}")
        elif how == "attr":
            key = draw(st.sampled_from(["fps", "format_version", "skeleton", "format", "joint_names"]))
            attrs[key] = draw(st.sampled_from(_ODD_ATTRS))
            steps.append(f"attribute {key} = {attrs[key]!r}")
        elif how == "strings":
            key = draw(st.sampled_from(["text", "captions", "names", "group", "source", "license"]))
            datasets[key] = draw(st.lists(st.sampled_from(["", "\n", "a person walks", "é", " "]), max_size=3))
            steps.append(f"{key} = {datasets[key]!r}")
        elif isinstance(datasets.get("motion"), np.ndarray) and datasets["motion"].size:
            motion = datasets["motion"].astype(np.float64)
            value = draw(st.sampled_from(SPECIAL_FLOATS))
            motion.reshape(-1)[draw(st.integers(0, motion.size - 1))] = value
            datasets["motion"] = motion
            steps.append(f"a motion value set to {value!r}")
    return Case("dataset", layout, "; ".join(steps))


def _write_h5(path: Path, layout: dict) -> None:
    import h5py

    with h5py.File(path, "w") as handle:
        for name, value in layout["datasets"].items():
            if isinstance(value, str) and value == GROUP:
                handle.create_group(name)
            elif isinstance(value, list):
                handle.create_dataset(name, data=np.array(value, dtype=object), dtype=h5py.string_dtype("utf-8"))
            else:
                handle.create_dataset(name, data=value)
        handle.attrs.update(layout["attrs"])


# --------------------------------------------------------------------------------------------
# Readers and their seeds


@dataclass(repr=False)
class Target:
    """A reader under test: the inputs to feed it and how to read one (into a fresh folder)."""

    name: str
    seeds: list[Case]  # the undamaged inputs, each of which reads cleanly
    inputs: st.SearchStrategy
    read: Callable[[Path, Case], object]

    def __repr__(self) -> str:
        return f"Target({self.name!r})"

    _repr_pretty_ = Case._repr_pretty_


def _bvh_cut(path: Path, frames: int) -> bytes:
    """The BVH with only its first frames (and a header that says so)."""
    head, _, motion = path.read_text(encoding="latin-1").partition("MOTION")
    lines = motion.strip().splitlines()
    body = lines[2 : 2 + frames]
    return (head + f"MOTION\nFrames: {len(body)}\n{lines[1]}\n" + "\n".join(body) + "\n").encode("latin-1")


def _amc_cut(path: Path, frames: int) -> bytes:
    """The AMC clip with only its first frames."""
    lines = path.read_bytes().split(b"\n")
    starts = [i for i, line in enumerate(lines) if line.strip().isdigit()]
    end = starts[frames] if len(starts) > frames else len(lines)
    return b"\n".join(lines[:end]) + b"\n"


def _write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _convert(path: Path, **options) -> list[Sequence]:
    return convert_file(path, ConvertOptions(text=TEXT, **options))


def build_targets(shared: Path, motions: Path) -> dict[str, Target]:
    """Every reader with its seeds: small real files from ../shared/data and pybullet's clips."""
    walk = _convert(shared / "cmu/bvh/02_01.bvh")[0]
    backflip = _convert(motions / "humanoid3d_backflip.txt")[0]

    from myocli.data.bvh_export import write_bvh

    with tempfile.TemporaryDirectory() as folder:
        exported = write_bvh(Path(folder) / "myo28.bvh", walk.motion[:30], 20.0)
        myo28_bvh = _bvh_cut(exported, 30)
        short_walk = Sequence("walk", walk.motion[:30], ["a person walks"], "walk", "cmu", "CMU")
        write_dataset(Path(folder) / "set.h5", [short_walk, backflip])
        h5_seed = (Path(folder) / "set.h5").read_bytes()

    bvh_seeds = {
        "02_01.bvh (CMU MotionBuilder)": _bvh_cut(shared / "cmu/bvh/02_01.bvh", 30),
        "01_01.bvh (CMU LFingers)": _bvh_cut(shared / "cmu/bvh/01_01.bvh", 20),
        "131_01.bvh (CMU 3dsMax)": _bvh_cut(shared / "cmu/bvh/131_01.bvh", 30),
        "bow_active_001.bvh (Bandai)": _bvh_cut(shared / "bandai_namco_1/data/dataset-1_bow_active_001.bvh", 30),
        "myo export --bvh": myo28_bvh,
    }
    # (skeleton, clip) pairs: HDM05 and CMU, 40 frames of each clip.
    acclaim_pairs = {
        "HDM_bd": ((shared / "hdm05/asf/HDM_bd.asf").read_bytes(),
                   _amc_cut(shared / "hdm05/amc/HDM_bd_depositFloorR_001_120.amc", 40)),
        "CMU 01": ((shared / "cmu/asf_amc/01.asf").read_bytes(), _amc_cut(shared / "cmu/asf_amc/01_01.amc", 40)),
    }  # fmt: skip
    deepmimic_seeds = {
        "humanoid3d_backflip.txt (pybullet)": (motions / "humanoid3d_backflip.txt").read_bytes(),
        "humanoid3d_sideflip.txt (DeepMimic)": (shared / "deepmimic/humanoid3d_sideflip.txt").read_bytes(),
    }
    smpl22 = (walk.motion[:40, :22] * 1.1).astype(np.float32)  # HumanML3D's body is another size
    texts_seed = (b"a person walks forward#a/DET person/NOUN walk/VERB forward/ADV#0.0#0.0\n"
                  b"someone takes a step#someone/PRON take/VERB a/DET step/NOUN#0.5#1.5\n"
                  b"a person walks#a/DET person/NOUN walk/VERB#nan#nan\n")  # fmt: skip
    labels_seeds = {
        "backflip pieces": b"file,text,start,end,reverse,license,dataset\n"
        b"humanoid3d_backflip.txt,a person does a backflip,,,,zlib,pybullet\n"
        b"humanoid3d_backflip.txt,a person crouches,0,0.5,,,\n"
        b"humanoid3d_backflip.txt,a person lands,0.5,1.2,1,,\n",
        "HDM05 skeleton and fps": b"file,skeleton,fps,text,start,end\n"
        b"clip.amc,actor.asf,120,a person bends down,,\n"
        b"clip.amc,actor.asf,120,a person reaches,0.05,0.3\n",
    }

    def read_bvh(folder: Path, case: Case):
        return _convert(_write(folder, "clip.bvh", case.payload))

    def read_asf(folder: Path, case: Case):
        asf = _write(folder, "actor.asf", case.payload)
        return _convert(_write(folder, "clip.amc", acclaim_pairs[case.seed][1]), skeleton=asf)

    def read_amc(folder: Path, case: Case):
        asf = _write(folder, "actor.asf", acclaim_pairs[case.seed][0])
        return _convert(_write(folder, "clip.amc", case.payload), skeleton=asf)

    def read_deepmimic(folder: Path, case: Case):
        return _convert(_write(folder, "humanoid3d_clip.txt", case.payload), loop=2.0)  # loop: repeat cycles too

    def read_humanml3d(folder: Path, case: Case, joints: bytes | None = None, texts: bytes | None = None):
        _write(folder, "HumanML3D/texts/000001.txt", case.payload if texts is None else texts)
        return _convert(_write(folder, "HumanML3D/new_joints/000001.npy", case.payload if joints is None else joints))

    def read_npy(folder: Path, case: Case):
        return _convert(_write(folder, "motion.npy", case.payload))

    def read_h5(folder: Path, case: Case):
        path = folder / "set.h5"
        if isinstance(case.payload, dict):
            _write_h5(path, case.payload)
        else:
            path.write_bytes(case.payload)
        read_dataset(path, check_values=False)  # as `myo data inspect` reads it
        return _convert(path)

    def read_labels(folder: Path, case: Case):
        labels = _write(folder, "labels.csv", case.payload)
        cap.read_sidecar.cache_clear()  # the cache is keyed by path, not content
        if case.seed.startswith("HDM05"):
            _write(folder, "actor.asf", acclaim_pairs["HDM_bd"][0])
            return _convert(_write(folder, "clip.amc", acclaim_pairs["HDM_bd"][1]), labels=labels)
        return _convert(_write(folder, "humanoid3d_backflip.txt", deepmimic_seeds["humanoid3d_backflip.txt (pybullet)"]), labels=labels)

    def seeds_of(seeds: dict) -> list[Case]:
        return [Case(name, data, "undamaged") for name, data in seeds.items()]

    asf_seeds = {name: pair[0] for name, pair in acclaim_pairs.items()}
    amc_seeds = {name: pair[1] for name, pair in acclaim_pairs.items()}
    npy_arrays = {"walk (T, 28, 3)": walk.motion[:40], "walk (T, 84)": walk.motion[:40].reshape(40, 84)}
    smpl_arrays = {"000001.npy (T, 22, 3)": smpl22}
    sequences = Seeds(walk=short_walk, backflip=backflip)
    targets = [
        Target("bvh", seeds_of(bvh_seeds), file_inputs(bvh_seeds), read_bvh),
        Target("asf", seeds_of(asf_seeds), file_inputs(asf_seeds), read_asf),
        Target("amc", seeds_of(amc_seeds), file_inputs(amc_seeds), read_amc),
        Target("deepmimic", seeds_of(deepmimic_seeds), file_inputs(deepmimic_seeds), read_deepmimic),
        Target("humanml3d_npy", seeds_of({k: _npy_bytes(v) for k, v in smpl_arrays.items()}), array_inputs(smpl_arrays),
               partial(read_humanml3d, texts=texts_seed)),
        Target("humanml3d_texts", seeds_of({"000001.txt": texts_seed}), file_inputs({"000001.txt": texts_seed}),
               partial(read_humanml3d, joints=_npy_bytes(smpl22))),
        Target("npy", seeds_of({k: _npy_bytes(v) for k, v in npy_arrays.items()}), array_inputs(npy_arrays), read_npy),
        Target("h5", seeds_of({"set.h5": h5_seed, "layout": _layout(list(sequences.values()))}),
               st.one_of(odd_layouts(sequences), file_inputs({"set.h5": h5_seed})), read_h5),
        Target("labels_csv", seeds_of(labels_seeds), file_inputs(labels_seeds), read_labels),
    ]  # fmt: skip
    return {target.name: target for target in targets}


# --------------------------------------------------------------------------------------------
# Running one input


class Hang(Exception):
    """A read that ran past TIME_LIMIT_S."""


@contextmanager
def _time_limit(seconds: float):
    def expire(signum, frame):
        raise Hang(f"still reading after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Outcome:
    """"ok", "myo_error" or "bug"; for a bug, what went wrong (an exception type or a check)."""

    kind: str
    what: str = ""
    detail: str = ""


def _invalid(result) -> str:
    """Why a reader's result is not a valid set of myo28 motions ('' when it is)."""
    for seq in result:
        motion = np.asarray(seq.motion)
        if motion.ndim != 3 or motion.shape[1:] != (28, 3) or len(motion) < 1:
            return f"sequence {seq.name!r} shaped {motion.shape}"
        if not np.isfinite(motion).all():
            return f"sequence {seq.name!r} holds NaN or Inf"
        uncaptioned = seq.captions == [""]  # how an uncaptioned clip is recorded (a BVH brought back, say)
        if not uncaptioned and not (seq.captions and all(isinstance(c, str) and c.strip() for c in seq.captions)):
            return f"sequence {seq.name!r} has captions {seq.captions!r}"
    return ""


def attempt(target: Target, case: Case) -> Outcome:
    """Read one input in a fresh folder, with numpy warnings as errors and a time limit."""
    with tempfile.TemporaryDirectory(prefix="fuzz-") as temporary, warnings.catch_warnings():
        warnings.simplefilter("error")
        folder = Path(temporary)
        try:
            with _time_limit(TIME_LIMIT_S), np.errstate(all="warn", under="ignore"):
                result = target.read(folder, case)
        except MyoError as exc:
            # One clear message naming the file: the name of some file the reader was given.
            names = {p.name for p in folder.rglob("*")} | {p.stem for p in folder.rglob("*")}
            if not any(name in str(exc) for name in names):
                return Outcome("bug", "MyoError without the file's name", str(exc))
            return Outcome("myo_error", "MyoError", str(exc))
        except Exception as exc:  # finding these is the point
            where = traceback.extract_tb(exc.__traceback__)[-1]
            return Outcome("bug", type(exc).__name__, f"{exc} (at {Path(where.filename).name}:{where.lineno})")
        problem = _invalid(result)
        return Outcome("bug", "invalid result", problem) if problem else Outcome("ok")


# --------------------------------------------------------------------------------------------
# The tests

READERS = ["bvh", "asf", "amc", "deepmimic", "humanml3d_npy", "humanml3d_texts", "npy", "h5", "labels_csv"]
EXAMPLES = 100  # per reader: about a second each; derandomized, so CI tries the same inputs every run


@pytest.fixture(scope="session")
def targets(shared_data, pybullet_motions) -> dict[str, Target]:
    return build_targets(shared_data, pybullet_motions)


@pytest.mark.parametrize("reader", READERS)
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])  # fmt: skip
@given(data=st.data())
def test_damaged_input_gives_a_result_or_one_myo_error(targets, reader, data):
    target = targets[reader]
    case = data.draw(target.inputs, label="input")
    outcome = attempt(target, case)
    assert outcome.kind != "bug", f"{reader} ({case.seed}; {case.description}): {outcome.what}: {outcome.detail}"


def test_seeds_read_cleanly(targets):
    """The undamaged seeds are valid files: they read, so the fuzzing starts from valid input."""
    for target in targets.values():
        for case in target.seeds:
            outcome = attempt(target, case)
            assert outcome.kind == "ok", f"{target.name} ({case.seed}): {outcome.what}: {outcome.detail}"


def _bvh_with_value(source: Path, frame: int, column: int, value: str) -> str:
    head, _, motion = source.read_text(encoding="latin-1").partition("MOTION")
    lines = motion.strip().splitlines()
    words = lines[2 + frame].split()
    words[column] = value
    lines[2 + frame] = " ".join(words)
    return head + "MOTION\n" + "\n".join(lines) + "\n"


@pytest.mark.parametrize("column", [0, 5, 40])  # root position, root rotation, a leg joint
def test_bvh_nan_is_reported_at_its_source_frame(tmp_path, shared_data, column):
    path = tmp_path / "walk.bvh"
    path.write_text(_bvh_with_value(shared_data / "cmu/bvh/02_01.bvh", 112, column, "nan"))
    with pytest.raises(MyoError, match=r"frame 112\b") as caught:
        _convert(path)
    assert str(path) in str(caught.value)


def test_nan_in_a_synthesised_spine_is_reported_at_its_frame(cmu_walk):
    """normalise names the frame that holds the NaN even when the spine is synthesised along the
    source's polyline, whose segment lengths are averaged over the frames."""
    from myocli import skeleton as sk
    from myocli.data.retarget import JointMap, SourceClip, map_to_myo28, normalise

    motion = cmu_walk.motion.astype(np.float64)
    motion[12, sk.JOINT_INDEX["neck"], 1] = np.nan
    named = {name: motion[:, k] for k, name in enumerate(sk.JOINT_NAMES)}
    spine = ("spine1", "spine2", "spine3")
    joint_map = JointMap(joints={n: n for n in sk.JOINT_NAMES if n not in spine}, spine=("pelvis", *spine, "neck"))
    clip = SourceClip("walk", map_to_myo28(named, joint_map), np.arange(len(motion)) / 20.0)
    with pytest.raises(MyoError, match=r"at frame 12\b"):
        normalise(clip)


def _replace(old: bytes, new: bytes) -> Callable[[bytes], bytes]:
    def change(data: bytes) -> bytes:
        assert old in data, old
        return data.replace(old, new, 1)

    return change


def _frame_value(frame: int, column: int, value: bytes) -> Callable[[bytes], bytes]:
    """A BVH with one channel value of one frame replaced."""

    def change(data: bytes) -> bytes:
        head, _, motion = data.partition(b"MOTION")
        lines = motion.split(b"\n")
        words = lines[3 + frame].split()
        words[column] = value
        lines[3 + frame] = b" ".join(words)
        return head + b"MOTION" + b"\n".join(lines)

    return change


def _h5_chunk_damaged(data: bytes) -> bytes:
    """The dataset file with bytes of its compressed motion chunk overwritten."""
    import h5py

    with h5py.File(io.BytesIO(data), "r") as handle:
        offset = handle["motion"].id.get_chunk_info(0).byte_offset
    return data[: offset + 10] + b"\xff" * 16 + data[offset + 26 :]


def _layout_change(**changes) -> Callable[[dict], dict]:
    def change(layout: dict) -> dict:
        import copy

        layout = copy.deepcopy(layout)
        for key, value in changes.items():
            (layout["attrs"] if key in ("fps", "format_version") else layout["datasets"])[key] = value
        return layout

    return change


_NPY_HEADER = b"{'descr': '<f4', 'fortran_order': False, 'shape': (40, 28, 3), }"
_CMU = "02_01.bvh (CMU MotionBuilder)"

# Inputs the fuzzing found to end in another exception (or a numpy warning, or a hang) before the
# readers were fixed: (reader, seed, damage, what the MyoError now says).
FOUND = [
    ("bvh", _CMU, _frame_value(5, 4, b"1e999"), "frame 5 has Inf in Hips's yrotation channel"),  # RuntimeWarning in cos
    ("bvh", _CMU, _replace(b"Frame Time: 0.008333", b"Frame Time: nan"), "not a mocap frame time"),  # ValueError
    ("bvh", _CMU, _replace(b"Frame Time: 0.008333", b"Frame Time: 1e9"), "not a mocap frame time"),  # MemoryError
    ("bvh", _CMU, _replace(b"JOINT Spine1", b"JOINT Spine-1e308"), "unknown BVH rig"),  # KeyError 'Spine1'
    ("bvh", _CMU, _replace(b"OFFSET 2.448110 -6.726130", b"OFFSET 2.448110 1e999"), "OFFSET"),  # RuntimeWarning
    ("asf", "HDM_bd", _replace(b"order TX TY TZ RX RY RZ", b"order TX TY TZ RX RY RY"), "root's order"),  # KeyError 'rz'
    ("asf", "HDM_bd", _replace(b"direction 0.34202 -0.939693 0 ", b"direction 0.34202 -0.939693"),
     "expected 3 finite numbers"),  # ValueError in matmul
    ("asf", "HDM_bd", _replace(b"length 0.45", b"length 1e-300"), "length unit"),  # RuntimeWarning: overflow
    ("amc", "HDM_bd", _replace(b"lowerback 12.3902", b"lowerback -inf"), "frame 1 has -Inf for bone lowerback"),
    ("deepmimic", "humanoid3d_backflip.txt (pybullet)", _replace(b"0.999412", b"-3e298"), "frame 0 has -3e+298"),
    ("deepmimic", "humanoid3d_backflip.txt (pybullet)", _replace(b"0.062500", b"1" + b"0" * 400), "int too large"),
    ("humanml3d_texts", "000001.txt", _replace(b"#0.5#1.5", b"#1e999#1.5"), "give seconds >= 0"),  # OverflowError
    ("humanml3d_texts", "000001.txt", _replace(b"#0.0#0.0", b"#1e308#0.0"), "give seconds >= 0"),  # OverflowError
    ("humanml3d_texts", "000001.txt", _replace(b"a person walks forward", b"\x82 person"), "unreadable"),  # Unicode
    ("humanml3d_npy", "000001.npy (T, 22, 3)", lambda data: data[:-3000] + data[-2997:] + b"\x01\x00\x80\x7f",
     "frame"),  # a signalling NaN: RuntimeWarning in the cast to float64
    ("npy", "walk (T, 28, 3)", lambda data: b"", "not a readable .npy array"),  # EOFError
    ("npy", "walk (T, 28, 3)", _replace(_NPY_HEADER, _NPY_HEADER.replace(b"(40, 28, 3)", b"(40, 28, 3")),
     "not a readable .npy array"),  # tokenize.TokenError
    ("h5", "set.h5", _h5_chunk_damaged, "damaged HDF5 file"),  # OSError: filter returned failure
    ("h5", "layout", _layout_change(names=["walk"]), "entries in 'names'"),  # IndexError
    ("h5", "layout", _layout_change(format_version=np.array([1, 2])), "attribute format_version"),  # TypeError
    ("h5", "layout", _layout_change(fps=0.0), "attribute fps"),  # RuntimeWarning: divide by zero
    ("h5", "layout", _layout_change(motion=np.full((2, 36, 84), 1e300)), "at frame 0"),  # overflow in the cast
    ("labels_csv", "HDM05 skeleton and fps", _replace(b"120,a person reaches", b"nan,a person reaches"), "fps 'nan'"),
]  # fmt: skip


@pytest.mark.parametrize("reader, seed, damage, message", FOUND, ids=[f"{r}-{m[:24]}" for r, _, _, m in FOUND])
def test_found_inputs_give_one_clear_myo_error(targets, reader, seed, damage, message):
    target = targets[reader]
    case = next(c for c in target.seeds if c.seed == seed)
    outcome = attempt(target, Case(seed, damage(case.payload), "found by fuzzing"))
    assert outcome.kind == "myo_error", f"{outcome.what}: {outcome.detail}"
    assert message in outcome.detail
