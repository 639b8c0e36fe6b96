"""How fast gradio-clean answers what people type by hand: --version, --help and Tab.

    python bench/startup.py                 # 30 rounds
    python bench/startup.py --reps 100 --exe /opt/gradio-clean/bin/gradio-clean

Each round runs every command once, in a rotating order; the table gives the
median and min wall time and the median over a bare `python -c pass` (the same
interpreter gradio-clean runs on). Target: `--version` and each completion within
3x that. Completions run the committed scripts in real shells (bash, and zsh and
fish when installed), completing `gradio-clean prune --age-by <Tab>`; a shell's
own start-up is measured too, as context. Standard library only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COMPLETIONS = REPO / "completions"
TARGET = 3.0

BASH = """source "$1"
COMP_WORDS=(gradio-clean prune --age-by ""); COMP_CWORD=3; COMPREPLY=()
_gradio_clean_completion gradio-clean "" --age-by
[[ ${#COMPREPLY[@]} -eq 4 ]] || exit 9"""
FISH = 'source $argv[1]; test (count (complete -C "gradio-clean prune --age-by ")) -eq 4'


def commands(exe: str) -> list[tuple[str, list[str], bool]]:
    """(label, argv, counts toward the target)."""
    python = _python_of(exe)
    out = [
        ("python -c pass", [python, "-c", "pass"], False),
        ("gradio-clean --version", [exe, "--version"], True),
        ("gradio-clean --help", [exe, "--help"], False),
        ("bash -c :", ["bash", "--norc", "--noprofile", "-c", ":"], False),
        (
            "bash: Tab (prune --age-by)",
            [
                "bash",
                "--norc",
                "--noprofile",
                "-c",
                BASH,
                "bash",
                str(COMPLETIONS / "gradio-clean.bash"),
            ],
            True,
        ),
    ]
    if shutil.which("fish"):
        out += [
            ("fish -c true", ["fish", "--no-config", "-c", "true"], False),
            (
                "fish: Tab (prune --age-by)",
                ["fish", "--no-config", "-c", FISH, str(COMPLETIONS / "gradio-clean.fish")],
                True,
            ),
        ]
    return out


def _python_of(exe: str) -> str:
    """The interpreter on the console script's #! line (what --version really starts)."""
    with open(exe, "rb") as fh:
        first = fh.readline().decode(errors="replace")
    return first[2:].strip().split()[0] if first.startswith("#!") else sys.executable


def _find_exe() -> str:
    beside = Path(sys.executable).parent / "gradio-clean"
    if beside.exists():
        return str(beside)
    found = shutil.which("gradio-clean")
    if not found:
        sys.exit("bench/startup.py: gradio-clean is not installed (pip install -e .)")
    return found


def run(argv: list[str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"bench/startup.py: {' '.join(argv[:3])} failed: {proc.stderr.decode()[-500:]}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--reps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--exe", default=None, help="the gradio-clean to measure")
    args = p.parse_args(argv)
    todo = commands(args.exe or _find_exe())
    samples: dict[str, list[float]] = {label: [] for label, _, _ in todo}
    env_note = f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}"
    for rnd in range(args.warmup + args.reps):
        shift = rnd % len(todo)
        for label, cmd, _ in todo[shift:] + todo[:shift]:
            t = run(cmd)
            if rnd >= args.warmup:
                samples[label].append(t)
    base = statistics.median(samples["python -c pass"])
    print(f"start-up, {args.reps} rounds ({env_note}); ratio = median / python -c pass")
    print(f"{'command':<30} {'median ms':>10} {'min ms':>8} {'ratio':>7}  target")
    worst = 0.0
    for label, _, counted in todo:
        med = statistics.median(samples[label])
        ratio = med / base
        mark = ""
        if counted:
            worst = max(worst, ratio)
            mark = "ok" if ratio <= TARGET else f"over {TARGET:g}x"
        fastest = min(samples[label]) * 1e3
        print(f"{label:<30} {med * 1e3:>10.1f} {fastest:>8.1f} {ratio:>6.2f}x  {mark}")
    print(f"worst counted ratio: {worst:.2f}x (target {TARGET:g}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
