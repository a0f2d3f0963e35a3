"""TOTP: RFC 6238 vectors through our step arithmetic, drift window, replay, sealing, enrolment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp
import pytest

from sekisho.clock import FrozenClock
from sekisho.methods.totp import Totp

KEY = b"k" * 32
# RFC 6238 Appendix B: the ASCII key "12345678901234567890" (SHA1 rows), in base32.
RFC_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
# (Unix time, T in hex, 8-digit TOTP) for the SHA1 rows of Appendix B.
RFC_SHA1 = [
    (59, 0x1, "94287082"),
    (1111111109, 0x23523EC, "07081804"),
    (1111111111, 0x23523ED, "14050471"),
    (1234567890, 0x273EF07, "89005924"),
    (2000000000, 0x3F940AA, "69279037"),
    (20000000000, 0x27BC86AA, "65353130"),
]
MOMENT = datetime(2026, 1, 5, 3, 0, 10, tzinfo=UTC)  # 10 s into a 30 s step


def at(unix: int) -> datetime:
    return datetime.fromtimestamp(unix, UTC)


def totp(clock: FrozenClock, **options: int) -> Totp:
    return Totp(KEY, clock, issuer="Sekisho", **options)


def code_at(moment: datetime, secret: str = RFC_SECRET) -> str:
    return pyotp.TOTP(secret).at(moment)


@pytest.mark.parametrize(("unix", "counter", "expected"), RFC_SHA1)
def test_rfc6238_sha1_vectors_match_at_their_step(unix: int, counter: int, expected: str):
    clock = FrozenClock(at(unix))
    t = totp(clock, digits=8)
    assert t.step() == counter
    assert t.match(RFC_SECRET, expected, None) == counter
    assert t.match(RFC_SECRET, expected, counter) is None  # already used
    # And pyotp itself, directly, agrees with the RFC.
    assert pyotp.TOTP(RFC_SECRET, digits=8).at(unix) == expected
    assert pyotp.HOTP(RFC_SECRET, digits=8).at(counter) == expected


def test_six_digit_code_is_the_rfc_value_mod_a_million():
    clock = FrozenClock(at(59))
    assert totp(clock).match(RFC_SECRET, "287082", None) == 1


def test_one_step_of_drift_either_way_is_accepted():
    clock = FrozenClock(MOMENT)
    t = totp(clock)
    now = t.step()
    for offset in (-1, 0, 1):
        code = code_at(MOMENT + timedelta(seconds=30 * offset))
        assert t.match(RFC_SECRET, code, None) == now + offset


def test_two_steps_of_drift_are_refused():
    clock = FrozenClock(MOMENT)
    t = totp(clock)
    for offset in (-2, 2):
        code = code_at(MOMENT + timedelta(seconds=30 * offset))
        assert t.match(RFC_SECRET, code, None) is None


def test_a_wider_window_accepts_two_steps():
    clock = FrozenClock(MOMENT)
    t = totp(clock, window=2)
    code = code_at(MOMENT - timedelta(seconds=60))
    assert t.match(RFC_SECRET, code, None) == t.step() - 2


def test_the_same_code_is_accepted_once():
    clock = FrozenClock(MOMENT)
    t = totp(clock)
    code = code_at(MOMENT)
    step = t.match(RFC_SECRET, code, None)
    assert step == t.step()
    assert t.match(RFC_SECRET, code, step) is None
    clock.advance(30)  # still inside the window, one step later: still a replay
    assert t.match(RFC_SECRET, code, step) is None


def test_an_older_code_after_a_newer_one_is_refused():
    clock = FrozenClock(MOMENT)
    t = totp(clock)
    newer = t.match(RFC_SECRET, code_at(MOMENT + timedelta(seconds=30)), None)
    assert newer == t.step() + 1
    assert t.match(RFC_SECRET, code_at(MOMENT), newer) is None
    assert t.match(RFC_SECRET, code_at(MOMENT - timedelta(seconds=30)), newer) is None


def test_the_next_code_after_an_accepted_one_is_accepted():
    clock = FrozenClock(MOMENT)
    t = totp(clock)
    first = t.match(RFC_SECRET, code_at(MOMENT), None)
    assert first is not None
    clock.advance(30)
    assert t.match(RFC_SECRET, code_at(clock.now()), first) == first + 1


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "１２３４５６", "000000"])
def test_malformed_or_wrong_codes_are_refused(code: str):
    clock = FrozenClock(MOMENT)
    t = totp(clock)
    assert code_at(MOMENT) != "000000"  # the moment and secret are fixed: so is the code
    assert t.match(RFC_SECRET, code, None) is None


def test_a_code_for_another_secret_is_refused():
    clock = FrozenClock(MOMENT)
    t = totp(clock)
    other = pyotp.random_base32(32)
    assert t.match(RFC_SECRET, code_at(MOMENT, other), None) is None


@pytest.mark.parametrize("options", [{"digits": 5}, {"digits": 9}, {"period": 0},
                                     {"window": -1}])
def test_unsafe_settings_are_refused(options: dict[str, int]):
    with pytest.raises(ValueError):
        totp(FrozenClock(), **options)


def test_seal_round_trips():
    t = totp(FrozenClock())
    secret = pyotp.random_base32(32)
    sealed = t.seal(secret)
    assert secret not in sealed
    assert t.unseal(sealed) == secret


def test_two_seals_of_one_secret_differ():
    t = totp(FrozenClock())
    assert t.seal(RFC_SECRET) != t.seal(RFC_SECRET)


def test_tampered_sealed_text_is_refused():
    t = totp(FrozenClock())
    sealed = t.seal(RFC_SECRET)
    for i in range(len(sealed.rstrip("="))):
        flipped = "A" if sealed[i] != "A" else "B"
        with pytest.raises(ValueError):
            t.unseal(sealed[:i] + flipped + sealed[i + 1:])


@pytest.mark.parametrize("sealed", ["", "not base64!", "AAAA", "A" * 200])
def test_garbage_sealed_text_is_refused(sealed: str):
    with pytest.raises(ValueError):
        totp(FrozenClock()).unseal(sealed)


def test_a_secret_sealed_under_another_key_does_not_open():
    sealed = totp(FrozenClock()).seal(RFC_SECRET)
    with pytest.raises(ValueError):
        Totp(b"another key", FrozenClock(), issuer="Sekisho").unseal(sealed)


def test_provisioning_gives_a_fresh_160_bit_secret():
    t = totp(FrozenClock())
    first, second = t.provision("alice@example.jp"), t.provision("alice@example.jp")
    assert first.secret != second.secret
    assert len(first.secret) == 32 and len(pyotp.TOTP(first.secret).byte_secret()) == 20
    assert first.grouped.split(" ") == [first.secret[i:i + 4] for i in range(0, 32, 4)]


def test_provisioning_uri_names_the_issuer_and_label():
    t = Totp(KEY, FrozenClock(), issuer="関所 Sekisho")
    p = t.provision("アリス@example.jp")
    assert p.uri.startswith("otpauth://totp/")
    parsed = pyotp.parse_uri(p.uri)
    assert isinstance(parsed, pyotp.TOTP)
    assert parsed.issuer == "関所 Sekisho"
    assert parsed.name == "アリス@example.jp"
    assert parsed.secret == p.secret
    assert parsed.digits == 6 and parsed.interval == 30


def test_provisioning_uri_carries_non_default_digits_and_period():
    p = totp(FrozenClock(), digits=8, period=60).provision("bob")
    parsed = pyotp.parse_uri(p.uri)
    assert isinstance(parsed, pyotp.TOTP)
    assert parsed.digits == 8 and parsed.interval == 60


def test_qr_is_inline_scalable_svg():
    svg = totp(FrozenClock()).provision("alice@example.jp").qr_svg
    assert svg.startswith("<svg")
    assert "<?xml" not in svg
    assert "viewBox=" in svg
    assert " width=" not in svg.split(">", 1)[0]


def test_a_code_from_the_provisioned_secret_matches():
    clock = FrozenClock(MOMENT)
    t = totp(clock)
    p = t.provision("alice@example.jp")
    stored = t.seal(p.secret)
    code = code_at(MOMENT, p.secret)
    assert t.match(t.unseal(stored), code, None) == t.step()
