"""A Japanese mobile number, however it is typed, is one phone number in E.164.

Spellings covered (what the module docstring of ``sekisho.identity.normalize`` promises):
hyphens (ASCII, U+2010 HYPHEN, U+FF0D FULLWIDTH HYPHEN-MINUS, U+2212 MINUS SIGN), spaces
(ASCII, U+3000 IDEOGRAPHIC SPACE), full-width digits, ``+81`` with and without spaces, the
``+81 (0)`` trunk-prefix notation, and padding around the number. The IME's long vowel mark
(U+30FC, and half-width U+FF70), which the module also documents as a dash, has its own
property.
"""

from __future__ import annotations

import string
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sekisho.clock import TokenSource
from sekisho.errors.catalogue import SekishoError
from sekisho.identity.models import Account, IdentifierKind
from sekisho.identity.normalize import (
    NormalisedIdentifier,
    normalise_identifier,
    normalise_phone,
)

PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# What a Japanese IME types in zenkaku mode for the characters of a phone number.
FULL_WIDTH = str.maketrans("0123456789+()", "０１２３４５６７８９＋（）")
HYPHENS = ("-", "\u2010", "\uff0d", "\u2212")
SPACES = (" ", "\u3000")
LONG_VOWEL_MARKS = ("\u30fc", "\uff70")  # ー and ｰ, typed for a hyphen in kana mode
SEPARATORS = ("",) + HYPHENS + SPACES + (" - ", "\u3000\u3000", " \uff0d ")
PADDING = ("", " ", "\u3000", "  ", " \u3000 ", "\u3000 ")

# 070/080/090 and 8 more digits. The first of those 8 is 1-9: 070-0 and 090-0 are not
# allocated, and phonenumbers' metadata rightly refuses them.
mobiles = st.builds(
    lambda prefix, first, rest: prefix + first + rest,
    st.sampled_from(("070", "080", "090")),
    st.sampled_from("123456789"),
    st.text(alphabet=string.digits, min_size=7, max_size=7),
)
# What TokenSource.member_id makes: 10 digits, never starting with 0.
member_ids = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from("123456789"),
    st.text(alphabet=string.digits, min_size=9, max_size=9),
)


def e164(domestic: str) -> str:
    return "+81" + domestic[1:]


def phone(domestic: str) -> NormalisedIdentifier:
    return NormalisedIdentifier(IdentifierKind.PHONE, e164(domestic), e164(domestic))


@st.composite
def widened(draw: st.DrawFn, text: str) -> str:
    """Some characters of ``text`` (any subset) in their full-width form."""
    wide = draw(st.sets(st.integers(0, len(text) - 1), max_size=len(text))) if text else set()
    return "".join(ch.translate(FULL_WIDTH) if i in wide else ch for i, ch in enumerate(text))


@st.composite
def grouped(draw: st.DrawFn, digits: str, separators: tuple[str, ...]) -> str:
    """``digits`` cut into groups: the usual ones (``090-1234-5678``, ``90-1234-5678``)
    or anywhere at all, joined by separators drawn one per gap."""
    if draw(st.booleans()):
        cuts = [len(digits) - 8, len(digits) - 4]
    else:
        cuts = sorted(draw(st.sets(st.integers(1, len(digits) - 1), max_size=4)))
    bounds = [0, *cuts, len(digits)]
    groups = [digits[a:b] for a, b in pairwise(bounds)]
    out = groups[0]
    for group in groups[1:]:
        out += draw(st.sampled_from(separators)) + group
    return out


@st.composite
def spellings(draw: st.DrawFn, domestic: str,
              separators: tuple[str, ...] = SEPARATORS) -> str:
    """One way a member may type ``domestic`` (``09012345678``)."""
    form = draw(st.sampled_from(("domestic", "international", "international_trunk")))
    if form == "domestic":
        head, digits = "", domestic
    else:
        digits = domestic[1:]
        head = "+81"
        if form == "international_trunk":
            head += draw(st.sampled_from(("", " ", "\u3000"))) + "(0)"
        head += draw(st.sampled_from(separators))
    typed = draw(widened(head + draw(grouped(digits, separators))))
    return draw(st.sampled_from(PADDING)) + typed + draw(st.sampled_from(PADDING))


def refused_as_phone(typed: str) -> SekishoError:
    with pytest.raises(SekishoError) as caught:
        normalise_phone(typed)
    assert caught.value.code == "request.invalid"
    assert caught.value.params["reason"] == "not_a_phone_number"
    return caught.value


# --- properties -------------------------------------------------------------------------------


@PROPERTY
@given(st.data(), mobiles)
def test_every_spelling_of_a_mobile_number_is_one_e164_phone(data: st.DataObject,
                                                             domestic: str) -> None:
    typed = data.draw(spellings(domestic), label="typed")
    expected = phone(domestic)
    assert normalise_identifier(typed) == expected
    assert normalise_phone(typed) == expected


