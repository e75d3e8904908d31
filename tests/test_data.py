"""cnnlab.data: IDX reading, finding Fashion-MNIST, derived datasets, TFDS datasets."""

import gzip
import os
import re

import numpy as np
import pytest

from cnnlab import data
from cnnlab.data import DataError


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of a uint8 array: magic 0x00 0x00 0x08 ndim, big-endian dims, body."""
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def write_idx(path, payload: bytes):
    if str(path).endswith(".gz"):
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)
    return path


def write_tiny_fashion_mnist(folder):
    """Four valid IDX files with the Fashion-MNIST names (two gzipped, two raw), far too small."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / "train-images-idx3-ubyte.gz", idx_bytes(rng.integers(0, 256, (2, 28, 28))))
    write_idx(folder / "train-labels-idx1-ubyte.gz", idx_bytes([3, 4]))
    write_idx(folder / "t10k-images-idx3-ubyte", idx_bytes(rng.integers(0, 256, (1, 28, 28))))
    write_idx(folder / "t10k-labels-idx1-ubyte", idx_bytes([5]))
    return folder


# --- read_idx ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_read_idx_round_trips_raw_and_gzipped(tmp_path, name):
    expected = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    out = data.read_idx(write_idx(tmp_path / name, idx_bytes(expected)))
    assert out.dtype == np.uint8
    assert out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out, expected)


def test_read_idx_one_dimensional_labels(tmp_path):
    out = data.read_idx(write_idx(tmp_path / "labels-idx1-ubyte.gz", idx_bytes([9, 0, 7, 255])))
    assert out.shape == (4,)
    assert out.tolist() == [9, 0, 7, 255]


