"""Paired runs of the peer kit's commands, alternated so that a drift in the machine's speed hits both
sides alike: the kit runs each peer's repetitions in a block, and on a shared VM its speed moves by
20-40% within minutes.

    python bench/peers_ab.py --data $PEERS_DATA/n200k --rounds 5
        each round: gokart cold, ours cold, ours edit, plain pandas edit (its full rerun)
        -> per-round ratios ours/gokart (cold) and ours/plain (edit), medians

    python bench/peers_ab.py --data $PEERS_DATA/n2m --rounds 2 --before /tmp/before
        each round: ours cold baked from --before (a checkout of an earlier commit) and from this
        template, in alternating order -> per-round ratios after/before (wall, largest process)

Needs the kit's environment (`../shared/bench-peers/README.md`: PEERS_VENV with its requirements).
Like the kit, runs set PYTHONDONTWRITEBYTECODE=1 and write only under --work.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[1]
KIT = TEMPLATE.parent / "shared" / "bench-peers"


def timed(command: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and the largest process's resident MB (GNU time's %M) of one command."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as out:
        started = time.perf_counter()
        subprocess.run(["/usr/bin/time", "-o", out.name, "-f", "%M", *command], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        return time.perf_counter() - started, int(out.read().split()[-1]) // 1024


def ours(data: str, work: Path, template: Path, venv: str) -> tuple[list[str], dict[str, str]]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "TEMPLATE": str(template), "VENV": venv}
    return ["sh", str(KIT / "ours" / "run.sh"), data, str(work)], env


def edit(work: Path, smoothing: float) -> None:
    """The kit's edit: the target encoding's smoothing in ours' baked feature file."""
    path = work / "proj" / "src" / "proj" / "features" / "peer.py"
    path.write_text(re.sub(r"SMOOTHING = [0-9.]+", f"SMOOTHING = {smoothing}", path.read_text()))


def against_peers(args: argparse.Namespace) -> None:
    python = f"{args.venv}/bin/python"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    results: dict[str, list[float]] = {"gokart": [], "ours": [], "ours edit": [], "plain edit": []}
    plain = args.work / "plain"
    for round_ in range(args.rounds):
        shutil.rmtree(args.work / "gokart", ignore_errors=True)
        gokart = [python, str(KIT / "gokart_peer" / "run.py"), "--data", args.data, "--work", str(args.work / "gokart")]
        results["gokart"].append(timed(gokart, env)[0])
        shutil.rmtree(args.work / "ours", ignore_errors=True)
        command, ours_env = ours(args.data, args.work / "ours", TEMPLATE, args.venv)
        results["ours"].append(timed(command, ours_env)[0])
        edit(args.work / "ours", 10.0 + round_ + 0.5)  # a new value each round: the edit always applies
        results["ours edit"].append(timed(command, ours_env)[0])
        command = [python, str(KIT / "plain_pandas.py"), "--data", args.data, "--work", str(plain)]
        if round_ == 0:
            shutil.rmtree(plain, ignore_errors=True)
            timed(command, env)  # its first run writes train_folds.csv; later runs are its edit run
        results["plain edit"].append(timed(command, env)[0])
        print(f"round {round_}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in results.items()), flush=True)
    medians = {k: statistics.median(v) for k, v in results.items()}
    for ours_key, peer in (("ours", "gokart"), ("ours edit", "plain edit")):
        per_round = ", ".join(f"{a / b:.3f}" for a, b in zip(results[ours_key], results[peer], strict=True))
        mine, theirs = medians[ours_key], medians[peer]
        print(
            f"{ours_key} / {peer}: per round {per_round}; medians {mine:.2f} s / {theirs:.2f} s = {mine / theirs:.3f}x"
        )


def before_after(args: argparse.Namespace) -> None:
    results: dict[str, list[tuple[float, int]]] = {"before": [], "after": []}
    for round_ in range(args.rounds):
        sides = [("before", args.before), ("after", TEMPLATE)]
        for name, template in sides if round_ % 2 == 0 else sides[::-1]:
            work = args.work / name
            shutil.rmtree(work, ignore_errors=True)
            results[name].append(timed(*ours(args.data, work, template, args.venv)))
            seconds, mb = results[name][-1]
            print(f"round {round_}: {name} {seconds:.1f} s, largest process {mb} MB", flush=True)
    for index, what in ((0, "wall"), (1, "largest process")):
        per_round = [a[index] / b[index] for a, b in zip(results["after"], results["before"], strict=True)]
        before = statistics.median(r[index] for r in results["before"])
        after = statistics.median(r[index] for r in results["after"])
        print(f"{what}: after / before per round {', '.join(f'{r:.3f}' for r in per_round)}; "
              f"medians {after:.1f} / {before:.1f} = {after / before:.3f}x")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="a folder gen.py wrote (train.csv, test.csv, sample)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--before", type=Path, help="an earlier template checkout: compare ours with it")
    parser.add_argument("--venv", default=os.environ.get("PEERS_VENV", "/tmp/peers-venv"))
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "peers-ab")
    args = parser.parse_args()
    if not KIT.is_dir():
        sys.exit(f"ERROR: the peer kit is not at {KIT}")
    args.data = str(Path(args.data).resolve())
    args.work.mkdir(parents=True, exist_ok=True)
    (before_after if args.before else against_peers)(args)


if __name__ == "__main__":
    main()
