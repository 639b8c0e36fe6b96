"""A plan's actions in flat columns: ~110 bytes an action rather than ~500.

A Gradio cache of a million hash folders plans a million actions. As objects (an
Action, its Identity, a path string and a dozen ints each) they need about half a
gigabyte, which a small container does not have (issue 13). Here each action is a
row of arrays and one encoded path; an Action is built only when it is read. This
module writes the rows (Columns); actions.py reads them back (Actions).
"""

from __future__ import annotations

import os
import sys
from array import array
from binascii import unhexlify
from collections.abc import Hashable, Iterable, Sequence
from operator import or_
from typing import Any, NamedTuple, TypeVar

from gradio_clean.classify import Category
from gradio_clean.plan import Action, Identity, Rule

_RULES = tuple(Rule)
_CATEGORIES = tuple(Category)
_RULE_IX = {r: i for i, r in enumerate(_RULES)}
_CATEGORY_IX = {c: i for i, c in enumerate(_CATEGORIES)}
# Flag bits above the rule's index (the low 3 bits).
_DIR, _HARDLINK, _STRAY, _AGE = 8, 16, 32, 64
# Bits above the category's index (the low 3 bits): how the path's head is packed.
_SHA1, _SHA256 = 8, 16
_PACKED = {0: 0, 20: _SHA1, 32: _SHA256}
_HEX_DIGITS = frozenset("0123456789abcdef")
# The flag bytes with the folder bit, and with the hard-link bit: bytes.translate deletes
# them from the flags column, and the length lost counts the rows that have it (in C).
_WITH_DIR = bytes(f for f in range(256) if f & _DIR)
_WITH_HARDLINK = bytes(f for f in range(256) if f & _HARDLINK)
_HEX_BYTES = b"0123456789abcdef"  # what bytes.translate deletes: nothing left, all hex
_COLUMNS = (
    "_root",
    "_item",
    "_dev",
    "_reason",
    "_ino",
    "_mtime",
    "_bytes",
    "_files",
    "_newest",
    "_age",
)
_FS_ENCODING, _FS_ERRORS = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()
_K = TypeVar("_K", bound=Hashable)
_Bytes = bytes  # in Actions, `bytes` is a property


def _encode(rel: str) -> tuple[bytes, int]:
    """A path as bytes, and how many leading bytes are a sha1 or sha256 folder name
    (Gradio's) packed to half: 0, 20 or 32."""
    head, sep, rest = rel.partition("/")
    if len(head) in (40, 64) and _HEX_DIGITS.issuperset(head):
        return bytes.fromhex(head) + os.fsencode(sep + rest), len(head) // 2
    return os.fsencode(rel), 0


