"""One run's log sink: decodes, splits into lines, masks, caps and flushes output in batches.

Executors write raw output (bytes or text) per stream; the sink keeps a partial line per
stream until its newline arrives, so the masker sees whole lines (a line longer than
MAX_LINE_CHARS is cut and masked in pieces). Masked chunks get increasing `seq` numbers from 0
and go to the store in batches: when `flush_bytes` are buffered, `flush_seconds` after the
first unflushed chunk, and on close. A partial line is held until its newline or close.

The cap (`max_size` bytes of stored text, <= 0 = unlimited) counts stdout and stderr; lines of
the "system" stream (apflow's own notes) are always stored, so a run always says why it ended.
`on_full` says what happens when output would pass the cap:
- `drop_new`: the output up to the cap is kept, then one system line notes the limit and
  the rest of the run's output is dropped.
- `kill_task`: like drop_new, the system line says the task is being stopped, and
  `on_kill()` is called once (the engine stops the run).
- `drop_old`: the newest output is kept. With a `trim` callback (e.g. the store's
  `delete_logs_upto(run_id, seq)`), chunks keep flowing to the store live and the oldest are
  deleted once the total passes the cap. Without `trim`, stored chunks cannot be taken back:
  the first `max_size` bytes stay, output past them is held in a ring of the newest
  `max_size` bytes and stored on close after a system line saying how much was dropped in
  between (so at most twice the cap is stored).
"""

from __future__ import annotations

import asyncio
import codecs
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Literal

from apflow.clock import Clock
from apflow.domain.models import LogChunk
from apflow.masking import Masker

logger = logging.getLogger(__name__)

OnFull = Literal["drop_new", "drop_old", "kill_task"]
ON_FULL_CHOICES: tuple[str, ...] = ("drop_new", "drop_old", "kill_task")
MAX_LINE_CHARS = 64 * 1024  # a longer line without a newline is cut (and masked in pieces)
SYSTEM = "system"

Append = Callable[[Sequence[LogChunk]], Awaitable[None]]
Trim = Callable[[int], Awaitable[None]]


def _nbytes(text: str) -> int:
    return len(text.encode("utf-8", errors="replace"))


def _head(text: str, max_bytes: int) -> str:
    """The longest prefix of `text` that is at most `max_bytes` bytes of UTF-8."""
    raw = text.encode("utf-8", errors="replace")[:max(max_bytes, 0)]
    return raw.decode("utf-8", errors="ignore")


def _tail(text: str, max_bytes: int) -> str:
    """The longest suffix of `text` that is at most `max_bytes` bytes of UTF-8."""
    raw = text.encode("utf-8", errors="replace")
    return raw[max(len(raw) - max(max_bytes, 0), 0):].decode("utf-8", errors="ignore")


