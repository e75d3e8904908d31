"""The `cnnlab` command line (also `python -m cnnlab`): list, show, run, reproduce, report, verdicts, bench."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import signal
import sys
import time
from pathlib import Path

from cnnlab import backends, paths
from cnnlab.cluster import CLUSTER_ENV
from cnnlab.data import DataError
from cnnlab.suite import params
from cnnlab.suite.params import PROFILES, ParamError

MAX_WORKERS = 4  # the default's cap: each worker holds its own nets (06's about 2 GiB)


def _profile_option(command: argparse.ArgumentParser, more: str = "") -> None:
    """`--profile`, one of the profiles every parameter file defines (argparse refuses any other)."""
    command.add_argument("--profile", default="quick", choices=PROFILES, help=f"the profile (default quick){more}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cnnlab", description="Reproduce the classic results of CNN lectures.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="list the experiments and their profiles")
    show = commands.add_parser("show", help="show an experiment's parameters and each profile's values")
    show.add_argument("experiment", help="name or number, e.g. 01 or 01_architecture_arithmetic")
    run = commands.add_parser("run", help="run one experiment")
    run.add_argument("experiment", help="name or number, e.g. 01 or 01_architecture_arithmetic")
    _profile_option(run)
    run.add_argument("--seed", type=int, default=None, help="override the profile's seed")
    run.add_argument("-p", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override one parameter (repeatable); the value is read as YAML")
    run.add_argument("--force", action="store_true", help="run even when cached results match")
    run.add_argument("--check", action="store_true",
                     help="a check run: another floating-point path (one thread, oneDNN off) into <profile>-check/; "
                          "where a claim's verdict differs from the main run's, the report gives the weaker")
    _workers_option(run)
    reproduce = commands.add_parser("reproduce", help="run every experiment (or those named), then write the report")
    reproduce.add_argument("experiments", nargs="*", metavar="experiment",
                           help="names or numbers of the experiments to run (default all)")
    _profile_option(reproduce)
    reproduce.add_argument("--force", action="store_true", help="run even when cached results match")
    reproduce.add_argument("--check", action="store_true", help="check runs of every experiment (see run --check)")
    reproduce.add_argument("--jobs", type=_positive, default=1,
                           help="experiments run at once, each in its own process with its usual threads (the same "
                                "numbers); one line per run here, its output in results/runs/<experiment>/"
                                "<profile>.log (default 1)")
    _workers_option(reproduce)
    report = commands.add_parser("report", help="write results/SCORECARD.md, the tables, the HTML report "
                                                "(results/report/index.html) and README's Results section")
    _profile_option(report, "; a profile other than quick is written to results/<profile>/ and leaves README alone")
    verdicts = commands.add_parser("verdicts", help="list the claims whose verdict differs between two scorecards "
                                                    "(e.g. one from git show REV:results/SCORECARD.md) or two sets "
                                                    "of runs (smoke against smoke-jax)")
    verdicts.add_argument("before", help="the earlier SCORECARD.md, or a run folder name under results/runs/*/ "
                                         "(a profile, with -check or -<backend>)")
    verdicts.add_argument("after", nargs="?", default=None,
                          help="the later one, the same way (default results/SCORECARD.md)")
    bench = commands.add_parser("bench", help="training throughput of three of the suite's nets under each setting "
                                              "(library vs raw fit, input, steps per execution, bf16, threads, "
                                              "backends) and where each quick run's minutes go; writes results/bench/")
    bench.add_argument("--repeats", type=_positive, default=5, help="timed epochs per measurement (default 5)")
    bench.add_argument("--batches", type=_positive, default=50, help="batches per timed epoch (default 50)")
    return parser


def _workers_option(command: argparse.ArgumentParser) -> None:
    """`--workers` and `--cluster`: where an experiment's paired runs train (`cnnlab.tasks`)."""
    command.add_argument("--workers", type=_positive, default=None,
                         help="paired runs an experiment trains at once, each in a worker process with the usual "
                              "threads (the same numbers); default: the cores over the experiments run at once, "
                              f"at most {MAX_WORKERS}, and 1 in the full profile (one GPU's memory)")
    command.add_argument("--cluster", metavar="ADDRESS", default=os.environ.get(CLUSTER_ENV) or None,
                         help="train the paired runs as tasks on the Ray cluster whose head is at ADDRESS (host:port; "
                              f"default ${CLUSTER_ENV}); needs the cluster extra")


