"""Going down a root safely, for the walk (scan.py).

The walk works through directory file descriptors: each folder is opened with
O_NOFOLLOW relative to its parent's descriptor, so a symlink is never followed
and a folder swapped for a link mid-walk cannot lead outside the root. Depth is
limited only by open descriptors (one per level), never by Python's recursion.
Folders on another device are recorded and not entered. An error on the way is a
warning with its path, never a crash.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from gradio_clean.counts import Warnings
from gradio_clean.roots import DIR_FLAGS, open_at, open_error_reason
from gradio_clean.scanned import MOUNT_WARNING

# An open folder being walked: (fd, its listing, rel path)
Frame = tuple[int, Iterator[os.DirEntry[str]], str]


class Descent:
    """Going down one root safely: each folder opened with O_NOFOLLOW through its
    parent's descriptor, none entered on another device than the root's, and every
    error on the way a warning with its path (never a crash, never a stop)."""

    def __init__(self, top: str, warnings: Warnings) -> None:
        self.top = top
        self.warn = warnings.add
        self.dev = 0  # the root's device, read from its own descriptor by the walk

    def path(self, rel: str) -> str:
        return os.path.join(self.top, rel) if rel else self.top

    def failed(self, rel: str, exc: OSError) -> None:
        self.warn(self.path(rel), open_error_reason(exc))

    def listing(
        self, fd: int, rel: str, share: int = 0, shares: int = 1
    ) -> Iterator[os.DirEntry[str]]:
        """A folder's entries as the kernel hands them out, never all at once (a root of a
        million hash folders: ~110 MB as a list). With `shares`, only the entries whose
        name's hash falls to `share` (forked workers share the parent's hash seed)."""
        # A descriptor of its own: a scandir of `fd` itself would share its offset with
        # every worker forked with it, and each would read only part of the folder.
        try:
            own = open_at(fd, ".", DIR_FLAGS)
        except OSError as exc:
            self.failed(rel, exc)
            return
        try:
            with os.scandir(own) as listing:  # scandir reads a copy of `own`
                if shares == 1:
                    yield from listing
                else:
                    for entry in listing:
                        if hash(entry.name) % shares == share:
                            yield entry
        except OSError as exc:
            self.failed(rel, exc)
        finally:
            os.close(own)

    def open(self, parent_fd: int, name: str, rel: str) -> int | None:
        """A folder's descriptor; None where it is gone, or (warned about) cannot be opened."""
        try:
            return open_at(parent_fd, name, DIR_FLAGS)
        except FileNotFoundError:
            return None
        except OSError as exc:
            self.failed(rel, exc)
            return None

    def enter(self, parent_fd: int, name: str, rel: str, st: os.stat_result) -> Frame | None:
        """A folder opened to walk, with its listing; None where it is gone, or (warned
        about) on another device or cannot be opened or read."""
        if st.st_dev != self.dev:
            self.warn(self.path(rel), MOUNT_WARNING)
            return None
        fd = self.open(parent_fd, name, rel)
        if fd is None:
            return None
        try:
            return fd, os.scandir(fd), rel
        except OSError as exc:
            os.close(fd)
            self.failed(rel, exc)
            return None

    def unstatable(self, rel: str, exc: OSError) -> int:
        """An entry that could not be stat'ed: 1 (warned about), or 0 if it is just gone."""
        if isinstance(exc, FileNotFoundError):
            return 0
        self.failed(rel, exc)
        return 1


def close(frame: Frame) -> None:
    """Close a folder `Descent.enter` opened: its listing, then its descriptor."""
    frame[1].close()  # type: ignore[attr-defined]
    os.close(frame[0])
