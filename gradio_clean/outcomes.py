"""What apply did to each action, in columns beside the plan's actions (actions.py).

A million actions get a million outcomes: a status byte and two counts each, not
a million Outcome objects.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, overload

from gradio_clean.plan import Outcome, Status

if TYPE_CHECKING:
    from gradio_clean.actions import Actions

_STATUSES = (None, *Status)
_STATUS_IX = {s: i for i, s in enumerate(_STATUSES)}


class Outcomes(Sequence[Outcome]):
    """What apply did to each action, in plan order: dense columns over the plan's rows
    (a status byte and two counts each), so a million outcomes hold no million objects."""

    def __init__(self, actions: Actions) -> None:
        self.actions = actions
        self._status = bytearray(len(actions))  # 0: no outcome (the run stopped first)
        self._bytes = array("q", bytes(8 * len(actions)))
        self._files = array("q", bytes(8 * len(actions)))
        self._detail: dict[int, str] = {}
        self._count = 0
        self._positions: array[int] | None = None  # rows with an outcome, for indexing

    def record(self, i: int, status: Status, detail: str | None, nbytes: int, files: int) -> None:
        if not self._status[i]:
            self._count += 1
        self._status[i] = _STATUS_IX[status]
        self._bytes[i], self._files[i] = nbytes, files
        if detail is not None:
            self._detail[i] = detail

    def add_freed(self, i: int, nbytes: int) -> None:
        """Bytes action `i` freed that were known only after every share was in."""
        self._bytes[i] += nbytes

    def state(self, i: int) -> tuple[Status, str | None] | None:
        """Action `i`'s status and detail (None: no outcome), without building the Outcome."""
        s = self._status[i]
        status = _STATUSES[s]
        return None if status is None else (status, self._detail.get(i))

    def at(self, i: int) -> Outcome | None:
        """The outcome of action `i`, or None when the run stopped before it."""
        s = self._status[i]
        if not s:
            return None
        status = _STATUSES[s]
        assert status is not None
        return Outcome(self.actions[i], status, self._detail.get(i), self._bytes[i], self._files[i])

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, i: int) -> Outcome: ...

    @overload
    def __getitem__(self, i: slice) -> list[Outcome]: ...

    def __getitem__(self, i: int | slice) -> Outcome | list[Outcome]:
        if self._positions is None or len(self._positions) != self._count:
            self._positions = array("Q", (j for j, s in enumerate(self._status) if s))
        if isinstance(i, slice):
            return [self._at(j) for j in self._positions[i]]
        return self._at(self._positions[i])

    def _at(self, i: int) -> Outcome:
        outcome = self.at(i)
        assert outcome is not None
        return outcome

    def __iter__(self) -> Iterator[Outcome]:
        for i in range(len(self._status)):
            outcome = self.at(i)
            if outcome is not None:
                yield outcome

    def with_status(self, status: Status) -> int:
        return self._status.count(_STATUS_IX[status])

    @property
    def all_done(self) -> bool:
        """Every outcome deleted or linked (rows with none are not asked about)."""
        done = {_STATUS_IX[Status.DELETED], _STATUS_IX[Status.LINKED], 0}
        return all(s in done for s in set(self._status))

    @property
    def whole_folders(self) -> int:
        """Folders deleted whole (not found already gone), read from the columns: no
        Action is built per outcome."""
        deleted = _STATUS_IX[Status.DELETED]
        if deleted not in self._status:
            return 0
        is_dir, detail = self.actions.is_dir, self._detail
        return sum(
            1 for i, s in enumerate(self._status) if s == deleted and i not in detail and is_dir(i)
        )

    @property
    def freed_bytes(self) -> int:
        return sum(self._bytes)

    @property
    def freed_files(self) -> int:
        return sum(self._files)
