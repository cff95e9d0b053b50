"""The package's layout keeps its promises, read from the source with the standard library's ast:
no import circle, your rooms (features/, models/, metrics/) import the machinery only from its public place
(`pipeline/__init__.py`), and the machinery reads your rooms only in its registry.

Every import statement counts: at module level, inside functions, under TYPE_CHECKING, and
`importlib.import_module` of a constant name.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "{{ cookiecutter.module_name }}"
SOURCE = Path(__file__).resolve().parents[1] / "src" / PACKAGE
ROOMS = ("features", "models", "metrics")
MACHINERY = "pipeline"  # its __init__.py is the public place
REGISTRY = "pipeline.registry"


def modules(root: Path) -> dict[str, Path]:
    """Every module of the package under root by its dotted name (a package by its folder's)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _absolute(name: str, path: Path, level: int, module: str | None) -> str:
    """The module a relative import names, as Python resolves it."""
    base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    return ".".join([*base[: len(base) - level + 1], *([module] if module else [])])


def _imported_by_name(node: ast.AST) -> bool:
    """`importlib.import_module("<a constant>", ...)`."""
    named = isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module" and node.args
    return bool(named) and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)


def imports(name: str, path: Path, known: dict[str, Path]) -> list[tuple[int, str, str, str]]:
    """(line, the statement's module, the name imported, the module it lands in) for each import of
    the package in a module; a name that is a module itself (`from . import threads`) lands there."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, "", alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(name, path, node.level, node.module) if node.level else node.module or ""
            found += [(node.lineno, source, alias.name, f"{source}.{alias.name}") for alias in node.names]
        elif _imported_by_name(node):
            target = node.args[0].value
            if target.startswith("."):
                dots = len(target) - len(target.lstrip("."))
                target = _absolute(name, path, dots, target.lstrip(".") or None)
            found.append((node.lineno, target, "", target))
    package = name.split(".")[0]
    return [
        (line, source, imported, _module_of(target, known))
        for line, source, imported, target in found
        if target.split(".")[0] == package
    ]


def _module_of(target: str, known: dict[str, Path]) -> str:
    """The module an imported name lives in: the longest dotted prefix that is a module."""
    parts = target.split(".")
    return next((".".join(parts[:n]) for n in range(len(parts), 0, -1) if ".".join(parts[:n]) in known), target)


def _in(name: str, part: str) -> bool:
    return name == part or name.startswith(part + ".")


def circle(root: Path) -> list[str]:
    """One import circle of the package as [a, b, ..., a], or [] (a depth-first search)."""
    known = modules(root)
    graph = {name: sorted({to for *_, to in imports(name, path, known)} - {name}) for name, path in known.items()}
    state: dict[str, str] = {}
    for start in sorted(graph):
        if start in state:
            continue
        state[start], stack = "open", [(start, iter(graph[start]))]
        while stack:
            step = next(stack[-1][1], None)
            if step is None:
                state[stack.pop()[0]] = "done"
            elif state.get(step) == "open":
                path = [node for node, _ in stack]
                return [*path[path.index(step) :], step]
            elif step not in state and step in graph:
                state[step] = "open"
                stack.append((step, iter(graph[step])))
    return []


def _public_names(root: Path) -> set[str]:
    """What pipeline/__init__.py exports: its __all__."""
    tree = ast.parse((root / "pipeline" / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return set(ast.literal_eval(node.value))
    return set()


def imports_out_of_the_rooms(root: Path) -> list[str]:
    """Imports in features/, models/ and metrics/ of anything but their own room and the public place's names."""
    known, public = modules(root), _public_names(root)
    wrong = []
    for name, path in known.items():
        for room in (f"{root.name}.{room}" for room in ROOMS if _in(name, f"{root.name}.{room}")):
            for line, source, imported, target in imports(name, path, known):
                if not _in(target, room) and not (source == f"{root.name}.{MACHINERY}" and imported in public):
                    wrong.append(f"{path.relative_to(root)}:{line} imports {imported or target} from {source}")
    return wrong


def imports_of_the_rooms_outside_the_registry(root: Path) -> list[str]:
    """Imports of features/ or models/ by machinery modules other than pipeline/registry.py."""
    known = modules(root)
    return [
        f"{path.relative_to(root)}:{line} imports {target}"
        for name, path in known.items()
        if _in(name, f"{root.name}.{MACHINERY}") and name != f"{root.name}.{REGISTRY}"
        for line, _, _, target in imports(name, path, known)
        if any(_in(target, f"{root.name}.{room}") for room in ROOMS)
    ]


def test_the_package_has_no_import_circle():
    """No module imports, however indirectly, a module that imports it: each one loads, and can be
    read and tested, after the modules it needs."""
    found = circle(SOURCE)
    assert found == [], "import circle: " + " -> ".join(found)


def test_your_rooms_import_the_machinery_only_from_its_public_place():
    """A file in features/ or models/ imports from the package only its own room and the names
    pipeline/__init__.py exports, so that `cruft update` may rearrange everything behind them."""
    wrong = imports_out_of_the_rooms(SOURCE)
    public = ", ".join(sorted(_public_names(SOURCE)))
    assert wrong == [], f"import the machinery as `from ..pipeline import ...` ({public}):\n" + "\n".join(wrong)


def test_the_machinery_reads_your_rooms_only_in_its_registry():
    """The only arrows from pipeline/ into features/, models/ and metrics/ start in pipeline/registry.py."""
    wrong = imports_of_the_rooms_outside_the_registry(SOURCE)
    assert wrong == [], "read FEATURES and MODELS through pipeline/registry.py:\n" + "\n".join(wrong)


def test_each_check_finds_what_it_looks_for(tmp_path: Path):
    """On a package made to break them, the three checks above fail: a circle through an import
    inside a function, a feature importing a machinery module, Train importing the features."""
    root = tmp_path / PACKAGE
    files = {
        "__init__.py": "",
        "features/__init__.py": "from ..pipeline import Feature\nfrom ..pipeline.storage.cache import CachedTask\n",
        "models/__init__.py": "from ..pipeline import Model\n",
        "pipeline/__init__.py": '__all__ = ["Feature", "Model"]\n',
        "pipeline/registry.py": "from ..features import FEATURES\n",
        "pipeline/storage/__init__.py": "",
        "pipeline/storage/cache.py": "def run():\n    from .. import threads\n",
        "pipeline/threads.py": "from .storage.cache import run\n",
        "pipeline/train.py": "from ..features import FEATURES\nfrom .registry import FEATURES as FEATURES_TOO\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    cache, threads = f"{PACKAGE}.pipeline.storage.cache", f"{PACKAGE}.pipeline.threads"
    assert circle(root) in ([cache, threads, cache], [threads, cache, threads])
    assert imports_out_of_the_rooms(root) == [f"features/__init__.py:2 imports CachedTask from {cache}"]
    assert imports_of_the_rooms_outside_the_registry(root) == [f"pipeline/train.py:1 imports {PACKAGE}.features"]
