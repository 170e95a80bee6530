"""hooks/ is the clinical knowledge: no web framework, no network, no clock (see hooks/README.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

HOOKS = Path(__file__).parents[1] / "hooks"
FORBIDDEN_MODULES = (
    "flask",
    "requests",
    "werkzeug",
    "socket",
    "urllib.request",
    "http",
    "sqlite3",
    "sqlalchemy",
    "cds_service",
    "os",
    "subprocess",
    "time",
)
FORBIDDEN_CALLS = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
    ("time", "time"),
}
FHIR_IMPORT_MODULE = "fhir_model.py"


def sources():
    return sorted(HOOKS.rglob("*.py"))


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(HOOKS)))
def test_no_io_imports(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            assert not any(name == m or name.startswith(m + ".") for m in FORBIDDEN_MODULES), (
                f"{path.name} imports {name}"
            )
            if name.startswith("fhir.resources"):
                assert path.name == FHIR_IMPORT_MODULE, (
                    f"{path.name} imports fhir.resources; only {FHIR_IMPORT_MODULE} may"
                )
                assert name.startswith("fhir.resources.R4B"), f"{path.name} imports the R5 package {name}"


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(HOOKS)))
def test_no_clock_reads(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
        ):
            assert (node.func.value.id, node.func.attr) not in FORBIDDEN_CALLS, (
                f"{path.name}:{node.lineno} reads the clock"
            )


def test_the_checker_catches_a_violation(tmp_path):
    """The checks above must be able to fail: a module that reads the clock is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("from datetime import datetime\nx = datetime.now()\nimport requests\n")
    with pytest.raises(AssertionError):
        test_no_clock_reads(bad)
    with pytest.raises(AssertionError):
        test_no_io_imports(bad)
