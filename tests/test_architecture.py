"""The shape of core/: a library that never imports Streamlit, in layers that import only downward (issue 24).

base → formats → policy → llm → calls → the features (chat, playground, images, analytics; evals over playground)
→ records → cli. A module may import its own package and any layer below; never a layer above, never a sibling
feature. Every import counts: module level, inside functions, under `if __name__ == "__main__":` (the six entry
blocks that imported core.cli back were the circle). The old-spelling shims (core.calllog, with a dot) are the one
exception: they import core.cli when run, and nothing imports them.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "core"
SHIM_MARKER = "promptlab: old-spelling shim"

# package (or top-level module) under core/ -> its rank; a module imports only lower ranks or its own package
RANKS = {
    "base": 0, "formats": 1, "policy": 2, "llm": 3, "calls": 4,
    "chat": 5, "playground": 5, "images": 5, "analytics": 5,
    "evals": 6,  # runs its cells on the Playground's matrix
    "records": 7, "cli": 8, "__main__": 9,
}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def core_modules(core: Path = CORE) -> dict[str, Path]:
    return {module_name(p, core): p for p in sorted(core.rglob("*.py"))}


def is_shim(path: Path) -> bool:
    return SHIM_MARKER in path.read_text(encoding="utf-8")


def imported_modules(path: Path, known: set[str] | None = None) -> set[str]:
    """Every module a file imports, anywhere in it: module level, functions, `__main__` blocks. With `known`,
    `from core.calls import log` also counts core.calls.log."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            submodules = {f"{node.module}.{a.name}" for a in node.names} & (known or set())
            found.update(submodules)
            if len(submodules) < len(node.names):  # names from the package itself, not only its modules
                found.add(node.module)
    return found


def layer(module: str) -> str:
    """core.calls.gate -> calls; core.cli -> cli; core -> '' (the root package, imports nothing)."""
    return module.split(".")[1] if module.count(".") else ""


def core_graph(core: Path = CORE) -> dict[str, set[str]]:
    modules = core_modules(core)
    known = set(modules)
    return {name: {m for m in imported_modules(path, known) if m in known and m != name and m != "core"}
            for name, path in modules.items()}


def layering_violations(core: Path = CORE) -> list[str]:
    """Every import of a module above, or beside (a sibling feature), as "importer -> imported"."""
    modules = core_modules(core)
    shims = {name for name, path in modules.items() if is_shim(path)}
    found = []
    for name, imports in core_graph(core).items():
        for target in sorted(imports):
            if target in shims:
                found.append(f"{name} -> {target} (a shim: nothing imports it)")
                continue
            mine, theirs = layer(name), layer(target)
            if mine == theirs:
                continue
            if mine not in RANKS or theirs not in RANKS:
                found.append(f"{name} -> {target} (not in a layer: add its package to RANKS)")
            elif RANKS[theirs] >= RANKS[mine]:
                found.append(f"{name} -> {target}")
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
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
    offenders = sorted(str(p.relative_to(ROOT)) for p in CORE.rglob("*.py")
                       if any(m == "streamlit" or m.startswith("streamlit.") for m in imported_modules(p)))
    assert offenders == []


def test_core_never_imports_the_pages():
    offenders = sorted(str(p.relative_to(ROOT)) for p in CORE.rglob("*.py")
                       if any(m in ("app", "pages") or m.startswith("pages.") for m in imported_modules(p)))
    assert offenders == []


def test_every_package_has_a_rank():
    packages = {p.name for p in CORE.iterdir() if (p / "__init__.py").exists()}
    assert packages <= set(RANKS)


def test_core_imports_point_down_only():
    assert layering_violations() == []


def test_core_has_no_import_cycle():
    graph = core_graph()
    shims = {name for name, path in core_modules().items() if is_shim(path)}
    assert find_cycle({k: v for k, v in graph.items() if k not in shims}) is None
    assert find_cycle(graph) is None


def test_nothing_imports_an_old_spelling_shim():
    shims = {name for name, path in core_modules().items() if is_shim(path)}
    assert shims  # the old spellings exist for one release
    files = [*CORE.rglob("*.py"), *(ROOT / "pages").rglob("*.py"), ROOT / "app.py", *(ROOT / "tests").rglob("*.py"),
             *(ROOT / "bench").rglob("*.py")]
    offenders = [f"{p.relative_to(ROOT)} -> {m}" for p in files for m in imported_modules(p) & shims]
    assert offenders == []


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("bad", [
    "from core.calls.gate import ChatStream\n",                       # module level, upward
    "def f():\n    from core.calls import gate\n    return gate\n",    # function level
    'if __name__ == "__main__":\n    from core.cli import main\n',    # an entry block (the old circle)
])
def test_the_layering_check_fails_on_an_upward_import(tmp_path, bad):
    core = tmp_path / "core"
    for folder in ("base", "calls"):
        (core / folder).mkdir(parents=True)
        (core / folder / "__init__.py").write_text("")
    (core / "__init__.py").write_text("")
    (core / "cli.py").write_text("from core.base import low\n")
    (core / "calls" / "gate.py").write_text("from core.base import low\nChatStream = 1\n")
    (core / "base" / "low.py").write_text(bad)
    assert layering_violations(core) != []
    (core / "base" / "low.py").write_text("import json\n")
    assert layering_violations(core) == []


def test_a_sibling_feature_import_is_refused(tmp_path):
    core = tmp_path / "core"
    for folder in ("chat", "images"):
        (core / folder).mkdir(parents=True)
        (core / folder / "__init__.py").write_text("")
    (core / "__init__.py").write_text("")
    (core / "images" / "gallery.py").write_text("")
    (core / "chat" / "turn.py").write_text("from core.images import gallery\n")
    assert "core.chat.turn -> core.images.gallery" in layering_violations(core)
