"""Write the bash, zsh and fish completion scripts from the typer app.

    python completions/generate.py            # rewrite the scripts in completions/
    python completions/generate.py OUTDIR     # write them into OUTDIR instead

The scripts come from typer's own completion protocol: the app is invoked in-process
with `_GRADIO_CLEAN_COMPLETE=source_<shell>`, the same request the shells' scripts
answer at Tab time. That names the shell explicitly, so nothing depends on the shell
this runs in, $SHELL, the working directory or where the package is installed
(`--show-completion` takes no shell argument in typer 0.29; it detects the parent
shell). The output is only trimmed, given a header, and for zsh made to work when
autoloaded from $fpath (see `_zsh_autoload`).
"""

from __future__ import annotations

import argparse
import os
import sys

from typer.testing import CliRunner

from gradio_clean.cli import app

PROG = "gradio-clean"
COMPLETE_VAR = "_GRADIO_CLEAN_COMPLETE"
FILES = {"bash": "gradio-clean.bash", "zsh": "_gradio-clean", "fish": "gradio-clean.fish"}
REGENERATE = "python completions/generate.py"
HEADER = (
    "# Generated from the typer app by completions/generate.py; do not edit.\n"
    f"# Regenerate with: {REGENERATE}\n"
)

ZSH_COMPDEF = f"compdef _gradio_clean_completion {PROG}"
ZSH_TAIL = f"""\
if [[ "${{funcstack[1]}}" == _{PROG} ]]; then
  # Autoloaded from $fpath: this file's body is the function _{PROG} that compinit
  # bound to {PROG}, so complete now (with only compdef, the first Tab did nothing).
  _gradio_clean_completion "$@"
else
  # Sourced: register the completion function.
  {ZSH_COMPDEF}
fi"""


def typer_script(shell: str) -> str:
    """What typer answers to `_GRADIO_CLEAN_COMPLETE=source_<shell> gradio-clean`."""
    result = CliRunner().invoke(app, [], prog_name=PROG, env={COMPLETE_VAR: f"source_{shell}"})
    if result.exit_code != 0 or not result.stdout.strip():
        raise RuntimeError(
            f"typer gave no {shell} completion script (exit {result.exit_code}): {result.output!r}"
        )
    return result.stdout


def _zsh_autoload(script: str) -> str:
    """typer's zsh script ends with `compdef`: right when sourced, but a file in
    site-functions is autoloaded as the body of `_gradio-clean`, so the first Tab only
    rebinds and offers nothing. Complete at once when run as that function."""
    if not script.endswith("\n" + ZSH_COMPDEF):
        raise RuntimeError(
            f"typer's zsh script no longer ends with {ZSH_COMPDEF!r}; update _zsh_autoload"
        )
    return script[: -len(ZSH_COMPDEF)] + ZSH_TAIL


def render(shell: str) -> str:
    """The file content for one shell: typer's script, trimmed, with a header."""
    script = typer_script(shell).strip()
    if shell == "zsh":
        script = _zsh_autoload(script)
        first, _, rest = script.partition("\n")  # `#compdef` must stay the first line
        return f"{first}\n{HEADER}{rest}\n"
    return f"{HEADER}\n{script}\n"


def write_all(outdir: str) -> list[str]:
    """Write the three scripts into `outdir`; return their paths."""
    os.makedirs(outdir, exist_ok=True)
    written = []
    for shell, name in FILES.items():
        path = os.path.join(outdir, name)
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write(render(shell))
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "outdir",
        nargs="?",
        default=os.path.dirname(os.path.abspath(__file__)),
        help="where to write the scripts (default: this folder)",
    )
    args = parser.parse_args(argv)
    for path in write_all(args.outdir):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
