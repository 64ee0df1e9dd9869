"""Runs whose process died: found by a liveness record, marked failed, their pool slots freed.

A run killed with SIGKILL (an OOM kill, a lost node) never reports its end: Dagster keeps it
STARTED and keeps the `flight_store_writes` slots its steps claimed, so later writers wait
forever. Every run therefore records which process executes it (the `flights/worker` tag:
host, pid and the process's start time, so a reused pid is not mistaken for it), and:

- every run, as it starts, and `flights ingest`, while it waits for a slot, release the runs
  whose process on this host is gone;
- a sensor in the daemon does the same every 30 s, for backfills and schedules;
- `flights runs` lists unfinished runs and slot holders, and `flights runs clear` releases
  dead ones (or named ones, for a process on another host the sweep cannot see).

Dagster's own run monitoring (dagster.yaml) fails runs stuck in STARTING or CANCELING and
frees the slots of finished runs; it cannot tell a dead run worker of the default launcher
from a live one, which is what the liveness record adds.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import sqlalchemy.exc
from dagster._core.execution.context.system import PlanOrchestrationContext
from dagster._core.execution.plan.plan import ExecutionPlan
from dagster._core.execution.retries import RetryMode
from dagster._core.execution.step_dependency_config import StepDependencyConfig

WORKER_TAG = "flights/worker"
UNFINISHED = [
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (/proc), or "" where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


def worker_identity(pid: int | None = None) -> str:
    """`host:pid:start` of a process (this one by default): the liveness record of a run."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_start_time(pid)}"


def worker_alive(identity: str) -> bool | None:
    """True or False for a process on this host; None for another host's (not knowable)."""
    host, pid_text, start = identity.rsplit(":", 2)
    if host != socket.gethostname():
        return None
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    return not start or _start_time(pid) in ("", start)


@dataclass(frozen=True)
class RunState:
    """An unfinished run or a run holding pool slots, and whether its process lives."""

    run_id: str
    job: str
    partition: str
    status: str
    worker: str
    alive: bool | None
    slots: tuple[str, ...]
    waiting: tuple[str, ...]

    @property
    def dead(self) -> bool:
        """Its process is gone, or it finished and still holds slots."""
        finished = self.status not in {s.value for s in UNFINISHED}
        return self.alive is False or (finished and bool(self.slots or self.waiting))

    def describe(self) -> str:
        life = {True: "alive", False: "dead", None: "unknown"}[self.alive]
        where = f"pid {self.worker.split(':')[1]} on {self.worker.split(':')[0]}, {life}"
        return (
            f"run {self.run_id[:8]} {self.job} {self.partition or '-'} {self.status} "
            f"({where if self.worker else 'no liveness record'})"
        )


def pool_names(instance: dg.DagsterInstance) -> list[str]:
    return sorted(instance.event_log_storage.get_concurrency_keys())


def run_states(instance: dg.DagsterInstance) -> list[RunState]:
    """Every unfinished run and every run that holds or waits for a pool slot."""
    slots: dict[str, list[str]] = {}
    waiting: dict[str, list[str]] = {}
    for pool in pool_names(instance):
        info = instance.event_log_storage.get_concurrency_info(pool)
        for claimed in info.claimed_slots:
            slots.setdefault(claimed.run_id, []).append(pool)
        for pending in info.pending_steps:
            if pending.assigned_timestamp is None:
                waiting.setdefault(pending.run_id, []).append(pool)
    runs = {r.run_id: r for r in instance.get_runs(filters=dg.RunsFilter(statuses=UNFINISHED))}
    others = (set(slots) | set(waiting)) - set(runs)
    if others:
        runs |= {r.run_id: r for r in instance.get_runs(filters=dg.RunsFilter(run_ids=[*others]))}
    states = []
    for run_id in sorted(set(runs) | set(slots) | set(waiting)):
        run = runs.get(run_id)
        worker = run.tags.get(WORKER_TAG, "") if run else ""
        states.append(
            RunState(
                run_id=run_id,
                job=run.job_name if run else "?",
                partition=run.tags.get("dagster/partition", "") if run else "",
                status=run.status.value if run else "DELETED",
                worker=worker,
                alive=worker_alive(worker) if worker else None,
                slots=tuple(slots.get(run_id, ())),
                waiting=tuple(waiting.get(run_id, ())),
            )
        )
    return states


