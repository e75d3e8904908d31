"""cnnlab.suite.results and atomic: atomic JSON writes, the notebook's Record with its memory and modules."""

import json
import math
import os

import numpy as np
import pandas as pd
import pytest

from cnnlab.rules import at_most, exact, within
from cnnlab import memory, tasks
from cnnlab.suite import atomic, results
from cnnlab.suite.atomic import write_json_atomic
from cnnlab.suite.results import Record


def folder_names(folder):
    return sorted(p.name for p in folder.iterdir())


# -- write_json_atomic --------------------------------------------------------------------------------------------


def test_write_json_atomic_writes_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "deep" / "er" / "results.json"
    write_json_atomic(path, {"a": 1, "b": [1.5, "x"], "c": None, "arr": np.arange(3), "f": np.float32(0.5),
                             "i": np.int64(7), "p": tmp_path / "x.csv"})
    assert json.loads(path.read_text()) == {"a": 1, "b": [1.5, "x"], "c": None, "arr": [0, 1, 2], "f": 0.5,
                                            "i": 7, "p": str(tmp_path / "x.csv")}
    assert path.read_text().endswith("}\n")
    assert folder_names(path.parent) == ["results.json"]


def test_write_json_atomic_replaces_by_rename(tmp_path, monkeypatch):
    path = tmp_path / "results.json"
    write_json_atomic(path, {"v": 1})
    replaced = []
    real_replace = os.replace

    def spy(src, dst):
        # at the moment of the rename the old content is still complete and the new one is whole in the temp file
        assert json.loads(path.read_text()) == {"v": 1}
        assert json.loads(open(src).read()) == {"v": 2}
        assert os.path.dirname(src) == str(tmp_path)
        replaced.append((os.path.basename(src), dst))
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", spy)
    write_json_atomic(path, {"v": 2})
    assert len(replaced) == 1 and replaced[0][1] == path
    assert replaced[0][0].startswith(".results.json.") and replaced[0][0].endswith(".tmp")
    assert json.loads(path.read_text()) == {"v": 2}
    assert folder_names(tmp_path) == ["results.json"]


@pytest.mark.parametrize(
    "bad, error",
    [({"x": object()}, TypeError), ({"ok": 1, "later": {1, 2}}, TypeError)],
)
def test_write_json_atomic_failure_keeps_previous_file(tmp_path, bad, error):
    path = tmp_path / "results.json"
    write_json_atomic(path, {"good": True})
    before = path.read_bytes()
    with pytest.raises(error):
        write_json_atomic(path, bad)
    assert path.read_bytes() == before
    assert folder_names(tmp_path) == ["results.json"]


def test_write_json_atomic_failure_without_previous_file(tmp_path):
    with pytest.raises(TypeError, match="cannot store object in results.json"):
        write_json_atomic(tmp_path / "results.json", {"x": object()})
    assert folder_names(tmp_path) == []


# -- Record ---------------------------------------------------------------------------------------------------------


def test_record_start_opens_the_record_with_its_prefix_seeds_and_precision(tmp_path):
    import keras

    rec, seeds = Record.start("06_resnet", tmp_path, seed=3, n_seeds=3, precision="mixed_bfloat16")
    try:
        assert (rec.experiment, rec.prefix, rec.output_dir) == ("06_resnet", "resnet", tmp_path)
        assert seeds == rec.seeds == [3, 4, 5]
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
    finally:
        keras.config.set_dtype_policy("float32")
    rec, _ = Record.start("01_architecture_arithmetic", tmp_path, seed=0, n_seeds=1)
    assert rec.prefix == "arith" and keras.config.dtype_policy().name == "float32"  # no precision: left as it was


def test_claim_is_decided_by_its_rule(tmp_path):
    rec = Record("01_arith", "arith", tmp_path)
    claim = rec.claim("arith.vgg16", "VGG-16 has 138M parameters", 138, np.float64(138.36), "M",
                      within(138, 0.5), source="Simonyan 2014, Table 2", note="Keras model")
    assert claim == dict(id="arith.vgg16", source="Simonyan 2014, Table 2", statement="VGG-16 has 138M parameters",
                         expected=138, measured=138.36, unit="M", verdict="reproduced",
                         rule="|measured - 138| <= 0.5", note="Keras model", source_inconsistent=False)
    assert type(claim["measured"]) is float
    missed = rec.claim("arith.alexnet", "AlexNet has 60M parameters", 60, 62.4, "M", within(60, 1, 3), source="x")
    assert missed["verdict"] == "partial"
    assert [c["id"] for c in rec.claims] == ["arith.vgg16", "arith.alexnet"]


