"""Verdict rules: how a claim's verdict follows from its measured value.

A `Rule` holds its text (stored with the claim, so a reader sees why it was decided) and the function that
decides. These rules judge one number; `cnnlab.compare` adds the rules that judge per-seed values by their
confidence interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Rule:
    """How a verdict follows from the measured value: `text` says it, `decide` applies it. A rule that
    `takes_seeds` decides on a `cnnlab.compare.SeedEstimate` (per-seed values and their interval); its
    `spec` (name and bound) is stored with the claim, so the verdict can be decided again from the record."""

    text: str
    decide: Callable
    takes_seeds: bool = False
    spec: dict | None = None


def within(expected: float, tol: float, partial_tol: float | None = None, why: str = "") -> Rule:
    """Reproduced when |measured - expected| <= tol; partial when <= partial_tol."""
    text = f"|measured - {_num(expected)}| <= {_num(tol)}"
    if partial_tol is not None:
        text += f" (partial if <= {_num(partial_tol)})"

    def decide(m):
        if abs(m - expected) <= tol + _slack(expected):
            return "reproduced"
        if partial_tol is not None and abs(m - expected) <= partial_tol + _slack(expected):
            return "partial"
        return "not_reproduced"

    return Rule(explain(text, why), decide)


def relative(expected: float, frac: float, partial_frac: float | None = None, why: str = "") -> Rule:
    """Reproduced when measured is within `frac` of expected (relative); partial within `partial_frac`."""
    if expected == 0:
        raise ValueError("a relative rule needs a non-zero expected value: use within()")
    text = f"|measured - {_num(expected)}| <= {_num(frac * 100)}% of {_num(expected)}"
    if partial_frac is not None:
        text += f" (partial if <= {_num(partial_frac * 100)}%)"

    def decide(m):
        err = abs(m - expected) / abs(expected)
        if err <= frac + 1e-12:
            return "reproduced"
        return "partial" if partial_frac is not None and err <= partial_frac + 1e-12 else "not_reproduced"

    return Rule(explain(text, why), decide)


def exact(expected: float, why: str = "") -> Rule:
    """Reproduced only when measured equals expected."""
    text = explain(f"measured == {_num(expected)}", why)
    return Rule(text, lambda m: "reproduced" if m == expected else "not_reproduced")


def at_least(bound: float, partial: float | None = None, why: str = "") -> Rule:
    """Reproduced when measured >= bound; partial when >= `partial`."""
    return between(bound, math.inf, None if partial is None else (partial, math.inf), why)


def at_most(bound: float, partial: float | None = None, why: str = "") -> Rule:
    """Reproduced when measured <= bound; partial when <= `partial`."""
    return between(-math.inf, bound, None if partial is None else (-math.inf, partial), why)


def between(low: float, high: float, partial: tuple[float, float] | None = None, why: str = "") -> Rule:
    """Reproduced when low <= measured <= high; partial inside the wider `partial` = (low, high)."""

    def interval(lo, hi):
        if math.isinf(hi):
            return f"measured >= {_num(lo)}"
        if math.isinf(lo):
            return f"measured <= {_num(hi)}"
        return f"{_num(lo)} <= measured <= {_num(hi)}"

    text = interval(low, high)
    if partial is not None:
        text += f" (partial if {interval(*partial)})"

    def decide(m):
        if low <= m <= high:
            return "reproduced"
        return "partial" if partial is not None and partial[0] <= m <= partial[1] else "not_reproduced"

    return Rule(explain(text, why), decide)


def _slack(expected: float) -> float:
    """Room for floating-point rounding in a bound (0.4 - 0.3 is 0.10000000000000003)."""
    return 1e-12 * max(1.0, abs(expected))


def _num(value: float) -> str:
    """A bound as the rule uses it: every significant digit (`:g` would print 138357544 as 1.38358e+08)."""
    return f"{value:.15g}"


def explain(text: str, why: str) -> str:
    """`text` and `why` joined by "; ", either left out when empty: a rule's text with the reason behind
    its bounds, a claim's note with what was learned after."""
    return "; ".join(part for part in (text, why) if part)
