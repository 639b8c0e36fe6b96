"""Apply a plan so that it cannot hurt what it did not plan.

- Every folder is opened with O_NOFOLLOW | O_DIRECTORY relative to its parent's
  descriptor, and entries are removed with unlinkat/rmdir through dir_fd: a
  symlink is removed as a link, never followed, and a folder swapped for a link
  mid-run fails to open instead of leading outside the root (like systemd-tmpfiles
  and Python's fd-based shutil.rmtree).
- Nothing on another device is entered.
- Each entry is re-stat'ed just before removal; if its inode, size or mtime moved
  since planning it is skipped. One already gone counts as done.
- Files some process holds open, maps or locks are skipped, and so is everything in a
  folder below the root that some process holds open or locks (a live app's mark).
- FIFOs, sockets and devices are never opened; they are unlinked like any name.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from gradio_clean.errors import ExitCode, GradioCleanError
from gradio_clean.inuse import InUseWatcher
from gradio_clean.plan import Action, ApplyResult, Identity, Outcome, Plan, Status
from gradio_clean.roots import DIR_FLAGS, Root, describe_open_error
from gradio_clean.workers import Counters, available_jobs, run_shares

ApplyProgress = Callable[[int, int, int], None]  # (actions done, actions total, bytes freed)
Why = Callable[[int, int], "str | None"]


class Skip(Exception):
    """An entry that is left alone, with the reason the user is shown."""


@contextlib.contextmanager
def lock_roots(roots: Sequence[Root], wait: float = 10.0) -> Iterator[None]:
    """Runs on the same root exclude each other: flock on the root's own descriptor."""
    fds: list[int] = []
    try:
        for root in roots:
            try:
                fd = os.open(root.path, DIR_FLAGS)
            except OSError as exc:
                raise GradioCleanError(describe_open_error(root.path, exc)) from None
            fds.append(fd)
            deadline = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise GradioCleanError(
                            f"{root.path}: another gradio-clean run is working on it "
                            f"(waited {wait:g}s); try again later",
                            ExitCode.BUSY,
                        ) from None
                    time.sleep(0.1)
        yield
    finally:
        for fd in fds:
            os.close(fd)


class _DirChain:
    """Open descriptors for the folders leading to the current one, reused across actions.

    Actions are sorted by path, so consecutive ones share most of their parents.
    """

    def __init__(self, root_fd: int, dev: int) -> None:
        self.root_fd = root_fd
        self.dev = dev
        self.names: list[str] = []
        self.fds: list[int] = []

    def open(self, rel_dir: str) -> int:
        """The descriptor of `rel_dir` (relative to the root); raises Skip or OSError."""
        parts = rel_dir.split("/") if rel_dir else []
        common = 0
        while common < min(len(parts), len(self.names)) and parts[common] == self.names[common]:
            common += 1
        self._truncate(common)
        for name in parts[common:]:
            parent = self.fds[-1] if self.fds else self.root_fd
            try:
                fd = os.open(name, DIR_FLAGS, dir_fd=parent)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise Skip(f"{name} on the way is no longer a folder (a symlink?)") from None
                raise
            if os.fstat(fd).st_dev != self.dev:
                os.close(fd)
                raise Skip(f"{name} on the way is on another filesystem")
            self.names.append(name)
            self.fds.append(fd)
        return self.fds[-1] if self.fds else self.root_fd

    def _truncate(self, keep: int) -> None:
        while len(self.fds) > keep:
            os.close(self.fds.pop())
            self.names.pop()

    def close(self) -> None:
        self._truncate(0)


def _check(st: os.stat_result, want: Identity, *, is_dir: bool) -> None:
    if stat.S_ISDIR(st.st_mode) != is_dir or (st.st_dev, st.st_ino) != (want.dev, want.ino):
        raise Skip("replaced since planning (another inode)")
    if is_dir:
        return
    if not stat.S_ISREG(st.st_mode):
        raise Skip("no longer a regular file")
    if st.st_size != want.size:
        raise Skip("changed since planning (size)")
    if st.st_mtime_ns != want.mtime_ns:
        raise Skip("changed since planning (mtime)")


