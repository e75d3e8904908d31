"""Experiment 07: the tricks of the trade. Batch normalisation (Ioffe & Szegedy 2015: the same accuracy in
fewer steps, a higher learning rate, a deep sigmoid net that trains only with it, less sensitivity to the
initial weights' scale, a regulariser), dropout and max-norm (Srivastava et al. 2014, with weight scaling
against Monte Carlo mask averaging), data augmentation with test-time flipping, and dividing the learning rate
by 10 after a plateau (lecture seed 000: a step down, and calmer errors).

One module per part (`batch_norm`, `regularisers`, `lr_drop`, and `common` for what they share); the notebook
calls them through this package."""

from cnnlab.experiments.tricks.batch_norm import (bn_builds, bn_claims, bn_runs, init_scale_claim, init_scale_runs,
                                                  plot_bn, scaled_kernels)
from cnnlab.experiments.tricks.common import StopAtLevel, held_out, mean_test_error, smoothed_best
from cnnlab.experiments.tricks.lr_drop import fluctuation, lr_build, lr_claims, lr_runs
from cnnlab.experiments.tricks.regularisers import (augment_builds, augment_claims, augment_runs, dropout_builds,
                                                    dropout_claims, dropout_runs, plot_regularisers,
                                                    with_flip_averaging, with_mask_averaging)

__all__ = ["StopAtLevel", "augment_builds", "augment_claims", "augment_runs", "bn_builds", "bn_claims", "bn_runs", "dropout_builds",
           "dropout_claims", "dropout_runs", "fluctuation", "held_out", "init_scale_claim", "init_scale_runs", "lr_build", "lr_claims",
           "lr_runs", "mean_test_error", "plot_bn", "plot_regularisers", "scaled_kernels", "smoothed_best",
           "with_flip_averaging", "with_mask_averaging"]
