"""Which folders to look at, and what each one is to Gradio.

A root keeps the path the user gave (made absolute, not resolved): its last
component is opened with O_NOFOLLOW, so a root that is a symlink is refused
rather than followed somewhere else.
"""

from __future__ import annotations

import errno
import itertools
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace

from gradio_clean.classify import (
    APP_DATA_DIRS,
    Role,
    is_gradio_top_name,
    is_session_name,
)
from gradio_clean.errors import GradioCleanError, UsageError

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
NOATIME = getattr(os, "O_NOATIME", 0)


def open_at(dir_fd: int, name: str, flags: int) -> int:
    """os.open relative to dir_fd, with O_NOATIME where the kernel allows it (our own
    files, or as root), so that reading a file or listing a folder does not make it
    look used to --age-by atime (a dry run must not change what apply then sees)."""
    if NOATIME:
        try:
            return os.open(name, flags | NOATIME, dir_fd=dir_fd)
        except PermissionError as exc:
            if exc.errno != errno.EPERM:  # EPERM: not our file; EACCES is final
                raise
    return os.open(name, flags, dir_fd=dir_fd)


@dataclass(frozen=True)
class Root:
    path: str
    role: Role
    why: str  # how the role was decided, shown to the user
    # A temp dir's project evidence (temp_dir_root): what Gradio does not write there is
    # kept unless --category other is given.
    project: tuple[str, ...] = ()
    # Entries of its top that are roots of their own (nest_roots): its walk passes them by.
    apart: tuple[str, ...] = ()


def make_root(path: str, role: Role, why: str) -> Root:
    """A root as found; a temp dir is looked at for project evidence (temp_dir_root)."""
    return temp_dir_root(path, why) if role is Role.TEMP else Root(path, role, why)


def temp_dir_root(path: str, why: str) -> Root:
    """A temp dir root, with the project evidence it shows.

    Vouching for a folder as Gradio's temp dir (GRADIO_TEMP_DIR=. in an app's folder, or
    one's home) makes it a temp dir whatever it holds; when it also holds a project's
    marker or source file, what Gradio does not write there is the project's own."""
    evidence = project_evidence(path)
    if not evidence:
        return Root(path, Role.TEMP, why)
    shown = ", ".join(evidence[:3]) + (", …" if len(evidence) > 3 else "")
    return Root(
        path,
        Role.TEMP,
        f"{why}; also a project folder (holds {shown}): what Gradio does not write "
        "there is kept unless --category other is given",
        evidence,
    )


def system_temp_dir() -> str:
    """`tempfile.gettempdir()` without its probe.

    gettempdir() writes a file to prove a folder writable, and raises when none is,
    as under a read-only systemd sandbox or a pod's readOnlyRootFilesystem. We only
    need the name: the first of TMPDIR, TEMP, TMP that is a folder, else /tmp.
    """
    if tempfile.tempdir:  # set by the program, or cached by an earlier gettempdir()
        return tempfile.tempdir
    for var in ("TMPDIR", "TEMP", "TMP"):
        value = os.environ.get(var)
        if value and os.path.isdir(value):
            return os.path.abspath(value)
    return "/tmp"  # Python's own first choice on POSIX


def gradio_temp_dir() -> str:
    """Where Gradio puts its cache: `utils.get_upload_folder()`, without resolving links."""
    configured = os.environ.get("GRADIO_TEMP_DIR")
    if configured:
        return os.path.abspath(configured)
    return os.path.join(system_temp_dir(), "gradio")


def default_roots(cwd: str | None = None) -> tuple[list[Root], list[str]]:
    """Gradio's temp dir and the current app's `.gradio` (plus pre-5.0 folders), if present.

    Returns the roots found and the places looked at, for the "nothing found" message.
    """
    cwd = os.path.abspath(cwd or os.getcwd())
    candidates = [
        (gradio_temp_dir(), Role.TEMP, "Gradio's temp dir (GRADIO_TEMP_DIR or <tmp>/gradio)"),
        (os.path.join(cwd, ".gradio"), Role.GRADIO, "./.gradio of the current directory"),
        (os.path.join(cwd, "flagged"), Role.FLAGGED, "./flagged (Gradio < 5.0)"),
        (
            os.path.join(cwd, "gradio_cached_examples"),
            Role.EXAMPLES,
            "./gradio_cached_examples (Gradio < 5.0)",
        ),
    ]
    found = [make_root(p, role, why) for p, role, why in candidates if _is_real_dir(p)]
    return nest_roots(found), [p for p, _, _ in candidates]


