"""docs/reference.md is generated from the method table, and the params it lists are
exactly the fields each method reads (checked by running every method)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from apflow.service import Service
from apflow.service.params import Params
from apflow.service.reference import PARAMS, render_reference
from apflow.service.service import METHODS
from apflow.service.taskfields import READ_ONLY_FIELDS
from tests.service.conftest import ADMIN

DOC = Path(__file__).parents[2] / "docs" / "reference.md"
REQUIRED_VALUES: dict[str, Any] = {
    "task_id": "some-task", "run_id": "some-run", "source": "ops", "tasks": [],
    "schedule_type": "daily", "schedule_expression": "09:00", "name": "n",
}


class Read(Exception):
    """Raised by Params.done in these tests, carrying the fields the method read."""

    def __init__(self, seen: set[str]) -> None:
        super().__init__(sorted(seen))
        self.seen = seen


def test_the_reference_is_generated_from_the_code() -> None:
    assert DOC.read_text() == render_reference(), \
        "run: python -m apflow.service.reference > docs/reference.md"


def test_every_method_is_documented() -> None:
    assert set(PARAMS) == set(METHODS)


@pytest.mark.parametrize("method", sorted(METHODS))
async def test_the_documented_params_are_the_ones_the_method_reads(
        service: Service, method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def done(self: Params) -> None:
        raise Read(set(self._seen))

    monkeypatch.setattr(Params, "done", done)
    declared = {param.name for param in PARAMS[method]}
    required = {param.name: REQUIRED_VALUES[param.name]
                for param in PARAMS[method] if param.required}
    with pytest.raises(Read) as caught:
        await service.call(method, required, ADMIN)
    seen = caught.value.seen
    if method in ("tasks.create", "tasks.update"):  # read-only fields are looked for, refused
        seen -= READ_ONLY_FIELDS - {"id"} if method == "tasks.create" else READ_ONLY_FIELDS
    assert seen == declared
