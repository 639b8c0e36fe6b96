"""`gc_paused()`: the one way the collector is paused around a walk or a hash pass."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic collector, and restore it as it was found.

    A walk or a hash pass makes about one long-lived object per file, and collector
    passes over them cost about half the time; none of them forms a cycle.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
