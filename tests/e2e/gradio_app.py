"""A small Gradio app that writes everything a real app leaves on disk.

Run as `python app.py PORT` with the app's folder as the working directory. It
serves on 127.0.0.1 only, never makes a share link, and prints READY_MARKER
once `launch()` has returned (the example cache is written by then).

Per call of `process`:
- the uploaded files arrive in Gradio's cache (`<GRADIO_TEMP_DIR>/<sha256>/<name>`),
  and `gr.File(type="filepath")` leaves one empty `tmpXXXXXXXX` per file;
- an image (numpy) and an audio clip (numpy -> wav) go back to the caller,
  saved by Gradio as `<sha256>/image.webp` and `<sha256>/audio.wav`;
- like the docs' resource-cleanup demo, a per-session folder
  `<app dir>/<request.session_hash>/` receives a copy of the image.

`gr.Examples(cache_examples=True)` fills `.gradio/cached_examples/`, and the
`/flag` endpoint (a `gr.CSVLogger`, as the flagging guide does it with Blocks)
fills `.gradio/flagged/`.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import sys
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import numpy.typing as npt
from PIL import Image

APP_DIR = Path(__file__).resolve().parent
EXAMPLE_FILE = "example.txt"
READY_MARKER = "GRADIO-CLEAN-E2E READY"
SAMPLE_RATE = 8000


def render(paths: list[str]) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int16], str]:
    """An image and a tone that depend only on the uploaded contents."""
    digest = hashlib.sha256()
    for p in paths:
        digest.update(Path(p).read_bytes())
    seed = int.from_bytes(digest.digest()[:4], "big")
    image = np.random.default_rng(seed).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    t = np.arange(SAMPLE_RATE // 4) / SAMPLE_RATE
    tone = 0.3 * np.sin(2 * np.pi * (220 + seed % 440) * t)
    audio = (tone * np.iinfo(np.int16).max).astype(np.int16)
    return image, audio, digest.hexdigest()


def process(
    paths: list[str] | None, request: gr.Request | None
) -> tuple[npt.NDArray[np.uint8], tuple[int, npt.NDArray[np.int16]], str]:
    paths = paths or []
    image, audio, digest = render(paths)
    # No request (and so no session) while the examples are cached at launch.
    if request is not None and request.session_hash:
        user_dir = APP_DIR / request.session_hash
        os.makedirs(user_dir, exist_ok=True)
        Image.fromarray(image).save(user_dir / f"{secrets.token_urlsafe(8)}.webp")
    names = ", ".join(Path(p).name for p in paths)
    return image, (SAMPLE_RATE, audio), f"{len(paths)} files ({names}) {digest}"


def delete_directory(request: gr.Request) -> None:
    """The demo's unload handler, as published: it removes nothing without auth."""
    if not request.username:
        return
    shutil.rmtree(APP_DIR / request.username, ignore_errors=True)


def build() -> gr.Blocks:
    flagger = gr.CSVLogger()
    demo = gr.Blocks(delete_cache=(60, 3600))
    with demo:
        files = gr.File(file_count="multiple", type="filepath", label="uploads")
        picture = gr.Image(type="numpy", label="picture")
        sound = gr.Audio(type="numpy", label="sound")
        summary = gr.Textbox(label="summary")
        run = gr.Button("Run")
        flag = gr.Button("Flag")
        run.click(process, files, [picture, sound, summary], api_name="process")
        gr.Examples(
            examples=[[[EXAMPLE_FILE]]],
            inputs=files,
            outputs=[picture, sound, summary],
            fn=process,
            cache_examples=True,
            cache_mode="eager",
        )
        flagger.setup([files, picture, sound], ".gradio/flagged")

        def flag_fn(*args: Any) -> None:
            flagger.flag(list(args))

        flag.click(flag_fn, [files, picture, sound], None, preprocess=False, api_name="flag")
        demo.unload(delete_directory)
    return demo


def main() -> None:
    port = int(sys.argv[1])
    demo = build()
    demo.launch(
        server_name="127.0.0.1",
        server_port=port,
        share=False,
        ssr_mode=False,
        mcp_server=False,
        prevent_thread_lock=True,
        quiet=False,
    )
    print(READY_MARKER, flush=True)
    demo.block_thread()


if __name__ == "__main__":
    main()
