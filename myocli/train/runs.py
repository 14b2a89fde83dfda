"""A training run's home in the registry, shared by every stage: allocation, run.json, resume.

A run's settings (model config, training options, stage extras) and what it trained on
(dataset hashes, --debug, the number of processes) go to run.json in its checkpoint
version as soon as that exists. `--resume` rebuilds exactly that run and refuses other
data or another process count; only the step limits and the log/eval/save intervals may
change. Resuming a finished version (kept with --keep-state) trains on into a new version
whose parent is the finished one, so published versions never change.

While a version trains, run_status.json in it names the process (registry.write_run_status); a
run that stops on a signal or an error records that there, so `myo ckpt list` can tell a run in
progress from an interrupted, failed or vanished one. A new run (without --resume) of a name
whose earlier run is unfinished is refused while that run still goes on or holds a state to go
on from: the error says to add --resume or to `myo ckpt remove` it. Every refusal is made before
anything starts: `check_new_run`, `check_resume` and `check_resume_matches` run before the data is
read and before `--gpus N` launches its workers (myocli/cli/training.py), and again, as the
authority, when the run is opened.
"""

from __future__ import annotations

import functools
import json
import shutil
import sys
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from myocli import registry
from myocli.errors import MyoError
from myocli.train.accelerator import peak_gpu_memory_mib
from myocli.train.launch import is_main_rank
from myocli.train.loop import PROGRESS_FILE, TrainingInterrupted

RUN_FILE = "run.json"
# max_steps and, for PPO, total_steps: a finished run kept with --keep-state trains on to the new count
RESUMABLE_OVERRIDES = ("max_steps", "total_steps", "max_minutes", "log_every", "eval_every", "save_every")


def check_resume(kind: str, name: str, train_overrides: dict, model_overrides: dict) -> None:
    """Before anything starts: is there a state to resume, is its run over, and are only resumable
    settings changed? An option repeated with the value the run was started with is no change: the
    command that started a run, with --resume added, goes on with it."""
    ref = registry.resumable(kind, name)
    if ref is None:
        raise MyoError(f"nothing to resume: no version of {kind}/{name} has a saved training state under {registry.home()}")
    if is_main_rank():  # the other workers of a launched run would find their own rank 0 at work
        _check_not_running(ref)
    state_dir = registry.saved_state(ref.path)
    if not (state_dir / PROGRESS_FILE).is_file():
        raise MyoError(f"{state_dir}: no {PROGRESS_FILE}; the saved training state is incomplete and cannot be resumed "
                       f"(`myo ckpt remove {ref.label}` removes it)")  # fmt: skip
    saved = _run_settings(ref)
    given = {k: (saved["train"].get(k), v) for k, v in train_overrides.items() if k not in RESUMABLE_OVERRIDES}
    given |= {k: (_saved_setting(saved, k), v) for k, v in model_overrides.items()}
    changed = [f"{k} {was} (now {now})" for k, (was, now) in given.items() if was != now]
    if changed:
        raise MyoError(f"--resume continues a run with its own settings, and {ref.label} was started with "
                       f"{', '.join(changed)}; only --max-steps (rl: --total-steps), --max-minutes and the --log/--eval/--save-every "
                       "intervals can change (leave the others out, or give them as the run started)")  # fmt: skip


def _run_settings(ref: registry.CheckpointRef) -> dict:
    """The settings a version's run was started with (its run.json), refused naming the file when unreadable."""
    path = ref.path / RUN_FILE
    try:
        settings = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise MyoError(f"{path}: missing, so {ref.label} cannot be resumed (its settings are unknown)") from exc
    except (OSError, ValueError) as exc:
        raise MyoError(f"{path}: not readable JSON ({exc}), so {ref.label} cannot be resumed") from exc
    if not isinstance(settings, dict) or not isinstance(settings.get("train"), dict):
        raise MyoError(f"{path}: not the settings of a run, so {ref.label} cannot be resumed")
    return settings


def _check_not_running(ref: registry.CheckpointRef) -> None:
    """Refuse to resume a run whose process is still at work on this machine: two would write one state."""
    status = registry.run_status(ref.path)
    if status["running"]:
        raise MyoError(f"{ref.label} is being trained right now, {status['reason']}; wait for it to end, or stop it "
                       "(Ctrl-C, or kill PID: it saves its state) and go on with --resume")  # fmt: skip


