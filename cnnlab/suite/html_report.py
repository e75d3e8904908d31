"""The report as a static site under `results/report/`, read from disk in a browser, offline.

`index.html`: an overview (a stacked bar chart of the verdicts per experiment, each run's profile, wall time,
seeds and versions, every experiment without a result named with the reason) and the scorecard (every claim
with its statement, source, expected and measured values, unit, verdict, rule and note), filterable by
experiment and verdict by a small inline script; without JavaScript every claim is shown. `<experiment>.html`:
the notebook's lecture-claim text, its claims, tables and figures, and `notebooks/<experiment>.html`: the
executed notebook through nbconvert's HTML exporter, every cell shown. Links are relative (the figures and CSV
tables are the copies `cnnlab.suite.report` exports beside the report); nothing is loaded from the network.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import mistune
import nbformat
import pandas as pd
from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup

from cnnlab import paths
from cnnlab.suite.claim_text import (VERDICTS, convergence_text, count_verdicts, fmt, measured_text, per_seed_text,
                                     stack_text, where_text)

SITE = "report"
NOTEBOOK_PAGES = "notebooks"
TEMPLATES = Path(__file__).parent / "templates"
# background and text colour of each verdict, in the pages (CSS classes) and the overview chart alike
VERDICT_COLOURS = {
    "reproduced": ("#1b7f3b", "#ffffff"),
    "partial": ("#e3a600", "#1a1a1a"),
    "inconclusive": ("#6c757d", "#ffffff"),
    "not_reproduced": ("#c0392b", "#ffffff"),
    "not_applicable": ("#c9d3d9", "#1a1a1a"),
}
COVERAGE_PAGE = "coverage.html"
OPEN_TABLE_ROWS = 30  # a longer table starts folded
# Markdown to HTML as mistune.html renders it, but any raw HTML in it shown as text
MARKDOWN = mistune.create_markdown(escape=True, plugins=["strikethrough", "footnotes", "table", "speedup"])


def write(runs: list[dict], missing: dict[str, str], profile: str, checked: str, site: Path, covered: dict) -> Path:
    """Write the site for `runs` (as `report.build` passes them: checked, with the exported `table_files` and
    `figure_files` beside `site`) into the new folder `site`, naming each experiment of `missing` with its reason
    and saying what the check runs cover (`checked`, Markdown), with the lecture coverage page (`covered`: the
    `rows` of `coverage.against` and their `facts`, `coverage.summary`); return index.html's path."""
    site.mkdir()
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["stack"] = stack_text
    env.filters["where"] = where_text
    common = dict(profile=profile, colours=VERDICT_COLOURS, verdicts=VERDICTS)
    for run in runs:
        _experiment_pages(env, run, site, common)
    _overview_chart(runs, site / "overview.png")
    verdict_of = {c["id"]: c["verdict"] for run in runs for c in run["claims"]}
    _render(env, "coverage.html.j2", site / COVERAGE_PAGE, common, root="", verdict_of=verdict_of, **covered)
    _render(env, "index.html.j2", site / "index.html", common, root="", runs=runs, missing=missing,
            checked=Markup(MARKDOWN(checked)), coverage=covered["facts"],
            counts={run["experiment"]: count_verdicts(run["claims"]) for run in runs},
            totals=count_verdicts([c for run in runs for c in run["claims"]]),
            rows=[row for run in runs for row in _claim_rows(run)])
    return site / "index.html"


def _experiment_pages(env: Environment, run: dict, site: Path, common: dict) -> None:
    """`<experiment>.html` and, where the run folder holds the executed notebook, its page in notebooks/."""
    body = _notebook_body(run)
    notebook = f"{NOTEBOOK_PAGES}/{run['experiment']}.html" if body is not None else None
    if notebook:
        _render(env, "notebook.html.j2", site / notebook, common, root="../", run=run, body=body,
                highlight=_highlight_css(), relabelled=[u for u in run["unstable"] if u["verdict"] != u["ran"]])
    _render(env, "experiment.html.j2", site / f"{run['experiment']}.html", common, root="", run=run,
            counts=count_verdicts(run["claims"]), rows=_claim_rows(run), lecture=_lecture_text(run["experiment"]),
            notebook=notebook, figures=[_link(f, site) for f in run["figure_files"]],
            tables=[_table(name, csv, site) for name, csv in run["table_files"].items()])


def _claim_rows(run: dict) -> list[dict]:
    """A run's claims as the pages show them: values formatted, the unit in a column of its own."""
    return [
        dict(experiment=run["experiment"], id=c["id"], statement=c["statement"], source=c.get("source", ""),
             expected=fmt(c["expected"]), measured=measured_text(dict(c, unit="")), per_seed=per_seed_text(c),
             unit=c["unit"], verdict=c["verdict"], inconsistent=c.get("source_inconsistent", False), rule=c["rule"],
             note=c.get("note", ""), convergence=convergence_text(c))
        for c in run["claims"]
    ]


def _render(env: Environment, template: str, path: Path, common: dict, **values) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(env.get_template(template).render(**common, **values))


def _link(path: Path, site: Path) -> str:
    """`path` relative to the site's folder, as a URL path."""
    return Path(os.path.relpath(path, site)).as_posix()


