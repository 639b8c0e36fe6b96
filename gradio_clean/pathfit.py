"""Paths cut to the width a table column gives them, where they tell least.

A path is shown whole when it fits; else the root's folders go first (a table's title
names its root), then the folders between an item and its name, then the middle of a
hash name: what tells one entry from another goes last. `PathCell` is a path as a
table cell that never wraps, cut to its column by `fit_path`.
"""

from __future__ import annotations

import re

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.text import Text

_HASH = re.compile(r"\b([0-9a-f]{8})[0-9a-f]{24,}([0-9a-f]{4})\b")


def short_hashes(text: str) -> str:
    """Gradio's 40- and 64-hex folder names, shortened in the middle: 90a1cc9a…c6be."""
    return _HASH.sub(r"\1…\2", text)


def middle(text: str, width: int) -> str:
    """`text` cut to `width` cells by replacing its middle with an ellipsis."""
    if cell_len(text) <= width:
        return text
    if width <= 1:
        return "…"[: max(width, 0)]
    keep = width - 1
    head, tail = text[: (keep + 1) // 2], text[len(text) - keep // 2 :] if keep // 2 else ""
    while cell_len(head) + cell_len(tail) > keep:  # wide characters take two cells
        if cell_len(head) >= cell_len(tail):
            head = head[:-1]
        else:
            tail = tail[1:]
    return head + "…" + tail


_WIDE = 1 << 30
_HEX_RUN = re.compile(r"\b[0-9a-f]{36,}\b")  # what short_hashes shortens: 40 or 64 hex
_ITEM_LEAST = 3  # an item cut shorter than "3…d" would tell nothing apart
_NAME_LEAST = 6  # a cut name keeps this many cells; its item (down to 3) gives way


def _hashes(text: str, head: int) -> str:
    """Hash names in `text` as `head` digits, an ellipsis and 4 (8: 90a1cc9a…c6be)."""
    return _HEX_RUN.sub(lambda m: f"{m[0][:head]}…{m[0][-4:]}", text)


def _cut(name: str, room: int) -> str:
    """One path component in `room` cells: a hash name keeps digits from both ends
    (3f2…c1d), anything else is cut in its middle."""
    if _HEX_RUN.fullmatch(name) and room >= 3:
        digits = min(room - 1, 12)
        return f"{name[: (digits + 1) // 2]}…{name[len(name) - digits // 2 :]}"
    return middle(_hashes(name, 4), room)


def fit_path(path: str, width: int, root: str = "") -> str:
    """`path` (as `shown` writes it, under `root` if given) in at most `width` cells,
    hash names shortened (90a1cc9a…c6be). Where it is too wide, what tells one entry
    from another goes last: first the root's folders, from the left (a table's title
    names its root), then the folders between the item and the name, then the hash
    names shorten to 4…4 (3f2a…9c1d). The name stays whole whenever it fits after `…/`,
    its item (the hash folder) cut in its middle to the room left; a name too long even
    for that is cut in its middle beside as much of its item's 4…4 as leaves it 6 cells."""
    slash = "/" if path.endswith("/") and len(path) > 1 else ""
    body = path[:-1] if slash else path
    base = root.rstrip("/")
    lead: list[str] = []
    if base and body.startswith(base + "/"):
        lead, body = base.split("/"), body[len(base) + 1 :]
    comps = body.split("/")
    name = comps[-1]
    item = comps[0] if len(comps) > 1 else None
    mids = comps[1:-1]

    def joined(
        drop_lead: int,
        drop_mids: int,
        head: int,
        item_: str | None = None,
        name_: str | None = None,
    ) -> str:
        parts = (["…"] if drop_lead else []) + lead[drop_lead:]
        if item is not None:
            parts.append(_hashes(item, head) if item_ is None else item_)
            parts += (["…"] if drop_mids else []) + mids[drop_mids:]
        parts.append(_hashes(name, head) + slash if name_ is None else name_)
        return "/".join(parts)

    tries = [(k, 0, 8) for k in range(len(lead) + 1)]
    tries += [(len(lead), k, 8) for k in range(1, len(mids) + 1)]
    tries.append((len(lead), len(mids), 4))
    for drop_lead, drop_mids, head in tries:
        text = joined(drop_lead, drop_mids, head)
        if cell_len(text) <= width:
            return text
    full_name = _hashes(name, 4) + slash
    if item is None:  # the name alone, after "…/" if the root went
        before = "…/" if lead else ""
        out = before + _cut(name, width - len(before) - len(slash)) + slash
        return out if cell_len(out) <= width else middle(out, width)
    short = _hashes(item, 4)
    fixed = cell_len(text) - cell_len(full_name) - cell_len(short)  # "…/" parts, the "/"s
    room = width - fixed - cell_len(full_name)
    if room >= _ITEM_LEAST:  # the name whole, the item cut to the rest
        return joined(len(lead), len(mids), 4, _cut(item, room), full_name)
    if cell_len(full_name) + 2 <= width:  # the name whole after "…/"
        return "…/" + full_name
    room = width - fixed - len(slash)  # the name cut too: the item up to its 4…4
    keep = max(_ITEM_LEAST, min(cell_len(short), room - _NAME_LEAST))
    if room - keep >= 1:
        return joined(len(lead), len(mids), 4, _cut(item, keep), _cut(name, room - keep) + slash)
    return middle(text, width)


class PathCell:
    """A path that never wraps: cut by `fit_path` to the width it is given."""

    def __init__(self, path: str, root: str = "") -> None:
        self.path = path
        self.root = root
        self.full = fit_path(path, _WIDE, root)  # as shown when there is room

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        width = cell_len(self.full)
        return Measurement(min(width, 12), width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield Text(fit_path(self.path, options.max_width, self.root), no_wrap=True)
