"""`flights`: the operator's command line."""

from __future__ import annotations

import importlib
import logging
import os
import sys
from typing import ClassVar

import click
import psycopg

from pipelines import localdb, settings
from pipelines.warehouse.connection import connect, first_line
from pipelines.warehouse.migrations import MigrationError, migrate

# Errors that carry a message meant for the operator: printed as one line, exit status 1.
OPERATOR_ERRORS: tuple[type[Exception], ...] = (
    localdb.LocalDatabaseError,
    MigrationError,
    psycopg.Error,
    ValueError,
)


class _LazyCommands(click.Group):
    """Imports a command's module only when that command is asked for: `flights ingest` then
    never loads the gRPC server, nor `flights serve` Dagster."""

    LAZY: ClassVar[dict[str, str]] = {
        "ingest": "pipelines.cli.ingest:ingest",
        "clean": "pipelines.cli.clean:clean_command",
        "serve": "pipelines.cli.api:serve",
        "get": "pipelines.cli.api:get",
        "runs": "pipelines.cli.runs:runs_group",
        "accept": "pipelines.cli.review:accept_command",
        "reject": "pipelines.cli.review:reject_command",
        "quarantine": "pipelines.cli.review:quarantine_command",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.LAZY])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.LAZY:
            module, name = self.LAZY[cmd_name].split(":")
            command = getattr(importlib.import_module(module), name)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=_LazyCommands, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Historical Flight Data Aggregator: ADS-B drops to TimescaleDB, served over gRPC.

    Settings come from the environment (FLIGHTS_DATABASE_URL, FLIGHTS_LANDING_ROOT, ...), else
    the settings file (flights.toml in DAGSTER_HOME); `flights config` shows them all.
    """
    settings.load()  # an invalid setting stops every command here, before any work


@cli.group()
def db() -> None:
    """The embedded PostgreSQL + TimescaleDB server in .flights/ (idempotent)."""


def _print_status(state: localdb.LocalStatus) -> None:
    word = "running" if state.running else "stopped" if state.initialised else "not created"
    click.echo(f"database: {word}  data: {state.data_dir}")
    click.echo(f"url: {state.url}")


@db.command("up")
def db_up() -> None:
    """Start the local server, creating and building what is missing."""
    _print_status(localdb.up())


@db.command("down")
def db_down() -> None:
    """Stop the local server; data stays in .flights/."""
    _print_status(localdb.down())


@db.command("status")
def db_status() -> None:
    """Say whether the local server runs (exit status 3 when it does not)."""
    state = localdb.status()
    _print_status(state)
    if not state.running:
        sys.exit(3)


@db.command("url")
def db_url() -> None:
    """Print the flight store's URL (FLIGHTS_DATABASE_URL or the local server), redacted."""
    click.echo(settings.redact(settings.database_url()))


@cli.command("migrate")
def migrate_command() -> None:
    """Apply the schema migrations in sql/migrations that the database lacks."""
    with connect(settings.database_url()) as conn:
        applied = migrate(conn)
    if applied:
        for migration in applied:
            click.echo(f"applied {migration.version} {migration.name}")
    else:
        click.echo("schema is up to date")


@cli.command("ui")
@click.option("--port", default=3000, show_default=True, help="Port of the Dagster UI.")
def ui(port: int) -> None:
    """Start the Dagster UI and daemon (`dagster dev`) on this project's instance."""
    from pipelines.assets.instance import open_instance

    # Dagster would print pages of tracebacks for a database it cannot reach or an instance
    # it cannot load: say it once.
    with connect(settings.database_url(), connect_timeout=10), open_instance():
        pass
    command = [
        sys.executable,
        "-m",
        "pipelines.cli.dagster_dev",
        "-w",
        str(settings.PROJECT_ROOT / "workspace.yaml"),
        "-p",
        str(port),
    ]
    click.echo(f"Dagster UI on http://127.0.0.1:{port}  (DAGSTER_HOME={settings.dagster_home()})")
    # The UI, the daemon and the code server read the same settings file and variables; the
    # instance's storage URL goes to them in their environment, as dagster.yaml expects.
    os.execve(sys.executable, command, settings.dagster_environment())  # noqa: S606 - no shell


@cli.command("config")
def config_command() -> None:
    """Print every setting's effective value and where it came from (env / file / default)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"settings file: {settings.settings_file()}", title_justify="left")
    for column in ("setting", "variable", "value", "from"):
        table.add_column(column, overflow="fold")
    for row in settings.effective():
        table.add_row(*row)
    Console(width=200).print(table)


@cli.command("demo")
def demo() -> None:
    """Run the whole product on the bundled real drops and print a report."""
    from rich.console import Console

    from pipelines.cli.demo import run_demo

    if not run_demo(Console()):
        raise click.ClickException("a day failed; see the report above and the Dagster UI")


def run_command() -> int:
    """The command's exit status; operator errors printed as one line."""
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except OPERATOR_ERRORS as exc:
        line = first_line(exc)
        if isinstance(exc, psycopg.OperationalError) and "refused" in line:
            line += " (is the database up? `flights db up` starts the local one)"
        if isinstance(exc, psycopg.errors.UndefinedTable | psycopg.errors.UndefinedFunction):
            line = f"the flight store has no schema yet ({line}); run `flights migrate` first"
        click.echo(f"error: {line}", err=True)
        return 1
    return 0


def main() -> None:
    status = run_command()
    # Every command has closed what it opened; tearing down the thousands of modules Dagster
    # and pandas load would add most of a second to every call.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
