"""The checkpoint registry: named, versioned model directories under checkpoints/ (or $MYO_HOME).

    checkpoints/<kind>/<name>/v<N>/
        config.json          the model config, with its "type"
        model.safetensors    weights and buffers (no pickle anywhere)
        manifest.json        written last: sha256 of each file, myo version, git commit,
                             training options, dataset fingerprint, parents, metrics
        training_state/      Accelerate save_state, while training (and with --keep-state)
        run_status.json      while unfinished: the process training it (pid, host) and how its run
                             ended (interrupted, failed); removed once the manifest is written
        logs/                TensorBoard events

A name such as `tokenizer/myo-mini` means its newest complete version (one with a
manifest), `tokenizer/myo-mini@2` a given one; a path to a checkpoint directory works too.
Loading verifies every hash in the manifest first and refuses what does not match.

Built-in models: the package carries a read-only second registry (myocli/builtin/checkpoints,
the same layout). A name is looked up in the user's registry first and then there, so a user
checkpoint of the same kind/name would shadow a built-in one; training refuses the names of
built-in models, so that only happens to a folder copied in by hand. Nothing is ever written
into the built-in registry, nor removed from it.

An unfinished version (no manifest) is listed by what became of its run: `training` while its
process runs or after it stopped on a signal with its state saved (`--resume` goes on), `failed`
when it stopped on an error, `stale` when its process is gone without a word (killed, out of
memory, the machine restarted), `incomplete` when nothing says more (a version from an older myo
without a training state). Versions written by an older myo have no run_status.json: they are
read as before.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from myocli import __version__
from myocli.atomic import atomic_path
from myocli.errors import MyoError

KINDS = ("tokenizer", "lm", "ssm", "rl", "retrieval")
MANIFEST = "manifest.json"
CONFIG = "config.json"
WEIGHTS = "model.safetensors"
STATE = "training_state"
RUN_STATUS = "run_status.json"
FORMAT = "myo-checkpoint"
FORMAT_VERSION = 1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


BUILTIN = Path(__file__).resolve().parent / "builtin" / "checkpoints"


def home() -> Path:
    """$MYO_HOME, else checkpoints/ in the current directory (like datasets/: a project folder)."""
    return Path(os.environ.get("MYO_HOME", "checkpoints"))


@dataclass(frozen=True)
class CheckpointRef:
    kind: str
    name: str
    version: int
    path: Path

    @property
    def label(self) -> str:
        return f"{self.kind}/{self.name}@{self.version}"


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise MyoError(f"checkpoint name {name!r}: use letters, digits, '.', '_' and '-' (e.g. myo-mini)")
    return name


def _versions(kind: str, name: str, root: Path | None = None) -> list[int]:
    folder = (root or home()) / kind / name
    if not folder.is_dir():
        return []
    return sorted(int(p.name[1:]) for p in folder.iterdir() if p.is_dir() and re.fullmatch(r"v\d+", p.name))


def version_dir(kind: str, name: str, version: int, root: Path | None = None) -> Path:
    return (root or home()) / kind / name / f"v{version}"


def is_complete(path: Path) -> bool:
    return (path / MANIFEST).is_file()


def new_version(kind: str, name: str) -> CheckpointRef:
    """Create the directory of the next version of kind/name (not complete until saved)."""
    check_name(name)
    if _versions(kind, name, BUILTIN):
        raise MyoError(f"{kind}/{name} is the name of a built-in model; choose another --name")
    version = (_versions(kind, name) or [0])[-1] + 1
    path = version_dir(kind, name, version)
    path.mkdir(parents=True, exist_ok=False)
    return CheckpointRef(kind, name, version, path)


def saved_state(path: Path) -> Path | None:
    """A version's training state folder, if it holds one. A process killed while saving, between
    the two renames of the swap, leaves the previous state whole as training_state.old, which
    resuming puts back (loop.recover_swap): that counts too."""
    for folder in (path / STATE, path / f"{STATE}.old"):
        if folder.is_dir():
            return folder
    return None


def resumable(kind: str, name: str) -> CheckpointRef | None:
    """The newest version of kind/name that holds a training state, if any."""
    for version in reversed(_versions(kind, name)):
        path = version_dir(kind, name, version)
        if saved_state(path):
            return CheckpointRef(kind, name, version, path)
    return None


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state letter, start time in clock ticks after boot) of a process, from Linux's /proc; None elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # what follows the command name, which may hold spaces
    return (fields[0], fields[19]) if len(fields) > 19 else None


def this_process() -> dict:
    """This process as a run status records it. With its start time the pid names one process, though pids are reused."""
    pid = os.getpid()
    stat = _proc_stat(pid)
    return {"pid": pid, "host": socket.gethostname(), "pid_started": stat[1] if stat else None}


def process_alive(record: dict) -> bool | None:
    """Whether the process a run status names still runs; None when it ran on another machine (no way to tell from here)."""
    if record.get("host") != socket.gethostname():
        return None
    pid = record.get("pid")
    if type(pid) is not int or pid <= 0:
        return False
    try:
        os.kill(pid, 0)  # signal 0 only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    stat = _proc_stat(pid)
    if stat is None:
        return True  # no /proc: that the pid exists is all there is to know
    state, started = stat
    # A zombie has ended (its parent has not collected it yet); another start time means the pid was reused.
    return state not in ("Z", "X") and record.get("pid_started") in (None, started)


def write_run_status(path: Path, state: str, reason: str | None = None) -> None:
    """Record that this process trains the version at `path` (state "running"), or how its run ended
    ("interrupted", "failed", with the reason): what `myo ckpt list` and the next run of its name go by."""
    record = {"state": state, **this_process(), "updated": _now()}
    if reason:
        record["reason"] = reason
    _write_json(path / RUN_STATUS, record)


def _read_run_status(path: Path) -> dict | None:
    """A version's run_status.json; None when it has none (an older myo made it) or it cannot be read."""
    try:
        record = json.loads((path / RUN_STATUS).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def run_status(path: Path) -> dict:
    """What became of the run of an unfinished version: {"status", "reason", "resumable", "running"}, and
    "process" (pid, host) when recorded. `resumable`: it holds a training state for --resume; `running`:
    True while its process runs on this machine, False once it has ended, None when that cannot be told
    (it ran on another machine, or an older myo left no record)."""
    resumable = saved_state(path) is not None
    record = _read_run_status(path)
    state = record.get("state") if record else None
    if state not in ("running", "interrupted", "failed"):
        return {"status": "training" if resumable else "incomplete", "resumable": resumable, "running": None,
                "reason": "no record of its process (an older myo started it), so whether it still runs cannot be told"}  # fmt: skip
    found = {"resumable": resumable, "process": {"pid": record.get("pid"), "host": record.get("host")}}
    where = f"pid {record.get('pid')} on {record.get('host')}"
    if state == "running":
        alive = process_alive(record)
        if alive:
            return found | {"status": "training", "running": True, "reason": f"running as {where}"}
        if alive is None:
            return found | {"status": "training", "running": None, "reason": f"running as {where}, another machine, as far as its record says"}
        return found | {"status": "stale", "running": False,
                        "reason": f"its process, {where}, is gone without a word: killed, out of memory, or the machine restarted"}  # fmt: skip
    # Stopped on a signal with its state saved, the run is paused rather than over: still "training".
    status = "failed" if state == "failed" else "training" if resumable else "incomplete"
    return found | {"status": status, "running": False, "reason": str(record.get("reason") or state)}


def describe_unfinished(status: dict) -> str:
    """One line on an unfinished version for a person: what became of its run, and whether --resume can go on."""
    if status["running"]:
        return status["reason"]
    after = "--resume goes on from its saved state" if status["resumable"] else "nothing was saved, so there is nothing to resume"
    return f"{status['reason']}; {after}"


def unfinished(kind: str, name: str) -> list[tuple[CheckpointRef, dict]]:
    """The versions of kind/name in the user's registry without a manifest, each with its `run_status`."""
    found = []
    for version in _versions(kind, name):
        path = version_dir(kind, name, version)
        if not is_complete(path):
            found.append((CheckpointRef(kind, name, version, path), run_status(path)))
    return found


def resolve(spec: str, kind: str | None = None) -> CheckpointRef:
    """`kind/name`, `kind/name@N`, `name` (with kind given) or a checkpoint directory -> a complete checkpoint."""
    path = Path(spec)
    if (path / MANIFEST).is_file():
        manifest = read_manifest(path)
        if kind and manifest.get("kind") != kind:
            raise MyoError(f"{path} is a {manifest.get('kind')} checkpoint, but a {kind} is needed here")
        return CheckpointRef(manifest.get("kind", "?"), manifest.get("name", path.name), manifest.get("version", 0), path)
    base, _, version_text = spec.partition("@")
    parts = base.split("/")
    if len(parts) == 1 and kind:
        parts = [kind, parts[0]]
    elif len(parts) == 1:  # a bare name: fine when exactly one kind has it
        owners = [k for k in KINDS if (home() / k / parts[0]).is_dir() or (BUILTIN / k / parts[0]).is_dir()]
        if len(owners) == 1:
            parts = [owners[0], parts[0]]
        elif len(owners) > 1:
            raise MyoError(f"checkpoint {spec!r} is ambiguous: write one of {', '.join(f'{k}/{base}' for k in owners)}")
    if len(parts) != 2 or parts[0] not in KINDS:
        raise MyoError(f"checkpoint {spec!r}: expected KIND/NAME[@VERSION] with KIND one of {', '.join(KINDS)}, or a checkpoint folder")
    found_kind, name = parts
    if kind and found_kind != kind:
        raise MyoError(f"checkpoint {spec!r} is a {found_kind}, but a {kind} is needed here")
    for root in (home(), BUILTIN):  # the user's registry first, then the built-in one
        complete = [v for v in _versions(found_kind, name, root) if is_complete(version_dir(found_kind, name, v, root))]
        if complete:
            break
    if not complete:
        raise MyoError(f"no checkpoint {found_kind}/{name} under {home()} nor built in; `myo ckpt list` shows what there is")
    if version_text in ("", "latest"):
        version = complete[-1]
    else:
        if not version_text.isdigit():
            raise MyoError(f"checkpoint {spec!r}: the version after '@' must be a number or 'latest'")
        version = int(version_text)
        if version not in complete:
            raise MyoError(f"no complete version {version} of {found_kind}/{name}; there are {', '.join(map(str, complete))}")
    return CheckpointRef(found_kind, name, version, version_dir(found_kind, name, version, root))


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def git_commit() -> str | None:
    """The commit of the myo source tree, with '-dirty' when it has uncommitted changes; None outside git."""
    source = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True, timeout=5)
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=source, capture_output=True, text=True, timeout=5)
        return commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def dataset_fingerprint(path: str | Path, known_sha256: str | None = None) -> dict:
    """Path, sha256 and size of a dataset file (`known_sha256`: already hashed, skip the read)."""
    path = Path(path)
    return {"path": str(path), "sha256": known_sha256 or sha256(path), "bytes": path.stat().st_size}


