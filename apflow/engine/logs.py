"""Each run's log: a masking, capped sink that flushes to the store, and its followers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace

from apflow.clock import Clock
from apflow.domain.models import Run, Task
from apflow.engine.runs import STOP_LOG_FULL, ActiveRun, Outcome
from apflow.engine.settings import EngineSettings
from apflow.engine.waiting import FinishSignals, wait_event
from apflow.logsink import RunLogSink
from apflow.masking import Masker, is_secret_key
from apflow.store.base import Store


def secrets_of(task: Task, run: Run) -> list[str]:
    """Values the masker must hide: secret-looking keys of task.env and run variables."""
    values = [v for k, v in {**task.env, **run.variables}.items() if is_secret_key(k) and v]
    spec_env = (task.executor or {}).get("env")
    if isinstance(spec_env, dict):
        values += [str(v) for k, v in spec_env.items() if is_secret_key(str(k)) and v]
    return values


class RunLog:
    """The log of one attempt, and the masker that also cleans its error."""

    def __init__(self, sink: RunLogSink, masker: Masker,
                 on_close: Callable[[], None]) -> None:
        self.sink = sink
        self.masker = masker
        self._on_close = on_close

    async def system(self, text: str) -> None:
        """A line from apflow itself (stream "system")."""
        await self.sink.write("system", f"apflow: {text}\n")

    async def close(self) -> None:
        """Flush everything to the store."""
        try:
            await self.sink.close()
        finally:
            self._on_close()

    def mask_outcome(self, outcome: Outcome) -> Outcome:
        """The outcome with its error masked like the log."""
        if outcome.error is None:
            return outcome
        return replace(outcome, error=self.masker.mask(outcome.error))


class LogFactory:
    """Opens run logs and lets followers wait for new output."""

    def __init__(self, store: Store, clock: Clock, settings: EngineSettings,
                 signals: FinishSignals) -> None:
        self._store = store
        self._clock = clock
        self._settings = settings
        self._signals = signals
        self._live: dict[str, RunLogSink] = {}

    def open(self, active: ActiveRun) -> RunLog:
        """A sink for `active` that stops the run if logs.on_full is kill_task."""
        assert active.task is not None
        masker = Masker(secrets_of(active.task, active.run))
        run_id = active.run.id

        async def trim(upto_seq: int) -> None:  # drop_old: the stored log stays within the cap
            await self._store.delete_logs_upto(run_id, upto_seq)

        sink = RunLogSink(run_id, self._store.append_logs, masker=masker,
                          clock=self._clock, max_size=self._settings.logs_max_size,
                          on_full=self._settings.logs_on_full,
                          on_kill=lambda: active.request_stop(STOP_LOG_FULL), trim=trim)
        self._live[run_id] = sink

        def forget() -> None:
            self._live.pop(run_id, None)
        return RunLog(sink, masker, forget)

    async def wait_for_output(self, run_id: str, after_seq: int, seconds: float) -> None:
        """Return when `run_id` has output past `after_seq`, finishes, or `seconds` pass."""
        sink = self._live.get(run_id)
        if sink is None:
            with self._signals.watch(run_id) as finished:
                await wait_event(finished, seconds)
            return
        waiter = asyncio.ensure_future(sink.wait_for(after_seq, seconds))
        await asyncio.wait({waiter}, timeout=seconds)
        waiter.cancel()