@pytest.mark.parametrize("magic", [b"\x00\x00\x0d\x01", b"\x01\x00\x08\x01", b"\x00\x00"])
def test_read_idx_bad_magic(tmp_path, magic):
    path = write_idx(tmp_path / "bad-idx1-ubyte", magic + (3).to_bytes(4, "big") + b"\x01\x02\x03")
    with pytest.raises(DataError, match="not an unsigned-byte IDX file") as err:
        data.read_idx(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("name", ["short-idx3-ubyte", "short-idx3-ubyte.gz"])
def test_read_idx_truncated_body(tmp_path, name):
    payload = idx_bytes(np.zeros((2, 3, 4)))[:-4]  # 20 of the 24 values
    path = write_idx(tmp_path / name, payload)
    with pytest.raises(DataError) as err:
        data.read_idx(path)
    message = str(err.value)
    assert message == f"{path}: header says (2, 3, 4) but holds 20 values"


def test_read_idx_body_longer_than_header_says(tmp_path):
    path = write_idx(tmp_path / "long-idx1-ubyte", idx_bytes([1, 2, 3]) + b"\x04")
    with pytest.raises(DataError, match=re.escape("header says (3,) but holds 4 values")):
        data.read_idx(path)


def test_read_idx_truncated_header(tmp_path):
    # ndim 3 but only one dimension present: a DataError, not numpy's ValueError
    path = write_idx(tmp_path / "cut-idx3-ubyte", bytes([0, 0, 8, 3]) + (2).to_bytes(4, "big"))
    with pytest.raises(DataError, match="header declares 3 dimensions but the file ends after 8 bytes"):
        data.read_idx(path)


def test_read_idx_cut_off_gzip_stream(tmp_path):
    whole = tmp_path / "whole-idx1-ubyte.gz"
    write_idx(whole, idx_bytes(np.arange(200) % 256))
    cut = tmp_path / "cut-idx1-ubyte.gz"
    cut.write_bytes(whole.read_bytes()[:-12])  # a download that stopped early
    with pytest.raises(DataError, match="cannot be read") as err:
        data.read_idx(cut)
    assert "\n" not in str(err.value)


# --- finding Fashion-MNIST -----------------------------------------------------------------------


def test_cnnlab_data_wins_over_debian_folder(tmp_path, monkeypatch):
    assert data.DEBIAN_DIR.is_dir(), "these tests expect Debian's dataset-fashion-mnist"
    folder = write_tiny_fashion_mnist(tmp_path / "mine")
    monkeypatch.setenv("CNNLAB_DATA", str(folder))
    assert data.fashion_mnist_dir() == folder
    with pytest.raises(DataError) as err:
        data.load_fashion_mnist()
    assert str(err.value) == (f"{folder}/train-images-idx3-ubyte.gz: x_train has shape (2, 28, 28), expected "
                              f"(60000, 28, 28) ({data.REPAIR_HELP})")


@pytest.mark.parametrize("how", ["empty", "partial", "nonexistent"])
def test_an_explicit_cnnlab_data_without_the_files_is_an_error_not_a_fallback(tmp_path, monkeypatch, how):
    folder = tmp_path / "data"
    if how == "partial":
        write_tiny_fashion_mnist(folder)
        (folder / "t10k-labels-idx1-ubyte").unlink()
    elif how == "empty":
        folder.mkdir()
    monkeypatch.setenv("CNNLAB_DATA", str(folder))
    lacks = "t10k-labels-idx1-ubyte" if how == "partial" else ", ".join(data.IDX_FILES.values())
    message = (f"CNNLAB_DATA={folder} lacks {lacks} (.gz or plain): point it at a folder with the four Fashion-MNIST "
               "IDX files, or unset it to use Debian's dataset-fashion-mnist")
    for call in (data.fashion_mnist_dir, data.fingerprint, data.load_fashion_mnist):
        with pytest.raises(DataError) as err:
            call()
        assert str(err.value) == message


def test_a_truncated_gz_gets_one_line_from_the_fingerprint_too(tmp_path, monkeypatch):
    folder = tmp_path / "cut"
    folder.mkdir()
    for stem in data.IDX_FILES.values():
        (folder / f"{stem}.gz").write_bytes((data.DEBIAN_DIR / f"{stem}.gz").read_bytes()[:5000])
    monkeypatch.setenv("CNNLAB_DATA", str(folder))
    with pytest.raises(DataError) as err:
        data.fingerprint()
    message = str(err.value)
    assert message.startswith(f"{folder}/t10k-images-idx3-ubyte.gz: cannot be read (")
    assert message.endswith("reinstall dataset-fashion-mnist or point CNNLAB_DATA at an intact copy")
    assert "\n" not in message


def test_the_fingerprint_checks_the_files_as_loading_them_does(tmp_path, monkeypatch):
    from conftest import labels_as_images

    folder = labels_as_images(tmp_path / "slip")
    monkeypatch.setenv("CNNLAB_DATA", str(folder))
    for call in (data.fingerprint, data.load_fashion_mnist):
        with pytest.raises(DataError) as err:
            call()
        assert str(err.value) == (f"{folder}/train-images-idx3-ubyte.gz: x_train has shape (60000,), expected "
                                  f"(60000, 28, 28) ({data.REPAIR_HELP})")
    for stem in ("train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (folder / f"{stem}.gz").unlink()
    (folder / "train-images-idx3-ubyte.gz").symlink_to(data.DEBIAN_DIR / "train-images-idx3-ubyte.gz")
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", idx_bytes(np.full(10000, 10)))
    with pytest.raises(DataError, match=re.escape(f"{folder}/t10k-labels-idx1-ubyte.gz: y_test holds labels outside")):
        data.fingerprint()


def test_the_fingerprint_reads_the_files_again_only_when_their_size_or_mtime_changes(tmp_path, monkeypatch):
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(data.DEBIAN_DIR, folder)
    monkeypatch.setenv("CNNLAB_DATA", str(folder))
    monkeypatch.setattr(data, "_FINGERPRINTS", {})
    read, reads = data._read_bytes, []
    monkeypatch.setattr(data, "_read_bytes", lambda path: reads.append(path.name) or read(path))
    first = data.fingerprint()
    assert data.fingerprint() == first and len(reads) == 4
    stamp = (folder / "t10k-labels-idx1-ubyte.gz").stat()
    os.utime(folder / "t10k-labels-idx1-ubyte.gz", ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 10**9))
    assert data.fingerprint() == first and len(reads) == 8  # touched: read and checked again, same content


def test_the_fingerprint_asks_keras_to_download_only_when_no_folder_has_the_files(tmp_path, monkeypatch):
    cache = tmp_path / "keras-cache"
    monkeypatch.delenv("CNNLAB_DATA", raising=False)
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.setattr(data, "KERAS_CACHE_DIR", cache)
    monkeypatch.setattr(data, "_download_fashion_mnist", lambda: write_tiny_fashion_mnist(cache))
    with pytest.raises(DataError) as err:  # downloaded, then checked like any other copy
        data.fingerprint()
    assert str(err.value).startswith(f"{cache}/train-images-idx3-ubyte.gz: x_train has shape (2, 28, 28)")


def test_keras_cache_used_after_debian(tmp_path, monkeypatch):
    monkeypatch.delenv("CNNLAB_DATA", raising=False)
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "no-debian")
    cache = write_tiny_fashion_mnist(tmp_path / "cache")
    monkeypatch.setattr(data, "KERAS_CACHE_DIR", cache)
    assert data.fashion_mnist_dir() == cache


