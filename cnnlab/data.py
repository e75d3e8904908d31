"""Datasets as numpy arrays, offline by default.

Fashion-MNIST is read from its four IDX files, looked for in order in `$CNNLAB_DATA`,
`/usr/share/datasets/fashion-mnist/` (Debian's `dataset-fashion-mnist`) and Keras's cache; only
when none has them is `keras.datasets` asked to download. Other datasets (mnist, cifar10) come
from TensorFlow Datasets on a connected machine, behind the same `load(name)`.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from dataclasses import dataclass, replace
from typing import Callable
from pathlib import Path

import numpy as np

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
KERAS_CACHE_DIR = Path.home() / ".keras" / "datasets" / "fashion-mnist"
TFDS_DATASETS = ("mnist", "cifar10")
# Yosinski et al.'s dissimilar halves, scaled: upper-body garments vs trousers, shoes and bags
DISSIMILAR_SPLIT = ((0, 2, 3, 4, 6), (1, 5, 7, 8, 9))
SPLITS = ("random", "dissimilar")
NORM_MODES = ("raw", "standard")
MISSING_HELP = (
    "Fashion-MNIST not found: install Debian's package dataset-fashion-mnist (`make data`) "
    "or set CNNLAB_DATA to a folder holding the four IDX files"
)
REPAIR_HELP = "reinstall dataset-fashion-mnist or point CNNLAB_DATA at an intact copy"


class DataError(RuntimeError):
    """A dataset that cannot be found, read or used as asked; the message is one line."""


@dataclass(frozen=True)
class Dataset:
    """Train and test arrays: images NHWC, labels int64, and the class names."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


# --- finding and reading Fashion-MNIST -------------------------------------------------------


