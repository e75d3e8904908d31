"""Experiment 09 in the smoke profile: the exact equalities, the speed-up table, and every segmentation net
trained over paired seeds to its plateau (or cap) with its claims recomputed from the recorded runs, at the end
and at half of each run; and the segmentation claims' evidence from a table of runs made by hand."""

import math

import numpy as np
import pandas as pd
import pytest
from conftest import claims_of, table_of

from cnnlab.experiments import fcn_segmentation as exp
from cnnlab.suite.results import Record

pytestmark = pytest.mark.xdist_group("09_fcn_segmentation")  # its tests share one worker, which runs its smoke notebook


def dense_macs(size):
    """Multiply-adds of the sparse-kernel patch classifier on a size x size image padded by 27: conv5-16, pool
    (dilation 1), conv5-32 dilated 2, pool dilated 2, the 4x4 FC-conv dilated 4, the 1x1 classifier."""
    side = size + 27
    convs = [(side - 4, 25 * 16), (side - 5 - 8, 25 * 16 * 32), (side - 5 - 10 - 12, 16 * 32 * 64),
             (size, 64 * 10)]
    return sum(out * out * macs for out, macs in convs)


def test_convolutionalisation_and_sparse_kernels_are_exact(smoke_results):
    results = smoke_results["09_fcn_segmentation"]
    claims = claims_of(results)
    exact = table_of(results, "exactness")
    # 200 items x 10 logits; a 48x48 canvas at stride 4: 6x6 crops x 10; every pixel of it: 48 x 48 x 10
    assert exact.compared.tolist() == [2000, 360, 23040]
    assert exact.relative_diff.tolist() == (exact.max_abs_diff / exact.max_abs_output).tolist()
    assert (exact.relative_diff < 1e-5).all() and (exact.max_abs_output > 0).all()
    for claim in ("fcn.convolutionalised.same_logits", "fcn.convolutionalised.crops", "fcn.sparse_kernels.every_pixel"):
        assert claims[claim]["verdict"] == "reproduced" and claims[claim]["measured"] < 1e-5
    speed = table_of(results, "speedup")
    assert speed["size"].tolist() == [32, 48] and speed.patches.tolist() == [32 * 32, 48 * 48]
    assert (speed.patches_timed == 256).all() and (speed.max_abs_diff < 1e-5).all()
    assert claims["fcn.sparse_kernels.speedup_grows"]["measured"] == pytest.approx(
        speed.speedup.iloc[-1] / speed.speedup.iloc[0])
    # the patch classifier's 1,083,008 multiply-adds per patch against the sparse-kernel net's on the padded image
    assert speed.mac_ratio.iloc[0] == pytest.approx(32 * 32 * 1_083_008 / dense_macs(32))


def test_segmentation_nets_paired_over_seeds(smoke_results):
    results = smoke_results["09_fcn_segmentation"]
    claims = claims_of(results)
    runs = table_of(results, "runs")
    models = ["fcn32s_fixed", "fcn32s", "fcn16s", "fcn8s", "encoder_decoder"]
    assert runs.model.tolist() == [m for m in models for _ in (0, 1)] and runs.seed.tolist() == [0, 1] * 5
    assert ((runs.pixel_accuracy >= 0) & (runs.pixel_accuracy <= 1) & (runs.mean_iu <= runs.pixel_accuracy)).all()
    trainable = runs.groupby("model").trainable_params.first()
    assert trainable["fcn32s_fixed"] == 64 * 11 + 11  # only the 1x1 class scorer on fc7 (64 units) learns
    assert trainable["fcn8s"] > trainable["fcn16s"] > trainable["fcn32s"] > trainable["fcn32s_fixed"]

    def iu(model):
        return runs[runs.model == model].sort_values("seed").mean_iu.to_numpy()

    for claim, (a, b) in {"fcn.seg.fcn8s_over_32s": ("fcn8s", "fcn32s"),
                          "fcn.seg.finetuned_over_fixed": ("fcn32s", "fcn32s_fixed"),
                          "fcn.seg.encoder_decoder_vs_8s": ("encoder_decoder", "fcn8s")}.items():
        assert claims[claim]["per_seed"] == pytest.approx(list(100 * (iu(a) - iu(b))))
    class_iu = table_of(results, "class_iu")
    assert class_iu.model.tolist() == models and class_iu.shape[1] == 1 + 11
    values = class_iu.drop(columns="model").to_numpy(dtype=float)
    assert ((values[~np.isnan(values)] >= 0) & (values[~np.isnan(values)] <= 1)).all()
    assert (class_iu.background > 0.5).all()  # most pixels are background, and every net finds most of them