def check_new_run(kind: str, name: str) -> list[str]:
    """A new run (no --resume) of kind/NAME: refused while an earlier, unfinished version of the name runs or
    holds a training state, saying how to go on with it or to remove it. Returns a note for each one that
    is over and left nothing to resume (they stay listed until removed)."""
    notes = []
    for ref, status in registry.unfinished(kind, name):
        if status["running"]:
            raise MyoError(f"{ref.label} is being trained right now, {status['reason']}; wait for it to end, or choose another --name")
        if status["resumable"]:
            raise MyoError(f"{ref.label} is an unfinished run ({status['status']}: {status['reason']}); add --resume to go on "
                           f"from its saved state, or remove it first: myo ckpt remove {ref.label}")  # fmt: skip
        notes.append(f"note: {ref.label} is an unfinished run that saved nothing ({status['status']}: {status['reason']}); "
                     f"it stays until `myo ckpt remove {ref.label}`\n")  # fmt: skip
    return notes


def check_resume_matches(kind: str, name: str, trained_on: dict, command: str | None = None) -> None:
    """What opening a resumed run checks against its run.json (datasets, --debug, process count) and, for a
    run that recorded its stage (the LM's pretrain or instruct), the command resuming it: early, so that
    a refusal comes before the data is read and before `--gpus N` launches any worker."""
    ref = registry.resumable(kind, name)
    if ref is None:
        return  # check_resume has said so
    settings = _run_settings(ref)
    stage = settings.get("stage")
    if command and stage and stage != command:
        raise MyoError(f"--resume: {ref.label} was started by `myo {kind} {stage}`; resume it with that command")
    _check_trained_on(ref, settings, trained_on)


def _check_trained_on(ref: registry.CheckpointRef, settings: dict, trained_on: dict) -> None:
    for key, label in (("data", "datasets (sha256)"), ("debug", "--debug"), ("num_processes", "number of processes (--gpus)")):
        if settings.get(key) != trained_on[key]:
            raise MyoError(f"--resume: {ref.label} was trained with other {label} ({settings.get(key)} vs now {trained_on[key]}); "
                           "resume with the same data and --gpus, or train a new version without --resume")  # fmt: skip


def started_from(option: str, spec: str, kind: str) -> str:
    """The version a checkpoint option of a resumed command names (kind/NAME@N), as the run saved it."""
    try:
        return registry.resolve(spec, kind).label
    except MyoError as exc:
        raise MyoError(f"{option} {spec}: {exc}") from exc


def _saved_setting(saved: dict, key: str):
    """A top-level record of a saved run (--init's by its name, --text-encoder), or else a model setting."""
    value = saved[key] if key in saved else saved.get("model", {}).get(key)
    return value.get("name") if isinstance(value, dict) else value


def _resume(kind: str, name: str, trained_on: dict, train_overrides: dict) -> tuple[registry.CheckpointRef, dict]:
    ref = registry.resumable(kind, name)
    if ref is None:  # removed since check_resume looked
        raise MyoError(f"nothing to resume: no version of {kind}/{name} has a saved training state under {registry.home()}")
    settings = _run_settings(ref)
    _check_trained_on(ref, settings, trained_on)
    settings["train"] |= train_overrides
    if registry.is_complete(ref.path):  # a finished version stays as published: continue into a new one
        parent = ref
        ref = registry.new_version(kind, name)
        shutil.copytree(parent.path / registry.STATE, ref.path / registry.STATE)
        settings["parent"] = {"name": parent.label, "sha256": registry.read_manifest(parent.path)["files"][registry.WEIGHTS]["sha256"]}
    (ref.path / RUN_FILE).write_text(json.dumps(settings, indent=2) + "\n")
    return ref, settings


def open_run(
    kind: str, name: str, resume: bool, new_settings: Callable[[], dict], trained_on: dict, train_overrides: dict, state
) -> tuple[registry.CheckpointRef, dict]:
    """The version directory this run writes (new, or the one resumed) and its settings, the same
    on every process: rank 0 decides and shares the outcome, a failure too, so no rank waits forever."""
    from accelerate.utils import broadcast_object_list

    payload = [None]
    if state.is_main_process:
        try:
            if resume:
                ref, settings = _resume(kind, name, trained_on, train_overrides)
            else:
                notes = check_new_run(kind, name)
                settings = new_settings() | trained_on
                ref = registry.new_version(kind, name)
                (ref.path / RUN_FILE).write_text(json.dumps(settings, indent=2) + "\n")
                sys.stderr.write("".join(notes))
            registry.write_run_status(ref.path, "running")
            payload = [(ref.kind, ref.name, ref.version, str(ref.path), settings)]
        except Exception as exc:  # noqa: BLE001 - handed to every rank, raised there as one clear error
            payload = [("error", str(exc) if isinstance(exc, MyoError) else f"{type(exc).__name__}: {exc}")]
    if state.num_processes > 1:
        broadcast_object_list(payload)
    if payload[0][0] == "error":
        raise MyoError(payload[0][1])
    kind, name, version, path, settings = payload[0]
    return registry.CheckpointRef(kind, name, version, Path(path)), settings