class RunLogSink:
    """The log of one run (see the module docstring)."""

    def __init__(self, run_id: str, append: Append, *, masker: Masker, clock: Clock,
                 max_size: int, on_full: str, on_kill: Callable[[], None],
                 flush_bytes: int = 64 * 1024, flush_seconds: float = 0.2,
                 trim: Trim | None = None) -> None:
        if on_full not in ON_FULL_CHOICES:
            raise ValueError(f"on_full must be one of {', '.join(ON_FULL_CHOICES)}")
        self.run_id = run_id
        self._append = append
        self._masker = masker
        self._clock = clock
        self._max_size = max_size if max_size > 0 else 0
        self._on_full = on_full
        self._on_kill = on_kill
        self._flush_bytes = flush_bytes
        self._flush_seconds = flush_seconds
        self._trim = trim
        self._decoders: dict[str, codecs.IncrementalDecoder] = {}
        self._partial: dict[str, str] = {}
        self._batch: list[LogChunk] = []
        self._batch_bytes = 0
        self._next_seq = 0
        self._flushed_seq = -1
        self._size = 0
        self._truncated = False
        self._full = False  # drop_new/kill_task: the cap was reached, output is dropped
        self._trimming = bool(self._max_size) and on_full == "drop_old" and trim is not None
        self._kept: deque[tuple[int, int]] = deque()  # when trimming: (seq, bytes) stored
        self._trim_upto = -1
        self._ring: deque[tuple[str, str]] = deque()  # drop_old without trim: the newest output
        self._ring_bytes = 0
        self._ring_dropped = 0
        self._flush_lock = asyncio.Lock()
        self._timer: asyncio.Task[None] | None = None
        self._timer_error: BaseException | None = None
        self._waiters: list[asyncio.Future[None]] = []
        self._closing = False
        self._closed = False

    @property
    def size(self) -> int:
        """Bytes of text stored (or about to be) for this run."""
        return self._size

    @property
    def truncated(self) -> bool:
        """True once output was dropped because of the cap."""
        return self._truncated

    @property
    def closed(self) -> bool:
        return self._closed

    # writing -----------------------------------------------------------------------------
    async def write(self, stream: str, data: bytes | str) -> None:
        """Add output of `stream`; complete lines are masked and queued for the store."""
        self._raise_timer_error()
        if self._closing:
            return  # late output of an execution that is already recorded
        text = self._decode(stream, data)
        pending = self._partial.pop(stream, "") + text
        cut = pending.rfind("\n") + 1
        if cut == 0 and len(pending) > MAX_LINE_CHARS:
            cut = len(pending)
        if cut < len(pending):
            self._partial[stream] = pending[cut:]
        if cut:
            self._accept(stream, pending[:cut])
        await self._after_accept()

    def _decode(self, stream: str, data: bytes | str) -> str:
        if isinstance(data, str):
            return data
        decoder = self._decoders.get(stream)
        if decoder is None:
            decoder = self._decoders[stream] = codecs.getincrementaldecoder("utf-8")("replace")
        return decoder.decode(data)

    def _accept(self, stream: str, raw: str) -> None:
        """Mask `raw` and store it within the cap."""
        text = self._masker.mask(raw)
        if stream == SYSTEM or not self._max_size:
            self._add(stream, text)
            if self._trimming:
                self._forget_oldest()
        elif self._on_full == "drop_old":
            self._accept_keeping_newest(stream, text)
        else:
            self._accept_up_to_cap(stream, text)

    def _accept_up_to_cap(self, stream: str, text: str) -> None:
        if self._full:
            return
        room = self._max_size - self._size
        size = _nbytes(text)
        if size <= room:
            self._add(stream, text)
            return
        head = _head(text, room)
        if head:
            self._add(stream, head if head.endswith("\n") else head + "\n")
        self._full = self._truncated = True
        if self._on_full == "kill_task":
            self._add(SYSTEM, f"apflow: log limit of {self._max_size} bytes reached, "
                              "stopping the task\n")
            self._on_kill()
        else:
            self._add(SYSTEM, f"apflow: log limit of {self._max_size} bytes reached, "
                              "further output dropped\n")

    def _accept_keeping_newest(self, stream: str, text: str) -> None:
        size = _nbytes(text)
        if size > self._max_size:
            text = _tail(text, self._max_size)
            size = _nbytes(text)
            self._truncated = True
        if self._trim is not None:
            self._add(stream, text)
            self._forget_oldest()
        elif not self._full and self._size + size <= self._max_size:
            self._add(stream, text)
        else:
            self._full = self._truncated = True
            self._ring.append((stream, text))
            self._ring_bytes += size
            while self._ring_bytes > self._max_size:
                _, old = self._ring.popleft()
                self._ring_bytes -= _nbytes(old)
                self._ring_dropped += _nbytes(old)

    def _forget_oldest(self) -> None:
        """drop_old with trim: mark the oldest chunks past the cap for deletion."""
        while self._size > self._max_size and len(self._kept) > 1:
            seq, dropped = self._kept.popleft()
            self._size -= dropped
            self._trim_upto = seq
            self._truncated = True

    def _add(self, stream: str, text: str) -> None:
        """Queue one masked chunk."""
        seq = self._next_seq
        self._next_seq += 1
        self._batch.append(LogChunk(self.run_id, seq, self._clock.now(), stream, text))
        size = _nbytes(text)
        self._batch_bytes += size
        self._size += size
        if self._trimming:
            self._kept.append((seq, size))

    async def _after_accept(self) -> None:
        if self._batch_bytes >= self._flush_bytes:
            await self._flush()
        elif self._batch and self._timer is None:
            self._timer = asyncio.create_task(self._flush_later(), name=f"log-{self.run_id}")

    async def _flush_later(self) -> None:
        await asyncio.sleep(self._flush_seconds)
        self._timer = None  # from here on close() waits for this flush instead of cancelling
        try:
            await self._flush()
        except Exception as exc:  # reported by the next write() or close()
            logger.error("run log flush failed", extra={"action": "log_flush_failed",
                                                        "run_id": self.run_id})
            self._timer_error = exc

    async def _flush(self) -> None:
        """Send the batch to the store (in order), then delete what drop_old let go."""
        async with self._flush_lock:
            batch, self._batch, self._batch_bytes = self._batch, [], 0
            if batch:
                await self._append(batch)
                self._flushed_seq = batch[-1].seq
                self._notify()
            if self._trim is not None and self._trim_upto >= 0:
                upto, self._trim_upto = self._trim_upto, -1
                await self._trim(upto)

    def _raise_timer_error(self) -> None:
        if self._timer_error is not None:
            error, self._timer_error = self._timer_error, None
            raise error

    # closing and following ---------------------------------------------------------------
    async def close(self) -> None:
        """Store everything still held, trailing partial lines included; idempotent."""
        if self._closing:
            return
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()  # still sleeping (it clears self._timer before flushing)
        for stream in list(self._decoders):
            tail = self._decoders[stream].decode(b"", final=True)
            if tail:
                self._partial[stream] = self._partial.get(stream, "") + tail
        for stream, text in list(self._partial.items()):
            self._accept(stream, text if text.endswith("\n") else text + "\n")
        self._partial.clear()
        self._closing = True
        self._emit_ring()
        try:
            if self._batch or self._trim_upto >= 0 or self._flush_lock.locked():
                await self._flush()  # (most runs of a burst wrote nothing: no lock to take)
            self._raise_timer_error()
        finally:
            self._closed = True
            self._notify()

    def _emit_ring(self) -> None:
        """drop_old without trim: store the newest output held back since the cap."""
        if not self._ring and not self._ring_dropped:
            return
        note = (f"apflow: log limit of {self._max_size} bytes reached, "
                f"{self._ring_dropped} bytes dropped here; the newest output follows\n")
        self._add(SYSTEM, note)
        for stream, text in self._ring:
            self._add(stream, text)
        self._ring.clear()
        self._ring_bytes = 0

    async def wait_for(self, after_seq: int, seconds: float) -> None:
        """Return once a chunk with seq > `after_seq` is stored, the sink closed, or
        `seconds` passed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not (self._flushed_seq > after_seq or self._closed):
            left = deadline - loop.time()
            if left <= 0:
                return
            waiter = loop.create_future()
            self._waiters.append(waiter)
            try:
                await asyncio.wait({waiter}, timeout=left)
            finally:
                waiter.cancel()
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def _notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
