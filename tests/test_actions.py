"""The compact action store reads back exactly what was put in, in order."""

from __future__ import annotations

import dataclasses
import os
import pickle
import time
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from gradio_clean.actions import Actions, Brief, merge
from gradio_clean.apply import apply_plan
from gradio_clean.classify import Category, Role
from gradio_clean.plan import Action, Identity, Rule, Status, whole_action
from gradio_clean.roots import Root
from gradio_clean.rules import AgeBy, RuleSet, build_plan
from tests.conftest import write

HEX = "0123456789abcdef"
# A sha256 name whose 21st byte is "/" (0x2f): packed, it must not read back as a sha1.
SLASH_AT_20 = "ab" * 20 + "2f" + "cd" * 11

names = st.one_of(
    st.text(HEX, min_size=40, max_size=40),
    st.text(HEX, min_size=64, max_size=64),
    st.just(SLASH_AT_20),
    st.text(st.characters(exclude_categories=["Cs"], exclude_characters="/\0"), max_size=12).filter(
        bool
    ),  # a name from the OS: lone surrogates only by escape, below
    st.binary(min_size=1, max_size=12)
    .filter(lambda b: b"/" not in b and b"\0" not in b)
    .map(os.fsdecode),  # undecodable bytes: surrogate escapes
)
rels = st.lists(names, min_size=1, max_size=3).map("/".join)
ints = st.integers(min_value=0, max_value=2**62)


@st.composite
def actions(draw: st.DrawFn) -> Action:
    rel = draw(rels)
    item = draw(st.sampled_from([rel, rel.split("/")[0], "elsewhere"]))
    keep = draw(st.none() | st.just("/r/kept"))
    return Action(
        root=draw(st.sampled_from(["/r", "/r2", "/tmp/gradio"])),
        rel=rel,
        item_rel=item,
        rule=draw(st.sampled_from(Rule)),
        category=draw(st.sampled_from(Category)),
        is_dir=draw(st.booleans()),
        bytes=draw(ints),
        files=draw(ints),
        reason=draw(st.sampled_from(["older than 7d", "idle", "same content as x"])),
        identity=Identity(draw(ints), draw(ints), draw(ints), draw(ints), draw(ints)),
        newest_ns=draw(ints),
        keep=keep,
        keep_identity=None if keep is None else Identity(1, 2, 3, 4, 5),
        hardlink=draw(st.booleans()),
        stray_link=draw(st.booleans()),
        age_ns=draw(st.none() | ints),
    )


def order(a: Action) -> tuple[str, bytes]:
    return a.root, os.fsencode(a.rel)


@settings(max_examples=200)
@given(st.lists(actions(), max_size=30))
def test_every_field_reads_back_as_it_was_written(written: list[Action]) -> None:
    store = Actions(written)
    assert len(store) == len(written)
    assert list(store) == written
    assert [store[i] for i in range(-len(written), 0)] == written
    assert [store.rel(i) for i in range(len(store))] == [a.rel for a in written]
    assert [store.item_rel(i) for i in range(len(store))] == [a.item_rel for a in written]
    assert store.bytes == sum(a.bytes for a in written)
    assert store.files == sum(a.files for a in written)
    assert store.folders == sum(a.is_dir for a in written)
    assert store.hardlinks == sum(a.hardlink for a in written)
    # what a forked worker sends back
    assert pickle.loads(pickle.dumps(store)) == written  # noqa: S301


@given(st.lists(actions(), max_size=30), st.booleans())
def test_inner_files_are_the_files_deleted_inside_an_item_read_in_order(
    written: list[Action], sort: bool
) -> None:
    """emptied.py's bulk read: the (position, root, rel, item_rel) the Actions give."""
    store = Actions(written)
    if sort:
        store.sort()
    read = list(store)
    assert list(store.inner_files()) == [
        (i, a.root, a.rel, a.item_rel)
        for i, a in enumerate(read)
        if not a.is_dir and not a.hardlink and a.rel != a.item_rel
    ]


@given(st.lists(actions(), max_size=20), st.lists(actions(), max_size=20))
def test_joined_and_cut_stores_read_as_the_lists_would(
    first: list[Action], second: list[Action]
) -> None:
    store = Actions(first)
    store.extend(Actions(second))
    assert list(store) == first + second
    assert list(store.tail(len(first))) == second


