"""No import inside a function, except the allowed lazy ones (docs/architecture.md): a function-level import hides
a dependency from import-linter's picture and usually dodges an import cycle that should be fixed instead.

Allowed: heavy optional dependencies that the demo does not install (HEAVY, each import with a comment above it
saying why), `AppConfig.ready()` (models load after every app config) and migrations."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ("config", "core", "trial", "imaging", "inference", "reading", "rating", "enrolment", "analysis", "demo")
# Loaded only where a model runs: torch and the Hugging Face stack are optional (pyproject's extras).
HEAVY = frozenset({"torch", "transformers", "safetensors", "tokenizers"})


def _modules(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    return ["." * node.level + (node.module or "")]


def _function_imports(tree: ast.Module):
    """(function name, import node) for every import inside a function body, nested ones included."""
    def visit(node, fn):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                yield from visit(child, fn or child.name)
            elif fn and isinstance(child, ast.Import | ast.ImportFrom):
                yield fn, child
            else:
                yield from visit(child, fn)
    yield from visit(tree, None)


def _sources():
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def _offences(path: Path, root: Path = ROOT) -> list[str]:
    text = path.read_text()
    lines = text.splitlines()
    rel = path.relative_to(root)
    out = []
    for fn, node in _function_imports(ast.parse(text)):
        mods = _modules(node)
        if path.name == "apps.py" and fn == "ready":
            continue
        if all(m.split(".")[0] in HEAVY for m in mods):
            above = lines[node.lineno - 2].strip() if node.lineno > 1 else ""
            group = node.lineno > 1 and lines[node.lineno - 2].lstrip().startswith(("import ", "from "))
            if not (above.startswith("#") or group or "#" in lines[node.lineno - 1]):
                out.append(f"{rel}:{node.lineno} lazy import of {mods} in {fn}() needs a comment saying why")
            continue
        out.append(f"{rel}:{node.lineno} import of {', '.join(mods)} inside {fn}(): move it to the module top")
    return out


def test_no_function_level_imports_outside_the_allowlist():
    offences = [o for path in _sources() for o in _offences(path)]
    assert not offences, "\n".join(offences)


def test_the_scan_sees_function_level_imports(tmp_path):
    # The scanner itself: a project import inside a function is caught, a commented torch import is not.
    app = tmp_path / "sample.py"
    app.write_text("def f():\n    from trial import services\n\n\ndef g():\n    # Lazy: optional\n    import torch\n"
                   "\n\ndef h():\n    import transformers\n")
    found = [(fn, _modules(n)) for fn, n in _function_imports(ast.parse(app.read_text()))]
    assert found == [("f", ["trial"]), ("g", ["torch"]), ("h", ["transformers"])]
    offences = _offences(app, root=tmp_path)
    assert len(offences) == 2
    assert "inside f()" in offences[0] and "needs a comment" in offences[1]