@contextmanager
def removed_if_nothing_saved(ref: registry.CheckpointRef, state):
    """A run that fails before it saved any training state leaves no empty version behind; one that
    stops after saving records how (interrupted, or failed and why) in its run status, for
    `myo ckpt list` and the next run of its name."""
    state_dir = ref.path / registry.STATE
    had_state = state_dir.exists()
    try:
        yield
    except TrainingInterrupted as exc:
        if state.is_main_process:
            registry.write_run_status(ref.path, "interrupted", str(exc).split(";")[0])  # the rest says how to resume
        raise
    except BaseException as exc:
        if state.is_main_process and not had_state and not state_dir.exists():
            shutil.rmtree(ref.path, ignore_errors=True)
        elif state.is_main_process:
            registry.write_run_status(ref.path, *_how_it_ended(exc))
        raise


def _how_it_ended(exc: BaseException) -> tuple[str, str]:
    """(state, reason) of a run stopped by `exc` after it saved a training state."""
    if isinstance(exc, KeyboardInterrupt):  # Ctrl-C or SIGTERM outside the training loop: the saved state is whole
        return "interrupted", "interrupted before training went on"
    if isinstance(exc, MyoError):
        return "failed", str(exc)
    return "failed", f"unexpected {type(exc).__name__}: {exc}"


DEBUG_SEQUENCES = 8  # --debug trains on this many sequences (and validates on half as many)


@dataclass
class DatasetRun:
    """A run of a stage that trains on myo28 datasets (tokenizer, retrieval, SSM): what its command was
    given. Each stage's run adds its own options to these."""

    data: Path
    name: str
    config: str = "tiny"
    val: Path | None = None
    resume: bool = False
    debug: bool = False
    keep_state: bool = False
    model_overrides: dict = field(default_factory=dict)
    train_overrides: dict = field(default_factory=dict)


def require_file(option: str, path, made_by: str = "myo data convert") -> None:
    """A data file a trainer was given must be there, and be a file: a folder of clips gets its own answer,
    since that is what a new user passes before converting it (`made_by`: the command that makes one)."""
    if Path(path).is_dir():
        raise MyoError(f"{option} {path}: a folder, not a file; give the file `{made_by}` writes")
    if not Path(path).is_file():
        raise MyoError(f"{option} {path}: no such file; make one with `{made_by}`")


def check_inputs(run: DatasetRun) -> None:
    """The first of a stage's cheap checks: its registry name and the dataset files it was given."""
    registry.check_name(run.name)
    for option, path in (("--data", run.data), ("--val", run.val)):
        if path is not None:
            require_file(option, path)


def read_captioned_splits(run: DatasetRun, purpose: str):
    """`read_splits` for a stage that learns from captions: a set without them is refused, naming the
    option, the file and `purpose`, before the run exists (so there is nothing to clean up)."""
    train_set, val_set = read_splits(run.data, run.val, run.debug)
    for option, path, dataset in (("--data", run.data, train_set), ("--val", run.val, val_set)):
        if dataset is not None:
            dataset.require_captions(f"{option} {path}", purpose)
    return train_set, val_set


