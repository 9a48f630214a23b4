"""EnumMap: one proto <-> domain table read both ways, and what a client is told when it sends
a number the table does not hold."""

from __future__ import annotations

from enum import Enum

import pytest

from authd.customer.convert import KIND
from authd.customer.models import MediumKind
from authd.enums import EnumMap
from authd.v1 import customer_pb2
from devices.errors import BadRequest


class Colour(Enum):
    RED = "red"
    BLUE = "blue"


COLOUR = EnumMap("colour", {Colour.RED: 1, Colour.BLUE: 2})


def test_both_ways() -> None:
    assert [COLOUR.to_pb(c) for c in Colour] == [1, 2]
    assert [COLOUR.from_pb(n) for n in (1, 2)] == [Colour.RED, Colour.BLUE]
    assert KIND.from_pb(KIND.to_pb(MediumKind.HSM_TOKEN)) is MediumKind.HSM_TOKEN
    assert KIND.to_pb(MediumKind.SMARTCARD) == customer_pb2.MEDIUM_KIND_SMARTCARD


def test_unspecified_gives_the_default_only_when_one_is_given() -> None:
    assert COLOUR.from_pb(0, Colour.BLUE) is Colour.BLUE
    assert COLOUR.from_pb(0, None) is None
    with pytest.raises(BadRequest) as err:
        COLOUR.from_pb(0)
    assert err.value.field == "colour"


def test_an_unknown_number_names_the_field_and_the_accepted_values() -> None:
    with pytest.raises(BadRequest) as err:
        COLOUR.from_pb(7, Colour.RED, field="paint.colour")
    assert str(err.value) == "paint.colour must be one of: RED, BLUE (not 7)"
    assert err.value.field == "paint.colour"


def test_a_value_the_table_lacks_can_fall_back() -> None:
    assert COLOUR.to_pb_or("green", 0) == 0
    assert COLOUR.to_pb_or(Colour.BLUE, 0) == 2
    with pytest.raises(KeyError):
        COLOUR.to_pb(object())  # type: ignore[arg-type]


def test_a_number_mapped_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="mapped twice"):
        EnumMap("x", {Colour.RED: 1, Colour.BLUE: 1})
