"""The training loop every stage shares (myocli/train/loop.py): learning-rate schedule, resume in the
middle of it, gradient accumulation, --max-minutes, bf16 autocast and Ctrl-C.

Most tests call `fit` directly on a linear model learning y = x·w + 0.3 from a fixed stream of
samples, so the rates and updates to expect can be written down by hand and a run takes a fraction
of a second. The last ones train the tiny tokenizer through `myo tokenizer train`, to check that the
command-line options reach the loop and what the run leaves in the registry.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import torch
from helpers import TINY_TOKENIZER, assert_resume_matches, myo, ok
from safetensors.torch import load_file

from myocli.train.accelerator import make_accelerator
from myocli.train.loop import TrainingInterrupted, TrainOptions, fit, learning_rate_at

# The settings of every direct run unless a test says otherwise: constant rate, every step logged,
# no evaluation, no periodic save (only the one at the end, or on a stop).
BASE = {"max_steps": 6, "batch_size": 4, "learning_rate": 0.1, "log_every": 1, "eval_every": 1000, "save_every": 1000}

# Cosine to 10% after a 2-step warm-up, peak 0.1, 6 steps: the rate of steps 0..5, by hand from
# loop.learning_rate_at: warm-up (step + 1) / 2 * peak, then peak * (0.1 + 0.45 * (1 + cos(pi * p)))
# with p = (step - 2) / 4: p = 0, 1/4, 1/2, 3/4 give 1, 0.86820, 0.55, 0.23180 of the peak.
COSINE = {"lr_schedule": "cosine", "warmup_steps": 2}
COSINE_RATES = [0.05, 0.1, 0.1, 0.086819805, 0.055, 0.023180195]


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    """Accelerate keeps its state in process-wide singletons; each run here starts clean, as a new process would."""
    from accelerate.state import AcceleratorState, GradientState

    yield
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


class Recorder:
    """A tracker for `accelerator.log`: keeps what `fit` logs at each step (the rate among it)."""

    name = "recorder"

    def __init__(self):
        self.logged: dict[int, dict] = {}

    def log(self, values: dict, step: int | None = None, **_):
        self.logged[step] = dict(values)


class Line(torch.nn.Module):
    """A linear model (same start in every run) that notes the dtype its matmul computes in."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.linear = torch.nn.Linear(3, 1)
        self.dtypes: set[torch.dtype] = set()

    def forward(self, x):
        out = self.linear(x)
        self.dtypes.add(out.dtype)
        return out.float()


def line_samples(count: int) -> torch.utils.data.TensorDataset:
    """Sample i is the same in every run (a fixed seed), as the loop's datasets promise."""
    x = torch.randn(count, 3, generator=torch.Generator().manual_seed(1))
    return torch.utils.data.TensorDataset(x, x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.3)


class NotCaught(Exception):
    """Raised by the handler the tests install around `fit`: a signal fit should have handled got through."""


def not_caught(number, _frame):
    raise NotCaught(f"{signal.Signals(number).name} was not handled by fit")


class Run:
    """What one call of `fit` did: its result (or the TrainingInterrupted or NotCaught raised), the rate logged
    at each step (step s logs the rate its update used), the micro-batches it computed, the dtypes
    the model computed in, the final weights, and the SIGINT/SIGTERM handlers in place after `fit`
    (`not_caught`, installed before it, if fit put back what it found)."""

    def __init__(self, state_dir: Path, resume=False, signal_at_step=None, signal_number=signal.SIGTERM, **settings):
        from accelerate.state import AcceleratorState, GradientState

        AcceleratorState._reset_state(reset_partial_state=True)
        GradientState._reset_state()
        options = TrainOptions(**(BASE | settings)).check()
        accelerator = make_accelerator(options.mixed_precision, options.grad_accum, log_dir=None)
        recorder = Recorder()
        accelerator.trackers.append(recorder)
        self.model = Line()
        self.micro_batches = 0

        def loss_fn(model, batch):
            x, y = batch
            self.micro_batches += 1
            if signal_at_step and self.micro_batches == signal_at_step * options.grad_accum:
                signal.raise_signal(signal_number)  # arrives during this step: the loop stops after it
            loss = ((model(x) - y) ** 2).mean()
            return loss, {"loss": loss}

        self.result = self.interrupted = None
        found = {number: signal.signal(number, not_caught) for number in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.result = fit(accelerator, self.model, line_samples(options.samples_needed(1)), loss_fn, options, state_dir, resume=resume)
        except (TrainingInterrupted, NotCaught) as exc:
            self.interrupted = exc
        finally:
            self.handlers_after = {number: signal.getsignal(number) for number in found}
            for number, handler in found.items():
                signal.signal(number, handler)
        self.rates = {step: values["lr"] for step, values in recorder.logged.items()}
        self.weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()}


