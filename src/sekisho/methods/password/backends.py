"""argon2id implementations behind one interface, all writing and reading standard PHC strings.

Every backend produces ``$argon2id$v=19$m=...,t=...,p=...$<salt>$<hash>`` with a 16-byte salt
and a 32-byte hash, so a hash written by one verifies with any other and stored hashes keep
working whichever backend a deployment runs. The candidates:

* ``argon2-cffi``: the reference C implementation (phc-winner-argon2) through
  argon2-cffi-bindings. Its portable wheel is built for SSE2 only; ``scripts/install``
  rebuilds it from source with ``-O3 -march=native`` (AVX2/AVX-512 where the CPU has them)
  and marks that wheel with a build tag, which :func:`argon2_cffi_build` reads back.
* ``pynacl``: libsodium's argon2id (bundled in PyNaCl's wheel), which picks AVX-512/AVX2/SSSE3
  code at run time yet measures no faster than the portable wheel with a thread per core.
  It only writes ``p=1`` hashes (libsodium's ``str`` API has no lanes).
* ``cryptography``: OpenSSL's argon2id through pyca/cryptography (43+). Releases before 50
  hold the GIL for the whole hash, which would stall a server's event loop.

:func:`select_backend` picks by a fixed preference order, from the measurements in
``docs/performance.md`` (``bench/login_throughput.py``), never by timing at import;
:func:`measure_rate` measures one.
No backend implements argon2 itself.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar

from argon2 import PasswordHasher, Type, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError

SALT_BYTES = 16
HASH_BYTES = 32
ARGON2_VERSION = 19

NATIVE_BUILD_TAG = "1native"
"""Prefix of the wheel build tag ``scripts/install`` puts on its ``-march=native`` build of
argon2-cffi-bindings (the full tag also names the CPU it was built for)."""

UNSELECTABLE = 1000
"""Backends ranked this low are offered for measurement but never chosen automatically."""

_PORTABLE_PLATFORMS = ("manylinux", "musllinux", "macosx", "win")


class Argon2Backend(ABC):
    """One argon2id implementation with fixed parameters (``m`` in KiB, ``t`` passes, ``p`` lanes).

    ``verify`` answers False for a wrong password and for anything that is not a valid
    argon2 PHC string; it never raises for either.
    """

    key: ClassVar[str]
    """Short stable identifier ("argon2-cffi", "pynacl", "cryptography")."""

    def __init__(self, memory_kib: int, time_cost: int, parallelism: int) -> None:
        self.memory_kib = memory_kib
        self.time_cost = time_cost
        self.parallelism = parallelism

    @classmethod
    @abstractmethod
    def available(cls, memory_kib: int, time_cost: int, parallelism: int) -> bool:
        """Whether this implementation is installed and can write hashes with these parameters."""

    @property
    @abstractmethod
    def name(self) -> str:
        """What is in use, for start-up logs and benchmarks (package, version, build)."""

    @property
    def releases_gil(self) -> bool:
        """Whether other Python threads (the event loop) run while this backend hashes."""
        return True

    @property
    @abstractmethod
    def preference(self) -> int:
        """Rank in :func:`select_backend`, lowest first; :data:`UNSELECTABLE` or more: never."""

    @abstractmethod
    def hash(self, password: str) -> str: ...

    @abstractmethod
    def verify(self, phc: str, password: str) -> bool: ...

    def needs_rehash(self, phc: str) -> bool:
        """True unless ``phc`` is argon2id v19 with exactly this backend's parameters and sizes."""
        try:
            found = extract_parameters(phc)
        except (InvalidHashError, ValueError):
            return True
        return (found.type is not Type.ID or found.version != ARGON2_VERSION
                or (found.memory_cost, found.time_cost, found.parallelism)
                != (self.memory_kib, self.time_cost, self.parallelism)
                or found.hash_len != HASH_BYTES or found.salt_len != SALT_BYTES)

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.name}: m={self.memory_kib} t={self.time_cost} "
                f"p={self.parallelism}>")


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def argon2_cffi_build() -> str:
    """How the installed argon2-cffi-bindings was built, from its wheel metadata.

    "source build, -O3 -march=native" for ``scripts/install``'s tagged build, "portable wheel"
    for a manylinux/musllinux/macOS/Windows wheel from PyPI, "source build" for any other
    local build (flags unknown).
    """
    try:
        dist = importlib.metadata.distribution("argon2-cffi-bindings")
    except importlib.metadata.PackageNotFoundError:
        return "unknown build"
    return classify_build(dist.read_text("WHEEL"), dist.read_text("direct_url.json"))