def resolve_roots(paths: Sequence[str], sessions_dirs: Sequence[str] = ()) -> list[Root]:
    """Roots for the PATHs and --sessions-dir folders the user gave; errors name the path."""
    roots = [make_root(os.path.abspath(p), *detect_role(p)) for p in paths]
    for p in sessions_dirs:
        check_dir(p)
        roots.append(Root(os.path.abspath(p), Role.SESSIONS, "given with --sessions-dir"))
    roots = _once(roots)
    for outer, inner in _overlaps(roots):
        raise UsageError(f"roots overlap: {inner.path} is inside {outer.path}; give only one")
    return roots


def check_dir(path: str) -> None:
    """Raise a one-line error unless `path` is a directory we can open without following links.

    The path checked is the one scanned, `os.path.abspath(path)`: opening the path as
    typed would follow a symlink written with a trailing slash ("link/").
    """
    absolute = os.path.abspath(path)
    try:
        fd = os.open(absolute, DIR_FLAGS)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR) and os.path.islink(absolute):
            # O_DIRECTORY | O_NOFOLLOW on a symlink fails with ENOTDIR, not ELOOP
            exc = OSError(errno.ELOOP, os.strerror(errno.ELOOP))
        raise GradioCleanError(describe_open_error(path, exc)) from None
    os.close(fd)


def describe_open_error(path: str, exc: OSError) -> str:
    return f"{path}: {open_error_reason(exc)}"


def open_error_reason(exc: OSError) -> str:
    """Why a folder could not be opened, without the path (warnings carry it apart)."""
    if exc.errno == errno.ENOENT:
        return "no such directory"
    if exc.errno == errno.ELOOP:
        return "is a symlink; give the directory it points to"
    if exc.errno == errno.ENOTDIR:
        return "not a directory"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return exc.strerror or str(exc)


ROLE_SAMPLE = 1000  # entries looked at to decide a role: never a full listing
# Any of these makes a folder a project (or a virtualenv), never a temp dir; checked by
# name, so one beyond the first ROLE_SAMPLE entries still counts.
PROJECT_MARKERS = (
    ".git",
    "requirements.txt",
    "pyproject.toml",
    "setup.py",
    "setup.cfg",
    "Pipfile",
    "poetry.lock",
    "uv.lock",
    "environment.yml",
    "package.json",
    "node_modules",
    "pyvenv.cfg",
    "bin/activate",
    ".venv",
    "venv",
    "Dockerfile",
    "Makefile",
)
# Files Gradio never writes at the top of its temp dir, even under a tmp* name.
SOURCE_SUFFIXES = frozenset(
    {".py", ".pyc", ".pyi", ".ipynb", ".js", ".mjs", ".ts", ".jsx", ".tsx", ".sh", ".toml"}
    | {".cfg", ".ini", ".yaml", ".yml", ".md", ".rst", ".html", ".css", ".lock"}
)
# Neither for nor against: filesystem and tool litter any folder may hold.
NEUTRAL_NAMES = frozenset({"lost+found", ".DS_Store", ".gitkeep", ".keep", ".gradiocleanignore"})
# The configured temp dir needs no evidence: that is how a user vouches for one.
FORCE_TEMP_HINT = "if it is a Gradio temp dir, run with GRADIO_TEMP_DIR set to it"