def test_nothing_found_names_the_debian_package_and_cnnlab_data(tmp_path, monkeypatch):
    import keras

    calls = []

    def no_network():
        calls.append(1)
        raise OSError("network unreachable")

    empty_debian, empty_cache = tmp_path / "debian", tmp_path / "cache"
    empty_debian.mkdir()
    empty_cache.mkdir()
    monkeypatch.delenv("CNNLAB_DATA", raising=False)
    monkeypatch.setattr(data, "DEBIAN_DIR", empty_debian)
    monkeypatch.setattr(data, "KERAS_CACHE_DIR", empty_cache)
    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", no_network)

    assert data.fashion_mnist_dir() is None
    with pytest.raises(DataError) as err:
        data.load_fashion_mnist()
    message = str(err.value)
    assert calls == [1]
    assert "dataset-fashion-mnist" in message
    assert "CNNLAB_DATA" in message
    assert "\n" not in message
    assert message == data.MISSING_HELP
    with pytest.raises(DataError, match="dataset-fashion-mnist"):
        data.fingerprint()


# --- the real Fashion-MNIST ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def fmnist():
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("CNNLAB_DATA", raising=False)
        return data.load_fashion_mnist()


def test_fashion_mnist_shapes_dtypes_and_classes(fmnist):
    assert fmnist.name == "fashion_mnist"
    assert fmnist.x_train.shape == (60000, 28, 28, 1)
    assert fmnist.x_test.shape == (10000, 28, 28, 1)
    assert fmnist.x_train.dtype == np.uint8 and fmnist.x_test.dtype == np.uint8
    assert fmnist.y_train.shape == (60000,) and fmnist.y_test.shape == (10000,)
    assert fmnist.y_train.dtype == np.int64 and fmnist.y_test.dtype == np.int64
    assert np.bincount(fmnist.y_train).tolist() == [6000] * 10
    assert np.bincount(fmnist.y_test).tolist() == [1000] * 10
    assert fmnist.num_classes == 10
    assert fmnist.class_names[0] == "T-shirt/top" and fmnist.class_names[9] == "Ankle boot"
    assert fmnist.x_val is None and fmnist.y_val is None
    assert fmnist.x_train.max() == 255 and fmnist.x_train.min() == 0


def test_fingerprint_is_stable_16_hex(tmp_path, monkeypatch):
    monkeypatch.delenv("CNNLAB_DATA", raising=False)
    first, second = data.fingerprint(), data.fingerprint()
    assert re.fullmatch(r"[0-9a-f]{16}", first)
    assert first == second
    relabelled = tmp_path / "relabelled"  # Debian's files but the test labels
    relabelled.mkdir()
    for stem in list(data.IDX_FILES.values())[:3]:
        (relabelled / f"{stem}.gz").symlink_to(data.DEBIAN_DIR / f"{stem}.gz")
    write_idx(relabelled / "t10k-labels-idx1-ubyte", idx_bytes(np.arange(10000) % 10))
    monkeypatch.setenv("CNNLAB_DATA", str(relabelled))
    other = data.fingerprint()
    assert re.fullmatch(r"[0-9a-f]{16}", other) and other != first
    with pytest.raises(DataError, match="allowed: fashion_mnist"):
        data.fingerprint("mnist")


# --- derived datasets ----------------------------------------------------------------------------