def classify_build(wheel: str | None, direct_url: str | None = None) -> str:
    """:func:`argon2_cffi_build` from the texts of a dist-info's WHEEL and direct_url.json."""
    fields: dict[str, list[str]] = {}
    for line in (wheel or "").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), []).append(value.strip())
    if any(build.startswith(NATIVE_BUILD_TAG) for build in fields.get("Build", [])):
        return "source build, -O3 -march=native"
    try:
        if direct_url and "dir_info" in json.loads(direct_url):
            return "source build"
    except ValueError:
        pass
    tags = fields.get("Tag", [])
    if any(platform in tag for tag in tags for platform in _PORTABLE_PLATFORMS):
        return "portable wheel"
    return "source build" if tags else "unknown build"


class Argon2CffiBackend(Argon2Backend):
    key = "argon2-cffi"

    def __init__(self, memory_kib: int, time_cost: int, parallelism: int) -> None:
        super().__init__(memory_kib, time_cost, parallelism)
        self._hasher = PasswordHasher(memory_cost=memory_kib, time_cost=time_cost,
                                      parallelism=parallelism, hash_len=HASH_BYTES,
                                      salt_len=SALT_BYTES, type=Type.ID)
        self.build = argon2_cffi_build()

    @classmethod
    def available(cls, memory_kib: int, time_cost: int, parallelism: int) -> bool:
        return True  # a dependency of sekisho, and the fallback everywhere

    @property
    def name(self) -> str:
        return f"argon2-cffi {_version('argon2-cffi')} ({self.build})"

    @property
    def preference(self) -> int:
        return 0 if self.build.endswith("-march=native") else 20

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, phc: str, password: str) -> bool:
        try:
            return self._hasher.verify(phc, password)
        except (VerificationError, InvalidHashError, ValueError):
            return False


class PyNaClBackend(Argon2Backend):
    key = "pynacl"

    @classmethod
    def available(cls, memory_kib: int, time_cost: int, parallelism: int) -> bool:
        try:
            import nacl.pwhash.argon2id as sodium
        except ImportError:
            return False
        return (parallelism == 1 and time_cost >= sodium.OPSLIMIT_MIN
                and memory_kib * 1024 >= sodium.MEMLIMIT_MIN)

    @property
    def name(self) -> str:
        return f"PyNaCl {_version('pynacl')} (bundled libsodium)"

    @property
    def preference(self) -> int:
        # As fast as the portable argon2-cffi wheel with a thread per core (each hash maps
        # fresh memory), so no reason to prefer it over the dependency sekisho has anyway.
        return 25

    def hash(self, password: str) -> str:
        import nacl.pwhash.argon2id as sodium

        return sodium.str(password.encode(), opslimit=self.time_cost,
                          memlimit=self.memory_kib * 1024).decode("ascii")

    def verify(self, phc: str, password: str) -> bool:
        import nacl.pwhash.argon2id as sodium
        from nacl.exceptions import CryptoError

        try:
            return bool(sodium.verify(phc.encode(), password.encode()))
        except (CryptoError, ValueError, TypeError):
            return False


