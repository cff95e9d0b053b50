"""The environment of a run: requirements.lock's checksum, and whether the installed packages are the lock's.

A score is reproducible only with the packages that made it. The record keeps the lock's sha256 and
any difference between the lock and what was installed; `make rerun` compares both with today's.
"""

from __future__ import annotations

import hashlib
from importlib.metadata import Distribution, distributions
from pathlib import Path
from typing import Any

from ... import PROJECT_ROOT
from ..errors import DataError

LOCK = "requirements.lock"
# Installed but not locked, on purpose: this project itself, and the installers' own seed packages (pip's
# venv brings pip, and setuptools before Python 3.12); when the lock pins one, its version counts.
NOT_LOCKED = frozenset({"pip", "setuptools", "wheel"})
PROJECT = {{ cookiecutter.project_slug | tojson }}
SHOWN = 5  # differences named in `make rerun`'s line; the count says how many more


def lock_path() -> Path:
    return PROJECT_ROOT / LOCK


def lock_sha256(path: Path | None = None) -> str | None:
    """sha256 of the lock file's bytes, None when there is no lock."""
    try:
        return hashlib.sha256((path or lock_path()).read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def locked_versions(text: str, environment: dict[str, str] | None = None) -> dict[str, str]:
    """{normalized name: version} of the lock's `name==version ; marker` lines whose marker holds
    here (or in `environment`, a dict of PEP 508 marker values)."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    pins: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        wrong = DataError(f"{LOCK} line {number}: {line!r} is not `name==version [; marker]`; run make lock")
        try:
            requirement = Requirement(line)
            [spec] = requirement.specifier  # a lock pins every package with exactly one ==
        except (InvalidRequirement, ValueError):
            raise wrong from None
        if spec.operator != "==":
            raise wrong
        if requirement.marker is None or requirement.marker.evaluate(environment):
            pins[canonicalize_name(requirement.name)] = spec.version
    return pins


def installed_versions() -> dict[str, str]:
    """{normalized name: version} of the distributions this interpreter sees."""
    from packaging.utils import canonicalize_name

    found = (_name_and_version(d) for d in distributions())
    return {canonicalize_name(name): version for name, version in found if name}


def _name_and_version(distribution: Distribution) -> tuple[str | None, str | None]:
    """A distribution's Name and Version, read from its metadata's header lines: a tenth of the
    time of `.metadata`, which parses each whole file as an email (0.15 s for 140 packages)."""
    text = distribution.read_text("METADATA") or distribution.read_text("PKG-INFO") or ""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line:  # the end of the header; the description follows
            break
        name, colon, value = line.partition(":")
        if colon and name in ("Name", "Version"):
            fields.setdefault(name, value.strip())
    return fields.get("Name"), fields.get("Version")


def differences(locked: dict[str, str], installed: dict[str, str]) -> list[str]:
    """How the installed packages differ from the lock, one short phrase each, sorted by name."""
    from packaging.utils import canonicalize_name

    found = []
    extra = set(installed) - set(locked) - NOT_LOCKED - {canonicalize_name(PROJECT)}
    for name in sorted(set(locked) | extra):
        have, want = installed.get(name), locked.get(name)
        if have == want:
            continue
        if want is None:
            found.append(f"{name} {have} (not in the lock)")
        elif have is None:
            found.append(f"{name} missing (lock {want})")
        else:
            found.append(f"{name} {have} (lock {want})")
    return found


def current() -> dict[str, Any]:
    """The `environment` entry of a run record: the lock's checksum and the differences from it."""
    sha = lock_sha256()
    found = differences(locked_versions(lock_path().read_text()), installed_versions()) if sha else []
    return {"lock": LOCK, "lock_sha256": sha, "matches_lock": sha is not None and not found, "differences": found}


def summary(found: list[str]) -> str:
    shown = ", ".join(found[:SHOWN])
    return shown + (f" and {len(found) - SHOWN} more" if len(found) > SHOWN else "")


def compare(recorded: dict[str, Any] | None, now: dict[str, Any]) -> tuple[bool, str]:
    """(whether today's environment is the run's, one line saying how) for `make rerun`."""
    if not recorded or not recorded.get("lock_sha256"):
        return False, "Environment: this record has no lock checksum (written before the lock); it cannot be compared"
    short = recorded["lock_sha256"][:12]
    if now["lock_sha256"] != recorded["lock_sha256"]:
        today = (now["lock_sha256"] or "no lock")[:12]
        return False, (
            f"Environment: differs from the run's: {LOCK} was {short}, is {today} now; "
            "after the checkout, `make install` installs the run's lock"
        )
    if not now["matches_lock"]:
        return False, (
            f"Environment: {LOCK} is the run's ({short}), but the installed packages differ from it: "
            f"{summary(now['differences'])}; `make install` installs exactly the lock"
        )
    note = "" if recorded.get("matches_lock") else f" (the run itself had: {summary(recorded['differences'])})"
    return True, f"Environment: matches the run's ({LOCK} {short}, installed exactly as locked){note}"
