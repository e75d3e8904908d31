"""Experiment 10 in the smoke profile: every claim recomputed from the recorded tables, the receptive fields
of the three stages exact, the figures there."""

import pytest
from conftest import claims_of, table_of

pytestmark = pytest.mark.xdist_group("10_visualisation")  # its tests share one worker, which runs its smoke notebook


def test_visualisation_claims_follow_from_the_tables(smoke_results):
    results = smoke_results["10_visualisation"]
    claims = claims_of(results)
    assert set(claims) == {"vis.filters.structured", "vis.units.deeper_more_selective", "vis.occlusion.on_object",
                           "vis.saliency.on_object", "vis.class_models.classified", "vis.equivariance.translation",
                           "vis.equivariance.not_rotation", "vis.equivariance.not_scale",
                           "vis.pooling.shift_invariance", "vis.pooling.higher_more_invariant"}
    purity = table_of(results, "class_purity")
    # 5x5 convs with a 2x2 pool after each: 5, then 5 + 1 + 4 * 2 = 14, then 14 + 1 * 2 + 4 * 4 = 32
    assert purity.layer.tolist() == ["hidden_1", "hidden_2", "hidden_3"]
    assert purity.receptive_field.tolist() == [5, 14, 32] and purity.units.tolist() == [8, 16, 16]
    assert ((purity.purity_min >= 1 / 9) & (purity.purity_max <= 1)).all()
    assert purity.chance.tolist() == pytest.approx([0.2858] * 3, abs=1e-4)
    assert claims["vis.units.deeper_more_selective"]["measured"] == pytest.approx(
        purity.purity.iloc[-1] - purity.purity.iloc[0])
    objects = table_of(results, "occlusion_saliency")
    assert len(objects) == 8
    inside = ((objects.top <= objects.peak_row) & (objects.peak_row < objects.top + 28)
              & (objects.left <= objects.peak_col) & (objects.peak_col < objects.left + 28))
    assert (inside == objects.on_object).all()
    assert ((objects.saliency_in_box > 0) & (objects.saliency_in_box < 1)).all()
    assert claims["vis.occlusion.on_object"]["measured"] == pytest.approx(objects.on_object.mean())
    assert claims["vis.saliency.on_object"]["measured"] == pytest.approx(
        objects.saliency_in_box.mean() / (28 * 28 / (48 * 48)))
    assert 0 <= claims["vis.class_models.classified"]["measured"] <= 1
    figures = {name.split("/")[-1] for name in results["figures"]}
    assert {"filters.png", "activations_0.png", "top_patches.png", "occlusion_saliency.png",
            "class_models.png", "shift_invariance.png"} <= figures


def test_equivariance_claims_follow_from_the_tables(smoke_results):
    results = smoke_results["10_visualisation"]
    claims = claims_of(results)
    equivariant = table_of(results, "equivariance").set_index("transform").relative_error
    assert equivariant["shift by (3, 2) pixels"] <= 1e-5  # a conv layer commutes with a shift, to rounding
    assert claims["vis.equivariance.translation"]["verdict"] == "reproduced"
    for key, name in (("rotation", "rotation by 90 degrees"), ("scale", "scale by 1/2")):
        assert claims[f"vis.equivariance.not_{key}"]["measured"] == pytest.approx(equivariant[name])
    change = table_of(results, "shift_invariance").set_index("layer").relative_change
    assert change.index.tolist() == ["hidden_1", "pool_1", "hidden_2", "pool_2", "hidden_3", "pool_3"]
    assert claims["vis.pooling.shift_invariance"]["measured"] == pytest.approx(change["pool_1"] / change["hidden_1"])
    assert claims["vis.pooling.higher_more_invariant"]["measured"] == pytest.approx(change["pool_3"] / change["pool_1"])
