"""Every error an operator meets on a normal day is one line naming the cause and what to run."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import traceback
from pathlib import Path
from urllib.parse import quote as quote_url

import dagster as dg
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from psycopg.conninfo import conninfo_to_dict

from pipelines.api.server import start
from pipelines.assets.resources import FlightStore, LandingZone
from pipelines.cli.main import run_command
from pipelines.definitions import defs
from pipelines.settings import PROJECT_ROOT, redact, with_database
from pipelines.warehouse.connection import connect
from pipelines.warehouse.flight_reads import FlightStore as ApiStore
from tests.api import config, self_signed, serving
from tests.drops_factory import message, write_pb

FLIGHTS = str(Path(sys.executable).with_name("flights"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def one_line(args: list[str], **env: str) -> str:
    """Run `flights`, expect exit status 1 and exactly one line on stderr; return it."""
    run = subprocess.run(
        [FLIGHTS, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
        check=False,
    )
    assert run.returncode == 1, run
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    return lines[0]


@pytest.mark.apache
def test_commands_on_an_unmigrated_database_say_run_migrate(
    apache_db: str, flights_env: Path
) -> None:
    for args in (["clean", "--date", "2024-01-01"], ["serve", "--port", "0"]):
        line = one_line(args, FLIGHTS_DATABASE_URL=apache_db)
        assert line.startswith("error: the flight store has no schema yet ("), line
        assert line.endswith("); run `flights migrate` first"), line


def test_flights_ui_with_the_database_down_says_start_it(flights_env: Path) -> None:
    port = _free_port()
    line = one_line(["ui"], FLIGHTS_DATABASE_URL=f"postgresql://postgres@127.0.0.1:{port}/x")
    assert line.startswith("error: connection failed: "), line
    assert "Connection refused" in line
    assert line.endswith("(is the database up? `flights db up` starts the local one)")


def test_flights_get_without_a_server_says_start_one(flights_env: Path) -> None:
    target = f"127.0.0.1:{_free_port()}"
    assert one_line(["get", "abc123", "--target", target]) == (
        f"Error: no API server answers at {target}; start one with `flights serve` "
        "(or pass --target host:port)"
    )


@settings(
    max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(target=st.text(alphabet=" \t\n\r\x0b\x0c", max_size=4))
def test_flights_get_with_a_blank_target_names_the_form(flights_env: Path, target: str) -> None:
    run = subprocess.run(
        [FLIGHTS, "get", "abc123", "--target", target],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2, run
    assert run.stderr.strip().splitlines()[-1] == (
        "Error: Invalid value for '--target': is blank; pass host:port, e.g. 127.0.0.1:50051"
    )


def test_migrate_with_a_url_of_another_database_names_the_expected_form(
    flights_env: Path,
) -> None:
    assert one_line(["migrate"], FLIGHTS_DATABASE_URL="mysql://user@host/flights") == (
        "error: the flight store must be PostgreSQL with TimescaleDB, not mysql://; set "
        "FLIGHTS_DATABASE_URL=postgresql://user@host:5432/flights (or unset it for the local "
        "server, `flights db up`)"
    )


def test_a_day_before_the_start_date_names_the_setting(flights_env: Path) -> None:
    assert one_line(["ingest", "--from", "2017-05-01"], FLIGHTS_START_DATE="2018-01-01") == (
        "Error: 2017-05-01 is before FLIGHTS_START_DATE (2018-01-01); set "
        "FLIGHTS_START_DATE=2017-05-01 to ingest older days"
    )


@pytest.mark.apache
def test_a_dagster_run_of_a_day_without_drops_fails_and_materializes_nothing(
    apache_url: str, flights_env: Path
) -> None:
    landing = flights_env / "landing"
    result = defs.resolve_job_def("ingest_job").execute_in_process(
        partition_key="2024-03-01",
        instance=dg.DagsterInstance.ephemeral(),
        resources={
            "flight_store": FlightStore(database_url=apache_url),
            "landing": LandingZone(root=str(landing)),
        },
        raise_on_error=False,
    )
    assert not result.success
    assert result.get_asset_materialization_events() == []
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert failure.step_failure_data.user_failure_data is not None
    assert failure.step_failure_data.user_failure_data.description == (
        f"no drops for 2024-03-01: {landing}/2024-03-01 does not exist; nothing was changed "
        "(check the landing root: FLIGHTS_LANDING_ROOT or `flights ingest --landing`)"
    )


@pytest.mark.apache
def test_numeric_options_take_any_number_and_answer_in_a_line_or_a_usage_error(
    apache_url: str,
    flights_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every number an operator can type into a numeric option (huge, negative, fractional,
    NaN, infinite) ends in a result, a one-line error or click's usage error: never a
    traceback, never a misleading error from deeper down (an int32 overflow, a deadline
    past gRPC's clock, a bigint LIMIT, a date before year 1)."""
    monkeypatch.setenv("FLIGHTS_DATABASE_URL", apache_url)
    with serving(apache_url) as server:
        get = ["get", "nosuchflight", "--target", f"127.0.0.1:{server.port}"]
        clean = ["clean", "--date", "2024-03-10", "--dry-run"]
        commands = {
            "get --timeout": [*get, "--timeout"],
            "get --max-points": [*get, "--max-points"],
            "quarantine --limit": ["quarantine", "--limit"],
            "clean --raw-retention-days": [*clean, "--raw-retention-days"],
            "clean --aggregate-retention-days": [*clean, "--aggregate-retention-days"],
            "clean --quarantine-retention-days": [*clean, "--quarantine-retention-days"],
        }

        @settings(
            max_examples=250,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture],
        )
        @given(
            option=st.sampled_from(sorted(commands)),
            # Any integer, integers about the edge of each width they pass through (int32 in
            # a request, bigint in SQL, and past it), any float.
            number=st.integers().map(str)
            | st.builds(
                lambda bits, step, sign: str(sign * (2**bits + step)),
                st.sampled_from([31, 32, 63, 64, 70]),
                st.integers(-2, 2),
                st.sampled_from([1, -1]),
            )
            | st.floats().map(repr),
        )
        def typed(option: str, number: str) -> None:
            monkeypatch.setattr(sys, "argv", ["flights", *commands[option], number])
            status = run_command()
            err = capsys.readouterr().err.strip().splitlines()
            if status == 2:  # click's usage error: which option, and the range it takes
                assert err[-1].startswith(f"Error: Invalid value for '{option.split()[1]}'"), err
                return
            assert status in (0, 1) and len(err) <= 1, (option, number, status, err)
            # A number the option takes fails only for what the command means: no such
            # flight, a deadline short enough to miss, retentions that contradict each other.
            if status == 1 and option.startswith("get"):
                assert (
                    "NOT_FOUND" in err[0]
                    or ("DEADLINE_EXCEEDED" in err[0] and float(number) < 1)
                    or "INVALID_ARGUMENT: max_points must be from 1 to" in err[0]  # its limit
                ), (number, err)
            if status == 1:
                assert option.startswith(("get", "clean")), (number, err)
                assert option.startswith("get") or "retention" in err[0], (number, err)

        typed()


