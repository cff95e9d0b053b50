"""The run's own process (pipeline/main.py): it loads the modules of the tasks to come while tasks
run, a step at a time, and it ends without the interpreter's teardown but with its exit code, its
output and its task processes reaped."""

from __future__ import annotations

import contextlib
import queue
import resource
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import luigi.worker
import pytest
from conftest import SRC

from {{ cookiecutter.module_name }}.pipeline import main


def kind(name: str, steps: int, loaded: list[str]) -> type:
    """A kind of task whose preload() takes `steps` steps, each noted in `loaded`."""

    def preload(self) -> Iterator[None]:
        for step in range(steps):
            loaded.append(f"{name}{step}")
            yield

    return type(name, (), {"preload": preload})


@pytest.fixture
def pending(monkeypatch: pytest.MonkeyPatch) -> dict:
    """main's record of the kinds to load, empty, restored after the test."""
    monkeypatch.setattr(main, "_to_preload", {})
    monkeypatch.setattr(main, "_preloaded", set())
    monkeypatch.setattr(main, "_loading", [])
    return main._to_preload


def test_kinds_load_in_the_order_they_run_one_step_a_call(pending: dict):
    """Tasks are found from the root down (Submission, Train, Ingest): Ingest runs first and loads first."""
    loaded: list[str] = []
    kinds = [kind(name, steps, loaded) for name, steps in (("Submission", 1), ("Train", 3), ("Ingest", 2))]
    for cls in kinds:
        main._will_run(cls(), None)
    main._will_run(kinds[1](), None)  # a second task of a kind already listed adds nothing

    calls = 0
    while main._to_preload or main._loading:
        main._preload_step()
        calls += 1
    assert loaded == ["Ingest0", "Ingest1", "Train0", "Train1", "Train2", "Submission0"]
    assert calls == len(loaded) + 3  # one step a call, and a call that finds each kind's steps ended


def test_a_failing_preload_is_left_to_its_task(pending: dict):
    def preload(self) -> Iterator[None]:
        yield
        raise ImportError("no such module")

    loaded: list[str] = []
    main._will_run(kind("Later", 1, loaded)(), None)
    main._will_run(type("Broken", (), {"preload": preload})(), None)
    for _ in range(5):
        if main._to_preload or main._loading:
            main._preload_step()
    assert loaded == ["Later0"] and not main._to_preload


@pytest.mark.parametrize("finished", [False, True])
def test_the_worker_loads_only_while_no_task_has_finished(
    pending: dict, monkeypatch: pytest.MonkeyPatch, finished: bool
):
    """While it waits for a running task it loads what is to come; a finished task is handled first,
    so the next task starts without waiting for modules that only later ones need."""
    loaded: list[str] = []
    main._will_run(kind("Train", 3, loaded)(), None)
    handled: list[bool] = []
    monkeypatch.setattr(luigi.worker.Worker, "_handle_next_task", lambda self: handled.append(True))
    worker = object.__new__(main._PreloadingWorker)  # only its result queue and process count matter here
    worker._task_result_queue, worker.worker_processes = queue.Queue(), 1
    if finished:
        worker._task_result_queue.put(("a task", "DONE"))
    worker._handle_next_task()
    assert handled == [True]
    assert loaded == ([] if finished else ["Train0", "Train1", "Train2"])


AHEAD = """
import json, multiprocessing, os, sys, time
from pathlib import Path

import luigi

OUT, HOW = Path(sys.argv[1]), sys.argv[2]


def note(name):
    (OUT / name).write_text(json.dumps([os.getpid(), time.time()]))


class First(luigi.Task):
    def output(self):
        return luigi.LocalTarget(OUT / "first")

    def run(self):
        note("first started")
        time.sleep(60 if HOW == "killed" else 1)
        if HOW == "fails":
            raise RuntimeError("First fails")
        note("first ended")
        self.output().open("w").close()


class Later(luigi.Task):
    fork_ahead = True

    def requires(self):
        return First()

    def output(self):
        return luigi.LocalTarget(OUT / "later")

    def preload(self):
        note("later loaded")
        yield

    def run(self):
        note("later ran")
        self.output().open("w").close()


if __name__ == "__main__":
    from {{ cookiecutter.module_name }}.pipeline import main

    if HOW == "done":
        First().output().open("w").close()
    main._run(["Later", "--local-scheduler", "--workers", "2", "--no-lock"])
    multiprocessing.active_children()  # reaps the task processes that ended, as main._exit does
    if not (OUT / "later loaded").exists():
        sys.exit(print("never forked ahead"))
    pid = json.loads((OUT / "later loaded").read_text())[0]
    try:
        os.kill(pid, 0)
        print("still there")
    except ProcessLookupError:
        print("gone")
"""


def _noted(folder, name: str) -> tuple[int, float]:
    import json

    pid, when = json.loads((folder / name).read_text())
    return pid, when


def _run_ahead(tmp_path, how: str) -> subprocess.CompletedProcess:
    script = tmp_path / "ahead.py"
    script.write_text(textwrap.dedent(AHEAD))
    return subprocess.run(
        [sys.executable, str(script), str(tmp_path), how],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(SRC)},
        timeout=60,
    )


