"""A calendar rule as an RRULE in its own zone, corrected wherever DST moves a slot.

Away from a UTC offset change apflow's slots and the RFC 5545 reading of the RRULE are the
same instants, one for one. Around each change (a span reaching one jump either side) the
difference is written out: an EXDATE for an RFC instance that never fires, an RDATE for a
slot the RRULE misses. The real slots there are decided by the schedule engine
(`schedules.matches`) among every instant a nearby wall time can name: its first and
second reading and the end of the gap. The one-for-one match elsewhere lets max_runs be
counted off wall times instead of walking every slot.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import islice
from zoneinfo import ZoneInfo

from apflow.gateway.ical_plan import Listed, Plan, Series, Window
from apflow.gateway.ical_rrule import wall_rrule
from apflow.gateway.ical_walls import (
    count_walls,
    day_matches,
    first_wall,
    local_wall,
    nth_wall,
    rfc_instant,
    transitions,
    walls_between,
)
from apflow.schedules import ScheduleSpec, matches, next_fire
from apflow.schedules.rules import WallRule

_MARGIN = timedelta(minutes=1)
_LOOK_BACK = timedelta(days=1)


@dataclass(frozen=True)
class Span:
    """(low, high] around one or more offset changes: their instants and offsets."""

    low: datetime
    high: datetime
    changes: tuple[datetime, ...]
    offsets: tuple[timedelta, ...]


@dataclass
class Corrections:
    """EXDATEs, RDATEs, and how many more instances the RRULE counts than apflow fires."""

    exdates: list[datetime] = field(default_factory=list)
    rdates: list[datetime] = field(default_factory=list)
    surplus: int = 0


@dataclass(frozen=True)
class _Context:
    """One schedule's export: spec and rule, and the slots it may show: (floor, end]."""

    spec: ScheduleSpec
    rule: WallRule
    floor: datetime
    window: Window

    @property
    def zone(self) -> ZoneInfo:
        return self.spec.zone

    @property
    def end(self) -> datetime:
        """The window's end, or schedule_end_at if that comes first."""
        end_at = self.spec.end_at
        return self.window.until if end_at is None else min(self.window.until, end_at)

    @property
    def remaining(self) -> int | None:
        """The runs max_runs leaves, if it is set."""
        limit = self.spec.max_runs
        return None if limit is None else limit - self.window.run_count


def wall_plan(spec: ScheduleSpec, rule: WallRule, window: Window) -> Plan | None:
    """A calendar rule's series, or its slots listed; None when it has no slot left."""
    context = _Context(spec, rule, window.now if spec.start_at is None
                       else max(window.now, spec.start_at), window)
    if context.remaining is not None and context.remaining <= 0:
        return None
    spans = spans_near_changes(spec.zone, window)
    first = _first_slot(context, spans)
    if first is None:
        return None
    text = wall_rrule(rule)
    series = None if text is None else wall_series(context, spans, *first, text)
    return series or listed_walls(context, spans)


def _first_slot(context: _Context,
                spans: list[Span]) -> tuple[datetime, datetime | None] | None:
    """The first slot after the floor, and its wall time when no offset change is near."""
    wall = nth_wall(context.rule, local_wall(context.floor, context.zone), 1)
    if wall is not None:
        at = rfc_instant(wall, context.zone)
        if context.floor < at <= context.end and all(span.low > at for span in spans):
            return at, wall  # no offset change before it: the next wall time is the next slot
    # Past the window (a yearly rule, say) only the engine's own search finds the next slot.
    found = next(iter_slots(context, spans), None) or next_fire(
        context.spec, context.window.now, context.window.run_count)
    return None if found is None else (found, None)


