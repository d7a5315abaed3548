"""The house's rules as tests: which package may import which (every import counted, those inside
functions too), no import circle between modules, and the web side's interpreter never loads
torch. docs/architecture.md draws the same graph."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "dacviz_app"

# package -> the packages it may import (its layer and those below it); "dacviz_app" is the
# top (``__main__``, the version), which imports nothing but may be imported by all
MAY_IMPORT = {
    "embedding": set(),
    "cache": {"embedding"},
    "explore": {"embedding", "cache"},
    "precompute": {"embedding", "cache", "explore"},
    "query_service": {"embedding", "cache", "explore", "precompute"},
    "viewer": {"embedding", "cache", "explore", "query_service"},
}
# test-only code: the app never imports it (tests/testkit, its own package, and selenium)
TEST_ONLY = ("dacviz_testkit", "selenium", "pytest")
TORCH_SIDE = ("torch", "torchaudio", "dac", "audiotools", "dacviz_app.precompute",
              "dacviz_app.query_service.encoder", "dacviz_app.query_service.server")
# the web side never imports torch, not even inside a function; ``embedding`` may, inside the
# functions only precompute calls (the exact neighbour table on a GPU), never at module level
NEVER_TORCH = ("cache", "explore", "viewer")  # and the query service's web side:
WEB_SIDE_OF_SERVICE = ("protocol", "client", "supervisor", "__init__")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, at module level or inside a function (absolute names)."""
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: a relative import (write dacviz_app.…)"
            out.add(node.module)
            out |= {f"{node.module}.{alias.name}" for alias in node.names}
    return out


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in imports_of(path) if m in modules and m != name}
            for name, path in modules.items()}


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and (PACKAGE / parts[1]).is_dir()) else "dacviz_app"


def broken_rules(edges: dict[str, set[str]]) -> list[str]:
    problems = []
    for module, targets in edges.items():
        source = package_of(module)
        for target in targets:
            into = package_of(target)
            if source == into or into == "dacviz_app" and target == "dacviz_app" or source == "dacviz_app":
                continue
            if into not in MAY_IMPORT.get(source, set()):
                problems.append(f"{module} imports {target}: {source} may import only "
                                f"{sorted(MAY_IMPORT.get(source, set()))}")
            if source == "query_service" and into == "precompute" and module != "dacviz_app.query_service.encoder":
                problems.append(f"{module} imports {target}: only query_service.encoder is the torch side")
    return problems


def torch_imports(edges_with_outside: dict[str, set[str]]) -> list[str]:
    problems = []
    for module, targets in edges_with_outside.items():
        source = package_of(module)
        web = source in NEVER_TORCH or (source == "query_service" and module.split(".")[-1] in WEB_SIDE_OF_SERVICE) \
            or module == "dacviz_app.query_service"
        if web:
            problems += [f"{module} imports {t}" for t in targets
                         if any(t == s or t.startswith(s + ".") for s in TORCH_SIDE)]
    return problems


def imports_of_test_code(edges_with_outside: dict[str, set[str]]) -> list[str]:
    return [f"{module} imports {t}" for module, targets in edges_with_outside.items() for t in sorted(targets)
            if any(t == s or t.startswith(s + ".") for s in TEST_ONLY)]


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every import circle between modules (a package's __init__ and its own modules aside)."""
    found, state = [], {}

    def visit(node, stack):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt.startswith(node + ".") or node.startswith(nxt + "."):
                continue  # a package and the modules it re-exports
            if state.get(nxt) == 1:
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [])
    return found


def test_each_package_imports_only_the_layers_below_it():
    assert broken_rules(graph()) == []


def test_the_web_side_never_imports_torch_or_precompute():
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    assert torch_imports({name: imports_of(path) for name, path in modules.items()}) == []
    for path in (PACKAGE / "embedding").glob("*.py"):
        top = [n for n in ast.parse(path.read_text()).body if isinstance(n, (ast.Import, ast.ImportFrom))]
        names = {a.name for n in top for a in n.names} | {n.module for n in top if isinstance(n, ast.ImportFrom)}
        assert not {m for m in names if m and m.split(".")[0] in ("torch", "torchaudio")}, path


def test_the_app_never_imports_test_code():
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    assert imports_of_test_code({name: imports_of(path) for name, path in modules.items()}) == []


def test_no_import_circle():
    assert circles(graph()) == []


def test_the_rules_catch_a_broken_rule():
    edges = graph()
    edges["dacviz_app.cache.reader"] = edges["dacviz_app.cache.reader"] | {"dacviz_app.precompute.pipeline"}
    edges["dacviz_app.embedding.spaces"] = {"dacviz_app.cache.reader"}
    problems = broken_rules(edges)
    assert any("cache.reader imports dacviz_app.precompute.pipeline" in p for p in problems)
    assert any("embedding.spaces imports dacviz_app.cache.reader" in p for p in problems)
    assert circles({"a.x": {"a.y"}, "a.y": {"a.x"}})
    assert imports_of_test_code({"dacviz_app.viewer.app": {"dacviz_testkit"}}) == \
        ["dacviz_app.viewer.app imports dacviz_testkit"]
    assert torch_imports({"dacviz_app.viewer.app": {"torch"}, "dacviz_app.query_service.client": {"dacviz_app.precompute.audio"}}) \
        == ["dacviz_app.viewer.app imports torch", "dacviz_app.query_service.client imports dacviz_app.precompute.audio"]


def test_a_fresh_web_worker_interpreter_never_loads_torch():
    script = ("import sys, dacviz_app.viewer.app, dacviz_app.viewer.callbacks, dacviz_app.query_service, "
              "dacviz_app.cache, dacviz_app.explore.analysis; "
              "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchaudio', 'dac')))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80
ARGPARSE_TABLES = {"dacviz_app.precompute.cli.parse_args"}  # an option table reads best whole


def oversized(modules: dict[str, str]) -> list[str]:
    """Modules over MAX_MODULE_LINES and functions over MAX_FUNCTION_LINES (an argparse table
    aside), by name: ``{module name: source}``."""
    found = []
    for name, source in modules.items():
        lines = source.count("\n")
        if lines > MAX_MODULE_LINES:
            found.append(f"{name}: {lines} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES and f"{name}.{node.name}" not in ARGPARSE_TABLES:
                    found.append(f"{name}.{node.name}: {length} lines")
    return found


def test_no_module_over_500_lines_and_no_function_over_80():
    assert oversized({module_name(p): p.read_text() for p in PACKAGE.rglob("*.py")}) == []
    long_function = "def f():\n" + "    x = 1\n" * 90
    assert oversized({"m": long_function, "big": "x = 1\n" * 501}) == ["m.f: 91 lines", "big: 501 lines"]
