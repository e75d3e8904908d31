"""cnnlab.convergence: plateaus measured on held-out values, and trained claims limited by their budget."""

import math

import pytest

from cnnlab import compare, convergence
from cnnlab.convergence import Evidence, Plateau
from cnnlab.suite.results import Record


def test_a_loss_reaches_its_plateau_when_its_last_measurements_gain_less_than_min_delta():
    plateau = Plateau("val_loss", min_delta=0.01, patience=2)
    assert convergence.last_gain([1.0, 0.5], plateau) == math.inf  # too short to tell
    assert convergence.last_gain([1.0, 0.5, 0.3, 0.2], plateau) == pytest.approx(0.3)
    assert not convergence.reached([1.0, 0.5, 0.3, 0.2], plateau)
    assert convergence.last_gain([1.0, 0.5, 0.498, 0.52], plateau) == pytest.approx(0.002)
    assert convergence.reached([1.0, 0.5, 0.498, 0.52], plateau)
    assert convergence.last_gain([1.0, 0.5, 0.6, 0.7], plateau) == 0.0


def test_an_accuracy_is_maximised():
    plateau = Plateau("val_accuracy", min_delta=0.005, patience=2)
    assert plateau.sign == -1
    assert convergence.reached([0.5, 0.8, 0.802, 0.79], plateau)
    assert not convergence.reached([0.5, 0.8, 0.85, 0.79], plateau)


def test_a_plateau_is_monitored_on_the_held_out_split_only():
    with pytest.raises(ValueError, match="held-out"):
        Plateau("loss")
    with pytest.raises(ValueError, match="patience"):
        Plateau(patience=0)


def test_the_record_says_why_a_run_stopped():
    plateau = Plateau("val_loss", min_delta=0.01, patience=2)
    stopped = convergence.record([1.0, 0.5, 0.498, 0.52], plateau, every=10, cap=100, diverged=False)
    assert stopped == dict(stop="plateau", at_plateau=True, best_at=30, last_gain=pytest.approx(0.002),
                           trained=40, half_at=20)
    capped = convergence.record([1.0, 0.5, 0.3, 0.2], plateau, every=1, cap=4, diverged=False)
    assert (capped["stop"], capped["at_plateau"], capped["best_at"], capped["half_at"]) == ("cap", False, 4, 2)
    flat_at_cap = convergence.record([1.0, 0.5, 0.5, 0.5], plateau, every=1, cap=4, diverged=False)
    assert (flat_at_cap["stop"], flat_at_cap["at_plateau"]) == ("cap", True)
    assert convergence.record([1.0, 0.5, 0.5, 0.5], plateau, 1, 9, diverged=True)["stop"] == "diverged"


def test_a_run_on_a_fixed_schedule_trains_to_its_cap(small_fit):
    plateau = Plateau("val_accuracy", min_delta=0.5, patience=2, stop_early=False)
    history = small_fit(plateau, epochs=4)
    assert len(history["loss"]) == 4
    assert (history["convergence"]["stop"], history["convergence"]["at_plateau"]) == ("cap", True)


@pytest.fixture
def small_fit():
    import keras

    from cnnlab import data, train

    ds = data.prepare(n_train=256, val_fraction=0.25, seed=0)

    def run(plateau, epochs):
        train.seed_everything(0)
        model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
        model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        return train.fit(model, ds, epochs, 64, 0, verbose=0, plateau=plateau)

    return run


def test_limit_keeps_a_verdict_only_at_plateau_and_at_half_the_budget():
    assert convergence.limit("reproduced", (6, 6), "reproduced") == ("reproduced", "")
    verdict, why = convergence.limit("reproduced", (5, 6), "reproduced")
    assert verdict == "inconclusive" and why.startswith("budget-limited: 1 of 6 runs still improving")
    verdict, why = convergence.limit("not_reproduced", (6, 6), "partial")
    assert verdict == "inconclusive" and "partial at half" in why
    assert convergence.limit("inconclusive", (0, 6), "reproduced") == ("inconclusive", "")


def test_evidence_counts_the_runs_of_the_configurations_a_claim_compares():
    runs = [dict(config=c, seed=s, at_plateau=(c, s) != ("D", 2)) for c in "ABD" for s in range(3)]
    found = convergence.evidence(runs, config=["A", "D"])
    assert (found.about, found.at_plateau, found.runs) == ("trained", 5, 6)
    with pytest.raises(ValueError, match="about one of"):
        Evidence("trainer", 1, 1)


def test_a_claim_about_trained_nets_is_budget_limited_where_a_run_still_improves(tmp_path):
    rec = Record("04_vgg_depth", "vgg", tmp_path)
    full = compare.paired_difference([0.10, 0.11, 0.12], [0.20, 0.21, 0.22], scale=100)  # -10 pp in every seed
    half = compare.paired_difference([0.20, 0.21, 0.22], [0.20, 0.205, 0.23], scale=100)  # no clear effect
    rule = compare.below(-1.0)
    decided = rec.claim("vgg.a", "a", "< 0", full, "pp", rule, "s", evidence=Evidence("trained", 6, 6, full))
    assert decided["verdict"] == "reproduced" and decided["budget_limited"] is False
    assert decided["at_plateau"] == [6, 6] and decided["half_budget"]["verdict"] == "reproduced"
    capped = rec.claim("vgg.b", "b", "< 0", full, "pp", rule, "s", evidence=Evidence("trained", 4, 6, full))
    assert capped["verdict"] == "inconclusive" and "2 of 6 runs still improving" in capped["note"]
    moved = rec.claim("vgg.c", "c", "< 0", full, "pp", rule, "s", evidence=Evidence("trained", 6, 6, half))
    assert moved["verdict"] == "inconclusive" and moved["half_budget"]["verdict"] == "inconclusive"
    assert moved["budget_limited"] is True
    for claim in (decided, capped, moved):
        assert compare.decide_again(claim) == claim["verdict"]
