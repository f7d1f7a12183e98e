"""The Dockerfile and its lock file: cached dependency layer, exact versions, no root.

``requirements.lock`` (``make lock``, uv) pins every runtime dependency and the build
backend with hashes; the image installs it before copying any source, so a code change
rebuilds only the last layers, and a rebuild months later gets the same versions. The lock
must stay consistent with pyproject.toml: every requirement satisfied by its pin, every
package the requirements pull in present.
"""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
LOCK_TEXT = (ROOT / "requirements.lock").read_text()
DOCKERFILE = (ROOT / "Dockerfile").read_text()
# the image: CPython 3.11 on Linux
IMAGE_ENV = {
    **default_environment(),
    "python_version": "3.11",
    "python_full_version": "3.11.9",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "os_name": "posix",
    "extra": "",
}


def _lock() -> dict[str, Version]:
    """name -> pinned version for the image's platform (markers evaluated)."""
    pins: dict[str, Version] = {}
    for line in LOCK_TEXT.splitlines():
        if not line or line[0] in " #-":
            continue
        requirement = Requirement(line.rstrip(" \\"))
        if requirement.marker is not None and not requirement.marker.evaluate(IMAGE_ENV):
            continue
        (spec,) = requirement.specifier
        assert spec.operator == "==", line
        pins[canonicalize_name(requirement.name)] = Version(spec.version)
    return pins


LOCK = _lock()


def _runtime_requirements() -> list[Requirement]:
    listed = [*PYPROJECT["project"]["dependencies"], *PYPROJECT["build-system"]["requires"]]
    return [Requirement(text) for text in listed]


def test_lock_was_made_by_make_lock_with_hashes() -> None:
    assert "#    make lock" in LOCK_TEXT
    hashed = r"^[a-z0-9][^\n]*==[^\n]*\\\n((?:    --hash=sha256:[0-9a-f]{64}[^\n]*\n)+)"
    entries = re.findall(hashed, LOCK_TEXT, re.MULTILINE)
    pinned_lines = [line for line in LOCK_TEXT.splitlines() if line and line[0] not in " #-"]
    assert len(entries) == len(pinned_lines) > 30


@pytest.mark.parametrize("requirement", _runtime_requirements(), ids=str)
def test_every_requirement_is_pinned_within_its_range(requirement: Requirement) -> None:
    if requirement.marker is not None and not requirement.marker.evaluate(IMAGE_ENV):
        return
    name = canonicalize_name(requirement.name)
    assert name in LOCK, f"{requirement} is not in requirements.lock: run `make lock`"
    assert requirement.specifier.contains(LOCK[name], prereleases=True), (
        f"requirements.lock pins {name}=={LOCK[name]}, outside {requirement}: run `make lock`"
    )


def test_lock_holds_every_package_the_requirements_pull_in() -> None:
    """Walk the installed dependency tree from pyproject's runtime requirements."""
    seen: set[str] = set()
    todo = [r for r in _runtime_requirements() if r.marker is None or r.marker.evaluate()]
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = distribution(name)
        except PackageNotFoundError:  # build-only packages need not be installed here
            continue
        for text in dist.requires or []:
            child = Requirement(text)
            env = {**IMAGE_ENV, "extra": ""}
            extras = requirement.extras or {""}
            if child.marker is None or any(
                child.marker.evaluate({**env, "extra": extra}) for extra in extras
            ):
                todo.append(child)
    missing = sorted(seen - set(LOCK))
    assert not missing, f"in the dependency tree but not in requirements.lock: {missing}"


def test_dependencies_are_installed_before_the_code_is_copied() -> None:
    lines = [line.strip() for line in DOCKERFILE.splitlines()]
    lock_install = next(
        i for i, line in enumerate(lines) if "--require-hashes -r requirements.lock" in line
    )
    code = re.compile(r"COPY (pyproject\.toml|pipeline|agents)")
    first_copy_of_code = min(i for i, line in enumerate(lines) if code.match(line))
    assert lines.index("COPY requirements.lock ./") < lock_install < first_copy_of_code
    project_install = next(i for i, line in enumerate(lines) if "pip install --no-deps" in line)
    assert project_install > first_copy_of_code  # and resolves nothing again
    for package in ("pipeline", "agents", "schemas"):
        assert f"COPY {package} ./{package}" in lines


def test_runs_unprivileged_with_a_writable_data_dir() -> None:
    assert re.search(r"^FROM python:3\.11-slim", DOCKERFILE, re.MULTILINE)
    users = re.findall(r"^USER (\S+)", DOCKERFILE, re.MULTILINE)
    assert users and users[-1] not in {"root", "0"}
    assert "RECLOOP_DATA_DIR=/var/lib/recloop" in DOCKERFILE
    assert re.search(r"install -d -o recloop -g recloop [^\n]*/var/lib/recloop", DOCKERFILE)
    assert 'CMD ["recloop", "worker"]' in DOCKERFILE


def test_license_is_the_full_apache_2_text_pyproject_names() -> None:
    import hashlib

    text = (ROOT / "LICENSE").read_bytes()
    # the md5 of https://www.apache.org/licenses/LICENSE-2.0.txt, unmodified
    assert hashlib.md5(text).hexdigest() == "3b83ef96387f14655fc854ddc3c6bd57"  # noqa: S324
    assert PYPROJECT["project"]["license"] == {"text": "Apache-2.0"}
    assert "COPY pyproject.toml README.md LICENSE ./" in DOCKERFILE
