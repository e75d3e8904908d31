"""cnnlab.sweep: the grid of conditions, each decided by the main claim's rule, where the claim holds, the trend
along an axis, and the verdict map."""

import math

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from cnnlab import sweep  # noqa: E402
from cnnlab.compare import above, not_below, paired_difference, paired_ratio  # noqa: E402
from cnnlab.rules import at_least  # noqa: E402
from cnnlab.suite.results import Record  # noqa: E402

RULE = above(3.0, why="half the anchor")
not_below_one = not_below(-1.0)


def test_grid_varies_the_first_axis_slowest():
    assert sweep.grid({"depth": [4, 8], "init": ["a", "b", "c"]}) == [
        {"depth": d, "init": i} for d in (4, 8) for i in ("a", "b", "c")]


def test_grid_refuses_an_empty_axis():
    with pytest.raises(ValueError, match=r"empty: \['init'\]"):
        sweep.grid({"depth": [4], "init": []})


def test_decided_applies_the_rule_of_the_main_claim():
    row = sweep.decided({"depth": 8}, paired_ratio([400, 420, 390], [100, 100, 100]), RULE)
    assert row["depth"] == 8 and row["verdict"] == "reproduced"
    assert row["mean"] == pytest.approx((4.0 * 4.2 * 3.9) ** (1 / 3))
    assert row["per_seed"] == "4 4.2 3.9" and row["bound"] == ""
    slower = sweep.decided({"depth": 4}, paired_ratio([50, 60, 55], [100, 100, 100]), RULE)
    assert slower["verdict"] == "not_reproduced"


def test_decided_marks_censored_ratios_and_unmeasured_conditions():
    row = sweep.decided({"depth": 4}, paired_ratio([None, None], [100, 200], cap=400), RULE)
    assert row["bound"] == ">=" and row["per_seed"] == ">=4 >=2"
    nothing = sweep.decided({"depth": 4}, paired_ratio([None], [None], cap=400), RULE)
    assert nothing["verdict"] == "not_applicable" and math.isnan(nothing["mean"])


def test_decided_refuses_a_rule_on_one_number():
    with pytest.raises(TypeError, match="single number"):
        sweep.decided({}, paired_ratio([2, 3], [1, 1]), at_least(1))


def table_of(verdict_pairs):
    """A sweep table from (depth, per-seed ratios) pairs."""
    return pd.DataFrame([sweep.decided({"depth": d}, paired_ratio(ratios, [1.0] * len(ratios)), RULE)
                         for d, ratios in verdict_pairs])


@pytest.mark.parametrize("pairs, verdict, held", [
    ([(4, [0.5, 0.6, 0.55]), (8, [4.0, 4.2, 3.9])], "reproduced", 1),
    ([(4, [0.5, 0.6, 0.55]), (8, [1.5, 1.6, 1.55])], "partial", 0),
    ([(4, [0.5, 0.6, 0.55]), (8, [0.4, 0.5, 0.45])], "not_reproduced", 0),
    ([(4, [0.5, 0.6, 0.55]), (8, [0.5, 2.0, 1.0])], "inconclusive", 0),
])
def test_holds_claim_counts_the_conditions_where_the_claim_is_reproduced(tmp_path, pairs, verdict, held):
    rec = Record("99_toy", "toy", tmp_path)
    table = table_of(pairs)
    claim = sweep.holds_claim(rec, "toy.holds", "where", table, ["depth"], RULE, "x", "test", main="toy.main")
    assert claim["verdict"] == verdict and claim["measured"] == held
    assert claim["expected"] == ">= 1 of 2 conditions"
    if held:
        assert "depth 8: 4.03 x" in claim["note"]
    else:
        assert "nowhere in the swept range" in claim["note"]
        highest = table.loc[table["mean"].idxmax()]  # the rule wants the ratio above 3: the highest is closest
        assert f"closest: depth {highest.depth}: {highest['mean']:.3g} x ({highest.verdict})" in claim["note"]


def test_holds_rule_refuses_a_count_the_verdicts_do_not_give():
    with pytest.raises(ValueError, match="2 conditions reproduced"):
        sweep.holds_rule(["reproduced", "partial"]).decide(2)


def test_trend_claim_reports_last_over_first_level(tmp_path):
    rec = Record("99_toy", "toy", tmp_path)
    table = pd.DataFrame([sweep.decided({"depth": d, "init": i}, paired_ratio([r, r], [1.0, 1.0]), RULE)
                          for d, i, r in [(4, "a", 0.5), (4, "b", 2.0), (8, "a", 2.0), (8, "b", 8.0)]])
    claim = sweep.trend_claim(rec, "toy.trend", "ratio grows with depth", table, "depth", "x", "test", log=True)
    assert claim["measured"] == pytest.approx(4.0)  # geometric means 1 -> 4
    assert claim["verdict"] == "not_applicable" and "4: 1 x, 8: 4 x" in claim["note"]
    differences = pd.DataFrame([sweep.decided({"epochs": e}, paired_difference([v, v + 1], [0, 0]), RULE)
                                for e, v in [(1, -10.0), (2, -4.0)]])
    assert sweep.trend_claim(rec, "toy.trend2", "gap closes", differences, "epochs", "pp",
                             "test")["measured"] == pytest.approx(6.0)


def test_plot_draws_one_panel_per_value_and_a_cell_per_condition():
    table = pd.DataFrame([sweep.decided({"depth": d, "init": i, "threshold": t}, paired_ratio([2, 3], [1, 1]), RULE)
                          for t in (0.25, 0.1) for d in (4, 8, 12) for i in ("a", "b")])
    fig = sweep.plot(table, "depth", "init", "threshold", title="ratio")
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["threshold 0.25", "threshold 0.1"]
    assert [len(ax.texts) for ax in panels] == [6, 6]
    assert panels[0].images[0].get_array().shape == (2, 3)


def test_by_epoch_decides_every_epoch_of_the_same_runs():
    curves = pd.DataFrame([dict(head=h, seed=s, epoch=e, val_accuracy=acc)
                           for h, base in (("fc", 0.80), ("gap", 0.70)) for s in (0, 1, 2)
                           for e, acc in ((1, base + 0.01 * s), (2, 0.85 + 0.001 * s + (base == 0.70) * 0.001))])
    rows = sweep.by_epoch(curves, "head", "gap", "fc", {"width": 128}, not_below_one)
    assert [(r["width"], r["epochs"]) for r in rows] == [(128, 1), (128, 2)]
    assert rows[0]["mean"] == pytest.approx(-10.0) and rows[0]["verdict"] == "not_reproduced"
    assert rows[1]["mean"] == pytest.approx(0.1) and rows[1]["verdict"] == "reproduced"
