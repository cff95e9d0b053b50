"""The benchmark script runs and prints its figures (a smoke test: timings are not asserted)."""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import TEMPLATE


def test_up_to_date_benchmark_prints_both_figures_and_the_ratio():
    """bench/up_to_date.py bakes, runs and prints both medians and their ratio."""
    result = subprocess.run(
        [sys.executable, str(TEMPLATE / "bench" / "up_to_date.py"), "1"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"up-to-date make all\s+\d+\.\d{3} s", result.stdout), result.stdout
    assert re.search(r'python -c "import luigi"\s+\d+\.\d{3} s', result.stdout), result.stdout
    assert re.search(r"ratio \(goal: at most 2x\)\s+\d+\.\d{2}x", result.stdout), result.stdout
