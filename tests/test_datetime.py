"""opstatus.parse_datetime and opstatus.format_datetime.

The rules (see the comment block that opens the "ISO 8601 parsing" section
of opstatus.py): RFC 3339 in full plus the ISO 8601-1 extended and basic
forms (never mixed), calendar / ordinal / week dates, reduced precision (of
the time, and of a date alone: YYYY-MM, YYYY, YYYY-Www, YYYYWww as midnight
of their first day; never YYYYMM), a decimal fraction of any
length on the lowest component, 24:00 as the end of the day, offsets Z, z,
+-hh:mm, +-hhmm, +-hh, separators T, t and one space; fractions beyond the
microsecond truncated, never rounded; ValueError (naming the problem and
its index) for anything else, TypeError for a non-str.
"""

import datetime
import re
import sys
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import opstatus
from opstatus import format_datetime, parse_datetime

UTC = datetime.timezone.utc
DT = datetime.datetime


def tz(hours=0, minutes=0):
    return datetime.timezone(datetime.timedelta(hours=hours, minutes=minutes))


IST = tz(5, 30)  # +05:30

###############################################################################
# Accepted forms
###############################################################################

VALID = [
    # --- RFC 3339 / the service's own form --------------------------------
    ("2018-12-25T11:41:02.2331413Z", DT(2018, 12, 25, 11, 41, 2, 233141, UTC)),
    ("2019-05-16T04:15:15.2959673Z", DT(2019, 5, 16, 4, 15, 15, 295967, UTC)),
    ("2021-06-08T22:28:33.5402214Z", DT(2021, 6, 8, 22, 28, 33, 540221, UTC)),
    ("2018-12-25T11:41:02Z", DT(2018, 12, 25, 11, 41, 2, 0, UTC)),
    ("2018-12-25T11:41:02.5Z", DT(2018, 12, 25, 11, 41, 2, 500000, UTC)),
    ("2018-12-25T11:41:02.123456Z", DT(2018, 12, 25, 11, 41, 2, 123456, UTC)),
    ("2018-12-25T11:41:02.123456789Z", DT(2018, 12, 25, 11, 41, 2, 123456, UTC)),
    ("2018-12-25t11:41:02z", DT(2018, 12, 25, 11, 41, 2, 0, UTC)),
    ("2018-12-25 11:41:02Z", DT(2018, 12, 25, 11, 41, 2, 0, UTC)),
    ("2018-12-25T11:41:02+05:30", DT(2018, 12, 25, 11, 41, 2, 0, IST)),
    ("2018-12-25T11:41:02.25-08:00", DT(2018, 12, 25, 11, 41, 2, 250000, tz(-8))),
    ("2018-12-25T11:41:02+00:00", DT(2018, 12, 25, 11, 41, 2, 0, UTC)),
    ("2018-12-25T11:41:02-00:00", DT(2018, 12, 25, 11, 41, 2, 0, UTC)),
    ("2018-12-25T11:41:02+23:59", DT(2018, 12, 25, 11, 41, 2, 0, tz(23, 59))),
    ("2018-12-25T11:41:02-23:59", DT(2018, 12, 25, 11, 41, 2, 0, tz(-23, -59))),
    ("2018-12-25T11:41:02,5Z", DT(2018, 12, 25, 11, 41, 2, 500000, UTC)),
    ("0001-01-01T00:00:00Z", DT(1, 1, 1, 0, 0, 0, 0, UTC)),
    ("9999-12-31T23:59:59.999999Z", DT(9999, 12, 31, 23, 59, 59, 999999, UTC)),
    ("2020-02-29T12:00:00Z", DT(2020, 2, 29, 12, 0, 0, 0, UTC)),
    ("2000-02-29T12:00:00Z", DT(2000, 2, 29, 12, 0, 0, 0, UTC)),
    # --- ISO 8601 offsets: +-hh and +-hhmm ---------------------------------
    ("2018-12-25T11:41:02+05", DT(2018, 12, 25, 11, 41, 2, 0, tz(5))),
    ("2018-12-25T11:41:02-05", DT(2018, 12, 25, 11, 41, 2, 0, tz(-5))),
    ("2018-12-25T11:41:02+00", DT(2018, 12, 25, 11, 41, 2, 0, UTC)),
    ("20181225T114102+0530", DT(2018, 12, 25, 11, 41, 2, 0, IST)),
    ("20181225T114102-0530", DT(2018, 12, 25, 11, 41, 2, 0, tz(-5, -30))),
    ("20181225T114102+05", DT(2018, 12, 25, 11, 41, 2, 0, tz(5))),
    ("20181225T114102Z", DT(2018, 12, 25, 11, 41, 2, 0, UTC)),
    ("20181225T114102z", DT(2018, 12, 25, 11, 41, 2, 0, UTC)),
    ("20181225T114102.5+0530", DT(2018, 12, 25, 11, 41, 2, 500000, IST)),
    ("20181225T113015,5Z", DT(2018, 12, 25, 11, 30, 15, 500000, UTC)),
    # --- basic format -------------------------------------------------------
    ("20181225", DT(2018, 12, 25)),
    ("20181225T11", DT(2018, 12, 25, 11)),
    ("20181225T1141", DT(2018, 12, 25, 11, 41)),
    ("20181225T114102", DT(2018, 12, 25, 11, 41, 2)),
    ("20181225 114102", DT(2018, 12, 25, 11, 41, 2)),
    ("20181225t114102", DT(2018, 12, 25, 11, 41, 2)),
    # --- ordinal dates --------------------------------------------------------
    ("2018-359", DT(2018, 12, 25)),
    ("2018359", DT(2018, 12, 25)),
    ("2018-001", DT(2018, 1, 1)),
    ("2018-365", DT(2018, 12, 31)),
    ("2020-060", DT(2020, 2, 29)),
    ("2020-366", DT(2020, 12, 31)),
    ("2018-359T11:41:02Z", DT(2018, 12, 25, 11, 41, 2, 0, UTC)),
    ("2018359T114102Z", DT(2018, 12, 25, 11, 41, 2, 0, UTC)),
    # --- week dates -----------------------------------------------------------
    ("2018-W52-2", DT(2018, 12, 25)),
    ("2018W522", DT(2018, 12, 25)),
    ("2018-W01-1", DT(2018, 1, 1)),
    ("2019-W01-1", DT(2018, 12, 31)),  # week 1 of 2019 starts in 2018
    ("2021-W01-1", DT(2021, 1, 4)),
    ("2020-W53-1", DT(2020, 12, 28)),
    ("2020-W53-7", DT(2021, 1, 3)),
    ("2015-W53-5", DT(2016, 1, 1)),
    ("2026-W53-4", DT(2026, 12, 31)),
    ("0001-W01-1", DT(1, 1, 1)),
    ("9999-W52-5", DT(9999, 12, 31)),
    ("2018-W52-2T11:41:02Z", DT(2018, 12, 25, 11, 41, 2, 0, UTC)),
    ("2018W522T114102Z", DT(2018, 12, 25, 11, 41, 2, 0, UTC)),
    # --- reduced precision ------------------------------------------------------
    ("2018-12-25", DT(2018, 12, 25)),
    ("2018-12-25T11", DT(2018, 12, 25, 11)),
    ("2018-12-25T11:41", DT(2018, 12, 25, 11, 41)),
    ("2018-12-25 11", DT(2018, 12, 25, 11)),
    ("2018-12-25t11", DT(2018, 12, 25, 11)),
    ("2018-12-25T11Z", DT(2018, 12, 25, 11, 0, 0, 0, UTC)),
    ("2018-12-25T11:41+05:30", DT(2018, 12, 25, 11, 41, 0, 0, IST)),
    ("2018-12-25T11-03", DT(2018, 12, 25, 11, 0, 0, 0, tz(-3))),
    # --- reduced precision of a date alone: midnight of its first day ------------
    ("2018-12", DT(2018, 12, 1)),
    ("2018-01", DT(2018, 1, 1)),
    ("2020-02", DT(2020, 2, 1)),
    ("9999-12", DT(9999, 12, 1)),
    ("0001-01", DT(1, 1, 1)),
    ("2018", DT(2018, 1, 1)),
    ("0001", DT(1, 1, 1)),
    ("9999", DT(9999, 1, 1)),
    ("2018-W52", DT(2018, 12, 24)),
    ("2018W52", DT(2018, 12, 24)),
    ("2018-W01", DT(2018, 1, 1)),
    ("2019-W01", DT(2018, 12, 31)),  # week 1 of 2019 starts in 2018
    ("2019W01", DT(2018, 12, 31)),
    ("2020-W53", DT(2020, 12, 28)),
    ("2026W53", DT(2026, 12, 28)),
    ("0001-W01", DT(1, 1, 1)),
    ("9999-W52", DT(9999, 12, 27)),
    # --- fractions of hours and minutes -----------------------------------------
    ("2018-12-25T11.5", DT(2018, 12, 25, 11, 30)),
    ("2018-12-25T11,5", DT(2018, 12, 25, 11, 30)),
    ("2018-12-25T11.25Z", DT(2018, 12, 25, 11, 15, 0, 0, UTC)),
    ("2018-12-25T11.000001", DT(2018, 12, 25, 11, 0, 0, 3600)),
    ("2018-12-25T11:30.25", DT(2018, 12, 25, 11, 30, 15)),
    ("2018-12-25T11:30,25", DT(2018, 12, 25, 11, 30, 15)),
    ("2018-12-25T11:30.5+05:30", DT(2018, 12, 25, 11, 30, 30, 0, IST)),
    ("20181225T11.5", DT(2018, 12, 25, 11, 30)),
    ("20181225T1130.25", DT(2018, 12, 25, 11, 30, 15)),
    ("20181225T1141,5+0530", DT(2018, 12, 25, 11, 41, 30, 0, IST)),
    ("2018-12-25T23.99999999999999", DT(2018, 12, 25, 23, 59, 59, 999999)),
    ("2018-12-25T11:59.9999999999", DT(2018, 12, 25, 11, 59, 59, 999999)),
    # --- 24:00, the end of the day ------------------------------------------------
    ("2018-12-25T24:00", DT(2018, 12, 26)),
    ("2018-12-25T24:00:00", DT(2018, 12, 26)),
    ("2018-12-25T24:00:00.000", DT(2018, 12, 26)),
    ("2018-12-25T24:00:00,000000000", DT(2018, 12, 26)),
    ("2018-12-25T24", DT(2018, 12, 26)),
    ("2018-12-25T24.000", DT(2018, 12, 26)),
    ("2018-12-25T24:00Z", DT(2018, 12, 26, 0, 0, 0, 0, UTC)),
    ("2018-12-31T24:00:00Z", DT(2019, 1, 1, 0, 0, 0, 0, UTC)),
    ("2020-02-28T24:00", DT(2020, 2, 29)),
    ("20181225T2400", DT(2018, 12, 26)),
    ("9999-12-30T24:00", DT(9999, 12, 31)),
    # --- truncation, never rounding -----------------------------------------------
    ("2018-12-25T11:41:02.9999999Z", DT(2018, 12, 25, 11, 41, 2, 999999, UTC)),
    ("2018-12-25T11:41:02.1234565Z", DT(2018, 12, 25, 11, 41, 2, 123456, UTC)),
    ("2018-12-25T11:41:02.0000009Z", DT(2018, 12, 25, 11, 41, 2, 0, UTC)),
    ("2018-12-31T23:59:59.9999999Z", DT(2018, 12, 31, 23, 59, 59, 999999, UTC)),
    ("9999-12-31T23:59:59.9999999Z", DT(9999, 12, 31, 23, 59, 59, 999999, UTC)),
    ("2018-12-25T11:41:02.000000000001Z", DT(2018, 12, 25, 11, 41, 2, 0, UTC)),
]


