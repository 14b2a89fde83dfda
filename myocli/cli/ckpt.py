"""`myo ckpt`: what is in the checkpoint registry, and whether it is intact."""

from __future__ import annotations

import json
import sys

import typer

from myocli.errors import MyoError

app = typer.Typer(
    help="The checkpoint registry (checkpoints/ or $MYO_HOME): list, show, verify.\n\n"
    "Example: myo ckpt list && myo ckpt verify tokenizer/demo",
    no_args_is_help=True,
)


@app.command("list")
def list_checkpoints(as_json: bool = typer.Option(False, "--json", help="Print one JSON list on stdout.")) -> None:
    """List every checkpoint version with its status, type and headline metrics.

    Example: myo ckpt list --json | jq '.[].name'
    """
    from myocli import registry

    rows = registry.list_all()
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    if not rows:
        typer.echo(f"No checkpoints under {registry.home()} (set MYO_HOME to look elsewhere)")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"checkpoints in {registry.home()}, then the built-in ones", title_justify="left")
    table.add_column("name", no_wrap=True)  # the one column a user copies: never broken
    for column in ("version", "status", "type", "created", "steps", "metrics", "size"):
        table.add_column(column)
    for row in rows:
        val = row.get("metrics", {}).get("val") or {}
        metric = f"MPJPE {val['mpjpe_mm']:.1f} mm" if "mpjpe_mm" in val else ""
        size = f"{row['bytes'] / 1e6:.1f} MB" if "bytes" in row else ""
        table.add_row(row["name"], f"@{row['version']}", row["status"], row.get("type") or "", (row.get("created") or "")[:10],
                      str(row.get("steps") or ""), metric, size)  # fmt: skip
    Console().print(table)


@app.command()
def show(
    checkpoint: str = typer.Argument(..., help="KIND/NAME, KIND/NAME@VERSION or a checkpoint folder."),
    as_json: bool = typer.Option(False, "--json", help="Print the manifest as JSON (it always is JSON; this drops the heading)."),
) -> None:
    """Print a checkpoint's manifest: config, training options, data fingerprint, parents, metrics.

    Example: myo ckpt show tokenizer/demo@1
    """
    from myocli import registry

    ref = registry.resolve(checkpoint)
    manifest = registry.read_manifest(ref.path)
    if not as_json:
        card = ref.path / "MODEL_CARD.md"
        sys.stderr.write(f"{ref.label}  ({ref.path})" + (f"\nmodel card: {card}" if card.is_file() else "") + "\n")
    sys.stdout.write(json.dumps(manifest, indent=2) + "\n")


@app.command()
def verify(checkpoint: str = typer.Argument(..., help="KIND/NAME, KIND/NAME@VERSION or a checkpoint folder.")) -> None:
    """Check every file of a checkpoint against the sha256 in its manifest; exit 1 on any mismatch.

    Example: myo ckpt verify tokenizer/demo && echo intact
    """
    from myocli import registry

    ref = registry.resolve(checkpoint)
    problems = registry.verify(ref.path)
    if problems:
        raise MyoError(f"{ref.label} failed verification: {'; '.join(problems)}")
    typer.echo(f"{ref.label}: OK ({len(registry.read_manifest(ref.path)['files'])} files match their sha256)")
