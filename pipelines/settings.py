"""Every setting of the product in one typed model, and the only module that reads the environment.

A value comes from, in this order of precedence: its environment variable (`FLIGHTS_...`, and
`DAGSTER_POSTGRES_URL`), the settings file, its default. The settings file is `flights.toml` in
the Dagster instance's folder (`DAGSTER_HOME`), or the file `FLIGHTS_SETTINGS_FILE` names, so
the CLI, `flights ui`, the daemon and every run read one configuration. Its keys are the
variables' names in lower case without `FLIGHTS_` (`landing_root = "/srv/landing"`).

Settings are read when asked for, never at import time: a run sees the file as it is when the
run starts, and tests can change the environment between calls. An invalid value fails with
the variable's name and what it accepts; `flights config` shows every value and its source.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import re
import tomllib
import typing
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import unquote

from annotated_types import Ge, Gt, Le
from pydantic import Field, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SQL_DIR = PROJECT_ROOT / "sql"

DEFAULT_DB_PORT = 55432
SETTINGS_FILE_NAME = "flights.toml"
ENV_PREFIX = "FLIGHTS_"

LandingPolicy = Literal["keep", "archive", "delete"]

Port = Annotated[int, Ge(0), Le(65_535)]
Days = Annotated[int, Ge(0), Le(100_000)]
Minutes = Annotated[float, Gt(0)]


class Settings(BaseSettings):
    """The effective configuration. Field `x` is variable `FLIGHTS_X` and file key `x`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_ignore_empty=True, extra="forbid", frozen=True
    )

    # Where the data lives.
    database_url: str | None = Field(
        None, description="the flight store; unset: the embedded local server"
    )
    dagster_postgres_url: str | None = Field(
        None,
        validation_alias="dagster_postgres_url",
        description="Dagster's storage; unset: database `dagster` beside the flight store",
    )
    landing_root: Path = Field(PROJECT_ROOT / "landing", description="<root>/<YYYY-MM-DD>/**")
    local_db_dir: Path = Field(PROJECT_ROOT / ".flights", description="embedded server's files")
    db_port: Port = Field(DEFAULT_DB_PORT, description="port of the embedded server")
    pg_bin: Path = Field(Path("/usr/lib/postgresql/15/bin"), description="PostgreSQL 15 binaries")

    # The ingest.
    start_date: date = Field(date(2018, 1, 1), description="first partition (drop day)")
    max_reject_rate: Annotated[float, Ge(0), Le(1)] = Field(
        0.05, description="share of quarantined rows above which a day's blocking check fails"
    )
    flight_gap_minutes: Minutes = Field(30, description="OpenSky: a longer silence, new flight")
    landed_ground_minutes: Minutes = Field(20, description="OpenSky: this long on ground, landed")
    in_progress_suffixes: str = Field(
        ".part,.tmp", description="comma-separated endings of files still being written"
    )
    operator: str | None = Field(
        None, description="who `flights accept` / `reject` record; unset: the login name"
    )

    # Aggregates and retention.
    raw_retention_days: Days = Field(90, description="days of raw points kept")
    aggregate_retention_days: Days = Field(730, description="days of aggregates kept")
    quarantine_retention_days: Days = Field(30, description="days of quarantined rows kept")
    raw_retention_floor_days: Days = Field(7, description="shortest raw retention accepted")
    compress_after_days: Days = Field(
        7,
        description="raw days older than this are compressed (licensed edition) or get "
        "their indexes rebuilt compact (Apache edition)",
    )
    realtime_aggregates: bool = Field(False, description="licensed edition: real-time aggregates")
    landing_retention: LandingPolicy = Field("keep", description="landing days past retention")
    landing_archive_dir: Path | None = Field(None, description="unset: <landing root>-archive")

    # The API.
    api_host: str = Field("127.0.0.1", description="where `flights serve` listens")
    api_port: Port = Field(50051, description="where `flights serve` listens (0: any free port)")
    api_target: str | None = Field(None, description="where `flights get` connects")
    api_token: str = Field("", description="bearer token(s), comma-separated to rotate")
    api_tls_cert: Path | None = Field(None, description="serve TLS with this certificate")
    api_tls_key: Path | None = Field(None, description="... and this key")
    api_tls_ca: Path | None = Field(None, description="certificate `flights get` trusts")
    api_db_role: str | None = Field(None, description="role the API's sessions take")
    api_workers: Annotated[int, Ge(1), Le(1024)] = Field(8, description="calls served at once")
    api_pool_size: Annotated[int, Ge(1), Le(1024)] | None = Field(
        None, description="database connections; unset: one per worker"
    )
    api_max_points: Annotated[int, Ge(2), Le(1_000_000)] = Field(20_000, description="per call")
    api_page_size: Annotated[int, Ge(1), Le(1_000_000)] = Field(5_000, description="stream page")
    api_max_list_days: Annotated[int, Ge(1), Le(3660)] = Field(31, description="ListFlights")
    api_query_timeout: Annotated[int, Ge(1), Le(3600)] = Field(30, description="seconds")
    api_grace: Annotated[int, Ge(0), Le(3600)] = Field(10, description="seconds to drain")
    api_max_message_bytes: Annotated[int, Ge(2**20), Le(2**30)] = Field(
        16 * 2**20, description="largest gRPC message"
    )
    api_max_concurrent_rpcs: Annotated[int, Ge(1), Le(100_000)] = Field(
        256, description="calls admitted at once"
    )
    api_prepare: bool = Field(True, description="server-side prepared statements")
    api_stream_send_timeout: Annotated[int, Ge(1), Le(3600)] = Field(
        10, description="seconds a stream waits for its client to take a message"
    )
    api_max_streams: Annotated[int, Ge(1), Le(1024)] | None = Field(
        None, description="streams served at once; unset: half the workers"
    )
    api_streams_per_client: Annotated[int, Ge(1), Le(1024)] = Field(
        2, description="streams one client address may hold at once"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The environment first; the values given to the constructor (the file's) second."""
        return env_settings, init_settings


SECRET_FIELDS = frozenset({"api_token"})


class SettingsError(ValueError):
    """A setting the product cannot run with; the message names it and what it accepts."""


def env_name(field: str) -> str:
    """The environment variable of a setting."""
    alias = Settings.model_fields[field].validation_alias
    return alias.upper() if isinstance(alias, str) else f"{ENV_PREFIX}{field.upper()}"


def real_path(path: Path, *, strict: bool = False) -> Path:
    """`path.resolve(strict=strict)`, with a symlink loop raised as OSError (ELOOP) as
    Python 3.13 does: 3.11 raises RuntimeError, which no caller of a path operation expects."""
    try:
        return path.resolve(strict=strict)
    except RuntimeError:
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), os.fspath(path)) from None