@given(st.lists(actions(), max_size=30), st.lists(actions(), max_size=30))
def test_sorted_and_merged_in_root_then_path_bytes_order(
    first: list[Action], second: list[Action]
) -> None:
    store = Actions(first)
    store.sort()
    assert list(store) == sorted(first, key=order)
    merged = merge(store, Actions(second))
    assert [order(a) for a in merged] == sorted(order(a) for a in first + second)
    n = len(merged)
    merged.extend(Actions(first))  # rows added after a sort are read after the rest
    assert list(merged)[n:] == first
    assert pickle.loads(pickle.dumps(merged)) == list(merged)  # noqa: S301


@settings(max_examples=200)
@given(st.lists(actions(), max_size=30))
def test_rows_copied_or_written_from_numbers_read_as_the_appended_actions(
    written: list[Action],
) -> None:
    """copy_row and add_whole (the budget's, no Action built) write append's rows."""
    source = Actions(written)
    source.sort()  # copy_row reads in reading order
    copied = Actions()
    for i in range(len(source)):
        copied.copy_row(source, i)
    assert list(copied) == list(source)
    assert [copied.sort_key(i) for i in range(len(copied))] == [
        source.sort_key(i) for i in range(len(source))
    ]
    assert [copied.brief(i) for i in range(len(copied))] == [Brief.of(a) for a in source]
    wholes = [
        whole_action(
            a.root, a.rel, a.category, a.is_dir, dev=a.identity.dev, ino=a.identity.ino,
            size=a.bytes, files=a.files, mtime_ns=a.identity.mtime_ns, newest_ns=a.newest_ns,
            rule=a.rule, reason=a.reason, age_ns=a.age_ns or 0,
        )
        for a in written
    ]  # fmt: skip
    direct = Actions()
    for w in wholes:
        direct.add_whole(
            w.root, w.rel, w.category, w.is_dir,
            (w.identity.dev, w.identity.ino, w.bytes, w.files, w.identity.mtime_ns,
             w.newest_ns, w.age_ns or 0),
            w.rule, w.reason,
        )  # fmt: skip
    assert list(direct) == wholes
    assert pickle.loads(pickle.dumps(direct)) == wholes  # noqa: S301


def test_a_sha256_folder_whose_packed_name_holds_a_slash_is_pruned(tmp_path: Path) -> None:
    """Regression: byte 20 of the packed name being "/" read back as a sha1 and a tail, a
    path that does not exist, so the folder was never deleted."""
    temp = tmp_path / "temp"
    write(temp / SLASH_AT_20 / "image.webp", b"x" * 10, age=3 * 86400)
    plan = build_plan(
        [Root(str(temp), Role.TEMP, "t")],
        RuleSet(older_than=86400.0, age_by=AgeBy.MTIME),
        now=time.time(),
    )
    assert [a.rel for a in plan.actions] == [SLASH_AT_20]
    result = apply_plan(plan, why=lambda _dev, _ino: None, jobs=1)
    assert [o.status for o in result.outcomes] == [Status.DELETED]
    assert not (temp / SLASH_AT_20).exists()


@given(st.lists(actions(), max_size=30), st.data())
def test_what_goes_is_every_action_not_skipped_links_apart(
    written: list[Action], data: st.DataObject
) -> None:
    store = Actions(written)
    store.sort()
    skipped = data.draw(
        st.sets(st.integers(0, max(0, len(written) - 1))) if written else st.just(set())
    )
    going = store.going(skipped)
    kept = [a for i, a in enumerate(store) if i not in skipped]
    deleted = [a for a in kept if not a.hardlink]
    linked = [a for a in kept if a.hardlink]
    assert (going.bytes, going.files, going.folders) == (
        sum(a.bytes for a in deleted),
        sum(a.files for a in deleted),
        sum(a.is_dir for a in deleted),
    )
    assert (going.links, going.link_bytes, going.link_files) == (
        len(linked),
        sum(a.bytes for a in linked),
        sum(a.files for a in linked),
    )


flat = st.lists(
    st.text("abc/é", max_size=6).map(lambda tail: f"{SLASH_AT_20}/upload_{tail}"), max_size=40
)


@given(st.lists(actions(), max_size=30), flat, st.integers(1, 4))
def test_sorted_a_few_rows_at_a_time_as_all_at_once(
    written: list[Action], tails: list[str], at_once: int
) -> None:
    """Large groups are split by the bytes after their shared head (a flat folder's
    files share a long one); the order is the same as sorting every key at once."""
    base = written[0] if written else None
    more = (
        [dataclasses.replace(base, rel=rel, item_rel=SLASH_AT_20) for rel in tails] if base else []
    )
    store = Actions(written + more)
    store.sort(at_once=at_once)
    assert [order(a) for a in store] == sorted(order(a) for a in written + more)
