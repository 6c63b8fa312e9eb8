"""The run log sink: lines, masking, seq numbers, batching, the size cap and followers."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from apflow.clock import FakeClock
from apflow.domain.models import LogChunk
from apflow.logsink import RunLogSink
from apflow.masking import Masker

START = datetime(2026, 1, 1, tzinfo=UTC)


class Store:
    """The append target: an in-memory list, plus the calls it received."""

    def __init__(self) -> None:
        self.chunks: list[LogChunk] = []
        self.batches = 0
        self.trimmed: list[int] = []

    async def append(self, chunks: Sequence[LogChunk]) -> None:
        self.batches += 1
        self.chunks.extend(chunks)

    async def trim(self, seq: int) -> None:
        self.trimmed.append(seq)
        self.chunks = [c for c in self.chunks if c.seq > seq]

    @property
    def text(self) -> str:
        return "".join(c.text for c in self.chunks)

    def of(self, stream: str) -> str:
        return "".join(c.text for c in self.chunks if c.stream == stream)


def make_sink(store: Store, *, max_size: int = 0, on_full: str = "drop_new",
              secrets: Sequence[str] = (), flush_bytes: int = 64 * 1024,
              flush_seconds: float = 0.05, trim: bool = False,
              kills: list[int] | None = None, clock: FakeClock | None = None) -> RunLogSink:
    killed = kills if kills is not None else []
    return RunLogSink("run-1", store.append, masker=Masker(secrets),
                      clock=clock or FakeClock(START), max_size=max_size, on_full=on_full,
                      on_kill=lambda: killed.append(1), flush_bytes=flush_bytes,
                      flush_seconds=flush_seconds, trim=store.trim if trim else None)


async def test_chunks_get_increasing_seq_from_zero_and_the_clock_time() -> None:
    store, clock = Store(), FakeClock(START)
    sink = make_sink(store, clock=clock)
    await sink.write("stdout", b"one\n")
    clock.advance(5)
    await sink.write("stderr", "two\n")
    await sink.close()
    assert [(c.seq, c.stream, c.text, c.at) for c in store.chunks] == [
        (0, "stdout", "one\n", START), (1, "stderr", "two\n", clock.now())]
    assert all(c.run_id == "run-1" for c in store.chunks)


async def test_a_line_split_across_writes_is_masked_as_a_whole() -> None:
    store = Store()
    sink = make_sink(store, secrets=["hunter2-secret"])
    await sink.write("stdout", b"pass is hunt")
    await sink.write("stdout", b"er2-secret and PASS")
    await sink.write("stdout", b"WORD=xyz\nnext\n")
    await sink.close()
    assert store.text == "pass is **** and PASSWORD=****\nnext\n"


async def test_streams_keep_their_own_partial_lines() -> None:
    store = Store()
    sink = make_sink(store)
    await sink.write("stdout", "out-a")
    await sink.write("stderr", "err\n")
    await sink.write("stdout", "-b\n")
    await sink.close()
    assert store.of("stdout") == "out-a-b\n" and store.of("stderr") == "err\n"


async def test_invalid_utf8_is_replaced_and_split_characters_survive() -> None:
    store = Store()
    sink = make_sink(store)
    euro = "€".encode()
    await sink.write("stdout", b"bad \xff " + euro[:1])
    await sink.write("stdout", euro[1:] + b"\n")
    await sink.close()
    assert store.text == "bad \ufffd €\n"


async def test_close_flushes_a_trailing_partial_line_and_is_idempotent() -> None:
    store = Store()
    sink = make_sink(store)
    await sink.write("stdout", "no newline")
    assert store.chunks == []
    await sink.close()
    await sink.close()
    assert store.text == "no newline\n" and sink.closed


async def test_output_is_flushed_in_one_batch_after_flush_seconds() -> None:
    store = Store()
    sink = make_sink(store, flush_seconds=0.05)
    for i in range(10):
        await sink.write("stdout", f"line {i}\n")
    assert store.chunks == []
    async with asyncio.timeout(5):
        while not store.chunks:
            await asyncio.sleep(0.01)
    assert store.batches == 1 and len(store.chunks) == 10
    await sink.close()


async def test_output_is_flushed_at_once_when_flush_bytes_are_buffered() -> None:
    store = Store()
    sink = make_sink(store, flush_bytes=100, flush_seconds=60)
    await sink.write("stdout", "x" * 60 + "\n")
    assert store.chunks == []
    await sink.write("stdout", "y" * 60 + "\n")
    assert len(store.chunks) == 2
    await sink.close()


async def test_a_very_long_line_is_stored_without_waiting_for_its_newline() -> None:
    store = Store()
    sink = make_sink(store, flush_seconds=60)
    await sink.write("stdout", "z" * 200_000)
    assert sink.size == 200_000
    await sink.write("stdout", "end\n")
    await sink.close()
    assert store.text == "z" * 200_000 + "end\n" and len(store.chunks) == 2


async def test_drop_new_keeps_output_up_to_the_cap_and_notes_it_once() -> None:
    store = Store()
    sink = make_sink(store, max_size=100, on_full="drop_new")
    for i in range(50):
        await sink.write("stdout", f"line {i:02d}\n")
    await sink.close()
    assert store.of("stdout") == "".join(f"line {i:02d}\n" for i in range(12)) + "line\n"
    assert store.of("system") == ("apflow: log limit of 100 bytes reached, "
                                  "further output dropped\n")
    assert sink.truncated


async def test_system_lines_are_stored_even_past_the_cap() -> None:
    store = Store()
    sink = make_sink(store, max_size=10, on_full="drop_new")
    await sink.write("stdout", "0123456789abcdef\n")
    await sink.write("system", "apflow: timed out\n")
    await sink.close()
    assert store.text.endswith("apflow: timed out\n")


async def test_kill_task_stores_up_to_the_cap_and_asks_to_stop_once() -> None:
    store, kills = Store(), []
    sink = make_sink(store, max_size=20, on_full="kill_task", kills=kills)
    for _ in range(10):
        await sink.write("stderr", "0123456789\n")
    await sink.close()
    assert kills == [1]
    assert store.of("stderr") == "0123456789\n012345678\n"
    assert "stopping the task" in store.of("system")


async def test_drop_old_with_trim_keeps_the_newest_output_in_the_store() -> None:
    store = Store()
    sink = make_sink(store, max_size=50, on_full="drop_old", trim=True, flush_bytes=1)
    for i in range(100):
        await sink.write("stdout", f"line {i:03d}\n")  # 9 bytes each
    await sink.close()
    assert store.text == "".join(f"line {i:03d}\n" for i in range(95, 100))
    assert sink.size == len(store.text) and sink.truncated
    assert store.trimmed and store.trimmed == sorted(store.trimmed)


async def test_drop_old_without_trim_stores_the_head_and_the_newest_tail() -> None:
    store = Store()
    sink = make_sink(store, max_size=45, on_full="drop_old")
    for i in range(100):
        await sink.write("stdout", f"line {i:03d}\n")
    await sink.close()
    stdout = store.of("stdout")
    head = "".join(f"line {i:03d}\n" for i in range(5))
    tail = "".join(f"line {i:03d}\n" for i in range(95, 100))
    assert stdout == head + tail
    assert "bytes dropped here" in store.of("system") and sink.truncated


async def test_a_zero_cap_means_unlimited() -> None:
    store = Store()
    sink = make_sink(store, max_size=0)
    await sink.write("stdout", "x" * 10_000 + "\n")
    await sink.close()
    assert sink.size == 10_001 and not sink.truncated


async def test_wait_for_returns_when_newer_output_is_stored() -> None:
    store = Store()
    sink = make_sink(store, flush_seconds=0.05)
    waiter = asyncio.create_task(sink.wait_for(-1, 10))
    await asyncio.sleep(0.01)
    assert not waiter.done()
    await sink.write("stdout", "hello\n")
    async with asyncio.timeout(5):
        await waiter
    assert store.chunks
    await sink.close()


async def test_wait_for_returns_on_close_and_after_the_time_limit() -> None:
    sink = make_sink(Store())
    started = asyncio.get_running_loop().time()
    await sink.wait_for(5, 0.05)
    assert asyncio.get_running_loop().time() - started < 1
    waiter = asyncio.create_task(sink.wait_for(5, 10))
    await sink.close()
    async with asyncio.timeout(5):
        await waiter


async def test_writes_after_close_are_ignored() -> None:
    store = Store()
    sink = make_sink(store)
    await sink.close()
    await sink.write("stdout", "late\n")
    assert store.chunks == []


def test_an_unknown_on_full_is_refused() -> None:
    with pytest.raises(ValueError, match="on_full"):
        make_sink(Store(), on_full="explode")
