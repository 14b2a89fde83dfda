"""What every command that writes files shares: the checks made first (never a folder, never an
input, the extension the file's contents have, never replace silently), default output names that
differ for different inputs and prompts, and writing a motion .npy atomically.

Only the standard library at module level: `myo --help` imports this through every command."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from myocli.errors import MyoError

# How much of a prompt or sequence name goes into a default file name; the rest is in its hash.
NAME_CHARS = 40


def check_outputs(outputs: list[Path], overwrite: bool, inputs: Iterable[Path] = (), option: str = "-o",
                  suffixes: tuple[str, ...] = (), contents: str = "") -> None:  # fmt: skip
    """Everything checked about a command's outputs before it does any work: none is one of its
    `inputs` (even with --overwrite), each ends in one of `suffixes` (when given: what `contents`
    calls for), none is a folder, none exists without --overwrite."""
    check_not_inputs(outputs, inputs, option)
    if suffixes:
        for output in outputs:
            check_suffix(output, suffixes, contents, option)
    check_free(outputs, overwrite, option)


def check_free(paths: list[Path], overwrite: bool, option: str = "-o") -> None:
    """Refuse outputs that are folders, that exist without --overwrite (naming `option`), or whose
    folder cannot take a file."""
    for path in paths:
        if path.is_dir():
            raise MyoError(f"{path} is a folder; give a file name to {option}")
    existing = [str(p) for p in paths if p.exists()]
    if existing and not overwrite:
        raise MyoError(f"{', '.join(existing)} already exists; pass --overwrite to replace it, or choose another {option}")
    for path in paths:
        check_writable(path)


def check_writable(path: Path) -> None:
    """Refuse, before any work, an output that cannot be written: under a file instead of a folder,
    on a read-only file system, or in a folder without write permission. (A full disk shows only
    when writing, as does a folder that refuses even root: atomic_path reports those the same way.)"""
    import os

    from myocli.atomic import file_in_the_way

    in_the_way = file_in_the_way(path)
    if in_the_way is not None:
        raise MyoError(f"cannot write {path}: {in_the_way} is not a folder")
    folder = Path(os.path.abspath(path)).parent
    while not folder.exists():  # made when writing: what matters is the folder it will be made in
        folder = folder.parent
    if hasattr(os, "statvfs") and os.statvfs(folder).f_flag & os.ST_RDONLY:
        raise MyoError(f"cannot write {path}: {folder} is on a read-only file system")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise MyoError(f"cannot write {path}: permission denied in {folder}")


def check_not_inputs(outputs: Iterable[Path], inputs: Iterable[Path], option: str = "-o") -> None:
    """Refuse an output that is one of the command's inputs, however either is spelled: writing it
    would destroy what the command reads (or replace the user's link to it), so --overwrite does not apply."""
    targets = [(Path(output), _identities(Path(output))) for output in outputs]
    for source in inputs:  # possibly thousands of clips: each is looked at once
        known = _identities(Path(source))
        for output, identities in targets:
            if identities & known:
                raise MyoError(f"{option}: {output} is the input {source}; writing it would destroy the input, "
                               f"which even --overwrite never does: choose another {option}")  # fmt: skip


def _identities(path: Path) -> set:
    """What makes two paths one file: the path resolved (symlinks, `..`, `./`, relative or absolute)
    and, for a file that exists, its device and inode (hard links, case-insensitive file systems)."""
    identities: set = {path.resolve()}
    try:
        stat = path.stat()
    except OSError:  # not there (yet): its resolved path is all there is
        return identities
    return identities | {(stat.st_dev, stat.st_ino)}


def check_suffix(path: Path, suffixes: tuple[str, ...], contents: str, option: str = "-o") -> None:
    """Refuse an output name whose extension is not one of `suffixes` (lower case, dot first): a
    file called x.bvh that holds HDF5 misleads every program that opens it. `contents` says what is written."""
    if path.suffix.lower() not in suffixes:
        wanted = " or ".join(suffixes)
        raise MyoError(f"{option} {path}: this command writes {contents}, so the name must end in {wanted} "
                       f"(e.g. {path.with_suffix(suffixes[0]) if path.suffix else f'{path}{suffixes[0]}'})")  # fmt: skip


def check_stem(stem: Path, suffixes: tuple[str, ...], option: str = "-o") -> None:
    """Refuse a path stem (STEM_0.npy, ...) that ends in one of the extensions the command adds:
    `-o walk.npy` would write walk.npy_0.npy, not the walk.npy it seems to ask for."""
    if stem.suffix.lower() in suffixes:
        raise MyoError(f"{option} {stem}: a path stem, so the samples would be {stem}_0{stem.suffix}, {stem}_1{stem.suffix}, ...; "
                       f"give it without {stem.suffix}, e.g. {option} {stem.with_suffix('')}")  # fmt: skip


def prompt_stem(prompt: str) -> str:
    """A default file stem from a prompt: its words (letters and digits of any script) lowercased and
    joined by `_`, at most NAME_CHARS characters. When that does not spell the prompt exactly (case,
    punctuation, cut short, or nothing left, as for emoji), a short hash of the prompt is added, so
    different prompts never share a name and the same prompt always gets the same one."""
    words = _words(prompt.lower(), r"[\W_]+")
    if words and prompt == words.replace("_", " "):
        return words
    return f"{words or 'motion'}_{_short_hash(prompt)}"


def input_stem(spec: str, index: int | None = None) -> str:
    """A default file stem from a motion input: `walk.npy` -> walk, `walks.h5:3` (or --index 3) ->
    walks_3, `walks.h5:02_01` -> walks_02_01, so two sequences of one file get different names. A
    sequence name that is not safe in a file name as it is keeps its safe part, plus its hash."""
    from myocli.data.motion_input import parse_spec

    path, chosen = parse_spec(spec, index)
    if chosen is None:
        return path.stem
    text = str(chosen)
    safe = _words(text, r"[^\w.-]+").lstrip(".")  # no folders, no hidden files
    if safe != text:  # the hash keeps it apart from the name it now looks like
        safe = f"{safe}_{_short_hash(text)}" if safe else _short_hash(text)
    return f"{path.stem}_{safe}"


def _words(text: str, separators: str) -> str:
    """`text` with each run of `separators` made one `_`, cut to NAME_CHARS, no `_` at either end.
    NFKC first, so full-width and composed letters become the ones a file system sees."""
    joined = re.sub(separators, "_", unicodedata.normalize("NFKC", text))
    return joined.strip("_")[:NAME_CHARS].strip("_")


def _short_hash(text: str) -> str:
    """8 hex digits of the text's SHA-256: the same on every run and machine (unlike hash())."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


@contextmanager
def all_or_none(paths: Iterable[Path]) -> Iterator[None]:
    """Write several outputs as one: when the block fails (Ctrl-C included), each of `paths` that
    it wrote is removed again, so no incomplete set is left behind; paths it had not reached keep
    what they held. A path counts as written when it holds another file than before (atomic_path
    renames a new file into place)."""
    from myocli.atomic import signals_held

    before = {Path(path): _file_id(Path(path)) for path in paths}
    try:
        yield
    except BaseException:
        with signals_held():  # a second Ctrl-C must not stop the clean-up half-way
            for path, old in before.items():
                if _file_id(path) not in (None, old):
                    path.unlink(missing_ok=True)
        raise


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def save_motion(path: Path, positions) -> None:
    """A motion (T, 28, 3) as float32 metres in a .npy, written atomically."""
    import io

    import numpy as np

    from myocli.atomic import atomic_path

    buffer = io.BytesIO()  # then one plain write: numpy's own write reports a full disk without its errno
    np.save(buffer, np.asarray(positions, dtype=np.float32))
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getbuffer())