def wall_series(context: _Context, spans: list[Span], first: datetime,
                first_wall_time: datetime | None, text: str) -> Series | None:
    """The corrected series; None if it cannot be written exactly (then list the slots)."""
    start = first_wall_time or _start_wall(context, first, spans)
    if start is None:
        return None
    remaining = context.remaining
    last = None if remaining is None else last_fire(context, spans, remaining)
    end = last or context.spec.end_at
    until = None if end is None else rrule_until(end, spans)
    fixes = corrections(context, spans, start, (end, until))
    if any(_shadows(context.rule, at) for at in fixes.exdates):
        return None
    count = remaining + fixes.surplus if remaining is not None and until is None else None
    return Series(start, text, False, count=count, until=until,
                  exdates=tuple(fixes.exdates), rdates=tuple(fixes.rdates))


def rrule_until(end: datetime, spans: list[Span]) -> datetime:
    """UNTIL for a series whose last slot is `end`: past the span it falls in, if any.

    Around a gap the RFC readings of wall times are out of order (in a 30-minute gap
    02:14 reads as 02:44, after 02:35), and expanders stop at the first instance past
    UNTIL. An UNTIL at the span's end is past all of them; the corrections EXDATE the
    instances between the last slot and it.
    """
    for span in spans:
        if span.low < end < span.high:
            return span.high
    return end


def listed_walls(context: _Context, spans: list[Span]) -> Listed | None:
    """The slots in the window, at most max_instances (and the runs left) of them."""
    most = context.window.max_instances
    if context.remaining is not None:
        most = min(most, context.remaining)
    slots = list(islice(iter_slots(context, spans), most + 1))
    if not slots:
        return None
    more_runs = context.remaining is None or context.remaining > most
    return Listed(tuple(slots[:most]), len(slots) > most and more_runs)


def iter_slots(context: _Context, spans: list[Span]) -> Iterator[datetime]:
    """apflow's slots in (floor, end] in order; near offset changes the engine decides."""
    cursor, end = context.floor, context.end
    for span in [*spans, None]:
        stop = end if span is None else min(span.low, end)
        if stop > cursor:
            for wall in walls_between(context.rule, local_wall(cursor, context.zone),
                                      local_wall(stop, context.zone)):
                yield rfc_instant(wall, context.zone)
        if span is None or span.low >= end:
            return
        high = min(span.high, end)
        yield from real_slots(context, span, _placed_near(context, span, high),
                              max(span.low, cursor), high)
        cursor = max(cursor, span.high)


def _start_wall(context: _Context, first: datetime, spans: list[Span]) -> datetime | None:
    """DTSTART: the first wall time after the floor whose RFC instant is after it too."""
    if all(span.low > first for span in spans):
        return local_wall(first, context.zone)  # nothing moves it: the first slot's own time
    return first_wall(context.rule, context.zone, context.floor)


def spans_near_changes(zone: ZoneInfo, window: Window) -> list[Span]:
    """(low, high] spans around each offset change in the window, merged where they meet."""
    return list(_spans(zone, window.now, window.until))


@lru_cache(maxsize=1024)
def _spans(zone: ZoneInfo, now: datetime, until: datetime) -> tuple[Span, ...]:
    spans: list[Span] = []
    for change in transitions(zone, now - _LOOK_BACK, until):
        # Moved slots lie within one jump of the change: gap times land in [T, T + jump),
        # repeated times in [T - jump, T + jump).
        reach = change.size + _MARGIN
        low, high = change.at - reach, min(change.at + reach, until)
        if high <= low:
            continue
        changes: tuple[datetime, ...] = (change.at,)
        offsets: tuple[timedelta, ...] = (change.before, change.after)
        if spans and low <= spans[-1].high:
            last = spans.pop()
            low, changes, offsets = last.low, last.changes + changes, last.offsets + offsets
        spans.append(Span(low, high, changes, offsets))
    return tuple(spans)


