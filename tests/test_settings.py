"""One configuration: env > settings file > default, checked at start-up, seen by the CLI,
Dagster runs and the instance alike, and never passed along through os.environ."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from pipelines import settings
from pipelines.assets.instance import open_instance
from pipelines.cli.ingest import ingest
from pipelines.cli.main import cli
from pipelines.definitions import defs
from tests.conftest import DATA, ROOT
from tests.drops_factory import message, write_jsonl, write_pb

BOUNDED = sorted(f for f in settings.Settings.model_fields if settings.bounds(f)[0] is not None)


# Where the test servers run: kept, so that no test reaches another server.
TEST_SERVER_VARIABLES = {"FLIGHTS_DB_PORT", "FLIGHTS_LOCAL_DB_DIR", "FLIGHTS_PG_BIN"}


@pytest.fixture
def clean_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No other FLIGHTS_ variable set, and a settings file of this test's own (not written)."""
    for name in list(os.environ):
        if name in TEST_SERVER_VARIABLES:
            continue
        if name.startswith("FLIGHTS_") or name == "DAGSTER_POSTGRES_URL":
            monkeypatch.delenv(name)
    file = tmp_path / "flights.toml"
    monkeypatch.setenv("FLIGHTS_SETTINGS_FILE", str(file))
    return file


def test_every_bounded_setting_has_a_range_to_name() -> None:
    assert {"db_port", "api_port", "api_workers", "max_reject_rate", "raw_retention_days"} <= set(
        BOUNDED
    )


@hypothesis_settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(BOUNDED), value=st.integers(-(2**31), 2**31))
def test_numbers_in_range_are_taken_and_out_of_range_fail_naming_the_variable_and_range(
    field: str, value: int
) -> None:
    low, high, exclusive = settings.bounds(field)
    inside = (value > low if exclusive else value >= low) and (high is None or value <= high)
    variable = settings.env_name(field)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(variable, str(value))
        if inside:
            assert getattr(settings.load(), field) == value
            return
        with pytest.raises(settings.SettingsError) as failure:
            settings.load()
    message = str(failure.value)
    assert message.startswith(f"{variable} must be ")
    assert str(low) in message
    if high is not None:
        assert str(high) in message
    assert repr(str(value)) in message


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("FLIGHTS_API_PORT", "eighty", "an integer from 0 to 65535"),
        ("FLIGHTS_MAX_REJECT_RATE", "5%", "a number from 0 to 1"),
        ("FLIGHTS_FLIGHT_GAP_MINUTES", "0", "a number above 0"),
        ("FLIGHTS_LANDING_RETENTION", "shred", "one of keep, archive, delete"),
        ("FLIGHTS_REALTIME_AGGREGATES", "sometimes", "on or off"),
        ("FLIGHTS_START_DATE", "2024-02-30", "a date YYYY-MM-DD"),
    ],
)
def test_every_command_stops_at_start_up_on_a_bad_value_with_one_line(
    clean_settings: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, says: str
) -> None:
    monkeypatch.setenv(variable, value)
    result = CliRunner().invoke(cli, ["db", "url"])
    assert result.exit_code == 1
    assert isinstance(result.exception, settings.SettingsError)
    assert str(result.exception) == f"{variable} must be {says}, not {value!r}"