@pytest.mark.parametrize("text, expected", VALID, ids=[t for t, _ in VALID])
def test_valid(text, expected):
    got = parse_datetime(text)
    assert type(got) is DT
    assert got == expected
    # Aware == naive is always False, so equality above already checks
    # awareness; the offset must be the same too, not only the instant.
    assert got.utcoffset() == expected.utcoffset()
    assert (got.year, got.month, got.day, got.hour, got.minute, got.second,
            got.microsecond) == (expected.year, expected.month, expected.day,
                                 expected.hour, expected.minute, expected.second,
                                 expected.microsecond)


@pytest.mark.parametrize("text, expected", VALID, ids=[t for t, _ in VALID])
def test_slow_path_agrees_on_valid(text, expected):
    got = opstatus._read_datetime(text)
    assert got == expected
    assert got.utcoffset() == expected.utcoffset()


def test_date_alone_is_naive_midnight():
    got = parse_datetime("2018-12-25")
    assert got.tzinfo is None
    assert got.time() == datetime.time(0, 0)


@pytest.mark.parametrize(
    "text, first_day",
    [
        ("2018-12", datetime.date(2018, 12, 1)),
        ("2018", datetime.date(2018, 1, 1)),
        ("2018-W52", datetime.date(2018, 12, 24)),
        ("2018W52", datetime.date(2018, 12, 24)),
        ("2015-W53", datetime.date(2015, 12, 28)),
    ],
)
def test_reduced_precision_date_is_naive_midnight_of_its_first_day(text, first_day):
    # ISO 8601-1 reduced precision, read as dateutil and pendulum do.
    got = parse_datetime(text)
    assert type(got) is DT
    assert got.tzinfo is None
    assert got.time() == datetime.time(0, 0)
    assert got.date() == first_day
    assert opstatus._read_datetime(text) == got


