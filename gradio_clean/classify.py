"""Names Gradio gives to what it writes, and what each one means to us.

Classification looks only at names and at whether an entry is a directory:
no content is read, so it is cheap enough to run on every entry of a walk.
Every shape here was checked against Gradio's released source (see README).
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Callable


class Category(str, enum.Enum):
    """The stable vocabulary of `scan` and `prune`; the values appear as-is in JSON."""

    CACHE = "cache"
    LEFTOVER = "leftover"
    SESSION = "session"
    EXAMPLES = "examples"
    FLAGGED = "flagged"
    INTERNAL = "internal"
    OTHER = "other"


class Role(str, enum.Enum):
    """What a root (or a folder nested in one) is to Gradio."""

    TEMP = "temp"  # GRADIO_TEMP_DIR: hash folders and leftovers
    APP = "app"  # an app's working directory: .gradio/, flagged/, session folders
    GRADIO = "gradio-dir"  # an app's .gradio folder
    SESSIONS = "sessions"  # a folder the user says holds session folders
    FLAGGED = "flagged"  # a flagging folder on its own
    EXAMPLES = "examples"  # a cached-examples folder on its own


class Kind(enum.Enum):
    """What a top-level entry of a root is; decides how its subtree is counted."""

    HASH_DIR = "hash-dir"
    TMP_FILE = "tmp-file"
    TMP_DIR = "tmp-dir"
    SESSION_DIR = "session-dir"
    INTERNAL = "internal"
    EXAMPLES = "examples"
    FLAGGED = "flagged"
    GRADIO_DIR = "gradio-dir"  # a nested .gradio: classified again with Role.GRADIO
    OTHER = "other"


_HEX_BYTES = b"0123456789abcdef"  # a hash folder's name: 40 or 64 of them (sha1, sha256)
# tempfile's names: "tmp" + 8 of [a-z0-9_]; Gradio adds suffixes such as
# ".vtt", ".mp4" or "_processed.mp4" (video.py, routes.py, screen_recording_utils.py).
_TMP_FILE = re.compile(r"tmp[a-z0-9_]{8}(?:[._][A-Za-z0-9_.]+)?")
_TMP_DIR = re.compile(r"tmp[a-z0-9_]{8}")
# processing_utils: tempfile.mkstemp(dir=<hash dir>, prefix=f".{name}.")
_STAGING = re.compile(r"\..+\.[a-z0-9_]{8}", re.DOTALL)
_WORKFLOW = re.compile(r"workflow_[0-9a-f]{16}\.[A-Za-z0-9]+")
# removal.py claims an entry as .gradio-clean-<12 hex>.del; delete.py links as ….tmp
_OUR_TEMP = re.compile(r"\.gradio-clean-[0-9a-f]{12}\.(?:tmp|del)")
_CLAIM = re.compile(r"\.gradio-clean-[0-9a-f]{12}\.del")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_HEX32 = re.compile(r"[0-9a-f]{32}")
_BASE36 = re.compile(r"[0-9a-z]{7,14}")
_RUN = re.compile(r"[0-9]+|[a-z]+")

TEMP_INTERNAL_DIRS = frozenset({"vibe_edit_history", "deep_links"})
# Directly inside a hash folder, only a file whose name starts with this can be a leftover
# (a staging copy or our own temporary link): the walk asks category_in_hash_dir about
# no other file.
LEFTOVER_FILE_START = "."


def is_hash_dir_name(name: str) -> bool:
    """sha1 (Gradio 3.x-4.40) or sha256 (4.41+) hex folder names: 40 or 64 of [0-9a-f].

    A length test, then the name's bytes with every hex digit deleted must be none: the
    walk asks this of every top-level folder, and bytes.translate deletes through one
    table, where str.strip searches its 16 characters for each of the name's (2.4x the
    instructions), and a regex fullmatch costs about as much again (callgrind)."""
    return (
        (len(name) == 64 or len(name) == 40)
        and name.isascii()
        and not name.encode().translate(None, _HEX_BYTES)
    )


def is_tmp_file_name(name: str) -> bool:
    return _TMP_FILE.fullmatch(name) is not None


def is_tmp_dir_name(name: str) -> bool:
    return _TMP_DIR.fullmatch(name) is not None


def is_staging_name(name: str) -> bool:
    """An interrupted copy's `.<name>.XXXXXXXX`, only meaningful inside a hash folder."""
    return _STAGING.fullmatch(name) is not None


def is_our_temp_name(name: str) -> bool:
    """A name of our own a killed run left: the temporary hard link `--dedupe hardlink`
    renames over a copy (delete.py), or an entry claimed for removal (removal.py)."""
    return _OUR_TEMP.fullmatch(name) is not None


def is_claim_name(name: str) -> bool:
    """An entry a killed run claimed for removal and did not unlink (removal.py): what
    Gradio wrote there is gone, so a hash folder holding only claims is an empty one."""
    return _CLAIM.fullmatch(name) is not None


def is_workflow_name(name: str) -> bool:
    return _WORKFLOW.fullmatch(name) is not None


