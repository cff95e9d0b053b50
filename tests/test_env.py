"""A baked project's environment: requirements.lock, its install with uv and with pip, its CI and its hooks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import TEMPLATE, make
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

PROJECT_TEMPLATE = TEMPLATE / "{{cookiecutter.project_slug}}"
LOCK = "requirements.lock"
BIN = Path(sys.prefix) / "bin"
# The installers' own seed packages: with the project itself, all that a .venv may hold beyond the lock
# (when the lock pins one of them, its version counts).
NOT_LOCKED = {"pip", "setuptools", "wheel"}
PLATFORMS = ("x86_64-manylinux_2_28", "aarch64-apple-darwin", "x86_64-pc-windows-msvc")
LIST_DISTRIBUTIONS = (
    "import json, importlib.metadata as m; "
    "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
)


def lock_lines(text: str) -> list[Requirement]:
    return [Requirement(line) for line in text.splitlines() if line.strip() and not line.startswith(("#", "-", " "))]


def locked(text: str) -> dict[str, str]:
    """{name: version} of the lock's lines whose markers hold for this interpreter."""
    return {
        canonicalize_name(r.name): next(iter(r.specifier)).version
        for r in lock_lines(text)
        if r.marker is None or r.marker.evaluate()
    }


def installed(project: Path, lock: dict[str, str]) -> dict[str, str]:
    """{name: version} of every distribution in the project's .venv, but the project and unlocked seeds."""
    listing = subprocess.run(
        [project / ".venv/bin/python", "-c", LIST_DISTRIBUTIONS], capture_output=True, text=True, check=True
    ).stdout
    found = {canonicalize_name(k): v for k, v in json.loads(listing).items()}
    left_out = (NOT_LOCKED - set(lock)) | {canonicalize_name(project.name)}
    return {name: version for name, version in found.items() if name not in left_out}


def test_lock_is_what_make_lock_gives_for_the_declared_dependencies(bake, tmp_path: Path):
    """The shipped lock is exactly what `make lock` resolves from the project's pyproject.toml, in a bake
    with a name unlike the default (the lock holds no rendered value): a dependency added or changed
    without running `make lock` at the template root fails here."""
    project = bake(tmp_path, project_name="Lock Check Ünïcode", author_name="Zoë")
    shipped = {name: (PROJECT_TEMPLATE / name).read_text() for name in (LOCK, ".pre-commit-config.yaml")}
    uv = subprocess.run([BIN / "uv", "--version"], capture_output=True, text=True, check=True).stdout.split()[1]
    assert uv == locked(shipped[LOCK])["uv"], "pin the lock's uv in requirements.txt (the lock's text depends on it)"
    make(project, "lock")
    for name, text in shipped.items():
        assert (project / name).read_text() == text, f"{name} is stale: run `make lock` at the template root"


def test_lock_pins_every_declared_dependency_and_pre_commit_uses_its_ruff(bake, tmp_path: Path):
    """Every requirement of [project] dependencies and of the dev extra is pinned within its range, for
    each Python the project supports; the pre-commit hook's ruff is the lock's ruff."""
    project = bake(tmp_path)
    declared = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(r) for r in [*declared["dependencies"], *declared["optional-dependencies"]["dev"]]]
    pins = lock_lines((project / LOCK).read_text())
    for minor in (10, 11, 12, 13):
        for platform in ("linux", "darwin", "win32"):
            where = {"python_version": f"3.{minor}", "python_full_version": f"3.{minor}.0", "sys_platform": platform}
            here = {canonicalize_name(p.name): p for p in pins if p.marker is None or p.marker.evaluate(where)}
            for requirement in requirements:
                if requirement.marker is not None and not requirement.marker.evaluate(where):
                    continue  # not wanted there (kaggle: Python 3.11 and later)
                pin = here.get(canonicalize_name(requirement.name))
                assert pin is not None, f"{requirement.name} is not in {LOCK} for Python 3.{minor} on {platform}"
                version = next(iter(pin.specifier)).version
                assert requirement.specifier.contains(version, prereleases=True), f"{pin} outside {requirement}"
    ruff = locked((project / LOCK).read_text())["ruff"]
    assert f'"ruff=={ruff}"' in (project / ".pre-commit-config.yaml").read_text()


