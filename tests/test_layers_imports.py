"""The package's layers: each module imports only from its own layer or the layers below it, with no import cycle,
and function-local imports of kdnlp's own modules stay rare (the CLI loads the layers below it through
kdnlp.cli.lazy handles, which count as its imports here)."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: From the bottom: a module may import from its own layer and the ones before it.
LAYERS = ("core", "modeling", "losses", "tasks", "training", "methods", "pipeline", "tools", "cli")
MAX_LOCAL = 10


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    """The layer of `module`; the top package (version and the lazy public API) is at the bottom, `python -m kdnlp`
    at the top."""
    part = module.split(".")[1] if "." in module else None
    return 0 if part is None else len(LAYERS) - 1 if part == "__main__" else LAYERS.index(part)


def import_graph(package: Path) -> tuple[dict[str, set[str]], set[tuple[str, str]]]:
    """Module -> the package's modules it imports (at the top, inside functions, or through a `lazy("...")` handle),
    and the (module, imported) pairs of the function-local imports."""
    modules = {module_name(p): p for p in package.rglob("*.py")}

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    edges: dict[str, set[str]] = {m: set() for m in modules}
    local: set[tuple[str, str]] = set()
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        inner = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                 for n in ast.walk(f)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                         for a in node.names]
            elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "lazy" and node.args \
                    and isinstance(node.args[0], ast.Constant):
                names = [node.args[0].value]
            else:
                continue
            for name in names:
                target = resolve(name) if name.split(".")[0] == package.name else None
                if target and target != module:
                    edges[module].add(target)
                    if id(node) in inner and not isinstance(node, ast.Call):
                        local.add((module, target))
    return edges, local


def cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of the graph, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for n in sorted(edges[m]):
            if state.get(n) == 1:
                return path[path.index(n):] + [n]
            if n not in state and (found := visit(n)):
                return found
        state[m] = 2
        path.pop()
        return None

    for m in sorted(edges):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_layers_import_only_downwards_without_cycles():
    edges, local = import_graph(ROOT / "kdnlp")
    assert cycle(edges) is None, f"import cycle: {' -> '.join(cycle(edges))}"
    upward = sorted(f"{a} -> {b}" for a, targets in edges.items() for b in targets if layer(b) > layer(a))
    assert not upward, f"imports that go up a layer ({' < '.join(LAYERS)}): {upward}"
    assert len(local) <= MAX_LOCAL, f"{len(local)} function-local imports of kdnlp modules: {sorted(local)}"


def test_cli_imports_no_torch():
    """`kdnlp --help` stays fast: importing the CLI imports neither torch nor transformers."""
    code = "import sys, kdnlp.cli.main; print(sorted({'torch', 'transformers'} & set(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


#: The layers above the tasks layer, which use a task only through kdnlp.tasks.base.Problem, its optional
#: capabilities (kdnlp.tasks.capabilities) and kdnlp.tasks.kinds.
ABOVE_TASKS = LAYERS[LAYERS.index("tasks") + 1:]
#: The concrete kinds of task, which only the tasks layer names.
KINDS = {"GlueProblem", "Seq2SeqProblem", "MultiTaskProblem"}
#: Task names and key prefixes of kinds other than GLUE's single tasks, which no layer above tasks compares with.
KIND_NAMES = {"translation", "summarization", "tasks:"}
#: GLUE tools, which may look a task up in GLUE's own table (`... in glue.TASKS`).
GLUE_TOOLS = {"kdnlp.tools.glue_suite"}


def kind_leaks(package: Path) -> list[str]:
    """Where a module above the tasks layer names a concrete kind of task or an input only one kind has (a decoder's,
    the multi-task row's task), branches on a problem's `outputs`, compares with another kind's task name, or
    (outside the GLUE tools) asks whether a task is in GLUE's table."""
    found = []
    for path in sorted(package.rglob("*.py")):
        module = module_name(path)
        if layer(module) <= LAYERS.index("tasks"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            where = f"{module}:{getattr(node, 'lineno', '?')}"
            named = {getattr(node, "id", None), getattr(node, "attr", None), getattr(node, "name", None)}
            if named & KINDS:
                found.append(f"{where} names {(named & KINDS).pop()}")
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                    (node.value.startswith("decoder_") or node.value == "task_ids"):
                found.append(f"{where} names the input {node.value} of one kind")
            if not isinstance(node, ast.Compare):
                continue
            sides = [node.left, *node.comparators]
            if any(getattr(s, "attr", getattr(s, "id", None)) == "outputs" for s in sides):
                found.append(f"{where} branches on outputs")
            if any(isinstance(s, ast.Constant) and s.value in KIND_NAMES for s in sides):
                found.append(f"{where} compares with a task name")
            if module not in GLUE_TOOLS and any(getattr(s, "attr", None) == "TASKS" for s in node.comparators):
                found.append(f"{where} looks a task up in GLUE's table")
    return found


def test_no_layer_above_tasks_knows_a_kind_of_task():
    """Per-kind behaviour is the problem's (its core or an optional capability), never a branch above it."""
    assert kind_leaks(ROOT / "kdnlp") == []
