"""Audit and clean the files Gradio apps leave on disk."""

__version__ = "0.1.0"
