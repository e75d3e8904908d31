"""Tests for cnnlab.segmentation: canvases reproducible from a seed and consistent with the items pasted,
Long et al.'s metrics against a confusion matrix computed by hand and against keras.metrics.MeanIoU."""

import keras
import numpy as np
import pytest

from cnnlab import data
from cnnlab.segmentation import (
    BACKGROUND,
    CLASS_NAMES,
    NUM_CLASSES,
    PALETTE,
    class_iu,
    confusion,
    make_canvases,
    mean_iu,
    pixel_accuracy,
    plot_segmentations,
    scores,
    segmentation_data,
)


@pytest.fixture(scope="module")
def items():
    """The first 2,000 Fashion-MNIST training items (uint8, N x 28 x 28 x 1) and labels."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("CNNLAB_DATA", raising=False)
        ds = data.load_fashion_mnist()
    return ds.x_train[:2000], ds.y_train[:2000]


# ---------------------------------------------------------------- canvases


def test_same_seed_same_canvases_other_seed_others(items):
    a_images, a_masks = make_canvases(*items, 20, seed=3)
    b_images, b_masks = make_canvases(*items, 20, seed=3)
    c_images, c_masks = make_canvases(*items, 20, seed=4)
    assert np.array_equal(a_images, b_images) and np.array_equal(a_masks, b_masks)
    assert not np.array_equal(a_images, c_images) and not np.array_equal(a_masks, c_masks)


def test_canvas_shapes_types_and_labels(items):
    images, masks, placed = make_canvases(*items, 300, size=64, seed=0, max_items=3, with_items=True)
    assert images.shape == (300, 64, 64, 1) and images.dtype == np.float32
    assert masks.shape == (300, 64, 64) and np.issubdtype(masks.dtype, np.integer)
    assert 0 <= images.min() and images.max() <= 1
    assert set(np.unique(masks)) <= set(range(NUM_CLASSES)) and BACKGROUND == 10 == NUM_CLASSES - 1
    counts = np.bincount([len(p) for p in placed], minlength=4)
    assert counts[0] == 0 and counts[1:].min() > 50  # 1 to 3 items per canvas, each count common
    for mask, here in zip(masks, placed):
        assert set(np.unique(mask)) - {BACKGROUND} == {label for _, label, _, _ in here}
    assert 0.05 < np.mean(masks != BACKGROUND) < 0.4


def test_masks_are_the_items_object_pixels(items):
    threshold = 0.1
    images, masks, placed = make_canvases(*items, 50, seed=1, threshold=threshold, with_items=True)
    assert np.array_equal(masks != BACKGROUND, images[..., 0] > threshold)  # object pixel <=> ink above threshold
    x, y = items
    for image, mask, here in zip(images, masks, placed):
        for index, label, top, left in here:
            item = x[index, :, :, 0] / 255.0
            box = np.s_[top:top + 28, left:left + 28]
            ink = item > threshold
            assert label == y[index]
            assert np.all(mask[box][ink] == label)
            assert np.allclose(image[box][ink, 0], item[ink])  # its own pixels, never another item's
            assert np.all(image[box][..., 0] >= item - 1e-7)  # the canvas is the items' maximum


def test_segmentation_data_draws_train_and_test_from_their_splits(items):
    ds = segmentation_data(n_train=6, n_test=4, size=64, seed=5)
    full = data.load_fashion_mnist()
    assert ds.x_train.shape == (6, 64, 64, 1) and ds.y_test.shape == (4, 64, 64)
    assert ds.class_names == CLASS_NAMES and ds.num_classes == 11 and len(PALETTE) == 11
    expected = make_canvases(full.x_test, full.y_test, 4, 64, (5, 1))
    assert np.array_equal(ds.x_test, expected[0]) and np.array_equal(ds.y_test, expected[1])
    assert np.array_equal(ds.x_train, make_canvases(full.x_train, full.y_train, 6, 64, (5, 0))[0])


def test_held_out_canvases_follow_the_training_ones_in_their_stream(items):
    ds = segmentation_data(n_train=6, n_test=4, size=48, seed=5, n_val=3)
    full = data.load_fashion_mnist()
    stream = make_canvases(full.x_train, full.y_train, 9, 48, (5, 0))
    assert ds.x_train.shape == (6, 48, 48, 1) and ds.x_val.shape == (3, 48, 48, 1) and ds.y_val.shape == (3, 48, 48)
    assert np.array_equal(ds.x_train, stream[0][:6]) and np.array_equal(ds.y_train, stream[1][:6])
    assert np.array_equal(ds.x_val, stream[0][6:]) and np.array_equal(ds.y_val, stream[1][6:])
    assert np.array_equal(ds.x_train, segmentation_data(n_train=6, n_test=4, size=48, seed=5).x_train)
    assert segmentation_data(n_train=6, n_test=4, size=48, seed=5).x_val is None
    with pytest.raises(ValueError, match="n_val -1; allowed: n_val >= 0"):
        segmentation_data(n_train=6, n_test=4, n_val=-1)


def test_canvas_arguments_are_checked(items):
    with pytest.raises(ValueError, match="canvas size 20.*allowed: size >= 28"):
        make_canvases(*items, 2, size=20)
    with pytest.raises(ValueError, match=r"items of shape \(3, 28, 28, 3\)"):
        make_canvases(np.zeros((3, 28, 28, 3)), np.zeros(3), 1)


# ---------------------------------------------------------------- metrics


Y_TRUE = np.array([[0, 0, 1], [1, 2, 2]])
Y_PRED = np.array([[0, 1, 1], [1, 0, 2]])


def test_confusion_and_metrics_by_hand():
    conf = confusion(Y_TRUE, Y_PRED, num_classes=4)
    assert conf.tolist() == [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]
    # IU_i = n_ii / (t_i + sum_j n_ji - n_ii): 1/(2+2-1), 2/(2+3-2), 1/(2+1-1); class 3 absent
    iu = class_iu(conf)
    assert iu[:3] == pytest.approx([1 / 3, 2 / 3, 1 / 2]) and np.isnan(iu[3])
    got = scores(conf)
    assert got["pixel_accuracy"] == pytest.approx(4 / 6) == pixel_accuracy(Y_TRUE, Y_PRED)
    assert got["mean_accuracy"] == pytest.approx((1 / 2 + 1 + 1 / 2) / 3)
    assert got["mean_iu"] == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3) == mean_iu(Y_TRUE, Y_PRED, 4)
    assert got["fw_iu"] == pytest.approx((2 / 3 + 2 * 2 / 3 + 2 / 2) / 6)


def test_a_class_only_predicted_counts_with_iu_zero():
    iu = class_iu(confusion([0, 0, 1], [0, 3, 1], num_classes=4))
    assert iu.tolist()[:2] == [0.5, 1.0] and np.isnan(iu[2]) and iu[3] == 0
    assert mean_iu([0, 0, 1], [0, 3, 1], 4) == pytest.approx(0.5)


def test_mean_iu_equals_keras_mean_iou():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, NUM_CLASSES - 1, (6, 16, 16))  # class 10 absent from the labels...
    y_pred = np.where(rng.random(y_true.shape) < 0.6, y_true, rng.integers(0, NUM_CLASSES - 2, y_true.shape))
    assert 10 not in y_pred  # ...and from the predictions: left out of the mean by both
    metric = keras.metrics.MeanIoU(num_classes=NUM_CLASSES)
    metric.update_state(y_true, y_pred)
    assert mean_iu(y_true, y_pred) == pytest.approx(float(metric.result()), abs=1e-6)
    y_pred[0, 0, 0] = 10  # predicted once, never true: IU 0 for both
    metric.reset_state()
    metric.update_state(y_true, y_pred)
    assert mean_iu(y_true, y_pred) == pytest.approx(float(metric.result()), abs=1e-6)


def test_confusion_checks_its_input():
    with pytest.raises(ValueError, match=r"predictions range 0\.\.11; allowed: 0\.\.10"):
        confusion([0, 1], [0, 11])
    with pytest.raises(ValueError, match="labels hold 2 pixels, predictions 3"):
        confusion([0, 1], [0, 1, 2])


# ---------------------------------------------------------------- plot


def test_plot_segmentations(items):
    import matplotlib

    matplotlib.use("Agg")
    images, masks = make_canvases(*items, 3, seed=0)
    logits = np.eye(NUM_CLASSES)[masks]
    fig = plot_segmentations(images, masks, {"FCN-8s": masks, "U-Net": logits})
    axes = fig.axes
    assert len(axes) == 3 * 4
    assert [ax.get_title() for ax in axes[:4]] == ["input", "ground truth", "FCN-8s", "U-Net"]
    assert np.array_equal(axes[3].images[0].get_array(), masks[0])  # logits shown as their argmax
    assert axes[1].images[0].get_clim() == (0, 10)
    matplotlib.pyplot.close(fig)
