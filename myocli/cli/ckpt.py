"""`myo ckpt`: what is in the checkpoint registry, and whether it is intact."""

from __future__ import annotations

import json
import sys

import typer

from myocli.errors import MyoError

app = typer.Typer(
    help="The checkpoint registry (checkpoints/ or $MYO_HOME): list, show, verify, remove.\n\n"
    "Example: myo ckpt list && myo ckpt verify tokenizer/demo",
    no_args_is_help=True,
)


@app.command("list")
def list_checkpoints(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON list on stdout."),
    verify_files: bool = typer.Option(False, "--verify", help="Hash every file against its manifest, as `myo ckpt verify` does (reads every byte, about 1 GB/s); without it only missing files and changed sizes are caught."),
) -> None:
    """List every checkpoint version with its status, type and headline metrics.

    Status: complete or built-in; damaged (files missing, changed or, with --verify, not matching their
    sha256: the note says what); and for a version without a manifest what became of its run: training
    (running, or stopped by Ctrl-C/SIGTERM with its state saved), failed (stopped on an error), stale (its
    process vanished: killed, out of memory), incomplete (nothing to resume). The note says why, and
    whether --resume can go on with it; `myo ckpt remove` deletes what you will not resume.

    Example: myo ckpt list --verify --json | jq '.[] | select(.status != "complete") | .name'
    """
    from myocli import registry

    rows = registry.list_all(verify_files=verify_files)
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
    console = Console()
    console.print(table)
    # What is wrong with a version, or became of its run, takes a sentence: one line each under the table.
    for row in rows:
        note = row.get("problem") or (registry.describe_unfinished(row) if "resumable" in row else None)
        if note:
            console.print(f"{row['name']}@{row['version']} ({row['status']}): {note}", markup=False, highlight=False)


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


@app.command()
def remove(
    checkpoint: str = typer.Argument(..., help="One version of your registry: KIND/NAME@VERSION (`myo ckpt list` shows them)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Remove without asking (needed when not run at a terminal)."),
) -> None:
    """Delete one version from your registry: a run you will not resume (interrupted, failed, stale), or a checkpoint.

    Built-in models are never removed, nor a version whose run is still going on (stop it first:
    Ctrl-C or kill PID saves its state). At a terminal it asks first; elsewhere it needs --yes.

    Example: myo ckpt remove tokenizer/demo@2 --yes
    """
    from myocli import registry

    ref = registry.find_version(checkpoint)
    problem = registry.removal_problem(ref)
    if problem:
        raise MyoError(problem)
    what = "checkpoint" if registry.is_complete(ref.path) else f"unfinished run ({registry.run_status(ref.path)['status']})"
    if not yes:
        if not sys.stdin.isatty():
            raise MyoError(f"removing {ref.label} ({ref.path}) cannot be undone: add --yes to remove it")
        if not typer.confirm(f"Remove the {what} {ref.label} ({ref.path})? This cannot be undone"):
            raise MyoError(f"{ref.label} was not removed")
    registry.remove_version(ref)
    typer.echo(f"Removed the {what} {ref.label} ({ref.path})")
