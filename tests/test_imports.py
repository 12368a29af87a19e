"""No import circles between matvae's modules (module-level imports; a package importing its own submodules
through its __init__ is not counted)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def import_graph() -> dict[str, set[str]]:
    graph = {}
    for path in (ROOT / "matvae").rglob("*.py"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        deps = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("matvae"):
                deps.add(node.module)
            elif isinstance(node, ast.Import):
                deps |= {alias.name for alias in node.names if alias.name.startswith("matvae")}
        graph[module] = {d for d in deps if not module.startswith(d + ".")}  # parent packages are not edges
    return graph


def test_no_module_imports_itself_through_others():
    graph = import_graph()
    circles = []
    for start in graph:
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for dep in graph.get(node, ()):
                if dep == start:
                    circles.append(" -> ".join(path + [dep]))
                elif dep not in seen:
                    seen.add(dep)
                    stack.append((dep, path + [dep]))
    assert not circles, circles
