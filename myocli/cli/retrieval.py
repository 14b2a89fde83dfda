"""`myo retrieval`: the text-motion retrieval evaluator that scores generated motion (R-precision, FID)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from myocli.cli import training as t

app = typer.Typer(
    help="Text-motion retrieval evaluator: trained on real clips and their captions, it scores how well motions match their text.\n\n"
    "Example: myo retrieval train --data datasets/demo_train.h5 --val datasets/demo_val.h5 --name demo && myo lm eval demo-it --data datasets/demo_test.h5 --retrieval retrieval/demo",
    no_args_is_help=True,
)


@app.command()
@t.training_command
def train(
    data: Path = typer.Option(..., "--data", help="Training set (myo28 .h5 from `myo data convert`) whose clips have captions."),
    name: str = typer.Option(..., "--name", callback=t.check_name, help="Registry name: the checkpoint becomes retrieval/NAME@<next version>."),
    val: Path | None = typer.Option(None, "--val", help="Validation set: R@1, R@3 and MM-Dist of its clips every --eval-every steps."),
    config: str = typer.Option("tiny", "--config", callback=t.config_callback("retrieval"), help="Preset (tiny) or a YAML file with model: and train: sections."),
    text_encoder: str | None = typer.Option(None, "--text-encoder", help="A frozen pretrained text encoder instead of our byte-level one: a static table folder (python -m myocli.text.minilm) or a transformers save_pretrained folder. It is copied into the checkpoint."),
    *,
    options: dict,
) -> None:
    """Train a text-motion retrieval evaluator and register it as retrieval/NAME.

    Example: myo retrieval train --data datasets/demo_train.h5 --val datasets/demo_val.h5 --name demo --max-minutes 10
    """
    from myocli.retrieval.train import RetrievalRun, preflight, train_retrieval

    run = RetrievalRun(data=data, name=name, config=config, val=val, text_encoder=text_encoder, **t.run_fields(options))
    t.run_trainer(options, run, preflight, train_retrieval, t.describe_validation)


@app.command("eval")
def evaluate(
    checkpoint: str = typer.Argument(..., help="retrieval/NAME, NAME, NAME@VERSION or a checkpoint folder."),
    data: Path = typer.Option(..., "--data", help="A held-out myo28 .h5 set with captions, at the evaluator's frame rate."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as one JSON document."),
) -> None:
    """Score the real clips of a set against their captions: the ceiling a generator can reach on it.

    Example: myo retrieval eval demo --data datasets/demo_test.h5
    """
    from myocli.data.h5 import read_dataset
    from myocli.retrieval.evaluator import Evaluator, captioned, check_rankable

    evaluator = Evaluator.load(checkpoint)
    dataset = read_dataset(data)
    evaluator.check_fps(dataset.fps, str(data))
    motions, captions = captioned(dataset)
    check_rankable(captions, str(data), "caption the clips (see `myo data inspect`) or give another set")
    scores = evaluator.scores(motions, captions, dataset.fps)
    report = {"checkpoint": evaluator.ref.label, "data": str(data), "clips": len(motions)} | scores
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
        return
    typer.echo(f"{report['checkpoint']} on {data}: {len(motions)} real clips, {scores['candidates']} distinct captions")
    typer.echo("  " + ", ".join(f"R@{k.rsplit('_', 1)[1]} {scores[k]:.3f}" for k in ("r_at_1", "r_at_2", "r_at_3"))
               + f", MM-Dist {scores['mm_dist']:.3f}, diversity {scores['diversity']:.3f}")  # fmt: skip
    for caption, share in scores["r_at_1_per_caption"].items():
        typer.echo(f"  {share:6.0%}  {caption}")
