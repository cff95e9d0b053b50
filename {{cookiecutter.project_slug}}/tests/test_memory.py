"""Tasks that read and drop large buffers return freed memory to the system, so two folds fitting
side by side hold what they use, not what they once freed."""

from __future__ import annotations

import subprocess
import sys

from conftest import SRC

FREED_BUT_KEPT = """
import sys
sys.path.insert(0, sys.argv[1])
from {{ cookiecutter.module_name }}.memory import return_freed_memory
import pyarrow

def resident_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20

chunks = [bytearray(64 * 1024) for _ in range(3000)]  # 190 MB of heap blocks below mmap's threshold
pinned = bytearray(64 * 1024)  # allocated last: the heap's top stays in use
del chunks
before = resident_mb()
return_freed_memory()
print(pyarrow.default_memory_pool().backend_name, before - resident_mb())
"""


def test_freed_heap_memory_goes_back_and_arrow_uses_the_system_allocator():
    result = subprocess.run(
        [sys.executable, "-c", FREED_BUT_KEPT, str(SRC)], capture_output=True, text=True, check=True
    )
    backend, returned_mb = result.stdout.split()
    assert backend == "system"
    assert float(returned_mb) > 100
