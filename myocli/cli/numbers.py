"""One check for every number a command takes: a finite value inside the range where it means something.

Typer's own `min`/`max` let NaN through an option without bounds and infinity past a lower bound,
and cannot say "above 0"; such a value then failed late (after a model had loaded) as an
unexpected ValueError, or ran with a meaningless setting. `number` declares a numeric option with
its range once: a value outside it is a usage error naming the option (exit 2) before the command
starts, and the range is stated in the option's help.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable

import typer

from myocli.errors import OptionError

# Seeds reach numpy's legacy seeding (accelerate's set_seed), which takes 0 .. 2**32 - 1.
SEED_MAX = 2**32 - 1
# The highest frame rate a dataset may declare (myocli.data.h5.FPS_RANGE, not imported here: numpy
# would slow down `myo --help`); a motion file at a higher rate could not be read back.
MAX_FPS = 10_000.0


def number(*decls, low: float | None = None, high: float | None = None, above: float | None = None,
           below: float | None = None, help: str = "", **options):  # fmt: skip
    """A typer.Option (positional and keyword arguments as typer.Option's) for an int or float that must
    be finite, at least `low`, at most `high`, more than `above` and less than `below` (each optional).
    An option left out (None) is not checked."""
    check = _checker(low, high, above, below)
    return typer.Option(*decls, callback=check, help=f"{help} ({check.described})" if check.described else help, **options)


def check_option(command: Callable, name: str, value):
    """`value` for the parameter `name` of `command`, checked as the command line checks it (a `number`
    option's range, the same message): for a front end that takes the value elsewhere (`myo demo`'s page).
    Returns the value; raises OptionError naming the option."""
    option = inspect.signature(command).parameters[name].default
    try:
        return option.callback(value) if option.callback else value
    except typer.BadParameter as exc:
        raise OptionError(exc.message, option.param_decls[0]) from exc


def _checker(low, high, above, below) -> Callable:
    """The Typer callback enforcing the bounds, with `described`: the range in words ("" for none)."""
    tests = [(low, lambda v, b: v >= b), (above, lambda v, b: v > b), (high, lambda v, b: v <= b), (below, lambda v, b: v < b)]
    tests = [(bound, holds) for bound, holds in tests if bound is not None]
    described = _describe(low, high, above, below)

    def check(value):
        if value is None:
            return value
        if not math.isfinite(value):
            raise typer.BadParameter(f"{_text(value)}: must be a finite number" + (f" ({described})" if described else ""))
        if not all(holds(value, bound) for bound, holds in tests):
            raise typer.BadParameter(f"{_text(value)}: must be {described}")
        return value

    check.described = described
    return check


def _describe(low, high, above, below) -> str:
    """The range in words: "from 1 to 1000", "1 or more", "above 0 and at most 1"."""
    if low is not None and high is not None and above is None and below is None:
        return f"from {_text(low)} to {_text(high)}"
    parts = [f"{_text(low)} or more" if low is not None else "", f"above {_text(above)}" if above is not None else "",
             f"at most {_text(high)}" if high is not None else "", f"below {_text(below)}" if below is not None else ""]  # fmt: skip
    return " and ".join(part for part in parts if part)


def _text(value: float) -> str:
    """A number as a user would type it: 0.2, 1e-05, nan, 4294967295."""
    return f"{value:g}" if isinstance(value, float) else str(value)
