"""What every `myo ... train` command shares: its options, declared once, and the way it runs.

A stage's command declares only its own options and is decorated with `@training_command`, which
adds the shared ones (processes and machines, precision, steps, rates, seed, saving, resuming,
--json) to the signature Typer reads. The command builds its stage's run from `options` (all of
its options by name) and hands it to `run_trainer`: check, re-launch under Accelerate when asked,
train, report.
"""

from __future__ import annotations

import functools
import inspect
import json
import sys
from enum import Enum
from typing import Annotated

import typer

from myocli.cli.numbers import SEED_MAX, number
from myocli.errors import MyoError


class Precision(str, Enum):
    no = "no"
    bf16 = "bf16"
    fp16 = "fp16"


Gpus = Annotated[int, number("--gpus", low=1, help="Processes per machine; N > 1 re-launches through `accelerate launch` (CPU processes with gloo when there is no CUDA).")]
NumMachines = Annotated[int, number("--num-machines", low=1, help="Machines in a multi-node run (passed to accelerate launch).")]
MachineRank = Annotated[int, number("--machine-rank", low=0, help="This machine's rank in a multi-node run.")]
MainProcessIp = Annotated[str | None, typer.Option("--main-process-ip", help="Address of the rank-0 machine in a multi-node run.")]
MainProcessPort = Annotated[int | None, number("--main-process-port", low=1, high=65535, help="Port of the rank-0 machine in a multi-node run (on one machine a free port is picked).")]
MixedPrecision = Annotated[Precision | None, typer.Option("--mixed-precision", help="no, bf16 or fp16 (fp16 needs a CUDA GPU); default: the config's, else no.")]
GradAccum = Annotated[int | None, number("--grad-accum", low=1, help="Micro-batches per optimizer step (default: the config's, else 1).")]
MaxSteps = Annotated[int | None, number("--max-steps", low=1, help="Optimizer steps (default: the config's).")]
MaxMinutes = Annotated[float | None, number("--max-minutes", low=0, help="Stop cleanly and save after this many minutes (0: no limit).")]
BatchSize = Annotated[int | None, number("--batch-size", low=1, help="Samples per process per micro-batch (default: the config's).")]
LearningRate = Annotated[float | None, number("--lr", low=0, help="Peak learning rate (default: the config's; 0 keeps the weights as they are).")]
Seed = Annotated[int | None, number("--seed", low=0, high=SEED_MAX, help="Seed of initialisation and data order (default: the config's, else 0).")]
SaveEvery = Annotated[int | None, number("--save-every", low=1, help="Save the training state every N steps.")]
EvalEvery = Annotated[int | None, number("--eval-every", low=1, help="Validate every N steps.")]
LogEvery = Annotated[int | None, number("--log-every", low=1, help="Log (TensorBoard, and stderr when not a terminal) every N steps.")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue the newest saved training state of --name: rerun the command that started it, with --resume added. Without --resume, a --name whose earlier run still runs, or stopped unfinished with a state saved (interrupted, failed, or stale: its process vanished), is refused: go on with it with --resume, or remove it with `myo ckpt remove KIND/NAME@N`.")]
Debug = Annotated[bool, typer.Option("--debug", help="A few steps on a few sequences, to check a setup end to end.")]
KeepState = Annotated[bool, typer.Option("--keep-state", help="Keep the training state (optimizer, RNG) after finishing, to train on later with --resume.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON document with the checkpoint and its metrics.")]

# The shared options of the Accelerate trainers (tokenizer, retrieval, lm, ssm), in the order --help
# lists them after a command's own: parameter name -> (Annotated type, default).
SHARED = {
    "gpus": (Gpus, 1), "num_machines": (NumMachines, 1), "machine_rank": (MachineRank, 0), "main_process_ip": (MainProcessIp, None),
    "main_process_port": (MainProcessPort, None), "mixed_precision": (MixedPrecision, None), "grad_accum": (GradAccum, None),
    "max_steps": (MaxSteps, None), "max_minutes": (MaxMinutes, None), "batch_size": (BatchSize, None), "lr": (LearningRate, None),
    "seed": (Seed, None), "save_every": (SaveEvery, None), "eval_every": (EvalEvery, None), "log_every": (LogEvery, None),
    "resume": (Resume, False), "debug": (Debug, False), "keep_state": (KeepState, False), "as_json": (AsJson, False),
}  # fmt: skip


def training_command(function):
    """Give a training command the SHARED options. `function` declares its own options and a keyword-only
    `options: dict`; Typer sees its own options followed by the shared ones, and the call passes its own
    by name and every option, its own and the shared, in `options` (for `run_trainer` and `run_fields`)."""
    own = [p for p in inspect.signature(function, eval_str=True).parameters.values() if p.name != "options"]
    shared = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=kind, default=default) for name, (kind, default) in SHARED.items()]

    @functools.wraps(function)
    def command(**given):
        return function(**{p.name: given[p.name] for p in own}, options=given)

    command.__signature__ = inspect.Signature(own + shared)
    command.__annotations__ = {p.name: p.annotation for p in own + shared}
    return command


