"""Stage configs: YAML files with a `model:` and a `train:` section.

`--config` takes a preset name (a file shipped in myocli/configs/<stage>/, such as `tiny`
or `paper`) or the path of a YAML file of your own with the same sections. Presets ship
inside the package, not in a top-level folder, so `--config tiny` works from any directory
after `pip install`.
"""

from __future__ import annotations

import types
import typing
from dataclasses import asdict, fields
from pathlib import Path
from typing import get_type_hints

from myocli.errors import MyoError

PRESETS = Path(__file__).resolve().parent / "configs"


def _coerce(key: str, value, kind):
    """A YAML value as the field's type. YAML reads `2e-4` as a string, so numbers in strings count."""
    origin, arguments = typing.get_origin(kind), typing.get_args(kind)
    if origin in (types.UnionType, typing.Union):  # X | None
        if value is None and type(None) in arguments:
            return None
        return _coerce(key, value, next(a for a in arguments if a is not type(None)))
    if origin is list and isinstance(value, (list, tuple)):
        return [_coerce(key, item, arguments[0]) for item in value]
    try:
        if kind is bool and isinstance(value, bool):
            return value
        if kind is int and not isinstance(value, bool) and float(value) == int(float(value)):
            return int(float(value))
        if kind is float and not isinstance(value, bool):
            return float(value)
        if kind is str and isinstance(value, str):
            return value
        if kind is dict and isinstance(value, dict):
            return dict(value)
    except (TypeError, ValueError):
        pass
    raise MyoError(f"{key}: expected {getattr(kind, '__name__', kind)}, got {value!r}")


class DictConfig:
    """For config dataclasses: build from a dict (refusing unknown keys by name) and back."""

    @classmethod
    def from_dict(cls, values: dict):
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise MyoError(f"unknown {cls.__name__} settings: {', '.join(sorted(unknown))}")
        types = get_type_hints(cls)
        return cls(**{key: _coerce(key, value, types[key]) for key, value in values.items()})

    def to_dict(self) -> dict:
        return asdict(self)


def presets(stage: str) -> list[str]:
    return sorted(p.stem for p in (PRESETS / stage).glob("*.yaml"))


def load_config(stage: str, spec: str, sections: tuple[str, ...] = ("model", "train")) -> tuple[dict, str]:
    """(config dict with one entry per section, where it came from). The language model's
    configs have a third section, `instruct:`, the training options of instruction tuning."""
    import yaml

    path = Path(spec)
    if not path.is_file():
        preset = PRESETS / stage / f"{spec}.yaml"
        if not preset.is_file():
            raise MyoError(f"--config {spec!r}: no such file, and not a {stage} preset (presets: {', '.join(presets(stage))})")
        path = preset
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise MyoError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(values, dict) or set(values) - set(sections):
        raise MyoError(f"{path}: a {stage} config has only {', '.join(f'{s}:' for s in sections)} sections")
    return {section: values.get(section) or {} for section in sections}, str(path)