@PROPERTY
@given(st.data(), mobiles)
def test_two_spellings_of_one_number_give_one_key(data: st.DataObject, domestic: str) -> None:
    first = data.draw(spellings(domestic), label="first")
    second = data.draw(spellings(domestic), label="second")
    assert normalise_identifier(first).value == normalise_identifier(second).value
    assert normalise_phone(first) == normalise_phone(second)


@PROPERTY
@given(st.data(), mobiles, mobiles)
def test_different_numbers_never_share_a_key(data: st.DataObject, one: str, other: str) -> None:
    first = normalise_identifier(data.draw(spellings(one), label="first"))
    second = normalise_identifier(data.draw(spellings(other), label="second"))
    assert (first.value == second.value) == (one == other)


@PROPERTY
@given(st.data(), mobiles, st.sampled_from(("JP", "US", "GB", "KR")))
def test_plus_81_spellings_do_not_depend_on_the_default_region(
        data: st.DataObject, domestic: str, region: str) -> None:
    typed = data.draw(spellings(domestic).filter(lambda s: "+" in s.translate(
        str.maketrans("＋", "+"))), label="typed")
    assert normalise_identifier(typed, phone_region=region) == phone(domestic)
    assert normalise_phone(typed, region=region) == phone(domestic)


@PROPERTY
@given(st.data(), mobiles)
def test_the_ime_long_vowel_mark_counts_as_a_hyphen(data: st.DataObject,
                                                    domestic: str) -> None:
    # normalize.py lists U+30FC and U+FF70 among the dashes Japanese IMEs produce.
    typed = data.draw(spellings(domestic, separators=LONG_VOWEL_MARKS + ("",)), label="typed")
    assert normalise_identifier(typed) == phone(domestic)
    assert normalise_phone(typed) == phone(domestic)


@PROPERTY
@given(st.data(), member_ids)
def test_a_member_id_is_never_a_phone_number(data: st.DataObject, member_id: str) -> None:
    for typed in (member_id, data.draw(widened(member_id), label="wide"),
                  data.draw(grouped(member_id, SEPARATORS), label="grouped"),
                  data.draw(st.sampled_from(PADDING)) + member_id
                  + data.draw(st.sampled_from(PADDING))):
        result = normalise_identifier(typed)
        assert result.kind is IdentifierKind.MEMBER_ID
        assert result.value == member_id
        refused_as_phone(typed)


def test_member_ids_handed_out_are_never_phone_numbers() -> None:
    tokens = TokenSource()
    for _ in range(2000):
        member_id = tokens.member_id()
        assert len(member_id) == 10 and member_id[0] != "0"
        assert normalise_identifier(member_id).kind is IdentifierKind.MEMBER_ID
        refused_as_phone(member_id)


@pytest.mark.parametrize("typed", [
    "090-1234-5678", "09012345678", "090 1234 5678", "０９０－１２３４－５６７８",
    "０９０\u3000１２３４\u3000５６７８", "+81 90 1234 5678", "+819012345678",
    "＋８１ ９０ １２３４ ５６７８", "+81 (0)90-1234-5678", "+81(0)9012345678",
    "\u3000 090-1234-5678 \u3000", "090\u22121234\u22125678", "090\u20101234\u20105678",
])
def test_spellings_from_the_issue(typed: str) -> None:
    assert normalise_identifier(typed) == phone("09012345678")
    assert normalise_phone(typed) == phone("09012345678")


# --- end to end: stored in one spelling, found in another --------------------------------------


@pytest.mark.parametrize(("stored", "typed"), [
    ("090-1234-5678", "＋８１ ９０ １２３４ ５６７８"),
    ("+81 (0)90 1234 5678", "\u300009012345678 "),
    ("０９０ １２３４ ５６７８", "+81-90-1234-5678"),
    ("+819012345678", "090－1234－5678"),
])
async def test_phone_stored_in_one_spelling_is_found_in_another(core, factory, stored: str,
                                                                typed: str) -> None:
    member = await factory.member()
    other = await factory.member()
    number = core.accounts.phone_number(stored)
    assert number.value == "+819012345678"
    async with core.db.transaction() as db:
        account = await db.get(Account, member.account_id)
        assert account is not None
        await core.accounts.replace_contact(db, account, IdentifierKind.PHONE, number)
        # Another member's different number stays apart.
        someone = await db.get(Account, other.account_id)
        assert someone is not None
        await core.accounts.replace_contact(db, someone, IdentifierKind.PHONE,
                                            core.accounts.phone_number("080-1234-5678"))

    async with core.db.read() as db:
        match = await core.accounts.find(db, core.accounts.identify(typed))
        stranger = await core.accounts.find(db, core.accounts.identify("070-1234-5678"))
        theirs = await core.accounts.find(db, core.accounts.identify("＋８１８０１２３４５６７８"))
    assert match is not None
    assert match.account.id == member.account_id
    assert (match.identifier.kind, match.identifier.value) == (IdentifierKind.PHONE,
                                                               "+819012345678")
    assert stranger is None
    assert theirs is not None and theirs.account.id == other.account_id