def _table(name: str, csv: Path, site: Path) -> dict:
    """An exported table as its page shows it: HTML (numbers formatted as in the scorecard), rows, CSV link."""
    frame = pd.read_csv(csv)
    shown = frame.astype(object).where(frame.notna(), "")
    for column in frame.select_dtypes("number"):
        shown[column] = ["" if pd.isna(v) else fmt(v) for v in frame[column].tolist()]
    html = Markup(shown.to_html(index=False, border=0, classes="data", escape=True))
    return dict(name=name, html=html, rows=len(frame), csv=_link(csv, site), open=len(frame) <= OPEN_TABLE_ROWS)


def _lecture_text(experiment: str) -> Markup | None:
    """The first markdown cell of notebooks/<experiment>.ipynb as HTML (None without the notebook)."""
    notebook = paths.NOTEBOOKS / f"{experiment}.ipynb"
    if not notebook.exists():
        return None
    cell = next((c for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "markdown"), None)
    return Markup(MARKDOWN(cell.source)) if cell else None


# what markdown and HTML from a notebook may keep in the report: text, tables, lists, links and inline images;
# scripts, event handlers, styles, frames and forms are removed, and JavaScript outputs are left out
SAFE_TAGS = {"a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "div", "dl", "dt", "em", "h1", "h2", "h3",
             "h4", "h5", "h6", "hr", "i", "img", "li", "ol", "p", "pre", "span", "strong", "sub", "sup", "table",
             "tbody", "td", "tfoot", "th", "thead", "tr", "ul"}
SAFE_URL = re.compile(r"(https?:|mailto:|#|[^:]*$)", re.I)  # a web or mail link, an anchor, or a relative path


def _safe_attribute(tag: str, name: str, value: str) -> bool:
    if name in ("class", "id", "title", "alt", "colspan", "rowspan", "align", "width", "height"):
        return True
    if (tag, name) == ("a", "href"):
        return bool(SAFE_URL.match(value))
    return (tag, name) == ("img", "src") and (value.startswith("data:image/") or bool(SAFE_URL.match(value)))


STYLE_BLOCK = re.compile(r"<style\b.*?</style\s*>", re.I | re.S)  # pandas' table CSS, dropped with its text


def clean_html(html: str) -> str:
    """Notebook HTML (a rendered markdown cell, a markdown or HTML output) with only SAFE_TAGS and safe
    attributes left: style blocks are dropped, anything else is shown as text (bleach, which nbconvert's own
    sanitiser uses)."""
    import bleach

    return bleach.clean(STYLE_BLOCK.sub("", str(html)), tags=SAFE_TAGS, attributes=_safe_attribute,
                        protocols={"http", "https", "mailto", "data"}, strip_comments=True)


def _notebook_body(run: dict) -> Markup | None:
    """The run's executed notebook as HTML, every input and output cell shown, its markdown and HTML sanitised
    (`clean_html`); None when it is gone. The HTML is kept beside the notebook under a hash of it, nbconvert's
    version and this module's sanitiser: the report of unchanged runs converts nothing (most of its seconds
    otherwise)."""
    import nbconvert

    source = run["run_dir"] / run.get("notebook", f"{run['experiment']}.ipynb")
    if not source.exists():
        return None
    sanitiser = f"{sorted(SAFE_TAGS)}{SAFE_URL.pattern}{STYLE_BLOCK.pattern}".encode()
    digest = hashlib.sha256(source.read_bytes() + nbconvert.__version__.encode() + sanitiser).hexdigest()[:16]
    kept = source.with_name(f".{source.stem}.{digest}.html")
    if not kept.exists():
        exporter = nbconvert.HTMLExporter(template_name="basic", sanitize_html=True, filters={"clean_html": clean_html})
        body, _ = exporter.from_notebook_node(nbformat.read(source, as_version=4))
        for stale in source.parent.glob(f".{source.stem}.*.html"):
            stale.unlink()
        partial = kept.with_suffix(".partial")
        partial.write_text(body)
        partial.replace(kept)
    return Markup(kept.read_text())


def _highlight_css() -> Markup:
    """The code cells' syntax colours (Pygments, which nbconvert highlights with)."""
    from pygments.formatters import HtmlFormatter

    return Markup(HtmlFormatter(style="default").get_style_defs(".highlight"))


def _overview_chart(runs: list[dict], path: Path) -> None:
    """Each experiment's verdicts as one bar of shares, stacked in VERDICTS order, each segment labelled
    with its count."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 1.4 + 0.42 * len(runs)))
    ax = fig.subplots()
    labels = [f"{run['experiment']} ({len(run['claims'])})" for run in runs]
    counts = [count_verdicts(run["claims"]) for run in runs]
    left = [0.0] * len(runs)
    for verdict in VERDICTS:
        shares = [c[verdict] / max(len(run["claims"]), 1) for c, run in zip(counts, runs)]
        background, colour = VERDICT_COLOURS[verdict]
        bars = ax.barh(labels, shares, left=left, color=background, label=verdict.replace("_", " "))
        ax.bar_label(bars, labels=[str(c[verdict]) if s >= 0.04 else "" for c, s in zip(counts, shares)],
                     label_type="center", color=colour, fontsize=8)
        left = [a + b for a, b in zip(left, shares)]
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter("{x:.0%}")
    ax.set_xlabel("share of the experiment's claims (segments labelled with counts)")
    ax.legend(ncols=len(VERDICTS), loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False, fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    fig.savefig(path, dpi=100, bbox_inches="tight")
