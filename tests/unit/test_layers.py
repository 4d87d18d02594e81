"""The data path reads one way: no module imports a package that sits above it."""

from __future__ import annotations

import ast
from pathlib import Path

import k8saudit_eks_py

PACKAGE = Path(k8saudit_eks_py.__file__).parent

# aws_setup/ serves the commands `check`, `setup-stream`, `setup-coordination`; a source or the
# coordination layer may use at open only these of its modules (and what they import themselves).
SETUP_AT_OPEN = ("poll_capacity", "iam_policies", "lease_table_verify")
SETUP_COMMANDS_ONLY = tuple(
    f"aws_setup.{p.stem}"
    for p in sorted((PACKAGE / "aws_setup").glob("*.py"))
    if p.stem not in (*SETUP_AT_OPEN, "__init__")
)

# module or package (relative to k8saudit_eks_py) -> packages or modules (dotted) it must never import
_SOURCE_KINDS = (
    "sources.cloudwatch",
    "sources.kinesis",
    "sources.replay",
    "sources.cloudwatch_range",
    "sources.archive",
    "sources.history",
)
FORBIDDEN = {
    "audit.py": ("fields", "sources", "cli", "demo", "plugin"),
    "rawjson.py": ("fields", "audit", "cli", "demo"),
    "fields": ("sources", "cli", "demo", "plugin"),
    "sources": ("cli", "demo", "plugin", *SETUP_COMMANDS_ONLY),
    # each source reads its own way; what they share sits beside them and knows none of them
    "sources/cloudwatch": (
        "sources.kinesis",
        "sources.replay",
        "sources.cloudwatch_range",
        "sources.archive",
    ),
    "sources/kinesis": (
        "sources.cloudwatch",
        "sources.replay",
        "sources.cloudwatch_range",
        "sources.archive",
    ),
    # the sources of the past share history/; a range reads CloudWatch as poll mode names it (cluster
    # names, log group requests), an archive reads subscription documents as stream mode decodes them
    "sources/history": (
        "sources.cloudwatch",
        "sources.kinesis",
        "sources.replay",
        "sources.archive",
        "sources.cloudwatch_range",
    ),
    "sources/cloudwatch_range": ("sources.kinesis", "sources.replay", "sources.archive"),
    "sources/archive": (
        "sources.cloudwatch",
        "sources.kinesis",
        "sources.replay",
        "sources.cloudwatch_range",
    ),
    "sources/subscription.py": _SOURCE_KINDS,
    "sources/delivery.py": _SOURCE_KINDS,
    "sources/truncation.py": (*_SOURCE_KINDS, "sources.delivery"),
    "sources/types.py": (*_SOURCE_KINDS, "sources.delivery", "sources.truncation"),
    "coordination": ("sources", "cli", "demo", "plugin", *SETUP_COMMANDS_ONLY),
    "aws_setup": ("sources", "cli", "demo", "plugin", "fields", "audit", "host"),
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
                inside = ".".join(parts[1:])
                if parts[0] == "k8saudit_eks_py" and any(
                    inside == f or inside.startswith(f"{f}.") for f in forbidden
                ):
                    problems.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert not problems, "\n".join(problems)


def test_setup_modules_used_at_open_exist() -> None:
    """The allow-list names real modules, and the rest of aws_setup/ is guarded (not an empty list)."""
    for name in SETUP_AT_OPEN:
        assert (PACKAGE / "aws_setup" / f"{name}.py").is_file(), name
    assert "aws_setup.cluster_check" in SETUP_COMMANDS_ONLY


def test_no_source_module_imports_its_own_package_face() -> None:
    """Inside sources/, a module imports its siblings, never its package's __init__ (the face the rest of
    the plugin uses): the face imports them, so importing it back runs upward."""
    problems = []
    for path in sorted((PACKAGE / "sources").rglob("*.py")):
        faces = {
            ".".join(("k8saudit_eks_py", *parent.relative_to(PACKAGE).parts))
            for parent in path.parents
            if parent == PACKAGE / "sources" or (PACKAGE / "sources") in parent.parents
        }
        if path.name == "__init__.py":
            faces.discard(".".join(("k8saudit_eks_py", *path.parent.relative_to(PACKAGE).parts)))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module in faces:
                problems.append(f"{path.relative_to(PACKAGE)} imports from {node.module}")
    assert not problems, "\n".join(problems)


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of `graph` (a path that comes back to its start), or [] when there is none."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str]:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return []
        for nxt in sorted(graph.get(node, ())):
            found = visit(nxt, [*path, node])
            if found:
                return found
        done.add(node)
        return []

    for start in sorted(graph):
        found = visit(start, [])
        if found:
            return found
    return []


def test_shim_files_call_each_other_without_cycles() -> None:
    """Which shim/*.c defines each shim_* function, and which files call it: the calls form no cycle."""
    import re

    shim = PACKAGE.parent / "shim"
    sources = {p.name: p.read_text(encoding="utf-8") for p in sorted(shim.glob("*.c"))}
    assert sources
    defined = {
        name: file
        for file, text in sources.items()
        for name in re.findall(r"^[A-Za-z_][\w \*]*?\b(shim_\w+)\(", text, flags=re.MULTILINE)
    }
    graph = {
        file: {defined[n] for n in re.findall(r"\b(shim_\w+)\(", text) if defined.get(n, file) != file}
        for file, text in sources.items()
    }
    assert not _cycle(graph), " -> ".join(_cycle(graph))


def test_python_modules_import_each_other_without_cycles() -> None:
    """Imports outside functions (TYPE_CHECKING ones included) form no cycle between the package's
    modules; an import inside a function is a deliberate late choice and is not counted."""
    modules = {
        ".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"): p
        for p in PACKAGE.rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges: set[str] = set()
        for node in _outside_functions(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module in modules:
                for alias in node.names:  # `from pkg import submodule` depends on the submodule only
                    sub = f"{node.module}.{alias.name}"
                    edges.add(sub if sub in modules else node.module)
            elif isinstance(node, ast.Import):
                edges.update(a.name for a in node.names if a.name in modules)
        graph[name] = edges - {name}
    assert not _cycle(graph), " -> ".join(_cycle(graph))


def _outside_functions(tree: ast.AST) -> list[ast.AST]:
    found: list[ast.AST] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        found.append(node)
        stack.extend(
            child
            for child in ast.iter_child_nodes(node)
            if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        )
    return found