def _cluster(args) -> str | None:
    """The `--cluster` address, checked before any kernel starts (a ParamError line otherwise)."""
    if args.cluster:
        from cnnlab import cluster

        try:
            cluster.check_address(args.cluster)
        except ValueError as err:
            raise ParamError(str(err)) from None
    return args.cluster


def workers_for(profile: str, jobs: int, cores: int | None = None) -> int:
    """The default `--workers`: the cores shared among the `jobs` experiments run at once (at most MAX_WORKERS),
    and 1 in the full profile, whose nets fill a GPU's memory."""
    if profile == "full":
        return 1
    return max(1, min(MAX_WORKERS, (cores or os.cpu_count() or 1) // jobs))


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return value


def _list() -> None:
    for exp in params.discover():
        print(f"{exp.name:32s} {exp.title}  [{', '.join(exp.profiles)}]")


def _show(args) -> None:
    exp = params.find(args.experiment)
    resolved = {p: params.resolve(exp, p) for p in PROFILES}
    print(f"{exp.name}: {exp.title}")
    print(f"notebook {paths.rel(exp.notebook)}, profiles in {paths.rel(exp.params_file)}")
    for name, spec in exp.specs.items():
        if name in params.RUNNER_KEYS:
            continue
        print(f"\n{name}: {spec.describe()}")
        if spec.help:
            print(f"    {spec.help}")
        for profile in PROFILES:
            value = resolved[profile][name]
            mark = "" if value == exp.defaults[name] else "  (from the params file)"
            print(f"    {profile:6s} {value!r}{mark}")


def _run(args) -> None:
    from cnnlab.suite import runner

    exp = params.find(args.experiment)
    overrides = dict(params.parse_override(text) for text in args.overrides)
    workers, cluster = args.workers or workers_for(args.profile, 1), _cluster(args)
    runner.run(exp, args.profile, overrides, args.seed, args.force, check=args.check, workers=workers,
               cluster=cluster)


def _reproduce(args) -> None:
    from cnnlab.suite import runner

    experiments = [params.find(name) for name in args.experiments] or params.discover()
    for exp in experiments:
        params.resolve(exp, args.profile)
    start, workers, cluster = time.monotonic(), args.workers or workers_for(args.profile, args.jobs), _cluster(args)
    if args.jobs > 1:
        from cnnlab.suite import parallel

        parallel.run_all(experiments, args.profile, args.jobs, args.force, args.check, workers=workers,
                         cluster=cluster)
    else:
        for i, exp in enumerate(experiments, 1):
            runner.run(exp, args.profile, force=args.force, position=(i, len(experiments)), check=args.check,
                       workers=workers, cluster=cluster)
    print(f"all {len(experiments)} experiments in {time.monotonic() - start:.0f} s")
    backend = backends.selected()
    if backend == "tensorflow":
        _write_report(args.profile)
    else:  # the scorecard and the report are TensorFlow's; compare instead of overwriting them
        ours = runner.run_folder(args.profile, args.check)
        print(f"no report: it reads the TensorFlow runs; `cnnlab verdicts {ours.removesuffix('-' + backend)} {ours}` "
              "compares these runs' verdicts with TensorFlow's")


def _report(args) -> None:
    _write_report(args.profile)


def _write_report(profile: str) -> None:
    """Write the scorecard, README's Results and the HTML report; the report's path comes last."""
    from cnnlab.suite import report

    written = report.build(profile)
    print(f"wrote {paths.rel(written.scorecard)}. {written.checked}")
    if written.readme:
        print(f"wrote {paths.rel(written.readme)} (its Results section)")
    print(f"wrote {paths.rel(written.index)}: open {written.index.as_uri()} in a browser")


def _verdicts(args) -> None:
    from cnnlab.suite import report, verdicts

    def verdicts_of(source: str) -> dict:
        if Path(source).is_file():
            return verdicts.scorecard_verdicts(Path(source).read_text())
        found = verdicts.run_verdicts(source)
        if not found:
            raise FileNotFoundError(f"'{source}' is neither a scorecard file nor a run folder with results "
                                    f"under {paths.rel(paths.RUNS)}/*/")
        return found

    before, after = verdicts_of(args.before), verdicts_of(args.after or str(paths.RESULTS / report.SCORECARD))
    changes = verdicts.verdict_changes(before, after)
    for experiment, claim_id, old, new in changes:
        print(f"{experiment} {claim_id}: {old} -> {new}")
    print(f"{len(changes)} of {len(after)} claims changed verdict")


def _bench(args) -> None:
    from cnnlab.suite import bench

    info = bench.machine()
    print(f"[bench] {info['cpu']}, {info['cores']} cores; bf16 in hardware: {info['bf16']}")
    rows, skipped = bench.run_bench(args.repeats, args.batches)
    folder = bench.write(rows, skipped, info)
    print((folder / "bench.md").read_text())
    print(f"wrote {paths.rel(folder)}/bench.md, bench.csv and bench.png")


# what a user can do about a file system error, by its errno
OS_ERROR_FIXES = {
    errno.EACCES: "check its permissions",
    errno.EPERM: "check its permissions and attributes (an immutable file: chattr -i)",
    errno.EROFS: "the file system is read-only",
    errno.ENOSPC: "free some disk space and run again",
    errno.ENOTDIR: "a file stands where a folder belongs: move it away",
    errno.EISDIR: "a folder stands where a file belongs: move it away",
    errno.EEXIST: "something stands where a folder belongs: move it away",
}


def os_error_text(err: OSError) -> str:
    """A file system error as one line: the path (relative to the repository), what went wrong, the fix."""
    where = f"{paths.rel(Path(err.filename))}: " if err.filename else ""
    fix = OS_ERROR_FIXES.get(err.errno)
    what = err.strerror.lower() if err.strerror else str(err)  # a message of our own stays as written
    return f"{where}{what}" + (f" ({fix})" if fix else "")


def _interrupt(signum, frame):
    raise KeyboardInterrupt


class _KernelStopped(logging.Filter):
    """Drops asyncio's "Task exception was never retrieved" for the cell an interrupt stopped, logged when the task
    is collected, possibly after cnnlab has said so: nbclient's DeadKernelError where the kernel went first, its
    CellExecutionError of a KeyboardInterrupt where the interrupt reached the cell first."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        kind = type(error).__name__
        return not (kind == "DeadKernelError"
                    or kind == "CellExecutionError" and getattr(error, "ename", "") == "KeyboardInterrupt")


KERNEL_STOPPED = _KernelStopped()


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    from cnnlab.suite.bench import BenchFailed
    from cnnlab.suite.runner import RunFailed

    previous = signal.signal(signal.SIGTERM, _interrupt)  # `kill` cleans up like Ctrl-C
    # even when started by a process that blocks SIGTERM (a blocked mask is inherited; a handler is not enough)
    blocked = signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN  # inherited: Python then leaves Ctrl-C ignored
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    logging.getLogger("asyncio").addFilter(KERNEL_STOPPED)  # once: the same filter is not added twice
    try:
        commands = {"list": lambda a: _list(), "show": _show, "run": _run, "reproduce": _reproduce, "report": _report,
                    "verdicts": _verdicts, "bench": _bench}
        commands[args.command](args)
    except (ParamError, DataError, RunFailed, BenchFailed) as err:
        print(f"cnnlab: error: {err}", file=sys.stderr)
        return 2 if isinstance(err, ParamError) else 1
    except OSError as err:  # FileNotFoundError of our own ("no results for profile ...") included
        print(f"cnnlab: error: {os_error_text(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("cnnlab: interrupted", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
    return 0