def test_a_task_forked_ahead_loads_while_the_tasks_before_it_run_and_runs_after_them(tmp_path):
    """Train's kind (fork_ahead): its process starts while its dependencies run, loads its modules
    there, and runs the task only once Luigi starts it, in that same process."""
    result = _run_ahead(tmp_path, "works")
    assert result.stdout.endswith("gone\n"), result.stderr
    loaded_in, loaded_at = _noted(tmp_path, "later loaded")
    ran_in, ran_at = _noted(tmp_path, "later ran")
    first_in, first_ended = _noted(tmp_path, "first ended")
    assert loaded_in == ran_in != first_in
    assert loaded_at < first_ended <= ran_at


def test_a_task_forked_ahead_that_never_runs_ends_with_the_run(tmp_path):
    result = _run_ahead(tmp_path, "fails")
    assert result.stdout.endswith("gone\n"), result.stderr
    assert (tmp_path / "later loaded").exists() and not (tmp_path / "later ran").exists()


def test_a_task_luigi_starts_first_is_not_forked_ahead_too(tmp_path):
    """Nothing before it to run (its dependencies are done): Luigi starts it at once in a process of
    its own, and no second process is forked to load its modules and wait for the run's end."""
    result = _run_ahead(tmp_path, "done")
    assert result.stdout.endswith("never forked ahead\n"), result.stderr
    assert (tmp_path / "later ran").exists() and not (tmp_path / "first started").exists()


def test_a_task_forked_ahead_ends_when_the_run_is_killed(tmp_path):
    """Its start pipe closes with the run's process, whatever ends it: no process is left waiting."""
    import os
    import signal
    import time

    script = tmp_path / "ahead.py"
    script.write_text(textwrap.dedent(AHEAD))
    run = subprocess.Popen([sys.executable, str(script), str(tmp_path), "killed"], env={"PYTHONPATH": str(SRC)})
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "later loaded").exists() or not (tmp_path / "first started").exists():
            assert time.monotonic() < deadline and run.poll() is None
            time.sleep(0.05)
        run.kill()
        run.wait()
        later = _noted(tmp_path, "later loaded")[0]
        while time.monotonic() < deadline:
            try:
                os.kill(later, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the process forked ahead outlived the run")
    finally:
        run.kill()
        if (tmp_path / "first started").exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(_noted(tmp_path, "first started")[0], signal.SIGKILL)


EXITS = """
import multiprocessing, sys, time

def burn():  # a task process: 0.3 s of CPU
    while time.process_time() < 0.3:
        pass

if __name__ == "__main__":
    from {{ cookiecutter.module_name }}.pipeline import main
    task = multiprocessing.get_context("fork").Process(target=burn)
    task.start()
    stat = "/proc/%d/stat" % task.pid
    while open(stat).read().rpartition(")")[2].split()[0] != "Z":  # ended, not yet waited for
        time.sleep(0.01)
    print("written before the exit", end="")
    main._exit(3)
"""


def test_parameters_are_resolved_once_within_a_run_and_afresh_in_the_next(luigi_config):
    """Within parameters_fixed() (what a run opens), each task's and section's parameters are read
    from luigi.cfg once; a value changed after the block is read by the next one."""
    from {{ cookiecutter.module_name }}.pipeline.config import ResolvedOnce, competition, parameters_fixed
    from {{ cookiecutter.module_name }}.pipeline.training.train import Train

    class listed_for_test(ResolvedOnce, luigi.Config):  # noqa: N801
        names = luigi.ListParameter(default=[])

    luigi_config("competition", "seed", 7)
    luigi_config("train", "model", "hgb")
    with parameters_fixed():
        assert (competition().seed, Train().model) == (7, "hgb")
        luigi_config("competition", "seed", 8)  # cannot happen during a run: shows what is kept
        luigi_config("train", "model", "linear")
        assert (competition().seed, Train().model) == (7, "hgb")
        assert Train(model="xgb").model == "xgb"  # other arguments: their own values
        assert listed_for_test(names=[1, [2]]).names == (1, (2,))  # values that cannot be hashed: resolved each time
    assert (competition().seed, Train().model) == (8, "linear")
    with parameters_fixed():
        assert competition().seed == 8


def test_a_run_resolves_parameters_once(monkeypatch: pytest.MonkeyPatch):
    from {{ cookiecutter.module_name }}.pipeline import config

    inside: list[bool] = []

    def schedule(root):
        inside.append(config._resolved is not None)
        raise RuntimeError("stop here")

    monkeypatch.setattr(main, "_schedule_and_run", schedule)
    main._run(["--module", main.TASKS_MODULE, "Split", "--local-scheduler"])
    assert inside == [True]
    assert config._resolved is None


def test_the_run_ends_with_its_code_its_output_and_its_task_processes_reaped(tmp_path):
    """os._exit skips the teardown, so the exit must flush the output itself, and wait for the task
    processes that ended (otherwise their CPU time is nobody's: `time make all` would not count it)."""
    script = tmp_path / "exits.py"
    script.write_text(textwrap.dedent(EXITS))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env={"PYTHONPATH": str(SRC)}, timeout=60
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert result.returncode == 3, result.stderr
    assert result.stdout == "written before the exit"
    assert after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime >= 0.3