@pytest.mark.parametrize("year", [1, 1995, 2004, 2015, 2018, 2020, 2026, 9998, 9999])
def test_week_alone_is_the_monday_of_that_week(year):
    weeks = datetime.date(year, 12, 28).isocalendar()[1]
    for week in range(1, weeks + 1):
        monday = parse_datetime("%04d-W%02d" % (year, week))
        assert monday == parse_datetime("%04d-W%02d-1" % (year, week))
        assert monday == parse_datetime("%04dW%02d" % (year, week))
        assert tuple(monday.isocalendar())[:3] == (year, week, 1)


def test_naive_without_offset_aware_with():
    assert parse_datetime("2018-12-25T11:41:02").tzinfo is None
    assert parse_datetime("2018-12-25T11:41:02.2331413").tzinfo is None
    assert parse_datetime("20181225T114102").tzinfo is None
    assert parse_datetime("2018-12-25T11:41:02Z").tzinfo is not None
    assert parse_datetime("2018-12-25T11:41:02+01").tzinfo is not None


@pytest.mark.parametrize(
    "text",
    [
        "2018-12-25T11:41:02Z",
        "2018-12-25T11:41:02.2331413Z",  # the fast path on 3.11+
        "2018-12-25T11:41:02z",
        "2018-12-25T11:41:02+00:00",
        "2018-12-25T11:41:02-00:00",
        "2018-12-25T11:41:02+00",
        "20181225T114102+0000",
        "20181225T114102-0000",
        "2018-12-25T24:00Z",
    ],
)
def test_utc_is_timezone_utc(text):
    assert parse_datetime(text).tzinfo is UTC


def test_timezones_are_cached():
    a = parse_datetime("2018-12-25T11:41:02+05:30")
    b = parse_datetime("2019-01-01T00:00:00+05:30")
    c = parse_datetime("20190101T000000+0530")
    assert a.tzinfo is b.tzinfo is c.tzinfo
    assert a.utcoffset() == datetime.timedelta(hours=5, minutes=30)
    d = parse_datetime("2018-12-25T11:41:02-05:30")
    assert d.tzinfo is not a.tzinfo
    assert d.tzinfo is parse_datetime("2018-12-25T11:41:02-05:30").tzinfo
    assert d.utcoffset() == -datetime.timedelta(hours=5, minutes=30)


def test_str_subclass_accepted():
    class S(str):
        pass

    assert parse_datetime(S("2018-12-25T11:41:02Z")) == DT(2018, 12, 25, 11, 41, 2, 0, UTC)


###############################################################################
# Fractions: truncation, exactness, very long ones
###############################################################################


def _expected_micro(digits, unit):
    """floor(0.<digits> * unit) in exact rational arithmetic."""
    value = Fraction(int(digits), 10 ** len(digits)) * unit
    return value.numerator // value.denominator


def _int_from_long_digits(digits):
    # int() of > 4300 digits trips Python 3.11+'s conversion limit.
    value = 0
    for k in range(0, len(digits), 500):
        chunk = digits[k:k + 500]
        value = value * 10 ** len(chunk) + int(chunk)
    return value


HOUR_US = 3600 * 10 ** 6
MINUTE_US = 60 * 10 ** 6


@pytest.mark.parametrize(
    "digits, expected",
    [
        # 1 us is 1/3.6e9 h = 0.000000000277... h (7 recurring)
        ("0000000002777777777777777777777777777777778", 1),
        ("0000000002777777777777777777777777777777777", 0),
        ("0000000002777777777777777777777777777777777777777777777777777777777777778", 1),
        ("0000000002777777777777777777777777777777777777777777777777777777777777777", 0),
        ("000000000277777777777777777777777777777777777777777777777777777777777777" + "7" * 200, 0),
        ("000000000277777777777777777777777777777777777777777777777777777777777777" + "7" * 200 + "8", 1),
        ("00000000055555555555555555555555555555555555555555556", 2),
        ("00000000055555555555555555555555555555555555555555555", 1),
        ("5", 1800 * 10 ** 6),
        ("999999999999999999999999999999999999999999999999", HOUR_US - 1),
    ],
)
def test_fractional_hour_is_exact(digits, expected):
    assert _expected_micro(digits, HOUR_US) == expected  # the test's own arithmetic
    got = parse_datetime("2018-12-25T00." + digits)
    micros = ((got.hour * 60 + got.minute) * 60 + got.second) * 10 ** 6 + got.microsecond
    assert got.date() == datetime.date(2018, 12, 25)
    assert micros == expected


@pytest.mark.parametrize(
    "digits, expected",
    [
        # 1 us is 1/6e7 min = 0.0000000166... min (6 recurring)
        ("000000016666666666666666666666666666666666666667", 1),
        ("000000016666666666666666666666666666666666666666", 0),
        ("00000001666666666666666666666666666666666666666666666666666666666666666" + "6" * 300, 0),
        ("00000001666666666666666666666666666666666666666666666666666666666666666" + "6" * 300 + "7", 1),
        ("25", 15 * 10 ** 6),
        ("99999999999999999999999999999999999", MINUTE_US - 1),
    ],
)
def test_fractional_minute_is_exact(digits, expected):
    assert _expected_micro(digits, MINUTE_US) == expected
    got = parse_datetime("2018-12-25T11:00," + digits)
    micros = (got.minute * 60 + got.second) * 10 ** 6 + got.microsecond
    assert got.hour == 11
    assert micros == expected


def test_5000_digit_fraction_of_a_second():
    got = parse_datetime("2018-12-25T11:41:02." + "9" * 5000 + "Z")
    assert got == DT(2018, 12, 25, 11, 41, 2, 999999, UTC)
    got = parse_datetime("2018-12-25T11:41:02," + "1234567" + "0" * 5000)
    assert got == DT(2018, 12, 25, 11, 41, 2, 123456)


