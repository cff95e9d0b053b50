"""The pipeline's command line with a file's features instead of FEATURES, for tests of features that
the project does not register: `python tests/with_features.py <features.py> <Task> [luigi options]`,
in an isolated pipeline's environment. The file lists its features in its own FEATURES, and may list
metrics and submission formats (METRICS, FORMATS) to add to the project's."""

from __future__ import annotations

import importlib.util
import sys


def main() -> None:
    path, args = sys.argv[1], sys.argv[2:]
    from {{ cookiecutter.module_name }}.pipeline import registry
    from {{ cookiecutter.module_name }}.pipeline.main import main as run

    spec = importlib.util.spec_from_file_location("features_under_test", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    registry.FEATURES[:] = module.FEATURES  # the one list every task reads
    registry.METRICS.extend(getattr(module, "METRICS", []))  # metrics and formats besides the project's
    registry.FORMATS.extend(getattr(module, "FORMATS", []))
    run(args)


if __name__ == "__main__":
    main()
