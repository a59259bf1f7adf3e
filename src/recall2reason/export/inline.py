"""Make a module self-contained: replace its imports from this package with the source of what they import.

A template marks the imports to inline with a line starting ``# <inline>`` before them and one
starting ``# </inline>`` after. Each ``from recall2reason.X import a, b`` there becomes the source
of ``a`` and ``b`` as they stand in module X, preceded by the definitions of X they use (in X's
order). So the exported modeling
file runs the package's own code, and a change to the package changes the next export.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import symtable

BEGIN, END = "# <inline>", "# </inline>"
PACKAGE = "recall2reason"


def _top_level(tree: ast.Module) -> dict[str, ast.stmt]:
    """Name -> the function, class or assignment that defines it at module level."""
    defs = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            defs[node.name] = node
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        defs[name.id] = node
    return defs


def definitions(module_name: str, names: list[str]) -> str:
    """The source of ``names`` from ``module_name`` and of the module's own definitions they use."""
    source = inspect.getsource(importlib.import_module(module_name))
    tree = ast.parse(source)
    defs = _top_level(tree)
    missing = [n for n in names if n not in defs]
    if missing:
        raise ImportError(f"{module_name} defines no {missing} at module level: nothing to inline")
    wanted, todo = set(), list(names)
    while todo:
        node = defs[todo.pop()]
        if node in wanted:
            continue
        wanted.add(node)
        todo += [n.id for n in ast.walk(node) if isinstance(n, ast.Name) and n.id in defs]
    lines = source.splitlines()
    blocks = []
    for node in tree.body:  # the module's order: helpers before their users
        if node in wanted:
            start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            blocks.append("\n".join(lines[start - 1 : node.end_lineno]))
    return "\n\n\n".join(blocks)


def inline(template: str, origin: str) -> str:
    """``template`` (a module's source) with the package imports between the markers replaced."""
    lines = template.splitlines()
    marks = [i for i, line in enumerate(lines) if line.startswith((BEGIN, END))]
    if len(marks) != 2 or not lines[marks[0]].startswith(BEGIN):
        raise ValueError(f"{origin}: needs one '{BEGIN}' line, then one '{END}' line, around the imports to inline")
    begin, end = marks
    parts = []
    for node in ast.parse("\n".join(lines[begin + 1 : end])).body:
        if not (isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PACKAGE + ".")):
            raise ValueError(f"{origin}: the inline block may hold only 'from {PACKAGE}.... import ...' lines")
        parts.append(f"# ---- from {node.module} ----\n\n" + definitions(node.module, [a.name for a in node.names]))
    out = "\n".join(lines[:begin] + ["\n\n".join(parts)] + lines[end + 1 :]) + "\n"
    check_self_contained(out, origin)
    return out


def check_self_contained(source: str, origin: str) -> None:
    """Every global a function or class of ``source`` reads is defined or imported in it (or a
    builtin), and nothing imports this package: the file runs without recall2reason installed."""
    tree = ast.parse(source)
    imports = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    ours = [ast.unparse(n) for n in imports
            if any(m == PACKAGE or m.startswith(PACKAGE + ".")
                   for m in ([a.name for a in n.names] if isinstance(n, ast.Import) else [n.module or ""]))]
    if ours:
        raise ValueError(f"{origin}: still imports the package: {ours}")
    table = symtable.symtable(source, origin, "exec")
    known = set(dir(builtins)) | {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported()}
    unknown = set()
    todo = list(table.get_children())
    while todo:
        scope = todo.pop()
        todo += scope.get_children()
        unknown |= {s.get_name() for s in scope.get_symbols()
                    if s.is_global() and s.is_referenced() and s.get_name() not in known}
    if unknown:
        raise ValueError(f"{origin}: uses names it neither defines nor imports: {sorted(unknown)}")
