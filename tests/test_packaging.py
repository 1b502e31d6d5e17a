"""The service's package and image leave the Corti sandbox out."""

from __future__ import annotations

import ast
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version
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


def _dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions: (KEYWORD, arguments), continuations joined."""
    instructions, pending = [], ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).strip().partition(" ")
        instructions.append((keyword.upper(), " ".join(arguments.split())))
        pending = ""
    return instructions


def _copy_sources() -> list[str]:
    sources = []
    for keyword, arguments in _dockerfile():
        if keyword == "COPY":
            words = arguments.split()
            sources += [w for w in words[:-1] if not w.startswith("--")]
    return sources


def test_the_image_copies_no_sandbox() -> None:
    # The service's code is service/ and alembic/; the rest is what pip needs to
    # install it (no tests/, bench/, sandbox/, frontend/ or tools/).
    sources = _copy_sources()
    assert sources, "no COPY line found"
    assert set(sources) == {
        "pyproject.toml",
        "README.md",
        "service",
        "alembic",
        "requirements/service.lock",
    }


def test_the_build_context_is_what_the_image_copies() -> None:
    # .dockerignore excludes everything, then lets in exactly the COPY sources: no
    # .git, .venv, node_modules or local databases are sent to the daemon.
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == set(_copy_sources())


def test_the_image_installs_the_lock_with_hashes() -> None:
    runs = [arguments for keyword, arguments in _dockerfile() if keyword == "RUN"]
    installs = [run for run in runs if "pip install" in run]
    locked = [run for run in installs if "-r requirements/service.lock" in run]
    assert len(locked) == 1, installs
    assert "--require-hashes" in locked[0]
    # The service itself comes after, resolving nothing anew.
    (service,) = [run for run in installs if run not in locked]
    assert "--no-deps" in service
    assert "pip check" in service


def test_the_image_runs_as_a_non_root_user() -> None:
    instructions = _dockerfile()
    users = [i for i, (keyword, _) in enumerate(instructions) if keyword == "USER"]
    assert users, "no USER line: the image would run as root"
    user = instructions[users[-1]][1]
    assert user.split(":")[0] not in ("root", "0")
    # Created in the image, and in force for the command it runs.
    assert any(
        keyword == "RUN" and "useradd" in arguments and user in arguments.split()
        for keyword, arguments in instructions
    )
    (cmd,) = [i for i, (keyword, _) in enumerate(instructions) if keyword == "CMD"]
    assert users[-1] < cmd


def test_the_service_never_imports_the_sandbox_statically() -> None:
    for path in (ROOT / "service").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(n.split(".")[0] == "corti_sandbox" for n in names), path


# The lock files (scripts/lock writes them; scripts/_env.sh and the Dockerfile install
# from them) against the ranges of the pyproject.toml files.
LOCK_STALE = (
    "requirements/{lock} does not match {source}: {problem}. "
    "Regenerate the locks with: scripts/lock"
)


def _locked(lock: str) -> dict[str, list[tuple[Version, str | None]]]:
    """Name -> the pinned versions (with their markers) of one lock file."""
    pins: dict[str, list[tuple[Version, str | None]]] = {}
    for line in (ROOT / "requirements" / lock).read_text().splitlines():
        if not line or line[0] in " #":
            continue
        requirement = Requirement(line.rstrip("\\ "))
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", line
        marker = str(requirement.marker) if requirement.marker else None
        pins.setdefault(canonicalize_name(requirement.name), []).append(
            (Version(specifier.version), marker)
        )
    return pins


def _declared() -> dict[str, list[tuple[str, list[str]]]]:
    """Lock name -> (where, requirements) that the lock must satisfy."""
    service = tomllib.loads((ROOT / "pyproject.toml").read_text())
    sandbox = tomllib.loads((ROOT / "sandbox" / "pyproject.toml").read_text())
    extras = service["project"]["optional-dependencies"]
    build = [
        line.strip()
        for line in (ROOT / "requirements" / "build.in").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    runtime = (
        "pyproject.toml [project] dependencies",
        service["project"]["dependencies"],
    )
    builds = ("requirements/build.in", build)
    return {
        "service.lock": [runtime, builds],
        "dev.lock": [
            runtime,
            builds,
            ("pyproject.toml [dev]", extras["dev"]),
            ("pyproject.toml [bench]", extras["bench"]),
            ("sandbox/pyproject.toml", sandbox["project"]["dependencies"]),
        ],
    }


def _extra_requirements(name: str, extras: set[str]) -> list[Requirement]:
    """What `name[extras]` adds here, from the installed distribution's metadata."""
    added = []
    for text in metadata.requires(name) or []:
        requirement = Requirement(text)
        marker = requirement.marker
        if (
            marker
            and any(marker.evaluate({"extra": extra}) for extra in extras)
            and not marker.evaluate({"extra": ""})
        ):
            added.append(requirement)
    return added


@pytest.mark.parametrize("lock", ["service.lock", "dev.lock"])
def test_the_lock_covers_every_declared_dependency(lock: str) -> None:
    pins = _locked(lock)
    for source, requirements in _declared()[lock]:
        for text in requirements:
            requirement = Requirement(text)
            name = canonicalize_name(requirement.name)
            stale = LOCK_STALE.format(lock=lock, source=source, problem="{}")
            assert name in pins, stale.format(f"{requirement.name} is not locked")
            for version, marker in pins[name]:
                assert requirement.specifier.contains(version, prereleases=True), (
                    stale.format(f"{name}=={version} ({marker}) is outside {text!r}")
                )
            for added in _extra_requirements(name, set(requirement.extras)):
                assert canonicalize_name(added.name) in pins, stale.format(
                    f"{added.name} (from {text!r}) is not locked"
                )


def test_the_dev_lock_runs_what_the_image_runs() -> None:
    service, dev = _locked("service.lock"), _locked("dev.lock")
    for name, versions in service.items():
        assert name in dev, LOCK_STALE.format(
            lock="dev.lock", source="service.lock", problem=f"{name} is missing"
        )
        assert {v for v, _ in versions} <= {v for v, _ in dev[name]}, LOCK_STALE.format(
            lock="dev.lock", source="service.lock", problem=f"{name} differs"
        )


def test_the_build_backend_is_locked() -> None:
    build = (ROOT / "requirements" / "build.in").read_text()
    for pyproject in (ROOT / "pyproject.toml", ROOT / "sandbox" / "pyproject.toml"):
        for text in tomllib.loads(pyproject.read_text())["build-system"]["requires"]:
            assert text in build, LOCK_STALE.format(
                lock="build.in", source=pyproject.name, problem=f"{text} missing"
            )


def test_the_installed_environment_is_the_lock() -> None:
    # scripts/_env.sh installs dev.lock into the environment that runs the tests.
    for name, versions in _locked("dev.lock").items():
        applicable = [v for v, m in versions if m is None or Marker(m).evaluate()]
        if applicable:
            assert Version(metadata.version(name)) in applicable, (
                f"{name} {metadata.version(name)} is installed, the lock says "
                f"{applicable}: re-run scripts/_env.sh"
            )
