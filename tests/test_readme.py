"""README.md is executed (issue 19, item 3): its Python runs, its command lines exist.

Python: every ```python block runs (exec, tracebacks on README.md's own lines), each in a
fresh namespace, against the sandbox over HTTP, on the SQLite ledger and kombu's filesystem
broker. No worker runs: jobs are only queued. Besides what a block imports and defines it
may use only the application's data of ``application_data`` — ``rows`` read from a CSV and
the attachments' bytes read from files, each made in a tmp dir, and ``phones`` — so a
missing import, or a name only an earlier block defines, fails here naming the block. What
MailUp and the ledger must hold for a block is made first (``WORLDS``: for the campaign
block, groups 3 and 4 in list 1 and a confirmed trusted sender, read into the ledger by the
producers' reads). Each top-level expression's value is kept: every string one gives, and
``job_id`` and ``ids``, must be a queued job (or a scheduled campaign schedule) in the
ledger; an import's report must count its rows; no producer warning may be raised.

"From Flask and Django" runs in real minimal applications. The Flask block runs in a Flask
app with no MAILUP_* variable but the data dir (Flask-SQLAlchemy and the ledger on one
SQLite database, as the block has it); ``app``, ``DATABASE_URL``, ``REDIS_URL`` (the
filesystem broker: the ledger is SQLite) and ``Order`` (the application's model) are given,
and ``POST /orders`` must answer the queued job's id, the order committed. The Django block
is the ``MAILUP_JOBS`` of a settings module (default database: the ledger's) in a Django
process of its own, so that this one stays free of Django settings: it runs Django's checks
and queues an SMS inside ``transaction.atomic()``. In both, each ``NAME=…`` placeholder gets
the test's value of that setting, and the sandbox's address (port 8025) the test sandbox's.

Command lines: each line starting ``mailup-jobs `` in a ```sh block (continuation lines
joined; an "each also takes" comment adds its options to each command of its paragraph),
and each `mailup-jobs …` code span of the prose, is walked down the command tree with
``python -m producers.cli PATH --help``, cached per path. A top-level `` | `` separates
sibling commands (``list [--refresh] | show ID``); ``update|delete|clear`` names three (each
takes the options shown outside brackets). Each word the help lists as a subcommand must be
one, the line must end on a command, not a group, and each option it shows must be in that
command's help; ``flower`` hands the others to Flower, checked against Flower's options.
The benchmark lines' modules must take ``--help`` and the options shown, the ``make``
targets be in the Makefile, and the files the README names exist.
"""

from __future__ import annotations

import ast
import builtins
import csv
import functools
import os
import re
import subprocess
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from flask import Flask
from sqlalchemy.orm import Mapped, mapped_column

from producers.audit import get_job
from producers.campaigns import list_schedules
from producers.console import list_trusted_senders
from producers.lists import read_groups
from sandbox.server import Sandbox
from tests.conftest import Env
from worker.settings import get_settings, use_settings

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
APPS_SECTION = "From Flask and Django"
SANDBOX_IN_README = "http://127.0.0.1:8025"


@dataclass(frozen=True)
class Block:
    language: str
    line: int  # README.md's line of the block's first line of code
    section: str
    code: str

    @property
    def id(self) -> str:
        return f"line {self.line} ({self.section})"


def readme_blocks(language: str) -> list[Block]:
    text = README.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        if match[1] == language:
            before = text[: match.start()]
            sections = re.findall(r"^## (.+)$", before, re.MULTILINE)
            section = sections[-1] if sections else ""
            found.append(Block(language, before.count("\n") + 2, section, match[2]))
    return found


PYTHON = readme_blocks("python")
PLAIN = [block for block in PYTHON if block.section != APPS_SECTION]


def app_block(module: str) -> Block:
    [block] = [b for b in PYTHON if b.section == APPS_SECTION and module in b.code]
    return block


@pytest.fixture
def ledger_url(sqlite_ledger: str) -> str:
    """The SQLite ledger only: ``env`` then leaves the broker to its default, kombu's
    filesystem transport in the data dir."""
    return sqlite_ledger


