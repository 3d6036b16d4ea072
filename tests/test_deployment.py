"""The deployment files: docker-compose.yml, Procfile and the Dockerfile.

No Docker engine runs where these tests run, so they check what can be checked without one:
the compose file against the Compose specification's JSON schema, every command of every
process against the CLI, and that what the Dockerfile copies installs a working package.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import click
import jsonschema
import pytest
import yaml

from producers.cli import cli
from sandbox.server import client_settings
from worker.ledger.db import dispose_all
from worker.ledger.migrate import current, head

ROOT = Path(__file__).resolve().parents[1]
# The Compose Specification's JSON schema as docker-compose 1.29.2 ships it (the PyPI wheel,
# compose/config/compose_spec.json, Apache-2.0), unchanged: written for JSON Schema 2019-09.
COMPOSE_SCHEMA = Path(__file__).with_name("compose-spec.json")
REQUIRED = re.compile(r"\$\{(?P<name>\w+):\?[^}]+\}")


def compose() -> dict[str, Any]:
    """docker-compose.yml as Compose reads it (YAML anchors and merge keys resolved)."""
    return dict(yaml.safe_load((ROOT / "docker-compose.yml").read_text()))


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions, as (INSTRUCTION, arguments)."""
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    instructions = [line.split(None, 1) for line in lines if line and not line.startswith("#")]
    return [(word.upper(), rest) for word, rest in instructions]


def entrypoint() -> list[str]:
    [arguments] = [rest for word, rest in dockerfile() if word == "ENTRYPOINT"]
    return list(json.loads(arguments))


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    entries = [line.split(":", 1) for line in lines if line and not line.startswith("#")]
    return {name.strip(): command.strip() for name, command in entries}


def test_the_compose_file_follows_the_compose_specification() -> None:
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    jsonschema.Draft201909Validator.check_schema(schema)
    validator = jsonschema.Draft201909Validator(schema)

    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(compose())
    ]

    assert errors == []
    # The schema is strict: a misspelt key would not pass.
    misspelt = compose()
    misspelt["services"]["worker"]["comand"] = misspelt["services"]["worker"].pop("command")
    assert not validator.is_valid(misspelt)


def _process_commands() -> list[tuple[str, list[str]]]:
    """Every command line a deployment file runs: (where, argv)."""
    found = [(f"Procfile {name}", shlex.split(line)) for name, line in procfile().items()]
    for name, service in compose()["services"].items():
        if "build" in service:  # the services made from this project's image
            argv = service.get("entrypoint", entrypoint()) + service.get("command", [])
            found.append((f"docker-compose.yml {name}", argv))
    return found


def _flower_options(arguments: tuple[str, ...]) -> list[str]:
    """The arguments Flower would not take (it takes --name=value of its own options)."""
    from flower.options import default_options

    def known(argument: str) -> bool:
        name, equals, _ = argument.partition("=")
        option = name.removeprefix("--").replace("-", "_")
        return name.startswith("--") and bool(equals) and hasattr(default_options, option)

    return [argument for argument in arguments if not known(argument)]


@pytest.mark.parametrize(
    ("where", "argv"), [pytest.param(*found, id=found[0]) for found in _process_commands()]
)
def test_every_process_runs_a_real_cli_command(where: str, argv: list[str]) -> None:
    assert argv[0] == "mailup-jobs", where
    # Walk the click tree as `mailup-jobs ARGV` would, parsing each command's options.
    command: click.Command = cli
    context = click.Context(cli, info_name="mailup-jobs")
    words = argv[1:]
    while isinstance(command, click.Group):
        assert words, f"{where}: {shlex.join(argv)} names no command"
        name, *words = words
        found = command.get_command(context, name)
        assert found is not None, f"{where}: no command {name!r} in {shlex.join(argv)}"
        command = found
        context = click.Context(command, info_name=name, parent=context)
    try:
        parsed = command.make_context(str(context.info_name), list(words), parent=context.parent)
    except click.UsageError as exc:
        pytest.fail(f"{where}: {shlex.join(argv)}: {exc.format_message()}")

    # What a command hands on untouched must be the other program's own options.
    for param in command.params:
        handed_on = parsed.params[str(param.name)]
        if isinstance(param.type, click.types.UnprocessedParamType) and handed_on:
            # Only Flower's are checked so far: another program's would need a check here.
            assert command.name == "flower", f"{where}: {handed_on} handed on, unchecked"
            assert _flower_options(handed_on) == [], f"{where}: not Flower options"


