"""The package's import graph, read statically (ast; no module is imported): no cycles, no
upward imports, and no torch where the workflow imports modules while it parses the Snakefile.

Edges are every ``import recall2reason...`` / ``from recall2reason... import ...`` (relative ones
resolved), at module level or inside a function: a lazy import inside a function is still a
dependency, only a later one. ``from pkg import name`` is an edge to ``pkg.name`` where that is a
module, else to ``pkg`` (its ``__init__``)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"

# Layering: a package of recall2reason may import only these of its sibling packages (besides itself).
# common and models sit at the bottom; every stage sits above models; report and plan, at the top,
# are imported by no package.
BOTTOM = {"common": set(), "models": {"common"}}
TOP = {"report", "plan"}  # read the stages' outputs / plan them; no stage imports them

def modules(src: Path = SRC) -> dict[str, Path]:
    out = {}
    for f in sorted((src / "recall2reason").rglob("*.py")):
        parts = list(f.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def _targets(name: str, path: Path, node: ast.Import | ast.ImportFrom, mods: dict) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name == "recall2reason" or a.name.startswith("recall2reason.")]
    base = node.module or ""
    if node.level:  # relative: from . import x / from ..y import z
        pkg = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        pkg = pkg[: len(pkg) - node.level + 1]
        base = ".".join(pkg + ([base] if base else []))
    if not (base == "recall2reason" or base.startswith("recall2reason.")):
        return []
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]


def _import_nodes(tree: ast.AST, module_level_only: bool):
    """Import statements of ``tree``; with ``module_level_only``, none inside a function body."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        for child in ast.iter_child_nodes(node):
            if module_level_only and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            stack.append(child)


def import_graph(src: Path = SRC, module_level_only: bool = False) -> dict[str, set[str]]:
    """module -> the recall2reason modules it imports."""
    mods = modules(src)
    graph = {}
    for name, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        graph[name] = {t for node in _import_nodes(tree, module_level_only)
                       for t in _targets(name, path, node, mods) if t != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None (depth-first search, iterative)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(graph):
        if start in state:
            continue
        path, its = [start], [iter(sorted(graph.get(start, ())))]
        state[start] = 1
        while path:
            nxt = next(its[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                its.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                its.append(iter(sorted(graph.get(nxt, ()))))
    return None


def package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""  # "": the top-level recall2reason/__init__.py


def layering_violations(graph: dict[str, set[str]]) -> list[str]:
    out = []
    for src, targets in sorted(graph.items()):
        a = package(src)
        for dst in sorted(targets):
            b = package(dst)
            if a == b or not b:
                continue
            if a in BOTTOM and b not in BOTTOM[a]:
                out.append(f"{src} -> {dst} ({a} may import only {sorted(BOTTOM[a]) or 'nothing of recall2reason'})")
            elif b in TOP:
                out.append(f"{src} -> {dst} (nothing imports {b})")
    return out


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    assert len(graph) > 50 and sum(map(len, graph.values())) > 100  # the parser found the package
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_find_cycle_reports_lazy_and_relative_imports(tmp_path):
    pkg = tmp_path / "recall2reason" / "judge"
    pkg.mkdir(parents=True)
    (tmp_path / "recall2reason" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "run.py").write_text("from . import batch\n")
    (pkg / "batch.py").write_text("def f():\n    from recall2reason.judge.run import check_reply\n")
    graph = import_graph(tmp_path)
    assert graph["recall2reason.judge.run"] == {"recall2reason.judge.batch"}
    assert find_cycle(graph) == ["recall2reason.judge.batch", "recall2reason.judge.run", "recall2reason.judge.batch"]
    assert import_graph(tmp_path, module_level_only=True)["recall2reason.judge.batch"] == set()


def test_no_upward_imports():
    assert layering_violations(import_graph()) == []
    # the rule does catch what it names: models importing a stage, a stage importing report
    assert layering_violations({"recall2reason.models.model": {"recall2reason.sample.engine"},
                                "recall2reason.vote.run": {"recall2reason.report.tables"}}) == [
        "recall2reason.models.model -> recall2reason.sample.engine (models may import only ['common'])",
        "recall2reason.vote.run -> recall2reason.report.tables (nothing imports report)"]


def workflow_imports() -> set[str]:
    """The recall2reason modules the Snakefile and workflow/rules/*.smk import (at parse time, or
    while planning: input functions, onstart)."""
    mods, out = modules(), set()
    pattern = re.compile(r"^\s*(?:from\s+(recall2reason[\w.]*)\s+import\s+([\w, ]+)|import\s+(recall2reason[\w.]*))", re.M)
    for f in [ROOT / "Snakefile", *sorted((ROOT / "workflow" / "rules").glob("*.smk"))]:
        for base, names, plain in pattern.findall(f.read_text(encoding="utf-8")):
            if plain:
                out.add(plain)
            else:
                out |= {f"{base}.{n.strip()}" if f"{base}.{n.strip()}" in mods else base for n in names.split(",")}
    return out


def test_the_workflow_parses_without_torch():
    """Snakemake imports these modules to parse and plan the DAG, on hosts that may lack torch
    (a login node, the CPU-only Snakemake env): none of them, nor anything they import at module
    level, nor their packages' __init__, imports torch at module level."""
    mods, graph = modules(), import_graph(module_level_only=True)
    roots = workflow_imports()
    assert {"recall2reason.study", "recall2reason.pretrain.config", "recall2reason.plan"} <= roots, roots
    seen, todo = set(), list(roots)
    while todo:
        m = todo.pop()
        if m in seen or m not in mods:
            continue
        seen.add(m)
        parts = m.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # importing a.b.c runs a and a.b first
        todo += graph[m]
    heavy = []
    for m in sorted(seen):
        tree = ast.parse(mods[m].read_text(encoding="utf-8"))
        for node in _import_nodes(tree, module_level_only=True):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            heavy += [f"{m}: {n}" for n in names if node_level_zero(node) and (n == "torch" or n.startswith("torch."))]
    assert heavy == [], f"module-level torch imports reached from the Snakefile: {heavy}"


def node_level_zero(node) -> bool:
    return not isinstance(node, ast.ImportFrom) or node.level == 0
