"""{{ cookiecutter.project_name }}: a Luigi pipeline from raw competition files to a submission.

Yours: features/, models/ and metrics/. The template's machinery: pipeline/. This file runs first on any import
of the package, so it sets what must be set before Luigi and pyarrow load.
"""

import importlib.abc
import importlib.util
import os
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Notebooks and tests find the project's luigi.cfg from any directory; the Makefile sets it too.
os.environ.setdefault("LUIGI_CONFIG_PATH", str(PROJECT_ROOT / "luigi.cfg"))
# Arrow's C++ code allocates from its default pool, mimalloc in today's wheels, which keeps what it
# frees: a fold read column by column then held about 150 MB more while fitting. The system
# allocator hands it back (pipeline/resources/memory.py). Read once, when pyarrow loads; the user's
# own value wins.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")


class _LazyImports(importlib.abc.MetaPathFinder):
    """Luigi imports requests and jsonschema when it starts but needs them only for a central
    scheduler and for DictParameter schemas: their first import gives a module that loads on first
    use (Python's own LazyLoader), which takes about a fifth off an up-to-date run."""

    def __init__(self, *names: str) -> None:
        self.names = set(names)

    def find_spec(self, name, path, target=None):
        if name not in self.names:
            return None
        self.names.discard(name)  # from here on the usual finders answer, including the call below
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = importlib.util.LazyLoader(spec.loader)
        return spec


sys.meta_path.insert(0, _LazyImports(*(name for name in ("requests", "jsonschema") if name not in sys.modules)))
