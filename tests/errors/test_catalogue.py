"""The error catalogue: complete, bilingual, documented, and rendered as the contract says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sekisho.errors.catalogue import CATALOGUE, FIELD_LABELS, REASONS, SekishoError

CONTRACT_CODES = """login.invalid_credentials login.throttled account.unverified account.suspended
account.dormant password.too_short password.too_common code.invalid code.expired
code.too_many_attempts code.resend_too_soon link.expired link.used link.superseded
service.maintenance service.busy request.invalid auth.required auth.step_up_required""".split()
DOCS = Path(__file__).resolve().parents[2] / "docs" / "errors.md"


def test_contract_codes_exist():
    assert set(CONTRACT_CODES) <= set(CATALOGUE)


@pytest.mark.parametrize("code", sorted(CATALOGUE))
def test_every_entry_is_complete_in_both_languages(code):
    spec = CATALOGUE[code]
    assert re.fullmatch(r"[a-z]+(_[a-z]+)*\.[a-z_]+", code)
    assert 400 <= spec.status < 600
    for table in (spec.message, spec.remedy):
        assert set(table) == {"ja", "en"}
        assert all(text.strip() for text in table.values())
    assert re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", spec.message["ja"])


def test_reasons_and_field_labels_are_bilingual():
    for table in (*REASONS.values(), *FIELD_LABELS.values()):
        assert set(table) == {"ja", "en"}


def test_unknown_code_cannot_be_raised():
    with pytest.raises(KeyError):
        SekishoError("no.such_code")


def test_error_list_in_docs_matches_catalogue():
    documented = set(re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \|", DOCS.read_text(), re.M))
    assert documented == set(CATALOGUE), "run: python -m sekisho.errors.docs > docs/errors.md"


async def test_envelope_shape_language_and_retry_after(client):
    ja = await client.post("/api/v1/login", json={"identifier": "", "password": "x"})
    en = await client.post("/api/v1/login", json={"identifier": "", "password": "x"},
                           headers={"Accept-Language": "en-GB,en;q=0.8"})
    for response in (ja, en):
        assert response.status_code == 422
        error = response.json()["error"]
        assert set(error) >= {"code", "message", "remedy", "reference"}
        assert (error["code"], error["field"], error["reason"]) == \
            ("request.invalid", "identifier", "missing")
    for response, lang in ((ja, "ja"), (en, "en")):
        error = response.json()["error"]
        assert error["message"] == CATALOGUE["request.invalid"].message[lang].format(
            field_label=FIELD_LABELS["identifier"][lang])
        assert error["remedy"] == REASONS["missing"][lang]


async def test_non_json_bodies_are_refused(client):
    form = await client.post("/api/v1/login", data={"identifier": "a", "password": "b"})
    assert form.status_code == 415
    assert form.json()["error"]["code"] == "request.unsupported_media_type"
    broken = await client.post("/api/v1/login", content=b"{not json",
                               headers={"Content-Type": "application/json"})
    assert broken.status_code == 422
    assert broken.json()["error"]["code"] == "request.invalid"


async def test_not_found_and_method_not_allowed_use_the_envelope(client):
    missing = await client.get("/api/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "request.not_found"
    wrong = await client.get("/api/v1/login")
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "request.method_not_allowed"


async def test_every_error_reference_names_a_recorded_event(client, core):
    response = await client.get("/api/v1/session")
    reference = response.json()["error"]["reference"]
    async with core.db.transaction() as db:
        events = await core.events.by_reference(db, reference)
    assert [(e.kind, e.outcome) for e in events] == [("request_rejected", "auth.required")]


async def test_openapi_is_served(client):
    document = (await client.get("/api/v1/openapi.json")).json()
    assert "/api/v1/login" in document["paths"]
