"""A Gradio app that hands out an old file of its own: an output and an example.

Run as `python app.py PORT` in the app's folder, by any Gradio from 5.0 on. Before
building the app it writes `old-asset.png` and `old-example.png` with a 30-day-old
mtime. Gradio copies both into its cache with shutil.copy2, so each copy keeps that
mtime: `/asset` returns one as its output, and the page config lists the other as an
example. Prints READY_MARKER once `launch()` has returned.
"""

from __future__ import annotations

import base64
import os
import sys
import time
from pathlib import Path

import gradio as gr

APP_DIR = Path(__file__).resolve().parent
READY_MARKER = "GRADIO-CLEAN-E2E READY"
AGE = 30 * 86400
# A 1x1 PNG; bytes after its end tell the two files apart.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def old_file(name: str) -> Path:
    path = APP_DIR / name
    path.write_bytes(PNG + name.encode())  # two contents: two hash folders
    then = time.time() - AGE
    os.utime(path, (then, then))
    return path


def build() -> gr.Blocks:
    asset = old_file("old-asset.png")
    example = old_file("old-example.png")
    demo = gr.Blocks()
    with demo:
        picture = gr.Image(type="filepath", label="picture")
        download = gr.File(label="asset")
        gr.Button("Asset").click(lambda: str(asset), None, download, api_name="asset")
        gr.Examples(examples=[[str(example)]], inputs=[picture], cache_examples=False)
    return demo


def main() -> None:
    demo = build()
    demo.launch(
        server_name="127.0.0.1",
        server_port=int(sys.argv[1]),
        share=False,
        ssr_mode=False,
        prevent_thread_lock=True,
        quiet=False,
    )
    print(READY_MARKER, flush=True)
    demo.block_thread()


if __name__ == "__main__":
    main()
