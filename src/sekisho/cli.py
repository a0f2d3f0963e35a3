"""The ``sekisho`` command: serve, migrate, members (create, card reissue), admins, the demo."""

from __future__ import annotations

import asyncio
import os
import secrets
from typing import Annotated

import typer

from sekisho.identity.models import Role
from sekisho.maintenance.cli import maintenance_app
from sekisho.oidc.cli import oidc_app
from sekisho.status.cli import status_app
from sekisho.waiting_room.cli import room_app
from sekisho.settings import Settings

app = typer.Typer(help="sekisho: identity and login service.", no_args_is_help=True,
                  add_completion=False)
member_app = typer.Typer(help="Manage members.", no_args_is_help=True)
admin_app = typer.Typer(help="Manage staff accounts.", no_args_is_help=True)
app.add_typer(member_app, name="member")
app.add_typer(admin_app, name="admin")
app.add_typer(maintenance_app, name="maintenance")
app.add_typer(status_app, name="status")
app.add_typer(room_app, name="waiting-room")
app.add_typer(oidc_app, name="oidc")

DEMO_EMAIL = "demo@example.com"


def _settings() -> Settings:
    return Settings()


def _prepare(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.outbox_dir.mkdir(parents=True, exist_ok=True)
    settings.resolved_secret_key()


@app.command()
def migrate() -> None:
    """Apply database migrations (needed once per release on PostgreSQL)."""
    from sekisho.migrations.runner import upgrade

    settings = _settings()
    _prepare(settings)
    upgrade(settings.resolved_database_url)
    typer.echo("database is up to date")


@app.command()
def serve(host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
          workers: Annotated[int, typer.Option(help="Worker processes.")] = 1) -> None:
    """Start the service. On the embedded SQLite default, migrate and renew the demo member."""
    import uvicorn

    from sekisho.migrations.runner import upgrade
    from sekisho.observability.logs import log_config

    settings = _settings()
    if "base_url" not in settings.model_fields_set:
        # Unconfigured, links in mails point where this process listens (the worker
        # processes read the same environment).
        os.environ["SEKISHO_BASE_URL"] = f"http://{host}:{port}"
        settings = _settings()
    if workers > 1 and "python_on_one_cpu" not in settings.model_fields_set:
        # Each worker would keep its Python on the CPU it starts on, maybe the same one.
        os.environ["SEKISHO_PYTHON_ON_ONE_CPU"] = "false"
    _prepare(settings)
    if settings.is_embedded_database:
        upgrade(settings.resolved_database_url)
        if settings.demo:
            _print_demo(settings)
    _print_hashing(settings)
    typer.echo(f"sekisho listening on http://{host}:{port}  (public URL {settings.base_url})")
    # sekisho writes the access log itself (with the request id); uvicorn's is off.
    uvicorn.run("sekisho.cli:asgi_app", factory=True, host=host, port=port, workers=workers,
                proxy_headers=False, log_level="info", access_log=False,
                log_config=log_config(settings.log_format))


def asgi_app():  # noqa: ANN201 - uvicorn factory
    """The factory uvicorn imports in each worker process."""
    from sekisho.app import create_app

    return create_app(_settings())


def _print_hashing(settings: Settings) -> None:
    """Which argon2id implementation logins will use, and what this machine gets from it."""
    from sekisho.methods.password.backends import measure_rate, select_backend

    backend = select_backend(settings.argon2_memory_kib, settings.argon2_time_cost,
                             settings.argon2_parallelism, prefer=settings.argon2_backend)
    rate = measure_rate(backend, seconds=0.5, threads=settings.hash_concurrency)
    typer.echo(f"password hashing: {backend.name}, argon2id m={backend.memory_kib} "
               f"t={backend.time_cost} p={backend.parallelism}: {rate:.0f} hashes/s with "
               f"{settings.hash_concurrency} threads")


def _print_demo(settings: Settings) -> None:
    password = asyncio.run(_ensure_member(settings, DEMO_EMAIL, None, "Demo", Role.MEMBER,
                                          reset=True))
    typer.echo(f"demo member: {DEMO_EMAIL} / password: {password}  (renewed at every start)")


async def _ensure_member(settings: Settings, email: str, password: str | None,
                         display_name: str | None, role: Role, *, reset: bool) -> str:
    """Create a verified account (or, with ``reset``, renew its password); return the password."""
    from sekisho.core import build_core
    from sekisho.identity.normalize import normalise_password

    secret = normalise_password(password) if password else _demo_password()
    core = build_core(settings)
    try:
        address = core.accounts.email_address(email)
        if password:
            core.policy.check(secret, context_words=[address.display.split("@")[0]])
        password_hash = await core.hasher.hash(secret)
        async with core.db.transaction() as db:
            match = await core.accounts.find(db, address)
            if match is None:
                account = await core.accounts.create(
                    db, email=address, password_hash=password_hash, display_name=display_name,
                    locale=settings.default_locale, verified=True, role=role)
            elif reset:
                account = match.account
                account.password_hash = password_hash
                account.password_changed_at = core.clock.now()
            else:
                raise typer.BadParameter(f"{email} already has an account")
            member_id = account.member_id
    finally:
        await core.db.dispose()
    typer.echo(f"member ID {member_id}")
    return secret


def _demo_password() -> str:
    words = ["sakura", "fuji", "kaede", "tsuki", "umi", "hoshi", "yama", "kawa", "sora", "mori"]
    return "-".join(secrets.choice(words) for _ in range(3)) + f"-{secrets.randbelow(100):02d}"


def _create(email: str, password: str | None, name: str | None, role: Role) -> None:
    from sekisho.errors import SekishoError
    from sekisho.errors.handler import describe

    settings = _settings()
    _prepare(settings)
    try:
        secret = asyncio.run(_ensure_member(settings, email, password, name, role, reset=False))
    except SekishoError as error:
        text = describe(error, "en")
        raise typer.BadParameter(f"{error.code}: {text['message']} {text['remedy']}") from None
    if password is None:
        typer.echo(f"password: {secret}")


@member_app.command("create")
def member_create(email: str,
                  password: Annotated[str | None, typer.Option(help="Omit to generate one.")] = None,
                  name: Annotated[str | None, typer.Option(help="Display name.")] = None) -> None:
    """Create a verified member."""
    _create(email, password, name, Role.MEMBER)


@admin_app.command("create")
def admin_create(email: str,
                 password: Annotated[str | None, typer.Option(help="Omit to generate one.")] = None,
                 name: Annotated[str | None, typer.Option(help="Display name.")] = None) -> None:
    """Create a staff account with the admin role."""
    _create(email, password, name, Role.ADMIN)


@member_app.command("card")
def member_card(member_id: str, card_number: str) -> None:
    """Issue a new card number to a member. The old number keeps logging in (and tells the
    member which card replaced it) but can never lead to anyone else."""
    settings = _settings()
    _prepare(settings)
    last4 = asyncio.run(_reissue_card(settings, member_id, card_number))
    typer.echo(f"member {member_id} now has the card ending in {last4}")


async def _reissue_card(settings: Settings, member_id: str, card_number: str) -> str:
    from sekisho.context import RequestContext
    from sekisho.core import build_core
    from sekisho.errors import SekishoError
    from sekisho.events.models import OK, EventKind
    from sekisho.identity.models import IdentifierKind

    core = build_core(settings)
    try:
        try:
            card = core.accounts.identify(card_number)
        except SekishoError:
            card = None
        if card is None or card.kind != IdentifierKind.CARD:
            raise typer.BadParameter(f"{card_number!r} is not a card number")
        async with core.db.transaction() as db:
            account = await core.accounts.by_member_id(db, member_id)
            if account is None:
                raise typer.BadParameter(f"no member with ID {member_id}")
            if await core.accounts.find(db, card) is not None:
                raise typer.BadParameter("this card number is already in use")
            await core.accounts.add_card(db, account, card.value)
            await core.events.record(
                db, kind=EventKind.ACCOUNT_ADMIN, outcome=OK, ctx=RequestContext(),
                account_id=account.id,
                detail={"action": "card_reissued", "card_last4": card.value[-4:]})
        return card.value[-4:]
    finally:
        await core.close()


@app.command()
def demo() -> None:
    """Create the demo member, or give it a new password, and print how to sign in."""
    settings = _settings()
    _prepare(settings)
    if settings.is_embedded_database:
        from sekisho.migrations.runner import upgrade

        upgrade(settings.resolved_database_url)
    _print_demo(settings)


def main() -> None:
    app()