def test_flower_has_a_login_and_no_password_in_the_files() -> None:
    text = (ROOT / "docker-compose.yml").read_text() + (ROOT / "Procfile").read_text()
    flower = compose()["services"]["flower"]

    login = REQUIRED.fullmatch(flower["environment"]["MAILUP_JOBS_FLOWER_AUTH"])
    assert login and login["name"] == "MAILUP_JOBS_FLOWER_AUTH"  # Compose refuses without it
    for service in compose()["services"].values():
        key = service.get("environment", {}).get("MAILUP_JOBS_SECRET_KEY")
        assert key is None or REQUIRED.fullmatch(key)
    assert not re.search(r"basic.auth", text, re.IGNORECASE)
    assert "oauth2_secret" not in text.lower()
    assert "MAILUP_JOBS_FLOWER_AUTH" in (ROOT / ".env.example").read_text()


def test_the_compose_processes_start_in_order_and_workers_scale() -> None:
    services = compose()["services"]
    worker, beat, migrate = services["worker"], services["beat"], services["migrate"]

    # Workers scale with `--scale worker=N`: no fixed name, host port or hostname.
    assert not {"container_name", "ports", "hostname"} & set(worker)
    # migrate runs once, after PostgreSQL answers; workers and beat after it succeeded.
    assert migrate["command"] == ["migrate"] and migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "healthcheck" in services["postgres"]
    for process in (worker, beat):
        assert process["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert process["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "deploy" not in beat and "replicas" not in str(beat)  # exactly one beat
    assert "healthcheck" in services["redis"]
    # MailUp is the sandbox service, at the routes it serves.
    sandbox_urls = client_settings("http://sandbox:8025")
    for name in ("MAILUP_SMS_URL", "MAILUP_SEND_URL", "MAILUP_CONSOLE_URL", "MAILUP_TOKEN_URL"):
        assert worker["environment"][name] == sandbox_urls[name]
    assert services["sandbox"]["command"][-1] == "8025"


def _copy_like_docker(into: Path) -> Path:
    """Copy what the Dockerfile's COPY instructions copy; the WORKDIR they copied into."""
    workdir = into
    for word, rest in dockerfile():
        if word == "WORKDIR":
            workdir = into / rest.strip().lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif word == "COPY":
            *sources, destination = shlex.split(rest)
            target = workdir / destination
            for source in sources:
                path = ROOT / source
                if path.is_dir():  # Docker copies a directory's contents
                    # .dockerignore leaves __pycache__ out, as a clean checkout has none
                    ignore = shutil.ignore_patterns("__pycache__")
                    shutil.copytree(path, target, dirs_exist_ok=True, ignore=ignore)
                elif destination.endswith("/"):
                    target.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, target / path.name)
                else:
                    shutil.copy2(path, target)
    return workdir


def test_the_images_files_install_a_working_package(tmp_path: Path) -> None:
    # Given exactly what the Dockerfile copies, installed the way it installs it
    [install] = [rest for word, rest in dockerfile() if word == "RUN" and "pip install" in rest]
    workdir = _copy_like_docker(tmp_path / "image")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    # The dependencies are this environment's (no download); a path in a .pth file adds them
    # without the editable install of this checkout, whose own .pth is not read from there.
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(purelib, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    target = shlex.split(install)[-1]
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet"]
    subprocess.run(
        [*pip, "--no-deps", "--no-build-isolation", "--no-index", target],
        cwd=workdir,
        check=True,
        timeout=300,
    )
    elsewhere = tmp_path / "elsewhere"  # not the checkout, not the copy
    elsewhere.mkdir()
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("MAILUP_", "PYTHON"))}
    environment["HOME"] = str(elsewhere)

    def run(*args: str, **settings: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(venv / "bin" / args[0]), *args[1:]],
            env={**environment, **settings},
            cwd=elsewhere,
            capture_output=True,
            text=True,
            timeout=120,
        )

    # Then the package is the installed copy, its command answers, and migrate finds its
    # migrations (package data) on a fresh SQLite ledger
    where = run(
        "python", "-c", "import migrations, worker; print(worker.__file__, migrations.__file__)"
    )
    assert where.returncode == 0, where.stderr
    assert all(Path(path).is_relative_to(venv) for path in where.stdout.split()), where.stdout
    helped = run("mailup-jobs", "--help")
    assert helped.returncode == 0, helped.stderr
    for command in ("migrate", "worker", "beat", "flower", "sandbox"):
        assert re.search(rf"^\s+{command}\s", helped.stdout, re.MULTILINE), command
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    migrated = run("mailup-jobs", "migrate", MAILUP_JOBS_DATABASE_URL=ledger)
    assert migrated.returncode == 0, migrated.stderr
    expected = head()
    assert expected is not None
    assert current(ledger) == expected
    dispose_all()