@pytest.fixture(autouse=True)
def _settings_back_to_the_environment() -> Iterator[None]:
    yield
    use_settings(None)


# --- Python blocks -------------------------------------------------------------------------------


def free_names(code: str) -> set[str]:
    """The names a block uses but neither imports nor defines (builtins aside)."""
    bound: set[str] = set()
    loaded: set[str] = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    return loaded - bound - set(dir(builtins))


def run_block(code: str, line: int, namespace: dict[str, Any]) -> list[Any]:
    """Exec ``code`` (README.md's lines from ``line``) in ``namespace``; the values of its
    top-level expressions, in order."""
    tree = ast.parse(code)
    ast.increment_lineno(tree, line - 1)
    kept: list[Any] = []
    for statement in tree.body:
        if isinstance(statement, ast.Expr):  # x → _kept(x): the value is kept
            keep = ast.Call(ast.Name("_kept", ast.Load()), [statement.value], [])
            statement.value = ast.copy_location(keep, statement.value)
    ast.fix_missing_locations(tree)
    namespace["_kept"] = kept.append
    exec(compile(tree, str(README), "exec"), namespace)  # the README's own code
    return kept


@pytest.fixture
def application_data(tmp_path: Path) -> dict[str, Any]:
    """What the blocks take from the application: files made here, read as it would."""
    people = tmp_path / "people.csv"
    with people.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["Email", "Name", "City"])
        writer.writerow(["ada@example.com", "Ada", "London"])
        writer.writerow(["grace@example.com", "Grace", "Arlington"])
    (tmp_path / "invoice.pdf").write_bytes(
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\n%%EOF\n"
    )
    (tmp_path / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16)
    with people.open(newline="", encoding="utf-8") as rows:
        return {
            "rows": list(csv.DictReader(rows)),
            "pdf_bytes": (tmp_path / "invoice.pdf").read_bytes(),
            "logo_bytes": (tmp_path / "logo.png").read_bytes(),
            "phones": ["+393350000001", "+393350000002", "+393350000003"],
        }


def campaign_world(sandbox: Sandbox) -> None:
    """What the campaign block's prose assumes: list 1 has groups 3 and 4, news@example.com
    is a confirmed trusted sender, and the ledger knows both (a send is checked against what
    the ledger knows), read as the README says, through the producers' reads."""
    with sandbox.state.lock:
        made = [sandbox.state.add_group(1, name, "").id for name in ("Customers", "Staff")]
    assert made == [3, 4]
    sandbox.add_trusted_sender("news@example.com", status_code=1)
    read_groups(1)
    list_trusted_senders(refresh=True)


# What a block needs MailUp and the ledger to hold, by a module it imports.
WORLDS = {"producers.campaigns": campaign_world}


def assert_queued(job_id: Any, where: str) -> None:
    assert isinstance(job_id, str), f"{where}: {job_id!r} is no job id"
    found = get_job(job_id)
    assert found is not None, f"{where}: no job {job_id} in the ledger"
    assert found["status"] == "queued", f"{where}: job {job_id} is {found['status']}"


def assert_kept(value: str, where: str) -> None:
    """A string a block's call returned: a queued job's id, or a campaign schedule's."""
    schedules = {s["id"]: s["state"] for s in list_schedules()}
    if value in schedules:
        assert schedules[value] == "scheduled", f"{where}: schedule {value} is {schedules[value]}"
    else:
        assert_queued(value, where)


def test_the_readme_has_python_blocks() -> None:
    assert len(PLAIN) >= 5
    assert {b.section for b in PYTHON} >= {"Using it from Python", APPS_SECTION}