@pytest.mark.parametrize("last", ["7", "8"])
@pytest.mark.parametrize("unit_name", ["hour", "minute"])
def test_5000_digit_fraction_of_hour_or_minute(unit_name, last):
    # Digits that leave the result undecided until the very last one, so the
    # reader must look at all 5,000 (past the 4300-digit int/str limit).
    if unit_name == "hour":
        digits = "000000000" + "2" + "7" * 4989 + last
        prefix, unit, base = "2018-12-25T00.", HOUR_US, DT(2018, 12, 25)
    else:
        digits = "0000000" + "1" + "6" * 4991 + ("7" if last == "8" else "6")
        prefix, unit, base = "2018-12-25T00:00.", MINUTE_US, DT(2018, 12, 25)
    assert len(digits) == 5000
    value = Fraction(_int_from_long_digits(digits), 10 ** len(digits)) * unit
    expected = value.numerator // value.denominator
    assert expected == (1 if last == "8" else 0)
    got = parse_datetime(prefix + digits)
    assert got - base == datetime.timedelta(microseconds=expected)


def test_truncation_never_carries_into_next_day():
    got = parse_datetime("2018-12-31T23:59:59.9999999Z")
    assert (got.year, got.month, got.day) == (2018, 12, 31)
    assert got.microsecond == 999999
    got = parse_datetime("2018-12-31T23.9999999999999999999999")
    assert (got.year, got.day, got.hour) == (2018, 31, 23)


@given(digits=st.text(alphabet="0123456789", min_size=1, max_size=60))
@settings(deadline=None)
def test_fraction_of_second_truncates(digits):
    got = parse_datetime("2018-12-25T11:41:02." + digits + "Z")
    assert got.microsecond == int(digits[:6].ljust(6, "0"))
    assert got.second == 2


@given(
    digits=st.text(alphabet="0123456789", min_size=1, max_size=80),
    lowest=st.sampled_from(["hour", "minute"]),
)
@settings(deadline=None)
def test_fraction_of_hour_or_minute_matches_fraction_arithmetic(digits, lowest):
    if lowest == "hour":
        text, unit, base = "2018-12-25T07." + digits, HOUR_US, DT(2018, 12, 25, 7)
    else:
        text, unit, base = "2018-12-25T07:13," + digits, MINUTE_US, DT(2018, 12, 25, 7, 13)
    got = parse_datetime(text)
    assert got - base == datetime.timedelta(microseconds=_expected_micro(digits, unit))


###############################################################################
# Rejected forms
###############################################################################

INVALID = [
    # mixed extended / basic
    "2018-12-25T1141",
    "2018-12-25T114102",
    "20181225T11:41",
    "20181225T11:41:02",
    "2018-12-25T11:41+0530",
    "2018-12-25T11:41:02+0530",
    "20181225T1141+05:30",
    "20181225T114102+05:30",
    "2018-1225",
    "201812-25",
    "2018-W522",
    "2018W52-2",
    "2018-W52-2T1141",
    "2018W522T11:41",
    # reduced-precision dates: alone only, and in range
    "2018-13",
    "2018-00",
    "2018-1",
    "2018-",
    "2018-12-",
    "0000",
    "0000-12",
    "0000-W01",
    "0000W01",
    "2018-W54",
    "2018W00",
    "2018-W00",
    "2019-W53",
    "2019W53",
    "2018-W5",
    "2018W5",
    "2018-W",
    "2018W",
    "2018-W52-",
    "2018-12T11:41:02Z",
    "2018-12 11:41",
    "2018-12Z",
    "2018-12+05:00",
    "2018T11",
    "2018Z",
    "2018 ",
    "2018-W52T11:41",
    "2018W52T1141",
    "2018-W52Z",
    "+2018",
    "2018\u2010W52",
    # week 53 only in years that have one
    "2019-W53-1",
    "2018-W53-1",
    "2019W531",
    "9999-W53-1",
    "2018-W00-1",
    "2018-W54-1",
    "2018-W52-0",
    "2018-W52-8",
    "0000-W01-1",
    # ordinal out of range
    "2018-000",
    "2018-366",
    "2020-367",
    "0000-001",
    # calendar out of range
    "0000-12-25",
    "0000-01-01T00:00:00Z",
    "2018-00-25",
    "2018-13-25",
    "2018-12-00",
    "2018-12-32",
    "2018-04-31",
    "2019-02-29",
    "1900-02-29",
    "2100-02-29T00:00:00Z",
    "2018-02-30T11:41:02.2331413Z",  # fast-path shape, bad day
    "2018-12-25T25:00",
    "2018-12-25T11:60",
    "2018-12-25T11:41:61",
    "2018-12-25T99:00:00Z",
    # leap seconds are rejected by design
    "2018-12-31T23:59:60Z",
    "2016-12-31T23:59:60Z",
    "2018-12-31T23:59:60.5Z",
    "20181231T235960Z",
    # 24:00 only as the end of the day
    "2018-12-25T24:00:01",
    "2018-12-25T24:30",
    "2018-12-25T24:00:00.000001",
    "2018-12-25T24:00.5",
    "2018-12-25T24.0001",
    "2018-12-25T24:01Z",
    "9999-12-31T24:00",
    "9999-12-31T24:00:00Z",
    # offsets
    "2018-12-25T11:41:02+24:00",
    "2018-12-25T11:41:02-24:00",
    "2018-12-25T11:41:02+05:60",
    "2018-12-25T11:41:02+99:00",
    "20181225T114102+2400",
    "20181225T114102+0560",
    "2018-12-25T11:41:02+5",
    "2018-12-25T11:41:02+05:3",
    "2018-12-25T11:41:02+053",
    "2018-12-25T11:41:02+05:30:00",
    "2018-12-25T11:41:02+",
    "2018-12-25T11:41:02-",
    "2018-12-25T11:41:02ZZ",
    "2018-12-25T11:41:02Z+00:00",
    "2018-12-25T11:41:02 Z",
    "2018-12-25T11:41:02UTC",
    "2018-12-25T11:41:02GMT",
    "2018-12-25Z",
    "2018-12-25+05:30",
    "20181225Z",
    # fractions
    "2018-12-25T11:41:02.Z",
    "2018-12-25T11:41:02.",
    "2018-12-25T11:41:02,",
    "2018-12-25T11.",
    "2018-12-25T11:41.",
    "2018-12-25T11:41:02.5.5",
    "2018-12-25T11:41:02..5",
    "2018-12-25T11.5:30",
    "2018-12-25T11:30.5:15",
    "2018-12-25T11:41:02.-5",
    "2018-12-25T11:41:02.1e3",
    # separators
    "2018-12-25  11:41:02Z",
    "2018-12-25\t11:41:02Z",
    "2018-12-25_11:41:02Z",
    "2018-12-25T",
    "2018-12-25 ",
    "2018-12-25TT11:41:02",
    # truncated or malformed
    "",
    "2",
    "201812",  # YYYYMM is not ISO 8601 (it reads like YYMMDD)
    "181225",
    "2018-1-25",
    "2018-12-5",
    "18-12-25",
    "02018-12-25",
    "+2018-12-25",
    "-2018-12-25",
    "2018/12/25",
    "2018-12-25T1",
    "2018-12-25T1:41",
    "2018-12-25T11:4",
    "2018-12-25T11:41:0",
    "2018-12-25T11:41:2Z",
    "2018-12-25T11:41:02.2331413Zjunk",
    "2018-12-25Tab:cd",
    # whitespace and non-ASCII
    "2018-12-25T11:41:02Z\n",
    "2018-12-25\n",
    "\n2018-12-25",
    " 2018-12-25",
    "2018-12-25T11:41:02Z ",
    " 2018-12-25T11:41:02Z",
    "\u0662\u0660\u0661\u0668-12-25",  # Arabic-Indic digits
    "\u0662\u0660\u0661\u0668-12-25T11:41:02.2331413Z",
    "2018-12-2\u00b2",  # superscript two
    "\uff12\uff10\uff11\uff18-12-25",  # full-width digits
    "2018-12-25T11:41:02.\u0665Z",
    "2018\u201012\u201025",  # Unicode hyphens
    "2018-12-25T11:41:02\u221205:00",  # minus sign
    "2018-12-25\u00a011:41:02Z",  # no-break space
    "2018-12-25T11:41:02\x00",
]


