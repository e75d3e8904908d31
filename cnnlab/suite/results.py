"""The results record of a run and its claims, written atomically.

A notebook builds a `Record`: metrics, tables (CSV), figures (PNG) and claims. `Record.save()`
writes `record.json` in the run folder; the runner adds what it knows (parameters, cache key,
versions, duration) and renames the whole into `results.json` only when the notebook finished.

A claim is one checkable sentence of the lectures. Its verdict is computed from the measured value
by a `cnnlab.rules.Rule` that is stored beside it as text, so a reader sees why it was decided.
"""

from __future__ import annotations

import math
from pathlib import Path

from cnnlab import cluster, convergence, paths, tasks
from cnnlab.convergence import Evidence
from cnnlab.rules import Rule, explain
from cnnlab.suite.atomic import write_json_atomic
from cnnlab.suite.claim_text import findings_markdown, verdict_counts
from cnnlab.memory import peak_rss_mb
from cnnlab.suite.process import imported_modules

RECORD_FILE = "record.json"
RESULTS_FILE = "results.json"
CHECK_SUFFIX = "-check"  # a check run of profile P lives in P-check/ beside P/


class Record:
    """What one notebook run measured: metrics, tables, figures and claims."""

    def __init__(self, experiment: str, prefix: str, output_dir: str | Path = ""):
        self.experiment = experiment
        self.prefix = prefix
        self.output_dir = Path(output_dir) if output_dir else paths.RUNS / experiment / "interactive"
        self.metrics: dict = {}
        self.tables: dict = {}
        self.figures: list = []
        self.claims: list = []
        self.seeds: list = []

    @classmethod
    def start(cls, experiment: str, output_dir: str | Path, seed: int, n_seeds: int,
              precision: str | None = None) -> tuple[Record, list[int]]:
        """Open the record of a notebook's run: its claim prefix from `cnnlab.experiments.EXPERIMENTS`, its
        paired seeds `seed`, `seed + 1`, ... (`n_seeds` of them), and, given a `precision`, the Keras dtype
        policy every later layer is built under. Returns the record and its seeds."""
        from cnnlab.experiments import EXPERIMENTS

        record = cls(experiment, EXPERIMENTS[experiment].prefix, output_dir)
        record.seeds = [seed + i for i in range(n_seeds)]
        if precision is not None:
            from cnnlab import backend

            backend.use_precision(precision)
        return record, record.seeds

    def metric(self, name: str, value) -> None:
        self.metrics[name] = value

    def table(self, name: str, frame) -> Path:
        """Save a pandas DataFrame as tables/<name>.csv in the run folder."""
        path = self.output_dir / "tables" / f"{name}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(path, index=False)
        self.tables[name] = str(path.relative_to(self.output_dir))
        return path

    def figure(self, name: str, fig) -> Path:
        """Save a matplotlib figure as figures/<name>.png in the run folder."""
        path = self.output_dir / "figures" / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110, bbox_inches="tight")
        self.figures.append(str(path.relative_to(self.output_dir)))
        return path

    def claim(
        self,
        id: str,
        statement: str,
        expected,
        measured,
        unit: str,
        rule: Rule | None,
        source: str,
        note: str = "",
        source_inconsistent: bool = False,
        evidence: Evidence | None = None,
    ) -> dict:
        """Add a claim; its verdict is `rule.decide(measured)`, or not_applicable without a rule.

        `measured` is a number, or a `cnnlab.compare.SeedEstimate` whose per-seed values, interval and
        censoring are stored beside its mean (the value shown as measured). A trained claim passes the
        `cnnlab.convergence.Evidence` of its runs: a decided verdict turns inconclusive, budget-limited, when
        a run was still improving at its cap or half the budget decides otherwise (`convergence.limit`)."""
        if not id.startswith(self.prefix + "."):
            raise ValueError(f"claim id '{id}' must start with '{self.prefix}.'")
        if any(c["id"] == id for c in self.claims):
            raise ValueError(f"claim id '{id}' is used twice")
        seeds = measured.as_record() | {"bound": measured.bound} if hasattr(measured, "as_record") else {}
        if rule is not None and measured is not None and rule.takes_seeds != bool(seeds):
            raise TypeError(f"claim '{id}': rule '{rule.text}' needs "
                            f"{'per-seed values (a SeedEstimate)' if rule.takes_seeds else 'a single number'}")
        if rule is None:
            verdict, rule_text = "not_applicable", "no rule: reported only"
        elif measured is None:
            verdict, rule_text = "not_applicable", f"nothing measured to decide on; the rule would be: {rule.text}"
        else:
            verdict, rule_text = rule.decide(measured), rule.text
            if rule.spec:
                seeds["decided_by"] = rule.spec
        trained = {}
        if evidence is not None:
            verdict, note, trained = _budget_checked(verdict, note, rule, measured, evidence)
        if seeds:
            measured = measured.mean
        elif rule is not None and measured is not None:
            measured = float(measured)
            if not math.isfinite(measured):
                raise ValueError(f"claim '{id}': measured value {measured} is not finite")
        claim = dict(
            id=id, source=source, statement=statement, expected=expected, measured=measured, unit=unit,
            verdict=verdict, rule=rule_text, note=note, source_inconsistent=source_inconsistent, **seeds, **trained,
        )
        self.claims.append(claim)
        return claim

    def add_note(self, claim_id: str, text: str) -> None:
        """Append to a claim's note what was learned after it was recorded (an explanation, say)."""
        claim = next((c for c in self.claims if c["id"] == claim_id), None)
        if claim is None:
            raise KeyError(f"no claim '{claim_id}' to annotate")
        claim["note"] = explain(claim["note"], text)

    def save(self) -> Path:
        """Write record.json atomically, with the peak resident memory so far (the notebook's kernel and the
        workers that trained its runs, `cnnlab.tasks`), the cnnlab modules it imported and, where its runs went
        to a Ray cluster, its nodes and which ran what (`cnnlab.cluster.record`); the runner turns it into
        results.json."""
        path = self.output_dir / RECORD_FILE
        write_json_atomic(
            path,
            dict(experiment=self.experiment, seeds=self.seeds, metrics=self.metrics, tables=self.tables,
                 figures=self.figures, claims=self.claims, peak_rss_mb=peak_rss_mb() + tasks.workers_peak_mb(),
                 modules=imported_modules(), cluster=cluster.record()),
        )
        return path

    def summary(self):
        """The claims as a DataFrame, for display in the notebook."""
        import pandas as pd

        return pd.DataFrame(self.claims)[["id", "expected", "measured", "unit", "verdict", "rule"]]

    def findings(self) -> str:
        """The results paragraph (Markdown) rendered from the claims recorded so far."""
        return findings_markdown(self.claims)

    def finish(self) -> None:
        """A notebook's closing call: show the results paragraph and the verdict counts, then save and say where
        (relative to the repository)."""
        from IPython.display import Markdown, display

        display(Markdown(self.findings()))
        print(verdict_counts(self.claims))
        print(f"record saved in {paths.rel(self.save().parent)}/")


def _budget_checked(verdict: str, note: str, rule: Rule | None, measured, evidence: Evidence):
    """A trained claim's verdict and note after `convergence.limit`, and the fields it stores: `about`,
    `at_plateau` [k, n], `half_budget` (the verdict and value at half the budget, or None) and
    `budget_limited`."""
    half = None
    if evidence.about == "trained" and evidence.half is not None and rule is not None and measured is not None:
        value = evidence.half.mean if hasattr(evidence.half, "as_record") else float(evidence.half)
        half = dict(verdict=rule.decide(evidence.half), measured=value)
    at_plateau = (evidence.at_plateau, evidence.runs)
    limited, why = convergence.limit(verdict, at_plateau, half and half["verdict"])
    budget_limited = evidence.at_plateau < evidence.runs or (half is not None and half["verdict"] != verdict)
    fields = dict(about=evidence.about, at_plateau=list(at_plateau), half_budget=half, budget_limited=budget_limited)
    return limited, explain(note, why), fields
