"""Paired comparisons over seeds, and the rules that turn them into verdicts.

Every configuration of a comparison is built and fed from the same seed, so the comparison is decided
on the per-seed differences (or ratios): their mean and a Student-t interval with n - 1 degrees of
freedom. A verdict follows from where that interval lies relative to the value of no effect (`null`:
0 for a difference, 1 for a ratio) and to the claim's minimum effect:

- `reproduced`: the interval lies on the paper's side, beyond the minimum effect;
- `partial`: on the paper's side and clear of the null, but not beyond the minimum effect;
- `not_reproduced`: the interval lies on the other side of the null;
- `inconclusive`: the interval contains the null (the seeds disagree, or there are too few of them).

Claims of *no* effect ("depth does not hurt") are reproduced when the interval stays within a stated
margin and not reproduced when it lies wholly on the side the paper says the effect is absent from.
A verdict never contradicts the per-seed values shown beside it: when every seed points against the
paper, the claim is neither reproduced nor partial.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats

from cnnlab import convergence
from cnnlab.rules import Rule, explain

LEVEL = 0.95  # two-sided confidence level of every interval
INTERVAL = f"the {round(100 * LEVEL)}% Student-t interval of the per-seed values"
CENSORED = (">=", "<=")  # a per-seed value that is a bound: the true value is at least / at most it


@dataclass(frozen=True)
class SeedEstimate:
    """A quantity measured once per seed: the values, their mean and a Student-t interval around it.

    For a ratio (`log=True`) the mean and interval are computed on the logarithms and mapped back:
    the mean is the geometric mean. `censored[i]` is "" for a measured value, ">=" or "<=" for a bound
    (a run that never reached its threshold within the step cap)."""

    values: tuple[float, ...]
    mean: float
    low: float
    high: float
    null: float
    log: bool
    censored: tuple[str, ...]
    level: float = LEVEL
    left_out: int = 0  # seeds that measured nothing (neither side reached its threshold)

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def bound(self) -> str:
        """">=" or "<=" when the mean itself is only a bound (all censoring one way), "?" when censoring
        goes both ways (the mean is neither), "" when every value was measured."""
        kinds = {c for c in self.censored if c}
        return kinds.pop() if len(kinds) == 1 else ("?" if kinds else "")

    def as_record(self) -> dict:
        """The fields a claim stores in results.json."""
        return dict(per_seed=list(self.values), interval=[self.low, self.high], level=self.level, null=self.null,
                    log=self.log, censored=list(self.censored), n_seeds=self.n, seeds_left_out=self.left_out)


def over_seeds(values, null: float = 0.0, log: bool = False, censored=None, level: float = LEVEL) -> SeedEstimate:
    """Mean and Student-t interval of per-seed `values` (on the log scale when `log`).

    One value gives an unbounded interval (nothing is known about the spread), so any verdict on it
    is inconclusive."""
    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError(f"over_seeds needs a non-empty list of per-seed values, got {values.tolist()}")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"per-seed values must be finite, got {values.tolist()}")
    if log and np.any(values <= 0):
        raise ValueError(f"a ratio's per-seed values must be positive, got {values.tolist()}")
    censored = tuple(censored or [""] * len(values))
    if len(censored) != len(values) or any(c not in ("", *CENSORED) for c in censored):
        raise ValueError(f"censored must hold '', '>=' or '<=' per seed, got {list(censored)}")
    scaled = np.log(values) if log else values
    center = float(scaled.mean())
    if len(values) < 2:
        half = math.inf
    else:
        half = float(stats.t.ppf(0.5 + level / 2, len(values) - 1) * scaled.std(ddof=1) / math.sqrt(len(values)))
    low, high = center - half, center + half
    if log:
        center, low, high = math.exp(center), math.exp(low) if math.isfinite(low) else 0.0, math.exp(high)
    return SeedEstimate(tuple(float(v) for v in values), center, low, high, float(null), log, censored, level)


def paired_difference(a, b, scale: float = 1.0) -> SeedEstimate:
    """Per-seed `scale * (a[i] - b[i])` (scale 100 turns fractions into percentage points)."""
    a, b = _paired(a, b)
    return over_seeds(scale * (a - b))


def paired_ratio(a, b, cap: float | None = None) -> SeedEstimate | None:
    """Per-seed `a[i] / b[i]`, for example steps to a threshold. A None entry never got there within
    `cap`: it enters as `cap`, and the ratio is marked as a bound (">=" when only `a` is capped, "<="
    when only `b` is). A seed where neither got there says nothing about the ratio and is left out
    (counted in `left_out`); None when no seed is left."""
    if cap is None and any(v is None for v in [*a, *b]):
        raise ValueError("paired_ratio: a value that never reached its threshold needs the step cap")
    if len(a) != len(b):
        raise ValueError(f"a paired comparison needs one value per seed on both sides, got {len(a)} and {len(b)}")
    pairs = [(x, y) for x, y in zip(a, b) if not (x is None and y is None)]
    if not pairs:
        return None
    censored = [">=" if x is None else "<=" if y is None else "" for x, y in pairs]
    top, bottom = _paired([cap if x is None else x for x, _ in pairs], [cap if y is None else y for _, y in pairs])
    return replace(over_seeds(top / bottom, null=1.0, log=True, censored=censored), left_out=len(a) - len(pairs))


def _paired(a, b) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError(f"a paired comparison needs one value per seed on both sides, got {len(a)} and {len(b)}")
    return a, b


def mean_spread(values) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value) of per-seed measurements."""
    values = np.asarray(values, dtype=float)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def per_seed(runs, column, **where) -> list:
    """`column` of the runs that match every `where` (column=value), in seed order: one side of a paired
    comparison. `runs` is a DataFrame of per-seed rows or a list of run records (as `train.run_steps` returns,
    where a threshold never reached is None)."""
    records = runs.to_dict("records") if hasattr(runs, "to_dict") else runs
    matching = [r for r in records if all(r[key] == value for key, value in where.items())]
    return [r[column] for r in sorted(matching, key=lambda r: r["seed"])]


