"""Atomic file output: write beside the target, rename over it only when complete.

A command that fails half-way must leave no half-written file behind, and must not
destroy what the user had at that path before (docs/design.md, "Command-line conventions").

Two kinds of failure reach every writer, so they are dealt with here, once:

- the file system refuses (a full disk, a read-only folder, no permission): the OSError becomes
  a MyoError that names the real output path, never the hidden temporary file, and says why;
- the user stops the command (Ctrl-C, SIGINT, or `kill`, SIGTERM): `stop_on_signals` makes both
  raise KeyboardInterrupt, and remembers the signal, because Python swallows an exception raised
  where it cannot propagate (a weakref callback, a destructor inside h5py: "Exception ignored in
  ..."). No temporary file is renamed into place after such a signal, swallowed or not.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from myocli.errors import MyoError

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

# What a refused write raises (errno): these say something about the output, not about a bug.
WRITE_ERRORS = {
    errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO,
    errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENOENT, errno.ENAMETOOLONG, errno.ELOOP,
}  # fmt: skip

_received: int | None = None  # the first SIGINT/SIGTERM this process got, once stop_on_signals is on
_holding = 0  # depth of signals_held blocks: while above 0, a signal is remembered, not raised


def _read_umask() -> int:
    umask = os.umask(0)  # the only way to read it; done once, at import
    os.umask(umask)
    return umask


_UMASK = _read_umask()


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`, on error it is removed.

    The temporary name ends with the target's extension (`.x.mp4.1a2b.tmp.mp4`), for writers
    that pick their format from it. A refused write (full disk, read-only folder, ...) is a
    MyoError naming `path`; after SIGINT/SIGTERM nothing is renamed into place.
    """
    path = Path(path)
    tmp: Path | None = None
    try:
        with signals_held():  # once the temporary file exists, the clean-up below knows it
            tmp = _create_beside(path)
        yield tmp
        with signals_held():  # never stopped between the check and the rename
            raise_if_interrupted()
            # mkstemp makes 0600 files: give the replaced file's mode, or the usual one for a new file.
            os.chmod(tmp, path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_UMASK)
            os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            with signals_held():  # a second Ctrl-C must not stop the clean-up half-way
                tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and (tmp is None or _is_write_error(exc, tmp)):
            raise write_error(path, exc) from exc
        raise


def _create_beside(path: Path) -> Path:
    """An empty temporary file in `path`'s folder (made if missing), named after `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    return Path(name)


def _is_write_error(exc: OSError, tmp: Path) -> bool:
    """Whether an OSError raised while writing `tmp` says the file system refused it (rather than
    being about some other file the writer opened, or a bug)."""
    return exc.errno in WRITE_ERRORS and exc.filename in (None, str(tmp))


def write_error(path: Path, exc: OSError) -> MyoError:
    """The one-line error of a refused write: the real output path and the system's reason."""
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    in_the_way = file_in_the_way(path) if exc.errno in (errno.EEXIST, errno.ENOTDIR) else None
    if in_the_way is not None:  # mkdir or open went through a file
        reason = f"{in_the_way} is not a folder"
    return MyoError(f"cannot write {path}: {reason}")


def file_in_the_way(path: Path) -> Path | None:
    """The nearest existing thing above `path`, when it is not a folder (so `path` can never be made)."""
    folder = Path(os.path.abspath(path)).parent
    while not os.path.lexists(folder) and folder != folder.parent:
        folder = folder.parent
    return None if folder.is_dir() else folder


# --- Signals ----------------------------------------------------------------------------------


def stop_on_signals() -> None:
    """Make SIGINT and SIGTERM stop the command the same way (KeyboardInterrupt, which removes
    temporary files on its way out), remember which came, and keep Python from printing a
    KeyboardInterrupt it had to swallow: `raise_if_interrupted` raises it again.

    `myo`'s entry point calls this once. Training installs its own handlers for its loop (which
    save the state first) and restores these afterwards."""
    for number in STOP_SIGNALS:
        signal.signal(number, _on_signal)
    previous = sys.unraisablehook

    def unraisable(hook_args) -> None:
        if _received is not None and isinstance(hook_args.exc_value, KeyboardInterrupt):
            return  # the signal is remembered, and honoured at the next check
        previous(hook_args)

    sys.unraisablehook = unraisable


def _on_signal(number: int, _frame) -> None:
    global _received
    if _received is None:
        _received = number
    if not _holding:  # else raised when the held steps are done
        raise KeyboardInterrupt


def received_signal() -> int | None:
    """The SIGINT or SIGTERM that is stopping this command, or None."""
    return _received


def raise_if_interrupted() -> None:
    """Raise KeyboardInterrupt if a stop signal came, even one whose exception was swallowed."""
    if _received is not None:
        raise KeyboardInterrupt


@contextmanager
def signals_held() -> Iterator[None]:
    """Run a few steps that must not be cut in two (rename into place, remove a temporary file):
    a SIGINT/SIGTERM that comes meanwhile raises its KeyboardInterrupt when the block is done.
    (A flag, not a signal mask: Python runs handlers in the main thread, whichever thread the
    signal reached.)"""
    global _holding
    _holding += 1
    try:
        yield
    finally:
        _holding -= 1
    if not _holding:
        raise_if_interrupted()
