"""The shared plot helpers."""

import matplotlib.pyplot as plt
import numpy as np

from cnnlab import plots


def test_plot_runs_draws_every_run_and_a_line_through_each_group_s_means():
    import pandas as pd

    runs = pd.DataFrame(dict(method=["x", "x", "x", "x", "y", "y"], size=[1, 1, 2, 2, 1, 2], seed=[0, 1, 0, 1, 0, 0],
                             acc=[0.2, 0.4, 0.6, 1.0, 0.5, 0.7]))
    fig, axes = plots.new_figure(1)
    plots.plot_runs(axes[0], runs, "size", "method", "acc", styles={"y": ("red", "s", "--")}, spread=0.2)
    lines = axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["x", "y"]
    np.testing.assert_allclose(lines[0].get_ydata(), [0.3, 0.8])
    assert lines[1].get_color() == "red" and lines[1].get_linestyle() == "--"
    offsets = [c.get_offsets() for c in axes[0].collections]
    assert [len(o) for o in offsets] == [4, 2]
    np.testing.assert_allclose(offsets[0][:, 0], [0.9, 0.9, 1.9, 1.9])  # x's markers 0.1 left of their size
    plt.close(fig)