def configured_path(path: Path, name: str) -> Path:
    """A path from the configuration, resolved; one that cannot be (a symlink loop, a NUL
    from the settings file) is an error naming where it was set."""
    try:
        return real_path(path)
    except (OSError, ValueError) as exc:
        shown = os.fsencode(path).decode("utf-8", "backslashreplace").replace("\x00", "\\x00")
        reason = exc.strerror if isinstance(exc, OSError) else "a path cannot hold NUL"
        raise SettingsError(f"{name} ({shown}) cannot be used: {reason}") from None


def dagster_home() -> Path:
    """The Dagster instance's folder (DAGSTER_HOME): Dagster itself reads this variable, so it
    cannot come from the settings file that lives in it."""
    home = os.environ.get("DAGSTER_HOME")
    return configured_path(Path(home) if home else PROJECT_ROOT / "dagster_home", "DAGSTER_HOME")


def settings_file() -> Path:
    """FLIGHTS_SETTINGS_FILE, else flights.toml in the Dagster instance's folder."""
    named = os.environ.get("FLIGHTS_SETTINGS_FILE")
    if named:
        return configured_path(Path(named), "FLIGHTS_SETTINGS_FILE")
    return dagster_home() / SETTINGS_FILE_NAME


def _file_text(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SettingsError(f"settings file {path} is unreadable: {exc}") from None


def _file_values(path: Path, text: bytes | None) -> dict[str, Any]:
    try:
        return tomllib.loads(text.decode()) if text is not None else {}
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"settings file {path} is not valid TOML: {exc}") from None


def load() -> Settings:
    """The effective settings, checked; raises SettingsError naming the first bad value.

    Cheap to call often: the model is built again only when our variables or the file changed.
    """
    path = settings_file()
    ours = frozenset(
        (name, value)
        for name, value in os.environ.items()
        if name.upper().startswith(ENV_PREFIX) or name.upper() == "DAGSTER_POSTGRES_URL"
    )
    return _load(path, _file_text(path), ours)


@functools.lru_cache(maxsize=16)
def _load(path: Path, text: bytes | None, environment: frozenset[tuple[str, str]]) -> Settings:
    """One build of the model; the arguments are the cache key (the file, our variables)."""
    try:
        return Settings(**_file_values(path, text))
    except ValidationError as exc:
        raise SettingsError(_explain(exc.errors()[0], path)) from None


def bounds(field: str) -> tuple[Any, Any, bool]:
    """A setting's numeric range: (lowest, highest, whether the lowest is excluded), None where
    unbounded; constraints inside `Annotated[...] | None` count too."""
    info: FieldInfo = Settings.model_fields[field]
    found = list(info.metadata)
    for arg in typing.get_args(info.annotation):
        found += list(getattr(arg, "__metadata__", ()))
    low = next((c.ge for c in found if isinstance(c, Ge)), None)
    above = next((c.gt for c in found if isinstance(c, Gt)), None)
    high = next((c.le for c in found if isinstance(c, Le)), None)
    return (above, high, True) if low is None and above is not None else (low, high, False)


