"""kepler.clock: one UTC clock; its ISO text parses back to the same instant, to the unit asked for."""

from __future__ import annotations

import datetime as dt

from kepler import clock


def test_utc_now_is_timezone_aware_utc() -> None:
    before = dt.datetime.now(dt.UTC)
    value = clock.utc_now()
    after = dt.datetime.now(dt.UTC)
    assert value.utcoffset() == dt.timedelta(0)
    assert before <= value <= after


def test_now_is_iso_8601_utc_to_the_second_by_default() -> None:
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    text = clock.now()
    parsed = dt.datetime.fromisoformat(text)
    assert text.endswith("+00:00") and "." not in text
    assert parsed.utcoffset() == dt.timedelta(0)
    assert before <= parsed <= dt.datetime.now(dt.UTC)


def test_microsecond_stamps_sort_in_the_order_they_were_taken() -> None:
    stamps = [clock.now("microseconds") for _ in range(50)]
    assert all("." in stamp for stamp in stamps)
    assert stamps == sorted(stamps)
    assert [dt.datetime.fromisoformat(s) for s in stamps] == sorted(
        dt.datetime.fromisoformat(s) for s in stamps
    )
