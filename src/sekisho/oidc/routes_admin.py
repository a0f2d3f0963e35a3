"""Admin JSON API for relying parties: ``/api/v1/admin/oidc/clients`` (staff only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from sekisho.oidc.clients import ClientSpec, describe_client
from sekisho.oidc.service import OidcService
from sekisho.sessions.service import ActiveSession
from sekisho.web.deps import require_admin, require_json

router = APIRouter(prefix="/api/v1/admin/oidc/clients", tags=["admin"],
                   dependencies=[Depends(require_json)])


class ClientIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=100)
    redirect_uris: list[str] = Field(max_length=20)
    public: bool = False
    first_party: bool = False
    scopes: list[str] = Field(default_factory=lambda: ["openid", "profile", "email"],
                              max_length=10)
    post_logout_redirect_uris: list[str] = Field(default_factory=list, max_length=20)
    backchannel_logout_uri: str | None = Field(default=None, max_length=500)
    id_token_signed_response_alg: str = "RS256"
    token_endpoint_auth_method: str | None = None
    min_app_version: str | None = Field(default=None, max_length=32)


def _oidc(request: Request) -> OidcService:
    return request.app.state.oidc  # type: ignore[no-any-return]


@router.get("")
async def list_clients(request: Request,
                       _: ActiveSession = Depends(require_admin)) -> dict[str, Any]:
    service = _oidc(request)
    clients = await service.core.db.run(service.clients.listing)
    return {"clients": [describe_client(c) for c in clients]}


@router.post("", status_code=201)
async def create_client(body: ClientIn, request: Request,
                        _: ActiveSession = Depends(require_admin)) -> dict[str, Any]:
    """Register a relying party. The secret of a confidential client is in this answer
    only: sekisho keeps just its hash."""
    service = _oidc(request)
    spec = ClientSpec(**body.model_dump())
    client, secret = await service.core.db.run(
        lambda conn: service.clients.register(conn, spec), write=True)
    return {**describe_client(client), **({"client_secret": secret} if secret else {})}


@router.post("/{client_id}/secret")
async def rotate_secret(client_id: str, request: Request,
                        _: ActiveSession = Depends(require_admin)) -> dict[str, Any]:
    service = _oidc(request)
    secret = await service.core.db.run(
        lambda conn: service.clients.rotate_secret(conn, client_id), write=True)
    return {"client_id": client_id, "client_secret": secret}


@router.delete("/{client_id}", status_code=204)
async def delete_client(client_id: str, request: Request,
                        _: ActiveSession = Depends(require_admin)) -> Response:
    service = _oidc(request)
    await service.core.db.run(lambda conn: service.clients.remove(conn, client_id), write=True)
    return Response(status_code=204)