def accepted(field: str) -> str:
    """What a setting accepts, in words."""
    info: FieldInfo = Settings.model_fields[field]
    kinds = set(typing.get_args(info.annotation)) | {info.annotation}
    kinds.discard(type(None))
    if bool in kinds:
        return "on or off"
    if date in kinds:
        return "a date YYYY-MM-DD"
    for kind in kinds:
        if typing.get_origin(kind) is Literal:
            return "one of " + ", ".join(typing.get_args(kind))
    low, high, exclusive = bounds(field)
    number = "a number" if float in kinds else "an integer"
    if low is not None and high is not None:
        return f"{number} from {low} to {high}"
    if low is not None:
        return f"{number} above {low}" if exclusive else f"{number} of at least {low}"
    return "a path" if Path in kinds else "text"


def _explain(error: Any, path: Path) -> str:
    key = str(error["loc"][0]) if error["loc"] else "?"
    if error["type"] == "extra_forbidden":
        return f"unknown setting {key!r} in {path} (`flights config` lists the settings)"
    field = key if key in Settings.model_fields else key.lower()
    raw = error.get("input")
    where = (
        env_name(field)
        if os.environ.get(env_name(field), "").strip()
        else f"{field} in settings file {path}"
    )
    return f"{where} must be {accepted(field)}, not {raw!r}"


# The accessors below are what the rest of the code calls: one setting each, read when asked.


def local_db_dir() -> Path:
    """Where the embedded PostgreSQL keeps its data, socket and log (an ignored folder)."""
    return configured_path(load().local_db_dir, env_name("local_db_dir"))


def local_db_port() -> int:
    return load().db_port


def pg_bin() -> Path:
    """The PostgreSQL 15 server binaries the embedded server runs."""
    return load().pg_bin


def local_database_url(dbname: str = "flights") -> str:
    return f"postgresql://postgres@127.0.0.1:{local_db_port()}/{dbname}"


def database_url() -> str:
    """The flight store: FLIGHTS_DATABASE_URL, else the embedded local server."""
    return load().database_url or local_database_url()


def dagster_database_url() -> str:
    """Dagster's run/event/schedule storage: its own database on the same server by default."""
    return load().dagster_postgres_url or with_database(database_url(), "dagster")


def with_database(url: str, dbname: str) -> str:
    """The same server, credentials and parameters, another database (URLs only; not
    urlsplit, whose errors quote the URL, password included)."""
    if url_scheme(url) not in POSTGRES_SCHEMES:
        raise ValueError("FLIGHTS_DATABASE_URL must be a postgresql:// URL")
    scheme, _, rest = url.partition("://")
    userinfo, at, located = rest.rpartition("@")
    host = re.split(r"[/?#]", located, maxsplit=1)[0]
    _, mark, query = located.partition("?")
    return f"{scheme}://{userinfo}{at}{host}/{dbname}{mark}{query.partition('#')[0]}"


def landing_root() -> Path:
    return configured_path(load().landing_root, env_name("landing_root"))


def start_date() -> date:
    """The first drop day the UI offers for backfills (FLIGHTS_START_DATE)."""
    return load().start_date


# The connection options that hold secrets: the server's password, the client key's passphrase.
SECRET_OPTIONS = frozenset({"password", "sslpassword"})
UNREADABLE_CONNINFO = "(a key=value connection string libpq cannot read)"


POSTGRES_SCHEMES = ("postgres", "postgresql")


def url_scheme(url: str) -> str | None:
    """The scheme a URL starts with (`postgresql`), None for a key=value string, whose
    values (a password among them) may hold `://` anywhere."""
    found = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://", url)
    return found[1].lower() if found else None


def _password_span(url: str) -> slice | None:
    """Where a URL's password lies, as written: everything from the user's `:` to the last
    `@` (an unencoded `@` in it included, so a malformed URL's is too long, never too short).
    Not urlsplit: a password with brackets makes it fail, quoting the URL."""
    if url_scheme(url) is None:
        return None
    start, end = url.index("://") + 3, url.rfind("@")
    colon = url.find(":", start, end)
    return slice(colon + 1, end) if end != -1 and colon != -1 else None


def url_password(url: str) -> str | None:
    """A URL's password as written (percent-encoded), None without one or for key=value."""
    span = _password_span(url)
    return url[span] if span else None


