"""`myo lm`: pretrain the motion language model, tune it on instructions, evaluate it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from myocli.cli import training as t
from myocli.cli.numbers import SEED_MAX, number
from myocli.lm.sampling import DEFAULT_REFINE_STEPS, DEFAULT_TEMPERATURE, DEFAULT_TOP_P

app = typer.Typer(
    help="T5 language model over text and motion tokens (MotionGPT's stages 2 and 3).\n\n"
    "Example: myo lm pretrain --tokens datasets/demo_tokens.h5 --name demo && myo lm instruct demo --tokens datasets/demo_tokens.h5 --name demo-it",
    no_args_is_help=True,
)

Tokens = typer.Option(..., "--tokens", help="Token file of the training set (`myo tokenizer encode`); it names the tokenizer, which must be in the registry.")
ValTokens = typer.Option(None, "--val-tokens", help="Token file of a validation set: teacher-forced loss per task every --eval-every steps.")
Name = typer.Option(..., "--name", callback=t.check_name, help="Registry name: the checkpoint becomes lm/NAME@<next version>.")


def _run(stage: str, options: dict, **stage_fields) -> None:
    """Build the stage's run from the command's options, and run it."""
    from myocli.lm.train import LMRun, preflight, train_lm

    run = LMRun(stage=stage, tokens=options["tokens"], name=options["name"], config=options["config"], val_tokens=options["val_tokens"],
                **stage_fields, **t.run_fields(options))  # fmt: skip

    def describe(summary):
        if summary["val"]:
            yield "  validation loss: " + ", ".join(f"{k.removeprefix('loss_')} {v:.3f}" for k, v in summary["val"].items())

    t.run_trainer(options, run, preflight, train_lm, describe)


@app.command()
@t.training_command
def pretrain(
    tokens: Path = Tokens,
    name: str = Name,
    val_tokens: Path | None = ValTokens,
    config: str = typer.Option("tiny", "--config", callback=t.config_callback("lm"), help="Size preset (tiny, small, base, large) or a YAML file with model:, train: and instruct: sections."),
    base_model: str | None = typer.Option(None, "--base-model", help="Start from a pretrained T5 / Flan-T5: a local folder (save_pretrained) or a hub id; its own text tokenizer is kept. The preset then only gives the training options."),
    text_encoder: str | None = typer.Option(None, "--text-encoder", help="Read text through a static text encoder folder (encoder.json, tokenizer.json, embeddings.safetensors; python -m myocli.text.minilm) instead of ByT5's bytes: its word pieces are the text tokens, and their input embeddings are its frozen rows through a learned projection, so new wording lands near its synonyms. It is copied into the checkpoint; `myo lm instruct` keeps it."),
    *,
    options: dict,
) -> None:
    """Pretrain on text-to-motion, motion-to-text and motion prediction; register as lm/NAME.

    Example: myo lm pretrain --tokens datasets/demo_tokens.h5 --val-tokens datasets/demo_val_tokens.h5 --config tiny --name demo --max-minutes 20
    """
    _run("pretrain", options, base_model=base_model, text_encoder=text_encoder)


@app.command()
@t.training_command
def instruct(
    checkpoint: str = typer.Argument(..., help="The pretrained language model to start from: lm/NAME, NAME, NAME@VERSION or a folder."),
    tokens: Path = Tokens,
    name: str = Name,
    val_tokens: Path | None = ValTokens,
    config: str | None = typer.Option(None, "--config", callback=lambda v: v if v is None else t.config_callback("lm")(v), help="Preset or YAML whose instruct: section holds the training options (default: the one the checkpoint was pretrained with)."),
    *,
    options: dict,
) -> None:
    """Instruction-tune a pretrained LM on all four tasks (text-to-motion, motion-to-text, prediction, in-between).

    Example: myo lm instruct demo --tokens datasets/demo_tokens.h5 --name demo-it --max-minutes 10
    """
    _run("instruct", options, init=checkpoint)


@app.command("eval")
def evaluate(
    checkpoint: str = typer.Argument(..., help="lm/NAME, NAME, NAME@VERSION or a checkpoint folder."),
    data: Path = typer.Option(..., "--data", help="A held-out myo28 .h5 set with captions (at the model's frame rate)."),
    tasks: str = typer.Option("t2m,m2t,predict,inbetween", "--tasks", help="Comma-separated tasks to measure."),
    limit: int | None = number(None, "--limit", low=1, help="Measure only the first N clips."),
    seed: int = number(0, "--seed", low=0, high=SEED_MAX, help="Seed of the sampled answers (clip K uses seed + K)."),
    temperature: float = number(DEFAULT_TEMPERATURE, "--temperature", low=0, help="Sampling temperature of motion answers (captions are decoded greedily)."),
    top_p: float = number(DEFAULT_TOP_P, "--top-p", above=0, high=1, help="Nucleus sampling mass of motion answers."),
    refine_steps: int = number(DEFAULT_REFINE_STEPS, "--refine-steps", low=0, high=1000, help="Physics refinement steps of motion answers, as `myo generate` takes them (0: the raw decoded codes)."),
    retrieval: str | None = typer.Option(None, "--retrieval", help="A retrieval evaluator (retrieval/NAME, from `myo retrieval train`): adds R@1/2/3, MM-Dist and FID of the t2m motions, and of the real clips."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as one JSON document."),
) -> None:
    """Measure a language model per task: valid motions, length error and foot skating (t2m), BLEU-4 and ROUGE-L (m2t), ADE/FDE (predict, inbetween).

    Example: myo lm eval demo-it --data datasets/demo_test.h5 --json
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from myocli.data.h5 import read_dataset
    from myocli.errors import MyoError
    from myocli.lm.engine import LMEngine, Sampling
    from myocli.lm.evaluate import evaluate as run_eval
    from myocli.lm.prompts import TASKS
    from myocli.tokenizer import codec as tok

    chosen = tuple(dict.fromkeys(t.strip() for t in tasks.split(",") if t.strip()))
    unknown = [t for t in chosen if t not in TASKS]
    if unknown or not chosen:
        raise typer.BadParameter(f"{tasks!r}: choose among {', '.join(TASKS)}", param_hint="--tasks")
    engine = LMEngine.load(checkpoint)
    if "inbetween" in chosen and not engine.config.instruction_tuned:
        raise MyoError(f"{engine.lm.ref.label} was only pretrained; drop inbetween from --tasks or evaluate an instruction-tuned model")
    dataset = read_dataset(data)
    tok.check_dataset_fits(engine.tokenizer, dataset, str(data))
    evaluator = None
    if retrieval:
        from myocli.retrieval.evaluator import Evaluator

        evaluator = Evaluator.load(retrieval)
        evaluator.check_fps(dataset.fps, str(data))
    clips = min(len(dataset), limit or len(dataset))
    console = Console(stderr=True)
    with Progress(TextColumn("evaluating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, transient=True, disable=not console.is_terminal) as progress:  # fmt: skip
        bar = progress.add_task("", total=clips * len(chosen))
        report = run_eval(engine, dataset, chosen, Sampling(temperature, 0, top_p, seed, refine_steps), limit,
                          lambda: progress.advance(bar), str(data), evaluator)  # fmt: skip
    report = {"checkpoint": engine.lm.ref.label, "data": str(data), "tasks": list(chosen), "temperature": temperature, "refine_steps": refine_steps,
              "retrieval": evaluator.ref.label if evaluator else None} | report  # fmt: skip
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
        return
    _print_report(report)


def _print_report(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{report['checkpoint']} on {report['data']} ({report['clips']} clips)", title_justify="left")
    table.add_column("task")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("real data", justify="right")
    real = report["real"]
    for task in ("t2m", "m2t", "predict", "inbetween"):
        for key, value in report.get(task, {}).items():
            if key == "examples" or value is None or isinstance(value, dict):
                continue
            table.add_row(task, key, f"{value:.4g}", f"{real[key]:.4g}" if key in real else "")
    Console().print(table)
    for example in report.get("m2t", {}).get("examples", []):
        typer.echo(f"  m2t: {example['generated']!r}  (reference: {example['reference']!r})")
