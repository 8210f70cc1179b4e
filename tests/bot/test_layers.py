"""The layers import downwards only: pgconn/ (the running app) → handlers/ → bot/ (the core).

The core must be importable and testable without Slack listeners or the sandbox; a listener
must not reach into the process set-up. Read from the source, so a new import that breaks
the order fails here, whichever module it is in.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# What each layer must not import. bot/__main__.py is `python -m bot`, the process's own
# script: it calls pgconn.main and nothing imports it.
FORBIDDEN = {
    "bot": ("handlers", "pgconn", "sandbox", "emulators", "tests"),
    "handlers": ("pgconn", "sandbox", "emulators", "tests"),
}
SCRIPTS = {ROOT / "bot" / "__main__.py"}


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_above_it(layer: str) -> None:
    wrong = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / layer).rglob("*.py"))
        if path not in SCRIPTS
        for name in sorted(imported(path))
        if name.split(".")[0] in FORBIDDEN[layer]
    ]
    assert wrong == []


def test_the_check_sees_an_import_inside_a_function() -> None:
    # bot/__main__ is skipped on purpose; pgconn/main.py imports the sandbox lazily, inside
    # main(): the walk must see such an import, or the test above could pass on anything.
    assert "sandbox.run" in imported(ROOT / "pgconn" / "main.py")


_IMPORT_EACH = """
import importlib, sys
bad = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m.split(".")[0] in ("bot", "handlers")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as exc:
        bad.append(f"{name}: {type(exc).__name__}: {exc}")
print("\\n".join(bad))
"""


def test_every_module_imports_on_its_own() -> None:
    """A circular import shows only when the cycle is entered from one side: `import bot.render.alert`
    on a fresh interpreter failed while the bot itself (which imports bot.alerts first) ran fine.
    Each module of bot/ and handlers/ is imported first, with nothing of the project loaded."""
    import subprocess
    import sys

    names = sorted(
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for layer in ("bot", "handlers")
        for path in (ROOT / layer).rglob("*.py")
        if path not in SCRIPTS
    )
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_EACH, *names], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == ""
