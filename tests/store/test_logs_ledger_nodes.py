"""Run logs, the occurrence ledger, nodes, webhook replay digests and rate-limit windows."""

from __future__ import annotations

import asyncio

import pytest

from apflow.domain.enums import OccurrenceOutcome
from apflow.domain.errors import Conflict, NotFound
from apflow.domain.models import LogChunk, Node
from apflow.store.base import OccurrenceFilter
from apflow.store.sqlstore import SqlStore
from tests.store.builders import a_run, a_slot, at
from tests.store.conftest import Backend


def chunk(seq: int, run_id: str = "r1", text: str | None = None) -> LogChunk:
    return LogChunk(run_id=run_id, seq=seq, at=at(seq), stream="stdout" if seq % 2 else "stderr",
                    text=text if text is not None else f"line {seq}\n")


async def test_logs_read_back_in_order_after_a_sequence_number(store: SqlStore) -> None:
    await store.insert_runs([a_run("r1"), a_run("r2")])
    await store.append_logs([chunk(2), chunk(0), chunk(1, text="ünïcode ✓\n"), chunk(0, "r2")])
    assert await store.read_logs("r1") == [chunk(0), chunk(1, text="ünïcode ✓\n"), chunk(2)]
    assert [c.seq for c in await store.read_logs("r1", after_seq=0)] == [1, 2]
    assert [c.seq for c in await store.read_logs("r1", after_seq=0, limit=1)] == [1]
    assert await store.read_logs("r2") == [chunk(0, "r2")]


async def test_delete_logs_upto_drops_the_oldest_chunks(store: SqlStore) -> None:
    await store.insert_runs([a_run("r1")])
    await store.append_logs([chunk(seq) for seq in range(5)])
    await store.delete_logs_upto("r1", 2)
    assert [c.seq for c in await store.read_logs("r1")] == [3, 4]


async def test_a_chunk_stored_twice_is_a_conflict(store: SqlStore) -> None:
    await store.insert_runs([a_run("r1")])
    await store.append_logs([chunk(0)])
    with pytest.raises(Conflict):
        await store.append_logs([chunk(0)])


async def test_logs_of_an_unknown_run_are_not_found(store: SqlStore) -> None:
    with pytest.raises(NotFound, match="run_id"):
        await store.append_logs([chunk(0, "ghost")])


async def test_record_occurrences_counts_only_the_new_slots(store: SqlStore) -> None:
    assert await store.record_occurrences([a_slot("t1", at(0)), a_slot("t1", at(60))]) == 2
    assert await store.record_occurrences([a_slot("t1", at(60)), a_slot("t1", at(120)),
                                           a_slot("t2", at(60))]) == 2
    assert await store.record_occurrences([]) == 0


async def test_a_recorded_slot_keeps_its_first_outcome(store: SqlStore) -> None:
    first = a_slot("t1", at(0), outcome=OccurrenceOutcome.SKIPPED, detail="maintenance",
                   requested_by="alice", recorded_at=at(-5))
    await store.record_occurrences([first])
    await store.record_occurrences([a_slot("t1", at(0), "r1")])
    assert await store.list_occurrences(OccurrenceFilter()) == [first]


LEDGER_FILTERS: list[tuple[str, OccurrenceFilter, list[tuple[str, int]]]] = [
    ("everything", OccurrenceFilter(), [("a", 120), ("a", 60), ("b", 60), ("a", 0)]),
    ("task_id", OccurrenceFilter(task_id="b"), [("b", 60)]),
    ("outcome", OccurrenceFilter(outcome=OccurrenceOutcome.MISSED), [("a", 60)]),
    ("since", OccurrenceFilter(since=at(60)), [("a", 120), ("a", 60), ("b", 60)]),
    ("until", OccurrenceFilter(until=at(60)), [("a", 0)]),
    ("window", OccurrenceFilter(task_id="a", since=at(0), until=at(120)), [("a", 60), ("a", 0)]),
]


@pytest.mark.parametrize(("case", "flt", "expected"), LEDGER_FILTERS,
                         ids=[case for case, _, _ in LEDGER_FILTERS])
async def test_list_occurrences_applies_each_filter_newest_slot_first(
        store: SqlStore, case: str, flt: OccurrenceFilter,
        expected: list[tuple[str, int]]) -> None:
    await store.record_occurrences([
        a_slot("a", at(0)), a_slot("a", at(60), outcome=OccurrenceOutcome.MISSED),
        a_slot("a", at(120)), a_slot("b", at(60))])
    found = await store.list_occurrences(flt)
    assert [(row.task_id, int((row.scheduled_for - at(0)).total_seconds())) for row in found] \
        == expected


async def test_list_occurrences_pages(store: SqlStore) -> None:
    await store.record_occurrences([a_slot("a", at(i)) for i in range(5)])
    page = await store.list_occurrences(OccurrenceFilter(), limit=2, offset=1)
    assert [row.scheduled_for for row in page] == [at(3), at(2)]


def a_node(node_id: str, **fields: object) -> Node:
    values: dict[str, object] = {"host": "box", "pid": 42, "started_at": at(0),
                                 "heartbeat_at": at(0), "state": "active"}
    values.update(fields)
    return Node(id=node_id, **values)  # type: ignore[arg-type]


async def test_upsert_node_registers_then_refreshes(store: SqlStore) -> None:
    await store.upsert_node(a_node("b"))
    await store.upsert_node(a_node("a"))
    await store.upsert_node(a_node("a", heartbeat_at=at(30), running=3, state="draining"))
    assert await store.list_nodes() == [
        a_node("a", heartbeat_at=at(30), running=3, state="draining"), a_node("b")]


async def test_a_signature_is_accepted_once_until_it_expires(store: SqlStore) -> None:
    assert await store.remember_signature("abc", at(0), at(300)) is True
    assert await store.remember_signature("abc", at(10), at(310)) is False
    assert await store.remember_signature("other", at(10), at(310)) is True
    assert await store.remember_signature("abc", at(300), at(600)) is True
    assert await store.remember_signature("abc", at(301), at(601)) is False


async def test_concurrent_replays_of_one_signature_let_exactly_one_through(
        backend: Backend) -> None:
    stores = [await backend.new_store() for _ in range(3)]
    answers = await asyncio.gather(*(store.remember_signature("same", at(0), at(300))
                                     for store in stores for _ in range(4)))
    assert sorted(answers) == [False] * 11 + [True]


async def test_rate_limit_hits_count_within_a_window_and_restart_in_the_next(
        store: SqlStore) -> None:
    assert [await store.rate_limit_hit("ip:1", at(0), at(1)) for _ in range(3)] == [1, 2, 3]
    assert await store.rate_limit_hit("ip:2", at(0), at(2)) == 1
    assert await store.rate_limit_hit("ip:1", at(60), at(61)) == 1


async def test_concurrent_rate_limit_hits_are_each_counted(backend: Backend) -> None:
    stores = [await backend.new_store() for _ in range(3)]
    counts = await asyncio.gather(*(store.rate_limit_hit("ip", at(0), at(1))
                                    for store in stores for _ in range(10)))
    assert sorted(counts) == list(range(1, 31))