def test_claim_without_rule_is_not_applicable(tmp_path):
    rec = Record("01_arith", "arith", tmp_path)
    claim = rec.claim("arith.note", "reported only", None, "n/a", "", None, source="slides")
    assert claim["verdict"] == "not_applicable"
    assert claim["rule"] == "no rule: reported only"
    assert claim["measured"] == "n/a"


def test_claim_rejects_wrong_prefix(tmp_path):
    rec = Record("01_arith", "arith", tmp_path)
    for bad in ("vgg.params", "arithx.params", "arith", "params.arith"):
        with pytest.raises(ValueError, match=f"claim id '{bad}' must start with 'arith.'"):
            rec.claim(bad, "s", 1, 1, "", exact(1), source="x")
    assert rec.claims == []


def test_claim_rejects_duplicate_id(tmp_path):
    rec = Record("01_arith", "arith", tmp_path)
    rec.claim("arith.a", "s", 1, 1, "", exact(1), source="x")
    with pytest.raises(ValueError, match="claim id 'arith.a' is used twice"):
        rec.claim("arith.a", "other", 2, 2, "", exact(2), source="x")
    assert len(rec.claims) == 1 and rec.claims[0]["statement"] == "s"


@pytest.mark.parametrize("measured", [float("nan"), math.inf, -math.inf, np.float32("nan")])
def test_claim_rejects_non_finite_measured(tmp_path, measured):
    rec = Record("01_arith", "arith", tmp_path)
    with pytest.raises(ValueError, match="claim 'arith.loss': measured value .* is not finite"):
        rec.claim("arith.loss", "s", 1, measured, "", at_most(1), source="x")
    assert rec.claims == []


def test_table_figure_and_save_write_files(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = tmp_path / "run"
    rec = Record("99_toy", "toy", out)
    rec.metric("accuracy", np.float32(0.75))
    rec.seeds = [0, 1]
    frame = pd.DataFrame({"layer": ["conv1", "fc"], "params": [156, 10_164]})
    table = rec.table("layers", frame)
    assert table == out / "tables" / "layers.csv"
    assert pd.read_csv(table).equals(frame)
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    figure = rec.figure("curve", fig)
    plt.close(fig)
    assert figure == out / "figures" / "curve.png"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rec.claim("toy.n", "n is three", 3, 3, "items", exact(3), source="test")
    saved = rec.save()
    assert saved == out / "record.json"
    record = json.loads(saved.read_text())
    peak = record.pop("peak_rss_mb")
    assert {"paths.py", "rules.py", "suite/results.py"} <= set(record.pop("modules"))  # what this process imported
    assert peak == pytest.approx(memory.peak_rss_mb() + tasks.workers_peak_mb(), abs=200) and peak > 20  # MiB
    assert record == dict(experiment="99_toy", seeds=[0, 1], metrics={"accuracy": 0.75},
                          tables={"layers": "tables/layers.csv"}, figures=["figures/curve.png"],
                          claims=rec.claims, cluster=None)  # no run went to a cluster
    assert folder_names(out) == ["figures", "record.json", "tables"]
    summary = rec.summary()
    assert list(summary.columns) == ["id", "expected", "measured", "unit", "verdict", "rule"]
    assert summary.iloc[0]["verdict"] == "reproduced"


def test_record_defaults_to_the_interactive_folder(toy_root):
    rec = Record("99_toy", "toy")
    assert rec.output_dir == toy_root / "results" / "runs" / "99_toy" / "interactive"
    assert rec.save() == toy_root / "results" / "runs" / "99_toy" / "interactive" / "record.json"


@pytest.mark.parametrize(
    "value, stored",
    [(float("nan"), None), ([1.0, math.inf], [1.0, None]), (np.array([np.nan, 2.0]), [None, 2.0]),
     ({"curve": (0.5, -math.inf)}, {"curve": [0.5, None]})],
)
def test_non_finite_values_are_stored_as_null(tmp_path, value, stored):
    rec = Record("99_toy", "toy", tmp_path)
    rec.metric("loss", value)
    rec.save()
    assert json.loads((tmp_path / "record.json").read_text())["metrics"] == {"loss": stored}


def test_results_file_is_readable_by_everyone(tmp_path):
    write_json_atomic(tmp_path / "results.json", {"v": 1})
    assert (tmp_path / "results.json").stat().st_mode & 0o777 == 0o644


def test_add_note_appends_to_a_claim(tmp_path):
    rec = Record("99_toy", "toy", tmp_path)
    rec.claim("toy.a", "a", 1, 1, "", exact(1), source="test")
    rec.claim("toy.b", "b", 1, 1, "", exact(1), source="test", note="first")
    rec.add_note("toy.a", "why")
    rec.add_note("toy.b", "second")
    assert [c["note"] for c in rec.claims] == ["why", "first; second"]
    with pytest.raises(KeyError, match="no claim 'toy.c'"):
        rec.add_note("toy.c", "x")