def _split(rel: str) -> tuple[str, str]:
    head, _, name = rel.rpartition("/")
    return head, name


@dataclass
class _Freed:
    bytes: int = 0
    files: int = 0


def _planned_entry(chain: _DirChain, action: Action) -> tuple[int, str, os.stat_result] | None:
    """The action's parent descriptor, name and fresh lstat, re-checked; None if gone."""
    head, name = _split(action.rel)
    parent = chain.open(head)
    try:
        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        return None
    _check(st, action.identity, is_dir=action.is_dir)
    return parent, name, st


def _delete_file(chain: _DirChain, action: Action, why: Why, freed: _Freed) -> str | None:
    entry = _planned_entry(chain, action)
    if entry is None:
        return "already gone"
    parent, name, st = entry
    busy = why(st.st_dev, st.st_ino) or _folder_busy(chain.fds, why)
    if busy:
        raise Skip(busy)
    if action.keep is not None:
        _check_keep(chain, action)
        if action.hardlink:
            _replace_with_link(chain, action, parent, name)
            if st.st_nlink == 1:
                freed.bytes += st.st_size
            return None
    os.unlink(name, dir_fd=parent)
    freed.files += 1
    if st.st_nlink == 1:
        freed.bytes += st.st_size
    return None


def _folder_busy(fds: Sequence[int], why: Why) -> str | None:
    """A folder below the root that is locked or held (a live app's mark) spares its files."""
    for fd in fds:
        st = os.fstat(fd)
        busy = why(st.st_dev, st.st_ino)
        if busy:
            return f"its folder is {busy}"
    return None


def _check_keep(chain: _DirChain, action: Action) -> None:
    """Never drop a copy unless the one that stays is still there, unchanged."""
    assert action.keep is not None and action.keep_identity is not None
    keep_rel = os.path.relpath(action.keep, action.root)
    head, name = _split(keep_rel)
    fd = _open_path(chain.root_fd, head, chain.dev)
    try:
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            raise Skip("the copy to keep is gone") from None
        try:
            _check(st, action.keep_identity, is_dir=False)
        except Skip as exc:
            raise Skip(f"the copy to keep {exc}") from None
    finally:
        if fd != chain.root_fd:
            os.close(fd)


def _open_path(root_fd: int, rel_dir: str, dev: int) -> int:
    """A one-off descriptor for rel_dir, opened component by component without links."""
    chain = _DirChain(root_fd, dev)
    fd = chain.open(rel_dir)
    if fd == root_fd:
        return fd
    # Hand over the last descriptor; close the rest.
    chain.fds.pop()
    chain.names.pop()
    chain.close()
    return fd


def _replace_with_link(chain: _DirChain, action: Action, parent: int, name: str) -> None:
    """Link to a temporary name, then rename over: the path never stops answering."""
    assert action.keep is not None
    keep_head, keep_name = _split(os.path.relpath(action.keep, action.root))
    keep_parent = _open_path(chain.root_fd, keep_head, chain.dev)
    tmp = f".gradio-clean-{secrets.token_hex(6)}.tmp"
    try:
        os.link(keep_name, tmp, src_dir_fd=keep_parent, dst_dir_fd=parent, follow_symlinks=False)
        try:
            os.rename(tmp, name, src_dir_fd=parent, dst_dir_fd=parent)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=parent)
            raise
    finally:
        if keep_parent != chain.root_fd:
            os.close(keep_parent)


