"""Verdicts compared claim by claim (`cnnlab verdicts`): read from a written scorecard or from a folder of runs,
and the claims whose verdict differs between two of them."""

from __future__ import annotations

import re

from cnnlab.suite.report import collect

def table_rows(markdown: str) -> list[list[str]]:
    """The cells of every Markdown table row (headers included, separator rows left out), split on unescaped
    pipes."""
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]] for line in markdown.splitlines()
            if line.startswith("|") and not re.fullmatch(r"\|[-:| ]+\|", line)]


def scorecard_verdicts(text: str) -> dict[tuple[str, str], str]:
    """(experiment, claim id) -> verdict, read from a scorecard's claims table (a SCORECARD.md as written)."""
    header, *rows = table_rows(text) or [[]]
    if not {"experiment", "id", "verdict"} <= set(header):
        return {}
    return {(row["experiment"], row["id"]): row["verdict"] for row in (dict(zip(header, cells)) for cells in rows)}


def run_verdicts(folder: str) -> dict[tuple[str, str], str]:
    """(experiment, claim id) -> verdict of the runs in `results/runs/*/<folder>` ("smoke", "quick-check",
    "smoke-jax"), as the runs decided them (no check run applied)."""
    return {(run["experiment"], c["id"]): c["verdict"] for run in collect(folder) for c in run["claims"]}


def verdict_changes(old: dict, new: dict) -> list[tuple[str, str, str, str]]:
    """(experiment, id, verdict before, verdict after) of every claim whose verdict differs between two
    `scorecard_verdicts` or `run_verdicts`; a claim on one side only shows "-" on the other."""
    return [(*key, old.get(key, "-"), new.get(key, "-")) for key in sorted(old.keys() | new.keys())
            if old.get(key) != new.get(key)]
