"""The iCalendar surfaces of the server: GET /scheduler/ical and tasks.scheduled.export-ical."""

from __future__ import annotations

from typing import Any

import pytest

from apflow.clock import FakeClock
from tests.webhook.conftest import Gateway, RpcError

DAILY = {"schedule_type": "daily", "schedule_expression": "09:00",
         "timezone": "Europe/Berlin", "schedule_enabled": True}


async def get_feed(gw: Gateway, query: str = "", headers: dict[str, str] | None = None,
                   ) -> tuple[int, str, Any]:
    path = "/scheduler/ical" + (f"?{query}" if query else "")
    async with gw.client.get(path, headers=headers or {}) as response:
        return response.status, await response.text(), response.headers


async def test_the_feed_shows_the_callers_scheduled_tasks(gw: Gateway) -> None:
    mine = await gw.create("standup", user="alice", **DAILY)
    await gw.create("not mine", user="bob", **DAILY)
    await gw.create("unscheduled", user="alice")
    status, text, headers = await get_feed(gw, headers=gw.bearer("alice"))
    assert status == 200
    assert headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert text.startswith("BEGIN:VCALENDAR\r\n")
    assert f"UID:{mine['id']}@apflow" in text
    assert "SUMMARY:standup" in text
    assert "not mine" not in text and "unscheduled" not in text
    assert "DTSTART;TZID=Europe/Berlin:" in text


async def test_the_feed_without_a_token_is_401(gw: Gateway) -> None:
    await gw.create("standup", **DAILY)
    status, text, headers = await get_feed(gw)
    assert status == 401
    assert '"code":401' in text
    assert headers["Content-Type"].startswith("application/json")


async def test_the_feed_with_a_bad_token_is_401(gw: Gateway) -> None:
    status, _, _ = await get_feed(gw, headers={"Authorization": "Bearer nope"})
    assert status == 401


async def test_an_admin_feed_shows_everyone_or_one_user(gw: Gateway) -> None:
    await gw.create("alice's", user="alice", **DAILY)
    await gw.create("bob's", user="bob", **DAILY)
    _, everyone, _ = await get_feed(gw, headers=gw.bearer("root", "admin"))
    assert "alice's" in everyone and "bob's" in everyone
    _, bobs, _ = await get_feed(gw, "user_id=bob&name=Bob", gw.bearer("root", "admin"))
    assert "bob's" in bobs and "alice's" not in bobs
    assert "X-WR-CALNAME:Bob" in bobs


async def test_a_user_cannot_read_another_users_feed(gw: Gateway) -> None:
    await gw.create("bob's", user="bob", **DAILY)
    status, text, _ = await get_feed(gw, "user_id=bob", gw.bearer("alice"))
    assert status == 403
    assert "bob's" not in text


async def test_an_unchanged_feed_answers_304_to_its_etag(gw: Gateway) -> None:
    task = await gw.create("standup", **DAILY)
    _, _, headers = await get_feed(gw, headers=gw.bearer())
    etag = headers["ETag"]
    assert headers["Last-Modified"].endswith("GMT")
    status, body, _ = await get_feed(gw, headers={**gw.bearer(), "If-None-Match": etag})
    assert (status, body) == (304, "")
    assert isinstance(gw.clock, FakeClock)
    gw.clock.advance(1)
    await gw.call("tasks.update", {"task_id": task["id"], "name": "daily standup"})
    status, body, changed = await get_feed(gw, headers={**gw.bearer(),
                                                        "If-None-Match": etag})
    assert status == 200 and "daily standup" in body
    assert changed["ETag"] != etag


@pytest.mark.parametrize(("query", "field"), [("colour=red", "colour"),
                                              ("horizon_days=0", "horizon_days"),
                                              ("horizon_days=x", "horizon_days"),
                                              ("enabled_only=maybe", "enabled_only")])
async def test_a_bad_query_is_400_naming_the_parameter(gw: Gateway, query: str,
                                                       field: str) -> None:
    status, text, _ = await get_feed(gw, query, gw.bearer())
    assert status == 400
    assert f'"message":"{field}:' in text