def _write_json(path: Path, value: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(value, indent=2, sort_keys=False) + "\n")


def save(ref: CheckpointRef, config: dict, state_dict: dict, extra_files: Sequence[str] = (), **manifest_fields) -> Path:
    """Write config, weights and (last) the manifest into ref.path; returns the path.

    `extra_files` are files already in ref.path (relative paths, such as a text tokenizer's)
    that belong to the checkpoint: the manifest hashes them like the weights."""
    import torch
    from safetensors.torch import save

    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items() if isinstance(v, torch.Tensor)}
    _write_json(ref.path / CONFIG, config)
    # Serialised in memory, then one plain write: a full disk is an OSError that atomic_path reports
    # by the weights' name (safetensors' own writer raises its own error type, with no path).
    weights = save(tensors, metadata={"format": "pt", "type": config.get("type", "")})
    with atomic_path(ref.path / WEIGHTS) as tmp:
        tmp.write_bytes(weights)
    files = {f: {"sha256": sha256(ref.path / f), "bytes": (ref.path / f).stat().st_size} for f in (CONFIG, WEIGHTS, *extra_files)}
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": ref.kind,
        "name": ref.name,
        "version": ref.version,
        "type": config.get("type"),
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "myo_version": __version__,
        "git_commit": git_commit(),
        "files": files,
        "config": config,
        **manifest_fields,
    }
    _write_json(ref.path / MANIFEST, manifest)
    (ref.path / RUN_STATUS).unlink(missing_ok=True)  # published: there is no run to report any more
    return ref.path


