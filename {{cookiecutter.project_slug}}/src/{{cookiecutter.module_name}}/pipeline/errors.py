"""Errors the user can fix: printed as one line, without a traceback."""


class PipelineError(Exception):
    """Bad input: a data file, a config value. The message names the file or key and the fix."""


class DataError(PipelineError):
    """A raw data file breaks the data contract (columns, ids, emptiness)."""


class ConfigError(PipelineError):
    """A luigi.cfg value is missing or out of range."""


class S3Error(PipelineError):
    """S3 refused a request or could not be reached (permissions, missing object, network)."""


class KaggleError(PipelineError):
    """Kaggle refused a request or could not be reached (credentials, rules, competition, network)."""


class WriteError(PipelineError):
    """The disk refused a write (full, or over a file-size limit): nothing was left looking done."""


class DamagedResultError(PipelineError):
    """A cached result's file cannot be read back: `make verify` finds and sets aside such results."""


def imported(package: str, needed_by: str):
    """`package` imported for `needed_by` (a model, make tune), or one line saying how to get it: run
    `make install` when requirements.lock pins it (this environment is not the lock), else add it to
    pyproject.toml; a system library it cannot load (LightGBM's OpenMP) is named with its install."""
    import importlib
    import re

    from .. import PROJECT_ROOT

    try:
        return importlib.import_module(package)
    except ImportError as error:
        if isinstance(error, ModuleNotFoundError) or "cannot open shared object" not in str(error):
            lock = PROJECT_ROOT / "requirements.lock"
            name = {"xgboost": "xgboost(-cpu)?"}.get(package, re.escape(package))
            pinned = lock.is_file() and re.search(rf"^{name}==", lock.read_text(), re.MULTILINE | re.IGNORECASE)
            fix = (
                "run make install (requirements.lock has it)"
                if pinned
                else "add it to pyproject.toml's dependencies, then run make lock and make install"
            )
            raise ConfigError(f"{needed_by} needs the {package} package, which is not installed: {fix}") from None
        error_text = str(error)
    except OSError as error:  # a shared library the wheel loads from the system
        error_text = str(error)
    hint = " (Debian/Ubuntu: apt-get install libgomp1; macOS: brew install libomp)" if "omp" in error_text else ""
    raise ConfigError(f"{needed_by}: {package} cannot load a system library: {error_text.splitlines()[0]}{hint}")
