"""cnnlab.suite.html_report: the static report site, read as HTML; README's Results section and the committed
report kept current; the report opened from disk in headless Chromium as a reader would."""

import json
import os
import re
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

import nbformat
import pytest
from bs4 import BeautifulSoup
from conftest import claim, fake_run, run_two_toys, use_workspace, write_toy

from cnnlab.suite import report, verdicts
from cnnlab.suite.verdicts import table_rows
from cnnlab.suite.claim_text import VERDICTS, findings_markdown
from cnnlab.suite.schema import read_results

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("CNNLAB_TEST_ARTIFACTS") or REPO / "build" / "test-artifacts")
LECTURE = "# 99 Toy\n\n**Lecture claim.** n is *three* & the rate is a half (Toy et al. 2024, Table 1)."


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A workspace with two toy runs (98_other without its executed notebook), one experiment never run, one whose
    last run failed, one with a cut-off results.json, and a README with the Results markers; reported once."""
    root = tmp_path_factory.mktemp("site")
    with pytest.MonkeyPatch.context() as mp:
        use_workspace(mp, root)
        run_two_toys(root, mp, markdown=LECTURE)
        (root / "results" / "runs" / "98_other" / "quick" / "98_other.ipynb").unlink()
        for name in ("95_never", "96_failed", "97_damaged"):
            write_toy(root, name=name)
        (root / "results" / "runs" / "96_failed" / "quick.failed").mkdir(parents=True)
        damaged = root / "results" / "runs" / "97_damaged" / "quick" / "results.json"
        damaged.parent.mkdir(parents=True)
        damaged.write_text('{"experiment": "97_damaged", "cla')
        (root / "README.md").write_text(f"# toy\n\n## Results\n\n{report.README_START}\nold\n{report.README_END}\n")
        written = report.build("quick")
    assert written.index == root / "results" / "report" / "index.html"
    assert written.readme == root / "README.md"
    return root


def soup(path: Path) -> BeautifulSoup:
    return BeautifulSoup(path.read_text(), "html.parser")


def results_claims(root: Path) -> list[tuple[str, dict]]:
    """Every claim of the intact quick runs' results.json files, with its experiment."""
    records = [read_results(folder)[0] for folder in sorted((root / "results" / "runs").glob("*/quick"))]
    return [(record["experiment"], c) for record in records if record for c in record["claims"]]


def test_index_lists_every_claim_with_its_values_and_coloured_verdict(site):
    index = soup(site / "results" / "report" / "index.html")
    rows = index.select("#claims tbody tr")
    assert [r["id"] for r in rows] == [f"claim-{e}-{c['id']}" for e, c in results_claims(site)]
    cells = {r["id"]: [" ".join(td.get_text().split()) for td in r.find_all("td")] for r in rows}
    assert cells["claim-99_toy-toy.rate"] == ["99_toy", "toy.rate", "rate is about a half", "slide 7", "0.5", "0.55",
                                              "", "partial", "|measured - 0.5| <= 0.01 (partial if <= 0.1)",
                                              "ten percent off"]
    assert cells["claim-99_toy-toy.seeds"][4:8] == ["6", ">= 3.2269 [2.017, 5.163] per seed: >=4, 3, 2.8", "x",
                                                    "partial"]
    assert cells["claim-98_other-toy.n"][4:8] == ["3", "4", "items", "not reproduced"]
    assert cells["claim-99_toy-toy.big"][4:6] == ["1,234,567", "1,234,567"]
    badges = {r["id"]: r.select_one(".verdict")["class"] for r in rows}
    assert badges["claim-99_toy-toy.info"] == ["verdict", "not_applicable"]
    assert [r["data-verdict"] for r in rows] == [c["verdict"] for _, c in results_claims(site)]
    assert ".verdict.reproduced { background: #1b7f3b; color: #ffffff; }" in index.style.get_text()
    assert " ".join(index.main.p.get_text().split()).startswith(
        "6 claims from 2 experiment run(s) in the quick profile: 2 reproduced, 2 partial, 0 inconclusive, "
        "1 not reproduced, 1 not applicable. Each verdict follows")


