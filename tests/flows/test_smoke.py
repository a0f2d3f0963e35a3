async def test_register_verify_login(client, mailbox):
    r = await client.post("/api/v1/registrations", json={"email": "taro@example.jp", "password": "kaede tsuki hoshi"})
    assert r.status_code == 202, r.text
    mail = await mailbox.last("taro@example.jp")
    r = await client.post("/api/v1/verifications/email", json={"email": "taro@example.jp", "code": mail.code})
    assert r.status_code == 200, r.text
    r = await client.post("/api/v1/login", json={"identifier": "TARO@EXAMPLE.JP", "password": "kaede tsuki hoshi"})
    assert r.status_code == 200, r.text
    r = await client.get("/api/v1/session")
    assert r.status_code == 200, r.text