def detect_role(path: str) -> tuple[Role, str]:
    """Work out what `path` is from its name and a bounded look at its children.

    A folder is a temp dir only on strong evidence: it is Gradio's temp dir, or it
    holds no project marker and every entry looked at (the first ROLE_SAMPLE) could
    be Gradio's. Anything weaker makes it an app directory, where only session
    folders are candidates: a wrong "app" keeps files, a wrong "temp" deletes a project.
    """
    check_dir(path)
    absolute = os.path.abspath(path)
    base = os.path.basename(absolute.rstrip("/"))
    if base == ".gradio":
        return Role.GRADIO, "named .gradio"
    if base == "flagged":
        return Role.FLAGGED, "named flagged"
    if base in ("cached_examples", "gradio_cached_examples"):
        return Role.EXAMPLES, f"named {base}"
    if _same_dir(absolute, gradio_temp_dir()):
        return Role.TEMP, "is Gradio's temp dir"
    for marker in APP_DATA_DIRS:
        if _is_real_dir(os.path.join(absolute, marker)):
            return Role.APP, f"holds {marker}/"
    for marker in PROJECT_MARKERS:
        if _exists(os.path.join(absolute, marker)):
            return Role.APP, f"holds {marker}: a project folder, never a temp dir"
    return _role_from_sample(absolute)


def _role_from_sample(absolute: str) -> tuple[Role, str]:
    looked = gradio = 0
    first_gradio = foreign = None
    sessions = False
    for name, is_dir in _children(absolute):
        if looked == ROLE_SAMPLE:
            break
        looked += 1
        if name in NEUTRAL_NAMES:
            continue
        if not is_dir and os.path.splitext(name)[1].lower() in SOURCE_SUFFIXES:
            return Role.APP, f"holds {name}, a source file: a project folder, never a temp dir"
        if is_gradio_top_name(name, is_dir):
            gradio += 1
            first_gradio = first_gradio or name
        else:
            foreign = foreign or name
            sessions = sessions or (is_dir and is_session_name(name))
    if sessions:
        return Role.APP, "holds session folders"
    if first_gradio is not None and foreign is None:
        more = ", …" if gradio > 1 else ""
        return Role.TEMP, f"holds only Gradio cache entries ({first_gradio}{more}; {gradio:,} seen)"
    if first_gradio is not None:
        return Role.APP, (
            f"holds {foreign}, which Gradio does not write, beside {gradio:,} Gradio-shaped "
            f"entries ({first_gradio}); only session folders are candidates; {FORCE_TEMP_HINT}"
        )
    return Role.APP, "nothing Gradio-specific found; only session folders would be candidates"


def project_evidence(path: str) -> tuple[str, ...]:
    """What shows that `path` holds a project: its markers (by name), then among its first
    ROLE_SAMPLE entries its source files and a folder Gradio does not write that holds
    a marker (a checkout or a venv one level down). Gradio writes none of them."""
    found = [m for m in PROJECT_MARKERS if _exists(os.path.join(path, m))]
    nested = False
    try:
        for name, is_dir in itertools.islice(_children(path), ROLE_SAMPLE):
            if not is_dir:
                if os.path.splitext(name)[1].lower() in SOURCE_SUFFIXES:
                    found.append(name)
            elif not nested and name not in APP_DATA_DIRS and not is_gradio_top_name(name, True):
                inner = next(
                    (m for m in PROJECT_MARKERS if _exists(os.path.join(path, name, m))), None
                )
                if inner is not None:
                    found.append(f"{name}/{inner}")
                    nested = True  # one is evidence enough: the rest would only cost lstats
    except GradioCleanError:
        pass  # unreadable: the walk warns, and deletes nothing it cannot list
    return tuple(found)


def _children(path: str) -> Iterator[tuple[str, bool]]:
    try:
        with os.scandir(path) as it:
            for entry in it:
                yield entry.name, entry.is_dir(follow_symlinks=False)
    except OSError as exc:
        raise GradioCleanError(describe_open_error(path, exc)) from None


def _exists(path: str) -> bool:
    try:
        os.lstat(path)
    except OSError:
        return False
    return True


