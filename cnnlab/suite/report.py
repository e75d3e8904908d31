"""Aggregate every run's results.json into the scorecard, per-experiment tables and the HTML report.

`build(profile)` writes `SCORECARD.md` (one row per claim), each experiment's tables as CSV and Markdown
under `tables/<experiment>/`, copies its figures to `figures/<experiment>/`, writes the HTML report under
`report/` (`cnnlab.suite.html_report`) and the verdict counts to `summary.json`, from which README's Results
section is rewritten, so a reader sees the reproduction without running it. The quick profile's report is
results/ itself, the committed one; another profile's goes to results/<profile>/ and leaves README alone. All
of it is built in a partial folder and replaces the previous report together, or not at all. An experiment
without an intact run (never run, last run failed, results.json damaged) is named with the reason, never left
out. Where a check run exists (`cnnlab run --check`: the same run on another floating-point path), a claim
whose verdict differs between the two gets the weaker of the two, both in its note: that verdict depends on
the machine (`cnnlab.suite.checks`)."""

from __future__ import annotations

import errno
import os
import re
import shutil
import textwrap
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from cnnlab import paths
from cnnlab.suite import coverage, html_report, params
from cnnlab.suite.checks import (check_summary, checked_text, previous_relabels, relabelled, with_carried,
                                 with_check)
from cnnlab.suite.atomic import write_json_atomic, write_text_atomic
from cnnlab.suite.claim_text import (VERDICTS, convergence_text, count_verdicts, fmt, measured_text, per_seed_text,
                                     stack_text, where_text)
from cnnlab.suite.results import RESULTS_FILE
from cnnlab.suite.schema import load_results, read_results

SCORECARD = "SCORECARD.md"
SUMMARY = "summary.json"
README = "README.md"
README_START = "<!-- results: written by `cnnlab report` from results/summary.json; edit neither by hand -->"
README_END = "<!-- end of results -->"


class Written(NamedTuple):
    """What `build` wrote for a reader: the scorecard, the report's index page, README (None when current), and
    what the check runs cover (`check_summary`)."""

    scorecard: Path
    index: Path
    readme: Path | None
    checked: str


def collect(profile: str) -> list[dict]:
    """The results.json of every experiment run in `profile`, in experiment order, each with `failed_since`."""
    found = sorted(paths.RUNS.glob(f"*/{profile}/{RESULTS_FILE}"))
    return [dict(record, run_dir=p.parent, failed_since=failed_since(p.parent))
            for p in found if (record := load_results(p.parent)) is not None]


def failed_since(run_dir: Path) -> str:
    """"" or, when the experiment's last run failed after the result in `run_dir` was written, a line saying
    which result is shown and where the failed run's notebook is."""
    failed = run_dir.with_name(f"{run_dir.name}.failed")
    shown = (run_dir / RESULTS_FILE).stat().st_mtime
    if not failed.is_dir() or failed.stat().st_mtime <= shown:
        return ""
    return (f"showing the result of {_when(shown)}; the run of {_when(failed.stat().st_mtime)} failed: its notebook "
            f"is in {paths.rel(failed)}/")


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def missing_runs(runs: list[dict], profile: str) -> dict[str, str]:
    """Every experiment (a parameter file, a run folder or a failed run of `profile`) without an intact run in
    `runs`, with why in one line: the reports name them rather than leave them out."""
    names = {p.stem for p in params.param_files()}
    names |= {p.parent.name for name in (profile, f"{profile}.failed") for p in paths.RUNS.glob(f"*/{name}")}
    return {name: _why_missing(name, profile) for name in sorted(names - {run["experiment"] for run in runs})}


def _why_missing(experiment: str, profile: str) -> str:
    folder = paths.RUNS / experiment / profile
    _, problem = read_results(folder)
    if problem:
        return f"{paths.rel(folder / RESULTS_FILE)} is damaged: {problem}"
    failed = folder.with_name(f"{profile}.failed")
    if failed.is_dir():
        return f"its last run failed; the executed notebook is in {paths.rel(failed)}/"
    return f"not run in the {profile} profile (`cnnlab run {experiment} --profile {profile}`)"


SWEPT = "holds_under"  # the id segment of a sweep's claim (`cnnlab.sweep.holds_claim`)