def test_subset_sizes_determinism_and_bounds():
    x, y = np.arange(1000), np.arange(1000) % 10
    xa, ya = data.subset(x, y, 100, seed=1)
    xb, yb = data.subset(x, y, 100, seed=1)
    xc, _ = data.subset(x, y, 100, seed=2)
    assert xa.shape == (100,) and ya.shape == (100,)
    assert len(np.unique(xa)) == 100  # without replacement
    np.testing.assert_array_equal(ya, xa % 10)  # images and labels stay paired
    np.testing.assert_array_equal(xa, xb)
    np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(xa, xc)
    assert len(data.subset(x, y, 1000, seed=0)[0]) == 1000
    for bad in (0, -1, 1001):
        with pytest.raises(DataError, match=f"subset size {bad} must be between 1 and 1000"):
            data.subset(x, y, bad, seed=0)


def test_split_validation_sizes_disjoint_deterministic():
    x, y = np.arange(100), np.arange(100) * 2
    (xt, yt), (xv, yv) = data.split_validation(x, y, 0.2, seed=4)
    assert len(xt) == 80 and len(yt) == 80 and len(xv) == 20 and len(yv) == 20
    assert set(xt.tolist()).isdisjoint(xv.tolist())
    assert sorted(xt.tolist() + xv.tolist()) == list(range(100))
    np.testing.assert_array_equal(yt, xt * 2)
    np.testing.assert_array_equal(yv, xv * 2)
    (xt2, _), (xv2, _) = data.split_validation(x, y, 0.2, seed=4)
    np.testing.assert_array_equal(xt, xt2)
    np.testing.assert_array_equal(xv, xv2)
    (_, _), (xv3, _) = data.split_validation(x, y, 0.2, seed=5)
    assert not np.array_equal(xv, xv3)
    for bad in (0, 1, -0.1, 1.5):
        with pytest.raises(DataError, match="validation fraction"):
            data.split_validation(x, y, bad, seed=0)


def test_select_classes_relabels_in_given_order():
    x = np.arange(8) * 10
    y = np.array([7, 2, 3, 7, 2, 9, 7, 0])
    xs, ys = data.select_classes(x, y, [7, 2])
    assert xs.tolist() == [0, 10, 30, 40, 60]
    assert ys.tolist() == [0, 1, 0, 1, 0]
    assert ys.dtype == np.int64
    xs, ys = data.select_classes(x, y, [2, 7])
    assert ys.tolist() == [1, 0, 1, 0, 1]
    with pytest.raises(DataError, match="repeat a class"):
        data.select_classes(x, y, [7, 7])


def test_select_classes_on_fashion_mnist(fmnist):
    xs, ys = data.select_classes(fmnist.x_train, fmnist.y_train, [7, 2])
    assert xs.shape == (12000, 28, 28, 1)
    assert np.bincount(ys).tolist() == [6000, 6000]
    np.testing.assert_array_equal(xs[ys == 0], fmnist.x_train[fmnist.y_train == 7])
    np.testing.assert_array_equal(xs[ys == 1], fmnist.x_train[fmnist.y_train == 2])
    xt, yt = data.select_classes(fmnist.x_test, fmnist.y_test, [7, 2])
    assert xt.shape == (2000, 28, 28, 1) and np.bincount(yt).tolist() == [1000, 1000]


def test_pad_to_centres_with_zeros():
    x = np.arange(1, 2 * 28 * 28 + 1).reshape(2, 28, 28, 1).astype(np.int32)
    out = data.pad_to(x, 32)
    assert out.shape == (2, 32, 32, 1)
    assert out.dtype == x.dtype
    np.testing.assert_array_equal(out[:, 2:30, 2:30, :], x)
    border = np.ones((32, 32), dtype=bool)
    border[2:30, 2:30] = False
    assert np.count_nonzero(out[:, border, :]) == 0
    assert out.sum() == x.sum()
    np.testing.assert_array_equal(data.pad_to(x, 28), x)
    for bad in (31, 27, 33):
        with pytest.raises(DataError, match=f"cannot pad 28x28 images symmetrically to {bad}x{bad}"):
            data.pad_to(x, bad)


