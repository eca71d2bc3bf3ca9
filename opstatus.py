# Copyright (c) 2026 The opstatus authors
#
# Permission is hereby granted, free of charge, to any person obtaining a copy
# of this software and associated documentation files (the "Software"), to deal
# in the Software without restriction, including without limitation the rights
# to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
# copies of the Software, and to permit persons to whom the Software is
# furnished to do so, subject to the following conditions:
#
# The above copyright notice and this permission notice shall be included in
# all copies or substantial portions of the Software.
#
# THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
# IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
# FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
# AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
# LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
# OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
# SOFTWARE.
"""Follow the asynchronous operations of Azure-style services to their end.

One file, standard library only, Python 3.7 and later (CPython and PyPy).
Copy it into a project, or install it and extend it with pluggy plugins.

- :class:`OperationStatus` and :class:`Status` model the status document of an
  operation as the Face API (and its relatives) really send it;
- :func:`parse_datetime` is a strict, fast ISO 8601 / RFC 3339 reader;
- ``python opstatus.py parse FILE`` reads a status document and prints it.
"""

from __future__ import annotations

__all__ = [
    "__version__",
    # errors
    "OpStatusError",
    "StatusDocumentError",
    # model
    "Status",
    "OperationStatus",
    "ResourceRef",
    # timestamps
    "parse_datetime",
    "format_datetime",
    # command line
    "main",
]

__version__ = "0.1.0"

import dataclasses as _dataclasses
import datetime as _datetime
import enum as _enum
import re as _re
import sys as _sys
import types as _types
from collections.abc import Mapping as _Mapping

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from typing import Any, Dict, Mapping, Optional, Tuple, Union


###############################################################################
# Errors ######################################################################
###############################################################################


class OpStatusError(Exception):
    """Base class of every error that opstatus raises on purpose."""


class StatusDocumentError(OpStatusError, ValueError):
    """A status document (or one of its fields) is not valid.

    :attr:`field` names the offending field in the wire's camelCase
    (``"createdTime"``), or is ``None`` when the document as a whole is at
    fault (invalid JSON, not an object, too large, nested too deep).
    :attr:`problem` is the explanation without the field name.
    """

    def __init__(self, problem, field=None):
        # type: (str, Optional[str]) -> None
        self.problem = problem
        self.field = field
        text = "%s: %s" % (field, problem) if field else problem
        super().__init__("invalid operation status: " + text)


###############################################################################
# The Status enum #############################################################
###############################################################################


class Status(str, _enum.Enum):
    """The four states of an operation.

    Values are the spec's lower-case strings; reading one is case-insensitive,
    because the wire sends ``notStarted`` and ``NotStarted``::

        >>> Status("notStarted") is Status.NOTSTARTED
        True
        >>> Status.SUCCEEDED.is_terminal
        True

    An unknown value raises :class:`StatusDocumentError` (a ``ValueError``)
    naming the value and the known ones: it is never taken as "running".
    """

    NOTSTARTED = "notstarted"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @classmethod
    def _missing_(cls, value):
        if isinstance(value, str):
            member = _STATUS_BY_LOWER.get(value.lower())
            if member is not None:
                return member
            raise StatusDocumentError(
                "unknown status %s; known: %s"
                % (_short_repr(value), ", ".join(m.value for m in cls)),
                "status",
            )
        raise StatusDocumentError(
            "expected a string, got %s" % type(value).__name__, "status"
        )

    @property
    def is_terminal(self):
        # type: () -> bool
        """True for :attr:`SUCCEEDED` and :attr:`FAILED`: nothing changes after."""
        return self is Status.SUCCEEDED or self is Status.FAILED

    def __str__(self):
        return self.value

    __format__ = str.__format__


_STATUS_BY_LOWER = {m.value: m for m in Status}


def _short_repr(value, limit=60):
    # type: (Any, int) -> str
    """repr() of *value*, cut to about *limit* characters for error messages."""
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 5] + "...'" if text[:1] in "'\"" else text[: limit - 3] + "..."
    return text


