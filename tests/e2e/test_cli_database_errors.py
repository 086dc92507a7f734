"""A database that cannot be used is one sentence on every command, never a traceback;
the ``postgresql://`` form other tools take is accepted (issue 15)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mobipay.platform.config import normalise_database_url
from tests.conftest import free_port


def mobipay(url: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MOBIPAY_DATABASE_URL": url, "MOBIPAY_ENV": "test"}
    return subprocess.run([sys.executable, "-m", "mobipay.app.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def one_sentence(result: subprocess.CompletedProcess[str], *words: str) -> str:
    err = result.stderr.strip()
    assert result.returncode == 2, (result.returncode, result.stdout, err)
    assert "Traceback" not in err and "╭" not in err and len(err.splitlines()) == 1, err
    assert result.stdout.strip() == ""  # nothing said it was listening or working first
    for word in words:
        assert word in err, err
    return err


COMMANDS = [("db", "upgrade"), ("db", "current"), ("ledger", "verify"), ("serve", "--port", "0"), ("worker",),
            ("demo",), ("merchants", "list"), ("user", "show", "13800138000"), ("outbox", "status")]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c))
def test_a_closed_port_is_one_sentence_on_every_command(command: tuple[str, ...]) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/mobipay"
    one_sentence(mobipay(url, *command), "did not answer", "MOBIPAY_DATABASE_URL", "start it")


def test_an_unknown_host_a_bad_scheme_and_an_unwritable_file(tmp_path: Path) -> None:
    one_sentence(mobipay("postgresql://postgres@no-such-host.invalid/x", "ledger", "verify"), "is not known")
    one_sentence(mobipay("mysql://root@127.0.0.1/x", "db", "upgrade"), "MOBIPAY_DATABASE_URL",
                 "postgresql://user@host/database")
    blocked = tmp_path / "file"
    blocked.write_text("a file where a folder should be")
    one_sentence(mobipay(f"sqlite:///{blocked}/sub/x.db", "db", "upgrade"), "cannot be opened")


def test_serve_refuses_a_database_that_is_not_migrated(tmp_path: Path) -> None:
    one_sentence(mobipay(f"sqlite:///{tmp_path}/empty.db", "serve", "--port", str(free_port())),
                 "run mobipay db upgrade")


def test_the_forms_other_tools_take() -> None:
    assert normalise_database_url("postgresql://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert normalise_database_url("postgres://u:p@h:5433/db") == "postgresql+asyncpg://u:p@h:5433/db"
    assert normalise_database_url("sqlite:///var/x.db") == "sqlite+aiosqlite:///var/x.db"
    assert normalise_database_url("postgresql+asyncpg://u@h/db") == "postgresql+asyncpg://u@h/db"
    with pytest.raises(ValueError, match="not a database URL"):
        normalise_database_url("127.0.0.1:5432")


@pytest.mark.postgres
def test_a_missing_database_and_the_plain_postgresql_form(pg_url: str) -> None:
    server, name = pg_url.split("://", 1)[1].rsplit("/", 1)
    one_sentence(mobipay(f"postgresql://{server}/no_such_database_here", "ledger", "verify"),
                 "does not exist", "createdb")
    ok = mobipay(f"postgresql://{server}/{name}", "ledger", "verify")
    assert ok.returncode == 0 and "clean" in ok.stdout, ok.stderr


@pytest.mark.parametrize("command", [("lottery", "calendar"), ("user", "show", "13800138000")],
                         ids=lambda c: " ".join(c))
def test_an_empty_database_says_to_upgrade_it(tmp_path: Path, command: tuple[str, ...]) -> None:
    """Not a traceback of "no such table": the one thing to do."""
    one_sentence(mobipay(f"sqlite:///{tmp_path}/empty.db", *command), "mobipay db upgrade")


def test_an_audited_command_without_an_actor_is_refused(tmp_path: Path) -> None:
    """With neither --actor nor $USER the audit trail would name nobody: refused, nothing done."""
    env = {k: v for k, v in os.environ.items() if k != "USER"}
    env.update(MOBIPAY_DATABASE_URL=f"sqlite:///{tmp_path}/m.db", MOBIPAY_ENV="test")
    run = subprocess.run([sys.executable, "-m", "mobipay.app.cli", "user", "freeze", "13800138000", "--reason", "x"],
                         env=env, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 2 and "--actor NAME" in run.stderr and "Traceback" not in run.stderr, run.stderr