def saved_step(state_dir: Path) -> int:
    return json.loads((state_dir / "progress.json").read_text())["step"]


def test_learning_rate_at_warms_up_then_stays_constant_or_follows_a_cosine_to_10_percent():
    """The rates of both schedules the config offers (constant, cosine), each with a linear warm-up."""
    constant = TrainOptions(max_steps=8, learning_rate=1e-3, warmup_steps=4, lr_schedule="constant")
    assert [learning_rate_at(s, constant) for s in range(8)] == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3, 1e-3, 1e-3])
    cosine = TrainOptions(max_steps=6, learning_rate=0.1, **COSINE)
    assert [learning_rate_at(s, cosine) for s in range(6)] == pytest.approx(COSINE_RATES)
    assert learning_rate_at(6, cosine) == pytest.approx(0.01)  # 10% of the peak at max_steps, and after
    assert learning_rate_at(9, cosine) == pytest.approx(0.01)
    no_warmup = TrainOptions(max_steps=4, learning_rate=0.1, lr_schedule="cosine")  # p = 0, 1/4, 1/2, 3/4
    assert [learning_rate_at(s, no_warmup) for s in range(4)] == pytest.approx([0.1, 0.086819805, 0.055, 0.023180195])


def test_fit_trains_each_step_at_the_scheduled_rate(tmp_path):
    """The optimizer gets the schedule's rate before every step (as logged with that step)."""
    run = Run(tmp_path / "state", **COSINE)
    assert run.result.steps_done == 6
    assert [run.rates[s] for s in range(1, 7)] == pytest.approx(COSINE_RATES)
    constant = Run(tmp_path / "constant")
    assert [constant.rates[s] for s in range(1, 7)] == pytest.approx([0.1] * 6)


def test_a_run_resumed_mid_schedule_goes_on_with_the_schedule_and_the_same_weights(tmp_path):
    """Stopped by SIGTERM after step 3 of a warm-up + cosine run and resumed, the run uses the rates
    an uninterrupted one uses at steps 4..6 (not the schedule restarted) and ends with its weights."""
    straight = Run(tmp_path / "straight", **COSINE)
    stopped = Run(tmp_path / "split", signal_at_step=3, **COSINE)
    assert stopped.interrupted is not None and stopped.interrupted.exit_code == 128 + signal.SIGTERM
    assert "interrupted by SIGTERM at step 3/6" in str(stopped.interrupted)
    assert saved_step(tmp_path / "split") == 3
    resumed = Run(tmp_path / "split", resume=True, **COSINE)
    assert resumed.result.steps_done == 6
    assert sorted(resumed.rates) == [4, 5, 6]
    assert [resumed.rates[s] for s in (4, 5, 6)] == pytest.approx([straight.rates[s] for s in (4, 5, 6)])
    assert [resumed.rates[s] for s in (4, 5, 6)] == pytest.approx(COSINE_RATES[3:])
    assert_resume_matches(straight.weights, resumed.weights)


def test_ctrl_c_during_training_saves_the_state_and_stops_with_exit_code_130(tmp_path):
    """SIGINT (Ctrl-C) inside the loop is not a KeyboardInterrupt mid-step: the step finishes, the state
    of that step is saved, TrainingInterrupted says how to resume and carries exit code 130, and Ctrl-C
    behaves as before once the loop is left."""
    run = Run(tmp_path / "state", signal_at_step=2, signal_number=signal.SIGINT)
    assert isinstance(run.interrupted, TrainingInterrupted), repr(run.interrupted)
    message = str(run.interrupted)
    assert run.interrupted.exit_code == 130
    assert "interrupted by SIGINT at step 2/6" in message and "--resume" in message and str(tmp_path / "state") in message
    assert run.micro_batches == 2  # no step after the one Ctrl-C arrived in
    assert saved_step(tmp_path / "state") == 2
    saved = load_file(tmp_path / "state" / "model.safetensors")
    assert all(torch.equal(saved[k], run.weights[k]) for k in run.weights)  # the weights of step 2, not of an earlier save
    assert run.handlers_after == {signal.SIGINT: not_caught, signal.SIGTERM: not_caught}  # fit put back the handlers it found


