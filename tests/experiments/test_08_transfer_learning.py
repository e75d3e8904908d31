"""Experiment 08 in the smoke profile: the transfer grid and the frozen vs fine-tuned sweep, each claim's
per-seed values recomputed from the recorded tables."""

import numpy as np
import pytest
from conftest import claims_of, table_of


def test_transfer_grid_and_claims_follow_from_the_tables(smoke_results):
    results = smoke_results["08_transfer_learning"]
    claims = claims_of(results)
    sources = table_of(results, "source_nets")
    assert len(sources) == 8 and not sources.reused.any()  # 2 splits x (baseA, baseB) x 2 seeds, trained fresh
    grid = table_of(results, "transfer_runs")
    # random: BnB, AnB, AnB+ at n = 1, 3, 6; dissimilar: AnB at n = 1, 3, 6; two seeds each
    assert len(grid) == (3 * 3 + 3) * 2
    assert sorted(set(zip(grid.split, grid.variant))) == [
        ("dissimilar", "AnB"), ("random", "AnB"), ("random", "AnB+"), ("random", "BnB")]

    def acc(split, variant, n):
        if variant == "baseB":
            rows = sources[(sources.split == split) & (sources.net == "baseB")]
            return rows.sort_values("seed").test_acc.to_numpy()
        rows = grid[(grid.split == split) & (grid.variant == variant) & (grid.n == n)]
        return rows.sort_values("seed").accuracy.to_numpy()

    first = claims["transfer.random.anb.n1"]
    assert first["per_seed"] == pytest.approx(list(100 * (acc("random", "AnB", 1) - acc("random", "baseB", 0))))
    assert first["decided_by"] == {"rule": "not_below", "bound": -1.0}
    falls = claims["transfer.random.anb.falls"]
    assert falls["per_seed"] == pytest.approx(list(100 * (acc("random", "AnB", 6) - acc("random", "AnB", 1))))
    recovers = np.mean([acc("random", "AnB+", n) - acc("random", "AnB", n) for n in (1, 3, 6)], axis=0)
    assert claims["transfer.random.fine_tuning_recovers"]["per_seed"] == pytest.approx(list(100 * recovers))
    beats = np.mean([acc("random", "AnB+", n) - acc("random", "baseB", 0) for n in (1, 3, 6)], axis=0)
    assert claims["transfer.random.anb_plus_beats_base"]["per_seed"] == pytest.approx(list(100 * beats))
    dip = acc("random", "BnB", 3) - acc("random", "baseB", 0)
    assert claims["transfer.random.bnb_dip"]["per_seed"] == pytest.approx(list(100 * dip))
    drop = {s: acc(s, "AnB", 6) - acc(s, "baseB", 0) for s in ("random", "dissimilar")}
    assert claims["transfer.dissimilar.drop_larger"]["per_seed"] == pytest.approx(
        list(100 * (drop["dissimilar"] - drop["random"])))


def test_frozen_vs_fine_tuned_sweep(smoke_results):
    results = smoke_results["08_transfer_learning"]
    claims = claims_of(results)
    sweep = table_of(results, "sweep_runs")
    assert len(sweep) == 2 * 3 * 2  # sizes 6 and 30 per class x three methods x two seeds

    def acc(per_class, method):
        return sweep[(sweep.per_class == per_class) & (sweep.method == method)].sort_values("seed").accuracy.to_numpy()

    assert claims["transfer.sweep.small.frozen_beats_scratch"]["per_seed"] == pytest.approx(
        list(100 * (acc(6, "frozen") - acc(6, "scratch"))))
    assert claims["transfer.sweep.small.freezing_suffices"]["decided_by"] == {"rule": "not_above", "bound": 1.0}
    assert claims["transfer.sweep.large.fine_tuning_wins"]["per_seed"] == pytest.approx(
        list(100 * (acc(30, "fine-tuned") - acc(30, "frozen"))))
