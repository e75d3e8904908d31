"""cnnlab.train: seeded, deterministic training that stops on divergence instead of crashing."""

import keras
import numpy as np
import pytest

from cnnlab import callbacks, data, train


@pytest.fixture(scope="module")
def small():
    """512 Fashion-MNIST training images in [0, 1]."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("CNNLAB_DATA", raising=False)
        return data.prepare(n_train=512, seed=0)


def tiny_cnn(learning_rate=0.01, loss=None):
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(4, 3),  # linear: a ReLU net can die instead of diverging
        keras.layers.Flatten(),
        keras.layers.Dense(10),
    ])
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=learning_rate),
        loss=loss or keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def seeded_run(ds, seed, epochs=2, **kwargs):
    train.seed_everything(seed)
    model = tiny_cnn(**kwargs)
    result = train.fit(model, ds, epochs=epochs, batch_size=64, seed=seed, verbose=0)
    return result, [w.copy() for w in model.get_weights()]


def test_same_seed_same_losses_and_weights(small):
    first, w1 = seeded_run(small, seed=1)
    second, w2 = seeded_run(small, seed=1)
    assert len(first["loss"]) == 2
    assert all(np.isfinite(first["loss"]))
    assert first["loss"] == second["loss"]  # exact, not approximate
    assert len(w1) == len(w2) == 4
    for a, b in zip(w1, w2):
        assert a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    assert first["diverged_at_step"] is None and second["diverged_at_step"] is None
    assert first["loss"][1] < first["loss"][0]  # it does learn something

    other, w3 = seeded_run(small, seed=2)
    assert other["loss"] != first["loss"]
    assert not all(np.array_equal(a, b) for a, b in zip(w1, w3))


class CountBatches(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1


def test_nan_loss_stops_at_first_step(small):
    def nan_loss(y_true, y_pred):
        return keras.ops.mean(y_pred) * float("nan")

    train.seed_everything(0)
    model = tiny_cnn(loss=nan_loss)
    counter = CountBatches()
    result = train.fit(model, small, epochs=3, batch_size=64, seed=0, verbose=0, callbacks=[counter])
    assert result["diverged_at_step"] == 1
    assert isinstance(result["diverged_at_step"], int)
    assert counter.batches == 1  # stopped right there: 1 batch of 3 * 8
    assert len(result["loss"]) == 1 and np.isnan(result["loss"][0])


def test_huge_learning_rate_diverges_without_crash(small):
    train.seed_everything(0)
    model = tiny_cnn(learning_rate=1e6)
    counter = CountBatches()
    result = train.fit(model, small, epochs=5, batch_size=64, seed=0, verbose=0, callbacks=[counter])
    step = result["diverged_at_step"]
    assert isinstance(step, int) and step >= 1
    assert counter.batches == step < 5 * 8  # stopped at the divergent step, not after 5 epochs
    assert not np.isfinite(result["loss"][-1])


def accuracy_cnn(learning_rate=0.05):
    model = tiny_cnn(learning_rate)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate), metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def test_fit_steps_measures_the_probe_error_every_few_steps(small):
    train.seed_everything(0)
    model = accuracy_cnn()
    probe = (small.x_train[:200], small.y_train[:200])
    curve = train.fit_steps(model, small, steps=20, every=5, probe=probe, batch_size=32, verbose=0)
    assert curve["step"] == [5, 10, 15, 20] and len(curve["error"]) == 4 and len(curve["loss"]) == 4
    predicted = np.argmax(model.predict(probe[0], verbose=0), axis=1)
    assert curve["error"][-1] == pytest.approx(np.mean(predicted != probe[1]), abs=1e-6)
    assert curve["diverged_at_step"] is None


def test_fit_steps_stops_below_the_error_threshold(small):
    train.seed_everything(0)
    curve = train.fit_steps(accuracy_cnn(), small, steps=50, every=5, probe=(small.x_train[:100], small.y_train[:100]),
                            batch_size=32, stop_below=1.0, verbose=0)
    assert curve["step"] == [5]


def test_steps_to_threshold():
    curve = {"step": [50, 100, 150], "error": [0.6, 0.24, 0.09]}
    assert train.steps_to(curve, 0.25) == 100
    assert train.steps_to(curve, 0.09) == 150
    assert train.steps_to(curve, 0.05) is None


def test_fit_times_each_epoch(small):
    train.seed_everything(0)
    result = train.fit(tiny_cnn(), small, epochs=2, batch_size=64, seed=0, verbose=0)
    assert len(result["epoch_s"]) == 2
    assert all(0 < s < 60 for s in result["epoch_s"])


def test_accuracy_counts_correct_top1_predictions():
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Identity()(inputs))  # the input is its own score
    x = np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.7, 0.2, 0.1]], dtype="float32")
    assert train.accuracy(model, x, np.array([0, 1, 2, 1])) == 0.75
    assert train.accuracy(model, x, np.array([1, 0, 0, 2])) == 0.0


def test_run_seeds_pairs_seeds_and_matches_a_hand_written_loop(small, capsys):
    probe = (small.x_train[:100], small.y_train[:100])
    builds = {"slow": lambda s: accuracy_cnn(0.001), "fast": lambda s: accuracy_cnn(0.05)}
    runs, histories = train.run_seeds(builds, [3, 4], small, 1, {"probe_acc": probe}, batch_size=64,
                                      describe=lambda model, row: {"layers": len(model.layers)})
    assert list(runs.config) == ["slow", "slow", "fast", "fast"] and list(runs.seed) == [3, 4, 3, 4]
    assert list(runs.columns[:5]) == ["config", "seed", "params", "layers", "probe_acc"]
    assert set(histories) == {("slow", 3), ("slow", 4), ("fast", 3), ("fast", 4)}
    train.seed_everything(4)  # the same run by hand: the same seed gives the same numbers
    model = accuracy_cnn(0.05)
    train.fit(model, small, 1, 64, 4, verbose=0)
    assert runs.probe_acc.iloc[3] == train.accuracy(model, *probe)
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 4 and out[0].startswith("slow seed 3: 27,090 params, probe_acc 0.")


def test_run_steps_records_curves_per_seed_and_its_table_drops_them(small):
    probe = (small.x_train[:100], small.y_train[:100])
    runs = train.run_steps({("a", 1): lambda s: accuracy_cnn()}, [0, 1], small, 6, 3, probe, batch_size=32,
                           keys=("name", "n"), describe=lambda model, run: {"seed_twice": 2 * run["seed"]})
    assert [(r["name"], r["n"], r["seed"], r["seed_twice"]) for r in runs] == [("a", 1, 0, 0), ("a", 1, 1, 2)]
    assert runs[0]["curve"]["step"] == [3, 6] and runs[0]["final_error"] == runs[0]["curve"]["error"][-1]
    table = train.runs_table(runs)
    assert list(table.columns) == ["name", "n", "seed", "final_error", "final_loss", "diverged_at_step", "seed_twice"]


def test_trailing_mean_and_smoothed_steps_to():
    np.testing.assert_allclose(train.trailing_mean([3, 1, 2, 6], 2), [3, 2, 1.5, 4])
    np.testing.assert_allclose(train.trailing_mean([3, 1, 2, 6], 3), [3, 2, 2, 3])
    np.testing.assert_array_equal(train.trailing_mean([3, 1], 1), [3, 1])
    lucky = dict(step=[10, 20, 30, 40, 50], error=[0.5, 0.2, 0.5, 0.25, 0.25])
    assert train.steps_to(lucky, 0.3) == 20  # one lucky measurement
    assert train.steps_to(lucky, 0.3, smooth=2) == 50  # two measurements in a row at 0.25
    assert train.steps_to(lucky, 0.2, smooth=2) is None
    with pytest.raises(ValueError, match="the window must be at least 1 measurement, got 0"):
        train.trailing_mean([1.0], 0)


def test_steps_to_reads_the_loss_too():
    curve = {"step": [10, 20, 30], "error": [0.9, 0.5, 0.2], "loss": [2.3, 2.2, 1.0]}
    assert train.steps_to(curve, 0.5) == 20
    assert train.steps_to(curve, 2.2, on="loss") == 20
    assert train.steps_to(curve, 0.9, on="loss") is None


def test_curves_and_histories_become_tidy_tables_and_diverged_runs_are_listed():
    runs = [dict(depth=22, seed=0, diverged_at_step=None, curve=dict(step=[5, 10], error=[0.8, 0.4], loss=[2.3, 1.1])),
            dict(depth=30, seed=1, diverged_at_step=7, curve=dict(step=[5], error=None, loss=[2.4]))]
    table = train.curves_table(runs, ("depth",))
    assert table.drop(columns="error").to_dict("records") == [dict(depth=22, seed=0, step=5, loss=2.3),
                                                              dict(depth=22, seed=0, step=10, loss=1.1),
                                                              dict(depth=30, seed=1, step=5, loss=2.4)]
    assert table.error.tolist()[:2] == [0.8, 0.4] and np.isnan(table.error.iloc[2])
    assert train.diverged_runs(runs, ("depth",)) == [dict(depth=30, seed=1, step=7)]
    histories = {(("convnet", "gap"), 3): {"loss": [1.0, 0.5]}, (("convnet", "fc"), 3): {"loss": [0.9]}}
    table = train.histories_table(histories, ("backbone", "head"), "loss")
    assert table.to_dict("records") == [dict(backbone="convnet", head="gap", seed=3, epoch=1, loss=1.0),
                                        dict(backbone="convnet", head="gap", seed=3, epoch=2, loss=0.5),
                                        dict(backbone="convnet", head="fc", seed=3, epoch=1, loss=0.9)]


def test_a_run_watched_for_its_plateau_stops_there_and_is_measured_again_at_half_its_length(small):
    from dataclasses import replace

    from cnnlab.convergence import Plateau

    held_out = replace(small, x_train=small.x_train[:384], y_train=small.y_train[:384], x_val=small.x_train[384:],
                       y_val=small.y_train[384:])
    probe = (small.x_train[:100], small.y_train[:100])
    plateau = Plateau("val_accuracy", min_delta=0.5, patience=2)  # no run gains 50 points: it stops at once
    runs, histories = train.run_seeds({"a": lambda s: accuracy_cnn(0.05)}, [0, 1], held_out, 20, {"acc": probe},
                                      batch_size=64, plateau=plateau)
    assert list(runs.stop) == ["plateau", "plateau"] and list(runs.trained) == [3, 3]
    assert list(runs.half_at) == [2, 2] and runs.at_plateau.all()
    assert len(histories[("a", 0)]["loss"]) == 3 and "half_weights" not in histories[("a", 0)]
    train.seed_everything(1)  # by hand: the same net trained 2 epochs is the half-budget measurement
    model = accuracy_cnn(0.05)
    train.fit(model, held_out, 2, 64, 1, verbose=0)
    assert runs.half_acc.iloc[1] == train.accuracy(model, *probe)
    steps = train.run_steps({"a": lambda s: accuracy_cnn(0.05)}, [0], held_out, 30, 5, (held_out.x_val, held_out.y_val),
                            batch_size=32, plateau=plateau,
                            describe=lambda model, run: {"half": run["at_half"]})
    assert (steps[0]["stop"], steps[0]["trained"], steps[0]["half_at"]) == ("plateau", 15, 10)
    assert steps[0]["half"] is False and steps[0]["half_half"] is True and "half_weights" not in steps[0]["curve"]


def test_a_half_run_branched_off_the_full_run_is_the_run_from_scratch_at_half_the_budget(small):
    from dataclasses import replace

    from cnnlab.convergence import Plateau
    from cnnlab.models.cifar_resnet import step_schedule

    held_out = replace(small, x_train=small.x_train[:256], y_train=small.y_train[:256], x_val=small.x_train[256:320],
                       y_val=small.y_train[256:320])
    every, steps = 4, 32  # 8 measurements; the half schedule's first drop after 8 of its 16 steps

    def build(total):
        return lambda seed: train.compile_sgd(accuracy_cnn(0.05), step_schedule(total, 0.05, 2, 0.005))

    half = train.HalfRun({"a": build(steps // 2)}, steps // 2, 8)
    weights = dict(describe=lambda model, run: {"w": [w.copy() for w in model.get_weights()]})
    runs = train.run_steps({"a": build(steps)}, [1], held_out, steps, every, (held_out.x_val, held_out.y_val), 64,
                           plateau=Plateau("val_loss", 0.01, 2, stop_early=False), half_run=half, **weights)
    assert (runs[0]["trained"], runs[0]["half_at"], runs[0]["half_diverged_at_step"]) == (32, 16, None)
    train.seed_everything(1)
    scratch = build(steps // 2)(1)
    train.fit_steps(scratch, held_out, steps // 2, every, None, 64, seed=1, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(runs[0]["half_w"], scratch.get_weights()))
    assert not all(np.array_equal(a, b) for a, b in zip(runs[0]["half_w"], runs[0]["w"]))
    with pytest.raises(ValueError, match="give the plateau too"):
        train.run_steps({"a": build(steps)}, [1], held_out, steps, every, None, half_run=half)
    with pytest.raises(ValueError, match="a multiple of 4 steps, got 6"):
        callbacks.Snapshot(6, 4)


def dropout_bn_cnn(seed, width=4):
    """A net with every kind of state a traced model must take over: BN statistics and a dropout seed."""
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(width, 3), keras.layers.BatchNormalization(),
                              keras.layers.ReLU(), keras.layers.Dropout(0.3, seed=seed), keras.layers.Flatten(),
                              keras.layers.Dense(10)])
    return train.compile_sgd(model, 0.05)


def test_a_configuration_trained_from_another_seed_reuses_its_traced_model_with_the_same_numbers(small):
    probe = (small.x_train[:100], small.y_train[:100])
    state = dict(describe=lambda model, run: {"w": [w.copy() for w in model.get_weights()], "model": id(model)})
    runs, _ = train.run_seeds({"a": dropout_bn_cnn}, [0, 1], small, 2, {"acc": probe}, batch_size=64, **state)
    assert runs.model.nunique() == 1  # seed 1 trained the model seed 0 traced
    train.seed_everything(1)
    alone = dropout_bn_cnn(1)
    train.fit(alone, small, 2, 64, 1, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(runs.w.iloc[1], alone.get_weights()))
    assert runs.acc.iloc[1] == train.accuracy(alone, *probe)
    steps = train.run_steps({"a": dropout_bn_cnn}, [0, 1], small, 12, 4, probe, 64, **state)
    assert steps[0]["model"] == steps[1]["model"]
    train.seed_everything(1)
    alone = dropout_bn_cnn(1)
    curve = train.fit_steps(alone, small, 12, 4, probe, 64, seed=1, verbose=0)
    assert steps[1]["curve"]["loss"] == curve["loss"]
    assert all(np.array_equal(a, b) for a, b in zip(steps[1]["w"], alone.get_weights()))


def test_a_model_that_differs_from_the_traced_one_is_built_afresh(small):
    traced = train.TracedModels()

    def build(seed, make=dropout_bn_cnn):
        train.seed_everything(seed)  # as run_seeds and run_steps do: the same variable names again
        return traced.build("a", make, seed)

    first = build(0)
    assert build(1) is not first  # not trained yet, so nothing is traced
    train.fit(first := build(1), small, 1, 64, 1, verbose=0)
    assert build(2) is first
    wider = build(3, lambda seed: dropout_bn_cnn(seed, width=5))
    assert wider is not first and wider.layers[0].filters == 5
    train.fit(wider, small, 1, 64, 3, verbose=0)
    slower = build(4, lambda seed: train.compile_sgd(dropout_bn_cnn(seed, width=5), 0.01))
    assert slower is not wider  # the same variables, compiled otherwise: not interchangeable



def test_runs_in_worker_processes_give_the_numbers_of_runs_one_after_another(small):
    probe = (small.x_train[:100], small.y_train[:100])
    weights = dict(describe=lambda model, run: {"w": [w.copy() for w in model.get_weights()]})
    builds = {"a": dropout_bn_cnn, "b": lambda seed: dropout_bn_cnn(seed, width=5)}
    alone = train.run_steps(builds, [0, 1], small, 8, 4, probe, 64, **weights)
    at_once = train.run_steps(builds, [0, 1], small, 8, 4, probe, 64, workers=2, **weights)
    assert [(r["config"], r["seed"]) for r in at_once] == [("a", 0), ("a", 1), ("b", 0), ("b", 1)]
    for one, other in zip(alone, at_once, strict=True):
        assert one["curve"] == other["curve"]
        assert all(np.array_equal(a, b) for a, b in zip(one["w"], other["w"], strict=True))
    rows, _ = train.run_seeds(builds, [0, 1], small, 1, {"acc": probe}, batch_size=64, workers=2)
    alone_rows, _ = train.run_seeds(builds, [0, 1], small, 1, {"acc": probe}, batch_size=64)
    assert list(rows.acc) == list(alone_rows.acc)