@pytest.mark.apache
def test_tls_files_of_any_content_serve_or_fail_naming_both_settings(
    apache_url: str, tmp_path: Path
) -> None:
    """A certificate and key pair, each one of two real pairs' files (so also swapped or
    mismatched), cut short or with a bit flipped: the server starts with TLS, or fails at
    start naming both settings (gRPC alone reports a file it cannot use as a failure to bind
    the port)."""
    files = {}
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for path in self_signed(tmp_path / name):
            files[f"{name}/{path.name}"] = path.read_bytes()

    @settings(max_examples=40, deadline=None)
    @given(
        chosen=st.tuples(st.sampled_from(sorted(files)), st.sampled_from(sorted(files))),
        damaged=st.sampled_from([0, 1]),
        cut=st.none() | st.integers(0, 1000),
        flip=st.none() | st.tuples(st.integers(0, 1000), st.integers(0, 7)),
    )
    # A key with a bit flipped that Python's ssl loads and gRPC refuses (a CI run drew it).
    @example(chosen=("a/server.crt", "a/server.key"), damaged=1, cut=None, flip=(558, 0))
    def serve_with(
        chosen: tuple[str, str],
        damaged: int,
        cut: int | None,
        flip: tuple[int, int] | None,
    ) -> None:
        contents = [bytearray(files[name]) for name in chosen]
        target = contents[damaged]
        if cut is not None:
            del target[cut:]
        if flip is not None and target:
            target[flip[0] % len(target)] ^= 1 << flip[1]
        paths = [tmp_path / "cert.pem", tmp_path / "key.pem"]
        for path, content in zip(paths, contents, strict=True):
            path.write_bytes(content)
        try:
            running = start(config(apache_url, tls_cert=paths[0], tls_key=paths[1]))
        except OSError as exc:
            failure = str(exc)
        else:
            running.stop(0)
            return
        assert "FLIGHTS_API_TLS_CERT" in failure and "FLIGHTS_API_TLS_KEY" in failure, failure

    serve_with()


