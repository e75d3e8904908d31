"""cnnlab.report: the scorecard, exported tables and figures, number formatting, experiments without a result."""

import json
import re
import shutil

import pandas as pd
import pytest
from bs4 import BeautifulSoup
from conftest import claim, fake_run, run_two_toys

from cnnlab.suite import checks, report, verdicts
from cnnlab.suite.verdicts import table_rows
from cnnlab.suite.claim_text import fmt


@pytest.fixture
def two_runs(toy_root, monkeypatch):
    """98_other and 99_toy run in the quick profile (conftest's run_two_toys)."""
    run_two_toys(toy_root, monkeypatch)
    return toy_root


def test_scorecard_has_one_row_per_claim(two_runs):
    path = report.build("quick").scorecard
    assert path == two_runs / "results" / "SCORECARD.md"
    text = path.read_text()
    assert text.startswith("# cnnlab scorecard (quick profile)\n")
    assert ("from 2 experiment run(s): 6 claims, 2 reproduced, 2 partial, 0 inconclusive, 1 not reproduced, "
            "1 not applicable.") in text
    assert re.search(r"^- \*\*99_toy\*\*: \d+ s, peak memory 0\.\d GiB, seeds \[0\], TensorFlow 2\.\S+, "
                     r"Keras 3\.\S+$", text, re.M)
    rows = table_rows(text)
    assert rows == [
        ["experiment", "id", "statement", "expected", "measured", "verdict"],
        ["98_other", "toy.n", "n is three", "3 items", "4 items", "not_reproduced"],
        ["99_toy", "toy.n", "n is three", "3 items", "3 items", "reproduced"],
        ["99_toy", "toy.rate", "rate is about a half", "0.5", "0.55", "partial"],
        ["99_toy", "toy.big", "big count", "1,234,567 params", "1,234,567 params", "reproduced"],
        ["99_toy", "toy.info", "reported only", "n/a", "n/a", "not_applicable"],
        ["99_toy", "toy.seeds", "b is faster", "6 x", ">= 3.2269 x [2.017, 5.163]", "partial"],
    ]
    rules = text.split("## Rules and notes\n", 1)[1]
    assert "- `toy.n` (test): measured == 3." in rules
    assert "- `toy.rate` (slide 7): |measured - 0.5| <= 0.01 (partial if <= 0.1). Note: ten percent off" in rules
    assert "- `toy.big` (test): measured >= 1000000." in rules
    assert "- `toy.info` (test): no rule: reported only." in rules
    assert "wholly above 3: reproduced; wholly above no effect but not above 3: partial;" in rules
    assert "inconclusive. Per seed: >=4, 3, 2.8." in rules
    assert not (two_runs / "results" / "SCORECARD.md.tmp").exists()


def test_tables_and_figures_are_exported(two_runs):
    stale = two_runs / "results" / "tables" / "99_toy" / "old.csv"  # from an earlier report
    stale.parent.mkdir(parents=True)
    stale.write_text("a\n1\n")
    report.build("quick")
    assert not stale.exists()
    tables = two_runs / "results" / "tables" / "99_toy"
    assert sorted(p.name for p in tables.iterdir()) == ["sizes.csv", "sizes.md"]
    frame = pd.read_csv(tables / "sizes.csv")
    assert frame.to_dict("list") == {"layer": ["conv|1", "fc"], "params": [1234567, 3]}
    assert table_rows((tables / "sizes.md").read_text()) == [["layer", "params"], ["conv\\|1", "1234567"],
                                                             ["fc", "3"]]
    assert list((two_runs / "results" / "tables" / "98_other").iterdir()) == []
    figure = two_runs / "results" / "figures" / "99_toy" / "line.png"
    assert figure.read_bytes()[:4] == b"\x89PNG"


