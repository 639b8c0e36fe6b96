"""A plan's actions read back from their columns (columns.py writes them): an Action,
or only what a reader needs of it (a Brief, a Step), a row at a time or in bulk.
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import compress
from typing import NamedTuple, overload

from gradio_clean import order
from gradio_clean.classify import Category
from gradio_clean.columns import (
    _AGE,
    _CATEGORIES,
    _DIR,
    _FS_ENCODING,
    _FS_ERRORS,
    _HARDLINK,
    _RULE_IX,
    _RULES,
    _SHA1,
    _SHA256,
    _STRAY,
    _WITH_DIR,
    _WITH_HARDLINK,
    Columns,
    _Bytes,
    _packed,
)
from gradio_clean.plan import Action, Identity, Rule


class Brief(NamedTuple):
    """The fields of an Action a report shows (documents.py): no identity, no object."""

    root: str
    rel: str
    rule: Rule
    category: Category
    is_dir: bool
    bytes: int
    files: int
    reason: str
    newest_ns: int
    age_ns: int | None
    keep: str | None
    hardlink: bool

    @classmethod
    def of(cls, a: Action) -> Brief:
        return cls(
            a.root,
            a.rel,
            a.rule,
            a.category,
            a.is_dir,
            a.bytes,
            a.files,
            a.reason,
            a.newest_ns,
            a.age_ns,
            a.keep,
            a.hardlink,
        )


class Step(NamedTuple):
    """What apply reads of an action (delete.apply_root), the Action's fields of the same
    names: a tuple per row, without the category, reason and counts an Action carries."""

    root: str
    rel: str
    item_rel: str
    is_dir: bool
    identity: Identity
    newest_ns: int
    keep: str | None
    keep_identity: Identity | None
    hardlink: bool
    stray_link: bool


@dataclass
class Going:
    """What a plan frees: deletions (bytes, files, folders) and links apart."""

    bytes: int
    files: int
    folders: int
    links: int
    link_bytes: int
    link_files: int


class Actions(Columns, Sequence[Action]):
    """Append-only columns of actions, read back as Action values in order."""

    def tail(self, start: int) -> Actions:
        """The rows from `start` on, as a store of their own (what a worker sends back)."""
        return self.select(range(start, len(self)))

    def select(self, indices: Iterable[int]) -> Actions:
        """These rows, in the order given, as a new store."""
        out = Actions()
        for i in indices:
            out.append(self[i])
        return out

    # -- reading -------------------------------------------------------------------------

    def _raw(self, i: int) -> tuple[bytes, int]:
        """Stored row i's path bytes and how many of them are a packed hash name."""
        start = self._end[i - 1] if i else 0
        packed = self._cat[i]
        head = 20 if packed & _SHA1 else 32 if packed & _SHA256 else 0
        return bytes(self._blob[start : self._end[i]]), head

    def rel(self, i: int) -> str:
        return self._rel_of(self._row(i))

    def _rel_of(self, row: int) -> str:
        raw, head = self._raw(row)
        return raw[:head].hex() + os.fsdecode(raw[head:]) if head else os.fsdecode(raw)

    def root(self, i: int) -> str:
        return self._roots[self._root[self._row(i)]]

    def bytes_of(self, i: int) -> int:
        return self._bytes[self._row(i)]

    def rule(self, i: int) -> Rule:
        return _RULES[self._flags[self._row(i)] & 7]

    def is_dir(self, i: int) -> bool:
        return bool(self._flags[self._row(i)] & _DIR)

    def hardlink(self, i: int) -> bool:
        """A duplicate to be replaced by a hard link (its path stays)."""
        return bool(self._flags[self._row(i)] & _HARDLINK)

    def stray(self, i: int) -> bool:
        """An interrupted run's temporary link: one name less, nothing freed."""
        return bool(self._flags[self._row(i)] & _STRAY)

    def item_rel(self, i: int) -> str:
        row = self._row(i)
        odd = self._item_odd.get(row)
        return odd if odd is not None else self.rel(i)[: self._item[row]]

    def item_key(self, i: int) -> bytes:
        """Which item the action belongs to, for sharing apply out item by item; a root's
        duplicates count as one item (see delete._shares)."""
        root = self.root(i)
        if self.rule(i) is Rule.DUPLICATES:
            return os.fsencode(f"{root}\0\0duplicates")
        return os.fsencode(f"{root}\0{self.item_rel(i)}")

    def sort_key(self, i: int) -> order.SortKey:
        """Root, then the path's own bytes: the order a plan is shown and applied in."""
        return self._key(self._row(i))

    def _key(self, row: int) -> order.SortKey:
        raw, head = self._raw(row)
        if head:
            raw = raw[:head].hex().encode() + raw[head:]
        return self._roots[self._root[row]], raw

    @overload
    def __getitem__(self, i: int) -> Action: ...

    @overload
    def __getitem__(self, i: slice) -> list[Action]: ...

    def __getitem__(self, i: int | slice) -> Action | list[Action]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        rel = self.rel(i)
        i = self._row(i)
        flags = self._flags[i]
        odd = self._item_odd.get(i)
        keep, keep_identity = self._keep.get(i, (None, None))
        size, ctime = self._odd_identity.get(i, (0 if flags & _DIR else self._bytes[i], 0))
        return Action(
            root=self._roots[self._root[i]],
            rel=rel,
            item_rel=odd if odd is not None else rel[: self._item[i]],
            rule=_RULES[flags & 7],
            category=_CATEGORIES[self._cat[i] & 7],
            is_dir=bool(flags & _DIR),
            bytes=self._bytes[i],
            files=self._files[i],
            reason=self._reasons[self._reason[i]],
            identity=Identity(self._devs[self._dev[i]], self._ino[i], size, self._mtime[i], ctime),
            newest_ns=self._newest[i],
            keep=keep,
            keep_identity=keep_identity,
            hardlink=bool(flags & _HARDLINK),
            stray_link=bool(flags & _STRAY),
            age_ns=self._age[i] if flags & _AGE else None,
        )

    def step(self, i: int) -> Step:
        """What apply reads of action `i` (0 <= i < len), without building the Action."""
        rel = self.rel(i)
        row = self._row(i)
        flags = self._flags[row]
        odd = self._item_odd.get(row)
        keep, keep_identity = self._keep.get(row, (None, None))
        size, ctime = self._odd_identity.get(row, (0 if flags & _DIR else self._bytes[row], 0))
        return Step(
            self._roots[self._root[row]],
            rel,
            odd if odd is not None else rel[: self._item[row]],
            bool(flags & _DIR),
            Identity(self._devs[self._dev[row]], self._ino[row], size, self._mtime[row], ctime),
            self._newest[row],
            keep,
            keep_identity,
            bool(flags & _HARDLINK),
            bool(flags & _STRAY),
        )

    def __iter__(self) -> Iterator[Action]:
        for i in range(len(self)):
            yield self[i]

    def brief(self, i: int) -> Brief:
        """What a report shows of action `i`, without building the Action (its identity)."""
        rel = self.rel(i)
        row = self._row(i)
        flags = self._flags[row]
        keep = self._keep.get(row)
        return Brief(
            self._roots[self._root[row]],
            rel,
            _RULES[flags & 7],
            _CATEGORIES[self._cat[row] & 7],
            bool(flags & _DIR),
            self._bytes[row],
            self._files[row],
            self._reasons[self._reason[row]],
            self._newest[row],
            self._age[row] if flags & _AGE else None,
            None if keep is None else keep[0],
            bool(flags & _HARDLINK),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or len(other) != len(self):
            return NotImplemented if not isinstance(other, Sequence) else False
        return all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Actions({list(self)!r})"

    # -- whole-store figures -------------------------------------------------------------

    def briefs(self) -> Iterator[Brief]:
        """`brief(i)` of every action in reading order, the columns read in one pass (a
        JSON document's rows: no method call per field)."""
        roots, reasons, keeps = self._roots, self._reasons, self._keep
        blob, end, cat, flags_of = self._blob, self._end, self._cat, self._flags
        root_of, reason_of, size, files = self._root, self._reason, self._bytes, self._files
        newest, age = self._newest, self._age
        rules, categories, new = _RULES, _CATEGORIES, tuple.__new__
        packing = _SHA1 | _SHA256
        for row in range(len(self)) if self._order is None else self._order:
            start = end[row - 1] if row else 0
            c = cat[row]
            if c & packing:  # a packed sha1 or sha256 head: as rel() unpacks it
                head = start + (20 if c & _SHA1 else 32)
                rel = blob[start:head].hex() + blob[head : end[row]].decode(
                    _FS_ENCODING, _FS_ERRORS
                )
            else:
                rel = blob[start : end[row]].decode(_FS_ENCODING, _FS_ERRORS)
            flags = flags_of[row]
            keep = keeps.get(row) if keeps else None
            yield new(
                Brief,
                (
                    roots[root_of[row]],
                    rel,
                    rules[flags & 7],
                    categories[c & 7],
                    bool(flags & _DIR),
                    size[row],
                    files[row],
                    reasons[reason_of[row]],
                    newest[row],
                    age[row] if flags & _AGE else None,
                    None if keep is None else keep[0],
                    bool(flags & _HARDLINK),
                ),
            )

    def inner_files(self) -> Iterator[tuple[int, str, str, str]]:
        """Each file apply deletes inside an item (not an item itself, nor a copy replaced
        by a link: its path stays), in reading order: its position, root, rel and item's
        rel, the columns read in one pass (emptied.py: no Step built per action)."""
        roots, flags_of, rel_of = self._roots, self._flags, self._rel_of
        root_of, item, odd = self._root, self._item, self._item_odd
        passed = _DIR | _HARDLINK
        for i, row in enumerate(range(len(self)) if self._order is None else self._order):
            if flags_of[row] & passed:
                continue
            rel = rel_of(row)
            item_rel = odd.get(row) if odd else None
            if item_rel is None:
                item_rel = rel[: item[row]]
            if item_rel != rel:
                yield i, roots[root_of[row]], rel, item_rel

    @property
    def bytes(self) -> int:
        return sum(self._bytes)

    @property
    def files(self) -> int:
        return sum(self._files)

    @property
    def folders(self) -> int:
        return len(self._flags) - len(self._flags.translate(None, _WITH_DIR))

    def of_rule(self, rule: Rule) -> array[int]:
        """The reading positions of `rule`'s actions, in order (the flags read in C)."""
        number = _RULE_IX[rule]
        marks = self._flags.translate(bytes(f & 7 == number for f in range(256)))
        if self._order is not None:  # by reading position
            marks = bytearray(map(marks.__getitem__, self._order))
        return array("Q", compress(range(len(marks)), marks))

    def by_rule(self, rule: Rule, roots: Iterable[str]) -> tuple[int, int]:
        """How many folders and files `rule` takes in `roots`, read off the columns."""
        names = set(roots)
        wanted = {i for i, root in enumerate(self._roots) if root in names}
        number = _RULE_IX[rule]
        folders = files = 0
        for flags, root in zip(self._flags, self._root, strict=True):
            if flags & 7 == number and root in wanted:
                if flags & _DIR:
                    folders += 1
                else:
                    files += 1
        return folders, files

    def going(self, skipped: Iterable[int] = ()) -> Going:
        """What the actions not `skipped` (reading positions) free, links apart."""
        links = link_bytes = link_files = link_folders = 0
        linking = len(self._flags) != len(self._flags.translate(None, _WITH_HARDLINK))
        for row, flags in enumerate(self._flags) if linking else ():
            if flags & _HARDLINK:
                links += 1
                link_bytes += self._bytes[row]
                link_files += self._files[row]
                link_folders += bool(flags & _DIR)
        deleted = (self.bytes - link_bytes, self.files - link_files, self.folders - link_folders)
        out = Going(*deleted, links, link_bytes, link_files)
        for i in skipped:
            row = self._row(i)
            flags = self._flags[row]
            if flags & _HARDLINK:
                out.links -= 1
                out.link_bytes -= self._bytes[row]
                out.link_files -= self._files[row]
            else:
                out.bytes -= self._bytes[row]
                out.files -= self._files[row]
                out.folders -= bool(flags & _DIR)
        return out

    @property
    def hardlinks(self) -> int:
        """Duplicates to be replaced by a hard link (the rest are deleted)."""
        return len(self._flags) - len(self._flags.translate(None, _WITH_HARDLINK))

    # -- order ---------------------------------------------------------------------------

    def is_sorted(self) -> bool:
        return order.is_sorted(len(self), self.sort_key)

    def sort(self, at_once: int = order.AT_ONCE) -> None:
        """Into plan order, in place, rows left where they are: only a reading order of
        4 bytes a row is added (order.sorted_rows)."""
        if self.is_sorted():
            return
        by_root: dict[str, array[int]] = {}
        for row in range(len(self)):
            root = self._roots[self._root[row]]
            if root not in by_root:
                by_root[root] = array("I")
            by_root[root].append(row)
        rows = array("I")
        for root in sorted(by_root):
            rows.extend(order.sorted_rows(by_root.pop(root), self._path, at_once))
        self._order = rows

    def positions(self, keys: Collection[order.SortKey]) -> dict[order.SortKey, int]:
        """Where the actions with these sort keys are (the store in plan order): as
        order.positions finds them, the keys packed as the rows are, when every row is
        looked at (no sort key made per row)."""
        n = len(self)
        if len(keys) * 2 * max(1, n.bit_length()) < n:  # few: bisection
            return order.positions(n, self.sort_key, keys)
        wanted: dict[int, dict[tuple[int, _Bytes], order.SortKey]] = {}
        for key in keys:
            ix = self._roots_ix.get(key[0])
            if ix is not None:
                wanted.setdefault(ix, {})[_packed(key[1])] = key
        found: dict[order.SortKey, int] = {}
        blob, end, cat, root_of = self._blob, self._end, self._cat, self._root
        packing = _SHA1 | _SHA256
        for i, row in enumerate(range(n) if self._order is None else self._order):
            want = wanted.get(root_of[row])
            if want is not None:
                known = want.get(
                    (cat[row] & packing, bytes(blob[end[row - 1] if row else 0 : end[row]]))
                )
                if known is not None:
                    found[known] = i
        return found

    def _path(self, row: int) -> _Bytes:
        return self._key(row)[1]


def merge(first: Actions, second: Actions) -> Actions:
    """Both stores' actions in (root, path) order: the second's rows join the first's."""
    if len(second):
        first.extend(second)
        first.sort()
    return first