def test_overview_counts_each_experiment_and_names_those_without_a_result(site):
    index = soup(site / "results" / "report" / "index.html")
    runs = [[td.get_text(" ", strip=True) for td in tr.find_all("td")] for tr in index.select("#experiments tr.run")]
    assert [r[:7] for r in runs] == [["98_other", "1", "0", "0", "0", "1", "0"],
                                     ["99_toy", "5", "2", "2", "0", "0", "1"]]
    assert runs[1][7] == "quick" and re.fullmatch(r"\d+ s", runs[1][8]) and runs[1][9] == "0"
    assert runs[1][10].endswith(" GiB") and "TensorFlow 2." in runs[1][11] and runs[1][12] == "none"
    missing = [tr.get_text(" ", strip=True) for tr in index.select("#experiments tr.missing")]
    assert missing == [
        "95_never no result: not run in the quick profile (`cnnlab run 95_never --profile quick`)",
        "96_failed no result: its last run failed; the executed notebook is in results/runs/96_failed/quick.failed/",
        "97_damaged no result: results/runs/97_damaged/quick/results.json is damaged: not valid JSON "
        "(Unterminated string starting at: line 1 column 30 (char 29))",
    ]
    scorecard = (site / "results" / "SCORECARD.md").read_text()
    for line in missing:
        name, why = line.split(" ", 1)
        assert f"\n- **{name}**: {why}\n" in scorecard
    chart = site / "results" / "report" / "overview.png"
    assert chart.read_bytes()[:4] == b"\x89PNG" and 5_000 < chart.stat().st_size < 200_000
    assert index.select_one("img.chart")["src"] == "overview.png"


def test_experiment_page_holds_the_lecture_text_claims_tables_figures_and_notebook(site):
    folder = site / "results" / "report"
    page = soup(folder / "99_toy.html")
    lecture = page.select_one(".lecture")
    assert lecture.h1.get_text() == "99 Toy"
    assert str(lecture.p) == ("<p><strong>Lecture claim.</strong> n is <em>three</em> &amp; the rate is a half "
                              "(Toy et al. 2024, Table 1).</p>")
    assert [r["data-verdict"] for r in page.select("#claims tbody tr")] == [
        "reproduced", "partial", "reproduced", "not_applicable", "partial"]
    assert [img["src"] for img in page.select("figure img")] == ["../figures/99_toy/line.png"]
    table = page.select_one("details table.data")
    assert [[c.get_text() for c in tr.find_all(["th", "td"])] for tr in table.find_all("tr")] == [
        ["layer", "params"], ["conv|1", "1,234,567"], ["fc", "3"]]
    assert page.select_one("details a")["href"] == "../tables/99_toy/sizes.csv"
    assert page.find("a", string="The executed notebook")["href"] == "notebooks/99_toy.html"
    cells = soup(folder / "notebooks" / "99_toy.html").select(".cell")
    assert len(cells) == 4  # the markdown, the parameters, papermill's injected parameters, the code: none hidden
    assert "rec.claim(" in cells[3].get_text() and "record.json')" in cells[3].select_one(".output_area").get_text()
    other = soup(folder / "98_other.html")
    assert "The executed notebook was not found in the run folder." in other.get_text(" ", strip=True)
    assert not (folder / "notebooks" / "98_other.html").exists()
    assert "No figures." in other.get_text() and "No tables." in other.get_text()


def test_a_second_report_converts_no_notebook_and_writes_the_same_page(site, monkeypatch):
    """The executed notebook's HTML is kept beside it under its hash: unchanged runs are converted once."""
    import nbconvert

    page = site / "results" / "report" / "notebooks" / "99_toy.html"
    first = page.read_text()
    assert len(list((site / "results" / "runs" / "99_toy" / "quick").glob(".99_toy.*.html"))) == 1
    monkeypatch.setattr(nbconvert, "HTMLExporter", None)  # a conversion now would fail
    with pytest.MonkeyPatch.context() as mp:
        use_workspace(mp, site)
        report.build("quick")
    assert page.read_text() == first


