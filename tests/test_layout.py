"""The package's layering: the science modules never import the suite or the experiments."""

import ast
from pathlib import Path

import cnnlab

PACKAGE = Path(cnnlab.__file__).parent
UPPER = ("cnnlab.suite", "cnnlab.experiments")


def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_science_never_imports_the_suite_or_the_experiments():
    science = [p for p in PACKAGE.rglob("*.py") if p.relative_to(PACKAGE).parts[0] not in ("suite", "experiments")
               and p.name != "__main__.py"]
    assert len(science) >= 20
    offenders = {str(p.relative_to(PACKAGE)): sorted(m for m in imported_modules(p) if m.startswith(UPPER))
                 for p in science}
    assert {p: m for p, m in offenders.items() if m} == {}


def test_experiments_never_import_the_runner_or_the_report():
    for path in (PACKAGE / "experiments").glob("*.py"):
        assert not {m for m in imported_modules(path) if m.startswith(("cnnlab.suite.runner", "cnnlab.suite.report"))}
