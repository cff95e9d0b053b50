"""Validate the template answers before anything is written; stdlib only.

Each answer is rendered once, as JSON, into a constant; each rule is one small check. A bad
answer prints `ERROR: <what is wrong and the allowed form>` on stderr and exits 1, and
cookiecutter then removes the half-made project folder.
"""

import ipaddress
import keyword
import re
import sys

PROJECT_NAME = {{ cookiecutter.project_name | tojson }}
PROJECT_SLUG = {{ cookiecutter.project_slug | tojson }}
MODULE_NAME = {{ cookiecutter.module_name | tojson }}
COMPETITION = {{ cookiecutter.competition | tojson }}
AUTHOR_NAME = {{ cookiecutter.author_name | tojson }}
PROBLEM_TYPE = {{ cookiecutter.problem_type | tojson }}
ID_COLUMN = {{ cookiecutter.id_column | tojson }}
TARGET_COLUMN = {{ cookiecutter.target_column | tojson }}
SEED = {{ cookiecutter.seed | tojson }}
N_FOLDS = {{ cookiecutter.n_folds | tojson }}
S3_BUCKET = {{ cookiecutter.s3_bucket | tojson }}
S3_PREFIX = {{ cookiecutter.s3_prefix | tojson }}
WORKERS = {{ cookiecutter.workers | tojson }}

PROBLEM_TYPES = ("binary", "multiclass", "regression")
MAX_SEED = 2**32 - 1  # numpy's RandomState and scikit-learn's random_state take at most this


def check_text(key, value, required=True):
    """A one-line answer; it goes into luigi.cfg and TOML, so no line breaks or '%'."""
    if required and not value.strip():
        return f"{key} is empty: give a value"
    if any(c in value for c in "\r\n%") or value != value.strip():
        return f"{key} {value!r} has a line break, '%' or surrounding spaces: use plain text on one line"
    return None


def check_slug(value):
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", value):
        return (
            f"project_slug {value!r} is not a folder name: use letters, digits, '-', '_' or '.', "
            "starting with a letter or digit (a project name of only symbols gives an empty slug)"
        )
    return None


def check_module(value):
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", value):
        return (
            f"module_name {value!r} is not a valid Python package name: use lowercase letters, "
            "digits and '_', not starting with a digit"
        )
    if keyword.iskeyword(value) or keyword.issoftkeyword(value):
        return f"module_name {value!r} is a Python keyword: choose another name"
    return None


def check_int(key, value, low, high=None):
    allowed = f"an integer >= {low}" if high is None else f"an integer from {low} to {high}"
    if not re.fullmatch(r"\d+", value.strip()):
        return f"{key} {value!r} is not {allowed}"
    number = int(value)
    if number < low or (high is not None and number > high):
        return f"{key} {value!r} is out of range: use {allowed}"
    return None


def check_problem_type(value):
    if value not in PROBLEM_TYPES:
        return f"problem_type {value!r} is not one of {', '.join(PROBLEM_TYPES)}"
    return None


def check_competition(value):
    if value and not re.fullmatch(r"[a-z0-9][a-z0-9-]*", value):
        return f"competition {value!r} is not a Kaggle competition slug: use lowercase letters, digits and '-'"
    return None


def check_columns(id_column, target_column):
    """id_column names one column or several separated by spaces (a key of several columns), each
    once, none a target (target_column: one or several, separated by spaces; in luigi.cfg a JSON list
    holds names with spaces: ["row id"])."""
    if id_column.startswith("["):
        return f"id_column {id_column!r}: give column names separated by spaces (a JSON list goes in luigi.cfg)"
    keys = id_column.split()
    shared = [name for name in target_column.split() if name in keys]
    if shared:
        return f"id_column and target_column are both {shared[0]!r}: they must differ"
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        return f"id_column {id_column!r} names {', '.join(repeated)} twice: name each key column once"
    return None


def check_bucket(value):
    """S3's bucket naming rules (general purpose buckets)."""
    if not value:
        return None
    rules = "3-63 characters of lowercase letters, digits, '.' and '-', starting and ending with a letter or digit"
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", value):
        return f"s3_bucket {value!r} breaks S3 bucket naming rules: use {rules}"
    if ".." in value or ".-" in value or "-." in value:
        return f"s3_bucket {value!r} breaks S3 bucket naming rules: no '..', '.-' or '-.'"
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        pass
    else:
        return f"s3_bucket {value!r} breaks S3 bucket naming rules: it must not look like an IP address"
    if value.startswith(("xn--", "sthree-")) or value.endswith(("-s3alias", "--ol-s3")):
        return f"s3_bucket {value!r} breaks S3 bucket naming rules: reserved prefix or suffix"
    return None


def check_prefix(value):
    if value.startswith("/") or ".." in value.split("/"):
        return f"s3_prefix {value!r} must be a relative key prefix: no leading '/' and no '..'"
    return None


def errors():
    yield check_text("project_name", PROJECT_NAME)
    yield check_slug(PROJECT_SLUG)
    yield check_module(MODULE_NAME)
    yield check_competition(COMPETITION)
    yield check_text("author_name", AUTHOR_NAME, required=False)
    yield check_problem_type(PROBLEM_TYPE)
    yield check_text("id_column", ID_COLUMN)
    yield check_text("target_column", TARGET_COLUMN)
    yield check_columns(ID_COLUMN, TARGET_COLUMN)
    yield check_int("seed", SEED, 0, MAX_SEED)
    yield check_int("n_folds", N_FOLDS, 2)
    yield check_int("workers", WORKERS, 1)
    yield check_bucket(S3_BUCKET)
    yield check_text("s3_prefix", S3_PREFIX, required=False)
    yield check_prefix(S3_PREFIX)


def main():
    for error in errors():
        if error:
            print(f"ERROR: {error}", file=sys.stderr)
            sys.exit(1)


if __name__ == "__main__":
    main()
