"""Lecture coverage: every checkable claim of the five lecture decks, with the scorecard claims that check it or
the reason none does. The table (`lecture_coverage.csv` beside this module, kept by hand: number, deck, slide,
claims, reason) is read by the report, which shows it as a page with each claim's verdict and counts it in the
scorecard's header."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

COVERAGE_FILE = Path(__file__).with_name("lecture_coverage.csv")
COLUMNS = ["number", "deck", "slide", "claims", "reason"]


@dataclass(frozen=True)
class DeckClaim:
    """One checkable claim of the decks: its number, the decks (seed prefixes) that make it, what the slide says,
    and the scorecard claim ids that check it, or why none does."""

    number: int
    decks: tuple[str, ...]
    slide: str
    claims: tuple[str, ...]
    reason: str


def load(path: Path | None = None) -> list[DeckClaim]:
    """The table's rows (`COVERAGE_FILE` unless `path`), numbered 1, 2, ... in order; a ValueError names the
    first malformed row."""
    path = path or COVERAGE_FILE
    with path.open(newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        if reader.fieldnames != COLUMNS:
            raise ValueError(f"{path.name}: the columns must be {', '.join(COLUMNS)}, got {reader.fieldnames}")
        rows = [DeckClaim(int(r["number"]), tuple(r["deck"].split()), r["slide"].strip(), tuple(r["claims"].split()),
                          r["reason"].strip()) for r in reader]
    for expected, row in enumerate(rows, start=1):
        if row.number != expected:
            raise ValueError(f"{path.name}: row {expected} is numbered {row.number}")
        if not row.decks or not row.slide or bool(row.claims) == bool(row.reason):
            raise ValueError(f"{path.name}: row {row.number} needs its deck, the slide's text and either claim ids "
                             "or the reason none checks it")
    return rows


def against(rows: list[DeckClaim], found: dict[str, str]) -> list[dict]:
    """Each deck claim with, per claim id, the experiment that checks it in a scorecard (`found`: id ->
    experiment) and its place there; None for an id the scorecard lacks."""
    return [dict(number=r.number, decks=r.decks, slide=r.slide, reason=r.reason,
                 claims=[dict(id=c, experiment=found.get(c)) for c in r.claims]) for r in rows]


def summary(rows: list[DeckClaim], found) -> dict:
    """How many deck claims there are, how many a scorecard row checks (`found`: its claim ids), and the claim
    ids the table names that it lacks."""
    lacking = sorted({c for r in rows for c in r.claims if c not in found})
    covered = sum(any(c in found for c in r.claims) for r in rows)
    return dict(deck_claims=len(rows), covered=covered, lacking=lacking)


def sentence(facts: dict) -> str:
    """The scorecard's line on coverage, from a `summary`."""
    lacking = (f"; {len(facts['lacking'])} claim ids the table names are not in this scorecard: "
               + ", ".join(f"`{c}`" for c in facts["lacking"])) if facts["lacking"] else ""
    return (f"Lecture coverage: {facts['covered']} of the {facts['deck_claims']} checkable claims of the five lecture "
            f"decks have a row here (the report's coverage page lists every one, or why it has none){lacking}.")