###############################################################################
# ISO 8601 parsing ############################################################
###############################################################################
#
# parse_datetime() reads RFC 3339 and the ISO 8601-1 date-time forms:
#
#   date   YYYY-MM-DD | YYYY-DDD | YYYY-Www-D       (extended)
#          YYYYMMDD   | YYYYDDD  | YYYYWwwD         (basic)
#   time   hh[:mm[:ss]] | hh[mm[ss]], a fraction (. or ,) of any length on the
#          lowest component; 24:00[:00[.0…]] is midnight of the next day
#   sep    T, t or one space
#   offset Z | z | ±hh:mm | ±hhmm | ±hh          (hh <= 23, mm <= 59)
#
# Extended and basic format never mix within one string. Leap seconds
# (23:59:60) are rejected: Python's datetime cannot hold them and silently
# moving them to :59 or to the next minute would change the instant.
# Fractions beyond microseconds are truncated, never rounded.

#: The service's own form, ``2018-12-25T11:41:02.2331413Z``: a shape that the
#: hand-written reader and (on Python 3.11+) ``datetime.fromisoformat`` read
#: to the same value. Hours stop at 23 and seconds at 59 on purpose.
_FAST_SHAPE = _re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(?:\.[0-9]{1,9})?Z"
).fullmatch

_fromisoformat = (
    _datetime.datetime.fromisoformat if _sys.version_info >= (3, 11) else None
)
_DIGITS = frozenset("0123456789")
_UTC = _datetime.timezone.utc
_TZ_CACHE = {0: _UTC}  # type: Dict[int, _datetime.timezone]
_ONE_DAY = _datetime.timedelta(days=1)
_DAYS_IN_MONTH = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_MONTH_NAMES = (
    None, "January", "February", "March", "April", "May", "June", "July",
    "August", "September", "October", "November", "December",
)


class _Reject(Exception):
    """Internal: carries (problem, index) to parse_datetime's one error site."""


def _is_leap(year):
    # type: (int) -> bool
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _weeks_in_year(year):
    # type: (int) -> int
    """52 or 53: a year has week 53 when it starts, or is a leap year that
    starts, on a Thursday (ISO 8601 week rule)."""
    jan1 = _datetime.date(year, 1, 1).isoweekday()
    return 53 if jan1 == 4 or (jan1 == 3 and _is_leap(year)) else 52


def _describe(text, i):
    # type: (str, int) -> str
    return "end of text" if i >= len(text) else repr(text[i])


def _read_int(text, i, width, field):
    # type: (str, int, int, str) -> int
    """Exactly *width* ASCII digits at *i*, or _Reject naming *field*."""
    for j in range(i, i + width):
        if j >= len(text) or text[j] not in _DIGITS:
            raise _Reject(
                "%s: expected a digit at index %d, found %s"
                % (field, j, _describe(text, j)),
                j,
            )
    return int(text[i : i + width])


def _int_of_digits(digits):
    # type: (str) -> int
    """int() of an ASCII digit string of any length, without tripping the
    int/str conversion limit of Python 3.11+ (4300 digits)."""
    if len(digits) <= 1000:
        return int(digits)
    value = 0
    for k in range(0, len(digits), 1000):
        chunk = digits[k : k + 1000]
        value = value * 10 ** len(chunk) + int(chunk)
    return value


def _fraction_units(digits, unit):
    # type: (str, int) -> int
    """floor(0.<digits> * unit), exact for any number of digits.

    Reads as few digits as decide the result: ``x`` lies in
    ``[n/10**k, (n+1)/10**k)`` for the first *k* digits ``n``, so once both
    ends give the same floor the remaining digits cannot change it.
    """
    k = 24
    while k < len(digits):
        n = int(digits[:k])
        scale = 10 ** k
        low = n * unit // scale
        if low == ((n + 1) * unit - 1) // scale:
            return low
        k *= 2
    return _int_of_digits(digits) * unit // 10 ** len(digits)


def _read_fraction(text, i, field):
    # type: (str, int, str) -> Tuple[str, int]
    """A decimal fraction (``.`` or ``,`` then digits) at *i*, if any."""
    if i < len(text) and text[i] in ".,":
        j = i + 1
        n = len(text)
        while j < n and text[j] in _DIGITS:
            j += 1
        if j == i + 1:
            raise _Reject(
                "%s: expected a digit after the decimal sign at index %d, found %s"
                % (field, j, _describe(text, j)),
                j,
            )
        return text[i + 1 : j], j
    return "", i


