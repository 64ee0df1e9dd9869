"""The house's rules, read from the source: no module imports in a circle, the SQL layer
imports no decoding module, and only the settings module reads the environment."""

from __future__ import annotations

import ast
import itertools
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "pipelines"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, name: str, modules: set[str]) -> set[str]:
    """The project modules `name` (at `path`) imports, wherever the import statement stands
    (lazy imports inside functions count: they still join the two modules)."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            # `from a import b` imports module a.b when b is a module, else a.
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            if target in modules and target != name:
                found.add(target)
                break
    return found


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: imported(path, name, set(paths)) for name, path in paths.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of the graph as a path that ends where it starts, or None (depth-first)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_module_imports_in_a_circle() -> None:
    graph = import_graph()
    assert len(graph) > 40  # the walk saw the package
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_sql_layer_imports_no_decoding_module() -> None:
    graph = import_graph()
    offenders = {
        (module, target)
        for module, targets in graph.items()
        if module.startswith("pipelines.warehouse")
        for target in targets
        if target.startswith("pipelines.drops")
    }
    assert offenders == set()


def test_only_the_settings_module_reads_the_environment() -> None:
    found = subprocess.run(
        ["git", "grep", "-l", "os.environ\\|os.getenv", "--", "pipelines/"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert found.stdout.split() == ["pipelines/settings.py"]


@given(
    st.dictionaries(
        st.integers(0, 12),
        st.sets(st.integers(0, 12), max_size=4),
        max_size=13,
    )
)
def test_the_cycle_finder_agrees_with_a_reference(edges: dict[int, set[int]]) -> None:
    """Differential check of the detector the two tests above rely on: a graph has a cycle
    exactly when repeatedly removing nodes without incoming edges (Kahn) leaves some."""
    graph = {str(k): {str(v) for v in vs if v != k} for k, vs in edges.items()}
    nodes = set(graph) | {v for vs in graph.values() for v in vs}
    indegree = {n: 0 for n in nodes}
    for targets in graph.values():
        for t in targets:
            indegree[t] += 1
    ready = [n for n in nodes if indegree[n] == 0]
    removed = 0
    while ready:
        node = ready.pop()
        removed += 1
        for t in graph.get(node, ()):
            indegree[t] -= 1
            if indegree[t] == 0:
                ready.append(t)
    cycle = find_cycle(graph)
    assert (cycle is not None) == (removed < len(nodes))
    if cycle:
        assert cycle[0] == cycle[-1]
        assert all(b in graph[a] for a, b in itertools.pairwise(cycle))


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from pipelines.drops import files\n", {"pipelines.drops.files"}),
        ("from pipelines.drops.files import discover_drops\n", {"pipelines.drops.files"}),
        ("from . import stream\n", {"pipelines.drops.stream"}),
        ("def f():\n    import pipelines.settings\n", {"pipelines.settings"}),
    ],
)
def test_the_import_walk_resolves_every_form(tmp_path: Path, source: str, expected: set[str]):
    path = tmp_path / "mod.py"
    path.write_text(source)
    modules = {"pipelines.drops", "pipelines.drops.files", "pipelines.drops.stream"}
    modules |= {"pipelines.settings", "pipelines.drops.mod"}
    assert imported(path, "pipelines.drops.mod", modules) == expected


def test_the_definitions_load_without_a_warning() -> None:
    """What the UI's code server and every command import prints nothing to the operator."""
    loaded = subprocess.run(
        [sys.executable, "-W", "always", "-c", "import pipelines.definitions"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stderr == ""