# Passwords with what breaks a URL or a key=value string (spaces, quotes, `%`, `@`, `/`, `?`,
# brackets), and, as a class of its own, what looks like a URL inside them (`://`, then `@`),
# between markers that no error message holds otherwise.
_PASSWORD_TEXT = st.text(alphabet=" %@:/?#&[]'\"=\\09az", max_size=8)
_PASSWORDS = (
    _PASSWORD_TEXT | st.builds("{}://{}@{}".format, _PASSWORD_TEXT, _PASSWORD_TEXT, _PASSWORD_TEXT)
).map("QX{}ZQ".format)


def _shows_password(text: str) -> bool:
    """Either marker, in any case (an error may lower-case what it quotes)."""
    return "qx" in text.lower() or "zq" in text.lower()


_URLS = [
    "postgresql://user:{}@127.0.0.1:1/db",
    "postgresql://user:{}@127.0.0.1:1/db?connect_timeout=1",
    "postgres://:{}@127.0.0.1:1",
    "postgresql://user@127.0.0.1:1/db?sslmode=disable&password={}",
    "host=127.0.0.1 port=1 user=u sslpassword={} password=x",
    "host=127.0.0.1 port=1 user=u password={}",
    "host=127.0.0.1 port=1 user=u password='{}'",
]


@settings(max_examples=300, deadline=None)
@given(password=_PASSWORDS, form=st.sampled_from(_URLS))
def test_a_database_url_that_fails_never_shows_its_password(password: str, form: str) -> None:
    """Whatever a password holds, the error of a URL that cannot be parsed or reached shows
    none of it (libpq's parse errors quote the text they fail on), nor does its traceback."""
    url = form.format(password)
    openings = (
        lambda: connect(url, connect_timeout=1),
        lambda: ApiStore.open(url, min_size=1, max_size=1),
    )
    for opening in openings:
        try:
            opening()
        except Exception as exc:  # any failure: its text is checked
            shown = "".join(traceback.format_exception(exc))
        else:
            pytest.fail(f"{url} reached a server on port 1")
        assert not _shows_password(shown), (url, shown[-600:])


@settings(max_examples=300, deadline=None)
@given(password=_PASSWORDS, query=st.sampled_from(["", "?sslmode=disable", "?a=b#c"]))
def test_a_database_url_derives_dagsters_by_its_database_alone(password: str, query: str) -> None:
    """Dagster's storage URL is derived from the flight store's: for any password, only the
    database changes."""
    url = f"postgresql://user:{password}@127.0.0.1:5432/flights{query}"
    kept = query.partition("#")[0]
    assert (
        with_database(url, "dagster")
        == f"postgresql://user:{password}@127.0.0.1:5432/dagster{kept}"
    )


# Options beside the secret, in any order, and keys as a URL's query may spell them
# (libpq decodes them: `pass%77ord` is `password`).
_OTHER_OPTIONS = st.lists(
    st.sampled_from(
        [("host", "127.0.0.1"), ("port", "5432"), ("dbname", "flights"), ("sslmode", "disable")]
    ),
    unique=True,
)
_SECRET_KEYS = st.sampled_from(["password", "sslpassword"])


def _spelled(key: str, encoded: list[bool]) -> str:
    """`key` with the characters `encoded` marks percent-encoded (the first ones)."""
    marks = (encoded + [False] * len(key))[: len(key)]
    return "".join(f"%{ord(c):02X}" if mark else c for c, mark in zip(key, marks, strict=True))


