"""Where attach() meets Gradio (5.x and 6.x): the only module that imports it.

- ``demo.load`` / ``demo.unload``: a page connects, and its heartbeat drops. An
  unload handler also turns Gradio's heartbeat on for every page and client.
- ``demo._queue.push`` / ``process_events``: an event is queued, then runs until
  its outputs are handed to the queue's sender; its input files are held meanwhile.
- ``demo.process_api``: every call, queued or not, with the session it belongs to
  and its inputs and outputs, which are what the page's components now show.
- ``demo.extra_startup_events``: the cleaning thread starts with the app, however
  it is served (``launch()``, ``gr.mount_gradio_app``); a queue that ``demo.queue()``
  replaced is wrapped again there.

The wrappers only record, on the event loop, in O(files of the event); any error
in them is logged and the event goes on untouched.
"""

from __future__ import annotations

import functools
import inspect
import logging
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import gradio as gr

from gradio_clean.errors import UsageError

if TYPE_CHECKING:
    from gradio_clean.inapp import Attached

logger = logging.getLogger("gradio_clean")

MAX_FILE_NODES = 10_000  # JSON nodes looked at per payload
FILE_TYPE = "gradio.FileData"


def install(demo: Any, handle: Attached) -> None:
    if not all(hasattr(demo, a) for a in ("process_api", "fns", "_queue", "unload")):
        raise UsageError("attach(): expected a gradio.Blocks, Interface or ChatInterface")
    if getattr(demo, "_gradio_clean", None) is not None:
        raise UsageError("attach(): this app already has gradio-clean attached")
    demo._gradio_clean = handle
    _listen(demo, handle)
    _wrap_process_api(demo, handle)
    _wrap_queue(demo, handle)

    async def startup() -> None:
        try:
            _wrap_queue(demo, handle)  # demo.queue() after attach() made a new one
            handle.start()
        except Exception:
            logger.error("gradio-clean: could not start; the app runs without it", exc_info=True)

    demo.extra_startup_events.append(startup)
    if getattr(demo, "is_running", False):  # attached to an app already serving
        handle.start()


def file_paths(value: object) -> list[str]:
    """The paths of the FileData objects in a JSON payload (inputs or outputs)."""
    out: list[str] = []
    stack = [value]
    seen = 0
    while stack and seen < MAX_FILE_NODES:
        seen += 1
        item = stack.pop()
        if isinstance(item, dict):
            path = item.get("path")
            meta = item.get("meta")
            is_file = isinstance(meta, dict) and meta.get("_type") == FILE_TYPE
            if isinstance(path, str) and path and (is_file or "orig_name" in item):
                out.append(path)
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return out


def _listen(demo: Any, handle: Attached) -> None:
    live = handle.live

    def connected(request: gr.Request) -> None:
        if request.session_hash:
            logger.debug("gradio-clean: page %s connected", request.session_hash)
            live.connect(request.session_hash)

    def disconnected(request: gr.Request) -> None:
        if request.session_hash:
            logger.debug("gradio-clean: page %s disconnected", request.session_hash)
            live.disconnect(request.session_hash)

    for fn in (connected, disconnected):
        fn.__annotations__["request"] = gr.Request  # resolved, for Gradio's injection
    hidden = _private(demo.load)
    with _inside(demo), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        demo.load(connected, None, None, queue=False, show_progress="hidden", **hidden)
        demo.unload(disconnected)


def _private(listener: Callable[..., Any]) -> dict[str, object]:
    """Kept out of the API page: 6.x says api_visibility, 5.x show_api."""
    params = inspect.signature(listener).parameters
    if "api_visibility" in params:
        return {"api_visibility": "private"}
    if "show_api" in params:
        return {"show_api": False}
    return {}


class _inside:
    """`with demo:` unless we are already inside it (attach called within the block)."""

    def __init__(self, demo: Any) -> None:
        self.demo = demo
        self.entered = False

    def __enter__(self) -> None:
        from gradio.context import Context

        if Context.root_block is not self.demo:
            self.demo.__enter__()
            self.entered = True

    def __exit__(self, *exc: object) -> None:
        if self.entered:
            self.demo.__exit__(*exc)


def _wrap_process_api(demo: Any, handle: Attached) -> None:
    original = demo.process_api
    live = handle.live

    @functools.wraps(original)
    async def process_api(*args: Any, **kwargs: Any) -> Any:
        output = await original(*args, **kwargs)
        try:
            _record_call(demo, live, args, kwargs, output)
        except Exception:
            logger.warning("gradio-clean: could not record an event's files", exc_info=True)
        return output

    demo.process_api = process_api


def _record_call(
    demo: Any, live: Any, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any
) -> None:
    session = kwargs.get("session_hash")
    if not session:
        return  # examples cached at launch, or a call from Python: no page
    block_fn = kwargs.get("block_fn", args[0] if args else None)
    if isinstance(block_fn, int):
        block_fn = demo.fns[block_fn]
    inputs = kwargs.get("inputs", args[1] if len(args) > 1 else None) or []
    outputs = output.get("data") if isinstance(output, dict) else None
    for blocks, values in (
        (getattr(block_fn, "inputs", []), inputs),
        (getattr(block_fn, "outputs", []), outputs or []),
    ):
        if not isinstance(values, list) or len(values) != len(blocks):
            continue
        for block, value in zip(blocks, values, strict=True):
            live.show(session, str(getattr(block, "_id", id(block))), file_paths(value))
    live.seen(session)


def _wrap_queue(demo: Any, handle: Attached) -> None:
    queue = demo._queue
    if getattr(queue, "_gradio_clean", None) is handle:
        return
    queue._gradio_clean = handle
    live = handle.live
    push, process_events = queue.push, queue.process_events

    @functools.wraps(push)
    async def pushed(body: Any, *args: Any, **kwargs: Any) -> Any:
        token = id(body)
        try:
            live.pin(token, body.session_hash, file_paths(body.data), body)
        except Exception:
            logger.warning("gradio-clean: could not record a queued event", exc_info=True)
        try:
            result = await push(body, *args, **kwargs)
        except BaseException:
            _release(live, [token])
            raise
        try:
            if not (isinstance(result, tuple) and result and result[0]):
                live.unpin(token)  # refused: full queue, validation error
            elif body.session_hash:
                live.pin(token, body.session_hash, (), body)  # Gradio may have named it
        except Exception:
            logger.warning("gradio-clean: could not record a queued event", exc_info=True)
        return result

    @functools.wraps(process_events)
    async def processed(events: list[Any], *args: Any, **kwargs: Any) -> Any:
        tokens = []
        for event in events:
            body = getattr(event, "data", None)
            if body is None:
                continue
            tokens.append(id(body))
            try:
                live.pin(id(body), event.session_hash, file_paths(body.data), body)
                live.start(id(body))
            except Exception:
                logger.warning("gradio-clean: could not record an event", exc_info=True)
        try:
            return await process_events(events, *args, **kwargs)
        finally:
            _release(live, tokens)

    queue.push = pushed
    queue.process_events = processed


def _release(live: Any, tokens: list[int]) -> None:
    for token in tokens:
        try:
            live.unpin(token)
        except Exception:
            logger.warning("gradio-clean: could not release an event's files", exc_info=True)
