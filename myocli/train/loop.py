"""The training loop every stage shares: steps, accumulation, logging, validation, saving, resume.

A stage hands `fit` a model, a Dataset whose samples are a pure function of their index
(so a resumed run sees the batches an uninterrupted one would), a loss function and an
optional evaluation function; `fit` does the rest through Accelerate. The training state
(model, optimizer, RNG streams: Accelerate's `save_state`, plus the step in progress.json)
goes to `state_dir` every `save_every` steps, at the end, and when SIGINT or SIGTERM
arrives; then `TrainingInterrupted` is raised so the command can say how to resume.
"""

from __future__ import annotations

import json
import math
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from myocli.config import DictConfig
from myocli.errors import MyoError

PROGRESS_FILE = "progress.json"
DEBUG_STEPS = 5  # --debug: this many steps, every one logged, evaluated and saved


@dataclass
class TrainOptions(DictConfig):
    max_steps: int = 1000  # optimizer steps
    batch_size: int = 64  # per process and per micro-batch
    learning_rate: float = 2e-4
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.99
    warmup_steps: int = 0
    lr_schedule: str = "constant"  # or "cosine" (to 10% of the peak at max_steps)
    grad_clip: float = 0.0  # 0: off
    grad_accum: int = 1
    mixed_precision: str = "no"
    seed: int = 0
    log_every: int = 50
    eval_every: int = 500
    save_every: int = 1000
    max_minutes: float = 0.0  # stop cleanly (and save) after this long; 0: no limit

    def check(self) -> TrainOptions:
        """Refuse settings that cannot work before anything is created; returns self."""
        import torch

        if self.mixed_precision not in ("no", "bf16", "fp16"):
            raise MyoError(f"mixed_precision {self.mixed_precision!r}: choose no, bf16 or fp16")
        if self.mixed_precision == "fp16" and not torch.cuda.is_available():
            raise MyoError("mixed precision fp16 needs a CUDA GPU; use bf16 or no on the CPU")
        if self.lr_schedule not in ("constant", "cosine"):
            raise MyoError(f"lr_schedule {self.lr_schedule!r}: use constant or cosine")
        for name in ("max_steps", "batch_size", "grad_accum", "log_every", "eval_every", "save_every"):
            if int(getattr(self, name)) < 1:
                raise MyoError(f"{name} must be at least 1")
        return self

    def for_debug(self) -> TrainOptions:
        """--debug: a few steps, each logged, evaluated and saved, so every path of a run shows at once; returns self."""
        self.max_steps = min(self.max_steps, DEBUG_STEPS)
        self.log_every = self.eval_every = self.save_every = 1
        return self

    def samples_needed(self, num_processes: int) -> int:
        return self.max_steps * self.grad_accum * self.batch_size * num_processes


class TrainingInterrupted(MyoError):
    """Training stopped on a signal after saving its state; exit code 128 + signal number."""

    def __init__(self, message: str, signal_number: int):
        super().__init__(message)
        self.exit_code = 128 + signal_number


@dataclass
class FitResult:
    steps_done: int
    last_logs: dict
    last_eval: dict
    samples_per_second: float
    data_wait_fraction: float
    seconds: float
    stopped_early: bool  # --max-minutes ran out
    rank_digests: list[str]  # sha256 of each process's final weights and buffers: data-parallel ranks must agree


def learning_rate_at(step: int, options: TrainOptions) -> float:
    """Linear warm-up, then constant or cosine decay to 10% at max_steps."""
    if options.warmup_steps and step < options.warmup_steps:
        return options.learning_rate * (step + 1) / options.warmup_steps
    if options.lr_schedule == "cosine":
        span = max(options.max_steps - options.warmup_steps, 1)
        progress = min((step - options.warmup_steps) / span, 1.0)
        return options.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
    return options.learning_rate


class StopSignals:
    """Turn SIGINT/SIGTERM into a flag checked between steps (restores the old handlers on exit)."""

    def __init__(self):
        self.received: int | None = None
        self._previous = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, number, _frame):
        self.received = number

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def swap_in(fresh: Path, state_dir: Path) -> None:
    """Put the completely written folder `fresh` in place of state_dir. The old state is renamed
    aside first and removed last, so a crash in between leaves one whole state (see recover_swap)."""
    import shutil

    old = state_dir.with_name(state_dir.name + ".old")
    if state_dir.exists():
        state_dir.rename(old)
    fresh.rename(state_dir)
    shutil.rmtree(old, ignore_errors=True)


