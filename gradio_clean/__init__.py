"""Audit and clean the files Gradio apps leave on disk."""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from gradio_clean.inapp import attach as attach

__all__ = ["__version__", "attach"]


def __getattr__(name: str) -> object:
    """`from gradio_clean import attach` loads the library only then, so that
    `import gradio_clean` (and `gradio-clean --version`) stays instant."""
    if name == "attach":
        from gradio_clean.inapp import attach

        return attach
    raise AttributeError(f"module 'gradio_clean' has no attribute {name!r}")