def _is_real_dir(path: str) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _same_dir(a: str, b: str) -> bool:
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _once(roots: list[Root]) -> list[Root]:
    """One root per folder: a second name for it (a bind mount, `dir/`, `a/..`) is dropped.

    Sameness is (st_dev, st_ino), which a bind mount shares and its path does not.
    The same folder given in two roles (a PATH and a --sessions-dir) is ambiguous.
    """
    first: dict[tuple[int, int], Root] = {}
    out = []
    for root in roots:
        key = _identity(root.path)
        if key is None:
            out.append(root)
            continue
        if key not in first:
            first[key] = root
            out.append(root)
        elif first[key].role is not root.role:
            raise UsageError(
                f"roots overlap: {root.path} is {first[key].path}, given twice in two roles; "
                "give only one"
            )
    return out


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _contains(outer: str, inner: str) -> bool:
    o, i = os.path.realpath(outer), os.path.realpath(inner)
    return i == o or i.startswith(o.rstrip("/") + "/")


def _overlaps(roots: Iterable[Root]) -> Iterable[tuple[Root, Root]]:
    listed = list(roots)
    for i, a in enumerate(listed):
        for b in listed[i + 1 :]:
            if _contains(a.path, b.path):
                yield a, b
            elif _contains(b.path, a.path):
                yield b, a


def nest_roots(roots: list[Root]) -> list[Root]:
    """For default roots: each folder walked once. A root inside another is dropped, the
    outer one walking it, but for Gradio's temp dir at the top of another root
    (GRADIO_TEMP_DIR=.gradio/tmp): it stays a root, with its temp role, and the outer
    root's walk passes it by (Root.apart), so its cache is aged as cache, not as `other`.
    Deeper, the walk could not pass it by: it is dropped, as before."""
    dropped: set[int] = set()
    apart: dict[int, list[str]] = {}
    for outer, inner in _overlaps(roots):
        name = _top_entry(outer, inner) if inner.role is Role.TEMP else None
        if name is None or outer.role is Role.TEMP:
            dropped.add(id(inner))
        else:
            apart.setdefault(id(outer), []).append(name)
    out = []
    for root in roots:
        if id(root) in dropped:
            continue
        names = apart.get(id(root))
        if names:
            shown = ", ".join(f"{n}/" for n in names)
            why = f"{root.why}; {shown} walked apart, as Gradio's temp dir"
            root = replace(root, why=why, apart=tuple(names))
        out.append(root)
    return out


def _top_entry(outer: Root, inner: Root) -> str | None:
    """The name of `inner` at the top of `outer`, if it is that very folder."""
    rel = os.path.relpath(os.path.realpath(inner.path), os.path.realpath(outer.path))
    if "/" in rel or rel in (".", ".."):
        return None
    try:
        named, real = os.lstat(os.path.join(outer.path, rel)), os.lstat(inner.path)
    except OSError:
        return None
    return rel if (named.st_dev, named.st_ino) == (real.st_dev, real.st_ino) else None


_SYSTEM_DIRS = frozenset(
    {
        "/",
        "/bin",
        "/boot",
        "/dev",
        "/etc",
        "/home",
        "/lib",
        "/lib64",
        "/opt",
        "/proc",
        "/root",
        "/run",
        "/sbin",
        "/srv",
        "/sys",
        "/usr",
        "/var",
        "/tmp",
        "/var/tmp",
        "/dev/shm",
        "/mnt",
        "/media",
    }
)


def refuse_dangerous(root: Root) -> None:
    """prune must never be pointed at /, a home directory or a bare system temp dir."""
    real = os.path.realpath(root.path)
    home = os.path.realpath(os.path.expanduser("~"))
    temp = os.path.realpath(system_temp_dir())
    if real in _SYSTEM_DIRS or real == temp:
        raise UsageError(
            f"refusing to prune {root.path}: it is a system directory; "
            "point gradio-clean at the Gradio folder inside it (e.g. /tmp/gradio)"
        )
    if real == home or home.startswith(real.rstrip("/") + "/"):
        raise UsageError(f"refusing to prune {root.path}: it is or holds your home directory")