@pytest.mark.parametrize("text", INVALID, ids=[repr(t)[:50] for t in INVALID])
def test_invalid(text):
    with pytest.raises(ValueError) as info:
        parse_datetime(text)
    assert type(info.value) is ValueError
    assert str(info.value)


@pytest.mark.parametrize("text", INVALID, ids=[repr(t)[:50] for t in INVALID])
def test_invalid_slow_path(text):
    with pytest.raises((ValueError, opstatus._Reject)):
        opstatus._read_datetime(text)


@pytest.mark.parametrize(
    "text, field, index",
    [
        ("2018-12-25T11:41:02.Z", "second", 20),
        ("2018-12-2\u00b2", "day", 9),
        ("\u0662\u0660\u0661\u0668-12-25", "year", 0),
        ("2018-12-25  11:41:02Z", "hour", 11),
        ("2018-12-25T11:41:02+5", "offset hour", 21),
        ("2018-12-25T11:41:0", "second", 18),
        ("2018-12-25T11:4x", "minute", 15),
        ("2018-12-25T11:41:02ZZ", "offset", 20),
        ("2018-12-25T11:41:02Z\n", "offset", 20),
        ("2018-12-25T11:41:02.5.5", "date-time", 21),
        ("2018-12-25Z", "time", 10),
    ],
)
def test_error_names_field_and_index(text, field, index):
    with pytest.raises(ValueError) as info:
        parse_datetime(text)
    message = str(info.value)
    assert field in message
    assert re.search(r"\bindex %d\b" % index, message), message
    assert repr(text) in message  # the text itself, repr'd (short here)


@pytest.mark.parametrize(
    "text, field, indices",
    [
        ("2018-13-01", "month", {5}),
        ("2018-12-32", "day", {8}),
        ("2019-02-29", "day", {8}),
        ("0000-12-25", "year", {0}),
        ("2018-366", "day of year", {5}),
        ("2019-W53-1", "week", {6}),
        ("2018-W52-8", "weekday", {9}),
        ("2018-12-25T25:00", "hour", {11}),
        ("2018-12-25T24:30", "hour", {11, 14}),
        ("2018-12-25T11:60", "minute", {14}),
        ("2018-12-25T11:41:61", "second", {17}),
        ("2018-12-25T23:59:60Z", "second", {17}),
        ("2018-12-25T11:41:02+24:00", "offset hour", {19, 20}),
        ("2018-12-25T11:41:02+05:60", "offset minute", {23}),
        ("9999-12-31T24:00", "24:00", {11}),
        ("2018-13", "month", {5}),
        ("2018-00", "month", {5}),
        ("0000-12", "year", {0}),
        ("0000", "year", {0}),
        ("2018-W54", "week", {6}),
        ("2019-W53", "week", {6}),
        ("2018W00", "week", {5}),
        ("0000-W01", "year", {0}),
        ("201812", "day", {6}),
        ("2018-12T11", "day", {7}),
        ("2018-W52T11", "weekday", {8}),
        ("2018W52T11", "weekday", {7}),
    ],
)
def test_range_error_names_field_and_index(text, field, indices):
    with pytest.raises(ValueError) as info:
        parse_datetime(text)
    message = str(info.value)
    assert field in message
    found = [int(m) for m in re.findall(r"\bindex (\d+)\b", message)]
    assert set(found) & indices, message


@pytest.mark.parametrize(
    "text, words",
    [
        ("2018-13-01", ["month", "13"]),
        ("2018-12-32", ["day", "32"]),
        ("2019-02-29", ["day", "29", "February"]),
        ("2019-W53-1", ["week", "53"]),
        ("2018-12-25T25:00", ["hour", "25"]),
        ("2018-12-25T11:60", ["minute", "60"]),
        ("2018-12-25T23:59:60Z", ["second", "leap"]),
        ("2018-12-25T11:41:02+24:00", ["offset hour", "24"]),
        ("2018-12-25T11:41:02+05:60", ["offset minute", "60"]),
        ("2018-12-25T11:41+0530", ["offset"]),
        ("20181225T11:41", ["':'"]),
        ("2018-13", ["month", "13", "1..12"]),
        ("2018-W54", ["week", "54", "1..52", "2018"]),
        ("2018W00", ["week", "0", "1..52"]),
        ("201812", ["YYYY-MM", "YYYYMM"]),
    ],
)
def test_error_names_the_problem(text, words):
    with pytest.raises(ValueError) as info:
        parse_datetime(text)
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize("text", ["9999-W52-6", "9999-W52-7", "9999W527", "9999-W52-6T00:00Z"])
def test_week_date_past_year_9999(text):
    # 9999-W52-5 is 9999-12-31; the next days are in year 10000.
    with pytest.raises(ValueError) as info:
        parse_datetime(text)
    assert type(info.value) is ValueError
    assert "week" in str(info.value)


def test_week_date_year_zero_message():
    with pytest.raises(ValueError) as info:
        parse_datetime("0000-W01-1")
    assert "'0000-W01-1'" in str(info.value)
    assert "year" in str(info.value)