def read_splits(data: Path, val: Path | None, debug: bool):
    """(training set, validation set or None) of a run over myo28 datasets: cut short for --debug,
    and refused when the two are at different frame rates. Read before anything is created."""
    from myocli.data.h5 import read_dataset

    train_set = read_dataset(data)
    val_set = read_dataset(val) if val else None
    if debug:
        train_set.sequences = train_set.sequences[:DEBUG_SEQUENCES]
        if val_set is not None:
            val_set.sequences = val_set.sequences[: DEBUG_SEQUENCES // 2]
    if val_set is not None and abs(val_set.fps - train_set.fps) > 1e-6:
        raise MyoError(f"{val} is at {val_set.fps:g} fps but {data} at {train_set.fps:g}; convert both at one --fps")
    return train_set, val_set


def train_on_datasets(kind: str, run: DatasetRun, purpose: str, new_settings, train):
    """A captioned-dataset stage's run from start to end: read and check the data before anything is created
    in the registry, open the run (new or resumed; `new_settings(run)` makes a new one's settings), then
    `train(run, ref, settings, train_set, val_set)`, removing the version again if nothing was saved."""
    train_set, val_set = read_captioned_splits(run, purpose)
    ref, settings, state = open_dataset_run(kind, run, lambda: new_settings(run))
    with removed_if_nothing_saved(ref, state):
        return train(run, ref, settings, train_set, val_set)


def announce(accelerator, kind: str, ref: registry.CheckpointRef, resume: bool, model, hparams: dict, what: str, extra: str = "") -> None:
    """The start of a run, on the main process: TensorBoard gets the plain settings in `hparams`, and stderr one
    line, e.g. "Training ssm/demo@1: 12 sequences (900 frames), 0.80 M parameters, 1 process(es) on cpu"
    (`what`: ": 12 sequences (900 frames)"; `extra` goes after the parameter count)."""
    if not accelerator.is_main_process:
        return
    accelerator.init_trackers(kind, config={k: v for k, v in hparams.items() if isinstance(v, int | float | str | bool)})
    size = sum(p.numel() for p in model.parameters()) / 1e6
    sys.stderr.write(f"{'Resuming' if resume else 'Training'} {ref.label}{what}, {size:.2f} M parameters{extra}, "
                     f"{accelerator.num_processes} process(es) on {accelerator.device}\n")  # fmt: skip


def save_dataset_run(accelerator, ref, run: DatasetRun, settings: dict, result, model, config: dict, training: dict,
                     models_used: list[dict] = (), **manifest_fields) -> dict | None:  # fmt: skip
    """The end of a dataset run: the main process saves the trained `model` under `config`, with the training
    record (`training` adds the stage's own entries), the datasets' fingerprints, its parents (the run's, and
    `models_used`: checkpoints it was built on) and the last metrics (`manifest_fields`: extra_files and
    anything else registry.save takes); then `finish`."""
    if accelerator.is_main_process:
        registry.save(
            ref, config, accelerator.unwrap_model(model).state_dict(),
            training=training_record(settings, result, accelerator, run.debug) | training,
            dataset=fingerprints(settings, {"train": run.data, "val": run.val}),
            parents=list(models_used) + parents(settings),
            metrics={"train": result.last_logs, "val": result.last_eval},
            **manifest_fields,
        )  # fmt: skip
    return finish(accelerator, ref, result, run.keep_state)


def open_dataset_run(kind: str, run, new_settings: Callable[[], dict]) -> tuple[registry.CheckpointRef, dict, object]:
    """`open_run` for a stage that trains on run.data (and run.val): (ref, settings, process state)."""
    import torch
    from accelerate import PartialState

    state = PartialState(cpu=not torch.cuda.is_available())
    used = trained_on({"train": run.data, "val": run.val}, run.debug, state.num_processes)
    ref, settings = open_run(kind, run.name, run.resume, new_settings, used, run.train_overrides, state)
    return ref, settings, state


def trained_on(data: dict[str, Path | None], debug: bool, num_processes: int) -> dict:
    """What a resume must match: the datasets' sha256, --debug and the process count."""
    return {
        "data": {key: _dataset_sha256(Path(path)) if path else None for key, path in data.items()},
        "debug": debug,
        "num_processes": num_processes,
    }


def _dataset_sha256(path: Path) -> str:
    """registry.sha256 of a data file, read once per process while the file stays as it was: the early
    resume check and opening the run both need it, and a training set can take seconds to hash."""
    stat = path.stat()
    return _hashed(str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino)


@functools.lru_cache(maxsize=16)
def _hashed(path: str, _size: int, _mtime_ns: int, _inode: int) -> str:
    return registry.sha256(Path(path))


def training_record(settings: dict, result, accelerator, debug: bool) -> dict:
    """The manifest's `training` entry: the options, and how the run went."""
    return settings["train"] | {
        "steps_done": result.steps_done,
        "stopped_early": result.stopped_early,
        "seconds": round(result.seconds, 1),
        "samples_per_second": round(result.samples_per_second, 1),
        "data_wait_fraction": round(result.data_wait_fraction, 4),
        "num_processes": accelerator.num_processes,
        "rank_weights_sha256": result.rank_digests,
        "device": str(accelerator.device),
        "peak_gpu_memory_mib": peak_gpu_memory_mib(),
        "config_source": settings["config_source"],
        "debug": debug,
    }


def fingerprints(settings: dict, data: dict[str, Path | None]) -> dict:
    """The manifest's `dataset` entry, from the hashes taken when the run was opened."""
    hashed = settings["data"]
    return {key: registry.dataset_fingerprint(path, hashed[key]) for key, path in data.items() if path}


def parents(settings: dict) -> list[dict]:
    """The version this run continues, if it resumed a finished one."""
    return [settings["parent"]] if "parent" in settings else []


def finish(accelerator, ref: registry.CheckpointRef, result, keep_state: bool) -> dict | None:
    """After registry.save on rank 0: drop the training state unless kept, close the run on every
    process, and return the CLI's summary (None on the other ranks)."""
    if accelerator.is_main_process and not keep_state:
        shutil.rmtree(ref.path / registry.STATE, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    if not accelerator.is_main_process:
        return None
    return {"checkpoint": ref.label, "path": str(ref.path), "steps": result.steps_done, "val": result.last_eval, "train": result.last_logs}
