"""The `myo` command: one Typer app with a sub-app per command group.

Errors follow one convention (docs/design.md, "Command-line conventions"): a MyoError becomes a single `Error: ...`
line on stderr and exit code 1; usage errors exit 2 (Click's own); the traceback is shown
only with MYO_DEBUG=1. Ctrl-C (SIGINT) and SIGTERM end any command with one `Error: interrupted
by SIG...` line and exit code 130 or 143, leaving no half-written file. Heavy libraries are
imported inside the commands, so `myo --help` stays fast.
"""

from __future__ import annotations

import os
import signal
import sys

import typer

from myocli import __version__
from myocli.atomic import received_signal, stop_on_signals
from myocli.cli.ckpt import app as ckpt_app
from myocli.cli.data import app as data_app
from myocli.cli.demo import demo
from myocli.cli.env import env
from myocli.cli.export import export
from myocli.cli.generate import generate
from myocli.cli.lm import app as lm_app
from myocli.cli.render import render
from myocli.cli.retrieval import app as retrieval_app
from myocli.cli.rl import app as rl_app
from myocli.cli.ssm import app as ssm_app
from myocli.cli.tokenizer import app as tokenizer_app
from myocli.errors import MyoError


def _hide_flag_types() -> None:
    """Show no value type on flags in `--help`, for every command at once.

    A flag takes no value, yet Typer 0.29's rich help printed one for each (`--verify <bool>`, even
    `-h <bool>`): its options panel (typer.rich_utils) asks every option for `display_type_rich`, which
    has no case for flags; its plain help (TyperOption.get_help_record) does skip them. None is the
    panel's "no type". Typer versions without `display_type_rich` never showed one."""
    from typer.core import TyperOption

    shown = getattr(TyperOption, "display_type_rich", None)
    if shown is None or getattr(shown, "hides_flags", False):
        return

    def display_type_rich(self, ctx):
        return None if self.is_flag else shown(self, ctx)

    display_type_rich.hides_flags = True
    TyperOption.display_type_rich = display_type_rich


_hide_flag_types()

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
app.command(help="Serve a web page (and API) to try a model in a browser: text in, video and .npy/.json/.bvh out (needs the demo extra).")(demo)
app.command(help="Print the versions, devices, renderer, video encoder and checkpoints myo sees (for bug reports).")(env)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"myo {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Text-driven human motion on the anatomical myo28 skeleton."""


def main() -> None:
    debug = os.environ.get("MYO_DEBUG") == "1"
    # Ctrl-C (SIGINT) and `kill` (SIGTERM) both unwind as KeyboardInterrupt, so atomic writes remove
    # their temporary files; training installs its own handlers for its loop, which save the state first.
    stop_on_signals()
    try:
        app(prog_name="myo")
    except BaseException as exc:
        _stop_interrupted(exc, debug)
        _fail(exc, debug)


def _stop_interrupted(exc: BaseException, debug: bool) -> None:
    """Exit 128 + signal (130 for a KeyboardInterrupt raised otherwise) with one line, however the
    interrupt ended the command: Typer turns a KeyboardInterrupt into a silent Exit(130), an error it
    caused may be reported as something else, and one Python had to swallow may not surface at all."""
    number = received_signal()
    if number is None and not _caused_by_interrupt(exc):
        return
    if debug and not isinstance(exc, SystemExit):
        raise exc
    _say(f"interrupted by {signal.Signals(number).name}" if number else "interrupted")
    sys.exit(128 + (number or signal.SIGINT))


def _caused_by_interrupt(exc: BaseException | None) -> bool:
    """Whether `exc` is a KeyboardInterrupt or was raised while handling one (Typer's Exit(130))."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def _fail(exc: BaseException, debug: bool) -> None:
    """A MyoError is one line and exit 1 (or its own code); any other exception is a bug, said in one line."""
    if isinstance(exc, MyoError):
        if debug:
            raise exc
        _say(str(exc))
        sys.exit(getattr(exc, "exit_code", 1))  # 1, or 128 + signal for an interrupted training
    if isinstance(exc, Exception):
        if debug:
            raise exc
        _say(f"unexpected {type(exc).__name__}: {exc} (rerun with MYO_DEBUG=1 for the traceback)")
        sys.exit(1)
    raise exc  # SystemExit: the command's own exit code


def _say(message: str) -> None:
    if os.environ.get("RANK", "0") == "0":  # in a multi-process run, rank 0 speaks for all
        sys.stderr.write(f"Error: {message}\n")
