"""Check runs (`cnnlab run --check`: the same run on another floating-point path) applied to the report: a
claim whose verdict differs between a run and its check run gets the weaker of the two (`weaker`), both in its
note, for that verdict depends on the machine. A check run made with other parameter values is not applied.
Where an experiment has no check run here, the verdicts the last checked report's check runs changed stay changed
where its run decides as the checked one did (`with_carried`), and are named where it now decides otherwise
(`relabelled`), so that an unchecked scorecard never reads stronger than the checked one it replaces."""

from __future__ import annotations

import json
from pathlib import Path

from cnnlab.rules import explain
from cnnlab.suite.claim_text import measured_text
from cnnlab.suite.results import CHECK_SUFFIX
from cnnlab.suite.schema import load_results

PAPER_SIDE = ("reproduced", "partial")  # verdicts on the paper's side, the stronger first


def weaker(ours: str, theirs: str) -> str:
    """The verdict both runs of a claim support: the weaker of two on the paper's side (reproduced > partial),
    else inconclusive (either inconclusive, not_reproduced against inconclusive, opposite sides, not_applicable
    against anything)."""
    if ours == theirs:
        return ours
    return "partial" if {ours, theirs} <= set(PAPER_SIDE) else "inconclusive"


def with_check(run: dict, profile: str) -> dict:
    """`run` with its check run applied, when there is one: a claim whose verdict differs between the two gets
    the `weaker` of them, both verdicts and the check run's value in its note. `checked` counts the claims
    compared (None without a check run), `unstable` lists those whose verdicts differ: their id, the run's
    verdict (`ran`), the check run's and the one reported. A check run made with other parameters checks another
    run: it is not applied, and `stale_check` names the parameters that differ."""
    check = load_results(run["run_dir"].with_name(profile + CHECK_SUFFIX))
    if check is None:
        return dict(run, checked=None, unstable=[])
    differing = other_parameters(run["params"], check["params"])
    if differing:
        return dict(run, checked=None, unstable=[], stale_check=differing)
    theirs = {c["id"]: c for c in check["claims"]}
    claims, unstable = [], []
    for claim in run["claims"]:
        other = theirs.get(claim["id"])
        if other is not None and other["verdict"] != claim["verdict"]:
            verdict = weaker(claim["verdict"], other["verdict"])
            unstable.append(dict(id=claim["id"], ran=claim["verdict"], check=other["verdict"], verdict=verdict))
            why = (f"{claim['verdict']} here but {other['verdict']} on the check run's floating-point path "
                   f"(measured {measured_text(other)}): the verdict depends on the machine; reported {verdict}, "
                   "what both runs support")
            claim = dict(claim, verdict=verdict, note=explain(claim["note"], why))
        claims.append(claim)
    return dict(run, claims=claims, checked=sum(c["id"] in theirs for c in run["claims"]), unstable=unstable)


def other_parameters(ours: dict, theirs: dict) -> list[str]:
    """The parameters whose values differ between two runs' records (one that only one run has, a parameter
    added since the other ran, counts as the notebook's default there and is not compared)."""
    return sorted(key for key in ours.keys() & theirs.keys() if ours[key] != theirs[key])


def with_carried(run: dict, previous: list[dict]) -> dict:
    """`run`, when it has no check run applied here, with the relabels of the last checked report (`previous`,
    as `previous_relabels` reads them) carried over where this run decided as that checked run did (`ran`):
    such a verdict was shown to depend on the floating-point path, so it keeps the weaker verdict until a check
    run here decides it again. The claim's note says so; `unstable` lists it, marked `carried`."""
    if run.get("checked") is not None:
        return run
    carried = {r["id"]: r for r in previous if r["experiment"] == run["experiment"]}
    claims, unstable = [], list(run["unstable"])
    for claim in run["claims"]:
        found = carried.get(claim["id"])
        if found is not None and found["ran"] == claim["verdict"] != found["verdict"]:
            check = found.get("check", found["verdict"])
            why = (f"{claim['verdict']} here as in the last checked report, whose check run decided {check} on "
                   f"another floating-point path: the verdict depends on the machine; reported {found['verdict']} "
                   "until a check run here decides it again")
            unstable.append(dict(id=claim["id"], ran=claim["verdict"], check=check, verdict=found["verdict"],
                                 carried=True))
            claim = dict(claim, verdict=found["verdict"], note=explain(claim["note"], why))
        claims.append(claim)
    return dict(run, claims=claims, unstable=unstable)