def test_grad_accum_n_micro_batches_of_b_make_one_update_equal_to_a_batch_of_n_times_b(tmp_path):
    """--grad-accum 2 with batch 4: two micro-batches per optimizer step, and since the loss is a mean,
    the same update as one batch of 8 (both runs see samples 0..7 in their first step, 8..15 next)."""
    accumulated = Run(tmp_path / "accumulated", max_steps=3, batch_size=4, grad_accum=2)
    big_batch = Run(tmp_path / "big", max_steps=3, batch_size=8, grad_accum=1)
    assert (accumulated.micro_batches, big_batch.micro_batches) == (6, 3)
    assert accumulated.result.steps_done == 3 and sorted(accumulated.rates) == [1, 2, 3]
    optimizer = torch.load(tmp_path / "accumulated" / "optimizer.bin", weights_only=True)
    assert {float(state["step"]) for state in optimizer["state"].values()} == {3.0}  # AdamW stepped 3 times, not 6
    for key in big_batch.weights:
        torch.testing.assert_close(accumulated.weights[key], big_batch.weights[key])
    half = Run(tmp_path / "half", max_steps=3, batch_size=4, grad_accum=1)  # the same stream, no accumulation
    assert not torch.allclose(half.weights["linear.weight"], big_batch.weights["linear.weight"], atol=1e-4)


def test_max_minutes_stops_after_the_step_in_progress_saves_and_resumes(tmp_path):
    """With a time limit that has passed after the first step, fit stops there cleanly: a result (not
    an error) marked stopped_early, the state of step 1 saved; resumed without the limit it trains on
    to max_steps and ends where an uninterrupted run does."""
    straight = Run(tmp_path / "straight")
    stopped = Run(tmp_path / "split", max_minutes=1e-12)
    assert stopped.interrupted is None
    assert stopped.result.stopped_early and stopped.result.steps_done == 1 and stopped.micro_batches == 1
    assert saved_step(tmp_path / "split") == 1
    resumed = Run(tmp_path / "split", resume=True, max_minutes=0.0)
    assert not resumed.result.stopped_early and resumed.result.steps_done == 6 and resumed.micro_batches == 5
    assert_resume_matches(straight.weights, resumed.weights)


def test_bf16_computes_the_forward_in_bfloat16_and_keeps_float32_weights(tmp_path):
    """mixed_precision bf16 runs the model under CPU autocast; the trained weights stay float32."""
    mixed = Run(tmp_path / "bf16", max_steps=2, mixed_precision="bf16")
    assert mixed.model.dtypes == {torch.bfloat16}
    assert {v.dtype for v in mixed.weights.values()} == {torch.float32}
    assert torch.isfinite(torch.tensor(mixed.result.last_logs["loss"]))
    full = Run(tmp_path / "fp32", max_steps=2)
    assert full.model.dtypes == {torch.float32}


# Through `myo tokenizer train`: the options reach the loop, and the registry records what happened.


def tokenizer_config(tmp_path: Path, **train) -> Path:
    """The tiny tokenizer recipe with some train: settings changed."""
    text = TINY_TOKENIZER
    for key, value in train.items():
        lines = [line for line in text.splitlines() if line.strip().startswith(f"{key}:")]
        text = text.replace(lines[0], f"  {key}: {value}") if lines else text + f"  {key}: {value}\n"
    path = tmp_path / "tiny.yaml"
    path.write_text(text)
    return path


def version_dir(home: dict, name: str, version: int = 1) -> Path:
    return Path(home["MYO_HOME"]) / "tokenizer" / name / f"v{version}"