def _tz(minutes):
    # type: (int) -> _datetime.timezone
    tz = _TZ_CACHE.get(minutes)
    if tz is None:
        tz = _TZ_CACHE[minutes] = _datetime.timezone(
            _datetime.timedelta(minutes=minutes)
        )
    return tz


def _parse_date(text, extended):
    # type: (str, bool) -> Tuple[int, int, int, int]
    """Read the date part; returns (year, month, day, index after it)."""
    year = _read_int(text, 0, 4, "year")
    i = 5 if extended else 4
    if text[i : i + 1] == "W":  # week date
        week = _read_int(text, i + 1, 2, "week")
        i += 3
        if extended:
            if text[i : i + 1] != "-":
                raise _Reject(
                    "weekday: expected '-' at index %d, found %s"
                    % (i, _describe(text, i)),
                    i,
                )
            i += 1
        weekday = _read_int(text, i, 1, "weekday")
        i += 1
        if not 1 <= week <= _weeks_in_year(year):
            raise _Reject(
                "week: %d is out of range 1..%d for %d"
                % (week, _weeks_in_year(year), year),
                i - 3,
            )
        if not 1 <= weekday <= 7:
            raise _Reject("weekday: %d is out of range 1..7" % weekday, i - 1)
        if year == 0:
            raise _Reject("year: 0000 is out of range 1..9999", 0)
        try:
            date = _datetime.date.fromisocalendar(year, week, weekday)  # 3.8+
        except AttributeError:  # Python 3.7
            jan4 = _datetime.date(year, 1, 4)
            monday1 = jan4 - _datetime.timedelta(days=jan4.isoweekday() - 1)
            date = monday1 + _datetime.timedelta(weeks=week - 1, days=weekday - 1)
        except (ValueError, OverflowError):
            raise _Reject("week date %d-W%02d-%d is out of range" % (year, week, weekday), 0)
        return date.year, date.month, date.day, i
    run = i
    while run < len(text) and text[run] in _DIGITS:
        run += 1
    digits = run - i
    if year == 0:
        raise _Reject("year: 0000 is out of range 1..9999", 0)
    if digits == 3:  # ordinal date
        ordinal = int(text[i:run])
        last = 366 if _is_leap(year) else 365
        if not 1 <= ordinal <= last:
            raise _Reject(
                "day of year: %d is out of range 1..%d for %d" % (ordinal, last, year), i
            )
        date = _datetime.date(year, 1, 1) + _datetime.timedelta(days=ordinal - 1)
        return year, date.month, date.day, run
    month = _read_int(text, i, 2, "month")
    i += 2
    if extended:
        if text[i : i + 1] != "-":
            raise _Reject(
                "day: expected '-' at index %d, found %s" % (i, _describe(text, i)), i
            )
        i += 1
    day = _read_int(text, i, 2, "day")
    if not 1 <= month <= 12:
        raise _Reject("month: %d is out of range 1..12" % month, i - 3 if extended else i - 2)
    last = 29 if month == 2 and _is_leap(year) else _DAYS_IN_MONTH[month]
    if not 1 <= day <= last:
        raise _Reject(
            "day: %d is out of range 1..%d for %s %d"
            % (day, last, _MONTH_NAMES[month], year),
            i,
        )
    return year, month, day, i + 2