def _packed(raw: bytes) -> tuple[int, bytes]:
    """A path's bytes as a row stores them (_encode's packing of the same str) and its
    packing bits."""
    head, sep, rest = raw.partition(b"/")
    if len(head) in (40, 64) and not head.translate(None, _HEX_BYTES):
        return _PACKED[len(head) // 2], bytes.fromhex(head.decode()) + sep + rest
    return 0, raw


def _intern(table: list[_K], index: dict[_K, int], value: _K) -> int:
    i = index.get(value)
    if i is None:
        i = index[value] = len(table)
        table.append(value)
    return i


class Wholes(NamedTuple):
    """Rows of whole items, column by column (Actions.add_wholes): what add_whole takes
    for each, the rel as os.fsencode gives it."""

    rels: Sequence[bytes]
    categories: Sequence[Category]
    dirs: Sequence[bool]
    devs: Sequence[int]
    inos: Sequence[int]
    mtimes: Sequence[int]
    sizes: Sequence[int]
    files: Sequence[int]
    newests: Sequence[int]
    ages: Sequence[int]


# The Actions columns Wholes' numbers after `devs` go to, in Wholes' order.
_WHOLE_COLUMNS = ("_ino", "_mtime", "_bytes", "_files", "_newest", "_age")


class Columns:
    """Append-only columns of actions (Actions reads them back, in order)."""

    def __init__(self, actions: Iterable[Action] = ()) -> None:
        self._roots: list[str] = []
        self._roots_ix: dict[str, int] = {}
        self._devs: list[int] = []
        self._devs_ix: dict[int, int] = {}
        self._reasons: list[str] = []
        self._reasons_ix: dict[str, int] = {}
        self._root = array("H")  # index into _roots
        self._blob = bytearray()  # every rel, encoded, back to back
        self._end = array("Q")  # where each one ends in _blob
        self._item = array("H")  # how many characters of rel are item_rel
        self._item_odd: dict[int, str] = {}  # an item_rel that is not a prefix of rel
        self._flags = bytearray()
        self._cat = bytearray()
        self._dev = array("H")  # index into _devs
        self._reason = array("I")  # index into _reasons
        self._ino = array("Q")
        self._mtime = array("q")
        self._bytes = array("q")
        self._files = array("q")
        # Identity's size is the action's bytes for a file and 0 for a folder, and its
        # ctime 0 but for duplicates: kept only where they differ (size, ctime).
        self._odd_identity: dict[int, tuple[int, int]] = {}
        self._newest = array("q")
        self._age = array("q")
        self._keep: dict[int, tuple[str, Identity | None]] = {}  # duplicates only
        # Reading order, when it is not the order rows were written in (see sort).
        self._order: array[int] | None = None
        self.extend(actions)

    # -- writing -------------------------------------------------------------------------

    def append(self, a: Action) -> None:
        ident = a.identity
        flags = (
            _RULE_IX[a.rule]
            | (_DIR if a.is_dir else 0)
            | (_HARDLINK if a.hardlink else 0)
            | (_STRAY if a.stray_link else 0)
            | (_AGE if a.age_ns is not None else 0)
        )
        odd = ident.ctime_ns or ident.size != (0 if a.is_dir else a.bytes)
        self._add(a.root, a.rel, a.item_rel, flags, a.category, ident.dev, a.reason)
        self._numbers(ident.ino, ident.mtime_ns, a.bytes, a.files, a.newest_ns, a.age_ns or 0)
        n = len(self._flags) - 1
        if odd:
            self._odd_identity[n] = (ident.size, ident.ctime_ns)
        if a.keep is not None:
            self._keep[n] = (a.keep, a.keep_identity)

    def add_whole(
        self,
        root: str,
        rel: str,
        category: Category,
        is_dir: bool,
        numbers: tuple[int, int, int, int, int, int, int],
        rule: Rule,
        reason: str,
    ) -> None:
        """The row `append(plan.whole_action(...))` writes, without the Action: `numbers`
        are dev, ino, size, files, mtime_ns, newest_ns and age_ns (add_wholes' one row)."""
        dev, ino, size, files, mtime_ns, newest_ns, age_ns = numbers
        row = Wholes(
            [os.fsencode(rel)],
            [category],
            [is_dir],
            [dev],
            [ino],
            [mtime_ns],
            [size],
            [files],
            [newest_ns],
            [age_ns],
        )
        self.add_wholes(root, rule, reason, row)

    def add_wholes(self, root: str, rule: Rule, reason: str, rows: Wholes) -> None:
        """The rows add_whole writes for each of `rows` (of one root, rule and reason),
        column by column: the budget's evictions, tens of thousands at a time."""
        n = len(self._flags)
        count = len(rows.rels)
        if self._order is not None:
            self._order.extend(range(n, n + count))
        root_ix = _intern(self._roots, self._roots_ix, root)
        self._root.extend(array("H", (root_ix,)) * count)
        rule_flags = _RULE_IX[rule] | _AGE
        blob, ends, item = self._blob, self._end, self._item
        packs = bytearray()  # per row: how its path's head is packed (_PACKED)
        for j, raw in enumerate(rows.rels):
            head, sep, rest = raw.partition(b"/")  # packed as _encode packs the str
            if len(head) in (40, 64) and not head.translate(None, _HEX_BYTES):
                blob += unhexlify(head)
                blob += sep + rest
                packs.append(_PACKED[len(head) // 2])
            else:
                blob += raw
                packs.append(0)
            ends.append(len(blob))
            length = len(raw) if raw.isascii() else len(os.fsdecode(raw))
            if length < 0x10000:
                item.append(length)
            else:
                item.append(0)
                self._item_odd[n + j] = os.fsdecode(raw)
        # the other columns a row at a time in C: maps over the rows' values
        dir_flags = (bytes((rule_flags,)), bytes((rule_flags | _DIR,)))
        self._flags += b"".join(map(dir_flags.__getitem__, rows.dirs))
        self._cat += bytes(map(or_, map(_CATEGORY_IX.__getitem__, rows.categories), packs))
        devices = {d: _intern(self._devs, self._devs_ix, d) for d in set(rows.devs)}
        self._dev.extend(map(devices.__getitem__, rows.devs))
        self._reason.extend(array("I", (_intern(self._reasons, self._reasons_ix, reason),)) * count)
        for name, column in zip(_WHOLE_COLUMNS, rows[4:], strict=True):
            getattr(self, name).extend(column)

    def add_duplicate(
        self,
        root: str,
        rel: str,
        item_rel: str,
        category: Category,
        numbers: tuple[int, int, int, int, int],
        keep: tuple[str, Identity],
        reason: str,
        hardlink: bool,
    ) -> None:
        """The row `append(plan.duplicate_action(...))` writes, without the Action or the
        Candidates (issue 12): `numbers` are the extra copy's dev, ino, size, mtime_ns and
        ctime_ns; `keep` the kept copy's path and identity, one tuple a set shares."""
        dev, ino, size, mtime_ns, ctime_ns = numbers
        flags = _RULE_IX[Rule.DUPLICATES] | (_HARDLINK if hardlink else 0)
        self._add(root, rel, item_rel, flags, category, dev, reason)
        self._numbers(ino, mtime_ns, size, 1, mtime_ns, 0)
        n = len(self._flags) - 1
        if ctime_ns:  # the identity's size is the row's bytes
            self._odd_identity[n] = (size, ctime_ns)
        self._keep[n] = keep

    def copy_row(self, other: Columns, i: int) -> None:
        """Action `i` (reading order) of `other`, as `append(other[i])` would write it."""
        row = other._row(i)
        n = len(self._flags)
        if self._order is not None:
            self._order.append(n)
        self._root.append(_intern(self._roots, self._roots_ix, other._roots[other._root[row]]))
        start = other._end[row - 1] if row else 0
        self._blob += other._blob[start : other._end[row]]
        self._end.append(len(self._blob))
        self._item.append(other._item[row])
        if row in other._item_odd:
            self._item_odd[n] = other._item_odd[row]
        self._flags.append(other._flags[row])
        self._cat.append(other._cat[row])
        self._dev.append(_intern(self._devs, self._devs_ix, other._devs[other._dev[row]]))
        reason = other._reasons[other._reason[row]]
        self._reason.append(_intern(self._reasons, self._reasons_ix, reason))
        self._numbers(
            other._ino[row],
            other._mtime[row],
            other._bytes[row],
            other._files[row],
            other._newest[row],
            other._age[row],
        )
        if row in other._odd_identity:
            self._odd_identity[n] = other._odd_identity[row]
        if row in other._keep:
            self._keep[n] = other._keep[row]

    def _add(
        self,
        root: str,
        rel: str,
        item_rel: str,
        flags: int,
        category: Category,
        dev: int,
        reason: str,
    ) -> None:
        """A new row's path, flags and interned values; `_numbers` writes the rest."""
        n = len(self._flags)
        if self._order is not None:
            self._order.append(n)
        raw, packed = _encode(rel)
        self._root.append(_intern(self._roots, self._roots_ix, root))
        self._blob += raw
        self._end.append(len(self._blob))
        if rel.startswith(item_rel) and len(item_rel) < 0x10000:
            self._item.append(len(item_rel))
        else:
            self._item.append(0)
            self._item_odd[n] = item_rel
        self._flags.append(flags)
        self._cat.append(_CATEGORY_IX[category] | _PACKED[packed])
        self._dev.append(_intern(self._devs, self._devs_ix, dev))
        self._reason.append(_intern(self._reasons, self._reasons_ix, reason))

    def _numbers(self, ino: int, mtime: int, size: int, files: int, newest: int, age: int) -> None:
        self._ino.append(ino)
        self._mtime.append(mtime)
        self._bytes.append(size)
        self._files.append(files)
        self._newest.append(newest)
        self._age.append(age)

    def extend(self, actions: Iterable[Action]) -> None:
        if isinstance(actions, Columns):
            self._absorb(actions)
            return
        for a in actions:
            self.append(a)

    def _absorb(self, other: Columns) -> None:
        """Another store's rows after these (a forked worker's share), column by column,
        each emptied in `other` as soon as it is copied: the two never both hold it all."""
        n = len(self)
        if self._order is not None or other._order is not None:
            mine = self._order if self._order is not None else array("I", range(n))
            theirs = other._order if other._order is not None else range(len(other))
            mine.extend(n + p for p in theirs)
            self._order = mine
        tables = (
            ("_root", [_intern(self._roots, self._roots_ix, r) for r in other._roots]),
            ("_dev", [_intern(self._devs, self._devs_ix, d) for d in other._devs]),
            ("_reason", [_intern(self._reasons, self._reasons_ix, r) for r in other._reasons]),
        )
        for name, index in tables:
            column = getattr(other, name)
            column[:] = array(column.typecode, (index[i] for i in column))
        base = len(self._blob)
        self._end.extend(e + base for e in other._end)
        del other._end[:]
        self._blob += other._blob
        del other._blob[:]
        self._flags += other._flags
        del other._flags[:]
        self._cat += other._cat
        del other._cat[:]
        for name in _COLUMNS:
            column = getattr(other, name)
            getattr(self, name).extend(column)
            del column[:]
        for sparse in ("_item_odd", "_odd_identity", "_keep"):
            getattr(self, sparse).update({n + i: v for i, v in getattr(other, sparse).items()})

    def __len__(self) -> int:
        return len(self._flags)

    def _row(self, i: int) -> int:
        """Where the i-th action in reading order is stored."""
        return i if self._order is None else self._order[i]

    def __getstate__(self) -> dict[str, Any]:
        return self.__dict__

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