def test_lock_installs_from_wheels_on_every_supported_python(tmp_path: Path):
    """Each pinned version has a wheel for CPython 3.10 to 3.13 on Linux, macOS and Windows: uv checks the
    wheels' tags against each target without installing anything. The first check refreshes uv's cache of
    the registry's pages; the others read it (--offline), asking the registry again only when it lacks one."""
    lock = PROJECT_TEMPLATE / LOCK
    targets = [(f"3.{minor}", platform) for minor in (10, 11, 12, 13) for platform in PLATFORMS]
    for number, (python, platform) in enumerate(targets):
        args = [BIN / "uv", "pip", "compile", lock, "--no-deps", "--only-binary", ":all:", "--quiet"]
        args += ["--python-version", python, "--python-platform", platform, "--output-file", tmp_path / "out.txt"]
        result = subprocess.run([*args, *(["--offline"] if number else [])], capture_output=True, text=True)
        if result.returncode != 0 and number:
            result = subprocess.run(args, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"Python {python} on {platform}:\n{result.stderr}"


def test_install_with_uv_and_with_pip_gives_exactly_the_lock(bake, tmp_path: Path):
    """`make install` with uv and with pip (INSTALLER=...) both give a .venv holding exactly the lock's
    versions for this interpreter (beyond pip's own seeds), and the project importable."""
    first = bake(tmp_path / "uv")
    second = Path(shutil.copytree(first, tmp_path / "pip" / first.name))
    expected = locked((first / LOCK).read_text())
    for project, installer in ((first, "uv"), (second, "pip")):
        result = make(project, "install", VENV=None, INSTALLER=installer, UV=str(BIN / "uv"))
        assert f"Installing {LOCK} with {installer}" in result.stdout
        assert installed(project, expected) == expected, installer
        subprocess.run([project / ".venv/bin/python", "-c", "import kaggle_competition"], check=True, cwd=tmp_path)
    assert not (first / ".venv/bin/pip").exists()  # uv syncs exactly: no seed packages at all


def test_unknown_installer_is_one_error_line(bake, tmp_path: Path):
    project = bake(tmp_path)
    result = make(project, "install", check=False, VENV=None, INSTALLER="conda")
    assert result.returncode != 0 and "ERROR: INSTALLER=conda: use auto, uv or pip" in result.stderr
    assert not (project / ".venv").exists()


def test_make_lock_in_a_project_follows_its_dependencies(bake, tmp_path: Path):
    """A dependency added to pyproject.toml fails the project's own lock test until `make lock`, which adds
    it (and nothing else changes: today's pins are kept)."""
    project = bake(tmp_path)
    before = locked((project / LOCK).read_text())
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"packaging>=23",', '"packaging>=23",\n    "tabulate>=0.9",'))
    check = ["-m", "pytest", "-q", "tests/test_environment.py", "-k", "declared"]
    stale = subprocess.run([sys.executable, *check], cwd=project, capture_output=True, text=True)
    assert stale.returncode != 0 and "tabulate" in stale.stdout
    make(project, "lock")
    after = locked((project / LOCK).read_text())
    assert set(after) - set(before) == {"tabulate"}
    assert {k: v for k, v in after.items() if k != "tabulate"} == before
    fresh = subprocess.run([sys.executable, *check], cwd=project, capture_output=True, text=True)
    assert fresh.returncode == 0, fresh.stdout


def test_workflows_pass_actionlint(bake, tmp_path: Path):
    """The generated CI workflow (installs the lock, with a cache; make lint; make test) and the template's
    own pass actionlint."""
    project = bake(tmp_path)
    workflow = project / ".github/workflows/ci.yml"
    text = workflow.read_text()
    for step in ("make install", "make lint", "make test", "hashFiles('requirements.lock')"):
        assert step in text, step
    for path in (workflow, TEMPLATE / ".github/workflows/ci.yml"):
        result = subprocess.run([BIN / "actionlint", path], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


def git(cwd: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@example.com"}
    env.update(GIT_COMMITTER_NAME="T", GIT_COMMITTER_EMAIL="t@example.com")
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, env=env)


def test_pre_commit_passes_on_a_fresh_bake_and_catches_problems(bake, tmp_path: Path):
    """`make hooks` installs the hooks; `pre-commit run --all-files` passes on a fresh bake with every hook
    installed from the registry, and fails on a lint error and on trailing whitespace."""
    project = bake(tmp_path / "bake")
    git(project, "init", "-q")
    git(project, "add", "-A")
    env = {"PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"), "PATH": f"{BIN}:{os.environ['PATH']}"}
    make(project, "hooks", environment=env)
    assert (project / ".git/hooks/pre-commit").is_file()
    run = [BIN / "pre-commit", "run", "--all-files", "--show-diff-on-failure"]
    clean = subprocess.run(run, cwd=project, capture_output=True, text=True, env={**os.environ, **env}, timeout=600)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "ruff check" in clean.stdout and "check toml" in clean.stdout
    (project / "src/kaggle_competition/broken.py").write_text("import os \n")
    git(project, "add", "-A")
    dirty = subprocess.run(run, cwd=project, capture_output=True, text=True, env={**os.environ, **env}, timeout=600)
    assert dirty.returncode != 0
    assert "F401" in dirty.stdout and "trim trailing whitespace" in dirty.stdout
