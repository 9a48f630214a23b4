from __future__ import annotations

import pytest

from authd.security_card.settings import SecurityCardSettings
from authd.settings import ConfigError, load_section


def settings(section: dict[str, object]) -> SecurityCardSettings:
    return load_section(SecurityCardSettings, "security_card", section)


def test_defaults_follow_the_domain() -> None:
    s = settings({})
    assert s.max_failures == 3  # DOMAIN §2
    assert (s.code_count, s.code_digits) == (35, 4)
    first, second = s.challenge_policy.positions_for(s.card_spec)
    assert (first, second) == ((0, 1), (2, 3))


def test_digits_are_configured_from_one() -> None:
    s = settings({"first_digits": [1, 3], "second_digits": [4]})
    assert s.challenge_policy.positions_for(s.card_spec) == ((0, 2), (3,))


@pytest.mark.parametrize(
    "section",
    [
        {"max_failures": 0},
        {"first_digits": [5, 6]},
        {"first_digits": [1, 1]},
        {"second_digits": "12"},
        {"code_count": 1},
        {"default_layout": "poster"},
        {"challenge_ttl_seconds": 0},
        {"colour": "red"},
    ],
)
def test_bad_settings_are_refused(section: dict[str, object]) -> None:
    with pytest.raises(ConfigError) as err:
        settings(section)
    assert err.value.problems and all(p.startswith("[security_card]") for p in err.value.problems)
