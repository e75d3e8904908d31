"""cnnlab.rules: the verdict rules on one measured value, their text and their bounds."""

import pytest

from cnnlab.rules import at_least, at_most, between, exact, relative, within


def verdicts(rule, values):
    return [rule.decide(v) for v in values]


def test_within_boundaries():
    rule = within(10, 0.5)
    assert verdicts(rule, [10, 10.5, 9.5, 10.25, 10.5000001, 9.4999999, 11, -10]) == [
        "reproduced", "reproduced", "reproduced", "reproduced",
        "not_reproduced", "not_reproduced", "not_reproduced", "not_reproduced"]
    assert rule.text == "|measured - 10| <= 0.5"


def test_within_partial():
    rule = within(138, 0.5, partial_tol=2, why="the slide rounds to millions")
    assert verdicts(rule, [138.5, 137.5, 138.75, 140, 136, 140.0001, 135.9, 0]) == [
        "reproduced", "reproduced", "partial", "partial", "partial",
        "not_reproduced", "not_reproduced", "not_reproduced"]
    assert rule.text == "|measured - 138| <= 0.5 (partial if <= 2); the slide rounds to millions"


def test_within_states_large_values_exactly():
    rule = within(138357544, 0.5)
    assert rule.text == "|measured - 138357544| <= 0.5"
    assert verdicts(rule, [138357544, 138357545]) == ["reproduced", "not_reproduced"]


def test_relative_boundaries():
    rule = relative(200, 0.25)
    assert verdicts(rule, [200, 250, 150, 250.001, 149.999, -200]) == [
        "reproduced", "reproduced", "reproduced", "not_reproduced", "not_reproduced", "not_reproduced"]
    assert rule.text == "|measured - 200| <= 25% of 200"


def test_relative_partial_and_negative_expected():
    rule = relative(-8, 0.25, partial_frac=0.5, why="one seed")
    assert verdicts(rule, [-10, -6, -10.5, -12, -4, -12.01, -3.99, 8]) == [
        "reproduced", "reproduced", "partial", "partial", "partial",
        "not_reproduced", "not_reproduced", "not_reproduced"]
    assert rule.text == "|measured - -8| <= 25% of -8 (partial if <= 50%); one seed"


def test_relative_text_keeps_fractional_percent():
    rule = relative(100, 0.025, partial_frac=0.125)
    assert rule.text == "|measured - 100| <= 2.5% of 100 (partial if <= 12.5%)"
    assert verdicts(rule, [102.5, 102.75, 112.5, 113]) == ["reproduced", "partial", "partial", "not_reproduced"]


def test_exact():
    rule = exact(3)
    assert verdicts(rule, [3, 3.0, 2.999999, 3.000001, -3]) == [
        "reproduced", "reproduced", "not_reproduced", "not_reproduced", "not_reproduced"]
    assert rule.text == "measured == 3"
    assert exact(61100840, why="Keras counts biases").text == "measured == 61100840; Keras counts biases"


def test_at_least_and_at_most():
    low = at_least(0.9, why="accuracy")
    assert verdicts(low, [0.9, 0.95, 0.8999, -1]) == ["reproduced", "reproduced", "not_reproduced", "not_reproduced"]
    assert low.text == "measured >= 0.9; accuracy"
    high = at_most(0.05)
    assert verdicts(high, [0.05, 0, -1, 0.0501]) == ["reproduced", "reproduced", "reproduced", "not_reproduced"]
    assert high.text == "measured <= 0.05"


def test_bounds_allow_for_floating_point_rounding():
    assert within(0.3, 0.1).decide(0.4) == "reproduced"  # 0.4 - 0.3 == 0.10000000000000003
    assert within(0.3, 0.1).decide(0.4000001) == "not_reproduced"


def test_relative_rule_needs_a_non_zero_expected_value():
    with pytest.raises(ValueError, match="non-zero expected"):
        relative(0, 0.1)


@pytest.mark.parametrize(
    "rule, cases, text",
    [
        (between(0.5, 2), {0.5: "reproduced", 2: "reproduced", 0.49: "not_reproduced", 2.01: "not_reproduced"},
         "0.5 <= measured <= 2"),
        (between(0.5, 2, partial=(0.1, 10)), {0.3: "partial", 5: "partial", 11: "not_reproduced"},
         "0.5 <= measured <= 2 (partial if 0.1 <= measured <= 10)"),
        (at_least(0.9, partial=0.7), {0.95: "reproduced", 0.8: "partial", 0.6: "not_reproduced"},
         "measured >= 0.9 (partial if measured >= 0.7)"),
        (at_most(1e-2, partial=0.1), {1e-3: "reproduced", 0.05: "partial", 0.2: "not_reproduced"},
         "measured <= 0.01 (partial if measured <= 0.1)"),
    ],
)
def test_interval_rules(rule, cases, text):
    assert rule.text == text
    for measured, verdict in cases.items():
        assert rule.decide(measured) == verdict, measured