def _idx_path(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (folder / name).exists():
            return folder / name
    return None


def fashion_mnist_dir() -> Path | None:
    """The first folder that holds all four IDX files, or None. `$CNNLAB_DATA`, when set, is the only
    place looked at: a folder named on purpose that lacks the files is an error, never skipped."""
    explicit = os.environ.get("CNNLAB_DATA")
    if explicit:
        missing = [stem for stem in IDX_FILES.values() if _idx_path(Path(explicit), stem) is None]
        if missing:
            raise DataError(f"CNNLAB_DATA={explicit} lacks {', '.join(missing)} (.gz or plain): point it at a folder "
                            "with the four Fashion-MNIST IDX files, or unset it to use Debian's dataset-fashion-mnist")
        return Path(explicit)
    for folder in (DEBIAN_DIR, KERAS_CACHE_DIR):
        if all(_idx_path(folder, stem) for stem in IDX_FILES.values()):
            return folder
    return None


def _fashion_mnist_files(folder: Path) -> dict[str, Path]:
    """The four IDX files in `folder`, by array name (x_train, ...)."""
    return {key: _idx_path(folder, stem) for key, stem in IDX_FILES.items()}


def _read_bytes(path: Path) -> bytes:
    """The content of an IDX file, unzipped when it ends in .gz; a damaged file is a one-line DataError."""
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as err:  # a cut-off or corrupt .gz file
        raise DataError(f"{path}: cannot be read ({' '.join(str(err).split())}); {REPAIR_HELP}") from None


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped) into a uint8 array of its declared shape."""
    return _parse_idx(_read_bytes(path), path)


def _parse_idx(data: bytes, path: Path) -> np.ndarray:
    """The uint8 array of declared shape that an IDX file's bytes hold (a view of `data`); a header that
    disagrees with the body is a DataError naming `path`."""
    if len(data) < 4 or data[0:2] != b"\x00\x00" or data[2] != 0x08:
        raise DataError(f"{path}: not an unsigned-byte IDX file")
    ndim = data[3]
    if len(data) < 4 + 4 * ndim:
        raise DataError(f"{path}: header declares {ndim} dimensions but the file ends after {len(data)} bytes")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise DataError(f"{path}: header says {shape} but holds {body.size} values")
    return body.reshape(shape)


def _check_fashion_mnist(arrays: dict, sources: dict) -> None:
    """60,000/10,000 images of 28x28, as many labels, each 0-9; a DataError names where the array at fault came
    from (`sources`, by array name)."""
    expected = {"x_train": (60000, 28, 28), "y_train": (60000,), "x_test": (10000, 28, 28), "y_test": (10000,)}
    for key, shape in expected.items():
        if arrays[key].shape != shape:
            raise DataError(f"{sources[key]}: {key} has shape {arrays[key].shape}, expected {shape} ({REPAIR_HELP})")
    for key in ("y_train", "y_test"):
        if arrays[key].min() < 0 or arrays[key].max() > 9:
            raise DataError(f"{sources[key]}: {key} holds labels outside 0-9 ({REPAIR_HELP})")


def _download_fashion_mnist() -> dict:
    import keras

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
    except Exception:
        raise DataError(MISSING_HELP) from None
    return dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)


def load_fashion_mnist() -> Dataset:
    """Fashion-MNIST, checked: 60,000/10,000 images of 28x28x1 uint8, labels 0-9."""
    folder = fashion_mnist_dir()
    if folder is None:
        arrays = _download_fashion_mnist()
        sources = dict.fromkeys(arrays, "keras.datasets download")
    else:
        sources = _fashion_mnist_files(folder)
        arrays = {key: read_idx(path) for key, path in sources.items()}
    _check_fashion_mnist(arrays, sources)
    return Dataset(
        name="fashion_mnist",
        x_train=arrays["x_train"][..., None],
        y_train=arrays["y_train"].astype(np.int64),
        x_test=arrays["x_test"][..., None],
        y_test=arrays["y_test"].astype(np.int64),
        class_names=FASHION_MNIST_CLASSES,
    )


# fingerprints of checked files in this process, by each file's path, size and modification time
_FINGERPRINTS: dict[tuple, str] = {}


def fashion_mnist_fingerprint() -> str:
    """A short hash of the four IDX files' contents, once they are found (downloaded by Keras only when no
    folder has them) and checked as load_fashion_mnist checks them: headers against bodies, shapes, labels.
    Reads the files once per process while their size and mtime stay; imports nothing heavy to do so."""
    folder = fashion_mnist_dir()
    if folder is None:
        _download_fashion_mnist()  # into Keras's cache, where fashion_mnist_dir looks
        folder = fashion_mnist_dir()
    if folder is None:
        raise DataError(MISSING_HELP)
    files = _fashion_mnist_files(folder)
    stats = {path: path.stat() for path in files.values()}
    stamp = tuple((str(path), stat.st_size, stat.st_mtime_ns) for path, stat in stats.items())
    if stamp not in _FINGERPRINTS:
        contents = {key: _read_bytes(files[key]) for key in sorted(files, key=IDX_FILES.get)}  # by file name
        _check_fashion_mnist({key: _parse_idx(raw, files[key]) for key, raw in contents.items()}, files)
        digest = hashlib.sha256()
        for raw in contents.values():
            digest.update(raw)
        _FINGERPRINTS[stamp] = digest.hexdigest()[:16]
    return _FINGERPRINTS[stamp]


# --- other datasets ---------------------------------------------------------------------------


def _load_tfds(name: str) -> Dataset:
    import tensorflow_datasets as tfds

    try:
        splits, info = tfds.load(name, split=["train", "test"], as_supervised=True, batch_size=-1, with_info=True)
    except Exception as err:
        raise DataError(f"dataset '{name}' needs a TFDS download, which failed: {' '.join(str(err).split())[:200]}")
    (x_train, y_train), (x_test, y_test) = tfds.as_numpy(splits)
    return Dataset(
        name=name,
        x_train=x_train,
        y_train=y_train.astype(np.int64),
        x_test=x_test,
        y_test=y_test.astype(np.int64),
        class_names=tuple(info.features["label"].names),
    )


# --- the registry -------------------------------------------------------------------------------

TASKS = ("classification", "segmentation")


@dataclass(frozen=True)
class Source:
    """A dataset the suite knows by name: how to load it, how to fingerprint it for cache keys (None for
    one that comes from a download, which an offline run cannot pin), and the task its labels are for."""

    load: Callable[[], Dataset]
    fingerprint: Callable[[], str] | None
    task: str


REGISTRY: dict[str, Source] = {}


def register(name: str, load: Callable[[], Dataset], fingerprint: Callable[[], str] | None = None,
             task: str = "classification") -> None:
    """Make a dataset loadable by name (an experiment's derived set registers here too)."""
    if task not in TASKS:
        raise ValueError(f"dataset '{name}': unknown task '{task}' (allowed: {', '.join(TASKS)})")
    REGISTRY[name] = Source(load, fingerprint, task)


def offline_datasets() -> tuple[str, ...]:
    """The datasets a run may declare: those with a fingerprint, which its cache key can pin."""
    return tuple(name for name, source in REGISTRY.items() if source.fingerprint)


def _source(name: str) -> Source:
    if name not in REGISTRY:
        raise DataError(f"unknown dataset '{name}' (allowed: {', '.join(REGISTRY)})")
    return REGISTRY[name]


def load(name: str = "fashion_mnist") -> Dataset:
    """A registered dataset by name: fashion_mnist (offline) or a TFDS dataset (mnist, cifar10)."""
    return _source(name).load()


def fingerprint(name: str = "fashion_mnist") -> str:
    """A short hash of a dataset's content, for cache keys, once its files are found and checked: the runner asks
    for every dataset a run declares before anything starts."""
    source = _source(name)
    if source.fingerprint is None:
        raise DataError(f"no fingerprint for dataset '{name}' (allowed: {', '.join(offline_datasets())})")
    return source.fingerprint()


register("fashion_mnist", load_fashion_mnist, fashion_mnist_fingerprint)
for _name in TFDS_DATASETS:
    register(_name, lambda _name=_name: _load_tfds(_name))


# --- derived datasets: pure functions of arrays and a seed -------------------------------------


def subset(x: np.ndarray, y: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` examples drawn without replacement, the same for the same seed."""
    if not 0 < n <= len(x):
        raise DataError(f"subset size {n} must be between 1 and {len(x)}")
    idx = np.sort(np.random.default_rng(seed).permutation(len(x))[:n])
    return x[idx], y[idx]


def split_validation(x: np.ndarray, y: np.ndarray, fraction: float, seed: int):
    """(x_train, y_train), (x_val, y_val): a random `fraction` held out, reproducibly."""
    if not 0 < fraction < 1:
        raise DataError(f"validation fraction {fraction} must be between 0 and 1")
    perm = np.random.default_rng(seed).permutation(len(x))
    n_val = int(round(fraction * len(x)))
    if not 0 < n_val < len(x):
        raise DataError(f"validation fraction {fraction} of {len(x)} examples leaves an empty split")
    val, train = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    return (x[train], y[train]), (x[val], y[val])


def select_classes(x: np.ndarray, y: np.ndarray, classes) -> tuple[np.ndarray, np.ndarray]:
    """Keep only `classes` and relabel them 0..k-1 in the order given."""
    classes = list(classes)
    if len(set(classes)) != len(classes):
        raise DataError(f"classes {classes} repeat a class")
    mapping = np.full(int(max(y.max(), max(classes))) + 1, -1, dtype=np.int64)
    mapping[classes] = np.arange(len(classes))
    keep = np.isin(y, classes)
    return x[keep], mapping[y[keep]]


def class_split(kind: str, seed: int = 0, num_classes: int = 10) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Two halves (A, B) of the classes, each sorted: `random` draws them from `seed`, `dissimilar` is
    DISSIMILAR_SPLIT (upper-body garments vs the rest of Fashion-MNIST)."""
    if kind not in SPLITS:
        raise DataError(f"unknown class split '{kind}' (allowed: {', '.join(SPLITS)})")
    if kind == "dissimilar":
        return DISSIMILAR_SPLIT
    order = np.random.default_rng(seed).permutation(num_classes)
    half = num_classes // 2
    return tuple(sorted(int(c) for c in order[:half])), tuple(sorted(int(c) for c in order[half:]))


def per_class_subset(x: np.ndarray, y: np.ndarray, per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`per_class` examples of every class, drawn without replacement from `seed`, in their original order."""
    counts = np.bincount(y)
    fewest = counts[counts > 0].min()
    if not 0 < per_class <= fewest:
        raise DataError(f"{per_class} examples per class asked; allowed: 1 to {fewest}")
    rng = np.random.default_rng(seed)
    idx = np.sort(np.concatenate([rng.permutation(np.flatnonzero(y == c))[:per_class] for c in np.unique(y)]))
    return x[idx], y[idx]


def pad_to(x: np.ndarray, size: int) -> np.ndarray:
    """Zero-pad NHWC images symmetrically to size x size (28 -> 32 adds 2 on each side)."""
    h, w = x.shape[1:3]
    if size < h or size < w or (size - h) % 2 or (size - w) % 2:
        raise DataError(f"cannot pad {h}x{w} images symmetrically to {size}x{size}")
    p, q = (size - h) // 2, (size - w) // 2
    return np.pad(x, ((0, 0), (p, p), (q, q), (0, 0)))


def normalise(x: np.ndarray, mode: str = "raw", reference: np.ndarray | None = None) -> np.ndarray:
    """float32 images: `raw` scales to [0, 1]; `standard` also subtracts the mean and divides by the
    std of `reference` (the training images, so test data uses the training statistics)."""
    if mode not in NORM_MODES:
        raise DataError(f"unknown normalisation '{mode}' (allowed: {', '.join(NORM_MODES)})")
    out = x.astype(np.float32) / 255.0
    if mode == "standard":
        ref = (x if reference is None else reference).astype(np.float32) / 255.0
        out = (out - ref.mean()) / ref.std()
    return out


def prepare(
    name: str = "fashion_mnist",
    n_train: int | None = None,
    n_test: int | None = None,
    val_fraction: float = 0.0,
    classes=None,
    pad: int | None = None,
    norm: str = "raw",
    seed: int = 0,
) -> Dataset:
    """Load a dataset and derive what an experiment needs, in a fixed order: classes, subsets of the
    training and test images, validation split, padding, normalisation (statistics from the training part)."""
    ds = load(name)
    x_tr, y_tr, x_te, y_te = ds.x_train, ds.y_train, ds.x_test, ds.y_test
    names = ds.class_names
    if classes is not None:
        x_tr, y_tr = select_classes(x_tr, y_tr, classes)
        x_te, y_te = select_classes(x_te, y_te, classes)
        names = tuple(ds.class_names[c] for c in classes)
    if n_train is not None:
        x_tr, y_tr = subset(x_tr, y_tr, n_train, seed)
    if n_test is not None:
        x_te, y_te = subset(x_te, y_te, n_test, seed)
    x_val = y_val = None
    if val_fraction:
        (x_tr, y_tr), (x_val, y_val) = split_validation(x_tr, y_tr, val_fraction, seed)
    if pad is not None:
        x_tr, x_te = pad_to(x_tr, pad), pad_to(x_te, pad)
        x_val = None if x_val is None else pad_to(x_val, pad)
    reference = x_tr
    x_tr, x_te = normalise(x_tr, norm, reference), normalise(x_te, norm, reference)
    x_val = None if x_val is None else normalise(x_val, norm, reference)
    return replace(ds, x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te, x_val=x_val, y_val=y_val,
                   class_names=names)

