"""The documented multi-host instance configuration loads into a real Dagster instance."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest
from dagster_docker import DockerRunLauncher

from pipelines.settings import PROJECT_ROOT


def test_the_distributed_instance_config_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, apache_server: str
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster_home" / "dagster.distributed.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", apache_server.rsplit("/", 1)[0] + "/dagster")
    monkeypatch.setenv("FLIGHTS_IMAGE", "registry.example/flights:1.0")
    monkeypatch.setenv("FLIGHTS_DOCKER_NETWORK", "flights")
    with dg.DagsterInstance.get() as instance:
        launcher = instance.run_launcher
        assert isinstance(launcher, DockerRunLauncher)
        assert launcher.image == "registry.example/flights:1.0"
        assert "FLIGHTS_DATABASE_URL" in launcher.env_vars
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        concurrency = instance.get_concurrency_config()
        assert concurrency.pool_config.default_pool_limit == 6
        assert concurrency.run_queue_config.max_concurrent_runs == 16
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"


def test_the_local_instance_config_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, apache_server: str
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(PROJECT_ROOT / "dagster_home"))
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", apache_server.rsplit("/", 1)[0] + "/dagster")
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 2
