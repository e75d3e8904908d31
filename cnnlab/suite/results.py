"""The results record of a run and its claims, written atomically.

A notebook builds a `Record`: metrics, tables (CSV), figures (PNG) and claims. `Record.save()`
writes `record.json` in the run folder; the runner adds what it knows (parameters, cache key,
versions, duration) and renames the whole into `results.json` only when the notebook finished.

A claim is one checkable sentence of the lectures. Its verdict is computed from the measured value
by a `cnnlab.rules.Rule` that is stored beside it as text, so a reader sees why it was decided.
"""

from __future__ import annotations

import json
import math
import os
import resource
import sys
import tempfile
from pathlib import Path

from cnnlab import convergence, paths
from cnnlab.backends import display_name
from cnnlab.convergence import Evidence
from cnnlab.rules import Rule, explain

VERDICTS = ("reproduced", "partial", "inconclusive", "not_reproduced", "not_applicable")
RECORD_FILE = "record.json"
RESULTS_FILE = "results.json"
CHECK_SUFFIX = "-check"  # a check run of profile P lives in P-check/ beside P/


def imported_modules() -> list[str]:
    """The cnnlab source files this process has imported, relative to the package ("train.py"): the code a
    run's results depend on, so that the cache key can leave the rest of the package out."""
    found = set()
    for name, module in list(sys.modules.items()):
        source = getattr(module, "__file__", None)
        if source and (name == "cnnlab" or name.startswith("cnnlab.")):
            try:
                found.add(Path(source).resolve().relative_to(paths.PACKAGE).as_posix())
            except ValueError:  # a cnnlab imported from elsewhere: not this package's source
                continue
    return sorted(found)


def write_json_atomic(path: Path, data) -> None:
    """Write JSON to a temporary file in the same folder, then rename it over `path`."""
    write_text_atomic(path, json.dumps(_finite(data), indent=2, default=_to_builtin, allow_nan=False) + "\n")


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to a temporary file in the same folder, readable by everyone, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _finite(value):
    """JSON has no NaN or inf: store them as null (a diverged loss curve is a result, not an error)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, Path):
        return _finite(value.tolist())
    return value


def _to_builtin(value):
    """numpy scalars and arrays, paths: to plain JSON types."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in results.json")


def fmt(value, unit: str = "") -> str:
    """A number as a person reads it: thousands separators, floats to 5 significant digits."""
    if value is None:
        return "n/a"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    text = f"{value:,}" if isinstance(value, int) else (f"{value:,.5g}" if math.isfinite(value) else str(value))
    return f"{text} {unit}".strip()


def stack_text(versions: dict) -> str:
    """The backend and Keras a run used, as "TensorFlow 2.21.0, Keras 3.15.1"."""
    backend = versions.get("backend") or "tensorflow"
    return f"{display_name(backend)} {versions.get(backend)}, Keras {versions.get('keras')}"


def measured_text(claim: dict) -> str:
    """A claim's measured value as a reader should see it: a bound marked as one, and for a comparison
    over seeds its interval in brackets."""
    text = fmt(claim["measured"], claim["unit"])
    bound = claim.get("bound")
    if bound == "?":
        text += " (censored both ways)"
    elif bound:
        text = f"{bound} {text}"
    if "interval" in claim:
        low, high = claim["interval"]
        finite = all(isinstance(v, (int, float)) and math.isfinite(v) for v in (low, high))
        span = f"{low:.4g}, {high:.4g}" if finite else "needs 2 seeds"
        text += f" [{span}]"
    return text


def per_seed_text(claim: dict) -> str:
    """The per-seed values of a comparison, a bound marked as one ("" for a single measurement)."""
    if "per_seed" not in claim:
        return ""
    return ", ".join("n/a" if v is None else f"{c}{v:.4g}" for v, c in zip(claim["per_seed"], claim["censored"]))


def convergence_text(claim: dict) -> str:
    """A trained claim's convergence as the scorecard and the report show it: "At plateau: 3 of 3; at half the
    budget: partial (1.2 pp)." ("" for a claim that trains nothing)."""
    if "at_plateau" not in claim:
        return ""
    k, n = claim["at_plateau"]
    half = claim.get("half_budget")
    at_half = f"; at half the budget: {half['verdict']} ({fmt(half['measured'], claim['unit'])})" if half else ""
    return f"At plateau: {k} of {n}{at_half}."


def count_verdicts(claims: list[dict]) -> dict[str, int]:
    """How many claims got each verdict: every verdict of VERDICTS in its order (0 where none did), then any other."""
    counts = dict.fromkeys(VERDICTS, 0)
    for claim in claims:
        counts[claim["verdict"]] = counts.get(claim["verdict"], 0) + 1
    return counts


def verdict_counts(claims: list[dict]) -> str:
    """"3 inconclusive, 1 reproduced": how many claims got each verdict."""
    counts = {verdict: n for verdict, n in count_verdicts(claims).items() if n}
    return ", ".join(f"{n} {verdict}" for verdict, n in sorted(counts.items())) or "no claims"


def findings_markdown(claims: list[dict]) -> str:
    """The results paragraph of a notebook, rendered from its recorded claims: each claim's statement,
    what was measured, over how many seeds, and the verdict the rule gave."""
    lines = []
    for c in claims:
        expected = "" if c["expected"] is None else f"; the lecture: {fmt(c['expected'], c['unit'])}"
        seeds = f" over {c['n_seeds']} seeds ({per_seed_text(c)})" if "per_seed" in c else ""
        if c["measured"] is None and c["note"]:
            seeds = f" ({c['note']})"
        lines.append(f"- {c['statement']}: measured {measured_text(c)}{seeds}{expected}. "
                     f"**{c['verdict'].replace('_', ' ')}** (`{c['id']}`)")
    return "\n".join(lines)


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB: Linux's high-water mark of its own memory (VmHWM;
    `getrusage` would also count the parent's pages a forked kernel shared before its exec), else
    `getrusage`'s maximum (kilobytes on Linux, bytes on macOS)."""
    try:
        status = Path("/proc/self/status").read_text()
        return round(int(status.split("VmHWM:")[1].split()[0]) / 1024, 1)
    except (OSError, IndexError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)


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
        """Write record.json atomically, with the peak resident memory of this process so far (the
        notebook's kernel) and the cnnlab modules it imported; the runner turns it into results.json."""
        path = self.output_dir / RECORD_FILE
        write_json_atomic(
            path,
            dict(experiment=self.experiment, seeds=self.seeds, metrics=self.metrics, tables=self.tables,
                 figures=self.figures, claims=self.claims, peak_rss_mb=peak_rss_mb(), modules=imported_modules()),
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