def is_session_name(name: str, *, relaxed: bool = False) -> bool:
    """Does `name` look like a Gradio session hash?

    Accepted shapes:
    - a uuid (8-4-4-4-12 lowercase hex): the Python client's `str(uuid4())`;
    - 32 lowercase hex: the queue's `uuid4().hex` fallback;
    - the browser's `Math.random().toString(36).substring(2)`: 7-14 of [0-9a-z]
      with at least one digit and one letter, and at least three alternating
      runs of letters and digits ("k3x9q0ab1z"). Words with a number on one end
      ("outputs1", "run2024", "2024run") are taken for app folders, never sessions.

    `relaxed` (for folders the user names with --sessions-dir) also accepts the
    two-run shapes. Measured on 200,000 real `Math.random()` hashes: 96.3% have a
    digit, 93.1% pass the strict rule and 96.3% the relaxed one. Lengths seen run
    from 7 (about 1 in 200,000) to 14.
    """
    if _UUID.fullmatch(name) or _HEX32.fullmatch(name):
        return True
    if _BASE36.fullmatch(name) is None:
        return False
    if name.isalpha() or name.isdigit():
        return False
    return relaxed or len(_RUN.findall(name)) >= 3


# The folders Gradio writes in an app's working folder: the app's user data, and .gradio.
APP_DATA_DIRS = {
    ".gradio": Kind.GRADIO_DIR,
    "flagged": Kind.FLAGGED,
    "gradio_cached_examples": Kind.EXAMPLES,
}

# Of those, and of .gradio's, the folders Gradio makes once for an app's user data: a
# running app writes into them without making them again (flagging's mkdir has no
# parents), so a run removes one only whole, never as a folder it emptied (emptied.py).
USER_DATA_FOLDERS = frozenset({"flagged", "cached_examples", "gradio_cached_examples"})


def classify_top(role: Role, name: str, is_dir: bool) -> Kind:
    """The kind of an immediate child of a folder that has `role`."""
    if role is Role.TEMP:
        return _classify_temp_child(name, is_dir)
    if role is Role.APP:
        if is_dir:
            if name in APP_DATA_DIRS:
                return APP_DATA_DIRS[name]
            if is_session_name(name):
                return Kind.SESSION_DIR
        return Kind.OTHER
    if role is Role.GRADIO:
        if is_dir and name == "cached_examples":
            return Kind.EXAMPLES
        if is_dir and name == "flagged":
            return Kind.FLAGGED
        if not is_dir and name == "certificate.pem":
            return Kind.INTERNAL
        return Kind.OTHER
    if role is Role.SESSIONS:
        if is_dir and is_session_name(name, relaxed=True):
            return Kind.SESSION_DIR
        return Kind.OTHER
    if role is Role.FLAGGED:
        return Kind.FLAGGED
    return Kind.EXAMPLES


def classifier(role: Role) -> Callable[[str, bool], Kind]:
    """classify_top for one role, decided once per folder rather than once per entry."""
    if role is Role.TEMP:
        return _classify_temp_child
    return functools.partial(classify_top, role)


def item_of(role: Role, rel: str) -> str:
    """The item that `rel`, a path below a root of `role`, lies in, as the walk finds it:
    its top-level entry, or the entry below a nested `.gradio`, which the walk enters as a
    container (an app's, or a temp dir's that is also one): `.gradio` is never an item, so
    apply never removes it as a folder a run emptied."""
    head, sep, rest = rel.partition("/")
    if sep and classifier(role)(head, True) is Kind.GRADIO_DIR:
        return f"{head}/{rest.partition('/')[0]}"
    return head


def is_gradio_top_name(name: str, is_dir: bool) -> bool:
    """Could Gradio have written this entry at the top of its temp dir?"""
    return _classify_temp(name, is_dir) is not Kind.OTHER


def _classify_temp_child(name: str, is_dir: bool) -> Kind:
    """A child of a temp dir root: Gradio's names, else an app's own folders, else other.
    Gradio writes those in its working folder, never in its temp dir: where both are one
    folder (GRADIO_TEMP_DIR set to the app's folder, vouched for), user data stays so.

    The walk asks this of every entry of a temp dir, nearly all of them hash folders:
    those are told first (no name of APP_DATA_DIRS has that shape)."""
    if is_dir:
        if is_hash_dir_name(name):
            return Kind.HASH_DIR
        if name in APP_DATA_DIRS:
            return APP_DATA_DIRS[name]
    return _classify_temp(name, is_dir)


def _classify_temp(name: str, is_dir: bool) -> Kind:
    if is_dir:
        if is_hash_dir_name(name):
            return Kind.HASH_DIR
        if is_tmp_dir_name(name):
            return Kind.TMP_DIR
        if name in TEMP_INTERNAL_DIRS:
            return Kind.INTERNAL
        return Kind.OTHER
    if is_tmp_file_name(name) or is_our_temp_name(name):  # ours: a killed run's claim
        return Kind.TMP_FILE
    if is_workflow_name(name):
        return Kind.INTERNAL
    return Kind.OTHER


KIND_CATEGORY: dict[Kind, Category] = {
    Kind.HASH_DIR: Category.CACHE,
    Kind.TMP_FILE: Category.LEFTOVER,
    Kind.TMP_DIR: Category.LEFTOVER,
    Kind.SESSION_DIR: Category.SESSION,
    Kind.INTERNAL: Category.INTERNAL,
    Kind.EXAMPLES: Category.EXAMPLES,
    Kind.FLAGGED: Category.FLAGGED,
    Kind.GRADIO_DIR: Category.OTHER,
    Kind.OTHER: Category.OTHER,
}


def category_in_hash_dir(name: str, is_dir: bool, depth: int) -> Category:
    """Inside a hash folder, staging copies, ffmpeg `tmp*` folders and our own interrupted
    temporary links are leftovers."""
    if depth == 1 and (
        (not is_dir and (is_staging_name(name) or is_our_temp_name(name)))
        or (is_dir and is_tmp_dir_name(name))
    ):
        return Category.LEFTOVER
    return Category.CACHE
