"""Experiment 08: the module's helpers (exact), then the smoke profile: the transfer grid and the frozen vs
fine-tuned sweep, each claim's per-seed values, its runs at plateau and its half-budget value recomputed from
the recorded tables."""

import keras
import numpy as np
import pandas as pd
import pytest
from conftest import claims_of, table_of

from cnnlab.compare import paired_difference
from cnnlab.experiments import transfer_learning as exp

pytestmark = pytest.mark.xdist_group("08_transfer_learning")  # its tests share one worker, which runs its smoke notebook


def test_shrink_averages_blocks_and_refuses_sizes_that_do_not_divide():
    images = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    np.testing.assert_array_equal(exp.shrink(images, 2)[0, :, :, 0], [[2.5, 4.5], [10.5, 12.5]])
    np.testing.assert_array_equal(exp.shrink(images, 4), images)
    assert exp.shrink(np.zeros((3, 28, 28, 1), np.uint8), 14).dtype == np.float32
    with pytest.raises(ValueError, match=r"^cannot average 4x4 images down to 3x3$"):
        exp.shrink(images, 3)


def test_check_refuses_a_net_of_other_than_five_conv_layers_and_other_image_sizes():
    good = dict(conv_filters=[4, 4, 8, 8, 8], image_size=14)
    exp.check(good)
    with pytest.raises(ValueError, match=r"^conv_filters needs the five conv layers' filters, got 2: \[4, 4\]$"):
        exp.check(dict(good, conv_filters=[4, 4]))
    with pytest.raises(ValueError, match=r"^image_size 20 is not allowed \(allowed: 14, 28\)$"):
        exp.check(dict(good, image_size=20))


def test_protocol_refuses_other_image_sizes_and_layouts():
    plateau = exp.Plateau("val_accuracy", 0.003, 4)
    protocol = exp.Protocol([4, 4, 8, 8, 8], 8, 0.01, 0.9, 32, 14, plateau, 20)
    assert protocol.layout == [4, 4, "M", 8, 8, "M", 8, "M"]
    assert protocol.net(0).input_shape == (None, 14, 14, 1) and protocol.net(0).output_shape == (None, 5)
    with pytest.raises(ValueError, match=r"^image_size 20 is not allowed \(allowed: 14, 28\)$"):
        exp.Protocol([4, 4, 8, 8, 8], 8, 0.01, 0.9, 32, 20, plateau, 20)
    with pytest.raises(ValueError, match=r"^conv_filters needs the five conv layers' filters, got 2"):
        exp.Protocol([4, 4], 8, 0.01, 0.9, 32, 14, plateau, 20)


def test_half_data_holds_out_training_images_and_keeps_the_test_set_apart():
    ds = exp.half_data((1, 5, 7, 8, 9), 1000, 500, 14, 0)
    assert (len(ds.x_train), len(ds.x_val), len(ds.x_test)) == (29000, 1000, 500)
    assert ds.x_train.shape[1:] == ds.x_val.shape[1:] == ds.x_test.shape[1:] == (14, 14, 1)
    assert sorted(np.unique(ds.y_val)) == [0, 1, 2, 3, 4]
    # the held-out images are none of the training images
    train = {row.tobytes() for row in ds.x_train}
    assert not any(row.tobytes() in train for row in ds.x_val)
    subset = exp.training_subset(ds, 300, 0)
    assert len(subset.x_train) == 300 and subset.x_val is ds.x_val and subset.x_test is ds.x_test


def test_test_accuracy_counts_top_one_hits_in_batches():
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Identity()(inputs))
    x = np.array([[1, 0], [0, 1], [1, 0], [0, 1], [1, 0]], np.float32)
    assert exp.test_accuracy(model, x, np.array([0, 1, 1, 1, 0]), batch=2) == 0.8


def test_cells_take_per_seed_values_and_the_evidence_of_the_runs_in_them():
    runs = pd.DataFrame(dict(per_class=[6, 6, 6, 6, 40, 40], method=["a", "a", "b", "b", "a", "a"],
                             seed=[1, 0, 0, 1, 0, 1], accuracy=[0.6, 0.5, 0.4, 0.3, 0.9, 0.8],
                             at_plateau=[True, True, False, True, True, True]))
    cells = exp.Cells(runs, ("per_class", "method"))
    np.testing.assert_array_equal(cells.values((6, "a"), "accuracy"), [0.5, 0.6])
    found = cells.evidence([(6, "a"), (6, "b")], half=0.25)
    assert (found.about, found.at_plateau, found.runs, found.half) == ("trained", 3, 4, 0.25)


