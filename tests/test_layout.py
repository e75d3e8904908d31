"""The package's layering: the science modules never import the suite or the experiments."""

import ast
from pathlib import Path

import cnnlab
from cnnlab.experiments import EXPERIMENTS

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
    experiments = list((PACKAGE / "experiments").rglob("*.py"))
    assert len(experiments) >= 14
    for path in experiments:
        assert not {m for m in imported_modules(path) if m.startswith(("cnnlab.suite.runner", "cnnlab.suite.report"))}


def test_no_module_is_over_400_lines_and_no_notebook_over_90_code_lines():
    import nbformat

    from cnnlab import paths

    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}
    code_lines = {p.stem: sum(len([line for line in cell.source.splitlines() if line.strip()])
                              for cell in nbformat.read(p, as_version=4).cells if cell.cell_type == "code")
                  for p in paths.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")}
    assert len(code_lines) == len(EXPERIMENTS) and {name: n for name, n in code_lines.items() if n > 90} == {}


def test_every_experiment_has_one_name_and_the_table_holds_its_other_names():
    from cnnlab import paths

    names = sorted(p.stem for p in paths.PARAMS.glob("[0-9][0-9]_*.yaml"))
    assert names == sorted(EXPERIMENTS) == sorted(p.stem for p in paths.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    root = PACKAGE.parent
    for name, (module, prefix) in EXPERIMENTS.items():
        assert (root / "tests" / "experiments" / f"test_{name}.py").exists(), name
        assert any((PACKAGE / "experiments" / f).exists() for f in (f"{module}.py", f"{module}/__init__.py")), name
        assert f'Record.start("{name}", ' in (paths.NOTEBOOKS / f"{name}.ipynb").read_text().replace('\\"', '"'), name
    modules = [p.stem for p in (PACKAGE / "experiments").glob("[a-z]*.py")]
    packages = [p.parent.name for p in (PACKAGE / "experiments").glob("*/__init__.py")]
    assert sorted(m for m, _ in EXPERIMENTS.values()) == sorted(modules + packages)
    assert len({prefix for _, prefix in EXPERIMENTS.values()}) == len(EXPERIMENTS)  # a claim id names its experiment


def test_the_tests_mirror_the_package():
    tests = Path(__file__).parent
    subpackages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert {p.name for p in tests.iterdir() if p.is_dir() and not p.name.startswith((".", "__"))} == subpackages
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    unmatched = [p.name for p in tests.glob("test_*.py") if p.name != "test_layout.py"
                 and not any(p.stem.removeprefix("test_").startswith(m) for m in modules)]
    assert unmatched == []


def test_no_import_cycle_among_the_packages_modules_at_their_top_or_inside_functions():
    def name(path: Path) -> str:
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    modules = {name(p): p for p in PACKAGE.rglob("*.py")}
    imports = {module: (imported_modules(path) & modules.keys()) - {module} for module, path in modules.items()}
    cycles, state = [], {}

    def visit(module, path):
        state[module] = "open"
        for other in sorted(imports[module]):
            if state.get(other) == "open":
                cycles.append(path[path.index(other):] + [other])
            elif other not in state:
                visit(other, path + [other])
        state[module] = "done"

    for module in sorted(modules):
        if module not in state:
            visit(module, [module])
    assert len(modules) >= 50 and cycles == []
