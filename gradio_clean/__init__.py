"""Audit and clean the files Gradio apps leave on disk."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from gradio_clean.attach import attach

__all__ = ["__version__", "attach"]


def __getattr__(name: str) -> Any:
    """`from gradio_clean import attach` loads it on first use: the CLI never pays for it,
    and Gradio itself is imported only when attach() is called."""
    if name == "attach":
        from gradio_clean.attach import attach

        return attach
    raise AttributeError(f"module 'gradio_clean' has no attribute {name!r}")
