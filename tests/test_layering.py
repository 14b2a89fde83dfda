"""The import rules of docs/design.md ("Code layout and import rules"), read off the source.

Every module under myocli/ is parsed with `ast`, and every import in it counts: at the top, inside a
function (where the heavy ones live, so `myo --help` stays fast) or under `if TYPE_CHECKING`. An
import is taken as the dotted names it reaches: `from myocli.render.scene import to_mujoco` reaches
myocli.render.scene.to_mujoco, which lies under myocli.render. A failure lists each offending module,
line and import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "myocli"
KINDS = ("tokenizer", "retrieval", "lm", "ssm", "rl")  # one package per registry kind


def imports(source: str) -> list[tuple[int, str]]:
    """(line, dotted name) for every import in `source`, anywhere in it; relative ones keep their dots."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")  # `from . import x` has no module, only dots
            for alias in node.names:
                found.append((node.lineno, base + alias.name if base.endswith(".") else f"{base}.{alias.name}"))
    return found


def under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def modules(*names: str) -> list[Path]:
    """The modules under these folders of myocli/, or these files of it."""
    paths = []
    for name in names:
        target = PACKAGE / name
        paths += sorted(target.rglob("*.py")) if target.is_dir() else [target]
    return paths


def offences(paths: list[Path], forbidden=(), allowed=None, exempt: dict | None = None) -> list[str]:
    """Each import of `paths` that reaches a `forbidden` prefix, or (with `allowed`) any myocli name outside
    those prefixes; `exempt` maps a module's path (relative to myocli/) to prefixes it may import anyway."""
    found = []
    for path in paths:
        relative = path.relative_to(PACKAGE).as_posix()
        excused = (exempt or {}).get(relative, ())
        for line, name in imports(path.read_text()):
            if not under(name, ("myocli",)):
                continue
            wrong = under(name, forbidden) if allowed is None else not under(name, allowed)
            if wrong and not under(name, excused):
                found.append(f"myocli/{relative}:{line} imports {name}")
    return found


def test_rl_imports_neither_render_data_nor_cli():
    """The simulation, the environment, the policy and PPO know nothing of file formats or pictures:
    axes come from myocli/axes.py, floor and resampling from motion/. The trainer reads its clips from
    a dataset file, as every kind's trainer does (its one import of data/)."""
    exempt = {"rl/train.py": ("myocli.data.h5",)}
    found = offences(modules("rl"), forbidden=("myocli.render", "myocli.data", "myocli.cli"), exempt=exempt)
    assert not found, "rl/ must not import render/, data/ or cli/:\n" + "\n".join(found)


def test_motion_imports_only_the_joint_core_and_itself():
    allowed = ("myocli.skeleton", "myocli.rotations", "myocli.errors", "myocli.config", "myocli.motion")
    found = offences(modules("motion"), allowed=allowed)
    assert not found, "motion/ may import only skeleton, rotations, errors, config and motion/:\n" + "\n".join(found)


def test_data_and_render_import_no_model_trainer_or_cli():
    forbidden = tuple(f"myocli.{kind}" for kind in KINDS) + ("myocli.train", "myocli.cli")
    found = offences(modules("data", "render"), forbidden=forbidden)
    assert not found, "data/ and render/ must not import a model, a trainer or the CLI:\n" + "\n".join(found)


def test_models_import_no_trainer_engine_refinement_or_cli():
    """A kind's model.py is the network and its config: what trains or samples it lives beside it."""
    forbidden = tuple(f"myocli.{kind}.{part}" for kind in KINDS for part in ("train", "engine")) + (
        "myocli.train", "myocli.cli", "myocli.motion.refine",
    )  # fmt: skip
    found = offences(sorted(PACKAGE.glob("*/model.py")), forbidden=forbidden)
    assert not found, "a model.py must not import a trainer, an engine, refinement or the CLI:\n" + "\n".join(found)


def test_only_the_command_line_imports_cli():
    entry_points = {"cli", "__main__.py"}  # `myo` and `python -m myocli`
    library = [path for path in sorted(PACKAGE.rglob("*.py")) if path.relative_to(PACKAGE).parts[0] not in entry_points]
    found = offences(library, forbidden=("myocli.cli",))
    assert not found, "the library must not import cli/:\n" + "\n".join(found)


def test_the_joint_core_imports_nothing_of_myocli():
    found = offences(modules("skeleton.py"), allowed=())
    assert not found, "skeleton.py must import only numpy:\n" + "\n".join(found)


def test_imports_are_absolute():
    """A relative import would slip past the rules above, which read dotted names."""
    found = [f"myocli/{p.relative_to(PACKAGE).as_posix()}:{line} imports {name}"
             for p in sorted(PACKAGE.rglob("*.py")) for line, name in imports(p.read_text()) if name.startswith(".")]  # fmt: skip
    assert not found, "use absolute imports (from myocli.x import y):\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from myocli.render.scene import to_mujoco", [(1, "myocli.render.scene.to_mujoco")]),
        ("import myocli.data.h5 as h5", [(1, "myocli.data.h5")]),
        ("from myocli import skeleton as sk", [(1, "myocli.skeleton")]),
        ("def f():\n    if True:\n        from myocli.cli import main", [(3, "myocli.cli.main")]),  # inside a function
        ("from . import humanoid\nfrom ..data import h5", [(1, ".humanoid"), (2, "..data.h5")]),
        ("import numpy\nfrom torch import nn", [(1, "numpy"), (2, "torch.nn")]),
    ],
)
def test_imports_are_found_wherever_they_are(source, expected):
    assert imports(source) == expected


def test_the_code_follows_its_lint_settings():
    """pyproject.toml's [tool.ruff] says what the code follows (160 columns outside the Typer option lists,
    imports sorted, no unused names): ruff, from the dev extra, checks the whole tree against it."""
    import shutil
    import subprocess

    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    result = subprocess.run([ruff, "check", "--no-cache", "."], cwd=PACKAGE.parent, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]