def claims_frame(runs: list[dict]) -> pd.DataFrame:
    rows = []
    for run in runs:
        for c in run["claims"]:
            verdict = c["verdict"] + (" (source inconsistent)" if c.get("source_inconsistent") else "")
            rows.append(dict(
                experiment=run["experiment"], id=c["id"], statement=c["statement"],
                expected=fmt(c["expected"], c["unit"]), measured=measured_text(c), per_seed=per_seed_text(c),
                verdict=verdict, rule=c["rule"], note=c.get("note", ""), source=c.get("source", ""),
                convergence=convergence_text(c),
            ))
    return pd.DataFrame(rows, columns=["experiment", "id", "statement", "expected", "measured", "verdict",
                                       "rule", "per_seed", "note", "source", "convergence"])


def _escape(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.map(lambda v: str(v).replace("|", "\\|").replace("\n", " "))


HTML_TAG = re.compile(r"<(?=[A-Za-z/!?])")


def markdown_text(text: str) -> str:
    """Text for a Markdown file whose parts came from a notebook: each HTML tag's `<` as `&lt;`, so that a
    renderer shows the tag as text instead of running it (`<=` and `< 0.1` stay as they are)."""
    return HTML_TAG.sub("&lt;", text)


def scorecard_markdown(runs: list[dict], profile: str, missing: dict[str, str], relabels: list[dict] = (),
                       covered: str = "") -> str:
    claims = claims_frame(runs)
    summary = _totals(count_verdicts([c for run in runs for c in run["claims"]]))
    lines = [
        f"# cnnlab scorecard ({profile} profile)",
        "",
        f"Generated by `cnnlab report` from {len(runs)} experiment run(s): {len(claims)} claims, {summary}.",
        "Each verdict follows from the measured value by the rule listed under Rules; "
        "'source inconsistent' marks a published number that disagrees with its own architecture.",
        "A comparison over seeds shows its mean and, in brackets, the 95% Student-t interval of its paired "
        "per-seed values (listed under Rules); `>=` or `<=` marks a bound: a run that never reached its "
        "threshold within the step cap.",
        check_summary(runs, missing, relabels),
        *([covered] if covered else []),
        "",
    ]
    for run in runs:
        lines.append(
            f"- **{run['experiment']}**: {run['duration_s']:.0f} s, {_memory(run)}seeds {run['seeds']}, "
            f"{precision_text(run)}"
            f"{stack_text(run['versions'])}{where_text(run)}{checked_text(run)}{'; ' if run['failed_since'] else ''}{run['failed_since']}"
        )
    lines += [f"- **{name}**: no result: {why}" for name, why in missing.items()]
    lines += ["", _escape(claims[["experiment", "id", "statement", "expected", "measured", "verdict"]])
              .to_markdown(index=False), "", *_sweeps(claims), "## Rules and notes", ""]
    for _, c in claims.iterrows():
        seeds = f" Per seed: {c['per_seed']}." if c["per_seed"] else ""
        note = f" Note: {c['note'].rstrip('.')}." if c["note"] else ""
        convergence = f" {c['convergence']}" if c["convergence"] else ""
        lines.append(f"- `{c['id']}` ({c['source']}): {c['rule']}.{seeds}{note}{convergence}")
    return markdown_text("\n".join(lines) + "\n")


def _sweeps(claims: pd.DataFrame) -> list[str]:
    """The section on the condition sweeps (`cnnlab.sweep`): where each swept claim holds, as a list (the
    scorecard keeps a single table, the one `verdicts.scorecard_verdicts` reads)."""
    swept = claims[claims.id.str.contains(f".{SWEPT}.", regex=False)]
    if swept.empty:
        return []
    lines = ["## Where the claims hold: condition sweeps", "",
             "Claims that did not reproduce at the main budget, repeated over a grid of conditions and decided there "
             "by their own rule; the claims table above keeps the main verdicts.", ""]
    lines += [f"- **{c.verdict}** `{c.id}` ({c.experiment}): {c.statement}. {c.note}" for c in swept.itertuples()]
    return lines + [""]


def _totals(counts: dict[str, int]) -> str:
    """"2 reproduced, 0 partial, ...": every verdict's count, in VERDICTS order."""
    return ", ".join(f"{counts.get(v, 0)} {v.replace('_', ' ')}" for v in VERDICTS)


def precision_text(run: dict) -> str:
    """"float32 precision, " as the scorecard lists a run's precision parameter ("" for a run without one)."""
    precision = run.get("params", {}).get("precision")
    return f"{precision} precision, " if precision else ""


def _memory(run: dict) -> str:
    """The run's peak resident memory as the scorecard lists it ("" for a record that lacks it)."""
    return f"peak memory {run['peak_rss_mb'] / 1024:.1f} GiB, " if run.get("peak_rss_mb") else ""


def export_tables(run: dict, root: Path) -> dict[str, Path]:
    """Copy a run's tables to `root`/tables/<experiment>/ as CSV and Markdown; the CSV files by table name."""
    target = root / "tables" / run["experiment"]
    target.mkdir(parents=True)
    written = {}
    for name, rel_path in run["tables"].items():
        frame = pd.read_csv(run["run_dir"] / rel_path)
        frame.to_csv(target / f"{name}.csv", index=False)
        (target / f"{name}.md").write_text(markdown_text(_escape(frame).to_markdown(index=False)) + "\n")
        written[name] = target / f"{name}.csv"
    return written


def export_figures(run: dict, root: Path) -> list[Path]:
    """Copy a run's figures to `root`/figures/<experiment>/."""
    target = root / "figures" / run["experiment"]
    target.mkdir(parents=True)
    return [Path(shutil.copy2(run["run_dir"] / rel_path, target / Path(rel_path).name)) for rel_path in run["figures"]]


def summary(runs: list[dict], missing: dict[str, str], profile: str) -> dict:
    """What README's Results section is written from (results/summary.json): the verdict counts and the
    budget-limited claims (`cnnlab.convergence`), in all and per experiment, and the experiments without a
    result."""
    return dict(
        profile=profile, claims=sum(len(run["claims"]) for run in runs),
        verdicts=count_verdicts([c for run in runs for c in run["claims"]]),
        budget_limited=sum(_budget_limited(run) for run in runs),
        experiments=[
            dict(experiment=run["experiment"], claims=len(run["claims"]), verdicts=count_verdicts(run["claims"]),
                 budget_limited=_budget_limited(run))
            for run in runs
        ],
        missing=missing,
    )


def _budget_limited(run: dict) -> int:
    return sum(bool(c.get("budget_limited")) for c in run["claims"])


def readme_section(facts: dict) -> str:
    """README's Results section, markers included, written from a `summary`."""
    rows = pd.DataFrame([
        {"experiment": f"[{e['experiment']}](results/{html_report.SITE}/{e['experiment']}.html)", "claims": e["claims"]}
        | {v.replace("_", " "): e["verdicts"].get(v, 0) for v in VERDICTS}
        for e in facts["experiments"]
    ])
    index = f"results/{html_report.SITE}/index.html"
    lines = [
        README_START,
        textwrap.fill(
            f"The {facts['profile']} profile's {facts['claims']} lecture claims: {_totals(facts['verdicts'])}. "
            f"{_budget_sentence(facts.get('budget_limited', 0))}[{index}]({index}) shows each claim with its rule and "
            "note, and every experiment's lecture text, tables, figures and executed notebook: open it from disk in a "
            "browser, it needs no network. "
            f"[results/{SCORECARD}](results/{SCORECARD}) lists the same claims as text.", width=110),
        "",
        rows.to_markdown(index=False),
    ]
    if facts["missing"]:
        lines += ["", *[markdown_text(f"- **{name}**: no result: {why}") for name, why in facts["missing"].items()]]
    return "\n".join(lines + [README_END])


def _budget_sentence(limited: int) -> str:
    if not limited:
        return ""
    return (f"Budget-limited: {limited} (a run behind the claim was still improving at its cap, or half the budget "
            "decided otherwise, so the verdict it would get is reported inconclusive). ")


def readme_results(text: str) -> str | None:
    """The Results section of a README's text, markers included (None when it has no markers)."""
    start, end = text.find(README_START), text.find(README_END)
    return text[start:end + len(README_END)] if 0 <= start < end else None


def readme_with(section: str) -> str | None:
    """README's text with `section` in place of its Results section; None when that is current or there is no
    README with the markers (a workspace of its own)."""
    path = paths.ROOT / README
    text = path.read_text() if path.exists() else ""
    current = readme_results(text)
    if current is None or current == section:
        return None
    return text.replace(current, section)


COMMITTED_PROFILE = "quick"  # its report is results/ itself, the one committed
OUTPUTS = (SCORECARD, SUMMARY, "tables", "figures", html_report.SITE)  # what `build` writes, files then folders


def output_root(profile: str) -> Path:
    """Where the report of `profile` goes: results/ for the committed profile, results/<profile>/ (not
    committed) for another, so that a smoke report never replaces the committed one."""
    return paths.RESULTS if profile == COMMITTED_PROFILE else paths.RESULTS / profile


def build(profile: str = COMMITTED_PROFILE) -> Written:
    """Write the scorecard, tables, figures, summary and HTML report for every experiment run in `profile` (and
    README's Results, for the committed profile). All of it is built in a partial folder and replaces the
    previous report together, or not at all."""
    runs = [with_check(run, profile) for run in collect(profile)]
    if not runs:
        raise FileNotFoundError(
            f"no results for profile '{profile}' under {paths.rel(paths.RUNS)}: run `cnnlab run EXP` first"
        )
    root = output_root(profile)
    _refuse_strangers(root)
    work = paths.emptied(paths.RESULTS / f".report-{profile}.partial")
    missing = missing_runs(runs, profile)
    runs = [dict(run, table_files=export_tables(run, work), figure_files=export_figures(run, work)) for run in runs]
    previous = previous_relabels(root / SUMMARY)
    runs = [with_carried(run, previous) for run in runs]
    relabels = relabelled(runs, previous)
    checked = check_summary(runs, missing, relabels)
    deck_claims, found = coverage.load(), {c["id"]: run["experiment"] for run in runs for c in run["claims"]}
    covered = coverage.summary(deck_claims, found)
    (work / SCORECARD).write_text(scorecard_markdown(runs, profile, missing, relabels, coverage.sentence(covered)))
    facts = dict(summary(runs, missing, profile), relabelled=relabels, coverage=covered)
    write_json_atomic(work / SUMMARY, facts)
    html_report.write(runs, missing, profile, checked, work / html_report.SITE,
                      dict(rows=coverage.against(deck_claims, found), facts=covered))
    readme = readme_with(readme_section(facts)) if profile == COMMITTED_PROFILE else None
    _replace_together(work, root, readme)
    return Written(root / SCORECARD, root / html_report.SITE / "index.html",
                   paths.ROOT / README if readme is not None else None, checked)


def _refuse_strangers(root: Path) -> None:
    """Refuse a folder where one of the report's files belongs, or a file where one of its folders does
    (something of the user's, which the report would otherwise replace): the OSError cnnlab's command line
    turns into one line with the fix."""
    for name in OUTPUTS:
        target = root / name
        folder = "." not in name
        if target.exists() and target.is_dir() != folder:
            code = errno.ENOTDIR if folder else errno.EISDIR
            raise OSError(code, os.strerror(code), str(target))


def _replace_together(work: Path, root: Path, readme: str | None) -> None:
    """Move the outputs built in `work` to `root`, each previous one aside first, then write README's new text
    (when not None). On any error the previous outputs are put back: the report changes whole or not at all."""
    aside = work.with_name(work.name.replace(".partial", ".old"))
    _put_back(aside, root)
    aside.mkdir()
    root.mkdir(parents=True, exist_ok=True)
    try:
        for name in OUTPUTS:
            if (root / name).exists():
                (root / name).rename(aside / name)
            (work / name).rename(root / name)
        if readme is not None:
            write_text_atomic(paths.ROOT / README, readme)
    except BaseException:
        for name in OUTPUTS:
            if not (work / name).exists() and (root / name).exists():
                (root / name).rename(work / name)
        _put_back(aside, root)
        raise
    else:
        shutil.rmtree(aside)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _put_back(aside: Path, root: Path) -> None:
    """Return to `root` each previous output that an interrupted replacement left in `aside`, then remove it."""
    if not aside.is_dir():
        return
    for item in aside.iterdir():
        if not (root / item.name).exists():
            item.rename(root / item.name)
    shutil.rmtree(aside)