def test_normalise_raw():
    x = np.array([0, 51, 255], dtype=np.uint8).reshape(1, 3, 1, 1)
    out = data.normalise(x, "raw")
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out.ravel(), np.array([0, 0.2, 1], dtype=np.float32))


def test_normalise_standard_uses_training_statistics(fmnist):
    train = data.normalise(fmnist.x_train, "standard")
    assert train.dtype == np.float32
    assert abs(train.astype(np.float64).mean()) < 1e-4
    assert abs(train.astype(np.float64).std() - 1) < 1e-4

    ref = fmnist.x_train.astype(np.float64) / 255
    test = data.normalise(fmnist.x_test, "standard", reference=fmnist.x_train)
    expected = (fmnist.x_test.astype(np.float64) / 255 - ref.mean()) / ref.std()
    assert test.dtype == np.float32
    np.testing.assert_allclose(test, expected, rtol=0, atol=1e-4)
    # the test set's own statistics differ: normalising it on its own gives something else
    own = data.normalise(fmnist.x_test, "standard")
    assert np.abs(own - test).max() > 1e-3


def test_normalise_unknown_mode_names_allowed_modes():
    with pytest.raises(DataError) as err:
        data.normalise(np.zeros((1, 2, 2, 1), np.uint8), "minmax")
    assert str(err.value) == "unknown normalisation 'minmax' (allowed: raw, standard)"


def test_prepare_exact_shapes_and_determinism(monkeypatch):
    monkeypatch.delenv("CNNLAB_DATA", raising=False)
    kwargs = dict(classes=[7, 2], n_train=1000, val_fraction=0.2, pad=32, norm="standard")
    a = data.prepare(seed=3, **kwargs)
    assert a.x_train.shape == (800, 32, 32, 1) and a.y_train.shape == (800,)
    assert a.x_val.shape == (200, 32, 32, 1) and a.y_val.shape == (200,)
    assert a.x_test.shape == (2000, 32, 32, 1) and a.y_test.shape == (2000,)
    for arr in (a.x_train, a.x_val, a.x_test):
        assert arr.dtype == np.float32
    assert a.class_names == ("Sneaker", "Pullover") and a.num_classes == 2
    assert set(np.unique(a.y_train).tolist()) == {0, 1}
    assert np.bincount(a.y_test).tolist() == [1000, 1000]
    # standardised with the 800 training images' statistics, padding included
    assert abs(a.x_train.astype(np.float64).mean()) < 1e-4
    assert abs(a.x_train.astype(np.float64).std() - 1) < 1e-4
    # the padding is a constant border: all of it the normalised value of zero
    assert np.unique(a.x_train[:, :2]).size == 1
    b = data.prepare(seed=3, **kwargs)
    for key in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
    c = data.prepare(seed=4, **kwargs)
    assert not np.array_equal(a.x_train, c.x_train)


def test_prepare_defaults_raw():
    d = data.prepare(n_train=10, seed=0)
    assert d.x_train.shape == (10, 28, 28, 1) and d.x_test.shape == (10000, 28, 28, 1)
    assert d.x_val is None and d.y_val is None
    assert d.x_train.min() >= 0 and d.x_train.max() <= 1 and d.x_train.dtype == np.float32
    assert len(d.class_names) == 10


# --- TFDS datasets -------------------------------------------------------------------------------


def test_load_mnist_through_mocked_tfds(tmp_path):
    import tensorflow_datasets as tfds

    n = 7
    # Split sizes must be known to TFDS's batch_size=-1, else it batches by sys.maxsize and the
    # process aborts; a real download records them, here metadata written to tmp_path does.
    builder = tfds.builder("mnist", data_dir=str(tmp_path))
    builder.info.set_splits(tfds.core.SplitDict(
        [tfds.core.SplitInfo(name=s, shard_lengths=[n], num_bytes=0) for s in ("train", "test")]))
    tmp_path.joinpath(builder.data_dir).mkdir(parents=True)
    builder.info.write_to_directory(builder.data_dir)

    with tfds.testing.mock_data(num_examples=n, data_dir=str(tmp_path)):
        ds = data.load("mnist")
    assert isinstance(ds, data.Dataset)
    assert ds.name == "mnist"
    assert ds.x_train.shape == (n, 28, 28, 1) and ds.x_test.shape == (n, 28, 28, 1)
    assert ds.y_train.shape == (n,) and ds.y_train.dtype == np.int64
    assert ds.y_test.shape == (n,) and ds.y_test.dtype == np.int64
    assert ds.class_names == tuple(str(i) for i in range(10)) and ds.num_classes == 10
    assert ds.y_train.min() >= 0 and ds.y_train.max() <= 9


