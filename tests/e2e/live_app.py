"""A Gradio app with gradio-clean attached: `python app.py PORT`, options in the environment.

GRADIO_CLEAN_ATTACH holds attach()'s keywords as JSON. The app serves on 127.0.0.1,
logs the `gradio_clean` logger to stdout, and prints READY_MARKER once launched.

- `/echo(file, seconds)` sleeps, then reads its upload and returns the same bytes
  as a new file (Gradio caches it in its own hash folder);
- with `"attach": false` in the options, attach() is not called: a plain Gradio app;
- with `"serve": "mount"` in the options, the app is served by uvicorn through
  `gr.mount_gradio_app`, after a `demo.queue()` that replaces the queue attach() saw;
- the "Draw" button draws an image for the page and, like the docs' resource-cleanup
  demo, keeps a copy in `sessions/<session hash>/`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

import gradio as gr
import numpy as np
import numpy.typing as npt

from gradio_clean import attach

APP_DIR = Path(__file__).resolve().parent
SESSIONS = APP_DIR / "sessions"
READY_MARKER = "GRADIO-CLEAN-E2E READY"


def echo(path: str, seconds: float, request: gr.Request) -> str:
    time.sleep(float(seconds))
    data = Path(path).read_bytes()  # after the sleep: the outside prune ran meanwhile
    out = APP_DIR / "outputs" / f"{request.session_hash}-{time.monotonic_ns()}"
    out.mkdir(parents=True)
    (out / "echo.bin").write_bytes(data)
    return str(out / "echo.bin")


def draw(request: gr.Request) -> npt.NDArray[np.uint8]:
    image = np.random.default_rng().integers(0, 256, (16, 16, 3), dtype=np.uint8)
    folder = SESSIONS / str(request.session_hash)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "drawn.npy", image)
    return image


def build() -> gr.Blocks:
    demo = gr.Blocks()
    with demo:
        upload = gr.File(type="filepath", label="upload")
        seconds = gr.Number(value=0, label="seconds")
        result = gr.File(label="result")
        gr.Button("Echo").click(echo, [upload, seconds], result, api_name="echo")
        picture = gr.Image(type="numpy", label="picture", elem_id="picture")
        gr.Button("Draw", elem_id="draw").click(draw, None, picture, api_name="draw")
    return demo


def main() -> None:
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(name)s %(message)s")
    SESSIONS.mkdir(exist_ok=True)
    demo = build()
    options = json.loads(os.environ.get("GRADIO_CLEAN_ATTACH", "{}"))
    serve = options.pop("serve", "launch")
    if options.pop("attach", True):
        attach(demo, sessions_dirs=[SESSIONS], **options)
    if serve == "mount":  # inside a FastAPI app, and a queue made after attach()
        mount(demo.queue(default_concurrency_limit=4), int(sys.argv[1]))
        return
    demo.launch(
        server_name="127.0.0.1",
        server_port=int(sys.argv[1]),
        share=False,
        ssr_mode=False,
        prevent_thread_lock=True,
        quiet=False,
    )
    print(READY_MARKER, gr.__version__, flush=True)
    demo.block_thread()


def mount(demo: gr.Blocks, port: int) -> None:
    import fastapi
    import uvicorn

    app = gr.mount_gradio_app(fastapi.FastAPI(), demo, path="/", ssr_mode=False)
    print(READY_MARKER, gr.__version__, "mounted", flush=True)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
