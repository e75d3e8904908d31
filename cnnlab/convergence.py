"""Convergence, measured: did a trained run reach its plateau, and does a claim about trained nets decide the
same at half the budget?

A run monitors one quantity on a held-out split of its training images (never the test set), once per
measurement (an epoch, or every few steps). It has reached its plateau when the best value of its last
`patience` measurements improves on the best before them by less than `min_delta`: training stops there, or
at its cap, where the same test tells whether it was still improving.

A claim is about trained nets (final or best error, a train-test gap, degradation, transfer) or about
training itself (steps to a threshold, curves). A claim about trained nets is decided only when every run
behind it reached its plateau and the same rule gives the same verdict at half the budget (the same runs,
measured at half their length, or on a schedule that scales with the budget runs of half of it, branched off
them: `train.HalfRun`); otherwise it is `inconclusive`, budget-limited.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DECIDED = ("reproduced", "partial", "not_reproduced")
ABOUT = ("trained", "training")


@dataclass(frozen=True)
class Plateau:
    """Stop when `monitor` (a Keras log of the held-out split: "val_loss", or "val_accuracy", which is
    maximised) has not improved by at least `min_delta` over the last `patience` measurements. A run on a
    fixed schedule (`stop_early=False`) trains to its cap, where the same test says whether it plateaued."""

    monitor: str = "val_loss"
    min_delta: float = 0.01
    patience: int = 3
    stop_early: bool = True

    def __post_init__(self):
        if not self.monitor.startswith("val_"):
            raise ValueError(f"a plateau is monitored on the held-out split (a 'val_' log), got '{self.monitor}'")
        if self.patience < 1 or not self.min_delta > 0:
            raise ValueError(f"a plateau needs patience >= 1 and min_delta > 0, got {self.patience}, {self.min_delta}")

    @property
    def sign(self) -> int:
        """+1 where lower is better (a loss), -1 where higher is (an accuracy)."""
        return -1 if "acc" in self.monitor else 1

    def text(self) -> str:
        return (f"{self.monitor.removeprefix('val_')} on held-out training images improves by less than "
                f"{self.min_delta:g} over {self.patience} measurements")


def last_gain(values, plateau: Plateau) -> float:
    """How much the best of the last `patience` measurements improves on the best before them (0 when it does
    not; inf while there are too few measurements to tell)."""
    values = plateau.sign * np.asarray(values, dtype=float)
    if len(values) <= plateau.patience or not np.all(np.isfinite(values)):
        return math.inf
    return max(0.0, float(values[: -plateau.patience].min() - values[-plateau.patience:].min()))


def reached(values, plateau: Plateau) -> bool:
    """Whether the monitored `values` (one per measurement) have reached their plateau."""
    return last_gain(values, plateau) < plateau.min_delta


def record(values, plateau: Plateau, every: int, cap: int, diverged: bool) -> dict:
    """A run's convergence: `stop` ("plateau", "cap" or "diverged"), `at_plateau`, `best_at` (the step or
    epoch of its best monitored value), `last_gain` over its last `patience` measurements, `trained` (steps or
    epochs run) and `half_at` (the measurement at half of them, where the half-budget values are taken)."""
    n = len(values)
    best = int(np.nanargmin(plateau.sign * np.asarray(values, dtype=float))) if n else 0
    at_plateau = not diverged and reached(values, plateau)
    stop = "diverged" if diverged else ("plateau" if at_plateau and n * every < cap else "cap")
    return dict(stop=stop, at_plateau=at_plateau, best_at=(best + 1) * every, last_gain=last_gain(values, plateau),
                trained=n * every, half_at=half_measurement(n) * every)


def half_measurement(n: int) -> int:
    """The measurement (from 1) at half of `n`."""
    return max(1, math.ceil(n / 2))


@dataclass(frozen=True)
class Evidence:
    """What a trained claim rests on: `about` ("trained" or "training"), how many of the `runs` behind it
    reached their plateau, and (for a claim about trained nets) the value measured at half the budget, a
    number or a `cnnlab.compare.SeedEstimate`, decided by the claim's own rule."""

    about: str
    at_plateau: int
    runs: int
    half: object = None

    def __post_init__(self):
        if self.about not in ABOUT:
            raise ValueError(f"a trained claim is about one of {ABOUT}, got '{self.about}'")
        if not 0 <= self.at_plateau <= self.runs:
            raise ValueError(f"{self.at_plateau} of {self.runs} runs at plateau is impossible")


def evidence(runs, about: str = "trained", half=None, **where) -> Evidence:
    """The `Evidence` of the runs (a DataFrame of per-seed rows or run records with `at_plateau`) that match
    any of `where`'s alternatives: `config=["A", "D"]` takes the runs of both configurations."""
    records = runs.to_dict("records") if hasattr(runs, "to_dict") else runs
    chosen = [r for r in records if all(r[k] in (v if isinstance(v, (list, tuple, set)) else [v])
                                        for k, v in where.items())]
    return Evidence(about, sum(bool(r["at_plateau"]) for r in chosen), len(chosen), half)


def limit(verdict: str, at_plateau: tuple[int, int], half_verdict: str | None) -> tuple[str, str]:
    """A trained claim's verdict after the budget checks, and why it changed ("" when it did not): a decided
    verdict becomes inconclusive when a run was still improving at its cap, or when half the budget gives
    another verdict."""
    k, n = at_plateau
    if verdict not in DECIDED:
        return verdict, ""
    if k < n:
        return "inconclusive", f"budget-limited: {n - k} of {n} runs still improving at the cap ({verdict} as measured)"
    if half_verdict is not None and half_verdict != verdict:
        return "inconclusive", (f"budget-limited: {verdict} at the full budget but {half_verdict.replace('_', ' ')} "
                                "at half of it")
    return verdict, ""
