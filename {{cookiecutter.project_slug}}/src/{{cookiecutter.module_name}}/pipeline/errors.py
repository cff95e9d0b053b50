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