async def test_rpc_export_ical_returns_the_calendar_text_and_count(gw: Gateway) -> None:
    await gw.create("standup", **DAILY)
    await gw.create("paused", **{**DAILY, "schedule_enabled": False})
    result = await gw.call("tasks.scheduled.export-ical", {"calendar_name": "Team"})
    assert result["count"] == 1
    assert "X-WR-CALNAME:Team" in result["content"]
    assert "SUMMARY:standup" in result["content"] and "paused" not in result["content"]
    every = await gw.call("tasks.scheduled.export-ical", {"enabled_only": False})
    assert every["count"] == 2
    assert "STATUS:TENTATIVE" in every["content"]


async def test_rpc_export_ical_user_id_is_for_admins(gw: Gateway) -> None:
    await gw.create("bob's", user="bob", **DAILY)
    with pytest.raises(RpcError) as error:
        await gw.call("tasks.scheduled.export-ical", {"user_id": "bob"}, user="alice")
    assert error.value.code == -32003
    result = await gw.call("tasks.scheduled.export-ical", {"user_id": "bob"}, user="root",
                           role="admin")
    assert result["count"] == 1


@pytest.mark.parametrize(("params", "field"), [({"horizon_days": 0}, "horizon_days"),
                                               ({"limit": 0}, "limit"),
                                               ({"calendar_name": ""}, "calendar_name"),
                                               ({"format": "ics"}, "format")])
async def test_rpc_export_ical_checks_its_params(gw: Gateway, params: dict[str, Any],
                                                 field: str) -> None:
    with pytest.raises(RpcError) as error:
        await gw.call("tasks.scheduled.export-ical", params)
    assert error.value.code == -32602
    assert error.value.message.startswith(f"{field}:")


async def test_a_feed_token_opens_only_its_owners_feed_until_revoked(gw: Gateway) -> None:
    await gw.create("alice's", user="alice", **DAILY)
    await gw.create("bob's", user="bob", **DAILY)
    issued = await gw.call("tasks.scheduled.feed-token", {}, user="alice")
    assert issued["user_id"] == "alice"
    assert issued["feed_path"] == f"/scheduler/ical?token={issued['token']}"
    status, text, _ = await get_feed(gw, f"token={issued['token']}")
    assert status == 200 and "alice's" in text and "bob's" not in text
    # A feed token is not a key to anything else.
    status, _, _ = await get_feed(gw, f"token={issued['token']}&user_id=bob")
    assert status == 403
    revoked = await gw.call("tasks.scheduled.feed-token.revoke", {}, user="alice")
    assert revoked == {"user_id": "alice", "revoked": True}
    status, text, _ = await get_feed(gw, f"token={issued['token']}")
    assert status == 401 and "revoked" in text


async def test_a_new_feed_token_replaces_the_old_one(gw: Gateway) -> None:
    await gw.create("alice's", user="alice", **DAILY)
    old = await gw.call("tasks.scheduled.feed-token", {}, user="alice")
    new = await gw.call("tasks.scheduled.feed-token", {}, user="alice")
    assert new["token"] != old["token"]
    assert (await get_feed(gw, f"token={old['token']}"))[0] == 401
    assert (await get_feed(gw, f"token={new['token']}"))[0] == 200


async def test_only_admins_issue_feed_tokens_for_others(gw: Gateway) -> None:
    with pytest.raises(RpcError) as caught:
        await gw.call("tasks.scheduled.feed-token", {"user_id": "bob"}, user="alice")
    assert caught.value.code == -32003
    issued = await gw.call("tasks.scheduled.feed-token", {"user_id": "bob"}, user="root",
                           role="admin")
    assert issued["user_id"] == "bob"


async def test_an_unknown_feed_token_is_401(gw: Gateway) -> None:
    status, _, _ = await get_feed(gw, "token=made-up")
    assert status == 401
