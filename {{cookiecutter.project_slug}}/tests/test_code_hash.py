"""A task's code hash covers its class and what the class uses in its module, not the whole file:
two features in one file re-run apart, and a helper or constant a feature uses counts for it."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from {{ cookiecutter.module_name }}.pipeline import Feature
from {{ cookiecutter.module_name }}.pipeline.storage.cache import _class_syntax_hash, code_hash

FEATURES = '''
"""Two features in one file."""
from __future__ import annotations

import numpy as np

SMOOTHING = 20.0
LIMIT = 5


def _encode(values):
    return values / SMOOTHING


class Smoothed(Feature):
    """The one that uses the helper."""

    def make(self, df):
        return _encode(df)


class Clipped(Feature):
    def make(self, df):
        return np.clip(df, 0, LIMIT)
'''


def hashes(tmp_path: Path, source: str) -> dict[str, str]:
    path = tmp_path / "two_features.py"
    path.write_text(textwrap.dedent(source))
    return {name: _class_syntax_hash(path, name) for name in ("Smoothed", "Clipped")}


def test_a_helper_s_constant_counts_only_for_the_feature_that_uses_it(tmp_path: Path):
    before = hashes(tmp_path, FEATURES)
    after = hashes(tmp_path, FEATURES.replace("SMOOTHING = 20.0", "SMOOTHING = 10.0"))
    assert after["Smoothed"] != before["Smoothed"]
    assert after["Clipped"] == before["Clipped"]


def test_an_edit_of_one_class_leaves_its_neighbour_alone(tmp_path: Path):
    before = hashes(tmp_path, FEATURES)
    after = hashes(tmp_path, FEATURES.replace("np.clip(df, 0, LIMIT)", "np.clip(df, -1, LIMIT)"))
    assert after["Clipped"] != before["Clipped"]
    assert after["Smoothed"] == before["Smoothed"]


@pytest.mark.parametrize(
    "edit",
    [
        ("import numpy as np", "import numpy as np  # a comment"),
        ('"""The one that uses the helper."""', '"""Another docstring."""'),
        ("LIMIT = 5", "LIMIT = 5\n\n\ndef _unused():\n    return 1"),
    ],
)
def test_comments_docstrings_and_unused_code_change_nothing(tmp_path: Path, edit: tuple[str, str]):
    assert hashes(tmp_path, FEATURES.replace(*edit)) == hashes(tmp_path, FEATURES)


def test_a_module_statement_that_defines_nothing_counts_for_every_class(tmp_path: Path):
    """A call at module level may change anything (a seed, a registration): it always counts."""
    before = hashes(tmp_path, FEATURES)
    after = hashes(tmp_path, FEATURES + "\nnp.random.seed(1)\n")
    assert after["Smoothed"] != before["Smoothed"] and after["Clipped"] != before["Clipped"]


def test_an_imported_name_counts_through_its_import_line(tmp_path: Path):
    before = hashes(tmp_path, FEATURES)
    after = hashes(tmp_path, FEATURES.replace("import numpy as np", "import numpy.ma as np"))
    assert after["Clipped"] != before["Clipped"]
    assert after["Smoothed"] == before["Smoothed"]


def test_a_task_s_hash_covers_its_project_base_classes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """code_hash of a feature changes when the Feature base class's definition does."""
    from {{ cookiecutter.module_name }}.features.numeric import NumericColumns
    from {{ cookiecutter.module_name }}.pipeline.storage import cache

    before = code_hash(NumericColumns)
    base = Path(sys.modules[Feature.__module__].__file__)
    real = cache._class_syntax_hash
    monkeypatch.setattr(cache, "_file_hashes", cache._FileHashes())  # nothing remembered
    monkeypatch.setattr(cache, "cache_dir", lambda: tmp_path)
    monkeypatch.setattr(cache, "_class_syntax_hash", lambda path, name: "edited" if path == base else real(path, name))
    assert code_hash(NumericColumns) != before