def test_long_text_error_message_is_cut():
    text = "2018-12-25T11:41:02." + "1" * 10000 + "x"
    with pytest.raises(ValueError) as info:
        parse_datetime(text)
    assert len(str(info.value)) < 400


@pytest.mark.parametrize(
    "value",
    [b"2018-12-25T11:41:02Z", bytearray(b"2018-12-25"), None, 20181225, 1.5,
     DT(2018, 12, 25), datetime.date(2018, 12, 25), ["2018-12-25"]],
    ids=lambda v: type(v).__name__,
)
def test_non_str_is_type_error(value):
    with pytest.raises(TypeError):
        parse_datetime(value)


###############################################################################
# The fast path agrees with the general reader
###############################################################################

def _outcome(func, text):
    try:
        result = func(text)
    except (ValueError, opstatus._Reject):
        return None
    return (result, result.utcoffset(), result.tzinfo is UTC)


SERVICE_FORMS = [
    "2018-12-25T11:41:02.2331413Z",
    "2018-12-25T11:41:02Z",
    "2018-12-25T11:41:02.5Z",
    "2018-12-25T11:41:02.12Z",
    "2018-12-25T11:41:02.123Z",
    "2018-12-25T11:41:02.1234Z",
    "2018-12-25T11:41:02.12345Z",
    "2018-12-25T11:41:02.123456Z",
    "2018-12-25T11:41:02.12345678Z",
    "2018-12-25T11:41:02.123456789Z",
    "2018-12-25T11:41:02.000000000Z",
    "2018-12-31T23:59:59.9999999Z",
    "2018-12-31T23:59:59.9999995Z",
    "9999-12-31T23:59:59.9999999Z",
    "0001-01-01T00:00:00.0000001Z",
    "2020-02-29T00:00:00Z",
    "2019-05-16T04:15:15.2959673Z",
    "2021-06-08T22:28:33.5793888Z",
    "2018-12-25",
    "0001-01-01",
    "9999-12-31",
    "2020-02-29",
]

BASIC_FORMS = [
    "20181225T114102Z",
    "00010101T000000Z",
    "99991231T235959Z",
    "20200229T120000Z",
]

#: In the fast path's shapes, but not valid (or not as fromisoformat would
#: have it): the fast path must leave them to the general reader.
SHAPED_BUT_NOT_FAST = [
    "2019-02-29T00:00:00Z",
    "2018-04-31T00:00:00Z",
    "2018-13-01T00:00:00Z",
    "2018-00-01T00:00:00Z",
    "2018-01-00T00:00:00Z",
    "0000-01-01T00:00:00Z",
    "2018-12-25T24:00:00Z",  # valid: the next day, read by the general reader
    "2018-12-25T24:00:00.0000001Z",
    "2018-12-25T23:60:00Z",
    "2018-12-31T23:59:60Z",
    "2019-02-29",
    "0000-12-25",
    "2018-12-32",
    "20190229T000000Z",
    "20181225T240000Z",  # valid: the next day
    "20181225T114160Z",
    "00001225T114102Z",
]

#: Near the shapes, but not in them: the fast path must leave them too.
NOT_SHAPED = [
    "2018-12-25T11:41:02.2331413z",
    "2018-12-25t11:41:02.2331413Z",
    "2018-12-25 11:41:02.2331413Z",
    "2018-12-25T11:41:02,2331413Z",
    "2018-12-25T11:41:02.2331413+00:00",
    "2018-12-25T11:41:02.Z",
    "2018-12-25T11:41:02.1234567890Z",
    "2018-12-25T11:41:02",
    "2018-12-25T11:41Z",
    "2018-12-2\u00b2",
    "\u0662\u0660\u0661\u0668-12-25",
    "\uff12\uff10\uff11\uff18-12-25T11:41:02.2331413Z",
    "2018-12-25T11:41:02.233141\u0663Z",
    "2018-12-25T11:41:02.233141\ud800Z",  # a lone surrogate: no UnicodeEncodeError
    "2018-12-25T1\u00b9:41:02.2331413Z",
    "+018-12-25T11:41:02.2331413Z",
    " 018-12-25T11:41:02.2331413Z",
    "2018-1 -25T11:41:02.2331413Z",
    "2018-12-25T11:41: 2.2331413Z",
    "2018-12-25T11:41:02.2_31413Z",
    "2018_12-25",
    "2018-12-2 ",
    "2018W52-25",
    "20181225t114102Z",
    "20181225T114102z",
    "20181225 114102Z",
    "2018-225T114102Z",
    "20181225T1141\u00b92Z",
    "20181225T11410\ud800Z",
    "20181225T114102+",
    "\uff120181225T114102Z",
    "+0181225T114102Z",
    "20181225T11410 Z",
]


def _refuse(text):
    raise AssertionError("the general reader was asked for %r" % (text,))


@pytest.mark.parametrize("text", SERVICE_FORMS + BASIC_FORMS)
def test_fast_path_reads_its_shapes(text, monkeypatch):
    expected = _outcome(opstatus._read_datetime, text)
    assert expected is not None
    monkeypatch.setattr(opstatus, "_read_datetime", _refuse)
    assert _outcome(parse_datetime, text) == expected


@pytest.mark.parametrize("text", SHAPED_BUT_NOT_FAST + NOT_SHAPED)
def test_fast_path_leaves_the_rest_to_the_general_reader(text, monkeypatch):
    expected = _outcome(opstatus._read_datetime, text)
    seen = []

    def general(text, _read=opstatus._read_datetime):
        seen.append(text)
        return _read(text)

    monkeypatch.setattr(opstatus, "_read_datetime", general)
    assert _outcome(parse_datetime, text) == expected
    assert seen == [text]


def test_fast_path_in_use():
    # fromisoformat is C on CPython; on PyPy it is Python, slower than the
    # JIT's reading of the fields.
    readers = {reader for _, reader, _, _ in opstatus._FAST_SHAPES.values()}
    if sys.implementation.name == "cpython":
        assert readers == {None, opstatus._read_fast_basic}
    else:
        assert readers == {opstatus._read_fast_fields, opstatus._read_fast_basic}


# The field readers are tested on every Python, whichever one is in use.

EXTENDED_LENGTHS = {len(t) for t in SERVICE_FORMS}


@pytest.mark.parametrize("text", SERVICE_FORMS)
def test_fields_reader_reads_the_service_forms(text):
    assert _outcome(opstatus._read_fast_fields, text) == _outcome(opstatus._read_datetime, text)


@pytest.mark.parametrize("text", BASIC_FORMS)
def test_basic_reader_reads_the_basic_form(text):
    assert _outcome(opstatus._read_fast_basic, text) == _outcome(opstatus._read_datetime, text)