def recover_swap(state_dir: Path) -> None:
    """Finish a swap_in the process died in the middle of: the old state is the saved one."""
    old = state_dir.with_name(state_dir.name + ".old")
    if not state_dir.exists() and old.is_dir():
        old.rename(state_dir)


def save_training_state(accelerator, state_dir: Path, step: int) -> None:
    """Accelerate's save_state into a fresh folder beside state_dir, renamed over it when every
    process is done, so a crash while saving never leaves a mix of old and new files."""
    import shutil

    from safetensors import SafetensorError

    fresh = state_dir.with_name(state_dir.name + ".saving")
    if accelerator.is_main_process:
        shutil.rmtree(fresh, ignore_errors=True)
    accelerator.wait_for_everyone()
    try:
        accelerator.save_state(str(fresh), safe_serialization=True)
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            (fresh / PROGRESS_FILE).write_text(json.dumps({"step": step}) + "\n")
    except (OSError, RuntimeError, SafetensorError) as exc:  # a full disk surfaces as any of these (torch, safetensors)
        shutil.rmtree(fresh, ignore_errors=True)
        raise MyoError(f"cannot write the training state {state_dir}: {exc}") from exc
    if accelerator.is_main_process:
        swap_in(fresh, state_dir)
    accelerator.wait_for_everyone()


def load_training_state(accelerator, state_dir: Path) -> int:
    if accelerator.is_main_process:
        recover_swap(state_dir)
    accelerator.wait_for_everyone()
    progress = state_dir / PROGRESS_FILE
    if not progress.is_file():
        raise MyoError(f"{state_dir}: no {PROGRESS_FILE}; the saved training state is incomplete and cannot be resumed")
    accelerator.load_state(str(state_dir))
    return int(json.loads(progress.read_text())["step"])


def progress_bar(accelerator, total: int, start: int, label: str):
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    progress = Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[stats]}"),
        TimeElapsedColumn(), TimeRemainingColumn(), console=console,
        disable=not (accelerator.is_main_process and console.is_terminal),
    )  # fmt: skip
    task = progress.add_task("", total=total, completed=start, stats="")
    return progress, task, console.is_terminal