def test_scorecard_from_results_only_of_that_profile(toy_root):
    fake_run(toy_root, "01_a", "smoke", [claim("a.x", "reproduced"), claim("a.y", "not_applicable")])
    fake_run(toy_root, "01_a", "quick", [claim("a.z", "partial")])
    fake_run(toy_root, "02_b", "smoke", [claim("b.x", "reproduced", source_inconsistent=True,
                                               statement="a | pipe", note="line\nbreak")])
    text = report.build("smoke").scorecard.read_text()
    assert ("from 2 experiment run(s): 3 claims, 2 reproduced, 0 partial, 0 inconclusive, 0 not reproduced, "
            "1 not applicable.") in text
    assert "- **01_a**: 12 s, seeds [0, 1], TensorFlow 2.21.0, Keras 3.15.1" in text
    rows = table_rows(text)
    assert [r[1] for r in rows[1:]] == ["a.x", "a.y", "b.x"]
    assert rows[3] == ["02_b", "b.x", "a \\| pipe", "1", "2", "reproduced (source inconsistent)"]
    assert "a.z" not in text


def test_no_results_names_the_profile(toy_root):
    with pytest.raises(FileNotFoundError, match=r"no results for profile 'full' under results/runs"):
        report.build("full")
    fake_run(toy_root, "01_a", "smoke", [claim("a.x", "reproduced")])
    with pytest.raises(FileNotFoundError, match="profile 'quick'"):
        report.build("quick")
    assert not (toy_root / "results" / "SCORECARD.md").exists()


@pytest.mark.parametrize(
    "value, unit, text",
    [
        (1234567, "", "1,234,567"),
        (0.123456, "", "0.12346"),
        (12345.6, "", "12,346"),
        (None, "M", "n/a"),
        (138.36, "M", "138.36 M"),
        (1234567.0, "params", "1,234,567 params"),
        (-2.0, "", "-2"),
        (0, "", "0"),
        (0.5, "%", "0.5 %"),
        (True, "", "True"),
        ("abc", "", "abc"),
        (float("nan"), "", "nan"),
        (1e20, "", "1e+20"),
        (1.5e-7, "", "1.5e-07"),
    ],
)
def test_fmt(value, unit, text):
    assert fmt(value, unit) == text


def test_collect_reads_every_experiment(toy_root):
    fake_run(toy_root, "02_b", "quick", [])
    fake_run(toy_root, "01_a", "quick", [claim("a.x", "partial")])
    runs = report.collect("quick")
    assert [r["experiment"] for r in runs] == ["01_a", "02_b"]
    assert runs[0]["run_dir"] == toy_root / "results" / "runs" / "01_a" / "quick"
    assert json.loads((runs[0]["run_dir"] / "results.json").read_text())["claims"][0]["verdict"] == "partial"


@pytest.mark.parametrize("ours, theirs, reported", [
    ("reproduced", "reproduced", "reproduced"),
    ("reproduced", "partial", "partial"),
    ("partial", "reproduced", "partial"),
    ("reproduced", "inconclusive", "inconclusive"),
    ("partial", "inconclusive", "inconclusive"),
    ("not_reproduced", "inconclusive", "inconclusive"),
    ("inconclusive", "not_reproduced", "inconclusive"),
    ("reproduced", "not_reproduced", "inconclusive"),
    ("not_reproduced", "partial", "inconclusive"),
    ("not_applicable", "reproduced", "inconclusive"),
    ("not_reproduced", "not_applicable", "inconclusive"),
])
def test_the_weaker_of_two_verdicts_is_what_both_runs_support(ours, theirs, reported):
    assert checks.weaker(ours, theirs) == reported


