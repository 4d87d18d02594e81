"""The data path reads one way: no module imports a package that sits above it."""

from __future__ import annotations

import ast
from pathlib import Path

import k8saudit_eks_py

PACKAGE = Path(k8saudit_eks_py.__file__).parent

# module or package (relative to k8saudit_eks_py) -> packages it must never import
FORBIDDEN = {
    "audit.py": ("fields", "sources", "cli", "demo", "plugin"),
    "rawjson.py": ("fields", "audit", "cli", "demo"),
    "fields": ("sources", "cli", "demo", "plugin"),
    "sources": ("cli", "demo"),
    "demo": ("cli",),
    "output_format.py": ("cli", "demo"),
    "event_loop.py": ("cli", "demo"),
}


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_no_upward_imports() -> None:
    problems = []
    for where, forbidden in FORBIDDEN.items():
        target = PACKAGE / where
        files = sorted(target.rglob("*.py")) if target.is_dir() else [target]
        assert files, where
        for path in files:
            for name in _imported(path):
                parts = name.split(".")
                if parts[0] == "k8saudit_eks_py" and len(parts) > 1 and parts[1] in forbidden:
                    problems.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert not problems, "\n".join(problems)