def manifest(home: dict, name: str, version: int = 1) -> dict:
    return json.loads((version_dir(home, name, version) / "manifest.json").read_text())


def logged_rates(folder: Path) -> dict[int, float]:
    """The `lr` scalar of each step in a checkpoint's TensorBoard logs."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    rates = {}
    for events in sorted({p.parent for p in (folder / "logs").rglob("events.out.tfevents.*")}):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        if "lr" in accumulator.Tags()["scalars"]:
            rates |= {event.step: event.value for event in accumulator.Scalars("lr")}
    return rates


@pytest.fixture()
def home(tmp_path):
    return {"MYO_HOME": str(tmp_path / "home")}


@pytest.mark.slow  # 20-50 s of training on two cores: in CI's second step
def test_cli_cosine_schedule_and_a_max_minutes_stop_resumed_mid_schedule(motion_sets, home, tmp_path):
    """`myo tokenizer train` with a warm-up + cosine config logs the hand-computed rate at each step;
    --max-minutes (a limit already passed after step 1) registers the checkpoint at step 1, marked
    stopped early, with its training state kept; --resume goes on with the schedule where it stopped and
    ends with the weights of the uninterrupted run."""
    config = tokenizer_config(tmp_path, lr_schedule="cosine", warmup_steps=2)

    def train(name, *extra):
        return myo("tokenizer", "train", "--data", str(motion_sets["train"]), "--config", str(config), "--name", name, *extra, env=home)

    ok(train("straight"))
    peak = 1e-3  # the recipe's learning_rate
    assert logged_rates(version_dir(home, "straight")) == pytest.approx({s + 1: peak * r / 0.1 for s, r in enumerate(COSINE_RATES)})

    stopped = ok(train("split", "--max-minutes", "1e-12", "--keep-state"))
    assert "after 1 steps" in stopped.stdout
    training = manifest(home, "split")["training"]
    assert training["stopped_early"] is True and training["steps_done"] == 1
    assert saved_step(version_dir(home, "split") / "training_state") == 1

    ok(train("split", "--resume", "--max-minutes", "0"))  # v1 is published: training on writes v2
    resumed = manifest(home, "split", 2)
    assert resumed["training"]["steps_done"] == 6 and resumed["training"]["stopped_early"] is False
    assert resumed["parents"][0]["name"] == "tokenizer/split@1"
    straight_rates = logged_rates(version_dir(home, "straight"))
    assert logged_rates(version_dir(home, "split", 2)) == pytest.approx({s: straight_rates[s] for s in range(2, 7)})
    assert_resume_matches(load_file(version_dir(home, "straight") / "model.safetensors"),
                          load_file(version_dir(home, "split", 2) / "model.safetensors"))  # fmt: skip


@pytest.mark.slow  # 20-50 s of training on two cores: in CI's second step
def test_cli_grad_accum_and_bf16_reach_the_loop(motion_sets, tiny_tokenizer_config, home):
    """--grad-accum 2 makes 2 optimizer steps of --max-steps 2 (not 4); --mixed-precision bf16 is
    recorded, changes the arithmetic (other weights than the float32 run) and still saves float32 weights."""

    def train(name, *extra):
        return ok(myo("tokenizer", "train", "--data", str(motion_sets["train"]), "--config", str(tiny_tokenizer_config),
                      "--name", name, "--max-steps", "2", "--grad-accum", "2", "--keep-state", *extra, env=home))  # fmt: skip

    train("fp32")
    train("bf16", "--mixed-precision", "bf16")
    for name, precision in (("fp32", "no"), ("bf16", "bf16")):
        training = manifest(home, name)["training"]
        assert (training["grad_accum"], training["mixed_precision"], training["steps_done"]) == (2, precision, 2)
        optimizer = torch.load(version_dir(home, name) / "training_state" / "optimizer.bin", weights_only=True)
        assert {float(state["step"]) for state in optimizer["state"].values()} == {2.0}, name
    fp32 = load_file(version_dir(home, "fp32") / "model.safetensors")
    bf16 = load_file(version_dir(home, "bf16") / "model.safetensors")
    assert {t.dtype for t in bf16.values() if t.is_floating_point()} == {torch.float32}
    assert any(not torch.equal(fp32[k], bf16[k]) for k in fp32)
