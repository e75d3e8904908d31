"""How numbers and claims read in the notebooks, the scorecard and the report: a number, a measured value with
its interval, the per-seed values, the convergence of a trained claim, verdict counts, and a notebook's results
paragraph."""

from __future__ import annotations

import math

from cnnlab.backends import display_name

VERDICTS = ("reproduced", "partial", "inconclusive", "not_reproduced", "not_applicable")


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


def where_text(run: dict) -> str:
    """Where a run's paired runs trained, beside its versions: "; 2 workers", or "; Ray cluster at ADDRESS, 2
    nodes (1 GPU)" ("" for one run after another in the kernel)."""
    found = run.get("cluster")
    if found:
        gpus = sum(node["gpus"] for node in found["nodes"])
        used = len({task["node"] for task in found["tasks"]})
        return (f"; Ray cluster at {found['address']}, {len(found['nodes'])} nodes{f' ({gpus:g} GPUs)' if gpus else ''}"
                f", {len(found['tasks'])} tasks on {used} of them")
    return f"; {run['workers']} workers" if run.get("workers", 1) > 1 else ""


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