def read_manifest(path: Path) -> dict:
    """The manifest of a checkpoint folder, refused with the file named unless it is a
    myo-checkpoint v1 manifest listing its files, each with a sha256."""
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except FileNotFoundError as exc:
        raise MyoError(f"{path}: no {MANIFEST}; the checkpoint is incomplete (was training interrupted?)") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MyoError(f"{path / MANIFEST}: not valid JSON ({exc}); the checkpoint is damaged") from exc
    version = manifest.get("format_version") if isinstance(manifest, dict) else None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or type(version) is not int or version != FORMAT_VERSION:
        found = f"format {manifest.get('format')!r} v{version!r}" if isinstance(manifest, dict) else "not a JSON object"
        raise MyoError(f"{path / MANIFEST}: not a {FORMAT} v{FORMAT_VERSION} manifest; upgrade myo or re-train (it holds {found})")
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise MyoError(f"{path / MANIFEST}: its files list is damaged (not a mapping); the checkpoint cannot be checked")
    unhashed = [name for name, entry in files.items() if not (isinstance(entry, dict) and isinstance(entry.get("sha256"), str))]
    if unhashed:
        raise MyoError(f"{path / MANIFEST}: its files list is damaged ({', '.join(unhashed)} without a sha256); the checkpoint cannot be checked")
    return manifest


