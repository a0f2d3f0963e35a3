"""What a signed-in member does through the API: see the account, change the password."""

from __future__ import annotations

from sqlalchemy import select

from sekisho.events.models import AuthEvent

NEW = "hoshi umi mori kaede"


async def signed_in(client, member) -> dict[str, str]:
    response = await client.post("/api/v1/login", json={"identifier": member.email,
                                                         "password": member.password})
    return {"Authorization": f"Bearer {response.json()['session_token']}"}


async def test_session_shows_the_account(client, factory):
    member = await factory.member(card="4980000011112222", display_name="花子")
    auth = await signed_in(client, member)
    body = (await client.get("/api/v1/session", headers=auth)).json()
    assert body["account"] == body["account"] | {
        "member_id": member.member_id, "email": member.email, "email_verified": True,
        "display_name": "花子", "card_last4": "2222"}
    assert set(body["session"]) >= {"created_at", "last_seen_at", "expires_at"}


async def test_change_password_needs_the_current_one(client, factory, mailbox, core):
    member = await factory.member()
    auth = await signed_in(client, member)
    other = await signed_in(client, member)
    wrong = await client.post("/api/v1/account/password", headers=auth,
                              json={"current_password": "not it at all", "new_password": NEW})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "password.incorrect"
    weak = await client.post("/api/v1/account/password", headers=auth,
                             json={"current_password": member.password,
                                   "new_password": "qwertyuiop"})
    assert weak.json()["error"]["code"] == "password.too_common"
    ok = await client.post("/api/v1/account/password", headers=auth,
                           json={"current_password": member.password, "new_password": NEW})
    assert ok.status_code == 200
    # This session continues; the member's other sessions end.
    assert (await client.get("/api/v1/session", headers=auth)).status_code == 200
    assert (await client.get("/api/v1/session", headers=other)).status_code == 401
    assert (await mailbox.last(member.email)).template == "password_changed"
    async with core.db.transaction() as db:
        outcomes = list(await db.scalars(select(AuthEvent.outcome).where(
            AuthEvent.kind == "password_change").order_by(AuthEvent.id)))
    assert outcomes == ["password.incorrect", "ok"]
    login = await client.post("/api/v1/login", json={"identifier": member.email,
                                                     "password": NEW})
    assert login.status_code == 200


async def test_account_endpoints_require_a_session(client):
    response = await client.post("/api/v1/account/password",
                                 json={"current_password": "a", "new_password": "b"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "auth.required"


async def test_events_of_an_account_newest_first(client, factory, core, clock):
    member = await factory.member()
    await client.post("/api/v1/login", json={"identifier": member.email, "password": "nope nope"})
    clock.advance(5)
    await signed_in(client, member)
    async with core.db.transaction() as db:
        events = await core.events.for_account(db, member.account_id)
    assert [(e.kind, e.outcome) for e in events] == [
        ("new_device_notice", "ok"), ("login", "ok"), ("login", "login.invalid_credentials")]