@pytest.mark.parametrize(
    "text", [t for t in SHAPED_BUT_NOT_FAST + NOT_SHAPED if len(t) in EXTENDED_LENGTHS])
def test_fields_reader_refuses_the_rest(text):
    with pytest.raises(ValueError):
        opstatus._read_fast_fields(text)


@pytest.mark.parametrize("text", [t for t in SHAPED_BUT_NOT_FAST + NOT_SHAPED if len(t) == 16])
def test_basic_reader_refuses_the_rest(text):
    with pytest.raises(ValueError):
        opstatus._read_fast_basic(text)


@given(
    year=st.integers(0, 9999),
    month=st.integers(0, 13),
    day=st.integers(0, 32),
    hour=st.integers(0, 24),
    minute=st.integers(0, 60),
    second=st.integers(0, 60),
    fraction=st.one_of(st.just(""), st.text(alphabet="0123456789", min_size=1, max_size=9)),
)
@settings(deadline=None)
def test_fast_path_agrees_generated(year, month, day, hour, minute, second, fraction):
    text = "%04d-%02d-%02dT%02d:%02d:%02d%sZ" % (
        year, month, day, hour, minute, second, "." + fraction if fraction else "")
    basic = "%04d%02d%02dT%02d%02d%02dZ" % (year, month, day, hour, minute, second)
    for each in (text, text[:10], basic):
        general = _outcome(opstatus._read_datetime, each)
        assert _outcome(parse_datetime, each) == general
        reader = opstatus._read_fast_basic if each is basic else opstatus._read_fast_fields
        fast = _outcome(reader, each)
        assert fast is None and (general is None or hour == 24) or fast == general
    if _outcome(opstatus._read_datetime, text) is not None and hour < 24:
        got = parse_datetime(text)
        assert got.tzinfo is UTC
        assert got.microsecond == int(fraction[:6].ljust(6, "0") or "0")
        assert parse_datetime(text[:10]).tzinfo is None


###############################################################################
# format_datetime
###############################################################################


@pytest.mark.parametrize(
    "dt, text",
    [
        (DT(2018, 12, 25, 11, 41, 2, 233141, UTC), "2018-12-25T11:41:02.233141Z"),
        (DT(2018, 12, 25, 11, 41, 2, 233100, UTC), "2018-12-25T11:41:02.2331Z"),
        (DT(2018, 12, 25, 11, 41, 2, 500000, UTC), "2018-12-25T11:41:02.5Z"),
        (DT(2018, 12, 25, 11, 41, 2, 1, UTC), "2018-12-25T11:41:02.000001Z"),
        (DT(2018, 12, 25, 11, 41, 2, 10, UTC), "2018-12-25T11:41:02.00001Z"),
        (DT(2018, 12, 25, 11, 41, 2, 0, UTC), "2018-12-25T11:41:02Z"),
        (DT(2018, 12, 25, 0, 0, 0, 0, UTC), "2018-12-25T00:00:00Z"),
        (DT(2018, 12, 25, 11, 41, 2), "2018-12-25T11:41:02Z"),  # naive = UTC
        (DT(2018, 12, 25, 11, 41, 2, 120000), "2018-12-25T11:41:02.12Z"),
        (DT(2018, 12, 25, 12, 41, 2, 233100, tz(1)), "2018-12-25T11:41:02.2331Z"),
        (DT(2018, 12, 25, 1, 0, 0, 0, tz(5, 30)), "2018-12-24T19:30:00Z"),
        (DT(2018, 12, 31, 20, 0, 0, 0, tz(-5)), "2019-01-01T01:00:00Z"),
        (DT(1, 1, 1, 0, 0, 0, 0, UTC), "0001-01-01T00:00:00Z"),
        (DT(999, 2, 3, 4, 5, 6, 0, UTC), "0999-02-03T04:05:06Z"),
        (DT(9999, 12, 31, 23, 59, 59, 999999, UTC), "9999-12-31T23:59:59.999999Z"),
    ],
)
def test_format_datetime(dt, text):
    assert format_datetime(dt) == text


def test_format_datetime_tzinfo_without_offset_is_naive():
    class NoOffset(datetime.tzinfo):
        def utcoffset(self, dt):
            return None

        def dst(self, dt):
            return None

        def tzname(self, dt):
            return None

    assert format_datetime(DT(2018, 12, 25, 11, 41, 2, tzinfo=NoOffset())) == "2018-12-25T11:41:02Z"


@pytest.mark.parametrize(
    "value",
    ["2018-12-25T11:41:02Z", None, 0, 1.5, datetime.date(2018, 12, 25),
     datetime.time(11, 41), b"x"],
    ids=lambda v: type(v).__name__,
)
def test_format_datetime_type_error(value):
    with pytest.raises(TypeError):
        format_datetime(value)


@pytest.mark.parametrize("text", [t for t, e in VALID if e.tzinfo is not None])
def test_format_parse_round_trip_of_valid(text):
    dt = parse_datetime(text)
    out = format_datetime(dt)
    assert out.endswith("Z")
    assert parse_datetime(out) == dt
    assert parse_datetime(out).tzinfo is UTC


###############################################################################
# Property tests
###############################################################################

offsets = st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(
    lambda m: datetime.timezone(datetime.timedelta(minutes=m)))

aware_datetimes = st.datetimes(
    # A day of margin at both ends, so that the instant exists in UTC.
    min_value=DT(1, 1, 2), max_value=DT(9999, 12, 30, 23, 59, 59, 999999),
    timezones=offsets,
)


@given(aware_datetimes)
@settings(deadline=None)
def test_round_trip_aware(dt):
    text = format_datetime(dt)
    assert re.match(r"\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z\Z", text), text
    back = parse_datetime(text)
    assert back == dt
    assert back.tzinfo is UTC


@given(st.datetimes(min_value=DT(1, 1, 1), max_value=DT(9999, 12, 31, 23, 59, 59, 999999)))
@settings(deadline=None)
def test_round_trip_naive_taken_as_utc(dt):
    assert parse_datetime(format_datetime(dt)) == dt.replace(tzinfo=UTC)


def _check_only_value_error(text):
    try:
        result = parse_datetime(text)
    except ValueError:
        pass
    else:
        assert type(result) is DT


@given(st.text())
@settings(deadline=None)
def test_random_text_only_value_error(text):
    _check_only_value_error(text)


@given(st.text(alphabet="0123456789-:T.,+Zz W", max_size=40))
@settings(deadline=None)
def test_random_iso_like_text_only_value_error(text):
    _check_only_value_error(text)


