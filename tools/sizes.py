"""House rules `make lint` checks that ruff and import-linter can't: no module over ~400 lines,
no folder of more than ~15 modules, and no import circle (imports inside functions and
`TYPE_CHECKING` blocks count, as they do at run time)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

MAX_LINES = 400
MAX_MODULES = 15


def module_name(root: Path, path: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(root: Path, path: Path, modules: set[str]) -> set[str]:
    """Our modules `path` imports, by name (`from pkg import mod` counts as pkg.mod)."""
    found: set[str] = set()
    package = module_name(root, path).rsplit(".", 1)[0] if path.name != "__init__.py" else None
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = (package or module_name(root, path)).split(".")
                base = ".".join(anchor[: len(anchor) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in modules else base)
    return {m for m in found if m in modules}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            part = []
            while True:
                top = stack.pop()
                part.append(top)
                if top == node:
                    break
            if len(part) > 1:
                out.append(sorted(part))

    for node in graph:
        if node not in index:
            visit(node)
    return out


def main(root: Path) -> int:
    files = sorted(root.rglob("*.py"))
    problems = []
    for path in files:
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_LINES:
            problems.append(f"{path}: {lines} lines (at most {MAX_LINES}); split it")
    for folder in sorted({p.parent for p in files}):
        count = sum(1 for p in folder.glob("*.py") if p.name != "__init__.py")
        if count > MAX_MODULES:
            problems.append(f"{folder}: {count} modules (at most {MAX_MODULES}); add a folder")
    modules = {module_name(root, p): p for p in files}
    graph = {name: imports(root, path, set(modules)) - {name} for name, path in modules.items()}
    problems += [f"import circle: {' <-> '.join(c)}" for c in circles(graph)]
    for line in problems:
        print(line, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "chatterbox_cli")))
