"""The ScheduleStore contract on both backends: jobs change only with their event (idempotent),
claims hold only on the version read and write their outbox row with them, leases hide a row
from other senders, and jobs and outbox rows follow their user (link, erase)."""

from __future__ import annotations

from dataclasses import replace

from storage import Event, EventActions, Store
from storage.types import Claim, Job, OutboxItem, ScheduleChange

from .conftest import Backend

APP = "app"


def job(job_id: str, **fields: object) -> Job:
    base = Job(job_id, "reminder", "telegram", None, "1", 1.0, text="hi", due_at=100.0)
    return replace(base, **fields)  # type: ignore[arg-type]


def outbox(outbox_id: str, user: str, platform: str = "telegram") -> OutboxItem:
    return OutboxItem(outbox_id, user, platform, None, "1", f"text of {outbox_id}", 1.0)


async def change(store: Store, user: str, *changes: ScheduleChange, event_id: str = "") -> bool:
    session = await store.get_session(APP, user, "s") or await store.create_session(APP, user, "s")
    event = Event(
        author="system",
        content={"text": "x"},
        actions=EventActions(schedule_changes=changes),
        **({"id": event_id} if event_id else {}),
    )
    return await store.append_event(session, event)


async def test_jobs_change_with_their_event_only_once(store: Store) -> None:
    add = ScheduleChange("add", job("j1"))
    assert await change(store, "u1", add, ScheduleChange("add", job("j2")), event_id="e1")
    assert not await change(store, "u1", ScheduleChange("remove", job_id="j1"), event_id="e1")
    assert [j.id for j in await store.jobs(APP, "u1")] == ["j1", "j2"]
    await change(store, "u2", ScheduleChange("remove", job_id="j1"))  # not theirs
    await change(store, "u1", ScheduleChange("remove", job_id="j2"))
    [kept] = await store.jobs(APP, "u1")
    assert (kept.id, kept.user_id, kept.text, kept.version, kept.armed) == (
        "j1",
        "u1",
        "hi",
        0,
        True,
    )
    assert await store.due_jobs(APP, 99.0) == [] and len(await store.due_jobs(APP, 100.0)) == 1


async def test_a_claim_holds_only_on_the_version_read(store: Store) -> None:
    alert = job("a1", kind="alert", symbol="AAPL", op="above", value=10.0, due_at=None)
    await change(store, "u1", ScheduleChange("add", job("r1")), ScheduleChange("add", alert))
    assert await store.alert_symbols(APP) == ["AAPL"]
    [read] = await store.alerts_for(APP, ["AAPL", "MSFT"])
    fire = Claim("a1", read.version, armed=False, outbox=outbox("alert:a1:0", "u1"))
    assert await store.claim(APP, [fire]) == [fire.outbox]
    assert await store.claim(APP, [fire]) == []  # the version moved on: a second worker
    [fired] = await store.alerts_for(APP, ["AAPL"])
    assert (fired.armed, fired.version) == (False, 1)
    late = Claim("r1", 0, done=True, outbox=outbox("reminder:r1:100", "u1"), as_notice=True)
    assert await store.claim(APP, [late]) == []  # a notice, not an outbox row
    assert [n.text for n in await store.notices("telegram", "1")] == ["text of reminder:r1:100"]
    assert [j.id for j in await store.jobs(APP, "u1")] == ["a1"]
    assert [o.id for o in await store.pending_outbox(APP, 0.0)] == ["alert:a1:0"]


async def test_leases_hide_rows_from_other_senders(store: Store) -> None:
    await change(store, "u1", *(ScheduleChange("add", job(f"r{n}")) for n in range(3)))
    jobs = await store.due_jobs(APP, 100.0)
    platforms = ["telegram", "telegram", "discord"]
    claims = [
        Claim(j.id, j.version, done=True, outbox=outbox(f"o{n}", "u1", platforms[n]))
        for n, j in enumerate(jobs)
    ]
    assert len(await store.claim(APP, claims)) == 3
    first = await store.lease_outbox(APP, 10.0, 25.0, ["telegram"])
    assert [o.id for o in first] == ["o0", "o1"]
    assert await store.lease_outbox(APP, 20.0, 35.0, ["telegram"]) == []  # leased
    assert [o.id for o in await store.lease_outbox(APP, 20.0, 1e9, ["discord"])] == ["o2"]
    await store.outbox_sent(APP, "o0")
    await store.outbox_later(APP, "o1", 100.0)
    assert await store.lease_outbox(APP, 30.0, 45.0, ["telegram"]) == []
    moved = replace(first[1], platform="discord", platform_user_id="d-1", tried=("telegram:1",))
    await store.outbox_redirect(APP, moved)
    [again] = await store.lease_outbox(APP, 40.0, 55.0, ["discord"])
    assert (again.id, again.platform, again.platform_user_id) == ("o1", "discord", "d-1")
    assert again.attempts == 1 and again.tried == ("telegram:1",)


async def test_jobs_follow_their_user_through_link_and_erase(
    store: Store, backend: Backend
) -> None:
    ann = await store.resolve_user("telegram", "1", "Ann")
    bob = await store.resolve_user("discord", "2", "Bob")
    await change(store, ann, ScheduleChange("add", job("j-ann")))
    await change(store, bob, ScheduleChange("add", job("j-bob", platform="discord")))
    [due] = [j for j in await store.due_jobs(APP, 100.0) if j.id == "j-bob"]
    await store.claim(APP, [Claim("j-bob", due.version, done=True, outbox=outbox("o-b", bob))])
    await change(store, bob, ScheduleChange("add", job("j-bob-2")))
    code = await store.create_link_code(ann)
    assert await store.redeem_link_code(code, "discord", "2") == ann
    assert [j.id for j in await store.jobs(APP, ann)] == ["j-ann", "j-bob-2"]
    assert [o.user_id for o in await store.pending_outbox(APP, 0.0)] == [ann]
    exported = await store.export_user(APP, ann)
    assert len(exported["jobs"]) == 2 and exported["outbox"][0]["text"] == "text of o-b"
    await store.delete_user(APP, ann)
    assert await store.jobs(APP, ann) == [] and await store.pending_outbox(APP, 0.0) == []
    assert not [row for row in await backend.dump_rows() if ann in repr(row)]