def _quoted(value: str, quote: bool) -> str:
    """A key=value string's value as libpq reads it: quoted, its quotes and backslashes
    escaped; or unquoted, spaces, quotes and backslashes escaped."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'" if quote else escaped.replace(" ", "\\ ") or "''"


@settings(max_examples=400, deadline=None)
@given(
    password=_PASSWORDS,
    key=_SECRET_KEYS,
    others=_OTHER_OPTIONS,
    at=st.integers(0, 4),
    form=st.sampled_from(["user info", "query", "key=value"]),
    quote=st.booleans(),
    encoded=st.lists(st.booleans(), max_size=11),
)
def test_a_connection_string_is_printed_without_its_secrets(
    password: str,
    key: str,
    others: list[tuple[str, str]],
    at: int,
    form: str,
    quote: bool,
    encoded: list[bool],
) -> None:
    """`flights config`, `flights serve` and the demo print the flight store's URL redacted:
    wherever libpq reads a password (or the client key's passphrase) from, whatever it
    holds, the printed form shows none of it; a key=value string still reads as the same
    options, the secrets replaced."""
    options = [*others[:at], (key, password), *others[at:]]
    if form == "key=value":
        text = " ".join(f"{k}={_quoted(v, quote)}" for k, v in options)
    elif form == "query":
        text = "postgresql://user@127.0.0.1/flights?" + "&".join(
            f"{_spelled(k, encoded) if k == key else k}={quote_url(v, safe='')}" for k, v in options
        )
    else:
        text = f"postgresql://user:{quote_url(password, safe='')}@127.0.0.1/flights"
        if others:
            text += "?" + "&".join(f"{k}={v}" for k, v in others)
        key = "password"
    read = conninfo_to_dict(text)
    assert read[key] == password, text  # libpq reads the secret so
    shown = redact(text)
    assert not _shows_password(shown), (text, shown)
    if form == "key=value":
        assert conninfo_to_dict(shown) == {**read, key: "***"}, shown


@pytest.mark.parametrize("text", ["host=127.0.0.1 password='unclosed", "password", "a=b c"])
def test_a_key_value_string_libpq_cannot_read_is_not_printed(text: str) -> None:
    """Where libpq stops reading, a password may run on: none of the text is shown."""
    assert redact(text) == "(a key=value connection string libpq cannot read)"


@pytest.mark.apache
@pytest.mark.parametrize(
    ("setting", "args", "cycle"),
    [
        ("FLIGHTS_LANDING_ROOT", ["ingest", "--from", "2024-03-01"], 1),
        ("FLIGHTS_LANDING_ARCHIVE_DIR", ["clean", "--date", "2024-06-01", "--dry-run"], 2),
        ("DAGSTER_HOME", ["config"], 3),
        ("FLIGHTS_SETTINGS_FILE", ["config"], 2),
    ],
)
def test_a_configured_path_that_loops_is_one_line_naming_its_setting(
    apache_url: str, flights_env: Path, tmp_path: Path, setting: str, args: list[str], cycle: int
) -> None:
    """A path setting reached through a chain of links that ends in a loop (of `cycle`
    links) is refused in one line: Python 3.11 resolves it with a RuntimeError traceback."""
    links = [tmp_path / f"link{k}" for k in range(cycle)]
    for k, link in enumerate(links):
        link.symlink_to(links[(k + 1) % cycle])
    (tmp_path / "entry").symlink_to(links[0])
    line = one_line(
        args,
        FLIGHTS_DATABASE_URL=apache_url,
        FLIGHTS_LANDING_RETENTION="archive",
        **{setting: str(tmp_path / "entry")},
    )
    assert line == (
        f"error: {setting} ({tmp_path / 'entry'}) cannot be used: Too many levels of symbolic links"
    )


@pytest.mark.apache
def test_a_configured_path_holding_nul_is_one_line_naming_its_setting(
    apache_url: str, flights_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The settings file can hold what the environment cannot: a NUL in a path."""
    monkeypatch.delenv("FLIGHTS_LANDING_ROOT")  # the file's value, not the environment's
    settings_file = tmp_path / "flights.toml"
    settings_file.write_text('landing_root = "/srv/a\\u0000b"\n')
    line = one_line(
        ["ingest", "--from", "2024-03-01"],
        FLIGHTS_DATABASE_URL=apache_url,
        FLIGHTS_SETTINGS_FILE=str(settings_file),
    )
    assert (
        line == "error: FLIGHTS_LANDING_ROOT (/srv/a\\x00b) cannot be used: a path cannot hold NUL"
    )


@pytest.mark.apache
@pytest.mark.parametrize(
    "archive",
    ["{root}", "{root}/2024-03-01/archive", "{root}/archive", "{outside}/link-into-root/archive"],
)
def test_an_archive_in_the_landing_root_is_refused_before_anything_is_cleaned(
    apache_url: str, flights_env: Path, tmp_path: Path, archive: str
) -> None:
    """Archiving into the landing root moves a day into itself (the cleaner failed on every
    run with an error listing each character of its message) or within the zone the sensor
    reads: refused in one line, however the path reaches the root."""
    root = flights_env / "landing"
    (root / "2024-03-01").mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "link-into-root").symlink_to(root)
    configured = archive.format(root=root, outside=outside)
    for policy in ("archive", "keep"):
        line = one_line(
            ["clean", "--date", "2024-06-01"],
            FLIGHTS_DATABASE_URL=apache_url,
            FLIGHTS_LANDING_RETENTION=policy,
            FLIGHTS_LANDING_ARCHIVE_DIR=configured,
        )
        resolved = Path(configured).resolve()
        assert line == (
            f"error: FLIGHTS_LANDING_ARCHIVE_DIR ({resolved}) lies in the landing root "
            f"({root.resolve()}); set it outside"
        )
    with connect(apache_url) as conn:
        assert conn.execute("SELECT count(*) FROM retention_runs").fetchone() == (0,)


