"""runlog is installed under one `runlog` namespace: no top-level `schema`, `api`, ... packages.

The folders keep the layout's names; pyproject.toml maps each to `runlog.<folder>`. Running from
the repository root would still let `import api` work by accident (the root is on sys.path), so
these checks read the source and the packaging metadata instead of trusting an import.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib.util
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("schema", "eventstore", "projections", "commands", "api", "notifier")
SOURCES = (*FOLDERS, "tests", "bench")
CODE_IN_STRING = re.compile(rf"\bfrom ({'|'.join(FOLDERS)})(\.\w+)* import \w")


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _package_folders() -> set[str]:
    found = set()
    for folder in FOLDERS:
        for init in (ROOT / folder).rglob("__init__.py"):
            found.add("runlog." + ".".join(init.parent.relative_to(ROOT).parts))
    return found


def test_every_package_folder_is_installed_under_runlog() -> None:
    setuptools = _pyproject()["tool"]["setuptools"]
    assert set(setuptools["packages"]) == _package_folders()
    assert setuptools["package-dir"] == {f"runlog.{folder}": folder for folder in FOLDERS}
    assert _pyproject()["project"]["scripts"]["runlog"].startswith("runlog.api.")


def test_no_source_imports_a_top_level_name() -> None:
    offenders = []
    for source in SOURCES:
        for path in (ROOT / source).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                offenders += [
                    f"{path.relative_to(ROOT)}:{node.lineno}: {name}"
                    for name in names if name.split(".")[0] in FOLDERS
                ]
                # Code run in a subprocess (python -c "from api.cli import main") is a string.
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    offenders += [
                        f"{path.relative_to(ROOT)}:{node.lineno}: {match.group(0)!r}"
                        for match in CODE_IN_STRING.finditer(node.value)
                    ]
    assert offenders == []


def test_the_runlog_namespace_resolves_to_the_folders() -> None:
    for folder in FOLDERS:
        spec = importlib.util.find_spec(f"runlog.{folder}")
        assert spec is not None and spec.origin is not None
        assert Path(spec.origin).parent == ROOT / folder


BELOW_API = ("commands", "projections", "eventstore", "schema", "notifier")
"""The layers under the API (ARCHITECTURE.md): none of them may import runlog.api."""


def _imports(source: str, package: list[str]) -> list[tuple[int, str]]:
    """Every module ``source`` imports as an absolute name, relative imports resolved against
    ``package`` (the importing module's package, as a list of names)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            # ``from runlog import api`` and ``from .. import api`` name the module in the alias.
            found += [(node.lineno, module)] + [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def api_imports_below_api() -> list[str]:
    return [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for folder in BELOW_API
        for path in sorted((ROOT / folder).rglob("*.py"))
        for line, module in _imports(path.read_text(), ["runlog", *path.parent.relative_to(ROOT).parts])
        if module == "runlog.api" or module.startswith("runlog.api.")
    ]


def test_no_layer_below_the_api_imports_it() -> None:
    assert api_imports_below_api() == []


def test_the_layering_check_resolves_relative_and_absolute_imports() -> None:
    """What the check above looks for, written each way a module could import the API."""
    source = "from ..api import keys\nimport runlog.api.http\nfrom runlog import api\nfrom . import executor\n"
    names = {module for _line, module in _imports(source, ["runlog", "commands"])}
    assert {"runlog.api.keys", "runlog.api.http", "runlog.api", "runlog.commands.executor"} <= names


def test_every_file_the_pages_read_is_package_data() -> None:
    """runlog's pages (api/pages) read their templates and static files from the installed
    package: a file no package-data pattern names would be missing from a wheel."""
    patterns = _pyproject()["tool"]["setuptools"]["package-data"]["runlog.api.pages"]
    folder = ROOT / "api" / "pages"
    files = [p.relative_to(folder).as_posix() for sub in ("templates", "static") for p in (folder / sub).rglob("*")
             if p.is_file()]
    assert files and [f for f in files if not any(fnmatch.fnmatch(f, pattern) for pattern in patterns)] == []