def summarise(runs, by, columns, first=()):
    """One row per group of `runs` (a DataFrame of per-seed rows) in order of appearance: the group's
    keys, the first value of each of `first` (the same in every seed), and for each of `columns` its
    mean over seeds and `<column>_sd`, the sample standard deviation."""
    import pandas as pd

    by = [by] if isinstance(by, str) else list(by)
    rows = []
    for key, group in runs.groupby(by, sort=False):
        row = dict(zip(by, key if isinstance(key, tuple) else (key,)))
        row.update({column: group[column].iloc[0] for column in first})
        for column in columns:
            row[column], row[f"{column}_sd"] = mean_spread(group[column])
        rows.append(row)
    return pd.DataFrame(rows)


# --- rules ------------------------------------------------------------------------------------------


def above(minimum: float, why: str = "") -> Rule:
    """The paper says the quantity lies above its null; reproduced when the interval lies above `minimum`."""
    return _effect(+1, minimum, why, dict(rule="above", bound=minimum))


def below(maximum: float, why: str = "") -> Rule:
    """The paper says the quantity lies below its null; reproduced when the interval lies below `maximum`."""
    return _effect(-1, maximum, why, dict(rule="below", bound=maximum))


def not_above(margin: float, why: str = "") -> Rule:
    """The paper says the quantity does not exceed its null (beyond `margin`): no harm, no gain."""
    return _no_effect(+1, margin, why, dict(rule="not_above", bound=margin))


def not_below(margin: float, why: str = "") -> Rule:
    """The paper says the quantity does not fall below its null (beyond `margin`)."""
    return _no_effect(-1, margin, why, dict(rule="not_below", bound=margin))


def decide_again(claim: dict) -> str:
    """The verdict of a stored comparison claim, decided anew from its per-seed values and its rule, and for
    a trained claim from its runs at plateau and its verdict at half the budget."""
    est = over_seeds(claim["per_seed"], null=claim["null"], log=claim["log"], censored=claim["censored"],
                     level=claim["level"])
    spec = claim["decided_by"]
    verdict = RULES[spec["rule"]](spec["bound"]).decide(est)
    if "at_plateau" not in claim:
        return verdict
    half = claim["half_budget"]
    return convergence.limit(verdict, tuple(claim["at_plateau"]), half and half["verdict"])[0]


def _effect(sign: int, beyond: float, why: str, spec: dict) -> Rule:
    side, other = ("above", "below") if sign > 0 else ("below", "above")
    text = (f"{INTERVAL} wholly {side} {_num(beyond)}: reproduced; wholly {side} no effect but not "
            f"{side} {_num(beyond)}: partial; wholly {other} no effect: not reproduced; containing no effect: "
            "inconclusive")

    def decide(est: SeedEstimate) -> str:
        near, far = (est.low, est.high) if sign > 0 else (-est.high, -est.low)
        null, limit = sign * est.null, sign * beyond
        if near > limit:
            verdict = "reproduced"
        elif near > null:
            verdict = "partial"
        elif far < null:
            return "not_reproduced"
        else:
            return "inconclusive"
        return _not_against_every_seed(verdict, est, lambda v: sign * v < null)

    return Rule(explain(text, why), decide, takes_seeds=True, spec=spec)


def _no_effect(sign: int, margin: float, why: str, spec: dict) -> Rule:
    side = "above" if sign > 0 else "below"
    text = (f"{INTERVAL} wholly {side} no effect: not reproduced; otherwise, when it stays "
            f"{'below' if sign > 0 else 'above'} {_num(margin)}: reproduced; else inconclusive")

    def decide(est: SeedEstimate) -> str:
        near, far = (est.low, est.high) if sign > 0 else (-est.high, -est.low)
        null = sign * est.null
        if near > null:
            return "not_reproduced"
        if far <= sign * margin:
            return _not_against_every_seed("reproduced", est, lambda v: sign * v > null)
        return "inconclusive"

    return Rule(explain(text, why), decide, takes_seeds=True, spec=spec)


RULES = {"above": above, "below": below, "not_above": not_above, "not_below": not_below}


def _not_against_every_seed(verdict: str, est: SeedEstimate, against) -> str:
    """`verdict`, unless every seed points against the paper: then the seeds decide, inconclusively."""
    return "inconclusive" if all(against(v) for v in est.values) else verdict


def _num(value: float) -> str:
    return f"{value:.6g}"
