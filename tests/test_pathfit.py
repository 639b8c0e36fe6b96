"""A path too wide for its column is cut where it tells least: the root's folders first
(a table's title names the root), then the folders between, then the middle of a hash
name; the name stays whole whenever it fits. The tables that use it: test_report_paths."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st
from rich.cells import cell_len

from gradio_clean.pathfit import fit_path, middle, short_hashes

LONG = "generated_output_{}_of_many_long_name.webp"
H = "90a1cc9a" + "3" * 52 + "c6be"


def test_middle_keeps_both_ends_within_the_width() -> None:
    name = "90a1cc9a" + "0" * 52 + "c6be"
    assert short_hashes(f"{name}/photo.png") == "90a1cc9a…c6be/photo.png"
    assert short_hashes("a" * 20) == "a" * 20  # not a hash
    assert middle("abcdefghij", 10) == "abcdefghij"
    assert middle("abcdefghijkl", 7) == "abc…jkl"
    assert cell_len(middle("写真" * 10, 9)) <= 9


def test_fit_path_gives_up_the_root_then_the_hash_middle_then_the_name() -> None:
    root = "/srv/app/gradio"
    assert fit_path(f"{H}/image.png", 100) == "90a1cc9a…c6be/image.png"
    assert fit_path(f"{H}/image.png", 19) == "90a1…c6be/image.png"
    assert fit_path(f"{H}/image.png", 14) == "90…e/image.png"
    assert fit_path(f"{H}/image.png", 11) == "…/image.png"
    assert fit_path(f"{H}/{LONG.format(2)}", 34) == "90a1…c6be/generated_ou…g_name.webp"
    assert fit_path(f"{H}/", 10) == "90a1…c6be/"
    assert fit_path(f"{root}/{H}", 100, root) == f"{root}/90a1cc9a…c6be"
    assert fit_path(f"{root}/{H}", 22, root) == "…/gradio/90a1cc9a…c6be"
    assert fit_path(f"{root}/{H}", 16, root) == "…/90a1cc9a…c6be"
    assert fit_path(f"{root}/{H}", 11, root) == "…/90a1…c6be"
    assert fit_path(f"{H}/a/b/c/name.png", 26) == "90a1cc9a…c6be/…/c/name.png"
    assert fit_path("tmpq1w2e3r4.mp4", 10) == "tmpq1….mp4"


# Names as `shown` leaves them: printable, any script, wide characters too.
component = st.text(
    st.characters(
        blacklist_categories=("Cs", "Cc", "Cf", "Co", "Cn", "Zl", "Zp", "Zs"),
        blacklist_characters="/…",
    ),
    min_size=1,
    max_size=24,
) | st.sampled_from([H, "k3x9q0ab1z", "tmpq1w2e3r4", "写真" * 5])


@given(
    st.lists(component, max_size=4),
    st.lists(component, min_size=1, max_size=4),
    st.booleans(),
    st.integers(0, 100),
)
@example([], [H, "image.png"], False, 14)
@example(["srv", "app"], [H], True, 11)
def test_a_cut_path_fits_and_keeps_its_name_whenever_it_fits(
    root: list[str], rel: list[str], is_dir: bool, width: int
) -> None:
    top = "/" + "/".join(root) if root else ""
    path = f"{top}/" * bool(top) + "/".join(rel) + "/" * is_dir
    out = fit_path(path, width, top)
    assert cell_len(out) <= width
    name = rel[-1] + "/" * is_dir
    before = len(rel) > 1 or bool(top)
    if name.strip("/") != H and cell_len("…/" * before + name) <= width:
        assert out == name if not before else out.endswith("/" + name), out
    if width >= 12:  # each part of the path cut once at most: no `…c6b…g_name.webp`
        assert all(part.count("…") <= 1 for part in out.split("/")), out
