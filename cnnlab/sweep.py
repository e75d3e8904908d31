"""Condition sweeps: under which conditions does a claim that did not reproduce at the main budget hold?

A sweep repeats a claim's paired comparison over a grid of conditions (depth, initialisation, training
budget, width, ...) and decides every condition by the claim's own rule (`cnnlab.compare`). The experiment
trains and measures; this module tabulates (`decided`, one row per condition), says where the claim holds
(`holds_claim`: the conditions where it is reproduced, or none in the swept range) and how the measured
value moves along one axis (`trend_claim`), and draws the verdicts as a map (`plot`). A budget in epochs costs
nothing extra: `by_epoch` decides every epoch of the same runs.
"""

from __future__ import annotations

import itertools

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import ListedColormap

from cnnlab.compare import SeedEstimate, paired_difference, per_seed
from cnnlab.rules import Rule

VERDICTS = ("not_reproduced", "inconclusive", "partial", "reproduced")  # in the order of the plot's colours
COLOURS = ("#d9705f", "#d8d8d8", "#a9d49a", "#3f9b4f")
HIGHER_IS_CLOSER = ("above", "not_below")  # `cnnlab.compare` rules under which a higher value is nearer the paper
NOT_DECIDED = "not_applicable"  # a condition where nothing was measured (no seed reached either threshold)


def grid(axes: dict) -> list[dict]:
    """Every combination of the axes' values, the first axis varying slowest:
    {"depth": [4, 8], "init": ["a", "b"]} -> [{"depth": 4, "init": "a"}, {"depth": 4, "init": "b"}, ...]."""
    empty = [name for name, values in axes.items() if not values]
    if empty:
        raise ValueError(f"every sweep axis needs at least one value; empty: {empty}")
    return [dict(zip(axes, values)) for values in itertools.product(*axes.values())]


def decided(condition: dict, estimate: SeedEstimate | None, rule: Rule) -> dict:
    """One row of a sweep table: the condition, the estimate's mean, interval, bound ('>=', '<=' for a
    ratio of censored runs) and per-seed values, and the verdict `rule` gives it (not_applicable when
    nothing was measured)."""
    if not rule.takes_seeds:
        raise TypeError(f"a sweep decides per-seed comparisons; rule '{rule.text}' judges a single number")
    if estimate is None:
        return dict(condition, mean=np.nan, low=np.nan, high=np.nan, bound="", per_seed="", verdict=NOT_DECIDED)
    return dict(condition, mean=estimate.mean, low=estimate.low, high=estimate.high, bound=estimate.bound,
                per_seed=" ".join(f"{c}{v:.4g}" for c, v in zip(estimate.censored, estimate.values)),
                verdict=rule.decide(estimate))


def by_epoch(curves: pd.DataFrame, by: str, a, b, condition: dict, rule: Rule, column: str = "val_accuracy") -> list:
    """One `decided` row per epoch of `curves` (a `cnnlab.train.histories_table`): the training budget as an axis
    measured along the way. Per seed, `column` of the run whose `by` is `a` minus that of `b`, in percentage
    points; `epochs` is added to the condition."""
    rows = []
    for epoch, runs in curves.groupby("epoch"):
        difference = paired_difference(per_seed(runs, column, **{by: a}), per_seed(runs, column, **{by: b}), scale=100)
        rows.append(decided(dict(condition, epochs=int(epoch)), difference, rule))
    return rows


def describe(row, axes=None) -> str:
    """A condition (its `axes`; every key of a condition dict by default) as text: 'depth 8, init he'."""
    return ", ".join(f"{axis} {row[axis]}" for axis in (row if axes is None else axes))


def holds_rule(verdicts) -> Rule:
    """How the verdict on "the claim holds somewhere in the sweep" follows from the conditions' verdicts;
    it decides on the number of conditions where the claim was reproduced."""
    verdicts = list(verdicts)
    text = ("reproduced in at least one swept condition: reproduced; otherwise partial in at least one: partial; "
            "not reproduced in every condition: not reproduced; else (some conditions inconclusive): inconclusive")

    def decide(reproduced: float) -> str:
        if reproduced != verdicts.count("reproduced"):
            raise ValueError(f"{reproduced} conditions reproduced, but the sweep's verdicts say "
                             f"{verdicts.count('reproduced')}")
        if reproduced >= 1:
            return "reproduced"
        if "partial" in verdicts:
            return "partial"
        decided_ = [v for v in verdicts if v != NOT_DECIDED]
        return "not_reproduced" if decided_ and all(v == "not_reproduced" for v in decided_) else "inconclusive"

    return Rule(text, decide)