def check_links(folder: Path) -> list[str]:
    """Every page of the site in `folder` loads nothing from the network (no script, stylesheet or frame from
    elsewhere, no image but a file or inline data) and its relative links and images lead to existing files.
    The pages, relative to `folder`."""
    pages = sorted(folder.rglob("*.html"))
    for page in pages:
        html = soup(page)
        assert not html.select("script[src], link[rel=stylesheet], iframe"), page
        for tag, attr in (("a", "href"), ("img", "src"), ("link", "href")):
            for element in html.find_all(tag, **{attr: True}):
                target = urlparse(element[attr])
                if target.scheme in ("http", "https", "mailto"):
                    assert tag == "a", f"{page.name}: {element}"
                elif target.scheme != "data" and target.path:
                    assert (page.parent / unquote(target.path)).resolve().is_file(), f"{page.name}: {element[attr]}"
    return [p.relative_to(folder).as_posix() for p in pages]


def test_every_link_is_relative_and_resolves_and_nothing_comes_from_the_network(site):
    assert check_links(site / "results" / "report") == [
        "98_other.html", "99_toy.html", "coverage.html", "index.html", "notebooks/99_toy.html"]


def test_readme_results_section_is_rewritten_only_when_it_changes(site):
    readme = (site / "README.md").read_text()
    facts = json.loads((site / "results" / "summary.json").read_text())
    assert readme == f"# toy\n\n## Results\n\n{report.readme_section(facts)}\n"
    assert "| [99_toy](results/report/99_toy.html) |" in readme.replace("  ", "")
    assert "- **95_never**: no result: not run in the quick profile" in readme
    assert facts["verdicts"] == {"reproduced": 2, "partial": 2, "inconclusive": 0, "not_reproduced": 1,
                                 "not_applicable": 1}
    with pytest.MonkeyPatch.context() as mp:
        use_workspace(mp, site)
        assert report.readme_with(report.readme_section(facts)) is None
        assert "The full profile's 6 lecture claims" in report.readme_with(report.readme_section(dict(facts,
                                                                                                    profile="full")))


def executed_notebook(folder: Path, claims: list[dict]) -> None:
    """An executed notebook in the run folder `folder` whose last cell shows the findings of `claims`, as
    `Record.finish` displays them."""
    findings = nbformat.v4.new_output("display_data", data={"text/markdown": findings_markdown(claims)})
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("rec.finish()", outputs=[findings])])
    nbformat.write(nb, folder / f"{folder.parent.name}.ipynb")


def notebook_verdicts(page: Path) -> dict[str, str]:
    """Claim id -> verdict as a reader of the executed notebook's page takes it: the findings' verdict, unless the
    banner above them names the claim with another."""
    html = soup(page)
    found = {li.code.get_text(): li.strong.get_text().replace(" ", "_")
             for li in html.select(".output_area li") if li.strong and li.code}
    return found | {li["data-claim"]: li["data-verdict"] for li in html.select("#before-check li")}