def read_config(path: Path) -> dict:
    """A checkpoint's config.json, refused with the file named when it is not a JSON object."""
    try:
        config = json.loads((path / CONFIG).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MyoError(f"{path / CONFIG}: not valid JSON ({exc}); the checkpoint is damaged") from exc
    if not isinstance(config, dict):
        raise MyoError(f"{path / CONFIG}: not a JSON object; the checkpoint is damaged")
    return config


def verify(path: Path) -> list[str]:
    """Every problem found: missing files, hash and size mismatches. Empty when all is well."""
    manifest = read_manifest(path)
    files = manifest["files"]
    problems = [f"{path / MANIFEST}: does not list {name}, so it cannot be checked" for name in (CONFIG, WEIGHTS) if name not in files]
    for name, expected in files.items():
        file = path / name
        if not file.is_file():
            problems.append(f"{file}: missing")
        elif sha256(file) != expected["sha256"]:
            problems.append(f"{file}: sha256 differs from the manifest (modified or damaged after saving)")
    if problems or CONFIG not in files:
        return problems
    config = read_config(path)
    if config != manifest.get("config"):
        problems.append(f"{path / CONFIG}: differs from the config recorded in the manifest")
    # Folders the model loads files from by path (a frozen text encoder) must be hashed whole.
    for folder in {config.get("text_encoder")} - {None, ""}:
        for file in sorted((path / folder).rglob("*")) if (path / folder).is_dir() else []:
            if file.is_file() and str(file.relative_to(path)) not in files:
                problems.append(f"{file}: not listed in the manifest, so it cannot be checked")
    return problems


def first_problem(problems: list[str]) -> str:
    """The first of a checkpoint's problems, and how many more there are."""
    return problems[0] + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")


def file_problems(path: Path, manifest: dict) -> list[str]:
    """What the sizes alone tell of a checkpoint's files (missing ones, sizes other than the manifest's)
    without reading them: the quick look of `myo ckpt list`; `verify` reads and hashes every byte."""
    problems = []
    for name, entry in manifest["files"].items():
        file, expected = path / name, entry.get("bytes")
        if not file.is_file():
            problems.append(f"{file}: missing")
        elif type(expected) is int and file.stat().st_size != expected:
            problems.append(f"{file}: {file.stat().st_size} bytes, not the {expected} of the manifest (modified or damaged after saving)")
    return problems


def load(spec: str, kind: str, expected_type: str) -> tuple[CheckpointRef, dict, dict, dict]:
    """Verify and load a checkpoint: (ref, config, tensors, manifest). Never unpickles."""
    from safetensors.torch import load_file

    ref = resolve(spec, kind)
    manifest = read_manifest(ref.path)
    problems = verify(ref.path)
    if problems:
        raise MyoError(f"checkpoint {ref.label} failed verification: {first_problem(problems)}")
    config = read_config(ref.path)
    if config.get("type") != expected_type:
        raise MyoError(f"checkpoint {ref.label} holds a {config.get('type')!r} model, not a {expected_type!r}")
    return ref, config, load_file(str(ref.path / WEIGHTS)), manifest


def load_model(spec: str, kind: str, config_class) -> tuple[CheckpointRef, object, dict, dict]:
    """`load` for a model config dataclass (with `type` and `skeleton` fields): (ref, config, tensors,
    manifest), refusing a config this myo cannot build or one made for another skeleton."""
    from myocli import skeleton as sk

    ref, values, tensors, manifest = load(spec, kind, config_class().type)
    try:
        config = config_class.from_dict(values)
    except (MyoError, TypeError) as exc:
        raise MyoError(f"checkpoint {ref.label}: config.json does not describe a {config_class().type} this myo can build ({exc})") from exc
    if config.skeleton != sk.NAME:
        raise MyoError(f"checkpoint {ref.label} was trained on the {config.skeleton!r} skeleton; this myo works on {sk.NAME}")
    return ref, config, tensors, manifest


@dataclass
class Pretrained:
    """A checkpoint loaded for use: what `from_pretrained` returns."""

    ref: CheckpointRef
    config: object  # the kind's config dataclass
    model: object  # the torch module, weights loaded, in eval mode
    manifest: dict


def from_pretrained(spec: str, kind: str, config_class, build, check=None) -> Pretrained:
    """The one way every kind loads a checkpoint: verify its files against the manifest, read its config
    (`load_model`), let `check(ref, config)` refuse what this myo cannot use (an older feature version,
    another humanoid), build the module with `build(config, ref)` and load the weights into it strictly
    (`load_weights`). Never unpickles."""
    ref, config, tensors, manifest = load_model(spec, kind, config_class)
    if check is not None:
        check(ref, config)
    model = build(config, ref)
    load_weights(model, tensors, ref.label)
    return Pretrained(ref, config, model.eval(), manifest)


def tensors_to_save(model) -> dict:
    """A module's state dict without the copies of tied weights (safetensors refuses tensors that share
    memory): a T5 ties its encoder's and decoder's embeddings (and often its output layer) to `shared`."""
    kept, seen = {}, set()
    for name, tensor in model.state_dict().items():
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape))
        if key not in seen:
            seen.add(key)
            kept[name] = tensor
    return kept