def ensure_pool_limits(instance: dg.DagsterInstance, pools: Iterable[str]) -> None:
    """Gives each pool its default limit before any step claims a slot in it.

    Dagster creates a pool's limit row when a step first claims a slot; two runs that start
    together on a fresh instance both insert it, and the loser's run fails on the unique key.
    Here the loser finds the winner's row and goes on.
    """
    storage = instance.event_log_storage
    for pool in sorted(set(pools) - set(storage.get_concurrency_keys())):
        try:
            storage.initialize_concurrency_limit_to_default(pool)
        except sqlalchemy.exc.DBAPIError:  # the unique key, or the transaction it aborted
            if pool not in storage.get_concurrency_keys():
                raise


def release(instance: dg.DagsterInstance, state: RunState, reason: str) -> None:
    """Marks the run failed (when unfinished) and frees every pool slot it holds or awaits."""
    run = instance.get_run_by_id(state.run_id)
    if run is not None and not run.is_finished:
        instance.report_run_failed(run, message=reason)
    instance.event_log_storage.free_concurrency_slots_for_run(state.run_id)


def release_dead_runs(instance: dg.DagsterInstance, *, keep: Iterable[str] = ()) -> list[RunState]:
    """Releases the runs whose process on this host is gone; returns them."""
    kept = set(keep)
    dead = [s for s in run_states(instance) if s.dead and s.run_id not in kept]
    for state in dead:
        release(
            instance,
            state,
            f"its process ({state.worker or 'unknown'}) is gone: marked failed and its pool "
            "slots freed; run the partition again",
        )
    return dead


class LivenessExecutor(dg.Executor):
    """Dagster's in-process executor, recording the run's process first (the liveness
    record), creating its pools' limits and releasing dead runs before it claims any slot."""

    def __init__(self, inner: dg.Executor) -> None:
        self._inner = inner

    @property
    def retries(self) -> RetryMode:
        return self._inner.retries

    @property
    def step_dependency_config(self) -> StepDependencyConfig:
        return self._inner.step_dependency_config

    def execute(
        self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan
    ) -> Iterator[dg.DagsterEvent]:
        instance = plan_context.instance
        instance.add_run_tags(plan_context.run_id, {WORKER_TAG: worker_identity()})
        ensure_pool_limits(instance, (step.pool for step in execution_plan.steps if step.pool))
        for state in release_dead_runs(instance, keep=[plan_context.run_id]):
            plan_context.log.warning(f"released {state.describe()}: its process is gone")
        yield from self._inner.execute(plan_context, execution_plan)


def _liveness_executor(init_context: dg.InitExecutorContext) -> dg.Executor:
    create = dg.in_process_executor.executor_creation_fn
    if create is None:
        raise RuntimeError("dagster's in_process executor has no creation function")
    return LivenessExecutor(create(init_context))


in_process_with_liveness = dg.ExecutorDefinition(
    name="in_process",
    config_schema=dg.in_process_executor.config_schema.as_field(),
    executor_creation_fn=_liveness_executor,
    description="One process per run (its few short steps in turn), with a liveness record.",
)


@dg.sensor(
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Every 30 s, marks failed the runs whose process on this host died (SIGKILL, "
    "OOM) and frees their pool slots, so later runs never wait on them.",
)
def dead_runs_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    released = release_dead_runs(context.instance)
    for state in released:
        context.log.warning(f"released {state.describe()}")
    return dg.SkipReason(f"released {len(released)} dead run(s)")


defs = dg.Definitions(sensors=[dead_runs_sensor])