def test_a_verdict_that_differs_on_the_check_run_is_reported_as_the_weaker(toy_root):
    fake_run(toy_root, "01_a", "quick", [claim("a.x", "reproduced"), claim("a.y", "partial", note="n"),
                                         claim("a.z", "not_applicable"), claim("a.w", "reproduced"),
                                         claim("a.v", "not_reproduced")])
    fake_run(toy_root, "01_a", "quick-check", [claim("a.x", "reproduced", measured=3),
                                               claim("a.y", "not_reproduced", measured=5), claim("a.z", "partial"),
                                               claim("a.w", "partial", measured=1.5),
                                               claim("a.v", "inconclusive")])
    fake_run(toy_root, "02_b", "quick", [claim("b.x", "reproduced")])  # no check run; 99_toy never run
    text = report.build("quick").scorecard.read_text()
    assert ("from 2 experiment run(s): 6 claims, 2 reproduced, 1 partial, 3 inconclusive, 0 not reproduced, "
            "0 not applicable.") in text
    assert ("Checked: 1 of 3 experiments, each run again on another floating-point path (`make check-verdicts`: one "
            "thread, oneDNN off, as another CPU would compute); where the two verdicts differ (4 claims) the weaker is "
            "reported, partial where one is reproduced and the other partial, else inconclusive, with both in the "
            "note.") in text
    assert "- **01_a**: 12 s, seeds [0, 1], TensorFlow 2.21.0, Keras 3.15.1; check run: 4 of 5 verdicts differ" in text
    assert "- **02_b**: 12 s, seeds [0, 1], TensorFlow 2.21.0, Keras 3.15.1\n" in text
    assert [r[5] for r in table_rows(text)[1:]] == ["reproduced", "inconclusive", "inconclusive", "partial",
                                                    "inconclusive", "reproduced"]
    rules = text.split("## Rules and notes\n", 1)[1]
    assert ("- `a.y` (s): r. Note: n; partial here but not_reproduced on the check run's floating-point path "
            "(measured 5): the verdict depends on the machine; reported inconclusive, what both runs support") in rules
    assert ("reproduced here but partial on the check run's floating-point path (measured 1.5): the verdict depends "
            "on the machine; reported partial, what both runs support") in rules
    assert "not_applicable here but partial on the check run's floating-point path (measured 2)" in rules


def test_without_check_runs_the_scorecard_and_the_report_say_so(toy_root):
    fake_run(toy_root, "01_a", "quick", [claim("a.x", "reproduced")])
    fake_run(toy_root, "02_b", "quick", [claim("b.x", "partial")])  # and 99_toy never run
    written = report.build("quick")
    said = ("Checked: 0 of 3 experiments. No check run was found, so no verdict was tested on another floating-point "
            "path and one near its rule's bounds may read otherwise in a checked scorecard (the committed one is "
            "checked): `make check-verdicts` runs the checks.")
    assert f"\n{said}\n" in written.scorecard.read_text()
    index = BeautifulSoup(written.index.read_text(), "html.parser")
    assert " ".join(index.select_one("#checked").get_text().split()) == said.replace("`", "")


def test_a_check_run_of_other_parameters_is_not_applied(toy_root):
    fake_run(toy_root, "01_a", "quick", [claim("a.x", "reproduced")], params=dict(epochs=30, precision="float32"))
    fake_run(toy_root, "01_a", "quick-check", [claim("a.x", "inconclusive")], params=dict(epochs=20))
    fake_run(toy_root, "02_b", "quick", [claim("b.x", "reproduced")], params=dict(n=1, precision="float32"))
    fake_run(toy_root, "02_b", "quick-check", [claim("b.x", "inconclusive")], params=dict(n=1))  # added since: same
    text = report.build("quick").scorecard.read_text()
    assert "Checked: 1 of 3 experiments" in text  # 99_toy never ran
    assert ("Not applied: the check run of 01_a, made with other values of epochs (`make check-verdicts` runs them "
            "again).") in text
    assert "- **01_a**: 12 s, seeds [0, 1], float32 precision, TensorFlow 2.21.0, Keras 3.15.1; check run not " \
           "applied: other values of epochs\n" in text
    assert "| 01_a | a.x | about a.x | 1 | 2 | reproduced |" in " ".join(text.split())
    assert "| 02_b | b.x | about b.x | 1 | 2 | inconclusive |" in " ".join(text.split())