def _parse_slow(text):
    # type: (str) -> _datetime.datetime
    n = len(text)
    if n < 7:
        raise _Reject("too short for a date", n)
    extended = text[4:5] == "-"
    year, month, day, i = _parse_date(text, extended)
    hour = minute = second = micro = 0
    tzinfo = None
    next_day = False
    if i < n:
        if text[i] not in "Tt ":
            raise _Reject(
                "expected 'T', 't' or ' ' before the time at index %d, found %s"
                % (i, _describe(text, i)),
                i,
            )
        i += 1
        hour = _read_int(text, i, 2, "hour")
        i += 2
        lowest, unit = "hour", 3600000000
        colon = text[i : i + 1] == ":"
        if colon and not extended:
            raise _Reject(
                "':' at index %d mixes extended time with a basic-format date" % i, i
            )
        if (colon and extended) or (not extended and text[i : i + 1] in _DIGITS):
            i += colon
            minute = _read_int(text, i, 2, "minute")
            i += 2
            lowest, unit = "minute", 60000000
            colon = text[i : i + 1] == ":"
            if colon and not extended:
                raise _Reject(
                    "':' at index %d mixes extended time with a basic-format date" % i, i
                )
            if (colon and extended) or (not extended and text[i : i + 1] in _DIGITS):
                i += colon
                second = _read_int(text, i, 2, "second")
                i += 2
                lowest, unit = "second", 1000000
        elif extended and text[i : i + 1] in _DIGITS:
            raise _Reject(
                "digit at index %d: basic-format time after an extended-format date" % i,
                i,
            )
        fraction, i = _read_fraction(text, i, lowest)
        if fraction:
            if lowest == "second":
                micro = int(fraction[:6].ljust(6, "0"))
            else:  # a fraction of an hour or a minute, below one unit
                micro = _fraction_units(fraction, unit)
                minute_part, micro = divmod(micro, 60000000)
                second, micro = divmod(micro, 1000000)
                minute += minute_part
        if hour == 24:
            if minute or second or micro or fraction.strip("0"):
                raise _Reject("hour: 24 is allowed only as 24:00:00 (end of day)", i)
            hour = 0
            next_day = True
        elif hour > 23:
            raise _Reject("hour: %d is out of range 0..24" % hour, i)
        if minute > 59:
            raise _Reject("minute: %d is out of range 0..59" % minute, i)
        if second == 60:
            raise _Reject("second: leap second 60 is not supported", i)
        if second > 59:
            raise _Reject("second: %d is out of range 0..59" % second, i)
        if i < n:
            sign = text[i]
            if sign in "Zz":
                tzinfo = _UTC
                i += 1
            elif sign in "+-":
                off_h = _read_int(text, i + 1, 2, "offset hour")
                i += 3
                off_m = 0
                if text[i : i + 1] == ":":
                    if not extended:
                        raise _Reject(
                            "offset: ':' at index %d mixes extended and basic format" % i, i
                        )
                    off_m = _read_int(text, i + 1, 2, "offset minute")
                    i += 3
                elif text[i : i + 1] in _DIGITS and i < n:
                    if extended:
                        raise _Reject(
                            "offset: basic ±hhmm at index %d in an extended-format text"
                            % (i - 3),
                            i,
                        )
                    off_m = _read_int(text, i, 2, "offset minute")
                    i += 2
                if off_h > 23:
                    raise _Reject("offset hour: %d is out of range 0..23" % off_h, i)
                if off_m > 59:
                    raise _Reject("offset minute: %d is out of range 0..59" % off_m, i)
                minutes = off_h * 60 + off_m
                tzinfo = _tz(-minutes if sign == "-" else minutes)
    if i < n:
        raise _Reject(
            "unexpected %s at index %d after the %s"
            % (_describe(text, i), i, "offset" if tzinfo is not None else "date-time"),
            i,
        )
    result = _datetime.datetime(year, month, day, hour, minute, second, micro, tzinfo)
    if next_day:
        try:
            result += _ONE_DAY
        except OverflowError:
            raise _Reject("24:00 on 9999-12-31 is past the largest date", 0)
    return result


def parse_datetime(text):
    # type: (str) -> _datetime.datetime
    """Parse an ISO 8601 / RFC 3339 date-time, strictly.

    Returns an aware ``datetime`` when *text* has an offset (``Z``, ``+01:00``
    …) and a naive one when it has none; fractions past the microsecond are
    truncated, never rounded::

        >>> parse_datetime("2018-12-25T11:41:02.2331413Z")
        datetime.datetime(2018, 12, 25, 11, 41, 2, 233141, tzinfo=datetime.timezone.utc)

    Raises ``ValueError`` naming the field, the character and its index for
    anything else, and ``TypeError`` for a non-``str`` argument.
    """
    if type(text) is not str:
        if not isinstance(text, str):
            raise TypeError(
                "parse_datetime() takes a str, not %s" % type(text).__name__
            )
        text = str(text)
    if _fromisoformat is not None and _FAST_SHAPE(text):
        try:
            return _fromisoformat(text)
        except ValueError:
            pass  # e.g. February 30th: let the reader below name the field
    try:
        return _parse_slow(text)
    except _Reject as exc:
        raise ValueError(
            "invalid ISO 8601 date-time %s: %s" % (_short_repr(text), exc.args[0])
        ) from None