def _walk_tree(top_fd: int, dev: int, visit: Callable[[int, str, os.stat_result], None]) -> None:
    """Depth-first through descriptors; `visit(dir_fd, name, st)` sees every entry, children
    before their folder, so a visitor that removes entries empties folders bottom-up."""
    stack: list[tuple[int, list[str]]] = [(top_fd, os.listdir(top_fd))]
    opened: list[int] = []
    names_of: list[str] = []
    try:
        while stack:
            fd, pending = stack[-1]
            if not pending:
                stack.pop()
                if opened:
                    child_fd = opened.pop()
                    child_name = names_of.pop()
                    os.close(child_fd)
                    parent_fd = stack[-1][0]
                    try:
                        st = os.stat(child_name, dir_fd=parent_fd, follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    visit(parent_fd, child_name, st)
                continue
            name = pending.pop()
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(st.st_mode):
                if st.st_dev != dev:
                    raise Skip(f"holds a mount point ({name})")
                child = os.open(name, DIR_FLAGS, dir_fd=fd)
                opened.append(child)
                names_of.append(name)
                stack.append((child, os.listdir(child)))
                continue
            visit(fd, name, st)
    finally:
        for fd in opened:
            os.close(fd)


def _delete_folder(chain: _DirChain, action: Action, why: Why, freed: _Freed) -> str | None:
    planned = _planned_entry(chain, action)
    if planned is None:
        return "already gone"
    parent, name, _ = planned
    try:
        fd = os.open(name, DIR_FLAGS, dir_fd=parent)
    except FileNotFoundError:
        return "already gone"
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise Skip("replaced by a symlink since planning") from None
        raise
    try:
        top = os.fstat(fd)
        _check(top, action.identity, is_dir=True)
        if top.st_mtime_ns > action.newest_ns:
            raise Skip("changed since planning (the folder itself is newer)")
        busy = why(top.st_dev, top.st_ino) or _folder_busy(chain.fds, why)
        if busy:
            raise Skip(busy)

        seen: list[tuple[int, str, os.stat_result]] = []
        flat = True

        def verify(dfd: int, entry: str, est: os.stat_result) -> None:
            nonlocal flat
            if est.st_mtime_ns > action.newest_ns:
                raise Skip(f"changed since planning ({entry} is newer)")
            if stat.S_ISREG(est.st_mode) or stat.S_ISDIR(est.st_mode):
                busy = why(est.st_dev, est.st_ino)
                if busy:
                    raise Skip(f"{entry} is {busy}")
            if stat.S_ISDIR(est.st_mode):
                flat = False
            seen.append((dfd, entry, est))

        _walk_tree(fd, chain.dev, verify)  # everything checked before anything goes

        def remove(dfd: int, entry: str, est: os.stat_result) -> None:
            if stat.S_ISDIR(est.st_mode):
                os.rmdir(entry, dir_fd=dfd)
                return
            os.unlink(entry, dir_fd=dfd)
            if stat.S_ISREG(est.st_mode):
                freed.files += 1
                if est.st_nlink == 1:
                    freed.bytes += est.st_size

        if flat:  # a hash folder or session of plain files: what was just verified goes
            for _, entry, est in seen:
                try:
                    remove(fd, entry, est)
                except FileNotFoundError:
                    continue
        else:
            _walk_tree(fd, chain.dev, remove)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=parent)
    return None


def _parents_to_tidy(action: Action) -> list[str]:
    """Folders between a deleted file and its item folder: removed if the run empties them."""
    if action.is_dir or action.hardlink or action.rel == action.item_rel:
        return []
    out = []
    head = action.rel.rpartition("/")[0]
    while head and (head == action.item_rel or head.startswith(action.item_rel + "/")):
        out.append(head)
        head = head.rpartition("/")[0]
    return out


def _apply_root(
    root_path: str,
    actions: Sequence[Action],
    why: Why,
    done: Callable[[Outcome], None],
) -> list[str]:
    try:
        root_fd = os.open(root_path, DIR_FLAGS)
    except OSError as exc:
        msg = describe_open_error(root_path, exc)
        for action in actions:
            done(Outcome(action, Status.FAILED, msg))
        return []
    chain = _DirChain(root_fd, os.fstat(root_fd).st_dev)
    tidy: set[str] = set()
    try:
        for action in actions:
            freed = _Freed()
            try:
                if action.is_dir:
                    note = _delete_folder(chain, action, why, freed)
                else:
                    note = _delete_file(chain, action, why, freed)
                done(Outcome(action, Status.DELETED, note, freed.bytes, freed.files))
                tidy.update(_parents_to_tidy(action))
            except Skip as exc:
                done(Outcome(action, Status.SKIPPED, str(exc), freed.bytes, freed.files))
            except OSError as exc:
                detail = f"{exc.strerror or exc}" + (f" ({exc.filename})" if exc.filename else "")
                done(Outcome(action, Status.FAILED, detail, freed.bytes, freed.files))
        return _tidy(chain, tidy, root_path)
    finally:
        chain.close()
        os.close(root_fd)