def test_segmentation_runs_stop_at_plateau_or_cap_and_are_measured_at_half(smoke_results):
    results = smoke_results["09_fcn_segmentation"]
    params, claims = results["params"], claims_of(results)
    runs = table_of(results, "runs")
    assert set(runs.stop) <= {"plateau", "cap", "diverged"} and (runs.trained <= params["epochs"]).all()
    assert (runs.half_at == [math.ceil(t / 2) for t in runs.trained]).all()
    assert ((runs.half_mean_iu >= 0) & (runs.half_mean_iu <= runs.half_pixel_accuracy)).all()
    pretraining = table_of(results, "pretraining").iloc[0]
    assert pretraining.trained <= params["pretrain_steps"] and pretraining.trained % params["pretrain_every"] == 0
    assert results["metrics"]["backbone_at_plateau"] == bool(pretraining.at_plateau)

    def column(model, name):
        return runs[runs.model == model].sort_values("seed")[name].to_numpy()

    for claim, (a, b) in {"fcn.seg.fcn16s_over_32s": ("fcn16s", "fcn32s"),
                          "fcn.seg.fcn8s_over_32s": ("fcn8s", "fcn32s"),
                          "fcn.seg.finetuned_over_fixed": ("fcn32s", "fcn32s_fixed")}.items():
        c = claims[claim]
        at = int(column(a, "at_plateau").sum() + column(b, "at_plateau").sum())
        assert c["about"] == "trained" and c["at_plateau"] == [at, 4]
        half = 100 * (column(a, "half_mean_iu") - column(b, "half_mean_iu"))
        assert c["half_budget"]["measured"] == pytest.approx(half.mean())
        if at < 4:
            assert c["verdict"] not in ("reproduced", "partial", "not_reproduced") and c["budget_limited"]
    assert claims["fcn.seg.encoder_decoder_vs_8s"]["verdict"] == "not_applicable"
    trained = table_of(results, "trained").set_index("model")
    for model in trained.index:
        assert trained.at_plateau[model] == f"{int(column(model, 'at_plateau').sum())} of 2"
        assert trained.epochs[model] == pytest.approx(column(model, "trained").mean())


def hand_runs(at_plateau=True):
    """Three seeds of FCN-32s and FCN-8s: 8s ahead by 10, 12, 14 pp of mean IU at the end, by 0, 1, -1 pp at
    half of each run."""
    rows = []
    for seed, (iu32, iu8, half32, half8) in enumerate([(0.30, 0.40, 0.20, 0.20), (0.32, 0.44, 0.22, 0.23),
                                                       (0.34, 0.48, 0.24, 0.23)]):
        rows.append(dict(model="fcn32s", seed=seed, mean_iu=iu32, half_mean_iu=half32, at_plateau=True,
                         diverged_at_step=None))
        rows.append(dict(model="fcn8s", seed=seed, mean_iu=iu8, half_mean_iu=half8,
                         at_plateau=at_plateau or seed > 0, diverged_at_step=None))
    return pd.DataFrame(rows)


def test_a_fusion_claim_differing_at_half_its_runs_is_budget_limited(tmp_path):
    rec = Record("09_fcn_segmentation", "fcn", tmp_path)
    exp.segmentation_claims(rec, hand_runs(), margin_pp=1.0, fixed_margin_pp=5.0)
    (claim,) = rec.claims
    assert claim["id"] == "fcn.seg.fcn8s_over_32s" and claim["measured"] == pytest.approx(12.0)
    assert claim["per_seed"] == pytest.approx([10.0, 12.0, 14.0])
    assert claim["at_plateau"] == [6, 6] and claim["about"] == "trained"
    assert claim["half_budget"] == dict(verdict="inconclusive", measured=pytest.approx(0.0))
    assert claim["verdict"] == "inconclusive" and claim["budget_limited"]
    assert "reproduced at the full budget but inconclusive at half of it" in claim["note"]


def test_a_fusion_claim_with_a_run_still_improving_is_budget_limited(tmp_path):
    rec = Record("09_fcn_segmentation", "fcn", tmp_path)
    runs = hand_runs(at_plateau=False).assign(half_mean_iu=lambda r: r.mean_iu)  # the same verdict at half
    exp.segmentation_claims(rec, runs, margin_pp=1.0, fixed_margin_pp=5.0)
    (claim,) = rec.claims
    assert claim["at_plateau"] == [5, 6] and claim["half_budget"]["verdict"] == "reproduced"
    assert claim["verdict"] == "inconclusive" and "1 of 6 runs still improving at the cap" in claim["note"]
    rec = Record("09_fcn_segmentation", "fcn", tmp_path)
    exp.segmentation_claims(rec, hand_runs().assign(half_mean_iu=lambda r: r.mean_iu), 1.0, 5.0)
    assert rec.claims[0]["verdict"] == "reproduced" and not rec.claims[0]["budget_limited"]


def test_summary_counts_the_runs_at_plateau_and_their_epochs():
    runs = hand_runs(at_plateau=False).assign(pixel_accuracy=0.9, params=100, trainable_params=50, s_per_epoch=1.0,
                                              trained=[10, 12, 14, 16, 18, 20])
    table = exp.summary(runs).set_index("model")
    assert table.at_plateau.tolist() == ["3 of 3", "2 of 3"]
    assert table.epochs.tolist() == [14.0, 16.0] and table.half_mean_iu.tolist() == pytest.approx([0.22, 0.22])
    assert table.mean_iu.tolist() == pytest.approx([0.32, 0.44])
    assert table.paper_mean_iu_voc.tolist() == [59.4, 62.7]
