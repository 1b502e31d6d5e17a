"""The service's package and image leave the Corti sandbox out."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from setuptools import find_packages  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parent.parent


def test_the_service_distribution_has_no_sandbox() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    find = config["tool"]["setuptools"]["packages"]["find"]
    packages = find_packages(
        str(ROOT), include=find.get("include", ["*"]), exclude=find.get("exclude", ())
    )
    assert "service" in packages
    assert all(p == "service" or p.startswith("service.") for p in packages)
    # The sandbox is a distribution of its own, with only its package.
    sandbox = tomllib.loads((ROOT / "sandbox" / "pyproject.toml").read_text())
    assert sandbox["project"]["name"] != config["project"]["name"]
    assert find_packages(str(ROOT / "sandbox")) == ["corti_sandbox"]


def test_the_image_copies_no_sandbox() -> None:
    sources = []
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        words = line.split()
        if words and words[0] == "COPY":
            sources += [w for w in words[1:-1] if not w.startswith("--")]
    assert sources, "no COPY line found"
    assert set(sources) <= {"pyproject.toml", "README.md", "service", "alembic"}


def test_the_service_never_imports_the_sandbox_statically() -> None:
    for path in (ROOT / "service").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(n.split(".")[0] == "corti_sandbox" for n in names), path
