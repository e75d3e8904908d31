"""cnnlab.compare: paired per-seed estimates, their Student-t interval, and the verdicts they decide."""

import math

import pytest

from cnnlab.compare import (
    above,
    below,
    mean_spread,
    not_above,
    not_below,
    over_seeds,
    paired_difference,
    paired_ratio,
)
from cnnlab.suite.results import Record


def test_mean_spread_uses_the_sample_standard_deviation():
    assert mean_spread([1.0, 3.0]) == (2.0, math.sqrt(2.0))
    assert mean_spread([0.5]) == (0.5, 0.0)


def test_interval_is_the_student_t_interval_with_n_minus_1_degrees_of_freedom():
    est = over_seeds([1.0, 2.0, 3.0])
    # mean 2, sd 1, t(0.975, 2) = 4.302653
    assert est.mean == 2.0
    assert est.low == pytest.approx(2.0 - 4.302653 / math.sqrt(3), abs=1e-6)
    assert est.high == pytest.approx(2.0 + 4.302653 / math.sqrt(3), abs=1e-6)
    assert est.n == 3 and est.null == 0.0 and est.censored == ("", "", "")


def test_one_seed_has_an_unbounded_interval_and_decides_nothing():
    est = over_seeds([5.0])
    assert (est.low, est.high) == (-math.inf, math.inf)
    assert above(1.0).decide(est) == "inconclusive"


def test_identical_seeds_give_a_point_interval():
    est = paired_difference([0.9, 0.8, 0.7], [0.8, 0.7, 0.6], scale=100)
    assert est.values == pytest.approx((10.0, 10.0, 10.0))
    assert est.low == pytest.approx(10.0) and est.high == pytest.approx(10.0)


def test_paired_difference_pairs_seeds_instead_of_pooling_them():
    # Unpaired, the spread of each side (0.1) would swallow the difference; paired, every seed agrees.
    a, b = [0.80, 0.90, 0.70], [0.79, 0.89, 0.69]
    est = paired_difference(a, b, scale=100)
    assert est.mean == pytest.approx(1.0)
    assert above(0.5).decide(est) == "reproduced"


def test_ratio_interval_is_geometric():
    est = paired_ratio([2.0, 8.0], [1.0, 2.0])
    assert est.mean == pytest.approx(math.sqrt(2.0 * 4.0))
    assert est.null == 1.0 and est.log
    assert est.low < est.mean < est.high


@pytest.mark.parametrize(
    "diffs, verdict",
    [
        ([-3.0, -2.5, -3.5], "not_reproduced"),  # consistently the wrong sign
        ([-1.0, 2.0, 0.5], "inconclusive"),  # the interval straddles zero
        ([0.30, 0.35, 0.25], "partial"),  # the right sign, clear of zero, below the minimum effect
        ([2.0, 2.2, 1.9], "reproduced"),  # clear and beyond the minimum effect of 1
    ],
)
def test_effect_verdicts_on_synthetic_seeds(diffs, verdict):
    assert above(1.0).decide(over_seeds(diffs)) == verdict
    assert below(-1.0).decide(over_seeds([-d for d in diffs])) == verdict


def test_effect_rule_on_ratios_uses_one_as_no_effect():
    assert above(3.0).decide(paired_ratio([10, 12, 9], [2, 2, 2])) == "reproduced"
    assert above(3.0).decide(paired_ratio([3, 3.3, 2.9], [2, 2, 2])) == "partial"
    assert above(3.0).decide(paired_ratio([150, 150, 150], [300, 250, 300])) == "not_reproduced"


@pytest.mark.parametrize(
    "diffs, verdict",
    [
        ([8.2, 0.3, 4.0], "inconclusive"),  # worse in every seed, but the interval reaches zero
        ([1.0, 1.5, 1.2], "not_reproduced"),  # worse, and the seeds agree
        ([0.1, -0.2, 0.05], "reproduced"),  # within the margin of 0.5 either way
        ([0.1, 0.2, 0.15], "not_reproduced"),  # a small harm, but one every seed shows
        ([-2.0, 1.0, 0.5], "inconclusive"),  # too spread to say
    ],
)
def test_no_effect_verdicts_on_synthetic_seeds(diffs, verdict):
    assert not_above(0.5).decide(over_seeds(diffs)) == verdict
    assert not_below(-0.5).decide(over_seeds([-d for d in diffs])) == verdict


def test_a_verdict_never_goes_against_every_seed():
    # Harmful in every seed, yet the interval stays under the margin: not a reproduction of "no harm".
    est = over_seeds([0.1, 0.3, 0.02])
    assert est.low < 0 < est.high <= 1.0
    assert not_above(1.0).decide(est) == "inconclusive"