@given(
    st.lists(st.sampled_from(list("0123456789-:T.,+Zz W")), max_size=30),
    st.sampled_from(["2018-12-25T11:41:02.2331413Z", "20181225T114102,5+0530",
                     "2018-W52-2T11.5", "2018-359T24:00", "2018-12-25T11:30.25-01"]),
    st.integers(0, 30),
)
@settings(deadline=None)
def test_mutated_valid_text_only_value_error(chars, base, position):
    position = min(position, len(base))
    _check_only_value_error(base[:position] + "".join(chars) + base[position + 1:])


@given(st.binary(max_size=30))
@settings(deadline=None)
def test_bytes_always_type_error(data):
    with pytest.raises(TypeError):
        parse_datetime(data)


@st.composite
def rfc3339(draw):
    date = draw(st.dates(min_value=datetime.date(1, 1, 1), max_value=datetime.date(9999, 12, 31)))
    hour = draw(st.integers(0, 23))
    minute = draw(st.integers(0, 59))
    second = draw(st.integers(0, 59))
    fraction = draw(st.one_of(st.just(""), st.text(alphabet="0123456789", min_size=1, max_size=12)))
    decimal_sign = draw(st.sampled_from(".,"))
    separator = draw(st.sampled_from("Tt "))
    offset = draw(st.one_of(st.sampled_from(["Z", "z", "+00:00", "-00:00"]),
                            st.integers(-(23 * 60 + 59), 23 * 60 + 59)))
    if isinstance(offset, int):
        sign = "-" if offset < 0 else "+"
        offset_text = "%s%02d:%02d" % (sign, abs(offset) // 60, abs(offset) % 60)
        tzinfo = datetime.timezone(datetime.timedelta(minutes=offset))
        if offset == 0:
            tzinfo = UTC
    else:
        offset_text = offset
        tzinfo = UTC
    text = "%04d-%02d-%02d%s%02d:%02d:%02d%s%s" % (
        date.year, date.month, date.day, separator, hour, minute, second,
        decimal_sign + fraction if fraction else "", offset_text)
    micro = int(fraction[:6].ljust(6, "0")) if fraction else 0
    expected = DT(date.year, date.month, date.day, hour, minute, second, micro, tzinfo)
    return text, expected


@given(rfc3339())
@settings(deadline=None)
def test_generated_rfc3339_matches_reference(case):
    text, expected = case
    got = parse_datetime(text)
    assert got == expected
    assert got.utcoffset() == expected.utcoffset()
    assert (got.year, got.month, got.day, got.hour, got.minute, got.second,
            got.microsecond) == (expected.year, expected.month, expected.day, expected.hour,
                                 expected.minute, expected.second, expected.microsecond)
    if expected.utcoffset() == datetime.timedelta(0):
        assert got.tzinfo is UTC
    assert _outcome(opstatus._read_datetime, text) == _outcome(parse_datetime, text)


@st.composite
def basic_format(draw):
    date = draw(st.dates(min_value=datetime.date(1, 1, 1), max_value=datetime.date(9999, 12, 31)))
    hour = draw(st.integers(0, 23))
    minute = draw(st.integers(0, 59))
    second = draw(st.integers(0, 59))
    offset = draw(st.integers(-(23 * 60 + 59), 23 * 60 + 59))
    sign = "-" if offset < 0 else "+"
    text = "%04d%02d%02dT%02d%02d%02d%s%02d%02d" % (
        date.year, date.month, date.day, hour, minute, second, sign,
        abs(offset) // 60, abs(offset) % 60)
    expected = DT(date.year, date.month, date.day, hour, minute, second, 0,
                  datetime.timezone(datetime.timedelta(minutes=offset)))
    return text, expected


@given(basic_format())
@settings(deadline=None)
def test_generated_basic_format_matches_reference(case):
    text, expected = case
    got = parse_datetime(text)
    assert got == expected
    assert got.utcoffset() == expected.utcoffset()


@given(st.dates(min_value=datetime.date(1, 1, 1), max_value=datetime.date(9999, 12, 31)))
@settings(deadline=None)
def test_generated_ordinal_and_week_dates(date):
    expected = DT(date.year, date.month, date.day)
    ordinal = date.timetuple().tm_yday
    assert parse_datetime("%04d-%03d" % (date.year, ordinal)) == expected
    assert parse_datetime("%04d%03d" % (date.year, ordinal)) == expected
    iso_year, week, weekday = date.isocalendar()
    if 1 <= iso_year <= 9999:
        assert parse_datetime("%04d-W%02d-%d" % (iso_year, week, weekday)) == expected
        assert parse_datetime("%04dW%02d%d" % (iso_year, week, weekday)) == expected


@pytest.mark.parametrize("year", range(1995, 2031))
def test_week_53_exactly_in_long_years(year):
    long_year = datetime.date(year, 12, 28).isocalendar()[1] == 53
    text = "%04d-W53-1" % year
    if long_year:
        assert parse_datetime(text) == DT.combine(
            datetime.date(year, 12, 28) - datetime.timedelta(days=datetime.date(year, 12, 28).weekday()),
            datetime.time())
    else:
        with pytest.raises(ValueError, match="week"):
            parse_datetime(text)


@pytest.mark.parametrize("head, tail, unit", [
    ("000000000277777", "7" * 9000, 3600 * 10 ** 6),        # one µs in hours, never reached
    ("000000000277777", "7" * 9000 + "8", 3600 * 10 ** 6),  # ... reached at the last digit
    ("000000000277777", "7" * 20000 + "6", 3600 * 10 ** 6),
    ("0000000166", "6" * 9000 + "7", 60 * 10 ** 6),          # one µs in minutes, reached
    ("0000000166", "6" * 9000 + "5", 60 * 10 ** 6),
])
def test_a_fraction_undecided_for_thousands_of_digits_is_still_exact(head, tail, unit):
    # Python 3.11+ refuses int() of over 4,300 digits: the reader must neither fail on such
    # a fraction (a ValueError from deep inside) nor lose the microsecond it decides.
    digits = head + tail
    limit = getattr(sys, "get_int_max_str_digits", lambda: 0)()
    if limit:
        sys.set_int_max_str_digits(0)
    try:
        expected = int(digits) * unit // 10 ** len(digits)
    finally:
        if limit:
            sys.set_int_max_str_digits(limit)
    assert opstatus._fraction_units(digits, unit) == expected


def test_an_hour_fraction_of_9000_digits_parses():
    text = "2018-12-25T11." + "000000000277777" + "7" * 9000 + "8"
    assert parse_datetime(text) == datetime.datetime(2018, 12, 25, 11, 0, 0, 1)
