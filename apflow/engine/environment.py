"""The environment a run's process gets."""

from __future__ import annotations

from apflow.domain.models import Run, Task


def apflow_variables(run: Run) -> dict[str, str]:
    """The APFLOW_* variables describing this run; they overwrite same-named user ones."""
    scheduled = run.scheduled_for or run.queued_at
    return {
        "APFLOW_RUN_ID": run.id,
        "APFLOW_TASK_ID": run.task_id,
        "APFLOW_TRIGGER": run.trigger.value,
        "APFLOW_SCHEDULED_FOR": scheduled.isoformat(),
        "APFLOW_ATTEMPT": str(run.attempt),
    }


def run_environment(task: Task, run: Run) -> dict[str, str]:
    """task.env, then the run's variables (run time wins), then APFLOW_* (always wins)."""
    return {**task.env, **run.variables, **apflow_variables(run)}

