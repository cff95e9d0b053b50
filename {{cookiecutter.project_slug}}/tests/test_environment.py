"""The environment: requirements.lock covers pyproject.toml, and runs know whether they used it."""

from __future__ import annotations

import sys

import pytest
from conftest import PROJECT
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from {{ cookiecutter.module_name }}.pipeline.errors import PipelineError
from {{ cookiecutter.module_name }}.pipeline.runs import environment
from {{ cookiecutter.module_name }}.pipeline.runs.rerun import commands

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

LOCK_TEXT = """\
# a comment
numpy==2.2.6 ; python_full_version < '3.11'
numpy==2.3.5 ; python_full_version >= '3.11'
colorama==0.4.6 ; sys_platform == 'win32'
pandas==2.3.3
"""


def test_lock_covers_the_declared_dependencies():
    """Every requirement of pyproject.toml's dependencies and dev extra is pinned in requirements.lock
    within its range (fails after a dependency is added or changed without `make lock`)."""
    project = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]
    pins = environment.locked_versions((PROJECT / environment.LOCK).read_text())
    for line in [*project["dependencies"], *project["optional-dependencies"]["dev"]]:
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        version = pins.get(canonicalize_name(requirement.name))
        assert version is not None, f"{requirement.name} is not in {environment.LOCK}: run make lock"
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{requirement.name}=={version} in {environment.LOCK} is outside {requirement}: run make lock"
        )


def test_locked_versions_follow_the_markers():
    """A lock for several Pythons and platforms gives each interpreter its own versions."""
    old = {"python_full_version": "3.10.4", "python_version": "3.10", "sys_platform": "linux"}
    new_windows = {"python_full_version": "3.12.1", "python_version": "3.12", "sys_platform": "win32"}
    assert environment.locked_versions(LOCK_TEXT, old) == {"numpy": "2.2.6", "pandas": "2.3.3"}
    assert environment.locked_versions(LOCK_TEXT, new_windows) == {
        "numpy": "2.3.5",
        "colorama": "0.4.6",
        "pandas": "2.3.3",
    }


@pytest.mark.parametrize("line", ["pandas>=2.2", "pandas", "not a requirement!"])
def test_a_broken_lock_line_is_one_error_naming_the_line(line: str):
    with pytest.raises(PipelineError, match=r"requirements.lock line 3: .* is not `name==version"):
        environment.locked_versions(f"# header\nnumpy==2.2.6\n{line}\n")


def test_differences_name_each_package_and_ignore_the_seeds():
    locked = {"numpy": "2.3.5", "pandas": "2.3.3", "pyarrow": "22.0.0"}
    installed = {"numpy": "2.3.5", "pandas": "2.2.0", "rich": "14.0.0", "pip": "25.0", environment.PROJECT: "0.1.0"}
    assert environment.differences(locked, installed) == [
        "pandas 2.2.0 (lock 2.3.3)",
        "pyarrow missing (lock 22.0.0)",
        "rich 14.0.0 (not in the lock)",
    ]
    assert environment.differences(locked, dict(locked)) == []


def test_installed_versions_are_those_the_metadata_holds():
    """Read from each distribution's header lines, they are what importlib.metadata parses."""
    from importlib.metadata import distributions

    parsed = {canonicalize_name(d.metadata["Name"]): d.version for d in distributions() if d.metadata["Name"]}
    assert environment.installed_versions() == parsed
    assert {"pandas", "luigi", "scikit-learn"} <= set(parsed)


def test_current_environment_carries_the_checksum_of_the_lock():
    import hashlib

    state = environment.current()
    assert state["lock_sha256"] == hashlib.sha256((PROJECT / environment.LOCK).read_bytes()).hexdigest()
    assert state["matches_lock"] == (state["differences"] == [])


def state(sha: str | None, found: list[str] | None = None) -> dict:
    return {"lock": environment.LOCK, "lock_sha256": sha, "matches_lock": sha is not None and not found,
            "differences": found or []}  # fmt: skip


def test_rerun_says_whether_the_environment_is_the_runs():
    """Same lock and installed as locked: matches. Another lock, or packages that differ from the lock:
    it says which, and the commands then include `make install`. A record without a checksum says so."""
    same, line = environment.compare(state("a" * 64), state("a" * 64))
    assert same and "matches the run's" in line
    same, line = environment.compare(state("a" * 64), state("b" * 64))
    assert not same and "differs from the run's" in line and "aaaaaaaaaaaa" in line and "bbbbbbbbbbbb" in line
    same, line = environment.compare(state("a" * 64), state("a" * 64, ["pandas 2.2.0 (lock 2.3.3)"]))
    assert not same and "pandas 2.2.0 (lock 2.3.3)" in line
    same, line = environment.compare(None, state("a" * 64))
    assert not same and "no lock checksum" in line

    record = {"run_id": "r1", "git": {"repository": True, "commit": "abc"}, "params": {"overrides": []}}
    assert "make install" not in "\n".join(commands(record))
    lines = commands(record, install=True)
    assert lines.index(next(x for x in lines if x.startswith("make install"))) == lines.index("make all") - 1
