"""`python -m {{ cookiecutter.module_name }}.pipeline.runs <command>`: the Makefile's run tools (runs, lb, ...).

    list [--sort time|cv]     the runs table (make runs [SORT=cv])
    lb RUN SCORE              record a leaderboard score (make lb RUN=... SCORE=...)
    lb                        read the public scores from Kaggle into the records (make lb)
    submit [RUN] [--message M] [--force]   upload a run's submission to Kaggle (make submit)
    report                    reports/report.md and .html with plots (make report)
    status [luigi args]       complete tasks and those `make all` would run (make status)
    gc [--confirm] [--stale-hours H] [args]   cache folders nothing refers to; deleted with --confirm (make gc)
    verify [--all] [--fix]    results' files against their manifests' sha256 (make verify [ALL=1] [FIX=1])
    rerun RUN                 the commands that re-create a run (make rerun RUN=...)

A problem the user can fix prints one `ERROR:` line and exits 1.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Iterator

import luigi
import luigi.cmdline_parser

from ..config import reports_dir
from ..errors import PipelineError
from ..storage.cache import hashes_fixed
from .dag import overrides
from .record import all_records, read_record, set_lb

ROOT = "Submission"


@contextlib.contextmanager
def parsed(args: list[str]) -> Iterator[luigi.Task]:
    """The root task (Submission), with the overrides in args in force for the block (as on Luigi's
    command line, so every task and config class sees them)."""
    importlib.import_module("..tasks", __package__)  # registers the task classes the parser looks up
    with luigi.cmdline_parser.CmdlineParser.global_instance([ROOT, *overrides(args)]) as parser:
        yield parser.get_task_obj()


def show_runs(sort: str) -> list[str]:
    from .report import runs_table

    records = all_records()
    if not records:
        return ["No runs yet: `make all` (or `make train`) writes runs/<run id>.json."]
    if sort == "cv":

        def best_first(record):
            cv = record["cv"]
            return (cv["metric"], -cv["score"] if cv["greater_is_better"] else cv["score"])

        records = sorted(records, key=best_first)
    rows = runs_table(records)
    for row, record in zip(rows[1:], records, strict=True):
        features = ",".join(record["features"])
        row[-1] = features if len(features) <= 48 else features[:47] + "~"
    rows[0][-1] = "features"
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {__package__}", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list").add_argument("--sort", choices=("time", "cv"), default="time")
    lb = commands.add_parser("lb")
    lb.add_argument("run", nargs="?", default="")
    lb.add_argument("score", nargs="?", default="")
    submit = commands.add_parser("submit")
    submit.add_argument("run", nargs="?", default="")
    submit.add_argument("--message", default="")
    submit.add_argument("--force", action="store_true")
    commands.add_parser("report")
    commands.add_parser("status")
    gc = commands.add_parser("gc")
    gc.add_argument("--confirm", action="store_true")
    gc.add_argument("--stale-hours", default="")
    commands.add_parser("rerun").add_argument("run", nargs="?", default="")
    verify = commands.add_parser("verify")
    verify.add_argument("--all", action="store_true")
    verify.add_argument("--fix", action="store_true")
    args, luigi_args = parser.parse_known_args(sys.argv[1:] if argv is None else argv)

    code = 0
    if args.command == "list":
        lines = show_runs(args.sort)
    elif args.command == "lb" and not args.run and not args.score:
        from .submit import read_scores

        lines = read_scores()
    elif args.command == "lb":
        if not args.score:
            raise PipelineError(
                "make lb needs RUN=<run id> and SCORE=<public leaderboard score> (or neither: scores from Kaggle)"
            )
        record = set_lb(args.run, args.score)
        lines = [f"{record['run_id']}: leaderboard {record['lb']['score']} (CV {record['cv']['score']:.5f})"]
    elif args.command == "submit":
        from .submit import submit

        lines = submit(args.run, args.message, args.force)
    elif args.command == "report":
        from .report import where, write_report

        lines = [f"Report: {where(write_report(all_records(), reports_dir()))}"]
    elif args.command == "status":
        from .status import report

        with parsed(luigi_args) as root, hashes_fixed():
            lines = report(root)
    elif args.command == "gc":
        from .gc import collect, stale_hours

        hours = stale_hours(args.stale_hours)
        with parsed(luigi_args) as root, hashes_fixed():
            lines = collect([root], args.confirm, hours)
    elif args.command == "verify":
        from .verify import verify

        with parsed(luigi_args) as root, hashes_fixed():
            lines, code = verify([root], args.all, args.fix)
    else:
        from .rerun import report

        record = read_record(args.run)
        with parsed(record["params"]["overrides"]) as root, hashes_fixed():
            lines = report(record, root)
    print("\n".join(lines))
    return code


def run() -> None:
    try:
        code = main()
    except PipelineError as error:
        os.write(sys.stderr.fileno(), f"ERROR: {error}\n".encode())
        code = 1
    sys.exit(code)


if __name__ == "__main__":
    run()
