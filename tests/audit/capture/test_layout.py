"""The capture package reads in one direction: no import cycle in audit/,
and no capture module imports one above it (the order of the diagram in
audit/capture/__init__.py)."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
CAPTURE = ROOT / "audit" / "capture"
#: bottom to top: a module may import only modules listed before it
ORDER = ("text", "diff", "compat", "state", "registry", "history", "writer", "engine", "receivers", "querysets")


def _capture_imports(module: str) -> set[str]:
    tree = ast.parse((CAPTURE / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "audit.capture":
                found.update(alias.name for alias in node.names)
            elif node.module.startswith("audit.capture."):
                found.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[2] for a in node.names if a.name.startswith("audit.capture."))
    return found


def test_every_capture_module_has_its_place_in_the_order():
    modules = {p.stem for p in CAPTURE.glob("*.py")} - {"__init__"}
    assert modules == set(ORDER)


def test_no_capture_module_imports_one_above_it():
    above = []
    for i, module in enumerate(ORDER):
        for imported in _capture_imports(module):
            if imported in ORDER and ORDER.index(imported) >= i:
                above.append(f"{module} imports {imported}")
    assert above == []


def test_no_import_cycle_in_the_audit_app():
    tool = Path("/work/shared/tools/import_cycles.py")
    if tool.exists():
        proc = subprocess.run([sys.executable, str(tool), "audit"], cwd=ROOT, capture_output=True, text=True)
        assert proc.returncode == 0 and "0 import cycle(s)" in proc.stdout, proc.stdout + proc.stderr
    # and on its own: capture imports nothing of the audit app's upper parts
    upper = ("audit.api", "audit.web", "audit.admin", "audit.operations")
    for path in CAPTURE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else (
                [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            assert not [n for n in names if n.startswith(upper)], f"{path.name} imports {names}"
