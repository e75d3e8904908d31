"""The plot helpers every experiment's figures share: a row of axes, and runs over seeds as points with their
means as a line."""

from __future__ import annotations

import matplotlib.pyplot as plt


def plot_runs(ax, runs, x: str, by: str, y: str, styles: dict | None = None, spread: float = 0.0):
    """One marker per run (row of `runs`) and a line through the means over seeds, per group of `by`,
    `y` against `x`. `styles` maps a group to (color, marker, linestyle); `spread` sets the groups' markers
    side by side, that far apart on x."""
    groups = list(runs.groupby(by, sort=False))
    for i, (key, group) in enumerate(groups):
        color, marker, line = (styles or {}).get(key, (f"C{i}", "o", "-"))
        offset = spread * (i - (len(groups) - 1) / 2)
        ax.scatter(group[x] + offset, group[y], color=color, marker=marker, s=14, alpha=0.6)
        means = group.groupby(x)[y].mean()
        ax.plot(means.index, means.to_numpy(), color=color, linestyle=line, marker=marker, label=key)


def new_figure(ncols: int, width: float = 5.0, height: float = 3.6):
    """A row of `ncols` axes, the size the notebooks use."""
    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False)
    return fig, axes[0]