def fit(
    accelerator,
    model,
    dataset,
    loss_fn: Callable,
    options: TrainOptions,
    state_dir: Path,
    evaluate: Callable | None = None,
    resume: bool = False,
    label: str = "training",
    collate_fn: Callable | None = None,
) -> FitResult:
    """Train until options.max_steps; `loss_fn(model, batch) -> (loss, {name: tensor})`,
    `evaluate(unwrapped_model) -> {name: float}` (called on every process)."""
    import torch
    from accelerate.utils import gather_object
    from torch.utils.data import DataLoader

    optimizer = torch.optim.AdamW(
        model.parameters(), lr=options.learning_rate, betas=(options.beta1, options.beta2), weight_decay=options.weight_decay
    )
    # Its own generator: creating an iterator draws a seed, and drawing it from the global RNG
    # would shift every later random number of a resumed run against an uninterrupted one.
    loader = DataLoader(
        dataset, batch_size=options.batch_size, shuffle=False, collate_fn=collate_fn, num_workers=0,
        generator=torch.Generator().manual_seed(options.seed),
    )  # fmt: skip
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    step = load_training_state(accelerator, state_dir) if resume else 0
    # A state saved at max_steps (the run ended before it was registered) just goes on to registration.
    batches = accelerator.skip_first_batches(loader, step * options.grad_accum) if step else loader

    samples_per_step = options.batch_size * options.grad_accum * accelerator.num_processes
    progress, task, interactive = progress_bar(accelerator, options.max_steps, step, label)
    logs: dict = {}
    sums: dict = {}  # of each logged value since the last log line, kept on the device (no sync per step)
    summed = 0
    last_eval: dict = {}
    data_wait = 0.0
    started = time.perf_counter()
    first_step = step
    stopped_early = False
    model.train()
    with progress, StopSignals() as signals:
        iterator = iter(batches)
        while step < options.max_steps:
            for group in optimizer.param_groups:
                group["lr"] = learning_rate_at(step, options)
            for _ in range(options.grad_accum):
                fetch = time.perf_counter()
                batch = next(iterator)
                data_wait += time.perf_counter() - fetch
                with accelerator.accumulate(model), accelerator.autocast():
                    loss, logs = loss_fn(model, batch)
                    sums = {k: sums.get(k, 0) + v.detach().float() for k, v in logs.items()}
                    summed += 1
                    accelerator.backward(loss)
                    if accelerator.sync_gradients and options.grad_clip > 0:
                        accelerator.clip_grad_norm_(model.parameters(), options.grad_clip)
                    optimizer.step()
                    optimizer.zero_grad()
            step += 1
            elapsed = time.perf_counter() - started
            throughput = (step - first_step) * samples_per_step / max(elapsed, 1e-9)
            if step % options.log_every == 0 or step == options.max_steps:
                # Means over every micro-batch since the last log line, and over processes.
                scalars = {k: float(accelerator.reduce(v / summed, "mean")) for k, v in sums.items()}
                sums, summed = {}, 0
                scalars |= {"lr": optimizer.param_groups[0]["lr"], "samples_per_second": throughput}
                accelerator.log(scalars, step=step)
                logs = scalars
                if not math.isfinite(scalars["loss"]):
                    raise MyoError(
                        f"the loss became {scalars['loss']} at step {step}; training diverged. Lower --lr, or use "
                        "--mixed-precision no; the last good training state is kept for inspection"
                    )
                if accelerator.is_main_process and not interactive:
                    sys.stderr.write(f"{label}: step {step}/{options.max_steps} loss {scalars['loss']:.4f} {throughput:.0f} samples/s\n")
                    sys.stderr.flush()
            if interactive:  # reading the loss waits for the device: only when someone is watching
                progress.update(task, completed=step, stats=f"loss {float(logs['loss']):.4f}  {throughput:.0f} samples/s")
            if evaluate and (step % options.eval_every == 0 or step == options.max_steps):
                last_eval = _evaluate(accelerator, model, evaluate, step)
            if step % options.save_every == 0 and step < options.max_steps:
                save_training_state(accelerator, state_dir, step)
            if step == options.max_steps:
                break  # finished: a signal now changes nothing, the state is saved below
            stop = _agreed_stop(accelerator, signals.received, options, elapsed)
            if stop == "signal":
                save_training_state(accelerator, state_dir, step)
                number = signals.received or signal.SIGTERM
                raise TrainingInterrupted(
                    f"interrupted by {signal.Signals(number).name} at step {step}/{options.max_steps}; "
                    f"the training state is saved in {state_dir}; run the same command with --resume to go on",
                    number,
                )
            if stop == "time":
                stopped_early = True
                if evaluate and step % options.eval_every != 0:
                    last_eval = _evaluate(accelerator, model, evaluate, step)
                break
    save_training_state(accelerator, state_dir, step)
    seconds = time.perf_counter() - started
    digests = [state_digest(accelerator.unwrap_model(model))]
    if accelerator.num_processes > 1:
        digests = gather_object(digests)
    if len(set(digests)) > 1:
        raise MyoError(f"the {len(digests)} training processes ended with different weights; please report this as a bug")
    return FitResult(
        steps_done=step,
        last_logs={k: float(v.detach()) if hasattr(v, "detach") else float(v) for k, v in logs.items()},
        last_eval=last_eval,
        samples_per_second=(step - first_step) * samples_per_step / max(seconds, 1e-9),
        data_wait_fraction=data_wait / max(seconds, 1e-9),
        seconds=seconds,
        stopped_early=stopped_early,
        rank_digests=digests,
    )


def state_digest(model) -> str:
    """sha256 over every parameter and buffer, in state_dict order."""
    import hashlib

    import torch

    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _evaluate(accelerator, model, evaluate: Callable, step: int) -> dict:
    model.eval()
    metrics = evaluate(accelerator.unwrap_model(model))
    model.train()
    accelerator.log({f"val/{k}": v for k, v in metrics.items()}, step=step)
    if accelerator.is_main_process:
        shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())
        sys.stderr.write(f"validation at step {step}: {shown}\n")
        sys.stderr.flush()
    return metrics


def _agreed_stop(accelerator, received: int | None, options: TrainOptions, elapsed: float) -> str | None:
    """Every process must stop at the same step, or the others hang in the next all-reduce."""
    import torch

    flags = torch.tensor(
        [float(received is not None), float(options.max_minutes > 0 and elapsed >= options.max_minutes * 60)],
        device=accelerator.device,
    )
    if accelerator.num_processes > 1:
        flags = accelerator.reduce(flags, "sum")
    if flags[0] > 0:
        return "signal"
    if flags[1] > 0:
        return "time"
    return None
