"""Time of one login at the default argon2id parameters (m=19456 KiB, t=2, p=1).

    python3 bench/login_latency.py [--logins 50]

Reports the raw argon2id verify time and the end-to-end time of ``POST /api/v1/login``
through the full app (in-process ASGI, SQLite), one login at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from argon2 import PasswordHasher
from asgi_lifespan import LifespanManager

from sekisho.app import create_app
from sekisho.identity.normalize import normalise_email
from sekisho.migrations.runner import upgrade
from sekisho.settings import Settings

PASSWORD = "kaede tsuki hoshi sora"


def _summary(label: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    return (f"{label}: median {statistics.median(ordered) * 1000:.1f} ms, "
            f"p95 {p95 * 1000:.1f} ms over {len(ordered)}")


def raw_verify(n: int) -> list[float]:
    hasher = PasswordHasher(memory_cost=19456, time_cost=2, parallelism=1)
    stored = hasher.hash(PASSWORD)
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        hasher.verify(stored, PASSWORD)
        samples.append(time.perf_counter() - started)
    return samples


async def end_to_end(n: int, data_dir: Path) -> list[float]:
    url = f"sqlite+aiosqlite:///{data_dir / 'sekisho.db'}"
    await asyncio.to_thread(upgrade, url)
    settings = Settings(data_dir=data_dir, database_url=url, run_outbox_worker=False)
    app = create_app(settings)
    core = app.state.core
    async with LifespanManager(app):
        password_hash = await core.hasher.hash(PASSWORD)
        async with core.db.transaction() as db:
            await core.accounts.create(db, email=normalise_email("bench@example.jp"),
                                       password_hash=password_hash, display_name=None,
                                       locale="ja", verified=True)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            samples = []
            for _ in range(n):
                started = time.perf_counter()
                response = await client.post("/api/v1/login", json={
                    "identifier": "bench@example.jp", "password": PASSWORD})
                samples.append(time.perf_counter() - started)
                assert response.status_code == 200, response.text
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--logins", type=int, default=50)
    args = parser.parse_args()
    print(_summary("argon2id verify (raw)", raw_verify(args.logins)))
    with tempfile.TemporaryDirectory() as tmp:
        print(_summary("POST /api/v1/login (end to end)",
                       asyncio.run(end_to_end(args.logins, Path(tmp)))))


if __name__ == "__main__":
    main()