def load_weights(model, tensors: dict, label: str) -> None:
    """Load saved weights into a freshly built module, refusing with one error any tensor missing, left
    over or of another shape. Only the tied copies `tensors_to_save` leaves out may be absent: loading
    the one tensor they share fills them all."""
    needed = set(tensors_to_save(model))
    try:
        missing, unexpected = model.load_state_dict(tensors, strict=False)
    except RuntimeError as exc:  # a tensor of another shape; torch's first line only says "Error(s) in loading"
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        raise MyoError(f"checkpoint {label}: its weights do not fit its config.json ({lines[min(1, len(lines) - 1)]})") from exc
    if unexpected or needed & set(missing):
        problem = f"unexpected {unexpected[:3]}" if unexpected else f"missing {sorted(needed & set(missing))[:3]}"
        raise MyoError(f"checkpoint {label}: its weights do not fit its config.json ({problem})")


def list_all(builtin: bool = True, verify_files: bool = False) -> list[dict]:
    """One row per version under the registry root, newest last, then (`builtin`) the built-in models.

    A complete version whose files are missing or have other sizes than its manifest says is listed
    as damaged; `verify_files` hashes every file too (as `verify` does), which reads every byte."""
    rows = []
    for kind, root in [(k, home()) for k in KINDS] + ([(k, BUILTIN) for k in KINDS] if builtin else []):
        folder = root / kind
        if not folder.is_dir():
            continue
        for name_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
            for version in _versions(kind, name_dir.name, root):
                path = version_dir(kind, name_dir.name, version, root)
                row = {"name": f"{kind}/{name_dir.name}", "version": version, "path": str(path)}
                if is_complete(path):
                    rows.append(_complete_row(row, path, "built-in" if root == BUILTIN else "complete", verify_files))
                else:
                    rows.append(row | run_status(path))
    return rows


