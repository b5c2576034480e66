"""The package's layering, read from the source: every ``import`` of a gnn_audio module (at
module level or inside a function) goes down the data flow

    base -> labels -> wav -> features -> graph -> nn -> models -> zoo -> scoring
         -> train | inference -> viz | demo -> cli

or stays within its layer; layers on one rung (train and inference; viz and demo) do not
import each other; there is no import circle; and outside the command line (whose commands
import their libraries when they run, so that ``gnn-audio --help`` starts at once) no
function hides a dependency in a local import.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set, Tuple

import gnn_audio

ROOT = Path(gnn_audio.__file__).parent

#: (rung, layer name, module prefixes); the first matching prefix decides, longest first
LAYERS: List[Tuple[int, str, Tuple[str, ...]]] = [
    (0, "base", ("gnn_audio", "gnn_audio.types", "gnn_audio.files", "gnn_audio.errors",
                 "gnn_audio.devices", "gnn_audio.precision", "gnn_audio.weights_io",
                 "gnn_audio.threads")),
    (1, "labels", ("gnn_audio.labels", "gnn_audio.metrics")),
    (2, "wav", ("gnn_audio.data.audio",)),
    (3, "features", ("gnn_audio.data",)),
    (4, "graph", ("gnn_audio.graph",)),
    (5, "nn", ("gnn_audio.nn",)),
    (6, "models", ("gnn_audio.models",)),
    (7, "zoo", ("gnn_audio.zoo",)),
    (8, "scoring", ("gnn_audio.scoring",)),
    (9, "train", ("gnn_audio.train",)),
    (9, "inference", ("gnn_audio.inference",)),
    (10, "viz", ("gnn_audio.viz",)),
    (10, "demo", ("gnn_audio.demo",)),
    (11, "cli", ("gnn_audio.cli",)),
]
#: packages whose functions may import lazily (see the module docstring)
LAZY_OK = ("gnn_audio.cli",)


def _modules() -> Dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, modules: Dict[str, Path]) -> List[Tuple[str, int, bool]]:
    """``(imported gnn_audio module, line, inside a function)`` of every import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []

    def visit(node: ast.AST, local: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = local or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            targets: List[str] = []
            if isinstance(child, ast.Import):
                targets = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parent = package.split(".")[:len(package.split(".")) - child.level + 1]
                    base = ".".join(parent + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                           for a in child.names]
            for target in targets:
                if target == "gnn_audio" or target.startswith("gnn_audio."):
                    while target not in modules:  # gnn_audio.zoo.create_model -> gnn_audio.zoo
                        target = target.rsplit(".", 1)[0]
                    found.append((target, child.lineno, local))
            visit(child, inner)
    visit(tree, False)
    return found


def _layer(module: str) -> Tuple[int, str]:
    best = None
    for rung, layer, prefixes in LAYERS:
        for prefix in prefixes:
            if module == prefix or (module.startswith(prefix + ".") and prefix != "gnn_audio"):
                if best is None or len(prefix) > best[0]:
                    best = (len(prefix), rung, layer)
    assert best is not None, f"{module} is in no layer of tests/test_layers.py"
    return best[1], best[2]


def _graph() -> Tuple[Dict[str, Path], Dict[str, Set[str]], List[Tuple[str, str, int, bool]]]:
    modules = _modules()
    edges: Dict[str, Set[str]] = {m: set() for m in modules}
    rows = []
    for name, path in modules.items():
        for target, line, local in _imports(name, path, modules):
            if target != name:
                edges[name].add(target)
                rows.append((name, target, line, local))
    return modules, edges, rows


def test_every_module_is_in_a_layer():
    for module in _modules():
        _layer(module)


def test_no_module_imports_from_a_layer_above_or_beside_it():
    modules, _, rows = _graph()
    bad = []
    for source, target, line, _ in rows:
        (rung_s, layer_s), (rung_t, layer_t) = _layer(source), _layer(target)
        if rung_t > rung_s or (rung_t == rung_s and layer_t != layer_s):
            where = modules[source].relative_to(ROOT.parent)
            bad.append(f"{where}:{line}: {source} ({layer_s}) imports {target} ({layer_t})")
    assert not bad, "\n".join(bad)


def test_no_import_circle():
    _, edges, _ = _graph()
    state: Dict[str, int] = {}
    stack: List[str] = []
    circles = []

    def walk(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                circles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                walk(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            walk(node)
    # a package's __init__ re-exporting its modules is not a circle of code
    circles = [c for c in circles
               if not all(a == b or a.startswith(b + ".") or b.startswith(a + ".")
                          for a, b in zip(c.split(" -> "), c.split(" -> ")[1:]))]
    assert not circles, "\n".join(circles)


def test_no_function_hides_a_dependency_in_a_local_import():
    modules, _, rows = _graph()
    bad = [f"{modules[s].relative_to(ROOT.parent)}:{line}: imports {t} inside a function"
           for s, t, line, local in rows if local and not s.startswith(LAZY_OK)]
    assert not bad, "\n".join(bad)


def test_the_checker_sees_what_it_must(tmp_path):
    """The checks can fail: an upward import, a local import and a circle are found."""
    mods = {"gnn_audio.nn.x": tmp_path / "x.py", "gnn_audio.zoo": tmp_path / "z.py"}
    mods["gnn_audio.nn.x"].write_text("def f():\n    from gnn_audio.zoo import create_model\n")
    mods["gnn_audio.zoo"].write_text("import gnn_audio.nn.x\n")
    found = _imports("gnn_audio.nn.x", mods["gnn_audio.nn.x"], mods)
    assert found == [("gnn_audio.zoo", 2, True)]
    assert _layer("gnn_audio.zoo")[0] > _layer("gnn_audio.nn.x")[0]
    assert _imports("gnn_audio.zoo", mods["gnn_audio.zoo"], mods) == [("gnn_audio.nn.x", 1,
                                                                       False)]