def test_the_environment_beats_the_file_which_beats_the_default(
    clean_settings: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert settings.source("max_reject_rate") == "default"
    assert settings.max_reject_rate() == 0.05
    settings.save("landing_root", str(tmp_path / "from-file"))
    clean_settings.write_text(clean_settings.read_text() + "max_reject_rate = 0.2\n")
    assert settings.landing_root() == tmp_path / "from-file"
    assert settings.max_reject_rate() == 0.2
    assert settings.source("max_reject_rate") == "file"
    monkeypatch.setenv("FLIGHTS_MAX_REJECT_RATE", "0.3")
    assert settings.max_reject_rate() == 0.3
    assert settings.source("max_reject_rate") == "env"
    rows = {row[0]: row for row in settings.effective()}
    assert rows["landing_root"][2:] == (str(tmp_path / "from-file"), "file")
    assert rows["max_reject_rate"][1:] == ("FLIGHTS_MAX_REJECT_RATE", "0.3", "env")
    assert rows["start_date"][2:] == ("2018-01-01", "default")


def test_the_file_is_checked_like_the_environment_and_saving_keeps_its_comments(
    clean_settings: Path,
) -> None:
    clean_settings.write_text("# ours\nlanding_roots = '/x'\n")
    with pytest.raises(settings.SettingsError, match="unknown setting 'landing_roots' in "):
        settings.load()
    clean_settings.write_text("# ours\napi_workers = 0\n")
    with pytest.raises(settings.SettingsError) as failure:
        settings.load()
    assert str(failure.value) == (
        f"api_workers in settings file {clean_settings} must be an integer from 1 to 1024, not 0"
    )
    clean_settings.write_text("# ours\n")
    settings.save("landing_root", "/srv/landing")
    settings.save("landing_root", '/srv/"quoted" landing')
    assert clean_settings.read_text() == '# ours\nlanding_root = "/srv/\\"quoted\\" landing"\n'
    assert settings.landing_root() == Path('/srv/"quoted" landing')
    with pytest.raises(settings.SettingsError, match="max_reject_rate in settings file"):
        settings.save("max_reject_rate", "lots")
    assert clean_settings.read_text() == '# ours\nlanding_root = "/srv/\\"quoted\\" landing"\n'


def test_flights_config_prints_each_value_and_its_source_and_hides_secrets(
    clean_settings: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLIGHTS_API_TOKEN", "s3cret-token")
    monkeypatch.setenv("FLIGHTS_DATABASE_URL", "postgresql://u:hunter2@db.example/flights")
    clean_settings.write_text('landing_root = "/srv/drops"\n')
    result = CliRunner().invoke(cli, ["config"])
    assert result.exit_code == 0, result.output
    lines = {line.split("│")[1].strip(): line for line in result.output.splitlines() if "│" in line}
    assert "/srv/drops" in lines["landing_root"] and "file" in lines["landing_root"]
    assert "postgresql://u:***@db.example/flights" in lines["database_url"]
    assert "postgresql://u:***@db.example/dagster" in lines["dagster_postgres_url"]
    assert "***" in lines["api_token"] and " env " in lines["api_token"]
    assert "default" in lines["api_port"]
    assert "s3cret" not in result.output and "hunter2" not in result.output
    assert set(settings.Settings.model_fields) <= set(lines)


def test_the_ui_gets_the_instance_and_storage_in_its_own_environment(
    clean_settings: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.setenv("FLIGHTS_DATABASE_URL", "postgresql://u@db.example:5433/flights")
    before = dict(os.environ)
    child = settings.dagster_environment()
    assert child["DAGSTER_HOME"] == str(tmp_path)
    assert child["DAGSTER_POSTGRES_URL"] == "postgresql://u@db.example:5433/dagster"
    assert dict(os.environ) == before


@pytest.mark.apache
def test_the_instance_takes_its_storage_from_the_settings_file_not_the_environment(
    clean_settings: Path,
    dagster_storage_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(ROOT / "dagster_home" / "dagster.yaml", home)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("FLIGHTS_SETTINGS_FILE", str(home / "flights.toml"))
    settings.save("dagster_postgres_url", dagster_storage_url)
    with open_instance() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert instance.get_runs() == []
    assert "DAGSTER_POSTGRES_URL" not in os.environ


@pytest.mark.apache
def test_a_run_reads_the_settings_when_it_starts_so_a_changed_threshold_needs_no_restart(
    apache_url: str, flights_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The definitions stay loaded (as in a running UI); only the settings file changes."""
    monkeypatch.setenv("FLIGHTS_DATABASE_URL", apache_url)
    monkeypatch.delenv("FLIGHTS_LANDING_ROOT")
    monkeypatch.delenv("FLIGHTS_MAX_REJECT_RATE", raising=False)
    landing = flights_env / "drops"
    day = landing / "2024-03-01"
    write_pb(day / "ok.pb", [message(i) for i in range(3)])
    bad = {"flight_id": "b", "latitude": 500, "longitude": 0, "timestamp": "2024-03-01T00:00:00Z"}
    write_jsonl(day / "bad.jsonl", [bad])
    settings.save("landing_root", str(landing))
    job = defs.resolve_job_def("ingest_job")

    def reject_rate_check() -> dg.AssetCheckEvaluation:
        result = job.execute_in_process(
            partition_key="2024-03-01",
            instance=dg.DagsterInstance.ephemeral(),
            raise_on_error=False,
        )
        [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == "reject_rate"]
        return check

    first = reject_rate_check()
    assert first.passed is False
    assert first.metadata["threshold"].value == 0.05
    settings.save("max_reject_rate", "0.5")
    second = reject_rate_check()
    assert second.passed is True
    assert second.metadata["threshold"].value == 0.5


@pytest.mark.apache
def test_flights_ingest_with_a_landing_option_leaves_the_environment_as_it_was(
    apache_url: str, flights_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLIGHTS_DATABASE_URL", apache_url)
    monkeypatch.setenv("FLIGHTS_LANDING_ROOT", str(flights_env / "elsewhere"))
    before = dict(os.environ)
    result = CliRunner().invoke(ingest, ["--from", "2024-01-02", "--landing", str(DATA / "drops")])
    assert result.exit_code == 0, result.output
    assert "2024-01-02" in result.output and "FAILED" not in result.output
    assert dict(os.environ) == before
