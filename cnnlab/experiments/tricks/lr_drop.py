"""07's learning-rate drop after a measured plateau (lecture seed 000): the step down, against a constant rate,
and the error's fluctuation."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np

from cnnlab import convergence
from cnnlab.compare import above, below, paired_difference, paired_ratio, per_seed
from cnnlab.convergence import evidence
from cnnlab.experiments.tricks.common import SECOND_PHASE_SEED, SOURCE_SEED, fit_curve, mean_test_error
from cnnlab.models import conv_stack
from cnnlab.models.convnet import stages_layout
from cnnlab.callbacks import StopAtPlateau, restore, training_state
from cnnlab.train import compile_sgd, seed_everything


def lr_build(stages, learning_rate: float, momentum: float):
    """build(seed): the conv net of `stages` (He init) by SGD at a constant `learning_rate`."""
    layout = stages_layout(stages)
    return lambda seed: compile_sgd(conv_stack(layout, seed=seed, init="he_normal"), learning_rate, momentum)


def lr_runs(build, seeds, ds, steps: int, every: int, batch_size: int, plateau: convergence.Plateau,
            factor: float, window: int, test) -> list[dict]:
    """Per seed, one net trained at its constant rate until its held-out error (`ds.x_val`, measured every
    `every` steps) reaches its plateau, at most `steps` steps; from there two branches fed the same batches:
    `drop` divides the rate by `factor` and trains until its plateau again (at most `steps` steps more),
    `constant` trains on at the same rate as many steps.

    One record per branch and seed: net, seed, the `curve` of both phases, `drop_at` (the step of the plateau),
    its convergence (stop, at_plateau: both phases of `drop`, the whole run of `constant`; best_at, last_gain,
    trained, half_at: half-way from the drop to the end), and test errors, each the mean over `window`
    measurements in a row (single measurements at a constant rate scatter): `plateau_error` (the last before
    the drop, the same for both branches), `end_error` (the last) and `half_end_error` (those up to `half_at`)."""
    runs = []
    for seed in seeds:
        seed_everything(seed)
        model = build(seed)
        first = StopAtPlateau(plateau)
        before = fit_curve(model, ds, steps, every, batch_size, seed, [first])
        start = convergence.record(first.values, plateau, every, steps, before["diverged_at_step"] is not None)
        drop_at, rate = before["step"][-1], float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
        state = training_state(model)
        plateau_error = mean_test_error(model, first.weights[-window:], test)
        length = steps
        for net, new_rate in (("drop", rate / factor), ("constant", rate)):
            restore(model, state)
            model.optimizer.learning_rate = new_rate
            watch = StopAtPlateau(plateau if net == "drop" else dataclasses.replace(plateau, stop_early=False))
            after = fit_curve(model, ds, length, every, batch_size, SECOND_PHASE_SEED + seed, [watch])
            length = after["step"][-1]  # the constant branch trains as long as the drop branch
            diverged = before["diverged_at_step"] is not None or after["diverged_at_step"] is not None
            whole = convergence.record(first.values + watch.values, plateau, every, drop_at + length, diverged)
            if net == "drop":
                second = convergence.record(watch.values, plateau, every, steps, diverged)
                whole.update(stop=second["stop"] if start["at_plateau"] else "cap",
                             at_plateau=start["at_plateau"] and second["at_plateau"], last_gain=second["last_gain"])
            half = convergence.half_measurement(len(watch.weights))
            curve = dict(step=before["step"] + [drop_at + step for step in after["step"]],
                         error=before["error"] + after["error"], loss=before["loss"] + after["loss"])
            runs.append(dict(
                net=net, seed=seed, curve=curve, final_error=after["error"][-1],
                diverged_at_step=before["diverged_at_step"] or (after["diverged_at_step"] and
                                                                drop_at + after["diverged_at_step"]),
                drop_at=drop_at, **dict(whole, half_at=drop_at + half * every),
                plateau_error=plateau_error, end_error=mean_test_error(model, watch.weights[-window:], test),
                half_end_error=mean_test_error(model, watch.weights[max(0, half - window):half], test)))
            r = runs[-1]
            print(f"{net} seed {seed}: plateau at step {drop_at}, {r['trained']} steps ({r['stop']}, at plateau "
                  f"{r['at_plateau']}; best at {r['best_at']}), test error {plateau_error:.3f} -> {r['end_error']:.3f}")
    return runs


def fluctuation(run: dict) -> float | None:
    """The held-out error's step-to-step spread after the learning-rate drop: the standard deviation of the
    differences between successive measurements over the second half of the phase after it (at least its
    last 3 measurements), where the drop's own step down is over; None with fewer than 3 measurements."""
    after = [e for step, e in zip(run["curve"]["step"], run["curve"]["error"]) if step > run["drop_at"]]
    tail = after[len(after) // 2:] if len(after) >= 6 else after[-3:]
    return float(np.std(np.diff(tail))) if len(tail) >= 3 else None


def lr_claims(rec, runs: list[dict], window: int, margin_pp: float, min_calming: float) -> None:
    """Seed 000: dividing the learning rate by 10 after a plateau gives a last step down in error, which
    training on at the same rate does not (claims about the trained nets: every run at its plateau, the same
    verdict half-way from the drop to the end), and the held-out error fluctuates less after it (a claim about
    training, on the same steps of both branches)."""
    def difference(a, column_a, b, column_b):
        return paired_difference(per_seed(runs, column_a, net=a), per_seed(runs, column_b, net=b), scale=100)

    effect = dict(why=f"the minimum effect is {margin_pp} pp")
    source = f"{SOURCE_SEED}, 'Reducing the learning rate'"
    rec.claim("tricks.lr_drop.step_down", f"Dividing the learning rate by 10 after the held-out error's plateau "
              f"lowers the test error (mean of {window} measurements, at the next plateau minus before the drop)",
              "< 0", difference("drop", "end_error", "drop", "plateau_error"), "pp", below(-margin_pp, **effect),
              source=source, evidence=evidence(runs, half=difference("drop", "half_end_error", "drop", "plateau_error"),
                                               net="drop"))
    rec.claim("tricks.lr_drop.beats_constant", "... more than training on at the same rate as long does (end of "
              "training, dropped minus constant rate)", "< 0", difference("drop", "end_error", "constant", "end_error"),
              "pp", below(-margin_pp, **effect), source=source,
              evidence=evidence(runs, half=difference("drop", "half_end_error", "constant", "half_end_error"),
                                net=["drop", "constant"]))
    spread = {net: [fluctuation(r) for r in runs if r["net"] == net] for net in ("constant", "drop")}
    measured = None if None in spread["drop"] else paired_ratio(spread["constant"], spread["drop"])
    rec.claim("tricks.lr_drop.calmer", "Lowering the learning rate reduces the random fluctuations of the error "
              "(step-to-step spread of the held-out error after the drop, constant rate over dropped, the same steps)",
              "> 1", measured, "x",
              above(min_calming, why=f"the minimum effect is {min_calming:g}x"),
              source=f"{SOURCE_SEED} ('Turning down the learning rate will reduce the random fluctuations in the "
                     "error due to different gradients on different minibatches')",
              evidence=evidence(runs, about="training", net=["drop", "constant"]))