def test_load_unknown_dataset_names_allowed():
    with pytest.raises(DataError) as err:
        data.load("nope")
    assert str(err.value) == "unknown dataset 'nope' (allowed: fashion_mnist, mnist, cifar10)"


def test_split_validation_refuses_an_empty_split():
    x, y = np.zeros((3, 2, 2, 1)), np.arange(3)
    with pytest.raises(DataError, match="leaves an empty split"):
        data.split_validation(x, y, 0.1, seed=0)


def test_a_registered_dataset_is_loaded_fingerprinted_and_declarable(toy_root, monkeypatch):
    from conftest import TOY_YAML, write_toy

    from cnnlab.suite import params

    monkeypatch.setattr(data, "REGISTRY", dict(data.REGISTRY))
    shapes = [(2, 4, 4, 1), (2, 4, 4), (1, 4, 4, 1), (1, 4, 4)]
    tiny = data.Dataset("canvases", *(np.zeros(s, np.uint8) for s in shapes), class_names=("background", "item"))
    data.register("canvases", lambda: tiny, lambda: "0123456789abcdef", task="segmentation")
    assert data.load("canvases") is tiny and data.fingerprint("canvases") == "0123456789abcdef"
    assert data.REGISTRY["canvases"].task == "segmentation"
    assert data.offline_datasets() == ("fashion_mnist", "canvases")
    write_toy(toy_root, yaml_text=TOY_YAML.replace("datasets: []", "datasets: [canvases]"))
    assert params.find("99").datasets == ("canvases",)
    with pytest.raises(ValueError, match="unknown task 'detection' \\(allowed: classification, segmentation\\)"):
        data.register("boxes", lambda: tiny, task="detection")
    with pytest.raises(DataError, match="no fingerprint for dataset 'mnist' \\(allowed: fashion_mnist, canvases\\)"):
        data.fingerprint("mnist")


def test_prepare_n_test_subsets_the_test_images_from_the_seed(monkeypatch):
    monkeypatch.delenv("CNNLAB_DATA", raising=False)
    a = data.prepare(classes=[1, 5], n_test=300, seed=2)
    assert a.x_test.shape == (300, 28, 28, 1) and a.x_train.shape == (12000, 28, 28, 1)
    whole = data.prepare(classes=[1, 5], seed=2)
    np.testing.assert_array_equal(a.x_test, whole.x_test[data.subset(np.arange(2000), np.arange(2000), 300, 2)[0]])


def test_class_split_random_is_a_seeded_partition_and_dissimilar_is_fixed():
    a, b = data.class_split("random", 0)
    assert len(a) == len(b) == 5 and sorted(a + b) == list(range(10))
    assert list(a) == sorted(a) and list(b) == sorted(b)
    assert data.class_split("random", 0) == (a, b) and data.class_split("random", 1) != (a, b)
    assert data.class_split("dissimilar", 7) == ((0, 2, 3, 4, 6), (1, 5, 7, 8, 9))
    with pytest.raises(DataError, match=r"^unknown class split 'odd' \(allowed: random, dissimilar\)$"):
        data.class_split("odd")


def test_per_class_subset_exact_counts_and_bounds():
    y = np.repeat(np.arange(3), [5, 4, 6])
    x = np.arange(len(y))
    xs, ys = data.per_class_subset(x, y, 3, seed=1)
    assert np.bincount(ys).tolist() == [3, 3, 3] and np.all(np.diff(xs) > 0)
    np.testing.assert_array_equal(y[xs], ys)
    np.testing.assert_array_equal(data.per_class_subset(x, y, 3, seed=1)[0], xs)
    with pytest.raises(DataError, match=r"^5 examples per class asked; allowed: 1 to 4$"):
        data.per_class_subset(x, y, 5, seed=1)