def test_censored_ratios_are_marked_as_bounds():
    est = paired_ratio([None, None, None], [100, 120, 90], cap=450)
    assert est.censored == (">=", ">=", ">=") and est.bound == ">="
    assert est.values == pytest.approx((4.5, 3.75, 5.0))
    mixed = paired_ratio([None, 200], [100, None], cap=450)
    assert mixed.censored == (">=", "<=") and mixed.bound == "?"
    some = paired_ratio([None, None, 200], [None, 100, 100], cap=450)
    assert some.values == pytest.approx((4.5, 2.0)) and some.left_out == 1
    assert paired_ratio([None], [None], cap=450) is None
    with pytest.raises(ValueError, match="needs the step cap"):
        paired_ratio([None], [10])


def test_bad_per_seed_values_are_refused():
    with pytest.raises(ValueError, match="non-empty"):
        over_seeds([])
    with pytest.raises(ValueError, match="finite"):
        over_seeds([1.0, math.nan])
    with pytest.raises(ValueError, match="one value per seed on both sides, got 2 and 3"):
        paired_difference([1, 2], [1, 2, 3])


def test_a_claim_stores_per_seed_values_interval_and_censoring(tmp_path):
    rec = Record("x", "x", tmp_path)
    claim = rec.claim("x.ratio", "s", 6.0, paired_ratio([None, 300, 280], [100, 100, 100], cap=400), "x",
                      above(3.0), source="t")
    assert claim["per_seed"] == pytest.approx([4.0, 3.0, 2.8])
    assert claim["censored"] == [">=", "", ""] and claim["bound"] == ">="  # the mean is a lower bound
    assert claim["n_seeds"] == 3 and claim["level"] == 0.95 and claim["null"] == 1.0
    assert claim["measured"] == pytest.approx((4.0 * 3.0 * 2.8) ** (1 / 3))
    assert claim["interval"][0] < claim["measured"] < claim["interval"][1]
    assert claim["verdict"] == "partial"


def test_a_claim_with_nothing_measured_is_not_applicable(tmp_path):
    rec = Record("x", "x", tmp_path)
    claim = rec.claim("x.none", "s", 6.0, paired_ratio([None], [None], cap=10), "x", above(3.0), source="t")
    assert claim["verdict"] == "not_applicable" and claim["measured"] is None
    assert claim["rule"].startswith("nothing measured to decide on; the rule would be: the 95% Student-t")


def test_a_seed_rule_refuses_a_single_number_and_vice_versa(tmp_path):
    from cnnlab.rules import at_least

    rec = Record("x", "x", tmp_path)
    with pytest.raises(TypeError, match="needs per-seed values"):
        rec.claim("x.a", "s", 1, 2.0, "x", above(1.0), source="t")
    with pytest.raises(TypeError, match="needs a single number"):
        rec.claim("x.b", "s", 1, over_seeds([1.0, 2.0]), "x", at_least(1.0), source="t")


def test_a_stored_claim_is_decided_again_from_its_per_seed_values(tmp_path):
    import json

    from cnnlab.compare import decide_again

    rec = Record("x", "x", tmp_path)
    rec.claim("x.a", "s", 1, paired_difference([0.85, 0.76, 0.66], [0.9, 0.8, 0.7], scale=100), "pp",
              not_below(-1.0), source="t")
    rec.claim("x.b", "s", 6, paired_ratio([None, 300, 280], [100, 100, 100], cap=400), "x", above(3.0), source="t")
    stored = json.loads((rec.save()).read_text())["claims"]
    assert [c["decided_by"] for c in stored] == [{"rule": "not_below", "bound": -1.0}, {"rule": "above", "bound": 3.0}]
    assert [decide_again(c) for c in stored] == [c["verdict"] for c in stored] == ["not_reproduced", "partial"]


def test_summarise_gives_mean_and_spread_per_group_in_order():
    import pandas as pd

    from cnnlab.compare import summarise

    runs = pd.DataFrame(dict(config=["B", "B", "A", "A"], seed=[0, 1, 0, 1], params=[7, 7, 5, 5],
                             acc=[0.5, 0.7, 0.9, 0.9]))
    table = summarise(runs, "config", ["acc"], first=["params"])
    assert table.to_dict("records") == [
        dict(config="B", params=7, acc=pytest.approx(0.6), acc_sd=pytest.approx(math.sqrt(0.02))),
        dict(config="A", params=5, acc=pytest.approx(0.9), acc_sd=0.0),
    ]


def test_per_seed_selects_matching_rows_in_seed_order():
    import pandas as pd

    from cnnlab.compare import per_seed

    runs = pd.DataFrame(dict(config=["a", "b", "a", "b", "a"], n=[1, 1, 1, 1, 2], seed=[2, 0, 0, 1, 1],
                             acc=[0.3, 0.5, 0.1, 0.6, 0.9]))
    assert per_seed(runs, "acc", config="a", n=1) == [0.1, 0.3]
    assert per_seed(runs, "acc", config="b") == [0.5, 0.6]
    assert per_seed(runs, "acc", config="c") == []
    records = [dict(config="a", seed=1, steps=None), dict(config="a", seed=0, steps=450),
               dict(config="b", seed=0, steps=5)]
    assert per_seed(records, "steps", config="a") == [450, None]
