"""Audit and clean the files Gradio apps leave on disk."""

__version__ = "0.1.0"

# After __version__: the modules attach.py pulls in may read it. attach.py itself
# imports neither Gradio nor the CLI's typer/rich; Gradio comes only when attach() runs.
# The name is bound here, over the submodule of the same name, so that
# `from gradio_clean import attach` is always the function.
from gradio_clean.attach import attach

__all__ = ["__version__", "attach"]
