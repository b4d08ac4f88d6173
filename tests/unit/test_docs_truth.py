"""The documentation says what the code does: the README's configuration table names every variable the
platform reads (with the defaults the code has, and no variable nothing reads), the docs and comments
point to nothing outside the repository, the state machines' README names every machine, and the layers
import one way (docs/architecture.md)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.helpers import ROOT

# Read from the environment but not configuration: the process's own, the WSGI request's, a service's.
NOT_CONFIGURATION = {"CONTENT_LENGTH", "HOME", "LANG", "PATH", "PYTHONPATH", "HTTP_AUTHORIZATION", "HTTP_X_AMZ_TARGET"}
ENV_NAMES = {"e", "env", "environ"}
# Read by a library, not by our code.
READ_BY_LIBRARIES = {"PYDANTIC_DISABLE_PLUGINS", "POWERTOOLS_LOG_LEVEL"}


def _is_environment(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return node.id in ENV_NAMES
    return isinstance(node, ast.Attribute) and node.attr == "environ"


def _sources() -> list[Path]:
    return [
        ROOT / "app.py",
        *sorted((ROOT / "chalicelib").rglob("*.py")),
        *sorted((ROOT / "functions").rglob("*.py")),
        *sorted((ROOT / "localcloud").rglob("*.py")),
    ]


def variables_read() -> dict[str, list[str]]:
    """Each variable the server code reads (``environ.get("X")``, ``environ["X"]``, ``getenv("X")``) with
    the constant defaults it is read with."""
    found: dict[str, list[str]] = {}
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            key: ast.expr | None = None
            default: ast.expr | None = None
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
                if (node.func.attr == "get" and _is_environment(node.func.value)) or node.func.attr == "getenv":
                    key = node.args[0]
                    default = node.args[1] if len(node.args) > 1 else None
            elif isinstance(node, ast.Subscript) and _is_environment(node.value) and isinstance(node.ctx, ast.Load):
                key = node.slice
            if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                continue
            if not re.fullmatch(r"[A-Z][A-Z0-9_]+", key.value) or key.value in NOT_CONFIGURATION:
                continue
            defaults = found.setdefault(key.value, [])
            if isinstance(default, ast.Constant) and default.value not in ("", None):
                defaults.append(str(default.value))
    return found


def configuration_rows() -> list[tuple[list[str], str]]:
    """The README's configuration table: (the variables a row names, its default cell)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("| `") or len(cells) < 3:
            continue
        rows.append((re.findall(r"`([A-Z][A-Z0-9_<>]+)`", cells[0]), cells[1]))
    return rows


def test_the_configuration_table_names_every_variable_the_platform_reads() -> None:
    documented = {name for names, _ in configuration_rows() for name in names}
    missing = sorted(set(variables_read()) - documented)
    assert not missing, f"read by the code but not in the README's configuration table: {missing}"


def test_the_configuration_table_names_no_variable_nothing_reads() -> None:
    code = "\n".join(p.read_text() for p in [*_sources(), ROOT / "Makefile"])
    documented = {n for names, _ in configuration_rows() for n in names if "<" not in n} - READ_BY_LIBRARIES
    unread = sorted(n for n in documented if not re.search(rf'"{n}"|\b{n}\b', code))
    assert not unread, f"in the README's configuration table but read by nothing: {unread}"


def test_the_configuration_tables_defaults_are_the_codes() -> None:
    read = variables_read()
    wrong = []
    for names, cell in configuration_rows():
        shown = set(re.findall(r"`([^`]*)`", cell))
        for name in names:
            for default in set(read.get(name, [])):
                if default not in shown:
                    wrong.append(f"{name}: the code's default is {default!r}, the table says {cell!r}")
    assert not wrong, "\n".join(wrong)


OUTSIDE = ("../" + "shared", "STACK" + "-NOTES", "DESIGN" + ".md", "STYLE" + ".md")


def test_nothing_points_to_notes_outside_the_repository() -> None:
    """A person who clones the repository has only the repository: the architecture is in
    docs/architecture.md."""
    paths = [ROOT / "README.md", ROOT / "Makefile", *ROOT.joinpath("docs").rglob("*.md")]
    for directory in ("chalicelib", "functions", "localcloud", "cli", "infra", "statemachines", "bench", "tests"):
        paths += [p for p in ROOT.joinpath(directory).rglob("*") if p.suffix in {".py", ".md", ".tf", ".json"}]
    found = [
        f"{p.relative_to(ROOT)}: {word}"
        for p in paths
        if ".terraform" not in p.parts and p.is_file()
        for word in OUTSIDE
        if word in p.read_text(errors="replace")
    ]
    assert not found, found


def test_the_state_machines_readme_describes_every_machine() -> None:
    text = (ROOT / "statemachines" / "README.md").read_text()
    missing = [p.name for p in sorted(ROOT.joinpath("statemachines").glob("*.asl.json")) if f"`{p.name}`" not in text]
    assert not missing, f"statemachines/README.md says nothing of {missing}"


ENTRY_SIDE = ("functions", "localcloud", "app")  # the entry points and the local cloud
ABOVE_ADAPTERS = ("chalice", "chalicelib.api", "chalicelib.pages", "chalicelib.composition", *ENTRY_SIDE)
FORBIDDEN = {
    # the domain: no SDK, no framework, nothing above it
    "chalicelib/domain": ("boto3", "botocore", "stripe", "github", "pynamodb", "chalicelib.adapters", *ABOVE_ADAPTERS),
    # the adapters: nothing of the HTTP layer, the composition root or the entry points
    "chalicelib/adapters": ABOVE_ADAPTERS,
    # the API layer and the pages: no entry point, no local cloud
    "chalicelib/api": ENTRY_SIDE,
    "chalicelib/pages": ENTRY_SIDE,
}


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_imports_run_one_way(layer: str) -> None:
    """Entry points -> composition root -> adapters -> domain (docs/architecture.md), at any depth of a
    module (imports made on first use count too)."""
    wrong = []
    for path in sorted(ROOT.joinpath(layer).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                if any(name == f or name.startswith(f + ".") for f in FORBIDDEN[layer]):
                    wrong.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {name}")
    assert not wrong, wrong