def format_datetime(dt):
    # type: (_datetime.datetime) -> str
    """Write *dt* in the service's form: UTC, ``Z``, trailing zeros trimmed.

    A naive datetime is taken as UTC (as the status document's are)::

        >>> format_datetime(parse_datetime("2018-12-25T12:41:02.2331+01:00"))
        '2018-12-25T11:41:02.2331Z'
    """
    if not isinstance(dt, _datetime.datetime):
        raise TypeError("format_datetime() takes a datetime, not %s" % type(dt).__name__)
    if dt.tzinfo is not None and dt.utcoffset() is not None:
        dt = dt.astimezone(_UTC)
    text = "%04d-%02d-%02dT%02d:%02d:%02d" % (
        dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second,
    )
    if dt.microsecond:
        text += ("." + "%06d" % dt.microsecond).rstrip("0")
    return text + "Z"


###############################################################################
# The OperationStatus model ###################################################
###############################################################################

#: Largest status document :meth:`OperationStatus.from_json` reads, in bytes.
#: Real ones are about 200 bytes; the cap keeps a hostile body from using
#: memory without end.
MAX_DOCUMENT_BYTES = 64 * 1024

#: Deepest nesting of arrays and objects accepted in a status document. The
#: real document is flat; the cap keeps a hostile one from exhausting the
#: recursion limit of the JSON decoder.
MAX_DOCUMENT_DEPTH = 32

#: Wire names of the five fields, lower-cased, and their attribute names.
#: ``location`` is the spec example's alias of ``resourceLocation``.
_FIELD_BY_WIRE = {
    "status": "status",
    "createdtime": "created_time",
    "lastactiontime": "last_action_time",
    "message": "message",
    "resourcelocation": "resource_location",
    "location": "resource_location",
}
_WIRE_BY_FIELD = {
    "status": "status",
    "created_time": "createdTime",
    "last_action_time": "lastActionTime",
    "message": "message",
    "resource_location": "resourceLocation",
}
#: Singular, lower-case object types that an apply names in resourceLocation.
_TARGET_TYPES = frozenset(("facelist", "largefacelist", "persongroup", "largepersongroup"))


@_dataclasses.dataclass(frozen=True)
class ResourceRef:
    """What a succeeded operation produced, read from ``resourceLocation``.

    ``kind`` is ``"snapshot"`` for a take, or the target's type for an apply
    (``"persongroup"``, ``"largepersongroup"``, ``"facelist"``,
    ``"largefacelist"``); ``id`` is the snapshot id or the target's objectId;
    ``path`` is the location as the service sent it.
    """

    kind: str
    id: str
    path: str


def _as_time(value, wire):
    # type: (Any, str) -> _datetime.datetime
    if isinstance(value, str):
        try:
            value = parse_datetime(value)
        except ValueError as exc:
            raise StatusDocumentError(str(exc), wire) from None
    elif not isinstance(value, _datetime.datetime):
        raise StatusDocumentError(
            "expected an ISO 8601 string, got %s" % type(value).__name__, wire
        )
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=_UTC)
    return value