def one_verdict_on_every_page(results: Path) -> dict:
    """The scorecard's verdicts ((experiment, claim id) -> verdict, without a "(source inconsistent)" mark),
    asserted to be each claim's verdict in index.html, its experiment's page, its executed notebook's page and
    summary.json's counts."""
    site = results / "report"
    written = verdicts.scorecard_verdicts((results / report.SCORECARD).read_text())
    scorecard = {k: v.split(" ")[0] for k, v in written.items()}
    index = {tuple(tr["id"].removeprefix("claim-").split("-", 1)): tr["data-verdict"]
             for tr in soup(site / "index.html").select("#claims tbody tr")}
    assert index == scorecard
    for experiment in json.loads((results / report.SUMMARY).read_text())["experiments"]:
        name = experiment["experiment"]
        ours = {i: v for (e, i), v in scorecard.items() if e == name}
        page = {tr["id"].removeprefix(f"claim-{name}-"): tr["data-verdict"]
                for tr in soup(site / f"{name}.html").select("#claims tbody tr")}
        assert page == ours, name
        assert notebook_verdicts(site / "notebooks" / f"{name}.html") == ours, name
        assert experiment["verdicts"] == {v: list(ours.values()).count(v) for v in VERDICTS}, name
    return scorecard


def test_every_page_gives_a_claim_the_same_verdict(toy_root):
    main = [claim("a.x", "reproduced"), claim("a.y", "partial"), claim("a.z", "reproduced"),
            claim("a.w", "not_reproduced"), claim("a.v", "inconclusive", budget_limited=True, at_plateau=[1, 3],
                                                  half_budget=None)]
    check = [claim("a.x", "reproduced"), claim("a.y", "reproduced"), claim("a.z", "partial"),
             claim("a.w", "inconclusive"), claim("a.v", "reproduced")]
    fake_run(toy_root, "01_a", "quick", main)
    fake_run(toy_root, "01_a", "quick-check", check)
    fake_run(toy_root, "02_b", "quick", [claim("b.x", "partial"), claim("b.y", "not_applicable")])
    for run in ("01_a", "02_b"):
        folder = toy_root / "results" / "runs" / run / "quick"
        executed_notebook(folder, read_results(folder)[0]["claims"])
    report.build("quick")
    site = toy_root / "results" / "report"
    assert one_verdict_on_every_page(toy_root / "results") == {
        ("01_a", "a.x"): "reproduced", ("01_a", "a.y"): "partial", ("01_a", "a.z"): "partial",
        ("01_a", "a.w"): "inconclusive", ("01_a", "a.v"): "inconclusive",
        ("02_b", "b.x"): "partial", ("02_b", "b.y"): "not_applicable"}
    banner = soup(site / "notebooks" / "01_a.html").select_one("#before-check")
    assert [li["data-claim"] for li in banner.select("li")] == ["a.z", "a.w"]  # a.y: partial in the notebook too
    assert banner.select_one("li a")["href"] == "../01_a.html#claim-01_a-a.z"
    assert not soup(site / "notebooks" / "02_b.html").select("#before-check")


# The committed report, read without results/runs: README, summary, scorecard and report agree.

def test_readme_results_section_is_current():
    facts = json.loads((REPO / "results" / report.SUMMARY).read_text())
    assert report.readme_results((REPO / "README.md").read_text()) == report.readme_section(facts), (
        "README's Results section is stale: run `cnnlab report`")


def test_committed_summary_and_report_match_the_scorecard():
    facts = json.loads((REPO / "results" / report.SUMMARY).read_text())
    rows = table_rows((REPO / "results" / report.SCORECARD).read_text())[1:]
    for experiment in facts["experiments"]:
        verdicts = [r[5].split(" ")[0] for r in rows if r[0] == experiment["experiment"]]
        assert {v: verdicts.count(v) for v in experiment["verdicts"]} == experiment["verdicts"]
    assert len(rows) == facts["claims"]
    index = soup(REPO / "results" / "report" / "index.html")
    assert len(index.select("#claims tbody tr")) == facts["claims"]
    assert [tr.td.get_text() for tr in index.select("#experiments tr.missing")] == list(facts["missing"])
    pages = check_links(REPO / "results" / "report")
    assert {f"{e['experiment']}.html" for e in facts["experiments"]} <= set(pages)


def test_committed_claims_have_one_verdict_on_every_page():
    assert len(one_verdict_on_every_page(REPO / "results")) == json.loads(
        (REPO / "results" / report.SUMMARY).read_text())["claims"]


