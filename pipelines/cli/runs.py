"""`flights runs`: see the runs that hold or wait for pool slots, and clear stuck ones."""

from __future__ import annotations

import contextvars
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    import dagster as dg


@click.group("runs")
def runs_group() -> None:
    """Unfinished Dagster runs and the pool slots they hold (DAGSTER_HOME's instance).

    A run whose process was killed (SIGKILL, OOM, a lost host) keeps its slots in the
    `flight_store_writes` pool until it is released: runs on this host are released by the
    next run, by `flights ingest` and by the daemon's dead_runs_sensor; `flights runs clear`
    does it at once.
    """


@runs_group.command("list")
def list_runs() -> None:
    """Each pool's limit and holders, and every unfinished run with its process's state."""

    from pipelines.assets.instance import open_instance
    from pipelines.assets.runs import pool_names, run_states

    with open_instance() as instance:
        for pool in pool_names(instance):
            info = instance.event_log_storage.get_concurrency_info(pool)
            click.echo(
                f"pool {pool}: {info.active_slot_count} of {info.slot_count} slots taken, "
                f"{info.pending_step_count} step(s) waiting"
            )
        states = run_states(instance)
    if not states:
        click.echo("no unfinished runs, no slots held")
    for state in states:
        held = f"  holds {', '.join(state.slots)}" if state.slots else ""
        waits = f"  waits for {', '.join(state.waiting)}" if state.waiting else ""
        stuck = "  STUCK (flights runs clear)" if state.dead else ""
        click.echo(f"{state.describe()}{held}{waits}{stuck}")


@runs_group.command("clear")
@click.argument("run_ids", nargs=-1)
@click.option(
    "--force",
    is_flag=True,
    help="Also release named runs whose process is alive or on another host.",
)
def clear_runs(run_ids: tuple[str, ...], force: bool) -> None:
    """Mark dead runs failed and free their pool slots; with RUN_IDS (or prefixes), those.

    Without RUN_IDS: every run whose process on this host is gone. A named run whose process
    lives (or whose host cannot be checked from here) is released only with --force.
    """

    from pipelines.assets.instance import open_instance
    from pipelines.assets.runs import release, release_dead_runs, run_states

    with open_instance() as instance:
        if not run_ids:
            released = release_dead_runs(instance)
            for state in released:
                click.echo(f"released {state.describe()}")
            if not released:
                click.echo("no stuck runs")
            return
        states = run_states(instance)
        for wanted in run_ids:
            matches = [s for s in states if s.run_id.startswith(wanted)]
            if len(matches) != 1:
                found = "no" if not matches else "several"
                raise click.ClickException(
                    f"{found} unfinished or slot-holding run matches {wanted!r} (flights runs list)"
                )
            state = matches[0]
            if not state.dead and not force:
                raise click.ClickException(
                    f"{state.describe()} is not known to be dead; --force releases it anyway"
                )
            release(instance, state, "released by an operator (flights runs clear)")
            click.echo(f"released {state.describe()}")


class Interrupted(Exception):
    """SIGTERM or SIGINT arrived while a run executed in this process."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(signum)


def _waiting_line(instance: dg.DagsterInstance, run_id: str) -> str | None:
    """What the run waits for (pool, limit, holders), or None when it waits for nothing."""
    from pipelines.assets.runs import pool_names, run_states

    pools = [
        pool
        for pool in pool_names(instance)
        for pending in instance.event_log_storage.get_concurrency_info(pool).pending_steps
        if pending.run_id == run_id and pending.assigned_timestamp is None
    ]
    if not pools:
        return None
    holders = [s for s in run_states(instance) if set(s.slots) & set(pools)]
    return (
        f"waiting for a slot in pool {', '.join(sorted(set(pools)))}, held by "
        f"{'; '.join(s.describe() for s in holders) or 'runs that just ended'} "
        "(flights runs list; flights runs clear frees those of dead runs)"
    )


def execute_run(
    job: dg.JobDefinition,
    instance: dg.DagsterInstance,
    *,
    partition_key: str,
    run_config: Mapping[str, Any],
    say: Callable[[str], None],
    tags: Mapping[str, str] | None = None,
) -> dg.ExecuteInProcessResult:
    """Executes the job in process, in a worker thread, while this (main) thread watches it.

    Every second the watcher releases dead runs (another run's process that died holding a
    slot) and says when the run waits for a pool slot and who holds it. SIGTERM and SIGINT
    stop the run at once: it is marked canceled, its slots freed, and the process exits with
    128 + the signal's number; the day's open transaction dies with the process, so nothing
    of it is committed.
    """
    import dagster as dg
    from dagster._core.utils import make_new_run_id

    from pipelines.assets.runs import (
        WORKER_TAG,
        ensure_pool_limits,
        release_dead_runs,
        worker_identity,
    )

    run_id = make_new_run_id()
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["result"] = job.execute_in_process(
                partition_key=partition_key,
                instance=instance,
                raise_on_error=False,
                run_config=run_config,
                run_id=run_id,
                tags={**(tags or {}), WORKER_TAG: worker_identity()},
            )
        except BaseException as exc:  # re-raised in the main thread
            outcome["error"] = exc

    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    # The run sees the caller's context (e.g. the progress bar's watcher of the reader).
    context = contextvars.copy_context()
    worker = threading.Thread(
        target=context.run, args=(work,), name=f"run {run_id[:8]}", daemon=True
    )
    said = None
    try:
        release_dead_runs(instance)
        # In-process execution bypasses the job's executor, which does this for launched runs.
        ensure_pool_limits(
            instance,
            (op.pool for op in job.all_node_defs if isinstance(op, dg.OpDefinition) and op.pool),
        )
        worker.start()
        while worker.is_alive():
            worker.join(timeout=1.0)
            if worker.is_alive():
                for state in release_dead_runs(instance, keep=[run_id]):
                    say(f"released {state.describe()}: its process is gone")
                line = _waiting_line(instance, run_id)
                if line and line != said:
                    say(f"{partition_key}: {line}")
                said = line
    except Interrupted as stop:
        run = instance.get_run_by_id(run_id)
        if run is not None and not run.is_finished:
            instance.report_run_canceled(run, message=f"stopped by {stop}")
        instance.event_log_storage.free_concurrency_slots_for_run(run_id)
        say(f"{partition_key}: stopped by {stop}; run {run_id[:8]} canceled, nothing committed")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(128 + stop.signum)  # the run's thread may be inside a blocking call
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if "error" in outcome:
        raise outcome["error"]
    result: dg.ExecuteInProcessResult = outcome["result"]
    return result