def last_fire(context: _Context, spans: list[Span], remaining: int) -> datetime | None:
    """The remaining-th slot in (floor, end], or None if fewer come by then."""
    cursor, end = context.floor, context.end
    for span in [*spans, None]:
        stop = end if span is None else min(span.low, end)
        if stop > cursor:  # no offset change in (cursor, stop]: wall times map one for one
            low = local_wall(cursor, context.zone)
            found = count_walls(context.rule, low, local_wall(stop, context.zone))
            if found >= remaining:
                wall = nth_wall(context.rule, low, remaining)
                return None if wall is None else rfc_instant(wall, context.zone)
            remaining -= found
        if span is None or span.low >= end:
            return None
        high = min(span.high, end)
        fires = real_slots(context, span, _placed_near(context, span, high),
                           max(span.low, cursor), high)
        if len(fires) >= remaining:
            return fires[remaining - 1]
        remaining -= len(fires)
        cursor = max(cursor, span.high)
    return None


def corrections(context: _Context, spans: list[Span], start: datetime,
                ends: tuple[datetime | None, datetime | None]) -> Corrections:
    """Where the RRULE and apflow disagree, span by span.

    `ends` is (the last real slot, the RRULE's UNTIL): slots up to the first, RRULE
    instances from `start` up to the second.
    """
    fixes = Corrections()
    last, until = ends
    for span in spans:
        high = span.high if until is None else min(span.high, until)
        nearby = _walls_near(context.rule, span, high)
        # Every slot in the span, moved or not, stands for one of these wall times.
        if high > span.low and nearby:
            placed = [(wall, rfc_instant(wall, context.zone)) for wall in nearby]
            rfc = [at for wall, at in placed if wall >= start and span.low < at <= high]
            real_high = high if last is None else min(high, last)
            _compare(fixes, rfc, real_slots(context, span, placed, span.low, real_high))
    return fixes


def real_slots(context: _Context, span: Span, placed: list[tuple[datetime, datetime]],
               low: datetime, high: datetime) -> list[datetime]:
    """apflow's slots in (low, high] within a span, after the floor.

    `placed` pairs each nearby wall time with its RFC (first) reading.
    """
    candidates = set(span.changes)  # a gap's times fire when it ends
    for wall, first in placed:
        candidates.add(first)
        candidates.add(wall.replace(tzinfo=context.zone, fold=1).astimezone(UTC))
    after = max(low, context.floor)
    return sorted(at for at in candidates if after < at <= high and matches(context.spec, at))


def _placed_near(context: _Context, span: Span,
                 high: datetime) -> list[tuple[datetime, datetime]]:
    """Nearby wall times with their RFC readings."""
    return [(wall, rfc_instant(wall, context.zone))
            for wall in _walls_near(context.rule, span, high)]


def _walls_near(rule: WallRule, span: Span, high: datetime) -> list[datetime]:
    """The rule's wall times that could name an instant in (span.low, high]."""
    low_wall = span.low.replace(tzinfo=None) + min(span.offsets)
    high_wall = high.replace(tzinfo=None) + max(span.offsets)
    return list(walls_between(rule, low_wall - _MARGIN, high_wall))


def _compare(fixes: Corrections, rfc: list[datetime], fires: list[datetime]) -> None:
    """Record what the RRULE's instances (`rfc`) and the real slots (`fires`) disagree on."""
    placed = set(rfc)
    fixes.exdates.extend(sorted(placed.difference(fires)))
    fixes.rdates.extend(at for at in fires if at not in placed)
    fixes.surplus += len(rfc) - len(fires)


def _shadows(rule: WallRule, exdate: datetime) -> bool:
    """True if an EXDATE could also hide a real slot in a common expander.

    recurring-ical-events (3.x) matches an EXDATE by its UTC time *or* by an instance's
    local wall time, so an EXDATE at 01:30Z also hides a slot at 01:30 local. Such a rare
    schedule is listed slot by slot instead.
    """
    naive = exdate.replace(tzinfo=None)
    return (day_matches(rule, naive.date()) and naive.hour in rule.hour_set
            and naive.minute in rule.minute_set and naive.second == 0)