def redact(url: str) -> str:
    """A database URL or key=value string safe to print: its secrets replaced, wherever
    libpq reads them from (a URL's user info, or its query, a key percent-encoded or not)."""
    if url_scheme(url) is None:
        return _redacted_conninfo(url)
    hidden = [False] * len(url)
    span = _password_span(url)
    for start, stop in ([(span.start, span.stop)] if span else []) + _secret_values(url):
        hidden[start:stop] = [True] * (stop - start)
    shown, previous = [], False
    for char, secret in zip(url, hidden, strict=True):
        if not secret:
            shown.append(char)
        elif not previous:
            shown.append("***")
        previous = secret
    return "".join(shown)


# A query parameter as libpq reads one: after `?` or `&`, a key up to `=`, a value up to `&`.
# Tried after every `?` and `&`, also inside other values (the match is a lookahead): where a
# URL is ambiguous, a hidden span is too long, never too short.
_PARAMETER = re.compile(r"(?<=[?&])(?=([^=&?]*)=([^&]*))")


def _secret_values(url: str) -> list[tuple[int, int]]:
    """Where the values of secret query parameters lie (keys as libpq decodes them)."""
    return [
        found.span(2) for found in _PARAMETER.finditer(url) if unquote(found[1]) in SECRET_OPTIONS
    ]


def _redacted_conninfo(text: str) -> str:
    """A key=value string as libpq reads it, its secrets replaced. Read by libpq itself,
    since a value's quotes and backslash escapes decide where it ends; what libpq cannot
    read is not shown at all (its password could end anywhere)."""
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    try:
        options = conninfo_to_dict(text)
    except ProgrammingError:
        return UNREADABLE_CONNINFO
    return make_conninfo(
        "", **{key: "***" if key in SECRET_OPTIONS else value for key, value in options.items()}
    )


def max_reject_rate() -> float:
    """Above this share of quarantined rows a partition's check fails and blocks downstream."""
    return load().max_reject_rate


def operator() -> str | None:
    """Who `flights accept` / `reject` record as deciding, when not the login name."""
    return load().operator


def flight_gap() -> timedelta:
    """Positions of one aircraft further apart than this belong to two flights (OpenSky)."""
    return timedelta(minutes=load().flight_gap_minutes)


def landed_ground_time() -> timedelta:
    """An aircraft on the ground this long has landed: a new flight starts (OpenSky)."""
    return timedelta(minutes=load().landed_ground_minutes)


def dagster_environment() -> dict[str, str]:
    """The environment of a Dagster process we start (`flights ui`): ours, plus the instance
    folder and the storage URL its dagster.yaml reads from DAGSTER_POSTGRES_URL."""
    return {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home()),
        "DAGSTER_POSTGRES_URL": dagster_database_url(),
    }


def source(field: str) -> Literal["env", "file", "default"]:
    """Where a setting's effective value comes from."""
    if os.environ.get(env_name(field), "").strip():
        return "env"
    path = settings_file()
    return "file" if field in _file_values(path, _file_text(path)) else "default"


def _shown(field: str, value: object) -> str:
    """A value safe to print: secrets hidden, passwords in URLs replaced."""
    if value is None:
        return "(unset)"
    if field in SECRET_FIELDS:
        return "***" if value else "(unset)"
    return redact(value) if field.endswith("url") and isinstance(value, str) else str(value)


def effective() -> list[tuple[str, str, str, str]]:
    """Every setting as (name, variable, value safe to print, source), for `flights config`.
    The URLs show what is used, also when derived from the embedded server's port."""
    configured = load()
    derived = {"database_url": database_url(), "dagster_postgres_url": dagster_database_url()}
    home_source = "env" if os.environ.get("DAGSTER_HOME") else "default"
    rows = [("dagster_home", "DAGSTER_HOME", str(dagster_home()), home_source)]
    for field in Settings.model_fields:
        value = derived.get(field, getattr(configured, field))
        rows.append((field, env_name(field), _shown(field, value), source(field)))
    return rows


def save(field: str, value: str) -> Path:
    """Record one setting in the settings file, keeping its other lines (comments too), and
    check the result; returns the file."""
    if field not in Settings.model_fields:
        raise SettingsError(f"unknown setting {field!r} (`flights config` lists the settings)")
    path = settings_file()
    before = path.read_text() if path.exists() else ""
    assignment = re.compile(rf"^\s*{re.escape(field)}\s*=")
    lines = [line for line in before.splitlines() if not assignment.match(line)]
    lines.append(f"{field} = {json.dumps(value)}")  # a JSON string is a valid TOML string
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    try:
        load()
    except SettingsError:
        path.write_text(before)
        raise
    return path


def in_progress_suffixes() -> tuple[str, ...]:
    """Endings of files still being written into the landing zone: not drops (yet). An
    entry may be written as a pattern (`*.part`, as the README shows them): the same ending."""
    raw = load().in_progress_suffixes
    endings = (entry.strip().lstrip("*").casefold() for entry in raw.split(","))
    return tuple(ending for ending in endings if ending)