@pytest.mark.parametrize("block", PLAIN, ids=[b.id for b in PLAIN])
def test_each_python_block_runs(
    block: Block, env: Env, sandbox: Sandbox, application_data: dict[str, Any]
) -> None:
    needed = free_names(block.code)
    undefined = needed - set(application_data)
    assert not undefined, f"README {block.id} uses {sorted(undefined)}, defined nowhere"
    namespace = {name: application_data[name] for name in needed}
    for module, prepare in WORLDS.items():
        if f"from {module} import" in block.code:
            prepare(sandbox)

    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        kept = run_block(block.code, block.line, namespace)

    where = f"README {block.id}"
    ours = [str(w.message) for w in warned if w.category.__module__.startswith("producers")]
    assert ours == [], f"{where} warns"  # the block's calls are as the README means them
    for value in kept:  # each call's job id (or schedule id)
        if isinstance(value, str):
            assert_kept(value, where)
    if "job_id" in namespace:
        assert_queued(namespace["job_id"], where)
    if "ids" in namespace:
        assert len(namespace["ids"]) == len(application_data["phones"]), where
        for job_id in namespace["ids"]:
            assert_queued(job_id, where)
    if "report" in namespace:
        report = namespace["report"]
        assert (report.rows_queued, report.rejected) == (len(application_data["rows"]), [])
        assert kept[-1] == (report.import_id, report.rows_queued, report.rejected)
    gave = [v for v in kept if isinstance(v, str)] + [namespace.get(n) for n in ("job_id", "ids")]
    assert any(gave), f"{where} queued nothing"


# --- Flask and Django ----------------------------------------------------------------------------


def filled(code: str, values: dict[str, str], sandbox: Sandbox) -> str:
    """The block with each ``NAME=…`` (or ``"KEY": …``) given the test's value of that
    setting, and the sandbox's address the test sandbox's."""

    def value(match: re.Match[str]) -> str:
        key = match[2]  # MAILUP_JOBS_SECRET_KEY in Flask, SECRET_KEY in Django
        names = [n for n in (key, f"MAILUP_JOBS_{key}", f"MAILUP_{key}") if n in values]
        assert names, f"no value for {key}=… in the test's settings"
        return f"{match[1]}{values[names[0]]!r}"

    code = re.sub(r'("?(\w+)"?(?:=|: ))…', value, code)
    assert SANDBOX_IN_README in code
    code = code.replace(SANDBOX_IN_README, sandbox.url)
    try:
        ast.parse(code)
    except SyntaxError as exc:  # a placeholder left (a comment may hold one), or worse
        pytest.fail(f"README's block, placeholders filled, is no Python: {exc}\n{code}")
    return code


def test_the_flask_block_runs_in_a_flask_app(env: Env, sandbox: Sandbox) -> None:
    block = app_block("producers.flask")
    ledger = env.values["MAILUP_JOBS_DATABASE_URL"]
    code = filled(block.code, env.values, sandbox)
    for name in list(os.environ):  # the block's app.config holds them (the data dir aside)
        if name.startswith("MAILUP_") and name != "MAILUP_JOBS_DATA_DIR":
            env.monkeypatch.delenv(name)
    get_settings.cache_clear()
    app = Flask("readme")
    given = {"app": app, "DATABASE_URL": ledger, "REDIS_URL": "filesystem://"}
    assert free_names(code) == {*given, "Order"}, block.id
    namespace = dict(given)

    run_block(code, block.line, namespace)

    db: Any = namespace["db"]

    class Order(db.Model):  # type: ignore[misc]
        """The application's own rows: ``Order(...)`` in the block."""

        __tablename__ = "readme_orders"
        id: Mapped[int] = mapped_column(primary_key=True)

        def __init__(self, *details: Any) -> None:
            super().__init__()

    namespace["Order"] = Order  # the view looks it up when it runs
    with app.app_context():
        db.create_all()
    answer = app.test_client().post("/orders")
    assert answer.status_code in (200, 201), answer.get_data(as_text=True)

    assert_queued(answer.get_json()["job_id"], f"README {block.id}")
    engine = sqlalchemy.create_engine(ledger, poolclass=sqlalchemy.pool.NullPool)
    with engine.connect() as connection:
        orders = connection.execute(sqlalchemy.text("SELECT count(*) FROM readme_orders"))
        assert orders.scalar() == 1  # committed with the job


DJANGO_RUN = """
import django
from django.core.management import call_command
from django.db import transaction

django.setup()
call_command("check", fail_level="ERROR")
from producers import send_sms

with transaction.atomic():
    job_id = send_sms(list_id=1, recipient="+393350000001", content="Thanks!")
print(job_id)
"""


