"""Pure schedule maths: parse and validate, next fire time, DST, preview. No I/O, no clock.

Every function takes the instant it reasons about as an argument and returns aware UTC
datetimes; the rules are in docs/schedules.md.
"""

from apflow.schedules.cronline import cron_line
from apflow.schedules.describe import describe
from apflow.schedules.jitter import jitter_offset
from apflow.schedules.matching import matches
from apflow.schedules.parse import MAX_EXPRESSION_LENGTH
from apflow.schedules.preview import MAX_PREVIEW_COUNT, PreviewItem, preview
from apflow.schedules.spec import ScheduleSpec, validate
from apflow.schedules.timezones import validate_timezone
from apflow.schedules.window import iter_fires, next_fire, slots_between

__all__ = [
    "MAX_EXPRESSION_LENGTH",
    "MAX_PREVIEW_COUNT",
    "PreviewItem",
    "ScheduleSpec",
    "cron_line",
    "describe",
    "iter_fires",
    "jitter_offset",
    "matches",
    "next_fire",
    "preview",
    "slots_between",
    "validate",
    "validate_timezone",
]