def holds_claim(rec, id: str, statement: str, table: pd.DataFrame, axes, rule: Rule, unit: str, source: str,
                main: str = "") -> dict:
    """Record where the claim holds in `table` (rows of `decided` by the claim's `rule`, `axes` naming the
    condition columns): measured is the number of conditions where it was reproduced, the note lists them (and
    the partial ones) with their values, or says that it holds nowhere in the swept range and where it came
    closest (the highest value for a rule that wants it high, `above` or `not_below`; else the lowest)."""
    axes = list(axes)
    held = table[table.verdict == "reproduced"]
    partial = table[table.verdict == "partial"]

    def listed(rows):
        return "; ".join(f"{describe(r, axes)}: {r.bound}{r['mean']:.3g} {unit}" for _, r in rows.iterrows())

    measured_rows = table[table.verdict != NOT_DECIDED]
    parts = [f"{len(held)} of {len(table)} conditions reproduced" + (f" ({listed(held)})" if len(held) else "")]
    if len(partial):
        parts.append(f"partial in {listed(partial)}")
    if not len(held) and len(measured_rows):
        counts = measured_rows.verdict.value_counts()
        parts.append("reproduced nowhere in the swept range; verdicts: "
                     + ", ".join(f"{n} {v}" for v, n in counts.items()))
        high = rule.spec["rule"] in HIGHER_IS_CLOSER
        closest = measured_rows["mean"].idxmax() if high else measured_rows["mean"].idxmin()
        parts.append(f"closest: {listed(measured_rows.loc[[closest]])} ({measured_rows.verdict[closest]})")
    if len(measured_rows) < len(table):
        parts.append(f"{len(table) - len(measured_rows)} condition(s) measured nothing")
    if main:
        parts.append(f"each condition decided by the rule of {main}")
    return rec.claim(id, statement, f">= 1 of {len(table)} conditions", len(held), "conditions",
                     holds_rule(table.verdict), source=source, note="; ".join(parts))


def trend_claim(rec, id: str, statement: str, table: pd.DataFrame, axis: str, unit: str, source: str,
                log: bool = False) -> dict:
    """Report (not judge) how the measured value moves along `axis`: the value at its last level minus
    (over, when `log`) the value at its first, each the mean over the other conditions; every level's mean in
    the note."""
    measured_rows = table[table.verdict != NOT_DECIDED]
    levels = measured_rows.groupby(axis, sort=False)["mean"].apply(
        lambda v: float(np.exp(np.log(v).mean())) if log else float(v.mean()))
    levels = levels.reindex([v for v in dict.fromkeys(table[axis]) if v in levels.index])
    change = None
    if len(levels) >= 2:
        change = levels.iloc[-1] / levels.iloc[0] if log else levels.iloc[-1] - levels.iloc[0]
    note = (f"mean {'(geometric) ' if log else ''}over the other swept conditions per {axis}: "
            + ", ".join(f"{k}: {v:.3g} {unit}" for k, v in levels.items()))
    return rec.claim(id, statement, None, change, "x" if log else unit, None, source=source, note=note)


def plot(table: pd.DataFrame, x: str, y: str, panel: str | None = None, value_format: str = "{:.2g}",
         title: str = ""):
    """The verdict of every condition as a coloured cell (x against y, one panel per value of `panel`),
    annotated with its measured mean: where the claim holds is the green region."""
    panels = list(dict.fromkeys(table[panel])) if panel else [None]
    xs, ys = list(dict.fromkeys(table[x])), list(dict.fromkeys(table[y]))
    panel_width = max(2.0, 0.9 * len(xs))
    fig, axes = plt.subplots(1, len(panels), sharey=True, squeeze=False,
                             figsize=(2.4 + panel_width * len(panels) + 1.6, 1.5 + 0.55 * len(ys)))
    cmap = ListedColormap(COLOURS)
    for ax, value in zip(axes[0], panels):
        rows = table if panel is None else table[table[panel] == value]
        codes = np.full((len(ys), len(xs)), np.nan)
        for _, r in rows.iterrows():
            i, j = ys.index(r[y]), xs.index(r[x])
            if r.verdict in VERDICTS:
                codes[i, j] = VERDICTS.index(r.verdict)
            text = "n/a" if r.verdict == NOT_DECIDED else r.bound + value_format.format(r["mean"])
            ax.text(j, i, text, ha="center", va="center", fontsize=8)
        ax.imshow(codes, cmap=cmap, vmin=-0.5, vmax=len(VERDICTS) - 0.5, aspect="auto")
        ax.set_xticks(range(len(xs)), [str(v) for v in xs])
        ax.set_yticks(range(len(ys)), [str(v) for v in ys])
        ax.set(xlabel=x, title=f"{panel} {value}" if panel else "")
    axes[0][0].set_ylabel(y)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in COLOURS]
    fig.legend(handles, [v.replace("_", " ") for v in VERDICTS], loc="center right", fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1 - 1.4 / fig.get_figwidth(), 1))
    return fig