def run_fields(options: dict) -> dict:
    """The fields every stage's run (…Run dataclass) takes from the shared options."""
    return {"resume": options["resume"], "debug": options["debug"], "keep_state": options["keep_state"], "train_overrides": train_overrides(options)}


def describe_validation(summary: dict):
    """The report line of a run validated with --val: each figure the trainer measured."""
    if summary["val"]:
        yield "  validation: " + ", ".join(f"{k} {v:.4g}" for k, v in summary["val"].items())


def run_trainer(options: dict, run, preflight, train, describe=None) -> None:
    """Run a training command: check the run once here (bad input fails before any process is launched),
    re-launch under `accelerate launch` when asked for several processes, train, and report: one JSON
    document with --json, else the checkpoint saved and the lines `describe(summary)` gives."""
    preflight(run)
    if "gpus" in options:  # an Accelerate trainer (not PPO, which steps its simulations in one process)
        relaunch_if_needed(options)
    summary = train(run)
    if summary is None:  # a launched process other than the main one
        return
    if options["as_json"]:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
        return
    typer.echo(f"Saved {summary['checkpoint']} ({summary['path']}) after {summary['steps']} steps")
    for line in describe(summary) if describe else ():
        typer.echo(line)


def check_name(name: str) -> str:
    """Typer callback: a registry name is a usage error when malformed."""
    from myocli import registry

    try:
        return registry.check_name(name)
    except MyoError as exc:
        raise typer.BadParameter(str(exc)) from exc


def config_callback(stage: str):
    def check(spec: str) -> str:
        from pathlib import Path

        from myocli.config import presets

        if not Path(spec).is_file() and spec not in presets(stage):
            raise typer.BadParameter(f"{spec!r} is neither a file nor a preset ({', '.join(presets(stage))})")
        return spec

    return check


def relaunch_if_needed(options: dict) -> None:
    """With --gpus N > 1 (or several machines) run this command under accelerate launch and exit with its code.
    `options`: the command's parameters (its `locals()`).

    First, in the command a user typed (not in the workers), the checks of the run's registry name that
    need the command line: a new run's name must not have an unfinished run to go on with, and a resumed
    run must have been trained on the same data, --debug and number of processes (and, for the LM, by
    the same command). So every such refusal is one `Error:` line before any worker starts; opening the
    run checks again, in rank 0, as the authority."""
    from myocli.train.launch import LaunchOptions, in_launched_worker, needs_launch, relaunch

    gpus, precision = options["gpus"], options["mixed_precision"]
    launch = LaunchOptions(gpus, options["num_machines"], options["machine_rank"], options["main_process_ip"],
                           options["main_process_port"], precision.value if precision else "no")  # fmt: skip
    launching = needs_launch(launch)
    if not in_launched_worker() and launch.machine_rank == 0:  # the other machines of a multi-node run join machine 0's run
        _check_run_name(options, gpus * options["num_machines"] if launching else 1)
    if not launching:
        return
    import torch

    if torch.cuda.is_available() and torch.cuda.device_count() < gpus:
        raise MyoError(f"--gpus {gpus}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    raise typer.Exit(relaunch(launch))


def _check_run_name(options: dict, num_processes: int) -> None:
    """The registry checks of `relaunch_if_needed`, for the command being run (`myo KIND COMMAND ...`).
    The command line is the one `relaunch` passes on to the workers, so it names the same run."""
    import sys

    from myocli import registry
    from myocli.train import runs

    kind, command = (sys.argv[1:3] + [None, None])[:2]
    if kind not in registry.KINDS:
        return  # not run as `myo KIND ...` (called from Python): opening the run checks it all
    if not options["resume"]:
        runs.check_new_run(kind, options["name"])
        return
    used = runs.trained_on(_datasets(options), options["debug"], num_processes)
    runs.check_resume_matches(kind, options["name"], used, command=command)


def _datasets(options: dict) -> dict:
    """A command's data files, under the keys its stage records them by in run.json (runs.trained_on):
    token files for the language model, myo28 sets for the others."""
    if "tokens" in options:
        return {"tokens": options["tokens"], "val": options["val_tokens"]}
    return {"train": options["data"], "val": options["val"]}


# The shared options that are training settings, by parameter name -> TrainOptions field.
_TRAIN_SETTINGS = {
    "max_steps": "max_steps", "max_minutes": "max_minutes", "batch_size": "batch_size", "lr": "learning_rate",
    "seed": "seed", "save_every": "save_every", "eval_every": "eval_every", "log_every": "log_every", "grad_accum": "grad_accum",
}  # fmt: skip


def train_overrides(options: dict) -> dict:
    """Training options given on the command line (None means: keep the config's), from the command's `locals()`."""
    values = {field: options[name] for name, field in _TRAIN_SETTINGS.items()}
    values["mixed_precision"] = options["mixed_precision"].value if options["mixed_precision"] else None
    return {key: value for key, value in values.items() if value is not None}