def _complete_row(row: dict, path: Path, status: str, verify_files: bool) -> dict:
    """The list row of a version with a manifest: its status (or "damaged", with the first problem) and headline figures."""
    try:
        manifest = read_manifest(path)
    except MyoError as exc:
        return row | {"status": "damaged", "problem": str(exc)}
    row |= {
        "status": status,
        "type": manifest.get("type"),
        "created": manifest.get("created"),
        "steps": manifest.get("training", {}).get("steps_done"),
        "metrics": manifest.get("metrics", {}),
        "bytes": sum(f.get("bytes", 0) for f in manifest["files"].values()),
    }
    try:
        problems = verify(path) if verify_files else file_problems(path, manifest)
    except MyoError as exc:  # a config.json that is not JSON
        problems = [str(exc)]
    return row | {"status": "damaged", "problem": first_problem(problems)} if problems else row


def find_version(spec: str) -> CheckpointRef:
    """The version KIND/NAME@N of the user's registry, finished or not (to remove it); built-in ones are refused."""
    base, at, version_text = spec.partition("@")
    parts = base.split("/")
    if len(parts) != 2 or parts[0] not in KINDS or not at or not version_text.isdigit():
        raise MyoError(f"{spec!r}: name one version as KIND/NAME@N, with KIND one of {', '.join(KINDS)}; `myo ckpt list` shows them")
    kind, name, version = parts[0], check_name(parts[1]), int(version_text)
    path = version_dir(kind, name, version)
    if path.is_dir():
        return CheckpointRef(kind, name, version, path)
    if version_dir(kind, name, version, BUILTIN).is_dir():
        raise MyoError(f"{kind}/{name}@{version} is a built-in model: it comes with myo, which never removes it")
    raise MyoError(f"no version {version} of {kind}/{name} under {home()}; `myo ckpt list` shows what there is")


def removal_problem(ref: CheckpointRef) -> str | None:
    """Why a version must not be removed now, or None: its run still goes on, or may (that cannot be told)."""
    if is_complete(ref.path):
        return None
    status = run_status(ref.path)
    if status["running"]:
        return f"{ref.label} is being trained right now, {status['reason']}; stop that run first (Ctrl-C, or kill PID: it saves its state)"
    if status["running"] is None:
        return f"{ref.label}: {status['reason']}; if no training writes it any more, delete {ref.path} yourself"
    return None


def remove_version(ref: CheckpointRef) -> None:
    """Delete a version folder. It is first renamed out of the registry, so that a crash halfway through
    leaves no half version behind; the name's folder goes with its last version."""
    doomed = ref.path.with_name(f".removing-{ref.path.name}-{os.getpid()}")
    ref.path.rename(doomed)
    shutil.rmtree(doomed)
    try:
        ref.path.parent.rmdir()
    except OSError:
        pass  # other versions remain


def newest(kind: str, prefer=None) -> CheckpointRef | None:
    """The most recently created complete checkpoint of a kind in the user's registry (among those
    `prefer(manifest)` accepts, when any does): the default model of commands like `myo generate`."""
    found = []
    for row in list_all(builtin=False):
        if row["name"].startswith(f"{kind}/") and row.get("status") == "complete":
            manifest = read_manifest(Path(row["path"]))
            found.append((bool(prefer and prefer(manifest)), manifest.get("created", ""), row["version"], manifest))
    if not found:
        return None
    *_, manifest = max(found, key=lambda item: item[:3])
    return CheckpointRef(kind, manifest["name"], manifest["version"], version_dir(kind, manifest["name"], manifest["version"]))