@_dataclasses.dataclass(frozen=True)
class OperationStatus:
    """The status of an asynchronous operation (take or apply a snapshot).

    Build one from the wire with :meth:`from_json` or :meth:`from_dict`; both
    read the 2019 dialect (PascalCase keys, explicit nulls, ``notStarted``)
    and the 2021 one (camelCase, extra ``finishedTime``)::

        >>> s = OperationStatus.from_json(
        ...     '{"status": "succeeded", "createdTime": "2021-06-08T22:28:33.54Z",'
        ...     ' "resourceLocation": "/snapshots/abc", "finishedTime": "x"}')
        >>> s.status, s.snapshot_id, s.extra["finishedTime"]
        (<Status.SUCCEEDED: 'succeeded'>, 'abc', 'x')

    Datetimes are aware and in UTC. Keys the model does not know are kept in
    :attr:`extra` (read-only), which takes no part in equality or hashing.
    """

    status: Status
    created_time: _datetime.datetime
    last_action_time: Optional[_datetime.datetime] = None
    message: Optional[str] = None
    resource_location: Optional[str] = None
    extra: Mapping[str, Any] = _dataclasses.field(
        default_factory=dict, compare=False, hash=False, repr=False
    )

    def __post_init__(self):
        setattr_ = object.__setattr__
        setattr_(self, "status", Status(self.status))
        setattr_(self, "created_time", _as_time(self.created_time, "createdTime"))
        if self.last_action_time is not None:
            setattr_(
                self, "last_action_time", _as_time(self.last_action_time, "lastActionTime")
            )
        for name in ("message", "resource_location"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise StatusDocumentError(
                    "expected a string, got %s" % type(value).__name__,
                    _WIRE_BY_FIELD[name],
                )
        if not isinstance(self.extra, _types.MappingProxyType):
            setattr_(self, "extra", _types.MappingProxyType(dict(self.extra)))

    # -- reading -------------------------------------------------------------

    @classmethod
    def from_dict(cls, data):
        # type: (Mapping[str, Any]) -> OperationStatus
        """Read a decoded status document.

        Keys are matched case-insensitively; ``null`` is the same as absent;
        ``location`` is read as ``resourceLocation`` (which wins if both are
        there). Raises :class:`StatusDocumentError` naming the field.
        """
        if not isinstance(data, _Mapping):
            raise StatusDocumentError(
                "expected a JSON object, got %s" % _json_type_name(data)
            )
        known = {}  # type: Dict[str, Tuple[str, Any]]  # lower wire name -> (key, value)
        extra = {}  # type: Dict[str, Any]
        for key, value in data.items():
            if not isinstance(key, str):
                raise StatusDocumentError("keys must be strings, got %r" % (key,))
            lower = key.lower()
            if lower not in _FIELD_BY_WIRE:
                extra[key] = value
            elif lower in known:
                raise StatusDocumentError(
                    "duplicate key (%s and %s)" % (_short_repr(known[lower][0]), _short_repr(key)),
                    _WIRE_BY_FIELD[_FIELD_BY_WIRE[lower]],
                )
            else:
                known[lower] = (key, value)
        # ``location`` is an alias; when both carry a value resourceLocation
        # wins and ``location`` is kept with the unknown keys.
        alias = known.pop("location", None)
        if alias is not None and alias[1] is not None:
            current = known.get("resourcelocation")
            if current is None or current[1] is None:
                known["resourcelocation"] = alias
            else:
                extra[alias[0]] = alias[1]
        fields = {
            _FIELD_BY_WIRE[lower]: value
            for lower, (_key, value) in known.items()
            if value is not None
        }
        if "status" not in fields:
            raise StatusDocumentError("missing (a required field)", "status")
        fields["status"] = Status(fields["status"])
        if "created_time" not in fields:
            raise StatusDocumentError("missing (a required field)", "createdTime")
        fields["extra"] = extra
        return cls(**fields)

    @classmethod
    def from_json(cls, document, *, max_bytes=None):
        # type: (Union[str, bytes, bytearray], Optional[int]) -> OperationStatus
        """Read a status document from JSON text or bytes (UTF-8, -16 or -32).

        Documents larger than *max_bytes* (default :data:`MAX_DOCUMENT_BYTES`)
        or nested deeper than :data:`MAX_DOCUMENT_DEPTH` are refused, as are
        ``NaN``, ``Infinity`` and duplicate keys.
        """
        return cls.from_dict(_load_json_object(document, max_bytes))

    # -- writing -------------------------------------------------------------

    def to_dict(self, *, include_extra=False):
        # type: (bool) -> Dict[str, Any]
        """The document in the seed's camelCase, absent optionals left out.

        ``OperationStatus.from_dict(s.to_dict()) == s``. With
        *include_extra*, the unknown keys read from the wire come too.
        """
        out = {
            "status": self.status.value,
            "createdTime": format_datetime(self.created_time),
        }  # type: Dict[str, Any]
        if self.last_action_time is not None:
            out["lastActionTime"] = format_datetime(self.last_action_time)
        if self.message is not None:
            out["message"] = self.message
        if self.resource_location is not None:
            out["resourceLocation"] = self.resource_location
        if include_extra:
            for key, value in self.extra.items():
                out.setdefault(key, value)
        return out

    def to_json(self, *, include_extra=False, **dumps_kwargs):
        # type: (bool, Any) -> str
        """:meth:`to_dict` as JSON text; keyword arguments go to ``json.dumps``."""
        import json

        return json.dumps(self.to_dict(include_extra=include_extra), **dumps_kwargs)

    # -- what users ask of it ------------------------------------------------

    @property
    def is_terminal(self):
        # type: () -> bool
        """True once the operation succeeded or failed."""
        return self.status.is_terminal

    @property
    def succeeded(self):
        # type: () -> bool
        return self.status is Status.SUCCEEDED

    @property
    def failed(self):
        # type: () -> bool
        return self.status is Status.FAILED

    @property
    def resource(self):
        # type: () -> Optional[ResourceRef]
        """What the operation produced, or ``None`` before it succeeded.

        Before success ``resourceLocation`` holds placeholders (``null``,
        ``"/snapshots/"``, the source snapshot), so it is read only once the
        status is ``succeeded``. An absolute URL (other Azure services) is
        read by its path.
        """
        if self.status is not Status.SUCCEEDED or not self.resource_location:
            return None
        path = self.resource_location
        if "://" in path:
            path = "/" + path.split("://", 1)[1].partition("/")[2]
        parts = [p for p in path.split("?", 1)[0].split("/") if p]
        if len(parts) < 2:
            return None
        kind = parts[-2].lower()
        if kind == "snapshots":
            kind = "snapshot"
        elif kind not in _TARGET_TYPES:
            return None
        return ResourceRef(kind, parts[-1], self.resource_location)

    @property
    def snapshot_id(self):
        # type: () -> Optional[str]
        """The id of the snapshot a take produced; ``None`` until it succeeded."""
        ref = self.resource
        return ref.id if ref is not None and ref.kind == "snapshot" else None

    @property
    def target_id(self):
        # type: () -> Optional[str]
        """The objectId an apply created; ``None`` until it succeeded."""
        ref = self.resource
        return ref.id if ref is not None and ref.kind != "snapshot" else None

    @property
    def duration(self):
        # type: () -> Optional[_datetime.timedelta]
        """``lastActionTime - createdTime``, when the service sent both."""
        if self.last_action_time is None:
            return None
        return self.last_action_time - self.created_time


def _json_type_name(value):
    # type: (Any) -> str
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "an array"
    return type(value).__name__


_NESTING_TOKEN = _re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', _re.S)


def _reject_constant(name):
    raise ValueError("%s is not valid JSON" % name)


def _unique_object(pairs):
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError("duplicate key %s" % _short_repr(key))
        obj[key] = value
    return obj


def _short_int(text):
    if len(text) > 100:
        raise ValueError("number of %d digits is too long" % len(text))
    return int(text)


def _finite_float(text):
    if len(text) > 100:
        raise ValueError("number of %d characters is too long" % len(text))
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError("number %s is out of range" % _short_repr(text))
    return value


def _load_json_object(document, max_bytes=None):
    # type: (Union[str, bytes, bytearray], Optional[int]) -> Any
    """json.loads with a size cap, a depth cap and strict numbers."""
    import json

    limit = MAX_DOCUMENT_BYTES if max_bytes is None else max_bytes
    if isinstance(document, (bytes, bytearray, memoryview)):
        document = bytes(document)
        if len(document) > limit:
            raise StatusDocumentError(
                "body too large (%d bytes, limit %d)" % (len(document), limit)
            )
        try:
            document = document.decode(json.detect_encoding(document))
        except (UnicodeDecodeError, LookupError) as exc:
            raise StatusDocumentError("invalid JSON: not UTF-8/16/32 text (%s)" % exc.reason
                                      if isinstance(exc, UnicodeDecodeError) else
                                      "invalid JSON: unknown encoding") from None
    elif not isinstance(document, str):
        raise TypeError(
            "from_json() takes str or bytes, not %s" % type(document).__name__
        )
    elif len(document) > limit:  # characters: at least as many bytes
        raise StatusDocumentError(
            "body too large (%d characters, limit %d bytes)" % (len(document), limit)
        )
    if document.count("[") + document.count("{") > MAX_DOCUMENT_DEPTH:
        depth = 0
        for token in _NESTING_TOKEN.findall(document):
            if token in "[{":
                depth += 1
                if depth > MAX_DOCUMENT_DEPTH:
                    raise StatusDocumentError(
                        "nesting too deep (more than %d levels)" % MAX_DOCUMENT_DEPTH
                    )
            elif token in "]}":
                depth -= 1
    try:
        return json.loads(
            document,
            object_pairs_hook=_unique_object,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            parse_int=_short_int,
        )
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise StatusDocumentError("nesting too deep") from None
    except ValueError as exc:  # JSONDecodeError, int digit limit, ours
        raise StatusDocumentError("invalid JSON: %s" % exc) from None


###############################################################################
# Command line ################################################################
###############################################################################

#: Exit statuses of the command line, documented in ``--help`` and README.
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_TIMEOUT, EXIT_NETWORK = 0, 1, 2, 3, 4
EXIT_INTERRUPTED = 130

_EPILOG_EXIT = """exit status:
  0  the operation succeeded (parse: the document is valid)
  1  the operation failed
  2  usage error or invalid input
  3  timed out
  4  HTTP or network error
  130 interrupted (Ctrl-C)"""


class _UsageError(Exception):
    """Internal: a mistake of the user's, printed as one line, exit 2."""


def _describe_status(st):
    # type: (OperationStatus) -> str
    lines = ["status:       %s" % st.status.value,
             "created:      %s" % format_datetime(st.created_time)]
    if st.last_action_time is not None:
        lines.append(
            "last action:  %s (+%.3f s)"
            % (format_datetime(st.last_action_time), st.duration.total_seconds())
        )
    if st.message is not None:
        lines.append("message:      %s" % st.message)
    if st.resource_location is not None:
        ref = st.resource
        lines.append(
            "resource:     %s%s"
            % (st.resource_location, " (%s %s)" % (ref.kind, ref.id) if ref else "")
        )
    for key, value in st.extra.items():
        lines.append("extra:        %s = %s" % (key, _short_repr(value, 200)))
    return "\n".join(lines)


def _cmd_parse(args, out):
    if args.file == "-":
        stream = getattr(_sys.stdin, "buffer", _sys.stdin)
        data = stream.read(MAX_DOCUMENT_BYTES + 1)
    else:
        try:
            with open(args.file, "rb") as fh:
                data = fh.read(MAX_DOCUMENT_BYTES + 1)
        except OSError as exc:
            raise _UsageError("cannot read %s: %s" % (args.file, exc.strerror or exc))
    status = OperationStatus.from_json(data)
    if args.json:
        out.write(status.to_json(include_extra=True) + "\n")
    else:
        out.write(_describe_status(status) + "\n")
    return EXIT_OK


def _build_parser():
    import argparse

    parser = argparse.ArgumentParser(
        prog="opstatus",
        description="Follow Azure-style asynchronous operations to their end.",
        epilog=_EPILOG_EXIT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version="opstatus " + __version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser(
        "parse",
        help="read an operation status document and print it",
        description="Read an operation status document (JSON) and print it, "
        "or the error that makes it invalid (exit 2).",
        epilog="examples:\n"
        "  opstatus parse status.json\n"
        "  curl -s ... | opstatus parse -\n"
        "  opstatus parse --json status.json   # normalized camelCase JSON\n\n"
        + _EPILOG_EXIT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", nargs="?", default="-", metavar="FILE",
                   help="the document; '-' (the default) reads standard input")
    p.add_argument("--json", action="store_true",
                   help="print the document as normalized JSON")
    p.set_defaults(func=_cmd_parse)
    return parser


def main(argv=None):
    # type: (Optional[list]) -> int
    """Run the command line; returns the exit status."""
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
        return args.func(args, _sys.stdout)
    except KeyboardInterrupt:
        _sys.stderr.write("opstatus: interrupted\n")
        return EXIT_INTERRUPTED
    except (_UsageError, StatusDocumentError) as exc:
        _sys.stderr.write("opstatus: error: %s\n" % exc)
        return EXIT_USAGE


if __name__ == "__main__":
    _sys.exit(main())