def _tidy(chain: _DirChain, folders: set[str], root_path: str) -> list[str]:
    removed = []
    for rel in sorted(folders, key=lambda r: (-r.count("/"), r)):
        head, name = _split(rel)
        try:
            os.rmdir(name, dir_fd=chain.open(head))
            removed.append(os.path.join(root_path, rel))
        except (OSError, Skip):
            continue  # not empty, gone, or no longer reachable safely: leave it
    return removed


AUTO_SPLIT_MIN = 1000  # fewer actions than this are not worth a fork
_Done = tuple[int, str, "str | None", int, int]  # index, status, detail, freed bytes, files


def _run_share(
    plan: Plan,
    indices: Sequence[int],
    why: Why,
    report: Callable[[int, int], None],
) -> tuple[list[_Done], list[str]]:
    """Apply the actions at `indices` (in plan order); plain tuples travel back cheaply."""
    position = {id(plan.actions[i]): i for i in indices}
    done_rows: list[_Done] = []
    freed = 0

    def done(outcome: Outcome) -> None:
        nonlocal freed
        freed += outcome.freed_bytes
        done_rows.append(
            (
                position[id(outcome.action)],
                outcome.status.value,
                outcome.detail,
                outcome.freed_bytes,
                outcome.freed_files,
            )
        )
        report(len(done_rows), freed)

    removed: list[str] = []
    by_root: dict[str, list[Action]] = {}
    for i in indices:
        by_root.setdefault(plan.actions[i].root, []).append(plan.actions[i])
    for root_path, actions in by_root.items():
        removed.extend(_apply_root(root_path, actions, why, done))
    return done_rows, removed


def _shares(plan: Plan, jobs: int) -> list[list[int]]:
    """Whole items per share, so an item's actions and the folders it empties stay together."""
    items: dict[tuple[str, str], list[int]] = {}
    for i, action in enumerate(plan.actions):
        items.setdefault((action.root, action.item_rel), []).append(i)
    shares: list[list[int]] = [[] for _ in range(jobs)]
    for n, indices in enumerate(items.values()):
        shares[n % jobs].extend(indices)
    return [sorted(share) for share in shares]


def apply_plan(
    plan: Plan,
    *,
    why: Why | None = None,
    progress: ApplyProgress | None = None,
    jobs: int | None = None,
) -> ApplyResult:
    """Execute the plan's actions, each re-checked first; report what happened to each.

    `jobs`: forked workers sharing the actions item by item (None: one per core for a
    large plan). Each re-checks its own actions exactly as a single process would.
    """
    started = time.perf_counter()
    total = len(plan.actions)
    if jobs is None:
        jobs = available_jobs() if total >= AUTO_SPLIT_MIN else 1
    jobs = max(1, min(jobs, total))
    check = why or InUseWatcher().why
    counters = Counters(jobs) if jobs > 1 else None
    shares = _shares(plan, jobs) if total else [[]]

    def share(index: int) -> Callable[[], tuple[list[_Done], list[str]]]:
        def report(done: int, freed: int) -> None:
            if counters is not None:
                counters.publish(index, done, freed)
            if index == 0 and progress is not None:
                more_done, more_freed = counters.others(0) if counters else (0, 0)
                progress(done + more_done, total, freed + more_freed)

        def work() -> tuple[list[_Done], list[str]]:
            return _run_share(plan, shares[index], check, report)

        return work

    works = [share(i) for i in range(len(shares))]
    results = run_shares(works)
    rows: list[_Done] = []
    removed: list[str] = []
    for index, result in enumerate(results):
        if result is None:  # the worker died: do its share here (every action re-checks)
            result = works[index]()
        rows.extend(result[0])
        removed.extend(result[1])
    rows.sort(key=lambda r: r[0])
    outcomes = tuple(
        Outcome(plan.actions[i], Status(status), detail, fb, ff)
        for i, status, detail, fb, ff in rows
    )
    return ApplyResult(outcomes, tuple(sorted(removed)), time.perf_counter() - started)
