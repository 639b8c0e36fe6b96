"""What attach(demo) costs a live app: event latency, and descriptors per live session.

Starts the same trivial app twice in a subprocess, without and with `attach`, and
times `--calls` round trips of a trivial event through gradio_client (after a
warm-up); prints p50 and p99 of each and their ratio. Then, with attach, opens
`--sessions` client sessions that each upload a file and get one back, and counts
the app's descriptors on files and folders before and after (sockets aside): the
marks a live session costs.

    python bench/attach_latency.py --calls 1000 --sessions 50
    python bench/attach_latency.py --python .venv-gradio5/bin/python   # Gradio 5.x

Not a timed test: run it on a quiet machine; numbers on a busy one are noise.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from gradio_client import Client, handle_file

REPO = Path(__file__).resolve().parent.parent
APP = """
import os, sys
import gradio as gr

def ping(text):
    return text

def echo(path):
    return path

with gr.Blocks() as demo:
    box = gr.Textbox()
    gr.Button("ping").click(ping, box, box, api_name="ping")
    upload, result = gr.File(type="filepath"), gr.File()
    gr.Button("echo").click(echo, upload, result, api_name="echo")
if os.environ.get("BENCH_ATTACH") == "1":
    from gradio_clean import attach
    attach(demo, grace="10m", sessions_dirs=["sessions"])
demo.launch(server_name="127.0.0.1", server_port=int(sys.argv[1]), prevent_thread_lock=True,
            quiet=True, ssr_mode=False)
print("READY", flush=True)
demo.block_thread()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start(python: str, work: Path, attached: bool) -> tuple[subprocess.Popen[bytes], str]:
    app_dir = work / ("with" if attached else "without")
    (app_dir / "sessions").mkdir(parents=True)
    (app_dir / "app.py").write_text(APP)
    port = free_port()
    env = dict(os.environ)
    env.update(
        BENCH_ATTACH="1" if attached else "0",
        GRADIO_TEMP_DIR=str(app_dir / "gradio-temp"),
        GRADIO_ANALYTICS_ENABLED="False",
        NO_PROXY="127.0.0.1,localhost",
        PYTHONPATH=str(REPO),
    )
    proc = subprocess.Popen(
        [python, "app.py", str(port)], cwd=app_dir, env=env, stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != b"READY":
        proc.kill()
        raise SystemExit(f"the app did not start ({python})")
    url = f"http://127.0.0.1:{port}/"
    with httpx.Client(trust_env=False) as http:
        for _ in range(100):
            if http.get(url + "config").status_code == 200:
                break
            time.sleep(0.1)
    return proc, url


def timings(url: str, calls: int, warmup: int) -> list[float]:
    client = Client(url, verbose=False, analytics_enabled=False)
    try:
        for _ in range(warmup):
            client.predict("x", api_name="/ping")
        out = []
        for i in range(calls):
            t = time.perf_counter()
            client.predict(f"call {i}", api_name="/ping")
            out.append(time.perf_counter() - t)
        return out
    finally:
        client.close()


def descriptors(pid: int) -> int:
    """Descriptors on files and folders (marks), not the clients' sockets."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("/")
        except OSError:
            continue
    return count


def per_session(url: str, pid: int, sessions: int, work: Path) -> tuple[int, int]:
    """Open descriptors of the app before and after `sessions` live client sessions."""
    before = descriptors(pid)
    clients = []
    for i in range(sessions):
        path = work / f"upload-{i}.bin"
        path.write_bytes(os.urandom(1024))
        client = Client(url, verbose=False, analytics_enabled=False, download_files=False)
        client.predict(handle_file(str(path)), api_name="/echo")
        clients.append(client)
    time.sleep(1.0)
    after = descriptors(pid)
    for client in clients:
        client.close()
    return before, after


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--python", default=sys.executable, help="the app's interpreter")
    args = parser.parse_args()
    os.environ["NO_PROXY"] = "127.0.0.1,localhost"
    results: dict[bool, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="gc-attach-bench-") as tmp:
        work = Path(tmp)
        for attached in (False, True):
            proc, url = start(args.python, work, attached)
            try:
                results[attached] = timings(url, args.calls, args.warmup)
                if attached:
                    before, after = per_session(url, proc.pid, args.sessions, work)
            finally:
                proc.kill()
                proc.wait()
    print(f"trivial event, {args.calls} calls after {args.warmup} warm-up, via gradio_client")
    print(f"{'':16}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}")
    for attached, label in ((False, "without attach"), (True, "with attach")):
        s = results[attached]
        print(f"{label:16}{pct(s, 0.5):10.2f}{pct(s, 0.99):10.2f}{statistics.mean(s) * 1000:10.2f}")
    a, b = results[False], results[True]
    print(
        f"{'ratio':16}{pct(b, 0.5) / pct(a, 0.5):10.3f}{pct(b, 0.99) / pct(a, 0.99):10.3f}"
        f"{statistics.mean(b) / statistics.mean(a):10.3f}"
    )
    per = (after - before) / max(1, args.sessions)
    print(
        f"descriptors: {before} before, {after} with {args.sessions} live sessions "
        f"(one upload and one file output each): {per:.2f} per session"
    )


if __name__ == "__main__":
    main()
