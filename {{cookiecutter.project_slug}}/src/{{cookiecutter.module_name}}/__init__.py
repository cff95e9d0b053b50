"""{{ cookiecutter.project_name }}: a Luigi pipeline from raw competition files to a submission."""

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Notebooks and tests find the project's luigi.cfg from any directory; the Makefile sets it too.
os.environ.setdefault("LUIGI_CONFIG_PATH", str(PROJECT_ROOT / "luigi.cfg"))