class CryptographyBackend(Argon2Backend):
    key = "cryptography"

    @classmethod
    def available(cls, memory_kib: int, time_cost: int, parallelism: int) -> bool:
        try:
            from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
        except ImportError:
            return False
        # 43/44 derive raw keys only; PHC strings came later.
        return hasattr(Argon2id, "derive_phc_encoded") and hasattr(Argon2id, "verify_phc_encoded")

    @property
    def name(self) -> str:
        from cryptography.hazmat.backends.openssl import backend

        gil = "" if self.releases_gil else ", holds the GIL"
        return f"cryptography {_version('cryptography')} ({backend.openssl_version_text()}{gil})"

    @property
    def releases_gil(self) -> bool:
        # pyca/cryptography#15163 (first released in 50.0.0) runs the KDFs without the GIL.
        major = _version("cryptography").split(".")[0]
        return major.isdigit() and int(major) >= 50

    @property
    def preference(self) -> int:
        # Holding the GIL for ~30 ms per hash freezes every other request: never pick it then.
        return 30 if self.releases_gil else UNSELECTABLE

    def hash(self, password: str) -> str:
        from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

        kdf = Argon2id(salt=os.urandom(SALT_BYTES), length=HASH_BYTES, iterations=self.time_cost,
                       lanes=self.parallelism, memory_cost=self.memory_kib)
        return kdf.derive_phc_encoded(password.encode())

    def verify(self, phc: str, password: str) -> bool:
        from cryptography.exceptions import InvalidKey
        from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

        try:
            Argon2id.verify_phc_encoded(password.encode(), phc)
        except (InvalidKey, ValueError, TypeError, OverflowError):
            return False
        return True


BACKENDS: tuple[type[Argon2Backend], ...] = (Argon2CffiBackend, PyNaClBackend, CryptographyBackend)
"""Every implementation this module knows; :func:`available_backends` orders them."""

def available_backends(memory_kib: int, time_cost: int, parallelism: int
                       ) -> list[Argon2Backend]:
    """The installed backends that support these parameters, in order of preference."""
    found = [cls(memory_kib, time_cost, parallelism) for cls in BACKENDS
             if cls.available(memory_kib, time_cost, parallelism)]
    return sorted(found, key=lambda backend: backend.preference)


def select_backend(memory_kib: int, time_cost: int, parallelism: int,
                   prefer: str = "auto") -> Argon2Backend:
    """The backend to hash with: ``prefer`` by :attr:`~Argon2Backend.key`, or the best available.

    "auto" takes the first in preference order: argon2-cffi, which is always installed (as
    ``scripts/install``'s build for this CPU where it could make one), then PyNaCl, then
    pyca/cryptography if it releases the GIL.
    """
    candidates = available_backends(memory_kib, time_cost, parallelism)
    if prefer != "auto":
        for backend in candidates:
            if backend.key == prefer:
                return backend
        known = ", ".join(cls.key for cls in BACKENDS)
        raise ValueError(f"argon2 backend {prefer!r} is not available here "
                         f"(known: {known}; parameters m={memory_kib} t={time_cost} "
                         f"p={parallelism})")
    usable = [backend for backend in candidates if backend.preference < UNSELECTABLE]
    if not usable:  # pragma: no cover - argon2-cffi is a dependency
        raise RuntimeError("no argon2id implementation is installed")
    return usable[0]


def measure_rate(backend: Argon2Backend, seconds: float = 3.0, threads: int | None = None,
                 password: str = "kaede tsuki hoshi sora") -> float:
    """Hashes per second with ``threads`` threads (default: one per CPU) hashing nonstop.

    Each thread hashes until ``seconds`` have passed; the rate counts every finished hash
    over the time until the last one finished. A backend that holds the GIL shows no gain
    from more threads.
    """
    return measure(backend.hash, seconds, threads, password)[0]


def measure(fn: Callable[[str], object], seconds: float, threads: int | None,
            password: str) -> tuple[float, float]:
    """(calls per second, CPU seconds per call) of ``fn(password)`` in ``threads`` threads.

    CPU time per call comes from each thread's own clock, so it stays meaningful on a
    machine that other work shares.
    """
    count = max(1, threads or os.cpu_count() or 1)
    fn(password)  # first call allocates; keep it out of the figures
    done = [0] * count
    cpu = [0.0] * count
    start = time.perf_counter()
    deadline = start + seconds

    def work(slot: int) -> None:
        began = time.thread_time()
        while time.perf_counter() < deadline:
            fn(password)
            done[slot] += 1
        cpu[slot] = time.thread_time() - began

    workers = [threading.Thread(target=work, args=(slot,), daemon=True) for slot in range(count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - start
    total = sum(done)
    return total / elapsed, (sum(cpu) / total if total else float("nan"))