def check_summary(runs: list[dict], missing: dict[str, str], relabels: list[dict] = ()) -> str:
    """What the check runs cover, for the scorecard's header and the report: "Checked: k of n experiments", and
    for an experiment without a check run here the verdicts that the last checked report changed (`relabels`
    marked `carried`): kept, or named where its run now decides otherwise."""
    checked = [run for run in runs if run.get("checked") is not None]
    total = len(runs) + len(missing)
    kept = [r for r in relabels if r.get("carried") and r.get("applied", True)]
    named = [r for r in relabels if r.get("carried") and not r.get("applied", True)]
    elsewhere = (f" Without a check run here, {len(kept)} claims keep the weaker verdict the last checked report's "
                 "check runs gave them, their runs deciding as the checked ones did: " + "; ".join(
                     f"`{r['id']}` ({r['experiment']}) {r['ran']} here, reported {r['verdict']}" for r in kept)
                 + ".") if kept else ""
    elsewhere += (f" {len(named)} claims read as their runs now decide them, otherwise than when the last checked "
                  "report's check runs changed them: " + "; ".join(
                      f"`{r['id']}` ({r['experiment']}) {r['ran']} then, reported {r['verdict']} then" for r in named)
                  + ".") if named else ""
    stale = [run for run in runs if run.get("stale_check")]
    elsewhere += (" Not applied: " + "; ".join(
        f"the check run of {run['experiment']}, made with other values of {', '.join(run['stale_check'])}"
        for run in stale) + " (`make check-verdicts` runs them again).") if stale else ""
    if not checked:
        return (f"Checked: 0 of {total} experiments. No check run was found, so no verdict was tested on another "
                "floating-point path and one near its rule's bounds may read otherwise in a checked scorecard (the "
                f"committed one is checked): `make check-verdicts` runs the checks.{elsewhere}")
    unstable = sum(len(run["unstable"]) for run in checked)
    return (f"Checked: {len(checked)} of {total} experiments, each run again on another floating-point path "
            "(`make check-verdicts`: one thread, oneDNN off, as another CPU would compute); where the two verdicts "
            f"differ ({unstable} claims) the weaker is reported, partial where one is reproduced and the other "
            f"partial, else inconclusive, with both in the note.{elsewhere}")


def relabelled(runs: list[dict], previous: list[dict]) -> list[dict]:
    """The claims whose reported verdict a check run changed (experiment, id, ran, check, verdict): from this
    report's check runs and, for an experiment run without one here, those `with_carried` kept (marked
    `carried`) and the other relabels of the last report (`previous`) its run now decides otherwise (marked
    `carried`, not `applied`), so that the next report carries them on."""
    checked = {run["experiment"] for run in runs if run.get("checked") is not None}
    unchecked = {run["experiment"] for run in runs} - checked
    own = [dict(experiment=run["experiment"], **u) for run in runs for u in run["unstable"] if u["verdict"] != u["ran"]]
    kept = {(r["experiment"], r["id"]) for r in own}
    return own + [dict(r, carried=True, applied=False) for r in previous
                  if r["experiment"] in unchecked and (r["experiment"], r["id"]) not in kept]


def previous_relabels(summary_file: Path) -> list[dict]:
    """`relabelled` as the last report's `summary_file` recorded it ([] without one, or when it cannot be read)."""
    try:
        found = json.loads(summary_file.read_text()).get("relabelled", [])
    except (OSError, ValueError, AttributeError):
        return []
    keys = {"experiment", "id", "ran", "verdict"}
    return [r for r in found if isinstance(r, dict) and keys <= set(r)] if isinstance(found, list) else []


def checked_text(run: dict) -> str:
    """"; check run: k of n verdicts differ" for an experiment's line in the scorecard ("" without one)."""
    if run.get("stale_check"):
        return f"; check run not applied: other values of {', '.join(run['stale_check'])}"
    if run.get("checked") is None:
        kept = sum(bool(u.get("carried")) for u in run["unstable"])
        return f"; no check run here, {kept} verdicts kept from the last checked report's" if kept else ""
    return f"; check run: {len(run['unstable'])} of {run['checked']} verdicts differ"
