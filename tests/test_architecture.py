"""The shape of core/: a library that never imports Streamlit, and whose modules import each other without a cycle."""
from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parent.parent / "core"


def _is_main_guard(node: ast.AST) -> bool:
    """`if __name__ == "__main__":` — code that runs only as a script, never on import."""
    return (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__")


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (functions included), except under a `__main__` guard."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if _is_main_guard(child):
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module:
                found.add(child.module)
                if child.module == "core":
                    found.update(f"core.{alias.name}" for alias in child.names)
            visit(child)

    visit(ast.parse(path.read_text()))
    return found


def core_graph() -> dict[str, set[str]]:
    modules = {f"core.{p.stem}": p for p in CORE.glob("*.py") if p.stem != "__init__"}
    return {name: {m for m in imported_modules(path) if m in modules and m != name} for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_core_never_imports_streamlit():
    offenders = sorted(p.name for p in CORE.glob("*.py")
                       if any(m == "streamlit" or m.startswith("streamlit.") for m in imported_modules(p)))
    assert offenders == []


def test_core_has_no_import_cycle():
    assert find_cycle(core_graph()) is None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
