"""Helpers shared by several test modules (no test module imports another)."""

from __future__ import annotations

import os
import re
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

# -- a strict parser for the text exposition format (what node_exporter reads) ----------

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL_VALUE = r'"(?:[^"\\\n]|\\[\\"n])*"'
_LABEL = rf"[a-zA-Z_][a-zA-Z0-9_]*={_LABEL_VALUE}"
_FLOAT = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?Inf|NaN"
_SAMPLE = re.compile(rf"({_NAME})(?:\{{((?:{_LABEL})(?:,{_LABEL})*)?\}})? ({_FLOAT})")
_LABEL_RE = re.compile(rf"([a-zA-Z_][a-zA-Z0-9_]*)=({_LABEL_VALUE})")
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}

Series = tuple[str, frozenset[tuple[str, str]]]


@dataclass
class Exposition:
    samples: dict[Series, float] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    helps: dict[str, str] = field(default_factory=dict)

    def value(self, name: str, **labels: str) -> float:
        return self.samples[(name, frozenset(labels.items()))]


def parse_exposition(text: str) -> Exposition:
    """Refuses anything node_exporter's textfile collector would refuse, and more.

    No sample timestamps (the collector rejects them), HELP and TYPE at most once
    and before the samples, a metric's samples together, no series twice.
    """
    assert text.endswith("\n"), "the last line must end with a newline"
    doc = Exposition()
    seen_names: list[str] = []
    for n, line in enumerate(text[:-1].split("\n"), 1):
        where = f"line {n}: {line!r}"
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            kind, name, rest = line[2:6], *line[7:].split(" ", 1)
            assert re.fullmatch(_NAME, name), where
            assert name not in seen_names, f"{kind} after samples of {name}, {where}"
            table = doc.helps if kind == "HELP" else doc.types
            assert name not in table, f"second {kind}, {where}"
            if kind == "TYPE":
                assert rest in {"counter", "gauge", "histogram", "summary", "untyped"}, where
            else:
                assert re.fullmatch(r"(?:[^\\\n]|\\[\\n])*", rest), where
            table[name] = rest
            continue
        assert not line.startswith("#") or line.startswith("# "), where
        if line.startswith("#"):
            continue
        match = _SAMPLE.fullmatch(line)
        assert match, f"not a sample without timestamp, {where}"
        name, label_text, value = match.groups()
        labels = frozenset(
            (k, re.sub(r'\\[\\"n]', lambda e: _UNESCAPE[e.group()], v[1:-1]))
            for k, v in _LABEL_RE.findall(label_text or "")
        )
        assert len(labels) == len(_LABEL_RE.findall(label_text or "")), f"repeated label, {where}"
        if seen_names and seen_names[-1] != name:
            assert name not in seen_names, f"samples of {name} not together, {where}"
        if not seen_names or seen_names[-1] != name:
            seen_names.append(name)
        assert (name, labels) not in doc.samples, f"series twice, {where}"
        doc.samples[(name, labels)] = float(value)
    return doc


# -- systemd: keys, a model of its unquoting, and systemd-analyze itself -----------------


def unit_settings(text: str) -> dict[str, list[tuple[str, str]]]:
    """Sections of a unit file, each a list of (key, value); comments dropped."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
            continue
        assert current is not None, f"setting outside a section: {line!r}"
        key, sep, value = line.partition("=")
        assert sep, line
        current.append((key, value))
    return sections


def systemd_split(value: str) -> list[str]:
    """A command line or path list as systemd reads it (systemd.syntax(7), systemd.service(5)).

    Specifiers first (only %% is expected here), then words split at whitespace
    with "…" and '…' quoting and C-style backslash escapes, then $$ to $ in each
    word. A bare ; would separate commands, so it must not appear.
    """
    assert "%" not in value.replace("%%", ""), f"an unexpanded specifier in {value!r}"
    value = value.replace("%%", "%")
    words: list[str] = []
    i = 0
    while i < len(value):
        if value[i] == " ":
            i += 1
            continue
        word: list[str] = []
        quote = None
        while i < len(value) and (quote or value[i] != " "):
            ch = value[i]
            if ch == "\\":
                word.append({"n": "\n", "t": "\t"}.get(value[i + 1], value[i + 1]))
                i += 2
                continue
            if quote and ch == quote:
                quote = None
            elif not quote and ch in "\"'":
                quote = ch
            else:
                word.append(ch)
            i += 1
        assert quote is None, f"unterminated quote in {value!r}"
        raw = "".join(word)
        words.append(raw)
    assert all(w != ";" for w in value.split(" ")), "a bare ; separates commands"
    out = []
    for w in words:
        assert "$" not in w.replace("$$", ""), f"{w!r} would be expanded from the environment"
        out.append(w.replace("$$", "$"))
    return out


def only(settings_: list[tuple[str, str]], key: str) -> str:
    values = [v for k, v in settings_ if k == key]
    assert len(values) == 1, (key, values)
    return values[0]


_ROLE_LINE = re.compile(r"^/.*: (temp|app|gradio-dir|sessions|flagged|examples) \(.*\)$")


def without_role_lines(stderr: str) -> str:
    """stderr less the "<root>: <role> (<why>)" lines prune and scan print first."""
    return "".join(
        line for line in stderr.splitlines(keepends=True) if not _ROLE_LINE.match(line.rstrip("\n"))
    )


# -- forked workers ------------------------------------------------------------------------


def _proc_state(pid: int) -> tuple[str, int] | None:
    """(state letter, parent pid) of a process, from /proc; None once it is reaped."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0], int(fields[1])


def running_children(pid: int) -> list[int]:
    """Child processes of `pid` that have not exited (zombies have)."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            state = _proc_state(int(name))
            if state is not None and state[1] == pid and state[0] not in "ZX":
                out.append(int(name))
    return out


def kill_while_running(pid: int) -> bool:
    """SIGKILL `pid` while it provably has not finished: it is stopped (SIGSTOP) and seen
    stopped first, so it cannot have sent its result. False if it exited before that."""
    os.kill(pid, signal.SIGSTOP)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        state = _proc_state(pid)
        if state is None or state[0] in "ZX":
            return False
        if state[0] in "Tt":
            os.kill(pid, signal.SIGKILL)
            return True
        time.sleep(0.001)
    raise AssertionError(f"worker {pid} did not stop")


class WorkerKiller:
    """A progress hook (it runs in the parent while the workers run) that SIGKILLs one
    forked worker of this process, once."""

    def __init__(self) -> None:
        self.killed = 0  # the pid killed while it ran, 0 if none

    def __call__(self, *_progress: int) -> None:
        if self.killed:
            return
        for pid in running_children(os.getpid()):
            if kill_while_running(pid):
                self.killed = pid
                return
