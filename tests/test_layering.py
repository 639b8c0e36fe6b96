"""The core is a library: only the command line and the table renderer import typer or rich."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import gradio_clean
from tests.conftest import cli_env

# The command line (cli.py with its options and consoles), the table renderer (and
# pathfit, which cuts paths to its columns), __main__ (which starts the command line),
# and the hooks attach() puts into a Gradio app (they import Gradio, which brings typer
# and rich of its own).
FRONT = {"__main__", "cli", "cli_flags", "consoles", "report", "pathfit", "hooks"}


def test_the_library_imports_neither_typer_nor_rich() -> None:
    library = sorted(
        m.name for m in pkgutil.iter_modules(gradio_clean.__path__) if m.name not in FRONT
    )
    assert {"scan", "rules", "plan", "apply", "delete", "duplicates", "documents"} <= set(library)
    code = (
        "import importlib, sys\n"
        f"for name in {library!r}:\n"
        "    importlib.import_module('gradio_clean.' + name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('typer', 'rich', 'click')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), check=True
    )
    assert done.stdout.strip() == "[]"
