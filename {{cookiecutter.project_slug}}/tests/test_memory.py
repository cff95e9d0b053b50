"""Tasks that read and drop large buffers return freed memory to the system, so two folds fitting
side by side hold what they use, not what they once freed."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import SRC

FREED_BUT_KEPT = """
import sys
sys.path.insert(0, sys.argv[1])
from {{ cookiecutter.module_name }}.pipeline.resources.memory import return_freed_memory
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


ARROW_POOL = """
import sys
sys.path.insert(0, sys.argv[1])
import {{ cookiecutter.module_name }}
import pyarrow
print(pyarrow.default_memory_pool().backend_name)
"""


def test_arrow_s_own_code_allocates_from_the_system_unless_the_user_chose_a_pool():
    """Arrow's readers allocate from the C++ default pool, which only the environment sets: the
    package sets it before pyarrow loads (pyarrow.set_memory_pool would not reach those)."""

    def backend(env):
        result = subprocess.run(
            [sys.executable, "-c", ARROW_POOL, str(SRC)], capture_output=True, text=True, check=True, env=env
        )
        return result.stdout.strip()

    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    assert backend(env) == "system"
    assert backend({**env, "ARROW_DEFAULT_MEMORY_POOL": "mimalloc"}) == "mimalloc"
