"""`python -m gradio_clean` and the console script.

`--version` is answered before typer, rich or the library are imported, so it starts
about as fast as Python itself; everything else goes to the typer app.
"""

import sys


def main() -> None:
    if sys.argv[1:] in (["--version"], ["-V"]):
        from gradio_clean import __version__

        sys.stdout.write(f"gradio-clean {__version__}\n")
        return
    from gradio_clean.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
