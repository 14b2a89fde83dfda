"""The `myo` command: one Typer app with a sub-app per command group.

Errors follow one convention (docs/design.md, "Command-line conventions"): a MyoError becomes a single `Error: ...`
line on stderr and exit code 1; usage errors exit 2 (Click's own); the traceback is shown
only with MYO_DEBUG=1. Heavy libraries are imported inside the commands, so `myo --help`
stays fast.
"""

from __future__ import annotations

import os
import signal
import sys

import typer

from myocli import __version__
from myocli.cli.ckpt import app as ckpt_app
from myocli.cli.data import app as data_app
from myocli.cli.export import export
from myocli.cli.generate import generate
from myocli.cli.lm import app as lm_app
from myocli.cli.render import render
from myocli.cli.retrieval import app as retrieval_app
from myocli.cli.rl import app as rl_app
from myocli.cli.ssm import app as ssm_app
from myocli.cli.tokenizer import app as tokenizer_app
from myocli.errors import MyoError

app = typer.Typer(
    name="myo",
    help="Text-driven human motion on the anatomical myo28 skeleton.\n\n"
    "Example: myo data convert @pybullet -o datasets/pybullet.h5 && myo data inspect datasets/pybullet.h5",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(data_app, name="data")
app.add_typer(tokenizer_app, name="tokenizer")
app.add_typer(lm_app, name="lm")
app.add_typer(ssm_app, name="ssm")
app.add_typer(rl_app, name="rl")
app.add_typer(retrieval_app, name="retrieval")
app.add_typer(ckpt_app, name="ckpt")
app.command(help="Generate motion from text (and text from motion, continuations, in-betweens) with a trained model.")(generate)
app.command(help="Render motions to .mp4, .gif or a .png contact sheet, side by side when several are given.")(render)
app.command(help="Export a motion as BVH (joint rotations by inverse kinematics) for Blender, Maya, MotionBuilder.")(export)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"myo {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Text-driven human motion on the anatomical myo28 skeleton."""


def _terminate(signal_number, _frame) -> None:
    # SIGTERM unwinds like an exception, so atomic writes remove their temporary files.
    # (Training installs its own handler, which saves its state first.)
    raise SystemExit(128 + signal_number)


def main() -> None:
    debug = os.environ.get("MYO_DEBUG") == "1"
    signal.signal(signal.SIGTERM, _terminate)
    try:
        app(prog_name="myo")
    except MyoError as exc:
        if debug:
            raise
        if os.environ.get("RANK", "0") == "0":  # in a multi-process run, rank 0 speaks for all
            sys.stderr.write(f"Error: {exc}\n")
        sys.exit(getattr(exc, "exit_code", 1))  # 1, or 128 + signal for an interrupted training
    except KeyboardInterrupt:
        sys.stderr.write("Error: interrupted\n")
        sys.exit(130)
    except Exception as exc:  # a bug: say so in one line, keep the traceback for MYO_DEBUG=1
        if debug:
            raise
        sys.stderr.write(f"Error: unexpected {type(exc).__name__}: {exc} (rerun with MYO_DEBUG=1 for the traceback)\n")
        sys.exit(1)
