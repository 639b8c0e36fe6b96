"""Which timestamp an entry's age counts from (--age-by)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from operator import attrgetter
from typing import cast

from gradio_clean.options import AgeBy


def age_ns(st: os.stat_result, age_by: AgeBy) -> int:
    """The timestamp an entry's age counts from.

    newest: the latest of mtime, ctime (when the entry got here: a copy keeps its
    source's mtime but not its ctime) and, for files, atime (the last read, where the
    mount records it). A folder's atime moves whenever anything lists it (this tool,
    du, a backup), so it says nothing about use and newest leaves it out.
    """
    return age_getter(age_by)(st)


def age_getter(age_by: AgeBy) -> Callable[[os.stat_result], int]:
    """`age_ns` for one --age-by, decided once per run rather than once per entry:
    a C getter where one field is the answer."""
    if age_by is AgeBy.NEWEST:
        return _newest_ns
    field_name = {AgeBy.MTIME: "st_mtime_ns", AgeBy.ATIME: "st_atime_ns"}
    return cast(
        "Callable[[os.stat_result], int]", attrgetter(field_name.get(age_by, "st_ctime_ns"))
    )


def _newest_ns(st: os.stat_result) -> int:
    """The newest timestamp (see age_ns), the hot path: comparisons, no calls but one."""
    newest = st.st_mtime_ns
    changed = st.st_ctime_ns
    if changed > newest:
        newest = changed
    if not stat.S_ISDIR(st.st_mode):
        read = st.st_atime_ns
        if read > newest:
            newest = read
    return newest