def test_an_unchecked_scorecard_keeps_the_verdicts_the_last_checked_one_weakened_while_its_runs_decide_alike(toy_root):
    fake_run(toy_root, "01_a", "quick", [claim("a.x", "reproduced"), claim("a.y", "partial")])
    fake_run(toy_root, "01_a", "quick-check", [claim("a.x", "inconclusive"), claim("a.y", "reproduced")])
    fake_run(toy_root, "02_b", "quick", [claim("b.x", "reproduced")])
    report.build("quick")
    summary = json.loads((toy_root / "results" / "summary.json").read_text())
    assert summary["relabelled"] == [dict(experiment="01_a", id="a.x", ran="reproduced", check="inconclusive",
                                          verdict="inconclusive")]  # a.y: partial either way
    shutil.rmtree(toy_root / "results" / "runs" / "01_a" / "quick-check")  # as on a fresh clone: no check runs
    for _ in range(2):  # and again from the unchecked report's own summary
        written = report.build("quick")
        text = written.scorecard.read_text()
        assert ("`make check-verdicts` runs the checks. Without a check run here, 1 claims keep the weaker verdict the "
                "last checked report's check runs gave them, their runs deciding as the checked ones did: `a.x` (01_a) "
                "reproduced here, reported inconclusive.\n") in text
        assert [r[5] for r in table_rows(text)[1:]] == ["inconclusive", "partial", "reproduced"]
        assert "- **01_a**: 12 s, seeds [0, 1], TensorFlow 2.21.0, Keras 3.15.1; no check run here, 1 verdicts kept " \
               "from the last checked report's\n" in text
        assert ("reproduced here as in the last checked report, whose check run decided inconclusive on another "
                "floating-point path: the verdict depends on the machine; reported inconclusive until a check run "
                "here decides it again") in text
    assert "a.x (01_a) reproduced here, reported inconclusive" in BeautifulSoup(
        written.index.read_text(), "html.parser").select_one("#checked").get_text()
    fake_run(toy_root, "01_a", "quick", [claim("a.x", "partial"), claim("a.y", "partial")])  # decided otherwise now
    text = report.build("quick").scorecard.read_text()
    assert [r[5] for r in table_rows(text)[1:]] == ["partial", "partial", "reproduced"]
    assert ("1 claims read as their runs now decide them, otherwise than when the last checked report's check runs "
            "changed them: `a.x` (01_a) reproduced then, reported inconclusive then.\n") in text


def test_verdict_changes_between_two_scorecards_by_experiment_and_claim():
    def scorecard(rows):
        lines = ["# s", "", "| experiment | id | statement | verdict |", "|:--|:--|:--|:--|"]
        return "\n".join(lines + [f"| {e} | {i} | a \\| b | {v} |" for e, i, v in rows]) + "\n\n- `x`: rule |\n"

    before = scorecard([("01", "a.x", "reproduced"), ("01", "a.y", "partial"), ("02", "a.x", "inconclusive")])
    after = scorecard([("01", "a.x", "reproduced"), ("01", "a.y", "not_reproduced"), ("03", "c", "reproduced")])
    assert verdicts.scorecard_verdicts(before) == {("01", "a.x"): "reproduced", ("01", "a.y"): "partial",
                                                 ("02", "a.x"): "inconclusive"}
    old, new = verdicts.scorecard_verdicts(before), verdicts.scorecard_verdicts(after)
    assert verdicts.verdict_changes(old, new) == [("01", "a.y", "partial", "not_reproduced"),
                                                ("02", "a.x", "inconclusive", "-"), ("03", "c", "-", "reproduced")]
    assert verdicts.verdict_changes(old, old) == []


def test_swept_claims_are_listed_beside_the_main_table_which_keeps_every_verdict(toy_root):
    swept = claim("a.holds_under.x", "not_reproduced", note="0 of 4 conditions reproduced; nowhere")
    fake_run(toy_root, "01_a", "quick", [claim("a.x", "not_reproduced"), swept])
    text = report.build("quick").scorecard.read_text()
    assert verdicts.scorecard_verdicts(text) == {("01_a", "a.x"): "not_reproduced",
                                               ("01_a", "a.holds_under.x"): "not_reproduced"}
    section = text[text.index("## Where the claims hold"):text.index("## Rules and notes")]
    assert section.count("\n- ") == 1
    assert ("- **not_reproduced** `a.holds_under.x` (01_a): about a.holds_under.x. 0 of 4 conditions "
            "reproduced") in section


def test_without_swept_claims_the_scorecard_has_no_sweep_section(toy_root):
    fake_run(toy_root, "01_a", "quick", [claim("a.x", "reproduced")])
    assert "## Where the claims hold" not in report.build("quick").scorecard.read_text()