def test_the_django_block_is_a_django_projects_settings(
    env: Env, sandbox: Sandbox, tmp_path: Path
) -> None:
    block = app_block("MAILUP_JOBS = {")
    ledger = env.values["MAILUP_JOBS_DATABASE_URL"]
    code = filled(block.code, env.values, sandbox)
    assert free_names(code) == {"DATABASE_URL", "REDIS_URL"}, block.id
    site = tmp_path / "site"
    site.mkdir()
    (site / "readme_settings.py").write_text(
        f"DATABASE_URL = {ledger!r}\n"
        'REDIS_URL = "filesystem://"\n'
        'SECRET_KEY = "only-for-the-test"\n'
        "USE_TZ = True\n"
        'INSTALLED_APPS = ["producers.django"]\n'
        "DATABASES = {'default': {'ENGINE': 'django.db.backends.sqlite3', "
        f"'NAME': {ledger.removeprefix('sqlite:///')!r}}}}}\n"
        f"# README.md, line {block.line}:\n{code}",
        encoding="utf-8",
    )
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MAILUP_")}
    environment |= {
        "MAILUP_JOBS_DATA_DIR": env.values["MAILUP_JOBS_DATA_DIR"],
        "DJANGO_SETTINGS_MODULE": "readme_settings",
        "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]),
    }

    done = subprocess.run(
        [sys.executable, "-c", DJANGO_RUN],
        env=environment,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    assert_queued(done.stdout.strip().splitlines()[-1], f"README {block.id}")


# --- Command lines -------------------------------------------------------------------------------


@functools.cache
def cli_help(path: tuple[str, ...]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "producers.cli", *path, "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, f"mailup-jobs {' '.join(path)} --help: {done.stderr}"
    return done.stdout


def subcommands(help_text: str) -> set[str]:
    """The commands a group's help lists (none: it is a command)."""
    _, listed, rest = help_text.partition("\nCommands:\n")
    return set(re.findall(r"^  (\S+)", rest, re.MULTILINE)) if listed else set()


def split_top(text: str, separator: str) -> list[str]:
    """``text`` split at each ``separator`` outside brackets and parentheses."""
    parts, depth, start = [], 0, 0
    for at, char in enumerate(text):
        depth += (char in "([{") - (char in ")]}")
        if depth == 0 and text.startswith(separator, at):
            parts.append(text[start:at])
            start = at + len(separator)
    return [*parts, text[start:]]


@dataclass(frozen=True)
class CliLine:
    line: int
    text: str  # after "mailup-jobs ", continuation lines joined, comments dropped
    also: str = ""  # options an "each also takes" comment adds


def cli_lines() -> list[CliLine]:
    found: list[CliLine] = []
    for block in readme_blocks("sh"):
        paragraph: list[CliLine] = []
        for number, raw in enumerate(block.code.splitlines(), block.line):
            text, _, comment = raw.partition(" #")
            if raw.strip().startswith("#"):
                text, comment = "", raw.strip().removeprefix("#")
            if not raw.strip():
                paragraph = []
            elif raw.startswith("mailup-jobs "):
                paragraph.append(CliLine(number, text.removeprefix("mailup-jobs ").strip()))
                found.append(paragraph[-1])
            elif raw.startswith(" ") and paragraph:
                last = paragraph[-1]
                if text.strip():
                    joined = CliLine(last.line, f"{last.text} {text.strip()}", last.also)
                    found[found.index(last)] = paragraph[-1] = joined
                if comment.strip().startswith("each also takes"):
                    for at, each in enumerate(paragraph):
                        extended = CliLine(each.line, each.text, comment)
                        found[found.index(each)] = paragraph[at] = extended
            else:
                paragraph = []
    return found


def cli_spans() -> list[CliLine]:
    """The prose's `mailup-jobs …` code spans (some span a line break)."""
    text = README.read_text(encoding="utf-8")
    prose = FENCE.sub(lambda fenced: "\n" * fenced[0].count("\n"), text)
    return [
        CliLine(prose.count("\n", 0, span.start()) + 1, " ".join(span[1].split()))
        for span in re.finditer(r"`mailup-jobs ([^`]+)`", prose)
    ]


CLI_LINES = cli_lines() + cli_spans()
OPTION = re.compile(r"(?<![\w-])(--?[a-zA-Z][\w-]*)")


def flower_takes(option: str) -> bool:
    from flower.options import default_options  # type: ignore[import-untyped]

    return option.startswith("--") and hasattr(default_options, option[2:].replace("-", "_"))


def check_command(words: list[str], parent: tuple[str, ...], where: str) -> list[tuple[str, ...]]:
    """Walk ``words`` down from the group ``parent``: the command paths they name, the
    first one's first (``update|delete|clear`` names three)."""
    path, others = parent, []
    while words and (choices := subcommands(cli_help(path))):
        names = words[0].split("|")
        unknown = [name for name in names if name not in choices]
        assert not unknown, f"{where}: no command {unknown} in mailup-jobs {' '.join(path)}"
        for name in names[1:]:
            others += check_command([name, *words[1:]], path, where)
        path, words = (*path, names[0]), words[1:]
    assert not subcommands(cli_help(path)), f"{where}: mailup-jobs {' '.join(path)} is a group"
    return [path, *others]


def check_options(path: tuple[str, ...], text: str, where: str) -> None:
    help_text = cli_help(path)
    for option in OPTION.findall(text):
        shown = re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", help_text)
        handed_on = path == ("flower",) and flower_takes(option)
        assert shown or handed_on, f"{where}: mailup-jobs {' '.join(path)} has no {option}"


def test_the_readme_shows_command_lines() -> None:
    assert len(CLI_LINES) >= 60
    assert sum(bool(c.also) for c in CLI_LINES) == 4  # the ledger audits' shared options


@pytest.mark.parametrize("command", CLI_LINES, ids=[f"line {c.line}" for c in CLI_LINES])
def test_each_command_line_names_real_commands_and_options(command: CliLine) -> None:
    where = f"README.md line {command.line}: mailup-jobs {command.text}"
    parent: tuple[str, ...] = ()
    for at, alternative in enumerate(split_top(command.text, " | ")):
        # the first names its path; the others are its siblings (`add EMAIL | disable EMAIL`)
        path, *others = check_command(alternative.split(), parent, where)
        parent = path[:-1] if at == 0 else parent
        check_options(path, f"{alternative} {command.also}", where)
        required = re.sub(r"\[[^][]*\]", "", alternative)  # [--name X]: update's, say
        for other in others:  # update|delete|clear: each takes what is not in brackets
            check_options(other, required, where)


BENCH_LINES = [
    CliLine(number, line.removeprefix(".venv/bin/python -m "))
    for block in readme_blocks("sh")
    for number, line in enumerate(block.code.splitlines(), block.line)
    if line.startswith(".venv/bin/python -m ")
]


@pytest.mark.parametrize("command", BENCH_LINES, ids=[f"line {c.line}" for c in BENCH_LINES])
def test_each_benchmark_line_names_a_module_and_its_options(command: CliLine) -> None:
    module = command.text.split()[0]
    done = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, f"README.md line {command.line}: {done.stderr}"
    for option in OPTION.findall(command.text):
        assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", done.stdout), option


def test_the_make_targets_and_files_it_names_exist() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = [
        line.split()[1]
        for block in readme_blocks("sh")
        for line in block.code.splitlines()
        if line.startswith("make ")
    ]
    assert targets == ["demo", "test"]
    for target in targets:
        assert re.search(rf"^{re.escape(target)}:", makefile, re.MULTILINE), target
    text = README.read_text(encoding="utf-8")
    named = re.findall(r"`(?:pytest )?((?:tests|\.ci|docs)/[\w./-]+)", text)
    named += re.findall(r"`(docker-compose\.yml|Procfile|Dockerfile|\.env\.example)`", text)
    assert len(named) >= 8
    for path in named:
        assert (ROOT / path).exists(), f"README.md names {path}: there is none"