@pytest.mark.apache
@settings(
    max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=st.from_regex(r"[a-z][a-z0-9_]{0,30}", fullmatch=True), refused=st.booleans())
def test_dagster_storage_out_of_reach_is_one_line_naming_the_next_step(
    apache_url: str, flights_env: Path, name: str, refused: bool
) -> None:
    """A storage database that does not exist, or a server that refuses: one line, at once,
    before anything is changed (Dagster itself retries, then prints pages of tracebacks)."""
    home = flights_env / "dagster_home"
    shutil.copy(PROJECT_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    write_pb(flights_env / "landing" / "2024-03-01" / "day.pb", [message(0)])
    storage = (
        f"postgresql://postgres@127.0.0.1:{_free_port()}/{name}"
        if refused
        else with_database(apache_url, f"absent_{name}")
    )
    for args in (["ingest", "--from", "2024-03-01"], ["runs", "list"]):
        line = one_line(args, FLIGHTS_DATABASE_URL=apache_url, DAGSTER_POSTGRES_URL=storage)
        assert line.startswith("error: Dagster's storage cannot be reached ("), line
        if refused:
            assert "Connection refused" in line
            assert line.endswith(
                "`flights db up` starts the local one) and "
                "DAGSTER_POSTGRES_URL right (`flights config` shows it)?"
            )
        else:
            assert f'database "absent_{name}" does not exist' in line
            assert line.endswith(
                "create that database on its server, or set DAGSTER_POSTGRES_URL to one"
            )
    with connect(apache_url) as conn:
        assert conn.execute("SELECT count(*) FROM partition_loads").fetchone() == (0,)


SECTIONS = ["storage", "run_coordinator", "run_launcher", "concurrency", "run_monitoring"]
YAML_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["postgres", "module", "class", "env", "x"]), inner)
    ),
    max_leaves=6,
)


@pytest.mark.apache
@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    content=st.binary(max_size=40)
    | st.text(max_size=40).map(str.encode)
    | st.dictionaries(st.sampled_from(SECTIONS) | st.text(max_size=6), YAML_VALUES, max_size=3).map(
        lambda config: yaml.safe_dump(config).encode()
    )
)
@example(content=b"storage:")  # Dagster's own loader failed with a TypeError on it
def test_a_broken_dagster_yaml_is_one_line_naming_it(
    apache_url: str, flights_env: Path, content: bytes
) -> None:
    """Whatever an operator's edit leaves in dagster.yaml: the commands work, or say in one
    line that the file cannot be read or loaded, never a traceback."""
    config = flights_env / "dagster_home" / "dagster.yaml"
    config.write_bytes(content)
    run = subprocess.run(
        [FLIGHTS, "runs", "list"],
        capture_output=True,
        text=True,
        env={**os.environ, "FLIGHTS_DATABASE_URL": apache_url},
        timeout=120,
        check=False,
    )
    if run.returncode != 0:
        lines = run.stderr.strip().splitlines()
        assert run.returncode == 1, run
        assert len(lines) == 1, run.stderr
        assert lines[0].startswith(f"error: {config} cannot be "), lines[0]
        assert lines[0].endswith("(the project's dagster_home/dagster.yaml is the reference)")
