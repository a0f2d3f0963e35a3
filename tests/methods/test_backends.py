"""argon2id backends: standard PHC strings that every other backend (and argon2-cffi) verifies."""

from __future__ import annotations

import itertools

import pytest
from argon2 import PasswordHasher as Argon2Cffi

from sekisho.methods.password.backends import (
    BACKENDS,
    Argon2Backend,
    Argon2CffiBackend,
    PyNaClBackend,
    available_backends,
    classify_build,
    measure_rate,
    select_backend,
)

CHEAP = {"memory_kib": 1024, "time_cost": 1, "parallelism": 1}
PASSWORD = "パスワード kaede"  # not ASCII: every backend must encode it as UTF-8
REFERENCE = Argon2Cffi(memory_cost=1024, time_cost=1, parallelism=1)

BACKENDS_HERE = available_backends(**CHEAP)


def by_key(backend: Argon2Backend) -> str:
    return backend.key


@pytest.fixture(params=BACKENDS_HERE, ids=by_key)
def backend(request: pytest.FixtureRequest) -> Argon2Backend:
    return request.param  # type: ignore[no-any-return]


def test_argon2_cffi_is_always_there():
    assert "argon2-cffi" in {b.key for b in BACKENDS_HERE}


def test_hash_is_a_standard_phc_string_argon2_cffi_verifies(backend: Argon2Backend):
    stored = backend.hash(PASSWORD)
    assert stored.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    assert REFERENCE.verify(stored, PASSWORD)
    assert not backend.needs_rehash(stored)
    assert backend.hash(PASSWORD) != stored  # a fresh salt each time


def test_verifies_argon2_cffi_hashes(backend: Argon2Backend):
    stored = REFERENCE.hash(PASSWORD)
    assert backend.verify(stored, PASSWORD) is True
    assert backend.verify(stored, PASSWORD + " ") is False


@pytest.mark.parametrize(("writer", "reader"), list(itertools.product(BACKENDS_HERE, repeat=2)),
                         ids=lambda b: b.key)
def test_every_backend_verifies_every_other(writer: Argon2Backend, reader: Argon2Backend):
    stored = writer.hash(PASSWORD)
    assert reader.verify(stored, PASSWORD) is True
    assert reader.verify(stored, "パスワード kaedE") is False


@pytest.mark.parametrize("malformed", [
    "", "not-a-hash", "$argon2id$", "$argon2id$v=19$m=1024,t=1,p=1$xx$yy",
    "$argon2id$v=19$m=1024,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$",
    "$argon2id$v=99$m=1024,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2hoYXNoaGFzaA",
    "$argon2id$v=19$m=0,t=0,p=0$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2hoYXNoaGFzaA",
    "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW", "パスワード",
])
def test_malformed_hash_is_false_not_an_error(backend: Argon2Backend, malformed: str):
    assert backend.verify(malformed, PASSWORD) is False
    assert backend.needs_rehash(malformed)


def test_needs_rehash_when_parameters_differ(backend: Argon2Backend):
    stored = backend.hash(PASSWORD)
    for changed in ({"memory_kib": 2048}, {"time_cost": 2}, {"parallelism": 2}):
        other = Argon2CffiBackend(**{**CHEAP, **changed})
        assert other.needs_rehash(stored), changed
        assert other.verify(stored, PASSWORD)  # old parameters still verify
    assert backend.needs_rehash(Argon2Cffi(memory_cost=1024, time_cost=1, parallelism=1,
                                           hash_len=16).hash(PASSWORD))
    assert backend.needs_rehash(Argon2CffiBackend(**{**CHEAP, "parallelism": 2}).hash(PASSWORD))


def test_select_backend_returns_an_available_one():
    chosen = select_backend(**CHEAP)
    assert chosen.key in {b.key for b in BACKENDS_HERE}
    assert chosen.releases_gil
    assert chosen.verify(REFERENCE.hash(PASSWORD), PASSWORD)
    assert select_backend(**CHEAP, prefer="argon2-cffi").key == "argon2-cffi"
    with pytest.raises(ValueError, match="not available"):
        select_backend(**CHEAP, prefer="argon2-rs")


def test_preference_order_is_fixed_and_respected():
    assert sorted(BACKENDS_HERE, key=lambda b: b.preference) == BACKENDS_HERE
    assert select_backend(**CHEAP).preference == min(b.preference for b in BACKENDS_HERE)


def test_libsodium_only_writes_one_lane():
    assert not PyNaClBackend.available(1024, 1, 2)


def test_measure_rate_counts_hashes_in_threads():
    rate = measure_rate(Argon2CffiBackend(**CHEAP), seconds=0.2, threads=2)
    assert rate > 10


def test_every_backend_has_a_name_and_key():
    for backend_class in BACKENDS:
        assert backend_class.key
    for backend in BACKENDS_HERE:
        assert backend.name and backend.key in backend.name.lower()


PORTABLE_WHEEL = """Wheel-Version: 1.0
Generator: scikit-build-core 1.1.2
Root-Is-Purelib: false
Tag: cp310-abi3-manylinux_2_26_x86_64
Tag: cp310-abi3-manylinux_2_28_x86_64
"""


@pytest.mark.parametrize(("wheel", "direct_url", "expected"), [
    (PORTABLE_WHEEL, None, "portable wheel"),
    ("Wheel-Version: 1.0\nTag: cp310-abi3-linux_x86_64\nBuild: 1native.fbdd66e57e69\n", None,
     "source build, -O3 -march=native"),
    ("Wheel-Version: 1.0\nTag: cp310-abi3-linux_x86_64\n", None, "source build"),
    (PORTABLE_WHEEL, '{"url": "file:///src/argon2-cffi-bindings", "dir_info": {}}',
     "source build"),
    (None, None, "unknown build"),
])
def test_build_is_read_from_wheel_metadata(wheel: str | None, direct_url: str | None,
                                           expected: str):
    assert classify_build(wheel, direct_url) == expected
