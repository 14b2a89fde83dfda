"""`myo ssm`: train the state-space (Mamba-style) text-to-motion generator."""

from __future__ import annotations

from pathlib import Path

import typer

from myocli.cli import training as t
from myocli.cli.numbers import number

app = typer.Typer(
    help="State-space (Mamba-style) text-to-motion generator: flow matching with a physics-aware loss.\n\n"
    "Example: myo ssm train --data datasets/demo_train.h5 --val datasets/demo_val.h5 --name demo && myo generate \"a person jumps\" --model ssm/demo",
    no_args_is_help=True,
)


@app.command()
@t.training_command
def train(
    data: Path = typer.Option(..., "--data", help="Training set (myo28 .h5 from `myo data convert`); clips need captions."),
    name: str = typer.Option(..., "--name", callback=t.check_name, help="Registry name: the checkpoint becomes ssm/NAME@<next version>."),
    val: Path | None = typer.Option(None, "--val", help="Validation set: flow loss and physics terms every --eval-every steps, recorded in the manifest."),
    config: str = typer.Option("tiny", "--config", callback=t.config_callback("ssm"), help="Preset (tiny, base) or a YAML file with model: and train: sections."),
    physics_weight: float | None = number(None, "--physics-weight", low=0, help="Weight of the physics terms (skating, penetration, floating, bone length); 0 turns them off (default: the config's, 0.1)."),
    text_encoder: str | None = typer.Option(None, "--text-encoder", help="A frozen pretrained text encoder instead of our byte-level one: a static table folder (python -m myocli.text.minilm), a transformers save_pretrained folder, or a hub id (while online). It is copied into the checkpoint."),
    balance: bool = typer.Option(False, "--balance", help="Draw rare motions more often: a motion with n clips against the commonest one's m gives round(sqrt(m/n)) windows per clip per epoch (at most 16)."),
    latent: str | None = typer.Option(None, "--latent", help="Generate in this trained tokenizer's latent (tokenizer/NAME, or tokenizer/NAME@VERSION) instead of pose features, as latent diffusion does: its decoder gives the motions whole skeletons. The tokenizer must stay in the registry."),
    *,
    options: dict,
) -> None:
    """Train an SSM text-to-motion generator and register it as ssm/NAME.

    Example: myo ssm train --data datasets/demo_train.h5 --val datasets/demo_val.h5 --name demo --max-minutes 30
    """
    from myocli.ssm.train import SSMRun, preflight, train_ssm

    run = SSMRun(data=data, name=name, config=config, val=val, text_encoder=text_encoder, latent=latent, balance=balance,
                 model_overrides={"physics_weight": physics_weight} if physics_weight is not None else {}, **t.run_fields(options))  # fmt: skip
    t.run_trainer(options, run, preflight, train_ssm, t.describe_validation)