def test_trained_claims_show_their_convergence_and_the_budget_limited_are_counted(toy_root):
    limited = claim("a.x", "inconclusive", unit="pp", note="budget-limited: 1 of 3 runs still improving at the cap",
                    about="trained", at_plateau=[2, 3], half_budget=dict(verdict="partial", measured=1.25),
                    budget_limited=True)
    steps = claim("a.y", "reproduced", about="training", at_plateau=[3, 3], half_budget=None, budget_limited=False)
    fake_run(toy_root, "01_a", "quick", [limited, steps, claim("a.z", "reproduced")])
    fake_run(toy_root, "02_b", "quick", [claim("b.x", "partial")])
    written = report.build("quick")
    rules = written.scorecard.read_text().split("## Rules and notes\n", 1)[1]
    assert ("- `a.x` (s): r. Note: budget-limited: 1 of 3 runs still improving at the cap. At plateau: 2 of 3; at "
            "half the budget: partial (1.25 pp).\n") in rules
    assert "- `a.y` (s): r. At plateau: 3 of 3.\n" in rules
    assert "- `a.z` (s): r.\n" in rules  # a claim that trains nothing reads as before
    index = BeautifulSoup(written.index.read_text(), "html.parser")
    notes = {tr["id"]: " ".join(tr.select_one("td.note").get_text().split()) for tr in index.select("#claims tbody tr")}
    assert notes["claim-01_a-a.x"] == ("budget-limited: 1 of 3 runs still improving at the cap At plateau: 2 of 3; at "
                                       "half the budget: partial (1.25 pp).")
    assert notes["claim-01_a-a.y"] == "At plateau: 3 of 3."
    assert notes["claim-01_a-a.z"] == "" and not index.select("#claim-01_a-a\\.z .convergence")
    facts = json.loads((toy_root / "results" / "summary.json").read_text())
    assert facts["budget_limited"] == 1
    assert [e["budget_limited"] for e in facts["experiments"]] == [1, 0]
    assert "partial, 1 inconclusive, 0 not reproduced, 0 not applicable. Budget-limited: 1 (a run behind the claim" in (
        " ".join(report.readme_section(facts).split()))
    assert "budget-limited" not in report.readme_section(dict(facts, budget_limited=0))


# -- the report is atomic and per profile ----------------------------------------------------------------------


def committed_report(root):
    """Every file the quick report wrote (README included), by path relative to `root`, with its bytes."""
    files = [root / "README.md"] + [p for p in (root / "results").rglob("*") if "runs" not in p.parts]
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in files if p.is_file()}


@pytest.fixture
def reported(two_runs):
    """`two_runs`, reported once in the quick profile, with a README holding the Results markers."""
    (two_runs / "README.md").write_text(f"# toy\n\n{report.README_START}\nold\n{report.README_END}\n")
    report.build("quick")
    return two_runs


def test_another_profile_reports_into_its_own_folder_and_leaves_the_committed_one_byte_identical(reported):
    before = committed_report(reported)
    fake_run(reported, "01_a", "smoke", [claim("a.x", "reproduced")])
    written = report.build("smoke")
    assert written.scorecard == reported / "results" / "smoke" / "SCORECARD.md"
    assert written.index == reported / "results" / "smoke" / "report" / "index.html" and written.readme is None
    assert sorted(p.name for p in (reported / "results" / "smoke").iterdir()) == [
        "SCORECARD.md", "figures", "report", "summary.json", "tables"]
    after = committed_report(reported)
    assert {k: v for k, v in after.items() if not k.startswith("results/smoke/")} == before


def test_a_report_that_fails_part_way_leaves_the_previous_one_byte_identical(reported, monkeypatch):
    before = committed_report(reported)
    fake_run(reported, "97_new", "quick", [claim("n.x", "reproduced")])

    def full_disk(path, text):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(report, "write_text_atomic", full_disk)  # README is the last thing replaced
    with pytest.raises(OSError, match="No space left"):
        report.build("quick")
    assert committed_report(reported) == before
    assert sorted(p.name for p in (reported / "results").iterdir()) == [
        "SCORECARD.md", "figures", "report", "runs", "summary.json", "tables"]


def test_a_report_interrupted_between_its_renames_is_put_back_by_the_next(reported):
    aside = reported / "results" / ".report-quick.old"
    aside.mkdir()
    (reported / "results" / "report").rename(aside / "report")  # killed after moving the old site aside
    before = (aside / "report" / "index.html").read_bytes()
    report._put_back(aside, reported / "results")
    assert (reported / "results" / "report" / "index.html").read_bytes() == before and not aside.exists()