def test_transfer_grid_and_claims_follow_from_the_tables(smoke_results):
    results = smoke_results["08_transfer_learning"]
    claims = claims_of(results)
    sources = table_of(results, "source_nets")
    assert len(sources) == 8 and not sources.reused.any()  # 2 splits x (baseA, baseB) x 2 seeds, trained fresh
    assert set(sources.stop) <= {"plateau", "cap", "diverged"} and (sources.trained <= 10).all()
    grid = table_of(results, "transfer_runs")
    # random: BnB, BnB+, AnB, AnB+ at n = 1, 3, 6; dissimilar: AnB at n = 6; two seeds each
    assert len(grid) == (4 * 3 + 1) * 2
    assert sorted(set(zip(grid.split, grid.variant, grid.n))) == [("dissimilar", "AnB", 6)] + [
        ("random", v, n) for v in ("AnB", "AnB+", "BnB", "BnB+") for n in (1, 3, 6)]
    assert (grid.trained <= 5).all()  # the cap

    runs = pd.concat([grid, sources[sources.net == "baseB"]], ignore_index=True)

    def cell(split, variant, n):
        return runs[(runs.split == split) & (runs.variant == variant) & (runs.n == n)].sort_values("seed")

    def acc(split, variant, n, column="accuracy"):
        return cell(split, variant, n)[column].to_numpy()

    def at_plateau(*cells):
        chosen = pd.concat([cell(*c) for c in cells])
        return [int(chosen.at_plateau.sum()), len(chosen)]

    base = ("random", "baseB", 0)
    first = claims["transfer.random.anb.n1"]
    assert first["per_seed"] == pytest.approx(list(100 * (acc("random", "AnB", 1) - acc(*base))))
    assert first["decided_by"] == {"rule": "not_below", "bound": -1.0}
    assert first["about"] == "trained" and first["at_plateau"] == at_plateau(("random", "AnB", 1), base)
    assert first["half_budget"]["measured"] == pytest.approx(
        paired_difference(acc("random", "AnB", 1, "half_accuracy"), acc(*base, "half_accuracy"), scale=100).mean)
    falls = claims["transfer.random.anb.falls"]
    assert falls["per_seed"] == pytest.approx(list(100 * (acc("random", "AnB", 6) - acc("random", "AnB", 1))))

    def mean_over_n(variant, reference, ns=(1, 3, 6), column="accuracy"):
        ref = {n: acc(*base, column) if reference == "baseB" else acc("random", reference, n, column) for n in ns}
        return np.mean([acc("random", variant, n, column) - ref[n] for n in ns], axis=0) * 100

    recovers = claims["transfer.random.fine_tuning_recovers"]
    assert recovers["per_seed"] == pytest.approx(list(mean_over_n("AnB+", "AnB")))
    assert recovers["at_plateau"] == at_plateau(*[("random", v, n) for v in ("AnB+", "AnB") for n in (1, 3, 6)])
    assert recovers["half_budget"]["measured"] == pytest.approx(np.mean(mean_over_n("AnB+", "AnB", column="half_accuracy")))
    beats = claims["transfer.random.anb_plus_beats_base"]
    assert beats["per_seed"] == pytest.approx(list(mean_over_n("AnB+", "baseB")))
    # the three n share baseB's runs: 6 AnB+ runs and baseB's 2, each run counted once
    assert beats["at_plateau"] == at_plateau(*[("random", "AnB+", n) for n in (1, 3, 6)], base)
    assert beats["at_plateau"][1] == 8 and "its control BnB+" in beats["note"]
    control = claims["transfer.random.anb_plus_beats_bnb_plus"]
    assert control["per_seed"] == pytest.approx(list(mean_over_n("AnB+", "BnB+")))
    assert control["decided_by"] == {"rule": "above", "bound": 1.0}
    dip = acc("random", "BnB", 3) - acc(*base)
    assert claims["transfer.random.bnb_dip"]["per_seed"] == pytest.approx(list(100 * dip))
    drop = {s: acc(s, "AnB", 6) - acc(s, "baseB", 0) for s in ("random", "dissimilar")}
    assert claims["transfer.dissimilar.drop_larger"]["per_seed"] == pytest.approx(
        list(100 * (drop["dissimilar"] - drop["random"])))
    # every claim here rests on trained nets: decided only with each run at plateau and the same verdict at half
    for claim in claims.values():
        assert claim["about"] == "trained"
        k, n = claim["at_plateau"]
        if claim["verdict"] in ("reproduced", "partial", "not_reproduced"):
            assert k == n and claim["half_budget"]["verdict"] == claim["verdict"]


def test_frozen_vs_fine_tuned_sweep(smoke_results):
    results = smoke_results["08_transfer_learning"]
    claims = claims_of(results)
    sweep = table_of(results, "sweep_runs")
    assert len(sweep) == 2 * 3 * 2  # sizes 6 and 30 per class x three methods x two seeds

    def acc(per_class, method, column="accuracy"):
        rows = sweep[(sweep.per_class == per_class) & (sweep.method == method)].sort_values("seed")
        return rows[column].to_numpy()

    small = claims["transfer.sweep.small.frozen_beats_scratch"]
    assert small["per_seed"] == pytest.approx(list(100 * (acc(6, "frozen") - acc(6, "scratch"))))
    assert small["half_budget"]["measured"] == pytest.approx(
        100 * np.mean(acc(6, "frozen", "half_accuracy") - acc(6, "scratch", "half_accuracy")))
    assert small["at_plateau"][1] == 4
    assert claims["transfer.sweep.small.freezing_suffices"]["decided_by"] == {"rule": "not_above", "bound": 1.0}
    assert claims["transfer.sweep.large.fine_tuning_wins"]["per_seed"] == pytest.approx(
        list(100 * (acc(30, "fine-tuned") - acc(30, "frozen"))))
