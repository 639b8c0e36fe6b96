"""Outcomes: apply's results in columns beside the plan."""

from gradio_clean.actions import Actions
from gradio_clean.classify import Category
from gradio_clean.outcomes import Outcomes
from gradio_clean.plan import Action, ApplyResult, Identity, Rule, Status


def test_outcomes_are_kept_by_plan_index() -> None:
    plan = Actions(
        Action("/r", f"{n}", f"{n}", Rule.OLDER_THAN, Category.CACHE, True, 1, 1, "old",
               Identity(1, n, 0, 0), 0)
        for n in range(4)
    )  # fmt: skip
    outcomes = Outcomes(plan)
    outcomes.record(2, Status.SKIPPED, "in use", 0, 0)
    outcomes.record(0, Status.DELETED, None, 5, 1)
    assert [(o.action.rel, o.status, o.detail) for o in outcomes] == [
        ("0", Status.DELETED, None),
        ("2", Status.SKIPPED, "in use"),
    ]
    assert len(outcomes) == 2 and outcomes[1].action.rel == "2" and outcomes.at(1) is None
    assert [outcomes.state(i) for i in range(4)] == [
        (Status.DELETED, None),
        None,
        (Status.SKIPPED, "in use"),
        None,
    ]
    assert outcomes.with_status(Status.DELETED) == 1 and outcomes.freed_bytes == 5
    assert not outcomes.all_done


def test_whole_folders_are_counted_from_the_columns() -> None:
    """Folders deleted whole, not those found already gone, nor files: what the JSON's
    `folders_removed` and "Freed … (N folders)" add to the folders apply emptied."""
    plan = Actions(
        Action("/r", f"{n}", f"{n}", Rule.OLDER_THAN, Category.CACHE, n % 2 == 0, 1, 1, "old",
               Identity(1, n, 0, 0), 0)
        for n in range(6)
    )  # fmt: skip
    outcomes = Outcomes(plan)
    assert outcomes.whole_folders == 0
    outcomes.record(0, Status.DELETED, None, 1, 1)  # a folder
    outcomes.record(1, Status.DELETED, None, 1, 1)  # a file
    outcomes.record(2, Status.DELETED, "already gone", 0, 0)
    outcomes.record(3, Status.SKIPPED, "in use", 0, 0)
    outcomes.record(4, Status.SKIPPED, "in use", 0, 0)
    assert outcomes.whole_folders == 1
    assert ApplyResult(outcomes, ("/r/emptied",), 0.0).folders == 2