@pytest.mark.parametrize("name, problem", [("report", "Not a directory"), ("SCORECARD.md", "Is a directory")])
def test_something_of_the_users_where_the_report_writes_is_refused_untouched(reported, name, problem):
    target = reported / "results" / name
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    target.mkdir() if name.endswith(".md") else target.write_text("mine")
    with pytest.raises(OSError, match=problem) as raised:
        report.build("quick")
    assert raised.value.filename == str(target)
    assert target.is_dir() if name.endswith(".md") else target.read_text() == "mine"
    assert not list((reported / "results").glob(".report-*"))


def test_a_record_naming_files_outside_its_run_folder_copies_and_deletes_nothing(reported, capsys):
    tracked = reported / "results" / "tables" / "99_toy" / "sizes.csv"
    before = tracked.read_bytes()
    results = reported / "results" / "runs" / "98_other" / "quick" / "results.json"
    record = json.loads(results.read_text())
    results.write_text(json.dumps(dict(record, tables={"t": "../../../../tables/99_toy/sizes.csv"},
                                       figures=["/etc/hostname"])))
    report.build("quick")
    assert capsys.readouterr().err.startswith("cnnlab: warning: results/runs/98_other/quick/results.json is "
                                              "damaged (its table 't' ../../../../tables/99_toy/sizes.csv is outside")
    assert tracked.read_bytes() == before
    assert not list((reported / "results").rglob("hostname"))
    assert "- **98_other**: no result: results/runs/98_other/quick/results.json is damaged: its table 't'" in (
        reported / "results" / "SCORECARD.md").read_text()


def test_a_run_s_precision_is_shown_beside_its_seeds(toy_root):
    fake_run(toy_root, "01_a", "quick", [claim("a.x", "reproduced")])
    fake_run(toy_root, "02_b", "quick", [claim("b.x", "reproduced")])
    results = toy_root / "results" / "runs" / "02_b" / "quick" / "results.json"
    results.write_text(json.dumps(dict(json.loads(results.read_text()), params={"precision": "mixed_bfloat16"})))
    written = report.build("quick")
    text = written.scorecard.read_text()
    assert "- **01_a**: 12 s, seeds [0, 1], TensorFlow 2.21.0" in text
    assert "- **02_b**: 12 s, seeds [0, 1], mixed_bfloat16 precision, TensorFlow 2.21.0" in text
    versions = [" ".join(td.get_text().split()) for td in BeautifulSoup(written.index.read_text(), "html.parser")
                .select("#experiments tr.run td.small:nth-last-child(2)")]
    assert versions[1].endswith("; mixed_bfloat16 precision") and "precision" not in versions[0]


def test_the_scorecard_and_the_report_say_where_the_runs_trained(toy_root):
    nodes = [dict(node="n1", host="10.0.0.1", alive=True, cpus=8, gpus=1), dict(node="n2", host="10.0.0.2",
                                                                              alive=True, cpus=8, gpus=1)]
    tasks = [dict(item="('a', 0)", node="n1", seconds=3.0), dict(item="('a', 1)", node="n2", seconds=2.9),
             dict(item="('b', 0)", node="n1", seconds=3.1)]
    fake_run(toy_root, "01_a", "quick", [claim("a.x", "reproduced")], workers=2)
    fake_run(toy_root, "02_b", "quick", [claim("b.x", "reproduced")], workers=1,
             cluster=dict(address="10.0.0.1:6379", nodes=nodes, tasks=tasks))
    written = report.build("quick")
    text = written.scorecard.read_text()
    assert "- **01_a**: 12 s, seeds [0, 1], TensorFlow 2.21.0, Keras 3.15.1; 2 workers\n" in text
    where = "; Ray cluster at 10.0.0.1:6379, 2 nodes (2 GPUs), 3 tasks on 2 of them"
    assert f"- **02_b**: 12 s, seeds [0, 1], TensorFlow 2.21.0, Keras 3.15.1{where}\n" in text
    page = BeautifulSoup((written.index.parent / "02_b.html").read_text(), "html.parser")
    assert where.removeprefix("; ") in " ".join(page.select_one("#run").find_next("p").get_text().split())