HOSTILE = "<script>alert(1)</script> <img src=x onerror=alert(2)> <a href='javascript:alert(3)'>link</a>"


def test_html_from_a_notebook_is_shown_as_text_never_run(toy_root):
    fake_run(toy_root, "01_a", "quick", [claim("a.x", "reproduced", statement=HOSTILE, note=HOSTILE)])
    folder = toy_root / "results" / "runs" / "01_a" / "quick"
    executed_notebook(folder, read_results(folder)[0]["claims"])  # the claims' findings as a markdown output
    nb = nbformat.read(folder / "01_a.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell(f"a markdown cell: {HOSTILE}"))
    nb.cells.append(nbformat.v4.new_code_cell("x", outputs=[
        nbformat.v4.new_output("display_data", data={
            "text/html": f"<table><tr><td onclick='alert(4)'>kept</td></tr></table>{HOSTILE}"}),
        nbformat.v4.new_output("display_data", data={"application/javascript": "alert(5)"})]))
    nbformat.write(nb, folder / "01_a.ipynb")
    report.build("quick")
    pages = sorted((toy_root / "results" / "report").rglob("*.html"))
    assert [p.name for p in pages] == ["01_a.html", "coverage.html", "index.html", "01_a.html"]
    for page in pages:
        html = soup(page)
        assert [s.get_text() for s in html.find_all("script") if "alert" in s.get_text()] == [], page
        assert [e.name for e in html.find_all(True) if {"onerror", "onclick"} & set(e.attrs)] == [], page
        assert [a["href"] for a in html.find_all("a", href=True) if a["href"].startswith("javascript")] == [], page
        if page.name != "coverage.html":  # the one page without the experiment's text
            assert "<script>alert(1)</script>" in html.get_text(), page  # shown as text
    notebook = soup(pages[3])
    assert [td.get_text() for td in notebook.select(".output_html td")] == ["kept"]
    scorecard = (toy_root / "results" / "SCORECARD.md").read_text()
    assert "<script" not in scorecard and "<img" not in scorecard and "<a " not in scorecard
    assert "&lt;script>alert(1)&lt;/script> &lt;img src=x onerror=alert(2)>" in scorecard


# where a reader of another machine's checkout would meet a path of the machine that ran it, or a start-up error
MACHINE_TRACES = re.compile(r"cuInit|\.(?:smoke|quick|full)[\w-]*\.partial-\d|(?<![\w.])/(?:home|root|tmp|work|Users)/")


def test_committed_results_hold_no_path_or_start_up_noise_of_the_machine_that_ran_them():
    ignored = {REPO / "results" / part for part in ("runs", "cache", "smoke", "full", ".report-quick.partial")}
    found = [f"{path.relative_to(REPO)}: {match.group()}"
             for path in sorted((REPO / "results").rglob("*"))
             if path.suffix in {".md", ".json", ".html", ".csv"} and not ignored & set(path.parents)
             for match in [MACHINE_TRACES.search(path.read_text(errors="replace"))] if match]
    assert found == []


# In a browser: Playwright drives Debian's chromium (`make browser` installs it).

@pytest.fixture(scope="module")
def chromium():
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed: make setup")
    executable = os.environ.get("CNNLAB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not executable:
        pytest.skip("no Chromium: `make browser` installs Debian's chromium where apt-get is usable; or set "
                    "CNNLAB_CHROMIUM")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable)
        yield browser
        browser.close()


def open_page(browser, url: str, javascript: bool = True):
    """A page loaded from `url` and what went wrong while loading it: console errors, script errors, failed or
    network requests (refused)."""
    context = browser.new_context(java_script_enabled=javascript, viewport={"width": 1280, "height": 1400})
    page = context.new_page()
    problems = []
    page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda err: problems.append(f"script: {err}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.route("http*://**", lambda route: (problems.append(f"network: {route.request.url}"), route.abort()))
    page.goto(url, wait_until="load")
    return page, problems


def read_like_a_reader(browser, index: Path) -> list[str]:
    """Open the index and every page it links to, as a reader would: each loads without a console error or a
    network request, every image is drawn, every relative link leads to an existing file. The pages visited."""
    queue, seen = [index.as_uri()], []
    while queue:
        url = queue.pop(0)
        seen.append(url)
        page, problems = open_page(browser, url)
        assert problems == [], url
        images = page.eval_on_selector_all("img", "els => els.map(e => [e.getAttribute('src'), e.naturalWidth])")
        if url == index.as_uri():
            assert images, "the index shows the overview chart"
        assert [src for src, width in images if not width] == [], url
        for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)"):
            target = urlparse(href)
            if target.scheme != "file":
                continue
            path = Path(url2pathname(target.path))
            assert path.is_file(), f"{url}: {href}"
            page_url = path.as_uri()
            if path.suffix == ".html" and page_url not in seen and page_url not in queue:
                queue.append(page_url)
        page.context.close()
    return seen


def check_filter(browser, index: Path, claims: list[dict], screenshot: Path) -> None:
    """The claim rows match `claims`; the verdict filter (set to the rarest verdict, then screenshot whole) and
    the experiment filter show only their rows, as does a link that sets the filter; without JavaScript every
    claim shows and the filter hides."""
    page, problems = open_page(browser, index.as_uri())
    rows = page.locator("#claims tbody tr")
    assert rows.count() == len(claims) and page.locator("#claims tbody tr:visible").count() == len(claims)
    counts = {v: sum(c["verdict"] == v for c in claims) for v in VERDICTS}
    verdict = min((v for v, n in counts.items() if 0 < n < len(claims)), key=counts.get)
    expected = counts[verdict]
    page.select_option("#filter select[name=verdict]", verdict)
    assert page.locator("#claims tbody tr:visible").count() == expected
    assert page.locator("#shown").inner_text() == f"{expected} of {len(claims)} claims shown"
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=screenshot, full_page=True)
    page.select_option("#filter select[name=verdict]", "")
    experiment = page.locator("#claims tbody tr").first.get_attribute("data-experiment")
    page.select_option("#filter select[name=experiment]", experiment)
    assert page.locator("#claims tbody tr:visible").count() == page.locator(
        f"#claims tbody tr[data-experiment='{experiment}']").count()
    assert problems == []
    page.context.close()
    page, problems = open_page(browser, f"{index.as_uri()}?verdict={verdict}#claims")
    assert page.locator("#claims tbody tr:visible").count() == expected and problems == []
    page.context.close()
    page, problems = open_page(browser, index.as_uri(), javascript=False)
    assert page.locator("#claims tbody tr:visible").count() == len(claims)
    assert not page.locator("#filter").is_visible() and page.locator("img.chart").evaluate("e => e.naturalWidth") > 0
    assert problems == []
    page.context.close()


def test_the_toy_report_in_a_browser(chromium, site):
    index = site / "results" / "report" / "index.html"
    pages = read_like_a_reader(chromium, index)
    assert sorted(Path(url2pathname(urlparse(u).path)).name for u in pages) == [
        "98_other.html", "99_toy.html", "99_toy.html", "coverage.html", "index.html"]
    check_filter(chromium, index, [c for _, c in results_claims(site)], ARTIFACTS / "report-toy.png")


def test_the_committed_report_in_a_browser(chromium):
    index = REPO / "results" / "report" / "index.html"
    facts = json.loads((REPO / "results" / report.SUMMARY).read_text())
    pages = read_like_a_reader(chromium, index)
    assert len(pages) == len(list(index.parent.rglob("*.html"))) > len(facts["experiments"])  # all reachable
    claims = [dict(verdict=v) for e in facts["experiments"] for v, n in e["verdicts"].items() for _ in range(n)]
    check_filter(chromium, index, claims, ARTIFACTS / "report.png")
