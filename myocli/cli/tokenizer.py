"""`myo tokenizer`: train the VQ-VAE motion tokenizer, measure it, turn datasets into tokens."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from myocli.cli import training as t
from myocli.cli.numbers import number
from myocli.cli.outputs import check_outputs
from myocli.errors import MyoError

app = typer.Typer(
    help="VQ-VAE motion tokenizer: motions <-> discrete tokens for the language model.\n\n"
    "Example: myo tokenizer train --data datasets/demo_train.h5 --val datasets/demo_val.h5 --config tiny --name demo",
    no_args_is_help=True,
)


@app.command()
@t.training_command
def train(
    data: Path = typer.Option(..., "--data", help="Training set (myo28 .h5 from `myo data convert`)."),
    name: str = typer.Option(..., "--name", callback=t.check_name, help="Registry name: the checkpoint becomes tokenizer/NAME@<next version>."),
    val: Path | None = typer.Option(None, "--val", help="Validation set, measured every --eval-every steps and recorded in the manifest."),
    config: str = typer.Option("tiny", "--config", callback=t.config_callback("tokenizer"), help="Preset (tiny, paper) or a YAML file with model: and train: sections."),
    num_quantizers: int | None = number(None, "--num-quantizers", low=1, help="Codebooks; > 1 is residual VQ (MoMask style)."),
    *,
    options: dict,
) -> None:
    """Train a VQ-VAE tokenizer and register it as tokenizer/NAME.

    Example: myo tokenizer train --data datasets/demo_train.h5 --val datasets/demo_val.h5 --config tiny --name demo --max-minutes 10
    """
    from myocli.tokenizer.train import TokenizerRun, preflight, train_tokenizer

    run = TokenizerRun(data=data, name=name, config=config, val=val,
                       model_overrides={"num_quantizers": num_quantizers} if num_quantizers else {}, **t.run_fields(options))  # fmt: skip

    def describe(summary):
        if v := summary["val"]:
            yield f"  validation: MPJPE {v['mpjpe_mm']:.1f} mm, PA-MPJPE {v['pa_mpjpe_mm']:.1f} mm, codebook usage {100 * v['codebook_usage']:.0f}%"

    t.run_trainer(options, run, preflight, train_tokenizer, describe)


@app.command("eval")
def evaluate(
    checkpoint: str = typer.Argument(..., help="tokenizer/NAME, NAME, NAME@VERSION or a checkpoint folder."),
    data: Path = typer.Option(..., "--data", help="A myo28 .h5 set to reconstruct (held-out data for a fair figure)."),
    num_quantizers: int | None = number(None, "--num-quantizers", low=1, help="Decode with only the first N codebooks of a residual VQ."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as one JSON document."),
) -> None:
    """Reconstruct a dataset through the tokenizer: MPJPE, PA-MPJPE, acceleration error (mm), codebook usage, perplexity.

    Example: myo tokenizer eval demo --data datasets/demo_test.h5 --json
    """
    from myocli.data.h5 import read_dataset
    from myocli.tokenizer import codec as tok

    ref, model, _ = tok.load_tokenizer(checkpoint)
    dataset = read_dataset(data)
    tok.check_dataset_fits(model, dataset, str(data))
    if num_quantizers and num_quantizers > len(model.quantizers):
        raise MyoError(f"--num-quantizers {num_quantizers}: {ref.label} has only {len(model.quantizers)} codebook(s)")
    summary = tok.reconstruction_sums(model, tok.sequence_features(dataset), num_quantizers).summary()
    summary = {"checkpoint": ref.label, "data": str(data), "sequences": len(dataset), "quantizers_used": num_quantizers or len(model.quantizers)} | summary
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{ref.label} on {data}", title_justify="left", show_header=False)
    for key, label, fmt in (
        ("mpjpe_mm", "MPJPE (pelvis-aligned)", "{:.1f} mm"),
        ("heading_aligned_mpjpe_mm", "MPJPE (pelvis and heading aligned)", "{:.1f} mm"),
        ("pa_mpjpe_mm", "PA-MPJPE", "{:.1f} mm"),
        ("global_mpjpe_mm", "MPJPE (global, path included)", "{:.1f} mm"),
        ("accel_error_mm", "acceleration error", "{:.2f} mm/frame²"),
        ("codebook_usage", "codebook usage (first codebook)", "{:.1%}"),
        ("perplexity", "perplexity (first codebook)", "{:.1f}"),
        ("frames", "frames", "{}"),
        ("sequences_skipped", "sequences too short to encode", "{}"),
    ):
        table.add_row(label, fmt.format(summary[key]))
    Console().print(table)


@app.command()
def encode(
    checkpoint: str = typer.Argument(..., help="tokenizer/NAME, NAME, NAME@VERSION or a checkpoint folder."),
    data: Path = typer.Option(..., "--data", help="A myo28 .h5 dataset."),
    output: Path = typer.Option(..., "--output", "-o", help="Token file (.h5) for the language-model stages."),
    offsets: int = number(1, "--offsets", low=1, help="Also encode each sequence started 1..N-1 frames later (N up to the tokenizer's frames per token): N different token sequences of every motion, to augment a language model's training set."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the output file if it exists."),
) -> None:
    """Turn every sequence of a dataset into motion tokens, recording which tokenizer made them.

    Example: myo tokenizer encode demo --data datasets/demo_train.h5 -o datasets/demo_train_tokens.h5
    """
    from myocli import registry
    from myocli.data.h5 import read_dataset
    from myocli.data.tokens import TokenSet, write_tokens
    from myocli.tokenizer import codec as tok

    # Before the tokenizer loads: a wrong -o fails at once. The tokens must never replace the motions.
    check_outputs([output], overwrite, inputs=[data], suffixes=(".h5", ".hdf5"), contents="an HDF5 token file")
    ref, model, manifest = tok.load_tokenizer(checkpoint)
    if offsets > model.config.downsample:
        raise typer.BadParameter(f"{offsets} is more than {ref.label}'s {model.config.downsample} frames per token; later starts repeat earlier ones", param_hint="--offsets")
    dataset = read_dataset(data)
    # Token files are for the language model, whose training refuses uncaptioned clips: say so now, not after encoding.
    dataset.require_captions(f"--data {data}", "a token file (language-model training)")
    tok.check_dataset_fits(model, dataset, str(data))
    kept, skipped = [], []  # (sequence, name, codes)
    for seq in dataset.sequences:
        if not tok.can_encode(len(seq), model.config.downsample):
            skipped.append(seq)
            continue
        for start in range(offsets):  # a later start is another tokenization of the same motion
            if tok.can_encode(len(seq) - start, model.config.downsample):
                codes = tok.encode(model, tok.motion_features(seq.motion[start:], dataset.fps))
                kept.append((seq, seq.name if start == 0 else f"{seq.name}+{start}", codes))
    if not kept:
        raise MyoError(f"{data}: no sequence has {model.config.downsample} frames or more; nothing to encode")
    tokens = TokenSet(
        tokens=[codes for _, _, codes in kept],
        captions=[s.captions for s, _, _ in kept],
        names=[name for _, name, _ in kept],
        groups=[s.group or s.name for s, _, _ in kept],
        attrs={
            "tokenizer": ref.label,
            "tokenizer_sha256": manifest["files"][registry.WEIGHTS]["sha256"],
            "codebook_size": model.config.codebook_size,
            "num_quantizers": len(model.quantizers),
            "downsample": model.config.downsample,
            "fps": dataset.fps,
            "source": str(data),
            "source_sha256": registry.sha256(data),
            "offsets": offsets,
        },
    )
    write_tokens(output, tokens)
    count = sum(len(x) for x in tokens.tokens)
    typer.echo(f"Wrote {len(kept)} token sequences ({count} tokens) to {output} with {ref.label}")
    for seq in skipped:
        sys.stderr.write(f"Skipped {seq.name!r}: shorter than {model.config.downsample} frames\n")
