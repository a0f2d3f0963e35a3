"""``sekisho oidc client add|list|remove|rotate-secret`` and ``sekisho oidc keys
list|rotate``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sekisho.cli_support import run_with_core

if TYPE_CHECKING:
    from sekisho.core import Core

oidc_app = typer.Typer(help="The OpenID Connect provider: relying parties and signing keys.",
                       no_args_is_help=True)
client_app = typer.Typer(help="Register and remove relying parties.", no_args_is_help=True)
keys_app = typer.Typer(help="Signing keys for ID tokens.", no_args_is_help=True)
oidc_app.add_typer(client_app, name="client")
oidc_app.add_typer(keys_app, name="keys")


def _echo(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def _registry(core: Core) -> Any:
    from sekisho.oidc.clients import ClientRegistry

    return ClientRegistry(core.clock, core.tokens)


def _keys(core: Core) -> Any:
    from sekisho.oidc.keys import KeyRing

    return KeyRing.from_settings(core.settings, core.clock)


@client_app.command("add")
def add(name: Annotated[str, typer.Option(help="Shown to members on the consent page.")],
        redirect_uri: Annotated[list[str], typer.Option(
            help="Exact redirect URI; repeat for several.")],
        public: Annotated[bool, typer.Option(
            help="A mobile or browser app without a secret (PKCE S256 required).")] = False,
        first_party: Annotated[bool, typer.Option(
            help="The operator's own app: members are not asked for consent.")] = False,
        scope: Annotated[list[str] | None, typer.Option(
            help="Allowed scope; repeat (default: openid profile email).")] = None,
        post_logout_redirect_uri: Annotated[list[str] | None, typer.Option()] = None,
        backchannel_logout_uri: Annotated[str | None, typer.Option()] = None,
        alg: Annotated[str, typer.Option(help="ID token algorithm: RS256 or ES256.")
                       ] = "RS256",
        auth_method: Annotated[str | None, typer.Option(
            help="client_secret_basic (default) or client_secret_post.")] = None,
        min_app_version: Annotated[str | None, typer.Option(
            help="Older apps (app_version parameter) are asked to update.")] = None) -> None:
    """Register a relying party; prints its client_id and, once, its secret."""
    from sekisho.oidc.clients import ClientSpec, describe_client

    spec = ClientSpec(name=name, redirect_uris=redirect_uri, public=public,
                      first_party=first_party, scopes=scope or ["openid", "profile", "email"],
                      post_logout_redirect_uris=post_logout_redirect_uri or [],
                      backchannel_logout_uri=backchannel_logout_uri,
                      id_token_signed_response_alg=alg, min_app_version=min_app_version,
                      token_endpoint_auth_method=auth_method)

    async def work(core: Core) -> dict[str, Any]:
        client, secret = await core.db.run(lambda conn: _registry(core).register(conn, spec),
                                           write=True)
        return {**describe_client(client), **({"client_secret": secret} if secret else {})}

    _echo(run_with_core(work))


@client_app.command("list")
def list_clients() -> None:
    """Every registered relying party (never their secrets)."""
    from sekisho.oidc.clients import describe_client

    async def work(core: Core) -> list[dict[str, Any]]:
        clients = await core.db.run(_registry(core).listing)
        return [describe_client(c) for c in clients]

    _echo(run_with_core(work))


@client_app.command("remove")
def remove(client_id: str) -> None:
    """Remove a relying party with every link and token of it."""

    async def work(core: Core) -> None:
        await core.db.run(lambda conn: _registry(core).remove(conn, client_id), write=True)

    run_with_core(work)
    typer.echo(f"removed {client_id}")


@client_app.command("rotate-secret")
def rotate_secret(client_id: str) -> None:
    """A new secret for a confidential client (the old one stops working at once)."""

    async def work(core: Core) -> str:
        return await core.db.run(  # type: ignore[no-any-return]
            lambda conn: _registry(core).rotate_secret(conn, client_id), write=True)

    _echo({"client_id": client_id, "client_secret": run_with_core(work)})


@keys_app.command("list")
def list_keys() -> None:
    """Signing keys: when each was made, signs from, stops signing, leaves the JWKS."""

    async def work(core: Core) -> list[dict[str, Any]]:
        return await core.db.run(_keys(core).listing)  # type: ignore[no-any-return]

    _echo(run_with_core(work))


@keys_app.command("rotate")
def rotate(now: Annotated[bool, typer.Option(
        "--now", help="After a key leak: sign with the new keys at once and withdraw the old "
                      "ones from the JWKS, so tokens they signed stop being trusted (members "
                      "sign in to relying parties again).")] = False) -> None:
    """New RS256 and ES256 keys: published at once, signing after
    oidc_key_publish_lead_seconds."""

    async def work(core: Core) -> list[str]:
        lead = 0 if now else core.settings.oidc_key_publish_lead_seconds
        return await core.db.run(  # type: ignore[no-any-return]
            lambda conn: _keys(core).rotate(conn, lead, retire_old=now), write=True)

    _echo({"new_kids": run_with_core(work)})
