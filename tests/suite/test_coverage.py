"""The lecture coverage table: well formed, naming only claims the committed scorecard has, and shown by the
report with each claim's verdict."""

import json
import re

import pytest
from bs4 import BeautifulSoup
from conftest import claim, fake_run

from cnnlab import paths
from cnnlab.suite import coverage, report, verdicts

TOY_TABLE = """number,deck,slide,claims,reason
1,001,a is checked,a.x,
2,000 002,b too,a.x zz.gone,
3,004,c needs colour,,needs colour images: not applicable here
"""


def committed_claim_ids() -> set[str]:
    return {claim_id for _, claim_id in verdicts.scorecard_verdicts((paths.RESULTS / report.SCORECARD).read_text())}


def test_every_claim_the_table_names_is_in_the_committed_scorecard():
    rows = coverage.load()
    named = {c for row in rows for c in row.claims}
    assert len(rows) >= 90 and len(named) >= 60
    assert sorted(named - committed_claim_ids()) == []
    assert sum(bool(row.claims) for row in rows) == json.loads(
        (paths.RESULTS / "summary.json").read_text())["coverage"]["covered"]


@pytest.mark.parametrize("line, message", [
    ("1,001,a slide,,", "row 1 needs its deck, the slide's text and either claim ids or the reason none checks it"),
    ("1,001,a slide,a.x,and a reason", "row 1 needs its deck"),
    ("2,001,a slide,a.x,", "row 1 is numbered 2"),
])
def test_a_malformed_row_is_refused_with_its_number(tmp_path, line, message):
    table = tmp_path / "coverage.csv"
    table.write_text(f"number,deck,slide,claims,reason\n{line}\n")
    with pytest.raises(ValueError, match=re.escape(message)):
        coverage.load(table)


def test_the_report_counts_the_coverage_and_shows_each_deck_claim_with_its_verdict(toy_root, monkeypatch):
    table = toy_root / "coverage.csv"
    table.write_text(TOY_TABLE)
    monkeypatch.setattr(coverage, "COVERAGE_FILE", table)
    fake_run(toy_root, "01_a", "quick", [claim("a.x", "partial")])
    written = report.build("quick")
    assert ("\nLecture coverage: 2 of the 3 checkable claims of the five lecture decks have a row here (the report's "
            "coverage page lists every one, or why it has none); 1 claim ids the table names are not in this "
            "scorecard: `zz.gone`.\n") in written.scorecard.read_text()
    summary = json.loads((toy_root / "results" / "summary.json").read_text())
    assert summary["coverage"] == dict(deck_claims=3, covered=2, lacking=["zz.gone"])
    page = BeautifulSoup((written.index.parent / "coverage.html").read_text(), "html.parser")
    rows = page.select("#coverage tbody tr")
    assert [r.get("class") for r in rows] == [["covered"], ["covered"], ["uncovered"]]
    assert rows[0].select_one("a")["href"] == "index.html?experiment=01_a#claim-01_a-a.x"
    assert rows[0].select_one(".verdict").get_text() == "partial"
    assert "zz.gone (not in this scorecard)" in " ".join(rows[1].get_text().split())
    assert "not covered: needs colour images: not applicable here" in rows[2].get_text()
    index = BeautifulSoup(written.index.read_text(), "html.parser")
    assert " ".join(index.select_one("#coverage-count").get_text().split()) == (
        "Lecture coverage: 2 of the 3 checkable claims of the five lecture decks have a row here.")
