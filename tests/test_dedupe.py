"""The duplicates rule's part of a plan (dedupe.py): which copy goes for which."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import DAY, SHA256_A, run_cli, write

DEDUPE = ("--duplicates", "--category", "cache", "--category", "flagged", "--json")


def test_dedupe_delete_keeps_a_copy_of_the_same_category(tmp_path: Path) -> None:
    """An app folder that is its own temp dir (GRADIO_TEMP_DIR=.): a flagged image is also
    in a hash folder. --dedupe delete never deletes the flagged copy for the cached one
    (Gradio's delete_cache, or --older-than, removes that later: the data would be gone);
    two flagged copies are still one too many. Before: the flagged copy was planned for
    deletion, keeping the newer cached copy."""
    app = tmp_path / "app"
    write(app / "app.py", b"demo.launch()")
    flagged = write(app / "flagged" / "image" / "u1" / "a.png", b"photo", age=2 * DAY)
    again = write(app / "flagged" / "image" / "u2" / "a.png", b"photo", age=DAY)
    cached = write(app / SHA256_A / "a.png", b"photo")
    args = ("prune", str(app), *DEDUPE, "--dedupe", "delete")
    dry = json.loads(run_cli(*args, temp_dir=app).stdout)
    done = json.loads(run_cli(*args, "--apply", "--yes", temp_dir=app).stdout)
    assert [(a["path"], a["keep"]) for a in dry["actions"]] == [(str(flagged), str(again))]
    assert [(a["path"], a["status"]) for a in done["actions"]] == [(str(flagged), "deleted")]
    assert again.exists() and cached.exists() and not flagged.exists()


def test_dedupe_hardlink_still_links_across_categories(tmp_path: Path) -> None:
    """A hard link keeps every path: the flagged copy may share the cached one's inode."""
    app = tmp_path / "app"
    write(app / "app.py", b"demo.launch()")
    flagged = write(app / "flagged" / "image" / "u1" / "a.png", b"photo", age=DAY)
    cached = write(app / SHA256_A / "a.png", b"photo")
    done = json.loads(run_cli("prune", str(app), *DEDUPE, "--apply", "--yes", temp_dir=app).stdout)
    assert [(a["path"], a["status"]) for a in done["actions"]] == [(str(flagged), "linked")]
    assert flagged.stat().st_ino == cached.stat().st_ino
