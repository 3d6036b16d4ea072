"""The hostile-input tests again on each other Python the project supports (``make test``
runs this after the suite): the standard library's address and header parsing changes between
versions, and the refusals must not.

Each version found here (on PATH, or installed by pyenv) gets a virtualenv of its own,
``.venv-<version>``, made once and remade when pyproject.toml changes. A version not found is
skipped on a laptop and fails in CI (``CI=true``), as a service that does not answer does.

    .venv/bin/python -m tests.other_pythons [3.12 3.13]
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent
VERSIONS = ["3.12", "3.13"]
TESTS = ["tests/test_hostile_input.py", "tests/test_output_safety.py"]
# What those tests import beyond the project itself (its Flask and Django extras included).
TEST_REQUIREMENTS = ["pytest>=8,<10", "pytest-timeout>=2.3", "psutil>=5.9"]


def interpreter(version: str) -> str | None:
    """A ``python<version>`` that runs: on PATH first, then pyenv's."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = [f"python{version}"]
    candidates += sorted(str(p) for p in pyenv.glob(f"versions/{version}.*/bin/python{version}"))
    for candidate in candidates:
        try:
            subprocess.run([candidate, "-c", ""], check=True, capture_output=True)
        except (OSError, subprocess.CalledProcessError):
            continue
        return candidate
    return None


def virtualenv(version: str, python: str) -> Path:
    """``.venv-<version>`` with the project installed, remade when pyproject.toml changed."""
    venv = ROOT / f".venv-{version}"
    stamp = venv / "installed"
    if stamp.exists() and stamp.stat().st_mtime >= (ROOT / "pyproject.toml").stat().st_mtime:
        return venv
    subprocess.run([python, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--editable", f"{ROOT}[flask,django]", *TEST_REQUIREMENTS], check=True)
    stamp.touch()
    return venv


def main(versions: list[str]) -> int:
    failed: list[str] = []
    for version in versions:
        python = interpreter(version)
        if python is None:
            print(f"Python {version} not found here: its hostile-input tests did not run")
            if os.environ.get("CI"):
                failed.append(version)
            continue
        venv = virtualenv(version, python)
        print(f"hostile-input tests on Python {version} ({python})", flush=True)
        done = subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pytest", "-q", *TESTS], cwd=ROOT
        )
        if done.returncode != 0:
            failed.append(version)
    if failed:
        print(f"failed on Python {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or VERSIONS))
