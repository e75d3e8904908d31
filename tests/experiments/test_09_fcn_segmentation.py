"""Experiment 09 in the smoke profile: the exact equalities, the speed-up table, and every segmentation net
trained over paired seeds with its claims recomputed from the recorded runs."""

import numpy as np
import pytest
from conftest import claims_of, table_of


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
    # 200 items x 10 logits; a 64x64 canvas at stride 4: 10x10 crops x 10; every pixel of it: 64 x 64 x 10
    assert exact.compared.tolist() == [2000, 1000, 40960]
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
    assert trainable["fcn32s_fixed"] == 128 * 11 + 11  # only the 1x1 class scorer on fc7 learns
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
