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

- :class:`OperationStatus` and :class:`Status` model an operation's status
  document as the services really send it; a :class:`Vocabulary` describes
  each service's words (Face, Read, Document Intelligence, Translator,
  Speech, Language, ARM) and unknown words fail closed;
- :func:`parse_datetime` is a strict, fast ISO 8601 / RFC 3339 reader;
- :func:`take_snapshot`, :func:`apply_snapshot` and :func:`start_operation`
  start operations; :func:`poll`, :class:`Poller`, :func:`poll_async` and
  :class:`Watcher` follow them to their end, with a deadline, jittered
  backoff, ``Retry-After``, typed errors, and secrets that go nowhere else;
- hooks let pluggy plugins add transports, auth, notifications and retry
  policies (pluggy is optional);
- :class:`Simulator` stands in for the Face snapshot API, retired in 2023;
- ``python opstatus.py demo | watch | start | take | apply | serve | parse |
  plugins`` is the command line.
"""

from __future__ import annotations

__all__ = [
    "__version__",
    # errors
    "OpStatusError", "StatusDocumentError", "UnsafeURLError", "NetworkError",
    "ResponseTooLarge", "HTTPError", "OperationNotFound", "OperationFailed",
    "OperationCanceled", "PollTimeout", "PollCancelled",
    # model and timestamps
    "Status", "OperationStatus", "ResourceRef", "Vocabulary", "VOCABULARIES", "vocabulary",
    "parse_datetime", "format_datetime",
    # polling
    "RetryPolicy", "parse_retry_after", "Request", "Response", "HTTPTransport", "Poller",
    "Step", "poll", "poll_async", "ResumeTokenError", "take_snapshot", "start_operation",
    "apply_snapshot", "api_base", "resolve_operation_url", "redact_url", "is_loopback",
    # plugins
    "PluginError", "HookSpecs", "hookimpl", "plugin_manager", "make_plugin_manager",
    "register_plugin",
    # the optional tail adds Outcome, Watcher, Simulator and main
]

__version__ = "0.2.0"

import dataclasses as _dataclasses
import datetime as _datetime
import enum as _enum
import heapq as _heapq
import io as _io
import itertools as _itertools
import json as _json
import logging as _logging
import os as _os
import random as _random
import re as _re
import shlex as _shlex
import sys as _sys
import threading as _threading
import time as _time
import types as _types
from collections import deque as _deque
from collections.abc import Mapping as _Mapping
from urllib.parse import parse_qs as _parse_qs, parse_qsl as _parse_qsl, unquote as _unquote
from urllib.parse import urljoin as _urljoin, urlsplit as _urlsplit

# Real imports, not TYPE_CHECKING ones: typing.get_type_hints() on the
# dataclasses must resolve their annotations.
from typing import Any, Callable, Dict, Iterator, Mapping, Optional, Tuple, TypeVar, Union

_log = _logging.getLogger(__name__ if __name__ != "__main__" else "opstatus")
#: One DEBUG line per HTTP exchange (``opstatus -v`` shows them).
_http_log = _logging.getLogger(_log.name + ".http")


###############################################################################
# Compatibility and lazy machinery ############################################
###############################################################################


class _LazyRegex:
    """A regular expression compiled on first use, so that ``import opstatus`` stays cheap."""

    def __init__(self, pattern):
        self._pattern = pattern

    def __getattr__(self, name):
        compiled = _re.compile(self._pattern)
        for method in ("match", "fullmatch", "search", "sub", "finditer", "findall"):
            setattr(self, method, getattr(compiled, method))  # later calls skip this
        return getattr(compiled, name)

    def __repr__(self):
        return "<_LazyRegex %r>" % (self._pattern,)


###############################################################################
# Errors ######################################################################
###############################################################################


class OpStatusError(Exception):
    """Base class of every error that opstatus raises on purpose."""


class StatusDocumentError(OpStatusError, ValueError):
    """A status document is not valid: :attr:`field` names the wire field at fault
    (``"createdTime"``), or is ``None`` for the whole document; :attr:`problem` says why."""

    def __init__(self, problem: str, field: Optional[str] = None) -> None:
        self.problem = problem
        self.field = field
        text = "%s: %s" % (field, problem) if field else problem
        super().__init__("invalid operation status: " + text)


class UnsafeURLError(OpStatusError, ValueError):
    """A URL or header was refused by a security rule before any I/O (a scheme other than
    https, userinfo, control characters, a secret sent to another origin). The message never
    contains a secret or a query string."""


class NetworkError(OpStatusError):
    """The request got no HTTP answer. :attr:`sent` is ``False`` when it surely never reached
    the server (even a POST may be sent again); :attr:`retryable` is ``False`` when another
    try cannot mend it (an untrusted certificate)."""

    def __init__(self, message, *, sent=True, url=None, retryable=True):
        super().__init__(message)
        self.sent, self.url, self.retryable = sent, url, retryable


class ResponseTooLarge(OpStatusError):
    """A response announced or sent more bytes than the cap allows."""


class HTTPError(OpStatusError):
    """An HTTP error status: :attr:`status`; the body's ``error.code`` and ``error.message``
    as :attr:`code` and :attr:`message` (or ``None``); :attr:`retry_after` in seconds, if any."""

    def __init__(self, status, code=None, message=None, *, url=None, retry_after=None):
        self.status, self.code, self.message = status, code, message
        self.url, self.retry_after = url, retry_after
        text = "HTTP %d" % status
        if code and code != str(status):  # "HTTP 401 401" says nothing more
            text += " %s" % code
        text += (": %s" % message if message else "") + (" (%s)" % url if url else "")
        super().__init__(_printable(text))


class OperationNotFound(HTTPError):
    """404 or 410 for an operation: unknown, or expired (48 hours)."""


class OperationFailed(OpStatusError):
    """The operation ended ``failed`` (``canceled``: a subclass). :attr:`status` is the final
    :class:`OperationStatus`; :attr:`code` and :attr:`message` the service's, or ``None``."""

    def __init__(self, status):
        self.status, self.message = status, status.message
        self.code = getattr(status, "error_code", None)
        outcome = getattr(status.status, "value", "failed")
        text = "operation " + outcome
        raw = getattr(status, "raw_status", None)
        if raw and raw.lower() != outcome:  # the service's own word: ValidationFailed
            text += " (%s)" % _clip(raw, 60)
        if self.code and self.code != status.message:
            text += ": " + _clip(self.code, 100)
        if status.message:
            text += ": " + _clip(status.message)
        super().__init__(_printable(text))  # printing it must not drive a terminal


class OperationCanceled(OperationFailed):
    """The operation ended with status ``canceled`` (:attr:`Status.CANCELED`)."""


class PollTimeout(OpStatusError, TimeoutError):
    """The deadline passed first. :attr:`last_status` is the last :class:`OperationStatus`
    seen (or ``None``), :attr:`timeout` the deadline in seconds, :attr:`last_error` the last
    attempt's error, if it failed."""

    def __init__(self, message, last_status=None, timeout=None, last_error=None):
        super().__init__(message)
        self.last_status, self.timeout, self.last_error = last_status, timeout, last_error


class PollCancelled(OpStatusError):
    """:meth:`Poller.cancel` was called; :attr:`last_status` as for timeouts."""

    def __init__(self, message, last_status=None):
        super().__init__(message)
        self.last_status = last_status


class ResumeTokenError(OpStatusError, ValueError):
    """A resume token is malformed, of another version, altered, or of another key."""


class PluginError(OpStatusError):
    """A plugin raised, returned something unusable or timed out (:attr:`plugin` names
    it), or a plugin was registered without pluggy installed."""

    def __init__(self, message, plugin=None):
        super().__init__(message)
        self.plugin = plugin


#: Longest service message carried into an exception's text.
MAX_MESSAGE_CHARS = 1000


def _clip(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


_UNPRINTABLE = _LazyRegex(r"[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e"
                          r"\u2060-\u2069\ufeff]")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(match):
    char = match.group()
    code = ord(char)
    return _ESCAPES.get(char) or ("\\x%02x" % code if code < 0x100 else "\\u%04x" % code)


def _printable(text: Any) -> str:
    """*text* with control characters escaped (``\\x1b``): it cannot drive a terminal."""
    return _UNPRINTABLE.sub(_escape_char, str(text))


###############################################################################
# The Status enum #############################################################
###############################################################################


class Status(str, _enum.Enum):
    """The states of an operation: the spec's lower-case strings, read case-insensitively
    (``Status("notStarted") is Status.NOTSTARTED``). An unknown value raises
    :class:`StatusDocumentError` (a ``ValueError``): it is never taken as "running"."""

    NOTSTARTED = "notstarted"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    #: Not a word of Face snapshots (the ``"face"`` vocabulary refuses it).
    CANCELED = "canceled"

    @classmethod
    def _missing_(cls, value):
        if not isinstance(value, str):
            raise StatusDocumentError("expected a string, got %s" % type(value).__name__,
                                      "status")
        member = _STATUS_BY_LOWER.get(value.lower())
        if member is None:
            known = ", ".join(m.value for m in cls)
            raise StatusDocumentError("unknown status %s; known: %s"
                                      % (_short_repr(value), known), "status")
        return member

    @property
    def is_terminal(self) -> bool:
        """True for :attr:`SUCCEEDED`, :attr:`FAILED` and :attr:`CANCELED`."""
        return self is Status.SUCCEEDED or self is Status.FAILED or self is Status.CANCELED

    def __str__(self):
        return self.value

    __format__ = str.__format__  # type: ignore[assignment]


_STATUS_BY_LOWER = {m.value: m for m in Status}


def _status_of(value: Any) -> Status:
    """``Status(value)`` without the enum's own error (and the raw value) chained to ours."""
    return value if isinstance(value, Status) else Status._missing_(value)


def _short_repr(value: Any, limit: int = 60) -> str:
    """repr() of *value*, cut to about *limit* characters for error messages."""
    text = repr(value)
    if len(text) > limit:  # keep the closing quote, so it still reads as a string
        text = text[: limit - 5] + "...'" if text[:1] in "'\"" else text[: limit - 3] + "..."
    return text


###############################################################################
# ISO 8601 parsing ############################################################
###############################################################################
#
# parse_datetime() reads RFC 3339 and the ISO 8601-1 date-time forms:
#   date   YYYY-MM-DD | YYYY-DDD | YYYY-Www-D, or basic YYYYMMDD | YYYYDDD | YYYYWwwD;
#          alone also YYYY-MM | YYYY | YYYY-Www | YYYYWww (midnight of the first day)
#   time   hh[:mm[:ss]] | hh[mm[ss]], a fraction (. or ,) of any length on the last field;
#          24:00[:00[.0…]] is midnight of the next day
#   sep    T, t or one space;   offset  Z | z | ±hh:mm | ±hhmm | ±hh  (hh <= 23, mm <= 59)
# Extended and basic format never mix. YYYYMM is refused (it reads like YYMMDD), and so are
# leap seconds (datetime cannot hold them). Fractions past microseconds are truncated.
# The fast path in parse_datetime() takes the shapes met nearly always (_FAST_SHAPES); the
# general reader, _read_datetime(), reads every form, one _read_x(text, pos) -> (value, pos)
# function per part, and names the field and index of a fault.

_UTC = _datetime.timezone.utc
_TZ_CACHE: Dict[int, _datetime.timezone] = {0: _UTC}
_DIGITS = frozenset("0123456789")  # unlike the str, holds no ""
#: "0" to "9" and "00" to "99" with their values: one look-up checks and reads a field.
_SMALL_NUMBERS = {"%0*d" % (width, n): n for width in (1, 2) for n in range(10 ** width)}
_DAYS_IN_MONTH = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_MONTH_NAMES = [None] + ("January February March April May June July August September"
                         " October November December").split()
_TIME_FIELDS = ("hour", "minute", "second")
_MICROS_IN = {"hour": 3600000000, "minute": 60000000}
_YEAR_ZERO = "year: 0000 is out of range 1..9999"
#: fromisoformat reads Z and any number of fraction digits from Python 3.11 on.
_ISO_Z = _sys.version_info >= (3, 11)
_fromisoformat = _datetime.datetime.fromisoformat
_ZERO_DIGITS = bytes.maketrans(b"123456789", b"000000000")
_DateAt = Tuple[Tuple[int, int, int], int]  # the date readers' ((year, month, day), index after)


def _read_fast_fields(text: str) -> _datetime.datetime:
    """The fast path's date and service shapes, field by field (for PyPy, whose JIT compiles
    this better than its fromisoformat); ``ValueError`` if not in shape, or out of range."""
    b = text.encode()  # ASCII if as long as text; bytes.isdigit() takes only 0-9
    if not (len(b) == len(text) and b[4] == b[7] == 45 and (b[:4] + b[5:7] + b[8:10]).isdigit()):
        raise ValueError("not in the fast path's shape")  # 45 '-'
    year = b[0] * 1000 + b[1] * 100 + b[2] * 10 + b[3] - 53328  # 48 * 1111
    month, day = b[5] * 10 + b[6] - 528, b[8] * 10 + b[9] - 528  # 48 * 11
    if len(b) == 10:
        return _datetime.datetime(year, month, day)
    fraction = b[20:-1]
    if not (b[10] == 84 and b[13] == b[16] == 58 and b[-1] == 90  # 'T', ':', 'Z'
            and (len(b) == 20 or b[19] == 46)  # '.'
            and (b[11:13] + b[14:16] + b[17:19] + fraction).isdigit()):
        raise ValueError("not in the fast path's shape")
    return _datetime.datetime(
        year, month, day, b[11] * 10 + b[12] - 528, b[14] * 10 + b[15] - 528,
        b[17] * 10 + b[18] - 528, int((fraction + b"00000")[:6]) if fraction else 0, _UTC,
    )


def _read_fast_basic(text: str) -> _datetime.datetime:
    """The fast path's ``20181225T114102Z`` (fromisoformat reads it only from 3.11 on);
    ``ValueError`` if not in shape, or out of range."""
    b = text.encode()
    if not (len(b) == 16 and b[8] == 84 and b[15] == 90 and (b[:8] + b[9:15]).isdigit()):
        raise ValueError("not in the fast path's shape")  # 84 'T', 90 'Z'
    return _datetime.datetime(int(b[:4]), int(b[4:6]), int(b[6:8]), int(b[9:11]), int(b[11:13]),
                              int(b[13:15]), 0, _UTC)


def _fast_shapes() -> Dict[int, Tuple[Optional[bytes], Any, int, str]]:
    """The fast path's shapes by length, (mask, reader, kept, suffix): a *reader* takes the
    text; else *mask* is the text with every digit ``0`` (``text.encode().translate(
    _ZERO_DIGITS) == mask``; a non-ASCII character takes more bytes) and fromisoformat reads
    ``text[:kept] + suffix`` to the general reader's value, or refuses it."""
    shapes: Dict[int, Any] = {16: (None, _read_fast_basic, 0, "")}
    if _sys.implementation.name != "cpython":  # a fromisoformat in Python: slower
        shapes.update(dict.fromkeys([10, 20, *range(22, 31)], (None, _read_fast_fields, 0, "")))
        return shapes
    shapes[10] = (b"0000-00-00", None, 10, "")
    for digits in range(10):
        mask = b"0000-00-00T00:00:00" + (b"." + b"0" * digits if digits else b"") + b"Z"
        kept, suffix = len(mask), ""
        if not _ISO_Z:  # six fraction digits, truncated or padded; +00:00 for Z
            kept = 20 + min(digits, 6) if digits else 19
            suffix = ("0" * max(6 - digits, 0) if digits else "") + "+00:00"
        shapes[len(mask)] = (mask, None, kept, suffix)
    return shapes


_FAST_SHAPES = _fast_shapes()


class _Reject(Exception):
    """Internal: carries (problem, index) to parse_datetime's one error site."""


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _describe(text: str, i: int) -> str:
    return "end of text" if i >= len(text) else repr(text[i])


def _expected(what: str, text: str, i: int, field: str = "") -> _Reject:
    problem = "expected %s at index %d, found %s" % (what, i, _describe(text, i))
    return _Reject(field + ": " + problem if field else problem, i)


def _digits_end(text: str, pos: int) -> int:
    """The index after the run of ASCII digits at *pos*."""
    return len(text) - len(text[pos:].lstrip("0123456789"))


def _read_int(text: str, pos: int, width: int, field: str) -> Tuple[int, int]:
    """Exactly *width* ASCII digits at *pos*, or _Reject naming *field*."""
    digits = text[pos : pos + width]
    if len(digits) == width:
        value = _SMALL_NUMBERS.get(digits)
        if value is not None:
            return value, pos + width
        if digits.isascii() and digits.isdigit():  # isdigit() alone takes '٢' and '²'
            return int(digits), pos + width
    raise _expected("a digit", text, min(_digits_end(text, pos), pos + width - 1), field)


def _fraction_units(digits: str, unit: int) -> int:
    """floor(0.<digits> * unit), exact, from as few digits as decide it: once both ends of
    [n/10**k, (n+1)/10**k), for the first k digits n, give one floor, no digit can change it."""
    for k in (24, 48, 96, 192, 384, 768, 1536, 3072):  # int() takes at most 4300 digits
        if k >= len(digits):
            return int(digits) * unit // 10 ** len(digits)
        n = int(digits[:k])
        low = n * unit // 10 ** k
        if low == ((n + 1) * unit - 1) // 10 ** k:
            return low
    # Undecided after 3072 digits (a fraction of an hour or minute that repeats): the floor is
    # low or low + 1, and low + 1 when the digits reach those of (low + 1) / unit.
    if low + 1 >= unit:
        return low
    boundary, exact = _decimal_digits(low + 1, unit, len(digits))
    return low + 1 if digits > boundary or (digits == boundary and exact) else low


def _decimal_digits(p: int, q: int, count: int) -> Tuple[str, bool]:
    """The first *count* digits of p/q (0 <= p < q) after the point, and whether they are all
    of them; found by long division until a remainder repeats (units of an hour or a minute
    repeat one digit after a dozen), so in time independent of *count*."""
    out: list = []
    seen: Dict[int, int] = {}
    while len(out) < count:
        if p == 0:
            return "".join(out).ljust(count, "0"), True
        if p in seen:
            start = seen[p]
            cycle = "".join(out[start:])
            text = "".join(out[:start]) + cycle * ((count - start) // len(cycle) + 1)
            return text[:count], False
        seen[p] = len(out)
        p *= 10
        out.append(str(p // q))
        p %= q
    return "".join(out), p == 0


def _read_fraction(text: str, pos: int, field: str) -> Tuple[str, int]:
    """A fraction (``.`` or ``,`` then digits) at *pos*, if any: (its digits, index after)."""
    if text[pos : pos + 1] not in (".", ","):
        return "", pos
    end = _digits_end(text, pos + 1)
    if end == pos + 1:
        raise _expected("a digit after the decimal sign", text, end, field)
    return text[pos + 1 : end], end


def _read_date(text: str, extended: bool) -> _DateAt:
    """The date at the start of *text*: ((year, month, day), index after it)."""
    year, pos = _read_int(text, 0, 4, "year")
    pos += extended
    if text[pos : pos + 1] == "W":
        return _read_week_date(text, pos + 1, year, extended)
    if year == 0:
        raise _Reject(_YEAR_ZERO, 0)
    if len(text) == 4:  # YYYY alone
        return (year, 1, 1), 4
    if text[pos + 3 : pos + 4] in _DIGITS or _digits_end(text, pos) != pos + 3:
        return _read_calendar_date(text, pos, year, extended)
    ordinal = int(text[pos : pos + 3])  # DDD, the day of the year
    last = 366 if _is_leap(year) else 365
    if not 1 <= ordinal <= last:
        raise _Reject("day of year: %d is out of range 1..%d for %d" % (ordinal, last, year), pos)
    date = _datetime.date.fromordinal(_datetime.date(year, 1, 1).toordinal() + ordinal - 1)
    return (year, date.month, date.day), pos + 3


def _read_calendar_date(text: str, pos: int, year: int, extended: bool) -> _DateAt:
    """MM-DD or MMDD at *pos*, or MM alone in extended format (the 1st)."""
    month_at = pos
    month, pos = _read_int(text, pos, 2, "month")
    if pos == len(text):
        if not extended:
            raise _Reject("day: expected a digit at index %d, found end of text (a year and"
                          " month alone are written YYYY-MM: YYYYMM is not ISO 8601)" % pos, pos)
        day, day_at = 1, pos
    elif extended and text[pos] != "-":
        raise _expected("'-'", text, pos, "day")
    else:
        day_at = pos + extended
        day, pos = _read_int(text, day_at, 2, "day")
    if not 1 <= month <= 12:
        raise _Reject("month: %d is out of range 1..12" % month, month_at)
    last = 29 if month == 2 and _is_leap(year) else _DAYS_IN_MONTH[month]
    if not 1 <= day <= last:
        raise _Reject("day: %d is out of range 1..%d for %s %d"
                      % (day, last, _MONTH_NAMES[month], year), day_at)
    return (year, month, day), pos


def _read_week_date(text: str, pos: int, year: int, extended: bool) -> _DateAt:
    """ww-D or wwD after the ``W`` (or ww alone: the week's Monday)."""
    week_at = pos
    week, pos = _read_int(text, pos, 2, "week")
    weekday = 1
    if pos < len(text):
        if extended and text[pos] != "-":
            raise _expected("'-'", text, pos, "weekday")
        weekday, pos = _read_int(text, pos + extended, 1, "weekday")
    if year == 0:
        raise _Reject(_YEAR_ZERO, 0)
    jan1 = _datetime.date(year, 1, 1).isoweekday()  # week 53 if it starts on a Thursday
    weeks = 53 if jan1 == 4 or (jan1 == 3 and _is_leap(year)) else 52
    if not 1 <= week <= weeks:
        raise _Reject("week: %d is out of range 1..%d for %d" % (week, weeks, year), week_at)
    if not 1 <= weekday <= 7:
        raise _Reject("weekday: %d is out of range 1..7" % weekday, pos - 1)
    jan4 = _datetime.date(year, 1, 4)
    ordinal = jan4.toordinal() - jan4.weekday() + 7 * (week - 1) + weekday - 1
    if ordinal > _datetime.date.max.toordinal():
        raise _Reject("week date %04d-W%02d-%d is past 9999-12-31" % (year, week, weekday), 0)
    date = _datetime.date.fromordinal(ordinal)
    return (date.year, date.month, date.day), pos


def _read_time(text: str, pos: int, extended: bool) -> Tuple[Tuple[int, int, int, int], int]:
    """hh[:mm[:ss]] or hh[mm[ss]] and a fraction of the last field: ((hour, minute, second,
    microsecond), index after it). Hour 24 comes back as 24, checked to end the day."""
    hour_at = pos
    fields = [0, 0, 0]  # hour, minute, second
    fields[0], pos = _read_int(text, pos, 2, "hour")
    if extended and text[pos : pos + 1] in _DIGITS:  # 2018-12-25T1141
        raise _Reject("digit at index %d: basic-format time after an extended-format date"
                      % pos, pos)
    count = 1
    while count < 3:
        char = text[pos : pos + 1]
        if char == ":" and not extended:
            raise _Reject("':' at index %d mixes extended time with a basic-format date"
                          % pos, pos)
        if char != ":" and (extended or char not in _DIGITS):
            break
        fields[count], pos = _read_int(text, pos + (char == ":"), 2, _TIME_FIELDS[count])
        count += 1
    hour, minute, second = fields
    micro = 0
    fraction, pos = _read_fraction(text, pos, _TIME_FIELDS[count - 1])
    if fraction and count == 3:
        micro = int(fraction[:6].ljust(6, "0"))
    elif fraction:  # of an hour or a minute: less than one of them
        micro = _fraction_units(fraction, _MICROS_IN[_TIME_FIELDS[count - 1]])
        minute_part, micro = divmod(micro, 60000000)
        second, micro = divmod(micro, 1000000)
        minute += minute_part
    _check_time(hour, minute, second, fraction, hour_at, 3 if extended else 2)
    return (hour, minute, second, micro), pos


def _check_time(hour: int, minute: int, second: int, fraction: str, hour_at: int,
                step: int) -> None:
    """_read_time's range checks: minute and second are *step* and 2 * *step* after hour."""
    if hour == 24:
        if minute or second or fraction.strip("0"):
            raise _Reject("hour: 24 is allowed only as 24:00:00 (end of day)", hour_at)
    elif hour > 23:
        raise _Reject("hour: %d is out of range 0..24" % hour, hour_at)
    if minute > 59:
        raise _Reject("minute: %d is out of range 0..59" % minute, hour_at + step)
    if second == 60:
        raise _Reject("second: leap second 60 is not supported", hour_at + 2 * step)
    if second > 59:
        raise _Reject("second: %d is out of range 0..59" % second, hour_at + 2 * step)


def _read_offset(text: str, pos: int, extended: bool) -> Tuple[Optional[_datetime.timezone], int]:
    """Z, z, ±hh:mm, ±hhmm or ±hh at *pos*, if any: (tzinfo, index after it)."""
    sign = text[pos : pos + 1]
    if sign in ("Z", "z"):
        return _UTC, pos + 1
    if sign not in ("+", "-"):
        return None, pos
    hour_at = minute_at = pos + 1
    hours, pos = _read_int(text, hour_at, 2, "offset hour")
    minutes = 0
    char = text[pos : pos + 1]
    if char == ":" and not extended:
        raise _Reject("offset: ':' at index %d mixes extended and basic format" % pos, pos)
    if char in _DIGITS and extended:
        raise _Reject("offset: basic ±hhmm at index %d in an extended-format text" % (pos - 3),
                      pos)
    if char == ":" or char in _DIGITS:
        minute_at = pos + (char == ":")
        minutes, pos = _read_int(text, minute_at, 2, "offset minute")
    if hours > 23:
        raise _Reject("offset hour: %d is out of range 0..23" % hours, hour_at)
    if minutes > 59:
        raise _Reject("offset minute: %d is out of range 0..59" % minutes, minute_at)
    minutes = (hours * 60 + minutes) * (-1 if sign == "-" else 1)
    tz = _TZ_CACHE.get(minutes)
    if tz is None:
        tz = _TZ_CACHE[minutes] = _datetime.timezone(_datetime.timedelta(minutes=minutes))
    return tz, pos


def _read_datetime(text: str) -> _datetime.datetime:
    """The general reader: every form above, or _Reject naming the fault."""
    if len(text) < 4:
        raise _Reject("too short for a date", len(text))
    extended = text[4:5] == "-"
    (year, month, day), pos = _read_date(text, extended)
    if pos == len(text):
        return _datetime.datetime(year, month, day)
    if text[pos] not in "Tt ":
        raise _expected("'T', 't' or ' ' before the time", text, pos)
    (hour, minute, second, micro), end = _read_time(text, pos + 1, extended)
    tzinfo, end = _read_offset(text, end, extended)
    if end < len(text):
        after = "offset" if tzinfo is not None else "date-time"
        raise _Reject("unexpected %s at index %d after the %s"
                      % (_describe(text, end), end, after), end)
    if hour < 24:
        return _datetime.datetime(year, month, day, hour, minute, second, micro, tzinfo)
    try:  # 24:00, the end of the day
        return _datetime.datetime(year, month, day, 0, 0, 0, 0, tzinfo) + _datetime.timedelta(1)
    except OverflowError:
        raise _Reject("24:00 on 9999-12-31 is past the largest date", pos + 1)


def parse_datetime(text: str) -> _datetime.datetime:
    """Parse an ISO 8601 / RFC 3339 date-time, strictly.

    Returns an aware ``datetime`` when *text* has an offset (``Z``, ``+01:00`` …), else a
    naive one; a date alone (``2018-12-25``, ``2018-12``, ``2018``, ``2018-W52``) is midnight
    of its first day. Fractions past the microsecond are truncated, never rounded. Raises
    ``ValueError`` naming the field, character and index at fault, ``TypeError`` for a
    non-``str``."""
    if type(text) is not str:  # a str subclass is read as a plain str
        if not isinstance(text, str):
            raise TypeError("parse_datetime() takes a str, not %s" % type(text).__name__)
        text = str(text)
    shape = _FAST_SHAPES.get(len(text))
    if shape is not None:  # the fast path, inline (a call costs 1/6 of it on 3.7)
        try:
            mask, reader, kept, suffix = shape
            if reader is not None:
                return reader(text)
            if text.encode().translate(_ZERO_DIGITS) == mask and not (
                    _ISO_Z and text[11:13] == "24"):  # never let fromisoformat judge 24:00
                return _fromisoformat(text[:kept] + suffix)
        except ValueError:
            pass  # another shape, out of range, a lone surrogate: the general reader decides
    try:
        return _read_datetime(text)
    except _Reject as exc:
        problem, index = exc.args
        if " index " not in problem:
            problem += " (index %d)" % index
        raise ValueError("invalid ISO 8601 date-time %s: %s"
                         % (_short_repr(text), problem)) from None


def format_datetime(dt: _datetime.datetime) -> str:
    """Write *dt* in the service's form: UTC, ``Z``, trailing zeros trimmed; a naive
    datetime is taken as UTC (``2018-12-25T11:41:02.2331Z``)."""
    if not isinstance(dt, _datetime.datetime):
        raise TypeError("format_datetime() takes a datetime, not %s" % type(dt).__name__)
    if dt.tzinfo is not None and dt.utcoffset() is not None:
        dt = dt.astimezone(_UTC)
    text = "%04d-%02d-%02dT%02d:%02d:%02d" % (dt.year, dt.month, dt.day, dt.hour, dt.minute,
                                               dt.second)
    if dt.microsecond:
        text += ("." + "%06d" % dt.microsecond).rstrip("0")
    return text + "Z"


###############################################################################
# The OperationStatus model ###################################################
###############################################################################

MAX_DOCUMENT_BYTES = 64 * 1024  #: Largest status document read under ``"face"``, in bytes.
MAX_DOCUMENT_DEPTH = 32  #: Deepest nesting of arrays and objects in a status document.
MAX_RESULT_BYTES = 64 * 1024 * 1024  #: Cap of a document under other vocabularies, in bytes.
MAX_SERVER_WAIT = 600.0  #: Longest ``Retry-After`` honoured, in seconds, even above ``cap``.
_JSON_SPECIAL = _LazyRegex(r'[\[\]{}"\\]')  # what the depth scan looks at

_WIRE_BY_FIELD = {"status": "status", "created_time": "createdTime",
                  "last_action_time": "lastActionTime", "message": "message",
                  "resource_location": "resourceLocation"}
#: Lower-cased wire names to attribute names; ``location`` is the spec example's alias.
_FIELD_BY_WIRE = {wire.lower(): field for field, wire in _WIRE_BY_FIELD.items()}
_FIELD_BY_WIRE["location"] = "resource_location"
#: The spellings the service uses (camelCase, PascalCase) to their lower case.
_LOWER_WIRE = {spelling: wire.lower() for wire in list(_WIRE_BY_FIELD.values()) + ["location"]
               for spelling in (wire, wire[0].upper() + wire[1:])}
#: Singular, lower-case object types that an apply names in resourceLocation.
_TARGET_TYPES = frozenset(("facelist", "largefacelist", "persongroup", "largepersongroup"))


@_dataclasses.dataclass(frozen=True)
class ResourceRef:
    """What a succeeded operation produced, read from ``resourceLocation``: ``kind`` is
    ``"snapshot"`` (a take) or the target's type (an apply: ``"persongroup"``, ``"facelist"``,
    ...), ``id`` the snapshot id or objectId, ``path`` the location as sent."""

    kind: str
    id: str
    path: str


def _names(value, what, lower=False):
    if isinstance(value, str) or not all(isinstance(v, str) and v for v in value):
        raise ValueError("Vocabulary.%s must be a sequence of non-empty str%s"
                         % (what, ", not %r" % (value,) if lower else ""))
    return tuple(v.lower() for v in value) if lower else tuple(value)


def _check_number(value, what, kinds, least):
    if isinstance(value, bool) or not isinstance(value, kinds) or not least <= value < 1e12:
        raise ValueError("Vocabulary.%s must be a number >= %s, not %r" % (what, least, value))


@_dataclasses.dataclass(frozen=True)
class Vocabulary:
    """How one family of services writes its status documents: data, no code.

    Words match case-insensitively; any other word is a :class:`StatusDocumentError`, or
    running if ``unknown`` is ``"running"``. Of the time fields, the first found wins.
    ``error_paths`` are dotted paths to a failure message (``errors.0.message``), the ``code``
    beside it its code; ``url_headers`` may hold a started operation's URL, by preference.
    With ``accepted_means_running``, a ``202`` is still running and a ``200``/``201``/``204``
    without a status word ends it. ``max_bytes`` caps a document; ``max_server_wait`` is the
    longest ``Retry-After`` honoured (``None``: the policy's cap).
    """

    name: str
    succeeded: Tuple[str, ...] = ("succeeded",)
    failed: Tuple[str, ...] = ("failed",)
    canceled: Tuple[str, ...] = ()
    running: Tuple[str, ...] = ("notstarted", "running")
    unknown: str = "error"
    status_field: str = "status"
    created_fields: Tuple[str, ...] = ("createdDateTime",)
    updated_fields: Tuple[str, ...] = ("lastUpdatedDateTime",)
    created_required: bool = False
    error_paths: Tuple[str, ...] = ("error.message",)
    url_headers: Tuple[str, ...] = ("Operation-Location",)
    accepted_means_running: bool = False
    max_bytes: int = MAX_RESULT_BYTES
    max_server_wait: Optional[float] = MAX_SERVER_WAIT

    def __post_init__(self):
        setattr_ = object.__setattr__
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("Vocabulary.name must be a non-empty str")
        outcomes: Dict[str, Status] = {}
        for what, member in (("succeeded", Status.SUCCEEDED), ("failed", Status.FAILED),
                             ("canceled", Status.CANCELED), ("running", Status.RUNNING)):
            words = _names(getattr(self, what), what, lower=True)
            for word in words:
                if word in outcomes:
                    raise ValueError("Vocabulary %r: %r is listed under two outcomes"
                                     % (self.name, word))
                outcomes[word] = Status.NOTSTARTED if word == "notstarted" else member
            setattr_(self, what, words)
        if self.unknown not in ("error", "running"):
            raise ValueError("Vocabulary.unknown must be 'error' or 'running', not %r"
                             % (self.unknown,))
        for what in ("created_fields", "updated_fields", "error_paths", "url_headers"):
            setattr_(self, what, _names(getattr(self, what), what))
        _check_number(self.max_bytes, "max_bytes", int, 1)
        if self.max_server_wait is not None:
            _check_number(self.max_server_wait, "max_server_wait", (int, float), 0)
        setattr_(self, "_outcomes", outcomes)

    def outcome(self, word: Any) -> Status:
        """The :class:`Status` *word* means here; :class:`StatusDocumentError` if unknown."""
        if not isinstance(word, str):
            raise StatusDocumentError("expected a string, got %s" % type(word).__name__,
                                      self.status_field)
        outcomes = self._outcomes  # type: ignore[attr-defined]
        member = outcomes.get(word)  # the service's own lower-case word, without lower()
        if member is None:
            member = outcomes.get(word.lower())
        if member is not None:
            return member
        if self.unknown == "running":
            return Status.RUNNING
        known = self.running + self.succeeded + self.failed + self.canceled
        raise StatusDocumentError("unknown status %s; known: %s"
                                  % (_short_repr(word), ", ".join(known)), self.status_field)


#: Face v1.0 snapshots (the default): exactly as strict as the service.
FACE = Vocabulary("face", created_fields=("createdTime",), updated_fields=("lastActionTime",),
                  created_required=True, error_paths=("message",), max_bytes=MAX_DOCUMENT_BYTES,
                  max_server_wait=None)

_FACE_WORDS = dict(FACE._outcomes, notStarted=Status.NOTSTARTED)  # type: ignore[attr-defined]
_FACE_WORD = {word: word for word in _FACE_WORDS}  # one copy of each (see _read_answer)

#: The built-in vocabularies by name.
VOCABULARIES = {
    "face": FACE,
    # The Azure REST guidelines' status monitor: Read, Document Intelligence (``completed``
    # succeeds), Speech batch transcription, Language jobs without partial results, Face v1.2.
    "azure": Vocabulary(
        "azure", succeeded=("succeeded", "completed"), canceled=("canceled", "cancelled"),
        created_fields=("createdDateTime", "createdTime"),
        updated_fields=("lastUpdatedDateTime", "lastActionDateTime", "lastActionTime"),
        error_paths=("error.message", "properties.error.message", "errors.0.message", "message"),
        url_headers=("Operation-Location", "Location")),
    # Translator document batches: ValidationFailed fails, Cancelling runs.
    "translator": Vocabulary(
        "translator", failed=("failed", "validationfailed"), canceled=("cancelled", "canceled"),
        running=("notstarted", "running", "cancelling"), created_fields=("createdDateTimeUtc",),
        updated_fields=("lastActionDateTimeUtc",)),
    # Language analyze-text jobs: partial results are a success, errors kept.
    "language": Vocabulary(
        "language", succeeded=("succeeded", "partiallycompleted", "partiallysucceeded"),
        canceled=("cancelled", "canceled"), running=("notstarted", "running", "cancelling"),
        error_paths=("errors.0.message", "error.message")),
    # Azure Resource Manager: Azure-AsyncOperation documents, or Location polling (202 until
    # done). Only succeeded, failed and canceled end it.
    "arm": Vocabulary(
        "arm", canceled=("canceled",), running=("notstarted", "accepted", "inprogress",
                                                "running", "creating", "updating", "deleting"),
        unknown="running", created_fields=("startTime",), updated_fields=("endTime",),
        error_paths=("error.message", "properties.error.message"),
        url_headers=("Azure-AsyncOperation", "Location"), accepted_means_running=True),
}


#: The keys that status documents share, one copy each (see _unique_object).
_KEYS = {key: key for key in list(_LOWER_WIRE) + ["error", "errors", "code", "properties",
                                                   "id", "name", "operationId", "finishedTime",
                                                   "percentCompleted", "details", "target"]
         + [name for vocab in VOCABULARIES.values()
            for name in vocab.created_fields + vocab.updated_fields + (vocab.status_field,)]}
_KEY = _KEYS.get


def vocabulary(name: str) -> Vocabulary:
    """The built-in :class:`Vocabulary` called *name* (case-insensitive), else ``ValueError``."""
    found = VOCABULARIES.get(name.lower()) if isinstance(name, str) else None
    if found is None:
        raise ValueError("unknown vocabulary %s; known: %s"
                         % (_short_repr(name), ", ".join(VOCABULARIES)))
    return found


def _vocabulary_of(value: Any) -> Vocabulary:
    if value is None:
        return FACE
    return value if isinstance(value, Vocabulary) else vocabulary(value)


def _field(index, names):
    """The ``(key, value)`` of the first of *names* (case-insensitive) in *index*."""
    for name in names:
        found = index.get(name.lower())
        if found is not None and found[1] is not None:
            return found
    return None


def _failure_reason(data, vocab):
    """(code, message) from the first error path (``errors.0.message``) to a message."""
    for path in vocab.error_paths:
        root, _dot, rest = path.partition(".")
        parent, node = data, data.get(root)  # most documents have none of the roots
        if node is None:
            continue
        for step in rest.split(".") if rest else ():
            parent = node
            if isinstance(node, _Mapping):
                node = node.get(step)
            elif isinstance(node, list) and step.isdigit() and int(step) < len(node):
                node = node[int(step)]
            else:
                node = None
                break
        if isinstance(node, str):
            code = parent.get("code") if isinstance(parent, _Mapping) else None
            return (code if isinstance(code, str) else None), node
    return None, None


def _read_face(cls, data, owned=False):
    """A Face v1.0 document, as strictly as the service writes it (checks done here, once);
    *owned*: *data* was decoded here and is kept as the document without a copy."""
    if type(data) is dict:  # the service's own spellings, and no key that is a variant of one
        extra = dict(data)
        pop = extra.pop
        fields = (pop("status", None), pop("createdTime", None), pop("lastActionTime", None),
                  pop("message", None), pop("resourceLocation", None))
        for key in extra:
            if type(key) is not str or key.lower() in _FIELD_BY_WIRE:
                break
        else:
            return _face_status(cls, data, *fields, extra, owned)  # extra: a dict of its own
    known: Dict[str, Tuple[str, Any]] = {}  # the five fields: {lower wire name: (key, value)}
    extra = {}
    for key, value in data.items():
        lower = _LOWER_WIRE.get(key)  # the wire's own spellings, without lower()
        if lower is None:
            if not isinstance(key, str):
                raise StatusDocumentError("keys must be strings, got %r" % (key,))
            lower = key.lower()
            if lower not in _FIELD_BY_WIRE:
                extra[key] = value
                continue
        if lower in known:
            raise StatusDocumentError(
                "duplicate key (%s and %s)" % (_short_repr(known[lower][0]), _short_repr(key)),
                _WIRE_BY_FIELD[_FIELD_BY_WIRE[lower]])
        known[lower] = (key, value)
    key, value = known.pop("location", (None, None))
    if value is not None:  # resourceLocation wins; else ``location`` goes with the unknown keys
        if known.get("resourcelocation", (None, None))[1] is None:
            known["resourcelocation"] = (key, value)
        else:
            extra[key] = value
    values = {lower: pair[1] for lower, pair in known.items()}
    return _face_status(cls, data, values.get("status"), values.get("createdtime"),
                        values.get("lastactiontime"), values.get("message"),
                        values.get("resourcelocation"), extra, owned)


def _face_status(cls, data, raw, created, last, message, location, extra, owned):
    status = _FACE_WORDS.get(raw) if type(raw) is str else None  # the service's own words
    if status is None:
        if raw is None:
            raise StatusDocumentError("missing (a required field)", "status")
        status = FACE.outcome(raw)
    if created is None:
        raise StatusDocumentError("missing (a required field)", "createdTime")
    if cls is not OperationStatus:  # a subclass: its own __init__ and checks
        return cls(status, created, last, message, location, extra, raw_status=raw, document=data)
    if not (message is None or isinstance(message, str)):
        raise StatusDocumentError("expected a string, got %s" % type(message).__name__, "message")
    if not (location is None or isinstance(location, str)):
        raise StatusDocumentError("expected a string, got %s" % type(location).__name__,
                                  "resourceLocation")
    return _checked_status(status, _as_time(created, "createdTime"),
                           None if last is None else _as_time(last, "lastActionTime"),
                           message, location, extra, raw, data, None, owned)


def _checked_status(status, created, last, message, location, extra, raw, data, code, owned):
    """An OperationStatus of fields already checked (what ``__post_init__`` would do)."""
    self = _new(OperationStatus)
    _set_status(self, status)
    _set_created(self, created)
    _set_last(self, last)
    _set_message(self, message)
    _set_location(self, location)
    _set_extra(self, _proxy(extra) if extra else _NO_EXTRA)
    _set_raw(self, raw)
    _set_document(self, _proxy(data if owned else dict(data)))
    _set_code(self, code)
    return self


_NO_EXTRA: Mapping[str, Any] = _types.MappingProxyType({})  # read-only: one for all
_new, _proxy = object.__new__, _types.MappingProxyType


def _read_document(cls, data, vocab, owned=False):
    """A status document read under *vocab* (any but ``"face"``); *owned* as for _read_face."""
    index: Dict[str, Tuple[str, Any]] = {}
    for key, value in data.items():
        if not isinstance(key, str):
            raise StatusDocumentError("keys must be strings, got %r" % (key,))
        lower = key.lower()
        if lower in index:
            raise StatusDocumentError("duplicate key (%s and %s)"
                                      % (_short_repr(index[lower][0]), _short_repr(key)), key)
        index[lower] = (key, value)
    found = _field(index, (vocab.status_field,))
    if found is None:
        raise StatusDocumentError("missing (a required field)", vocab.status_field)
    status = vocab.outcome(found[1])
    created, updated = _field(index, vocab.created_fields), _field(index, vocab.updated_fields)
    created = None if created is None else _as_time(created[1], created[0])
    updated = None if updated is None else _as_time(updated[1], updated[0])
    if created is None and vocab.created_required:
        raise StatusDocumentError("missing (a required field)", vocab.created_fields[0])
    code, message = _failure_reason(data, vocab)
    location = _field(index, ("resourceLocation",))
    location = location[1] if location is not None and isinstance(location[1], str) else None
    if cls is OperationStatus:  # every field checked above (the word by outcome())
        return _checked_status(status, created, updated, message, location, {}, found[1], data,
                               code, owned)
    return cls(status, created, updated, message, location, raw_status=found[1], document=data,
               error_code=code)


def _as_time(value: Any, wire: str) -> _datetime.datetime:
    if isinstance(value, str):
        try:
            value = parse_datetime(value)
        except ValueError as exc:
            raise StatusDocumentError(str(exc), wire) from None
        if value.tzinfo is _UTC:  # the service's own form
            return value
    elif not isinstance(value, _datetime.datetime):
        raise StatusDocumentError("expected an ISO 8601 string, got %s"
                                  % type(value).__name__, wire)
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=_UTC)
    if value.tzinfo is not _UTC:
        try:
            value = value.astimezone(_UTC)
        except OverflowError:
            raise StatusDocumentError("%s is outside the years 1..9999 in UTC"
                                      % value.isoformat(), wire) from None
    return value


_C = TypeVar("_C")


def _slotted(cls: _C) -> _C:
    """The frozen dataclass *cls* made again with its fields as ``__slots__``, as Python
    3.10's ``dataclass(slots=True)`` does: a status then takes about 220 bytes less, and a
    poller keeps one (thousands of pollers, as many). Weak references to it still work."""
    old: Any = cls
    names = tuple(f.name for f in _dataclasses.fields(old))
    body = dict(old.__dict__)
    for name in names + ("__dict__", "__weakref__"):
        body.pop(name, None)
    body["__slots__"] = names + ("__weakref__",)
    fields = frozenset(names)

    def __setattr__(self, name, value):  # the dataclass's own name the class it made first
        if type(self) is new or name in fields:
            raise _dataclasses.FrozenInstanceError("cannot assign to field %r" % name)
        super(new, self).__setattr__(name, value)

    def __delattr__(self, name):
        if type(self) is new or name in fields:
            raise _dataclasses.FrozenInstanceError("cannot delete field %r" % name)
        super(new, self).__delattr__(name)

    body["__setattr__"], body["__delattr__"] = __setattr__, __delattr__
    new = type(old)(old.__name__, old.__bases__, body)
    return new


@_slotted
@_dataclasses.dataclass(frozen=True)
class OperationStatus:
    """The status of an asynchronous operation, read with :meth:`from_json` or :meth:`from_dict`.

    Datetimes are aware and in UTC. Keys the model does not know are kept in :attr:`extra`
    (read-only), which takes no part in equality or hashing.
    """

    status: Status
    created_time: Optional[_datetime.datetime]
    last_action_time: Optional[_datetime.datetime] = None
    message: Optional[str] = None
    resource_location: Optional[str] = None
    extra: Mapping[str, Any] = _dataclasses.field(default_factory=dict, compare=False,
                                                  hash=False, repr=False)
    #: The status word as sent (``"notStarted"``); ``None`` if there was none (ARM ``Location``).
    raw_status: Optional[str] = _dataclasses.field(default=None, compare=False, repr=False)
    #: The whole document as read (read-only at its top level).
    document: Mapping[str, Any] = _dataclasses.field(default_factory=dict, compare=False,
                                                     hash=False, repr=False)
    #: The failure's code, where the vocabulary's error paths found one.
    error_code: Optional[str] = _dataclasses.field(default=None, repr=False)

    def __post_init__(self):
        setattr_ = object.__setattr__
        setattr_(self, "status", _status_of(self.status))
        if self.created_time is not None:
            setattr_(self, "created_time", _as_time(self.created_time, "createdTime"))
        if self.last_action_time is not None:
            setattr_(self, "last_action_time", _as_time(self.last_action_time, "lastActionTime"))
        for name in ("message", "resource_location", "raw_status", "error_code"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise StatusDocumentError("expected a string, got %s" % type(value).__name__,
                                          _WIRE_BY_FIELD.get(name, name))
        for name in ("extra", "document"):
            value = getattr(self, name)
            if not isinstance(value, _types.MappingProxyType):
                setattr_(self, name, _types.MappingProxyType(dict(value)))

    def __reduce__(self):  # a read-only mapping does not pickle: rebuild from the init fields
        values = (getattr(self, f.name) for f in _dataclasses.fields(self) if f.init)
        return (type(self), tuple(dict(value) if isinstance(value, _types.MappingProxyType)
                                  else value for value in values))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, vocabulary: Any = None) -> OperationStatus:
        """Read a decoded status document as *vocabulary* (a :class:`Vocabulary` or a
        built-in's name; default ``"face"``) says; :class:`StatusDocumentError` names the field.

        Keys match case-insensitively; ``null`` is absent. Under ``"face"`` (2019 and 2021
        dialects), ``createdTime`` is required and ``location`` is read as ``resourceLocation``.
        """
        if not isinstance(data, _Mapping):
            raise StatusDocumentError("expected a JSON object, got %s" % _json_type_name(data))
        if vocabulary is not None and vocabulary is not FACE:
            vocab = _vocabulary_of(vocabulary)
            if vocab is not FACE:
                return _read_document(cls, data, vocab)
        return _read_face(cls, data)

    @classmethod
    def from_json(cls, document: Union[str, bytes, bytearray], *, max_bytes: Optional[int] = None,
                  vocabulary: Any = None) -> OperationStatus:
        """Read a status document from JSON text or bytes (UTF-8, -16 or -32); refuses
        ``NaN``, ``Infinity``, duplicate keys, more than *max_bytes* (default: the vocabulary's
        cap) and nesting deeper than :data:`MAX_DOCUMENT_DEPTH`."""
        if vocabulary is None or vocabulary is FACE:
            data = _load_json_object(document, max_bytes)
            if cls is OperationStatus and type(data) is dict:  # from_dict's own work, directly
                return _read_face(cls, data, owned=True)
            return cls.from_dict(data)
        vocab = _vocabulary_of(vocabulary)
        limit = vocab.max_bytes if max_bytes is None else max_bytes
        data = _load_json_object(document, limit)
        if cls is OperationStatus and type(data) is dict and vocab is not FACE:
            return _read_document(cls, data, vocab, owned=True)
        return cls.from_dict(data, vocabulary=vocab)

    def to_dict(self, *, include_extra: bool = False) -> Dict[str, Any]:
        """The document in camelCase, absent optionals left out (``from_dict`` reads it back);
        *include_extra* adds the unknown keys read."""
        out: Dict[str, Any] = {"status": self.status.value}
        for name in ("created_time", "last_action_time", "message", "resource_location"):
            value = getattr(self, name)
            if value is not None:
                out[_WIRE_BY_FIELD[name]] = format_datetime(value) if "time" in name else value
        if include_extra:
            out.update((key, value) for key, value in self.extra.items() if key not in out)
        return out

    def to_json(self, *, include_extra: bool = False, **dumps_kwargs: Any) -> str:
        """:meth:`to_dict` as JSON text; keyword arguments go to ``_json.dumps``."""
        return _json.dumps(self.to_dict(include_extra=include_extra), **dumps_kwargs)

    @property
    def is_terminal(self) -> bool:
        """True once the operation succeeded or failed."""
        return self.status.is_terminal

    @property
    def succeeded(self) -> bool:
        return self.status is Status.SUCCEEDED

    @property
    def failed(self) -> bool:
        return self.status is Status.FAILED

    @property
    def canceled(self) -> bool:
        return self.status is Status.CANCELED

    @property
    def resource(self) -> Optional[ResourceRef]:
        """What the operation produced, or ``None`` before it succeeded (``resourceLocation``
        holds placeholders until then). An absolute URL is read by its path."""
        if self.status is not Status.SUCCEEDED or not self.resource_location:
            return None
        path = self.resource_location.split("?", 1)[0].split("#", 1)[0]
        if "://" in path:
            path = "/" + path.split("://", 1)[1].partition("/")[2]
        parts = [p for p in path.split("/") if p]
        kind = parts[-2].lower() if len(parts) >= 2 else None
        if kind == "snapshots":
            kind = "snapshot"
        elif kind not in _TARGET_TYPES:
            return None
        return ResourceRef(kind, parts[-1], self.resource_location)

    @property
    def snapshot_id(self) -> Optional[str]:
        """The id of the snapshot a take produced; ``None`` until it succeeded."""
        ref = self.resource
        return ref.id if ref is not None and ref.kind == "snapshot" else None

    @property
    def target_id(self) -> Optional[str]:
        """The objectId an apply created; ``None`` until it succeeded."""
        ref = self.resource
        return ref.id if ref is not None and ref.kind != "snapshot" else None

    @property
    def duration(self) -> Optional[_datetime.timedelta]:
        """``lastActionTime - createdTime``, when the service sent both."""
        if self.last_action_time is None or self.created_time is None:
            return None
        return self.last_action_time - self.created_time


# what _checked_status sets, each slot's own setter (faster than object.__setattr__)
(_set_status, _set_created, _set_last, _set_message, _set_location, _set_extra, _set_raw,
 _set_document, _set_code) = (getattr(OperationStatus, field.name).__set__
                              for field in _dataclasses.fields(OperationStatus))


def _json_type_name(value: Any) -> str:
    for kinds, name in ((type(None), "null"), (bool, "a boolean"), ((int, float), "a number"),
                        (str, "a string"), ((list, tuple), "an array")):
        if isinstance(value, kinds):
            return name
    return type(value).__name__


def _reject_constant(name):
    raise ValueError("%s is not valid JSON" % name)


def _unique_object(pairs):
    # The decoder makes a new str for each key of each object. An object that starts with a
    # key of status documents (a document's top level; an error) keeps one copy of each
    # known key: thousands of pollers each keep their last document. The other objects of a
    # large result are left as they are (re-keying them costs about 9% of its decoding).
    if pairs and pairs[0][0] in _KEYS:
        obj = {_KEY(key, key): value for key, value in pairs}
    else:
        obj = dict(pairs)
    if len(obj) != len(pairs):
        seen = set()
        for key, _value in pairs:
            if key in seen:
                raise ValueError("duplicate key %s" % _short_repr(key))
            seen.add(key)
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


def _check_depth(document: str) -> None:
    """Refuse nesting deeper than MAX_DOCUMENT_DEPTH, in one linear pass (strings skipped)."""
    depth, in_string, skip = 0, False, -1
    for match in _JSON_SPECIAL.finditer(document):
        at = match.start()
        if at == skip:
            continue
        char = match.group()
        if in_string:
            if char == "\\":
                skip = at + 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DOCUMENT_DEPTH:
                raise StatusDocumentError("nesting too deep (more than %d levels)"
                                          % MAX_DOCUMENT_DEPTH)
        elif char in "]}":
            depth -= 1


def _load_json_object(document: Union[str, bytes, bytearray],
                      max_bytes: Optional[int] = None) -> Any:
    """_json.loads with a size cap, a depth cap and strict numbers."""
    limit = MAX_DOCUMENT_BYTES if max_bytes is None else max_bytes
    if isinstance(document, (bytes, bytearray, memoryview)):
        document = bytes(document)
        if len(document) > limit:
            raise StatusDocumentError("body too large (%d bytes, limit %d)"
                                      % (len(document), limit))
        # UTF-8 unless a BOM or a NUL says otherwise (_json.detect_encoding).
        plain = document[:1] not in (b"\x00", b"\xef", b"\xfe", b"\xff", b"") and (
            len(document) < 2 or document[1:2] != b"\x00")
        try:
            document = document.decode("utf-8" if plain else _json.detect_encoding(document))
        except (UnicodeDecodeError, LookupError) as exc:
            raise StatusDocumentError("invalid JSON: not UTF-8/16/32 text (%s)" % exc.reason
                                      if isinstance(exc, UnicodeDecodeError) else
                                      "invalid JSON: unknown encoding") from None
    elif not isinstance(document, str):
        raise TypeError("from_json() takes str or bytes, not %s" % type(document).__name__)
    elif len(document) > limit:  # characters: at least as many bytes
        raise StatusDocumentError("body too large (%d characters, limit %d bytes)"
                                  % (len(document), limit))
    # Large results skip the scan: the decoder's recursion guard ends a hostile nesting there.
    if len(document) <= MAX_DOCUMENT_BYTES and \
            document.count("[") + document.count("{") > MAX_DOCUMENT_DEPTH:
        _check_depth(document)
    try:
        if document[:1] == "\ufeff":  # as _json.loads says it
            raise ValueError("Unexpected UTF-8 BOM (decode using utf-8-sig): "
                             "line 1 column 1 (char 0)")
        start = len(document) - len(document.lstrip(" \t\n\r")) if document[:1] in " \t\n\r" else 0
        try:  # _JSON_DECODER.decode, without its two regular expression matches
            value, end = _JSON_SCAN(document, start)
        except StopIteration as exc:
            raise _json.JSONDecodeError("Expecting value", document, exc.value) from None
        if end != len(document):
            end = len(document) - len(document[end:].lstrip(" \t\n\r"))
            if end != len(document):
                raise _json.JSONDecodeError("Extra data", document, end)
        return value
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise StatusDocumentError("nesting too deep") from None
    except ValueError as exc:  # JSONDecodeError, int digit limit, ours
        raise StatusDocumentError("invalid JSON: %s" % exc) from None


#: One strict decoder for every document (json.loads would build one a call).
_JSON_DECODER = _json.JSONDecoder(object_pairs_hook=_unique_object,
                                  parse_constant=_reject_constant,
                                  parse_float=_finite_float, parse_int=_short_int)
_JSON_SCAN = _JSON_DECODER.scan_once  # type: ignore[attr-defined]  # set by JSONDecoder


###############################################################################
# Retry policy ################################################################
###############################################################################

DEFAULT_FLOOR = 0.5  #: Shortest wait between two polls, in seconds.
DEFAULT_CAP = 60.0  #: Longest wait between two polls, in seconds.
DEFAULT_GROWTH = 0.2  #: Wait between polls as a share of the operation's age.
DEFAULT_JITTER = 0.2  #: Share of each wait drawn at random (downwards).
DEFAULT_ERROR_BASE = 1.0  #: First wait after a transient error, doubled on each next one.
DEFAULT_UNREACHABLE = 30.0  #: Seconds of retries for an address that has never answered.
DEFAULT_TIMEOUT = 6 * 3600.0  #: Deadline of :func:`poll`, in seconds (a take may last hours).
DEFAULT_REQUEST_TIMEOUT = 10.0  #: Timeout of one HTTP request (connect, send, each read).
DEFAULT_START_TIMEOUT = 180.0  #: Deadline of a request that starts an operation, retries too.
MAX_RESPONSE_BYTES = 1024 * 1024  #: Largest HTTP response body read, in bytes.
RETRY_STATUSES = frozenset((429, 500, 502, 503, 504))  #: Worth another try on a GET.
_MAX_HINT = 366 * 86400.0  # the largest delay a server may ask for and still be heard
_FACE_429 = _LazyRegex(  # the wait a Face 429 states in its text
    r"(?i)(?:try again in|retry after) ([0-9]{1,7}(?:\.[0-9]{1,6})?) second(?:s|\(s\))?")
_NUMBER = _LazyRegex(r"[0-9]{1,10}(?:\.[0-9]{1,6})?")


def _finite_delay(value: Any, cap: float) -> Optional[float]:
    """*value* as a delay in [0, cap], or None if it is not a sane number."""
    if isinstance(value, bool):
        return None
    try:
        value = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return min(value, cap) if 0 <= value <= _MAX_HINT else None  # not NaN, negative, absurd


def parse_retry_after(headers: Mapping[str, str], body: Optional[str] = None, *,
                      now: Optional[float] = None) -> Optional[float]:
    """The delay, in seconds, that a response asks for, or ``None``: ``retry-after-ms``,
    ``x-ms-retry-after-ms``, ``Retry-After`` (seconds or an HTTP-date, against *now*, default
    the wall clock) from *headers* (lower-case keys), then the Face 429 text of *body* ("Try
    again in N seconds."). What is not a sane non-negative number is ignored, never raised."""
    for name, scale in (("retry-after-ms", 0.001), ("x-ms-retry-after-ms", 0.001),
                        ("retry-after", 1)):
        raw = headers.get(name)
        if raw is None:
            continue
        number = _NUMBER.fullmatch(raw.split(",", 1)[0].strip(" \t"))  # sent twice: the first
        value = _finite_delay(number.group(), _MAX_HINT) if number else None
        if value is None and scale == 1:  # Retry-After may be an HTTP-date
            value = _http_date_delay(raw, now)
        if value is not None:
            return value * scale
    match = _FACE_429.search(body[:4096]) if body else None
    return float(match.group(1)) if match else None


def _http_date_delay(raw: str, now: Optional[float]) -> Optional[float]:
    text = raw.strip(" \t")
    if not text or len(text) > 64 or not text.isascii() or text[0] in "0123456789":
        return None
    from email.utils import parsedate_to_datetime
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=_UTC)
    try:
        delay = when.timestamp() - (_time.time() if now is None else now)
    except (OverflowError, ValueError, OSError):
        return None
    return max(0.0, delay) if delay <= _MAX_HINT else None


@_dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """When to poll again, and which errors are worth another try (immutable).

    Between polls the wait is ``growth`` times the operation's age, lowered at random by up
    to ``jitter`` of itself; after a transient error, ``error_base`` doubled per consecutive
    error, half of it random; both within [``floor``, ``cap``] and the time left, as is a
    server's ``Retry-After``, which replaces them. ``max_errors`` bounds the consecutive
    transient errors; ``unreachable``, in seconds, the retries of a poll whose address never
    answered (refused, not resolved, connect timeout); ``None``: only the deadline does.
    """

    floor: float = DEFAULT_FLOOR
    cap: float = DEFAULT_CAP
    growth: float = DEFAULT_GROWTH
    jitter: float = DEFAULT_JITTER
    error_base: float = DEFAULT_ERROR_BASE
    max_errors: Optional[int] = None
    retry_statuses: frozenset = RETRY_STATUSES
    unreachable: Optional[float] = DEFAULT_UNREACHABLE

    def __post_init__(self):
        def bad(value):  # not a finite number >= 0
            return not isinstance(value, (int, float)) or _finite_delay(value, _MAX_HINT) is None
        for name in ("floor", "cap", "growth", "jitter", "error_base"):
            if bad(getattr(self, name)):
                raise ValueError("RetryPolicy.%s must be a finite number >= 0, not %r"
                                 % (name, getattr(self, name)))
        errors = self.max_errors
        if errors is not None and (isinstance(errors, bool) or not isinstance(errors, int)
                                   or errors < 0):
            raise ValueError("RetryPolicy.max_errors must be None or an int >= 0, not %r"
                             % (errors,))
        if self.unreachable is not None and bad(self.unreachable):
            raise ValueError("RetryPolicy.unreachable must be None or a finite number >= 0, "
                             "not %r" % (self.unreachable,))
        if not 0 <= self.jitter <= 1:
            raise ValueError("RetryPolicy.jitter must be within 0..1, not %r" % (self.jitter,))
        if self.floor > self.cap:
            raise ValueError("RetryPolicy.floor (%r) is above cap (%r)" % (self.floor, self.cap))

    def poll_delay(self, age: float, random: Callable[[], float]) -> float:
        """The wait before the next poll of an operation *age* seconds old."""
        base = min(self.cap, max(self.floor, self.growth * age))
        return max(self.floor, base * (1.0 - self.jitter * random()))

    def error_delay(self, errors: int, random: Callable[[], float]) -> float:
        """The wait after the *errors*-th consecutive transient error."""
        base = min(self.cap, self.error_base * 2.0 ** min(max(errors - 1, 0), 30))
        return min(self.cap, max(self.floor, base * (0.5 + 0.5 * random())))

    def is_retryable(self, error: BaseException, errors: int) -> bool:
        """Whether *error* (the *errors*-th in a row) is worth another try."""
        if self.max_errors is not None and errors > self.max_errors:
            return False
        if isinstance(error, HTTPError):
            return error.status in self.retry_statuses
        return isinstance(error, NetworkError) and error.retryable

    def clamp_hint(self, delay: Any, time_left: Optional[float] = None,
                   ceiling: Optional[float] = MAX_SERVER_WAIT) -> float:
        """A wait the *service* asked for (``Retry-After``): honoured above ``cap`` up to
        *ceiling* (``None``: the cap), never below ``floor`` nor past the time left."""
        value = _finite_delay(delay, self.cap if ceiling is None else max(ceiling, self.cap))
        value = self.floor if value is None else max(self.floor, value)
        return value if time_left is None else min(value, max(0.0, time_left))

    def clamp(self, delay: Any, time_left: Optional[float] = None) -> float:
        """*delay* within [floor, cap] and the time left; not a sane number: the floor."""
        return self.clamp_hint(delay, time_left, None)


_DEFAULT_POLICY = RetryPolicy()  # frozen: one for every poller given none


###############################################################################
# URLs and secrets ############################################################
###############################################################################

#: The Face API base path added to an endpoint given without a path.
FACE_API_PATH = "/face/v1.0"
#: Header that carries the subscription key.
KEY_HEADER = "Ocp-Apim-Subscription-Key"
#: Headers whose values are secrets: never logged, shown, or sent to another origin.
SECRET_HEADERS = frozenset(("ocp-apim-subscription-key", "authorization", "proxy-authorization",
                            "api-key", "x-api-key", "cookie"))

_BAD_URL_CHARS = _LazyRegex(r"[^\x21-\x5b\x5d-\x7e]")  # controls, space, \\, non-ASCII
_BAD_HEADER_CHARS = _LazyRegex(r"[\x00-\x08\x0a-\x1f\x7f]")
_TOKEN = _LazyRegex(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


_SPLITS: Dict[Tuple[str, bool], Any] = {}  # the last URLs that passed (an endpoint, mostly)


def _split_url(url: str, *, allow_http: bool = False, what: str = "URL") -> Any:
    """_urlsplit() of an absolute URL that passes the safety rules."""
    parts = _SPLITS.get((url, allow_http)) if type(url) is str else None
    if parts is None:
        parts = _check_url(url, allow_http, what)
        if len(_SPLITS) >= 64:
            _SPLITS.clear()
        _SPLITS[(url, allow_http)] = parts
    return parts


def _check_url(url, allow_http, what):
    if not isinstance(url, str):
        raise UnsafeURLError("%s must be a str, not %s" % (what, type(url).__name__))
    if not url:
        raise UnsafeURLError("%s is empty" % what)
    match = _BAD_URL_CHARS.search(url)
    if match:
        raise UnsafeURLError("%s contains %r at index %d (control characters, spaces, backslashes"
                             " and non-ASCII characters are refused; percent-encode them)"
                             % (what, match.group(), match.start()))
    try:
        parts = _urlsplit(url)
        port, hostname = parts.port, parts.hostname
    except ValueError as exc:
        raise UnsafeURLError("%s is malformed: %s" % (what, exc)) from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise UnsafeURLError("%s has scheme %r: only https (and http to loopback) is allowed"
                             % (what, scheme or "(none)"))
    if "@" in parts.netloc:
        raise UnsafeURLError("%s has userinfo ('user@host'), which is refused" % what)
    if not hostname:
        raise UnsafeURLError("%s has no host" % what)
    if scheme == "http" and not allow_http and not is_loopback(hostname):
        raise UnsafeURLError(
            "%s uses plain http to %s: only https is allowed to a host other than "
            "loopback (allow_http=True, or --allow-http, overrides)" % (what, hostname))
    if port == 0:
        raise UnsafeURLError("%s has port 0" % what)
    return parts


def _known_target(url):
    """(origin, path and query, authority) of *url* when its scheme and authority are those
    of a URL that passed :func:`_split_url` (its origin is known) and it has no refused
    character: what _split_url would give, without urlsplit (thousands of operations' URLs
    on one endpoint). Else None."""
    scheme, sep, rest = url.partition("://")
    if not sep or type(url) is not str:
        return None
    cut = len(rest)
    for mark in "/?#":
        found = rest.find(mark, 0, cut)
        if found >= 0:
            cut = found
    origin = _ORIGINS.get((scheme.lower(), rest[:cut]))
    if origin is None or _BAD_URL_CHARS.search(url):
        return None
    path, _mark, query = rest[cut:].partition("#")[0].partition("?")
    return origin, (path or "/") + ("?" + query if query else ""), rest[:cut]


def is_loopback(host: str) -> bool:
    """Whether *host* (a name or an address, no brackets) is this machine's loopback:
    ``localhost``, ``*.localhost``, 127.0.0.0/8 or ``::1``, the only hosts plain http may go to."""
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    import ipaddress
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_ORIGINS: Dict[Tuple[str, str], Tuple[str, str, int]] = {}


def _origin(parts: Any) -> Tuple[str, str, int]:
    """(scheme, host, port) of a checked URL's parts; one shared tuple for each."""
    origin = _ORIGINS.get((parts.scheme, parts.netloc))
    if origin is None:
        scheme = parts.scheme.lower()
        origin = (scheme, parts.hostname.lower(), parts.port or (443 if scheme == "https" else 80))
        if len(_ORIGINS) >= 256:
            _ORIGINS.clear()
        _ORIGINS[(parts.scheme, parts.netloc)] = origin
    return origin


def redact_url(url: str) -> str:
    """*url* as it may be shown: no query string (SAS ``sig=`` and other tokens travel there),
    no fragment, no userinfo."""
    if not isinstance(url, str):
        return "<%s>" % type(url).__name__
    base, q, _query = url.split("#", 1)[0].partition("?")
    if "://" in base:
        scheme, _, rest = base.partition("://")
        host, slash, path = rest.partition("/")
        base = "%s://%s%s%s" % (scheme, host.rpartition("@")[2], slash, path)
    shown = _clip(base + ("?…" if q else ""), 200)
    return url if shown == url else shown  # the same string: a poller keeps both


def api_base(endpoint: str, *, allow_http: bool = False) -> str:
    """The API base of a resource endpoint: ``https://host`` becomes
    ``https://host/face/v1.0``; an endpoint with a path is kept as it is."""
    parts = _split_url(endpoint, allow_http=allow_http, what="endpoint")
    if parts.query or parts.fragment:
        raise UnsafeURLError("endpoint must not have a query or fragment")
    path = parts.path.rstrip("/") or FACE_API_PATH
    return "%s://%s%s" % (parts.scheme.lower(), parts.netloc, path)


def resolve_operation_url(operation_location: str, endpoint: Optional[str] = None, *,
                          allow_http: bool = False) -> str:
    """The absolute URL of an ``Operation-Location``: a relative one (``/operations/{id}``)
    is relative to the API base, not the host root; an absolute one must be on the endpoint's
    origin (so the key cannot travel elsewhere). Raises :class:`UnsafeURLError`."""
    loc = operation_location
    if not isinstance(loc, str):
        raise UnsafeURLError("Operation-Location must be a str, not %s" % type(loc).__name__)
    match = _BAD_URL_CHARS.search(loc)
    if match:
        raise UnsafeURLError(
            "Operation-Location contains %r at index %d" % (match.group(), match.start()))
    if loc.startswith("//"):
        raise UnsafeURLError("Operation-Location %s is scheme-relative: refused" % redact_url(loc))
    if loc.startswith("/"):
        if endpoint is None:
            raise UnsafeURLError("Operation-Location %s is relative: pass the endpoint it "
                                 "belongs to" % redact_url(loc))
        url = api_base(endpoint, allow_http=allow_http) + loc
        _split_url(url, allow_http=allow_http, what="Operation-Location")
        return url
    parts = _split_url(loc, allow_http=allow_http, what="Operation-Location")
    if endpoint is not None:
        base = _split_url(endpoint, allow_http=allow_http, what="endpoint")
        if _origin(parts) != _origin(base):
            raise UnsafeURLError(
                "Operation-Location %s is on another origin than the endpoint %s: "
                "refused, so that the key goes nowhere else"
                % (redact_url(loc), redact_url(endpoint)))
    return loc


def _query_values(url):
    """The values in *url*'s query string (a SAS ``sig=`` among them), as secrets."""
    values = []
    for pair in url.partition("?")[2].partition("#")[0].split("&"):
        value = pair.partition("=")[2]
        if value:
            values += (value, _unquote(value))
    return values


def _check_headers(headers: Mapping[str, str]) -> Dict[str, str]:
    """Header names and values without CR, LF or other control characters."""
    checked = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            raise UnsafeURLError("header name %s is not a valid token" % _short_repr(name, 40))
        if not isinstance(value, str):
            raise UnsafeURLError("header %s must have a str value" % name)
        if max(value, default=" ") > "\xff":  # headers go out as latin-1
            problem = "has characters outside latin-1"
        elif _BAD_HEADER_CHARS.search(value) or value != value.strip(" \t"):
            problem = "has control characters or surrounding space"
        else:
            checked[name] = value
            continue
        shown = "<secret>" if name.lower() in SECRET_HEADERS else _short_repr(value, 40)
        raise UnsafeURLError("header %s %s: %s" % (name, problem, shown))
    return checked


_QUERY_SECRET = _LazyRegex(r"(?i)(sig|signature|key|token|code)=[^&\s\"']+")


class _Scrubber:
    """Replaces secret values in text that may be shown (errors, logs)."""

    __slots__ = ("_secrets",)

    def __init__(self, secrets=()):
        self._secrets: list = []
        self.add(*secrets)

    def add(self, *values):
        merged = set(self._secrets) | {v for v in values if v and len(v) >= 8}
        self._secrets = sorted(merged, key=len, reverse=True)

    def __call__(self, text):
        if text is None:
            return None
        text = str(text)
        for secret in self._secrets:
            bare = secret[7:] if secret.startswith("Bearer ") else secret
            text = text.replace(secret, "***").replace(bare, "***")
            # A secret cut short by a clipped message: its first 12+ characters count.
            if len(bare) >= 16 and bare[:12] in text:
                for k in range(len(bare) - 1, 11, -1):
                    text = text.replace(bare[:k], "***")
        return _QUERY_SECRET.sub(r"\1=***", text)

    def __repr__(self):
        return "<_Scrubber of %d secrets>" % len(self._secrets)


###############################################################################
# Transport ###################################################################
###############################################################################


class Request:
    """An HTTP request as the transport sees it. ``headers`` may hold secrets: ``repr()`` shows
    their names only. ``timeout`` is the time the whole exchange may take, in seconds."""

    __slots__ = ("method", "url", "headers", "body", "timeout", "max_bytes")

    def __init__(self, method, url, headers=None, body=None, timeout=DEFAULT_REQUEST_TIMEOUT,
                 max_bytes=MAX_RESPONSE_BYTES):
        self.method, self.url, self.headers = method, url, dict(headers or {})
        self.body, self.timeout, self.max_bytes = body, timeout, max_bytes

    def __repr__(self):
        return "<Request %s %s headers=%s>" % (self.method, redact_url(self.url),
                                               sorted(self.headers))


class Response:
    """An HTTP response: ``status``, ``headers`` (lower-case names, repeated headers joined
    with ``", "``), ``body`` (bytes, at most the cap)."""

    __slots__ = ("status", "headers", "body", "url")

    def __init__(self, status, headers, body=b"", url=None):
        self.status, self.headers, self.body, self.url = status, headers, body, url

    def text(self, limit: Optional[int] = None) -> str:
        return (self.body if limit is None else self.body[:limit]).decode("utf-8", "replace")

    def __repr__(self):
        return "<Response %d, %d bytes>" % (self.status, len(self.body))


class _DeadlineReader(_io.RawIOBase):
    """The socket reader of one connection: every read gets only the time left before the
    exchange's *deadline*, so that a server dripping one byte at a time cannot stretch a
    request beyond its timeout."""

    def __init__(self, sock):
        self.sock, self.deadline, self.probing = sock, 0.0, False

    def readable(self):
        return True

    def readinto(self, buffer):
        if self.probing:  # a look at what is buffered beyond the answer: no system call
            return None
        self.limit()
        return self.sock.recv_into(buffer)

    def limit(self):
        """Let no wait of the socket pass the deadline. The timeout in force is kept while
        within 0.05 s of the time left (setting one costs system calls)."""
        left = self.deadline - _time.monotonic()
        if left <= 0:
            import socket
            raise socket.timeout("timed out (request deadline)")
        current = self.sock.gettimeout()
        if current is None or current <= 0 or abs(current - left) > 0.05:
            self.sock.settimeout(left)


class _Connection:
    """A kept-alive HTTP/1.1 connection of the built-in transport (no reference cycle: a
    connection dropped is freed at once, its buffer with it)."""

    __slots__ = ("sock", "raw", "reader")

    def __init__(self, sock):
        self.sock, self.raw = sock, _DeadlineReader(sock)
        self.reader = _io.BufferedReader(self.raw, 65536)

    def leftover(self):
        """Whether bytes are buffered beyond the answer read (no system call)."""
        self.raw.probing = True
        try:
            return bool(self.reader.peek(1))
        except (OSError, ValueError):
            return True
        finally:
            self.raw.probing = False

    def close(self):
        self.sock.close()


class _BadAnswer(Exception):
    """The server's answer broke HTTP/1.1's framing (the connection is not used again)."""


class _Closed(Exception):
    """The server closed the connection before the first byte of its answer."""


#: Interim (1xx) answers skipped before the final one of one request.
MAX_INTERIM_RESPONSES = 16
_MAX_LINE, _MAX_HEADERS = 65536, 100  # as http.client's
_NO_BODY = frozenset((101, 204, 304))


def _read_line(reader, what):
    line = reader.readline(_MAX_LINE + 1)
    if len(line) > _MAX_LINE:
        raise _BadAnswer("%s longer than %d bytes" % (what, _MAX_LINE))
    return line


def _read_head(reader):
    """The status, headers and whether HTTP/1.0 of the next final (not 1xx) answer; 1xx
    answers (101 aside) are skipped, so that none is taken for the answer of a request."""
    for _ in range(MAX_INTERIM_RESPONSES + 1):
        line = _read_line(reader, "status line")
        if not line:
            raise _Closed()
        parts = line.split(None, 2)
        if len(parts) < 2 or parts[0] not in (b"HTTP/1.1", b"HTTP/1.0") or \
                len(parts[1]) != 3 or not parts[1].isdigit() or not b"100" <= parts[1] < b"600":
            raise _BadAnswer("not an HTTP/1.x status line: %s" % _short_repr(line[:80]))
        status, headers = int(parts[1]), {}  # type: Tuple[int, Dict[str, str]]
        name = None
        for _ in range(_MAX_HEADERS + 1):
            line = _read_line(reader, "header line")
            if line in (b"\r\n", b"\n"):
                break
            if not line:
                raise _BadAnswer("the connection closed within the headers")
            if line[:1] in (b" ", b"\t"):  # obsolete line folding: part of the last value
                if name is None:
                    raise _BadAnswer("a folded line before any header")
                headers[name] += " " + line.strip().decode("latin-1")
                continue
            key, colon, value = line.partition(b":")
            name = key.decode("latin-1").lower()
            if not colon or not _TOKEN.fullmatch(name):
                raise _BadAnswer("malformed header line: %s" % _short_repr(line[:80]))
            value = value.strip().decode("latin-1")
            headers[name] = headers[name] + ", " + value if name in headers else value
        else:
            raise _BadAnswer("more than %d headers" % _MAX_HEADERS)
        if not 100 <= status < 200 or status == 101:
            return status, headers, parts[0] == b"HTTP/1.0"
    raise _BadAnswer("more than %d interim (1xx) answers" % MAX_INTERIM_RESPONSES)


def _reusable(framed, status, headers, http10):
    """Whether a connection may carry another request after this answer: its body framed
    and read whole, a final answer, no close announced (nothing more buffered either: the
    caller's check)."""
    return framed and status >= 200 and not http10 and \
        "close" not in headers.get("connection", "").lower()


def _read_body(reader, status, headers, limit):
    """The body (at most *limit* bytes) and whether its end was framed (the connection may
    be used again)."""
    if status in _NO_BODY:
        return b"", status != 101  # after a 101 the connection speaks another protocol
    coding = headers.get("transfer-encoding")
    if coding is not None:
        if coding.rsplit(",", 1)[-1].strip().lower() != "chunked":
            return _read_to_close(reader, limit), False
        # with a Content-Length too, its framing is in doubt: not used again
        return _read_chunked(reader, limit), "content-length" not in headers
    length = headers.get("content-length")
    if length is None:
        return _read_to_close(reader, limit), False
    values = {v.strip() for v in length.split(",")}
    announced = values.pop()
    if values or not announced.isdigit() or not announced.isascii():
        raise _BadAnswer("invalid Content-Length: %s" % _short_repr(length[:40]))
    size = int(announced) if len(announced) <= 18 else limit + 1  # no 4,300-digit int()
    if size > limit:
        raise ResponseTooLarge("response announces %d bytes, more than the cap of %d"
                               % (size, limit))
    body = reader.read(size) if size else b""
    if len(body) < size:
        raise _BadAnswer("the body was cut short: %d of %d bytes, then the connection closed"
                         % (len(body), size))
    return body, True


def _read_to_close(reader, limit):
    chunks, total = [], 0
    while True:  # in pieces, so that an oversized body is never held whole
        chunk = reader.read1(min(65536, limit + 1 - total))
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > limit:
            raise ResponseTooLarge("response body exceeds the cap of %d bytes" % limit)
        chunks.append(chunk)


def _read_chunked(reader, limit):
    chunks, total = [], 0
    while True:
        line = _read_line(reader, "chunk size line")
        size_text = line.split(b";", 1)[0].strip()
        try:
            if not size_text or size_text.lstrip(b"0123456789abcdefABCDEF"):
                raise ValueError
            size = int(size_text, 16)
        except ValueError:
            if not line:
                raise _BadAnswer("the chunked body was cut short after %d bytes" % total)
            raise _BadAnswer("invalid chunk size: %s" % _short_repr(line[:40])) from None
        if size == 0:
            break
        total += size
        if total > limit:
            raise ResponseTooLarge("response body exceeds the cap of %d bytes" % limit)
        chunk = reader.read(size)
        if len(chunk) < size:
            raise _BadAnswer("the chunked body was cut short after %d bytes"
                             % (total - size + len(chunk)))
        if reader.read(2) != b"\r\n":
            raise _BadAnswer("a chunk of %d bytes is not followed by CRLF" % size)
        chunks.append(chunk)
    for _ in range(_MAX_HEADERS + 1):  # trailers: read and dropped
        line = _read_line(reader, "trailer line")
        if line in (b"\r\n", b"\n"):
            return b"".join(chunks)
        if not line:
            raise _BadAnswer("the connection closed within the trailers")
    raise _BadAnswer("more than %d trailer lines" % _MAX_HEADERS)


def _verifies(context):
    import ssl
    return context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


class HTTPTransport:
    """The built-in transport: HTTP/1.1 on the standard library's sockets, with connections
    kept alive per origin, no proxy, no redirects followed, TLS always verified
    (*ssl_context*, which must verify, or *cafile* select the trusted certificates). Safe to
    share between threads."""

    def __init__(self, *, ssl_context=None, cafile=None):
        if ssl_context is not None and not _verifies(ssl_context):
            raise ValueError("ssl_context must verify certificates and host names "
                             "(verify_mode=CERT_REQUIRED, check_hostname=True)")
        if cafile is not None and not _os.path.isfile(cafile):
            raise ValueError("cafile %r is not a file" % (cafile,))
        self._ssl_context, self._cafile = ssl_context, cafile
        self._idle: Dict[Tuple[str, str, int], list] = {}
        self._targets: Dict[str, Tuple[Tuple[str, str, int], str, str]] = {}
        self._blocks: Dict[tuple, bytes] = {}  # checked header lines, by the headers' items
        self._lock = _threading.Lock()
        self._generation = 0  # bumped by close(): connections in flight then are not kept

    def __repr__(self):
        return "<HTTPTransport, %d idle connections>" % sum(len(v) for v in self._idle.values())

    def _context(self):
        if self._ssl_context is None:
            import ssl
            self._ssl_context = ssl.create_default_context(cafile=self._cafile)
        if not _verifies(self._ssl_context):
            raise UnsafeURLError("the ssl_context no longer verifies certificates and host "
                                 "names: refused")
        return self._ssl_context

    def _connect(self, origin, deadline, url):
        return _Connection(self._socket(origin, deadline, url))

    def _socket(self, origin, deadline, url):
        """A connected socket (TLS: verified) to *origin*, or :class:`NetworkError`."""
        import socket
        scheme, host, port = origin
        context = self._context() if scheme == "https" else None
        try:
            sock = socket.create_connection((host, port), max(0.001, deadline - _time.monotonic()))
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if context is not None:
                    sock = context.wrap_socket(sock, server_hostname=host)
            except BaseException:
                sock.close()
                raise
        except Exception as exc:
            raise _network_error(exc, sent=False, url=url) from None
        return sock

    def _idle_connection(self, origin):
        """A kept-alive connection to *origin* that is provably idle, or None. One with
        anything to read (stray bytes, the server's close) is dropped."""
        while True:
            with self._lock:
                pool = self._idle.get(origin)
                conn = pool.pop() if pool else None
            if conn is None or not _readable_now(conn.sock):
                return conn
            conn.close()

    def _head(self, request, path, authority):
        """The request's head: the header lines checked once for each set of headers; the
        framing (Host unless given, Content-Length) is the transport's own."""
        if not isinstance(request.method, str) or not _TOKEN.fullmatch(request.method):
            raise UnsafeURLError("HTTP method %s is not a valid token"
                                 % _short_repr(request.method, 40))
        items = tuple(request.headers.items())
        try:
            block = self._blocks.get(items)
        except TypeError:  # an unhashable value, which _check_headers names
            block = None
        if block is None:
            checked = _check_headers(request.headers)
            names = {name.lower() for name in checked}
            lines = [] if "host" in names else ["Host: " + authority]
            if "accept-encoding" not in names:
                lines.append("Accept-Encoding: identity")
            lines.extend("%s: %s" % (k, v) for k, v in checked.items()
                         if k.lower() not in ("content-length", "transfer-encoding"))
            block = ("\r\n".join(lines) + "\r\n").encode("latin-1")
            if len(self._blocks) >= 64:
                self._blocks.clear()
            self._blocks[items] = block
        head = ("%s %s HTTP/1.1\r\n" % (request.method, path)).encode("ascii") + block
        body = request.body
        if body is None and request.method not in ("POST", "PUT", "PATCH"):
            return head + b"\r\n"
        body = bytes(body or b"")
        return head + b"Content-Length: %d\r\n\r\n" % len(body) + body

    def _message(self, request):
        """The origin *request* goes to, and its bytes."""
        target = self._targets.get(request.url)
        if target is None:  # a poll sends one URL again and again: split it once
            target = _known_target(request.url)
            if target is None:
                parts = _split_url(request.url, allow_http=True)
                path = (parts.path or "/") + ("?" + parts.query if parts.query else "")
                target = (_origin(parts), path, parts.netloc)
            if len(self._targets) >= 1024:
                self._targets.clear()
            self._targets[request.url] = target
        origin, path, authority = target
        return origin, self._head(request, path, authority)

    def send(self, request: Request) -> Response:
        """Send *request*: the :class:`Response`, or :class:`NetworkError` or
        :class:`ResponseTooLarge`. When a kept-alive connection turns out closed, a GET goes
        again on a new one; another method only if it was not sent whole."""
        origin, message = self._message(request)
        deadline = _time.monotonic() + max(0.001, request.timeout)
        generation = self._generation
        conn = self._idle_connection(origin)
        if conn is not None:
            try:
                return self._exchange(conn, origin, message, request, deadline, generation,
                                      True)
            except _StaleConnection as stale:
                exc, sent = stale.args
                if sent and request.method != "GET":
                    raise _network_error(exc, sent=True, url=request.url) from None
        conn = self._connect(origin, deadline, request.url)
        return self._exchange(conn, origin, message, request, deadline, generation, False)

    def _exchange(self, conn, origin, message, request, deadline, generation, reused):
        conn.raw.deadline, sent = deadline, False
        try:
            conn.raw.limit()
            conn.sock.sendall(message)
            sent = True
            status, headers, http10 = _read_head(conn.reader)
            body, framed = _read_body(conn.reader, status, headers, request.max_bytes)
        except ResponseTooLarge:
            conn.close()
            raise
        except _Closed:
            conn.close()
            if reused:
                raise _StaleConnection(ConnectionResetError("closed"), True) from None
            raise NetworkError("server closed the connection without answering (%s)"
                               % redact_url(request.url), sent=True,
                               url=redact_url(request.url)) from None
        except _BadAnswer as exc:
            conn.close()
            raise NetworkError("%s (%s)" % (exc, redact_url(request.url)), sent=True,
                               url=redact_url(request.url)) from None
        except (OSError, ValueError) as exc:  # ValueError: the socket closed under the reader
            conn.close()
            if reused and isinstance(exc, (ConnectionResetError, BrokenPipeError,
                                           ConnectionAbortedError)):
                raise _StaleConnection(exc, sent) from None
            raise _network_error(exc, sent=True, url=request.url) from None
        if _reusable(framed, status, headers, http10) and not conn.leftover():
            with self._lock:
                if generation == self._generation:
                    self._idle.setdefault(origin, []).append(conn)
                    conn = None
        if conn is not None:
            conn.close()
        return Response(status, headers, body, request.url)

    def close(self):
        """Close the idle connections."""
        with self._lock:
            pools, self._idle = self._idle, {}
            self._generation += 1
        for pool in pools.values():
            for conn in pool:
                conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def _readable_now(sock):
    """Whether *sock* has bytes or an end of stream waiting (TLS: decrypted ones too)."""
    import select
    try:
        pending = getattr(sock, "pending", None)
        if pending is not None and pending():
            return True
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


class _StaleConnection(Exception):
    """A kept-alive connection found closed by the server; args: (exception, sent whole)."""


class _NeedMore(Exception):
    """The answer is not whole yet."""


class _Received:
    """What a non-blocking connection received, read as the blocking reader is (readline,
    read, read1): a read past what is there raises :class:`_NeedMore` (the parse starts again
    once more came), or stops at the end of the stream."""

    __slots__ = ("data", "pos", "eof")

    def __init__(self):
        self.data, self.pos, self.eof = bytearray(), 0, False

    def readline(self, limit):
        data, pos = self.data, self.pos
        end = data.find(b"\n", pos, pos + limit)
        if end < 0:
            if len(data) - pos < limit and not self.eof:
                raise _NeedMore()
            end = min(len(data), pos + limit) - 1
        self.pos = end + 1
        return bytes(data[pos:end + 1])

    def read(self, size):
        pos = self.pos
        if len(self.data) - pos < size and not self.eof:
            raise _NeedMore()
        self.pos = min(len(self.data), pos + size)
        return bytes(self.data[pos:self.pos])

    def read1(self, size):
        if self.pos >= len(self.data) and not self.eof:
            raise _NeedMore()
        return self.read(min(size, len(self.data) - self.pos))


class _Wire:
    """A non-blocking connection of a :class:`_Mux`, and the exchange on it."""

    __slots__ = ("sock", "origin", "received", "out", "key", "request", "message", "deadline",
                 "reused", "watching")

    def __init__(self, sock, origin):
        self.sock, self.origin, self.received, self.out = sock, origin, _Received(), b""
        self.key = self.request = self.message = None
        self.deadline, self.reused = 0.0, False
        self.watching = 0  # what the mux waits for: 0 nothing, 1 readable, 2 writable


class _Mux:
    """Requests sent by an :class:`HTTPTransport`'s rules over non-blocking kept-alive
    connections, many at once in one thread. A subclass says how it learns that a socket is
    ready (:meth:`_watch`) and hands out the ``(key, response, error)`` that ended
    (:meth:`_end`)."""

    def __init__(self, transport):
        import ssl
        self.transport, self._wants = transport, (
            BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)
        self.idle: Dict[Tuple[str, str, int], list] = {}
        self.busy: Dict[_Wire, None] = {}

    def _watch(self, wire, writing):
        """Wait for *wire* to be writable (*writing*) or readable."""
        raise NotImplementedError

    def _unwatch(self, wire):
        raise NotImplementedError

    def _end(self, key, response, error):
        raise NotImplementedError

    def _again(self, key, request, origin, message, deadline):
        """Send on a new connection what a kept-alive one the server had closed lost."""
        self._start(key, request, origin, message, deadline)

    def _idle_wire(self, origin):
        pool = self.idle.get(origin)
        while pool:
            wire = pool.pop()
            if not _readable_now(wire.sock):
                return wire
            self._drop(wire)  # the server closed it, or sent what none asked for
        return None

    def _open(self, origin, deadline, url):
        sock = self.transport._socket(origin, deadline, url)
        sock.setblocking(False)
        return sock

    def _start(self, key, request, origin, message, deadline):
        wire = self._idle_wire(origin)
        if wire is None:
            try:
                wire = _Wire(self._open(origin, deadline, request.url), origin)
            except Exception as exc:
                self._end(key, None, exc)
                return
        else:
            wire.reused = True
        self._begin(wire, key, request, message, deadline)

    def _begin(self, wire, key, request, message, deadline):
        wire.key, wire.request, wire.message, wire.deadline = key, request, message, deadline
        wire.received, wire.out = _Received(), message
        self.busy[wire] = None
        self._write(wire)  # most often all of it at once: then only reads are waited for

    def _write(self, wire):
        try:
            sent = wire.sock.send(wire.out)
        except self._wants:
            sent = 0
        except OSError as exc:
            self._broken(wire, exc, sent=False)
            return
        wire.out = wire.out[sent:]
        self._watch(wire, bool(wire.out))

    def _read(self, wire):
        received = wire.received
        try:
            while True:
                chunk = wire.sock.recv(16384)  # a status document takes one
                if not chunk:
                    received.eof = True
                    break
                received.data += chunk
                pending = getattr(wire.sock, "pending", None)  # TLS: decrypted, unread
                if pending is None or not pending():
                    break
        except self._wants:
            pass
        except OSError as exc:
            self._broken(wire, exc, sent=True)
            return
        request, shown = wire.request, redact_url(wire.request.url)
        received.pos = 0
        try:
            status, headers, http10 = _read_head(received)
            body, framed = _read_body(received, status, headers, request.max_bytes)
        except _NeedMore:
            return
        except _Closed:
            self._fail(wire, NetworkError("server closed the connection without answering (%s)"
                                          % shown, url=shown), stale=True)
            return
        except _BadAnswer as exc:
            self._fail(wire, NetworkError("%s (%s)" % (exc, shown), url=shown))
            return
        except ResponseTooLarge as exc:
            self._fail(wire, exc)
            return
        self._release(wire)
        if _reusable(framed, status, headers, http10) and received.pos == len(received.data):
            self.idle.setdefault(wire.origin, []).append(wire)  # still watched: see _idle_read
        else:
            self._drop(wire)
        self._end(wire.key, Response(status, headers, body, request.url), None)

    def _idle_read(self, wire):
        """An idle connection turned readable (the server closed it, or sent what none asked
        for): it is not used again."""
        pool = self.idle.get(wire.origin, ())
        if wire in pool:
            pool.remove(wire)
        self._drop(wire)

    def _expire(self, wire):
        if wire in self.busy:
            shown = redact_url(wire.request.url)
            self._fail(wire, NetworkError("timed out (%s)" % shown, url=shown))

    def _fail(self, wire, exc, *, sent=True, stale=False):
        """End the exchange on *wire* with *exc*; a kept-alive connection the server had
        closed (*stale*) gets the request again on a new one (a GET, or one not sent)."""
        self._release(wire)
        self._drop(wire)
        request = wire.request
        if stale and wire.reused and (not sent or request.method == "GET"):
            self._again(wire.key, request, wire.origin, wire.message, wire.deadline)
        else:
            self._end(wire.key, None, exc)

    def _broken(self, wire, exc, sent):
        self._fail(wire, _network_error(exc, sent=True, url=wire.request.url), sent=sent,
                   stale=isinstance(exc, (ConnectionResetError, BrokenPipeError,
                                          ConnectionAbortedError)))

    def _release(self, wire):
        self.busy.pop(wire, None)

    def _drop(self, wire):
        self._unwatch(wire)
        wire.sock.close()

    def close(self):
        """Close every connection (the exchanges under way end unanswered)."""
        for wire in list(self.busy):
            self._release(wire)
            self._drop(wire)
        for pool in self.idle.values():
            for wire in pool:
                self._drop(wire)
        self.idle = {}


_ASYNC_REQUESTS = 8  # requests of one event loop's polls under way at once
_WATCHDOG_SECONDS = 0.05  # how often an event loop's mux looks for requests past deadline


class _LoopMux(_Mux):
    """An event loop's polls' requests, sent on its own selector (no thread per request);
    one for each loop and transport, kept on the loop while polls use it."""

    def __init__(self, transport, loop):
        super().__init__(transport)
        self.loop, self.users, self.turns = loop, 0, 0
        self._watchdog: Any = None  # the timer that ends exchanges past their deadline
        self.waiters: Any = _deque()  # polls waiting for a turn: one of _ASYNC_REQUESTS
        # polls waiting for their next poll's time, as (when, order, future): one timer for
        # all of them (_alarm, set for the first), not one for each
        self.sleepers: Any = []
        self._order, self._alarm, self._alarm_at = 0, None, None

    @classmethod
    def of(cls, loop, transport):
        """The mux of *loop* for *transport*; ``None`` if the loop cannot watch sockets
        (Windows' proactor loop) or takes no attribute."""
        import asyncio
        if getattr(type(loop), "add_reader", None) in (None, asyncio.AbstractEventLoop.add_reader):
            return None
        muxes = getattr(loop, "_opstatus_muxes", None)
        if muxes is None:
            muxes = {}
            try:
                loop._opstatus_muxes = muxes  # one thread runs a loop: no race here
            except (AttributeError, TypeError):
                return None
        mux = muxes.get(transport)
        if mux is None:
            mux = muxes[transport] = cls(transport, loop)
        mux.users += 1
        return mux

    def leave(self):
        """One poll less; the last one closes the connections."""
        self.users -= 1
        if self.users == 0:
            self.loop._opstatus_muxes.pop(self.transport, None)
            if self._watchdog is not None:
                self._watchdog.cancel()
                self._watchdog = None
            if self._alarm is not None:
                self._alarm.cancel()
                self._alarm = self._alarm_at = None
            self.close()

    def _watch(self, wire, writing):
        want = 2 if writing else 1
        if wire.watching != want:
            self._unwatch(wire)
            (self.loop.add_writer if writing else self.loop.add_reader)(
                wire.sock.fileno(), self._ready, wire, writing)
            wire.watching = want

    def _unwatch(self, wire):
        if wire.watching:
            (self.loop.remove_writer if wire.watching == 2 else self.loop.remove_reader)(
                wire.sock.fileno())
            wire.watching = 0

    def _ready(self, wire, writing):
        if wire in self.busy:
            (self._write if writing else self._read)(wire)
        elif wire.watching:
            self._idle_read(wire)

    def _begin(self, wire, key, request, message, deadline):
        if self._watchdog is None:
            self._watchdog = self.loop.call_later(_WATCHDOG_SECONDS, self._check)
        super()._begin(wire, key, request, message, deadline)

    def _check(self):
        """End the exchanges past their deadline (each at most _WATCHDOG_SECONDS late: one
        timer for all, not one for each request)."""
        now = _time.monotonic()
        for wire in [w for w in self.busy if w.deadline <= now]:
            self._expire(wire)
        self._watchdog = self.loop.call_later(_WATCHDOG_SECONDS, self._check) \
            if self.busy else None

    def _end(self, key, response, error):
        if not key.done():
            key.set_result((response, error))

    def _again(self, key, request, origin, message, deadline):
        self.loop.create_task(self._connect_then(key, request, origin, message, deadline))

    async def _connect_then(self, key, request, origin, message, deadline):
        """Open a connection in the executor (the loop goes on meanwhile), then send."""
        try:
            sock = await self.loop.run_in_executor(None, self._open, origin, deadline,
                                                   request.url)
        except Exception as exc:
            self._end(key, None, exc)
            return
        if key.done():  # cancelled meanwhile
            sock.close()
        else:
            self._begin(_Wire(sock, origin), key, request, message, deadline)

    async def exchange(self, request):
        """The response to *request*, or its error raised."""
        answer = self.loop.create_future()
        try:
            origin, message = self.transport._message(request)
        except Exception as exc:
            self._end(answer, None, exc)
        else:
            deadline = _time.monotonic() + max(0.001, request.timeout)
            wire = self._idle_wire(origin)
            if wire is None:
                self._again(answer, request, origin, message, deadline)
            else:
                wire.reused = True
                self._begin(wire, answer, request, message, deadline)
        try:
            response, error = await answer
        finally:
            for wire in [w for w in self.busy if w.key is answer]:  # cancelled: drop it
                self._release(wire)
                self._drop(wire)
        if error is not None:
            raise error
        return response

    async def step(self, poller, delay=0.0):
        """One step of *poller*, *delay* seconds from now, once one of the loop's
        _ASYNC_REQUESTS turns is free (so thousands of polls wait as a future each, and use a
        few connections)."""
        import asyncio
        turn = self.turn(delay)
        try:
            await turn
        except asyncio.CancelledError:
            self.forgo(turn)
            raise
        return await self.run(poller)

    def turn(self, delay=0.0):
        """A future done once *delay* seconds have passed and one of the loop's turns is the
        caller's (at once when both are so). A caller cancelled while awaiting it calls
        :meth:`forgo`."""
        turn = self.loop.create_future()
        if delay > 0:
            when = self.loop.time() + delay
            self._order += 1
            _heapq.heappush(self.sleepers, (when, self._order, turn))
            if self._alarm_at is None or when < self._alarm_at:
                self._set_alarm(when)
        else:
            self._queue(turn)
        return turn

    def _queue(self, turn):
        if self.turns < _ASYNC_REQUESTS and not self.waiters:
            self.turns += 1
            turn.set_result(None)
        else:
            self.waiters.append(turn)

    def _set_alarm(self, when):
        if self._alarm is not None:
            self._alarm.cancel()
        self._alarm, self._alarm_at = self.loop.call_at(when, self._wake), when

    def _wake(self):
        """The sleepers whose time has come queue for a turn (a cancelled one is dropped)."""
        self._alarm = self._alarm_at = None
        heappop, now = _heapq.heappop, self.loop.time()
        while self.sleepers and self.sleepers[0][0] <= now:
            turn = heappop(self.sleepers)[2]
            if not turn.done():
                self._queue(turn)
        if self.sleepers:
            self._set_alarm(self.sleepers[0][0])

    def forgo(self, turn):
        """Hand on the turn that *turn* gave a caller cancelled before it could use it."""
        if turn.done() and not turn.cancelled():
            self._pass_turn()

    async def run(self, poller):
        """One step of *poller*, in a turn it holds (handed on at the end)."""
        try:
            return await self.drive(poller.step_requests())
        finally:
            self._pass_turn()

    def _pass_turn(self):
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.turns -= 1

    async def drive(self, exchange):
        """:meth:`_Client.drive` on this loop."""
        import asyncio
        try:
            request = next(exchange)
            while True:
                try:
                    response = await self.exchange(request)
                except asyncio.CancelledError:
                    exchange.close()
                    raise
                except Exception as exc:
                    request = exchange.throw(exc)
                else:
                    request = exchange.send(response)
        except StopIteration as stop:
            return stop.value


def _network_error(exc: BaseException, *, sent: bool, url: Optional[str]) -> NetworkError:
    import socket
    shown, kind = redact_url(url) if url else "?", exc.__class__.__name__
    if isinstance(exc, NetworkError):
        return exc
    if isinstance(exc, ConnectionRefusedError):
        what, sent = "connection refused", False
    elif isinstance(exc, socket.gaierror):
        what, sent = "host name not resolved", False
    elif isinstance(exc, socket.timeout):
        what = "timed out" + ("" if sent else " connecting")
    elif isinstance(exc, ConnectionResetError):
        what = "connection reset"
    elif kind == "RemoteDisconnected":
        what = "server closed the connection without answering"
    elif kind.startswith("SSL") or "CERTIFICATE" in str(exc):
        what, sent = "TLS error: %s" % _clip(str(getattr(exc, "reason", None) or exc), 200), False
        if kind == "SSLCertVerificationError" or "CERTIFICATE" in str(exc):
            return NetworkError("%s (%s)" % (what, shown), sent=False, url=shown, retryable=False)
    else:
        what = "%s: %s" % (kind, _clip(str(exc), 200))
    return NetworkError("%s (%s)" % (what, shown), sent=sent, url=shown)


###############################################################################
# Hooks and plugins ###########################################################
###############################################################################
#
# Plugins are pluggy plugins of the project "opstatus"; writing one needs no pluggy, registering
# one does. Without pluggy, pass ``transport=``, ``policy=`` and ``on_status=`` instead.

#: Entry-point group that installed plugins declare.
ENTRY_POINT_GROUP = "opstatus"


def hookimpl(function=None, *, tryfirst=False, trylast=False, optionalhook=False,
             specname=None, wrapper=False, hookwrapper=False):
    """Mark a function as an implementation of an opstatus hook (``@opstatus.hookimpl``), as
    ``pluggy.HookimplMarker("opstatus")`` would, without needing pluggy."""
    def mark(func):
        setattr(func, "opstatus_impl", {"wrapper": wrapper, "hookwrapper": hookwrapper,
                                        "optionalhook": optionalhook, "tryfirst": tryfirst,
                                        "trylast": trylast, "specname": specname})
        return func
    return mark if function is None else mark(function)


def _hookspec(firstresult=False, historic=False):
    def mark(func):
        setattr(func, "opstatus_spec", {"firstresult": firstresult, "historic": historic,
                                        "warn_on_impl": None, "warn_on_impl_args": None})
        return func
    return mark


class HookSpecs:
    """The hooks of opstatus. Implement one in a plugin under the same name (decorated with
    :func:`hookimpl`); an implementation may take fewer arguments than the spec, by name.
    *url* may hold secrets: show it with :func:`redact_url`."""

    @_hookspec(firstresult=True)
    def opstatus_send_request(self, request):
        """Send a checked :class:`Request`: return its :class:`Response` (never following a
        redirect), ``None`` for the next transport, or raise :class:`NetworkError`
        (``sent=False`` if nothing was sent). The core still enforces the cap and timeout."""

    @_hookspec()
    def opstatus_prepare_request(self, request):
        """Change ``request.headers`` in place before sending; they are checked, kept secret
        when their name is (``Authorization``…) and go only to the endpoint's origin."""

    @_hookspec(historic=True)
    def opstatus_configure(self, environ):
        """Configure a plugin from ``os.environ`` once, when it joins a plugin manager (also
        later: historic). Raise to refuse it (a :class:`PluginError` naming it)."""

    @_hookspec(firstresult=True)
    def opstatus_next_delay(self, url, status, age, polls, policy, retry_after):
        """Seconds before the next poll of a running operation, or ``None`` for the core's
        choice (*retry_after*, the service's wait, else the policy's); clamped by the core."""

    @_hookspec()
    def opstatus_response_received(self, request, response):
        """An answer arrived, before the core reads it. Return ``True`` to have the request
        sent once more (at most once; after refreshing a credential on a 401, say)."""

    @_hookspec(firstresult=True)
    def opstatus_retry_delay(self, url, error, errors, policy):
        """Seconds before retrying a transient *error* (*errors* in a row), ``False`` to give
        up (the error is raised), or ``None`` for the policy's choice."""

    @_hookspec()
    def opstatus_status_changed(self, url, previous, status):
        """An operation's status changed (*previous* is ``None`` the first time)."""

    @_hookspec()
    def opstatus_retry_scheduled(self, url, error, delay, errors):
        """A transient *error* (its text holds no secret) is retried after *delay* seconds."""

    @_hookspec()
    def opstatus_operation_finished(self, url, outcome, status, error):
        """Polling ended: *outcome* is ``"succeeded"``, ``"failed"``, ``"timeout"``,
        ``"cancelled"`` or ``"error"``; *error* the exception, or ``None``. An exception in a
        notification hook is logged and the other plugins still run."""


class _BuiltinPlugin:
    """The built-in transport, registered ``trylast`` as ``opstatus.builtin``, for callers of
    ``pm.hook.opstatus_send_request``; a poller falls back on its own transport instead."""

    transport = None  # an HTTPTransport, made on first use

    @hookimpl(trylast=True)
    def opstatus_send_request(self, request):
        if self.transport is None:
            self.transport = HTTPTransport()
        return self.transport.send(request)


class _Hooks:
    """The hooks of one pluggy ``PluginManager``, called through pluggy; a failure is
    attributed to the plugin whose code raised it (found in the traceback)."""

    __slots__ = ("pm",)

    def __init__(self, pm):
        self.pm = pm

    def has(self, name):
        """Whether a plugin other than the built-in one implements *name*."""
        caller = getattr(self.pm.hook, name, None)
        for impl in () if caller is None else caller.get_hookimpls():  # asked on every poll
            if not isinstance(impl.plugin, _BuiltinPlugin):
                return True
        return False

    def quiet(self):
        """Whether no plugin but the built-in one is registered (so no plugin's hook, which
        may block, runs in the thread that steps a poll)."""
        return all(isinstance(plugin, _BuiltinPlugin) for plugin in self.pm.get_plugins())

    def names(self, name):
        """The names of the plugins that implement *name*, in call order."""
        return [i.plugin_name for i in reversed(getattr(self.pm.hook, name).get_hookimpls())
                if not isinstance(i.plugin, _BuiltinPlugin)]

    def _culprit(self, name, exc):
        """The plugin (and its name) whose hook function raised *exc*."""
        codes = {getattr(impl.function, "__code__", None): impl
                 for impl in getattr(self.pm.hook, name).get_hookimpls()}
        found = None
        tb = exc.__traceback__
        while tb is not None:
            found = codes.get(tb.tb_frame.f_code, found)
            tb = tb.tb_next
        return (found.plugin, found.plugin_name) if found else (None, "(a hook wrapper)")

    def call(self, name, scrub, **kwargs):
        """``pm.hook.<name>(**kwargs)`` without the built-in transport; a failure is a
        :class:`PluginError` naming the plugin."""
        caller = getattr(self.pm.hook, name)
        if name == "opstatus_send_request":
            builtins = [p for p in self.pm.get_plugins() if isinstance(p, _BuiltinPlugin)]
            caller = self.pm.subset_hook_caller(name, remove_plugins=builtins)
        try:
            return caller(**kwargs)
        except OpStatusError:
            raise
        except Exception as exc:
            headers = getattr(kwargs.get("request"), "headers", None)
            if isinstance(headers, dict):  # what the plugin set may be a secret too
                scrub.add(*(v for k, v in headers.items() if isinstance(v, str)
                            and isinstance(k, str) and k.lower() in SECRET_HEADERS))
            raise _plugin_error(self._culprit(name, exc)[1], name, exc, scrub)

    def notify(self, name, scrub, **kwargs):
        """Call every implementation of a notification hook. One that fails is logged and
        those after it still run (called one by one: pluggy stops at the first exception)."""
        try:
            getattr(self.pm.hook, name)(**kwargs)
            return
        except Exception as exc:
            plugin, plugin_name = self._culprit(name, exc)
            _log.warning("opstatus: plugin %s failed in %s: %s", plugin_name, name,
                         scrub(_clip(exc, 300)))
        order = list(reversed(getattr(self.pm.hook, name).get_hookimpls()))
        after = [i.plugin for i in order].index(plugin) + 1 if plugin is not None else len(order)
        for impl in order[after:]:
            if getattr(impl, "hookwrapper", False) or getattr(impl, "wrapper", False):
                continue  # a wrapper wraps a call that has failed already
            try:
                impl.function(*[kwargs[arg] for arg in impl.argnames])
            except Exception as exc:
                _log.warning("opstatus: plugin %s failed in %s: %s", impl.plugin_name, name,
                             scrub(_clip(exc, 300)))


def _plugin_error(plugin, hook, exc, scrub):
    text = scrub("%s: %s" % (type(exc).__name__, _clip(exc, 300)))
    err = PluginError("plugin %s failed in %s: %s" % (plugin, hook, text), plugin)
    err.__cause__ = exc if scrub(str(exc)) == str(exc) else None  # chained if no secret shows
    err.__suppress_context__ = True
    return err


_PLUGIN_MANAGER = None
_PM_LOCK = _threading.Lock()


def _import_pluggy():
    try:
        import pluggy
    except ImportError:
        return None
    return pluggy


def plugin_manager():
    """The process-wide pluggy ``PluginManager`` of opstatus, made on first use as
    :func:`make_plugin_manager` makes one, with the entry-point plugins unless
    ``OPSTATUS_DISABLE_PLUGIN_AUTOLOAD`` is set. Raises :class:`PluginError` without pluggy."""
    global _PLUGIN_MANAGER
    if _PLUGIN_MANAGER is None:
        with _PM_LOCK:
            if _PLUGIN_MANAGER is None:
                # A copy vendored under another name loads entry points only if asked.
                autoload = __name__ in ("opstatus", "__main__") or _os.environ.get(
                    "OPSTATUS_PLUGIN_AUTOLOAD", "") == "1"
                _PLUGIN_MANAGER = make_plugin_manager(autoload=autoload)
    return _PLUGIN_MANAGER


def make_plugin_manager(autoload=False):
    """A new ``PluginManager`` with the specs and the built-in plugin (``trylast``); with
    *autoload*, the plugins of the ``opstatus`` entry-point group too. Names listed in
    ``OPSTATUS_DISABLED_PLUGINS`` (comma-separated) are blocked; unnamed plugins are named
    as :func:`register_plugin` names them."""
    pluggy = _import_pluggy()
    if pluggy is None:
        raise PluginError("plugins need pluggy: pip install pluggy. Without it, pass "
                          "transport=, policy= and on_status= to poll() or Poller() directly.")
    pm = _manager_class(pluggy)("opstatus")
    pm.add_hookspecs(HookSpecs)
    pm.hook.opstatus_configure.call_historic(kwargs={"environ": _os.environ})
    pm.register(_BuiltinPlugin(), name="opstatus.builtin")
    for name in _os.environ.get("OPSTATUS_DISABLED_PLUGINS", "").split(","):
        if name.strip():
            pm.set_blocked(name.strip())
    if autoload and not _os.environ.get("OPSTATUS_DISABLE_PLUGIN_AUTOLOAD"):
        try:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        except PluginError as exc:  # its opstatus_configure refused: named
            raise PluginError("%s; block it with OPSTATUS_DISABLED_PLUGINS=%s"
                              % (exc, exc.plugin), exc.plugin) from exc
        except Exception as exc:
            failing = _failing_entry_point()
            raise PluginError("an entry-point plugin of group %r failed to load: %s; "
                              "block it with OPSTATUS_DISABLED_PLUGINS=%s"
                              % (ENTRY_POINT_GROUP, _clip(exc, 300), failing or "NAME"),
                              failing) from exc
    return pm


def _failing_entry_point():
    """The name of the first entry point of the group that fails to load."""
    try:
        from importlib import metadata
    except ImportError:  # Python 3.7: the backport, which pluggy uses there
        try:
            import importlib_metadata as metadata  # type: ignore[import-not-found,no-redef]
        except ImportError:  # pragma: no cover
            return None
    blocked = {n.strip() for n in _os.environ.get("OPSTATUS_DISABLED_PLUGINS", "").split(",")}
    for dist in metadata.distributions():
        for ep in dist.entry_points:
            if ep.group == ENTRY_POINT_GROUP and ep.name not in blocked:
                try:
                    ep.load()
                except Exception:
                    return ep.name
    return None


def register_plugin(plugin, name=None):
    """Register *plugin* (a module, class instance…) with the process-wide plugin manager;
    returns its name. Without *name*, a module is named by its ``__name__`` and anything else
    ``module.Class`` (``module.Class#2`` for a second instance), as errors, logs and
    ``opstatus plugins`` show it. Needs pluggy (:class:`PluginError` otherwise)."""
    pm = plugin_manager()
    shown = name or _plugin_name(plugin)
    # Validate on a scratch manager first, so that a bad plugin leaves the real one untouched
    # (pluggy before 1.7 registers hooks one by one).
    scratch = _manager_class(_import_pluggy())("opstatus")
    scratch.add_hookspecs(HookSpecs)
    try:
        scratch.register(plugin, name=name)
        scratch.check_pending()  # an opstatus_* function that matches no hook
    except Exception as exc:
        raise PluginError("plugin %s cannot be registered: %s" % (shown, _clip(exc, 300)),
                          shown) from exc
    try:
        return pm.register(plugin, name=name)
    except ValueError as exc:  # already registered, or the name is taken or blocked
        raise PluginError("plugin %s cannot be registered: %s" % (shown, exc), shown) from exc
    except Exception as exc:  # its opstatus_configure refused
        raise PluginError("plugin %s failed in opstatus_configure: %s"
                          % (shown, _clip(exc, 300)), shown) from exc


def _plugin_name(plugin: Any) -> str:
    """A module's (or function's) own name, else its class's, ``module.Class``."""
    if isinstance(plugin, _types.ModuleType):
        return plugin.__name__
    named = plugin if isinstance(plugin, (type, _types.FunctionType)) else type(plugin)
    return "%s.%s" % (named.__module__, named.__name__)


_MANAGER_CLASSES: Dict[Any, type] = {}


def _manager_class(pluggy):
    """pluggy's ``PluginManager`` naming unnamed plugins as :func:`_plugin_name` does (not
    ``id(plugin)``), through ``get_canonical_name``, the method pluggy documents for it."""
    cls = _MANAGER_CLASSES.get(pluggy)
    if cls is None:
        class PluginManager(pluggy.PluginManager):
            def register(self, plugin, name=None):
                before = self.is_registered(plugin)
                try:
                    return super().register(plugin, name)
                except Exception as exc:
                    if before or not self.is_registered(plugin):
                        raise  # already registered, the name taken or blocked
                    # Its opstatus_configure refused it: named, not left half-registered.
                    shown = self.get_name(plugin) or name or _plugin_name(plugin)
                    self.unregister(plugin)
                    raise PluginError("plugin %s refused to load: %s"
                                      % (shown, _clip(str(exc), 300)), shown) from exc

            def get_canonical_name(self, plugin):
                base = _plugin_name(plugin)
                name, n = base, 1
                while self.get_plugin(name) is not None:  # another plugin has it
                    n += 1
                    name = "%s#%d" % (base, n)
                return name

        cls = _MANAGER_CLASSES[pluggy] = PluginManager
    return cls


def _default_hooks(plugins):
    """The hooks a new poller uses: *plugins* is a PluginManager, ``False`` (none), or ``None``
    (the process-wide one when pluggy is installed)."""
    if plugins is False:
        return None
    if plugins is None:
        if _PLUGIN_MANAGER is None and _import_pluggy() is None:
            return None
        plugins = plugin_manager()
    return _Hooks(plugins)


###############################################################################
# Poller ######################################################################
###############################################################################


def _error_details(response: Response,
                   scrub: Callable[[str], str]) -> Tuple[Optional[str], Optional[str]]:
    """The service's ``error.code`` and ``error.message``, scrubbed, or None."""
    try:
        doc = _json.loads(response.text(MAX_DOCUMENT_BYTES))
    except (ValueError, RecursionError):
        return None, None
    error = doc.get("error") if isinstance(doc, dict) else None
    if not isinstance(error, dict):
        return None, None
    code, message = error.get("code"), error.get("message")
    code = _clip(scrub(code), 100) if isinstance(code, str) else None
    message = _clip(scrub(message)) if isinstance(message, str) else None
    return code, message


def _http_error(response: Response, scrub: Callable[[str], str], url: str) -> HTTPError:
    code, message = _error_details(response, scrub)
    hint = parse_retry_after(response.headers, message)
    cls = OperationNotFound if response.status in (404, 410) else HTTPError
    return cls(response.status, code, message, url=redact_url(url), retry_after=hint)


_LAZY_LOCK = _threading.Lock()  # for what is made on first use and may be wanted by two threads


class _Flag:
    """A ``threading.Event`` whose event (a lock, a condition) is made only when waited on:
    a Watcher's thousands of pollers are cancelled by a flag and never wait themselves."""

    __slots__ = ("_set", "_event")

    def __init__(self):
        self._set, self._event = False, None

    def is_set(self):
        return self._set

    def set(self):
        self._set = True  # before looking for an event: a waiter that made one sees the flag
        event = self._event
        if event is not None:
            event.set()

    def wait(self, timeout):
        if self._event is None:
            with _LAZY_LOCK:
                if self._event is None:
                    self._event = _threading.Event()
        if self._set:  # after making the event: a set() from now on sets it
            return True
        return self._event.wait(timeout)


class _Client:
    """What pollers and starts share: origin rules, secrets, redirects, caps, plugins."""

    __slots__ = ("allow_http", "endpoint", "origin", "headers", "scrub", "explicit_transport",
                 "explicit_tls", "builtin", "_http", "owns_transport", "_passed",
                 "request_timeout", "max_bytes", "hooks")

    def __init__(self, endpoint, key, headers, allow_http, transport, ssl_context, cafile,
                 request_timeout, max_bytes, plugins=None):
        self.allow_http, self.endpoint = bool(allow_http), endpoint
        self.origin: Optional[Tuple[str, str, int]] = None
        if endpoint is not None:
            api_base(endpoint, allow_http=self.allow_http)  # validates it
            self.origin = _origin(_split_url(endpoint, allow_http=self.allow_http,
                                             what="endpoint"))
        merged = {}
        if key is not None:
            if not isinstance(key, str) or not key:
                raise UnsafeURLError("key must be a non-empty str")
            merged[KEY_HEADER] = key
        merged.update(headers or {})
        self.headers = _check_headers(merged)
        self.scrub = _Scrubber(v for k, v in self.headers.items() if k.lower() in SECRET_HEADERS)
        self.explicit_transport = transport
        # with a caller's cafile or ssl_context, transport plugins are not consulted
        self.explicit_tls = ssl_context is not None or cafile is not None
        # the built-in transport (no transport given): made on first use, or now to check TLS
        self.builtin = transport is None
        self._http = HTTPTransport(ssl_context=ssl_context, cafile=cafile) \
            if self.builtin and self.explicit_tls else None
        self.owns_transport = True  # False once it shares another's connections
        self._passed: Optional[str] = None  # the last URL that passed the check
        self.request_timeout, self.max_bytes = request_timeout, max_bytes
        self.hooks = _default_hooks(plugins)

    def __repr__(self):
        return "<_Client %s>" % (redact_url(self.endpoint) if self.endpoint else "(no endpoint)")

    @property
    def transport(self) -> Optional[HTTPTransport]:
        """The built-in transport (``None`` when the caller gave one)."""
        if self._http is None and self.builtin:
            with _LAZY_LOCK:
                if self._http is None:
                    self._http = HTTPTransport()  # TLS options make it at once
        return self._http

    def share(self, pool, other=None):
        """Send through *pool* (another's built-in transport) when using the built-in one;
        keep one copy of what equals *other*'s (a Watcher's thousands of pollers)."""
        if self.builtin and pool is not None and pool is not self._http:
            if self.owns_transport and self._http is not None:
                self._http.close()
            self._http, self.owns_transport = pool, False
        if other is not None:
            if other.headers == self.headers:  # neither is changed after __init__
                self.headers = other.headers
            if other.origin == self.origin:
                self.origin = other.origin
            if other.scrub._secrets == self.scrub._secrets:  # a secret added later: both hide it
                self.scrub = other.scrub
            if self.hooks is not None and other.hooks is not None and \
                    other.hooks.pm is self.hooks.pm:
                self.hooks = other.hooks

    def same_as(self, other):
        """Whether *other* behaves as this client in every respect (after :meth:`share`):
        every slot equal but ``_passed``, a cache of the last URL checked."""
        return all(getattr(self, name) == getattr(other, name)
                   for name in _Client.__slots__ if name != "_passed")

    def bind(self, url):
        """Fix the origin that secrets may go to (when no endpoint was given), and check the
        poll's *url* against it now rather than at its first request."""
        parts = _split_url(url, allow_http=self.allow_http)
        if self.origin is None:
            self.origin = _origin(parts)
        self._check_origin(url)

    def _check_origin(self, url, what="request"):
        if url == self._passed and what == "request":
            return  # the poll's URL, checked at its first request
        parts = _split_url(url, allow_http=self.allow_http, what=what)
        if self.origin is not None and _origin(parts) != self.origin:
            raise UnsafeURLError(
                "%s to %s, another origin than the endpoint's: refused, so that no "
                "credential goes there" % (what, redact_url(url)))
        if what == "request" and self.origin is not None:
            self._passed = url

    def _prepare(self, request):
        if self.hooks is None or not self.hooks.has("opstatus_prepare_request"):
            return
        url = request.url
        self.hooks.call("opstatus_prepare_request", self.scrub, request=request)
        if not isinstance(request.headers, dict):
            raise PluginError("a plugin replaced request.headers with %s"
                              % type(request.headers).__name__)
        request.headers = _check_headers(request.headers)
        self.scrub.add(*(v for k, v in request.headers.items() if k.lower() in SECRET_HEADERS))
        if request.url != url:
            self._check_origin(request.url)

    def direct(self) -> Optional[HTTPTransport]:
        """The HTTPTransport every request goes straight to, with no plugin registered (its
        hooks may block) and no transport of another kind; or None."""
        if self.hooks is not None and not self.hooks.quiet():
            return None
        if type(self.explicit_transport) is HTTPTransport:
            return self.explicit_transport
        return None if self.explicit_transport is not None else self.transport

    def _transport(self, request):
        if type(self.explicit_transport) is HTTPTransport:
            # shared between clients; it keeps the deadline itself
            return self.explicit_transport.send(request)
        if self.explicit_transport is not None:
            name = type(self.explicit_transport).__name__
            response = _call_transport(self.explicit_transport.send, request, name, self.scrub)
        elif (self.hooks is not None and not self.explicit_tls
              and self.hooks.has("opstatus_send_request")):
            name = ", ".join(self.hooks.names("opstatus_send_request"))
            response = _call_transport(
                lambda req: self.hooks.call("opstatus_send_request", self.scrub, request=req),
                request, "transport plugin " + name, self.scrub)
            if response is None:
                return self.transport.send(request)
        else:
            return self.transport.send(request)
        return _checked_response(response, request, name)

    def _timed(self, request):
        """*request* yielded to the driver, its answer returned; with DEBUG on
        ``opstatus.http``, one line per exchange (method, redacted URL, status or error, ms;
        no header)."""
        if not _http_log.isEnabledFor(_logging.DEBUG):
            return (yield request)
        started = _time.perf_counter()
        try:
            response = yield request
        except Exception as exc:
            url = redact_url(request.url)
            text = str(exc)
            if text.endswith(" (%s)" % url):  # the URL is on the line already
                text = text[: -len(url) - 3]
            _http_log.debug("%s %s -> %s: %s (%.0f ms)", request.method, url,
                            type(exc).__name__, self.scrub(_clip(text, 300)),
                            (_time.perf_counter() - started) * 1000.0)
            raise
        _http_log.debug("%s %s -> %d (%.0f ms)", request.method, redact_url(request.url),
                        response.status, (_time.perf_counter() - started) * 1000.0)
        return response

    def _exchange(self, request):
        """Send *request* (yielded: the driver answers with the transport's response); once
        more if a plugin's ``opstatus_response_received`` says ``True`` (a POST only after a
        401, which the service refused unread)."""
        self._prepare(request)
        response = yield from self._timed(request)
        if self.hooks is None or not self.hooks.has("opstatus_response_received"):
            return response
        answers = self.hooks.call("opstatus_response_received", self.scrub, request=request,
                                  response=response)
        if True in answers and (request.method == "GET" or response.status == 401):
            self._prepare(request)
            response = yield from self._timed(request)
            self.hooks.call("opstatus_response_received", self.scrub, request=request,
                            response=response)
        return response

    def drive(self, exchange):
        """Run the generator *exchange* to its end here, answering each request it yields
        with the transport's response (or throwing in the transport's error)."""
        try:
            request = next(exchange)
            while True:
                try:
                    response = self._transport(request)
                except Exception as exc:
                    request = exchange.throw(exc)
                else:
                    request = exchange.send(response)
        except StopIteration as stop:
            return stop.value

    def send(self, method: str, url: str, body: Optional[bytes] = None,
             timeout: Optional[float] = None, content_type: Optional[str] = None) -> Response:
        """One exchange, following at most 5 same-origin redirects."""
        return self.drive(self.exchanges(method, url, body, timeout, content_type))

    def exchanges(self, method, url, body=None, timeout=None, content_type=None, bound=False):
        """:meth:`send` as a generator of the requests to send (see :meth:`drive`). *bound*:
        *url* is the one :meth:`bind` checked (a poller's own; clients equal in origin share)."""
        headers = dict(self.headers)
        headers.setdefault("Accept", "application/json")
        headers.setdefault("User-Agent", "opstatus/" + __version__)
        if content_type:
            headers["Content-Type"] = content_type
        # one deadline for the exchange: each redirect gets what is left of it
        budget = self.request_timeout if timeout is None else timeout
        deadline = _time.monotonic() + budget
        for hop in range(6):
            if hop or not bound:
                self._check_origin(url)
            left = budget if hop == 0 else deadline - _time.monotonic()
            if left <= 0:
                raise NetworkError("timed out following redirects (%s)" % redact_url(url),
                                   sent=True, url=redact_url(url))
            request = Request(method, url, headers, body, timeout=left,  # it copies them
                              max_bytes=self.max_bytes)
            response = yield from self._exchange(request)
            if response.status in (301, 302, 303, 307, 308) and "location" in response.headers:
                target = response.headers["location"].strip()
                if _BAD_URL_CHARS.search(target):
                    raise UnsafeURLError("redirect Location has control characters: refused")
                url = _urljoin(url, target)
                self._check_origin(url, "redirect")
                if response.status == 303:
                    method, body = "GET", None
                continue
            return response
        raise HTTPError(response.status, None, "too many redirects", url=redact_url(url))

    def scrub_error(self, exc):
        """Take the secrets out of the text of *exc* and its chained ones, in place; returns it."""
        seen, link = set(), exc
        while link is not None and id(link) not in seen and len(seen) < 16:
            seen.add(id(link))
            try:
                link.args = tuple(self.scrub(a) if isinstance(a, str) else a for a in link.args)
            except (AttributeError, TypeError):  # pragma: no cover - exotic exceptions
                pass
            for name in ("message", "problem", "reason", "strerror"):
                value = getattr(link, name, None)
                if isinstance(value, str):
                    try:
                        setattr(link, name, self.scrub(value))
                    except (AttributeError, TypeError):  # read-only attribute
                        pass
            link = link.__cause__ or link.__context__
        return exc

    def close(self):
        if self._http is not None and self.owns_transport:
            self._http.close()


def _call_transport(send, request, name, scrub):
    """``send(request)`` in a daemon thread: a transport that hangs cannot hold the caller."""
    box = {}

    def run():
        try:
            box["result"] = send(request)
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc
    worker = _threading.Thread(target=run, name="opstatus-transport", daemon=True)
    worker.start()
    worker.join(max(0.0, request.timeout) + 0.25)
    if worker.is_alive():
        raise NetworkError("%s did not answer within %.1f s (%s)"
                           % (name, request.timeout, redact_url(request.url)),
                           sent=True, url=redact_url(request.url))
    if "error" in box:
        exc = box["error"]
        if isinstance(exc, (OpStatusError, KeyboardInterrupt, SystemExit)):
            raise exc
        raise _plugin_error(name, "send", exc, scrub)
    return box.get("result")


def _checked_response(response, request, name):
    """A transport's answer held to the core's rules, checked by shape (a vendored copy's
    plugins return the installed opstatus's Response)."""
    try:
        status, headers, body = response.status, response.headers, response.body
    except AttributeError:
        raise PluginError("%s returned %s instead of an opstatus.Response (an object with "
                          "status, headers and body)" % (name, type(response).__name__),
                          name) from None
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise PluginError("%s returned an invalid HTTP status %s" % (name, _short_repr(status)),
                          name)
    if not isinstance(headers, _Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        raise PluginError("%s returned headers that are not a mapping of str to str" % name, name)
    if not isinstance(body, (bytes, bytearray)):
        raise PluginError("%s returned a body of type %s, not bytes"
                          % (name, type(body).__name__), name)
    if len(body) > request.max_bytes:
        raise ResponseTooLarge("response body exceeds the cap of %d bytes" % request.max_bytes)
    return Response(status, {k.lower(): v for k, v in headers.items()}, bytes(body), request.url)


class _SharedPool:
    """One :class:`HTTPTransport` for the polls running at once, closed by the last one."""

    def __init__(self):
        self._lock = _threading.Lock()
        self._http: Optional[HTTPTransport] = None
        self._users = 0
        self._first: Any = None  # a client of the pool, whose equal settings others share

    def join(self, client):
        """Have *client* send through the pool, keeping one copy of the settings it shares:
        the client to use, the pool's first if it is the same in every setting."""
        with self._lock:
            if self._http is None:
                self._http = HTTPTransport()
            self._users += 1
            http, first = self._http, self._first
            if first is None:
                self._first = client
        client.share(http, first)
        return first if first is not None and client.same_as(first) else client

    def release(self):
        with self._lock:
            self._users -= 1
            if self._users == 0:
                self._first = None
                if self._http is not None:
                    self._http.close()


_SHARED_POOL = _SharedPool()


class _NoGate:
    async def __aenter__(self):
        return None

    async def __aexit__(self, *exc_info):
        return False


def _async_gate(loop):
    """The gate of *loop*: at most _ASYNC_REQUESTS requests of its polls under way at once
    (so as many connections). Kept on the loop, so that it goes with it (a table of loops
    would keep each alive: the gate refers to its loop)."""
    gate = getattr(loop, "_opstatus_gate", None)
    if gate is None:
        import asyncio
        gate = asyncio.Semaphore(_ASYNC_REQUESTS)
        try:
            loop._opstatus_gate = gate  # one thread runs a loop: no race here
        except (AttributeError, TypeError):  # a loop that takes no attribute: no gate
            return _NoGate()
    return gate


#: Seconds of errors in a row after which a poller logs one WARNING.
ERRORS_WARNING_AFTER = 60.0


@_dataclasses.dataclass(frozen=True)
class Step:
    """What one :meth:`Poller.step` saw: the ``status`` read (``None`` after a transient
    error, then in ``error``); once ``done``, ``error`` holds the :class:`OperationFailed` of
    a failure (not raised); the ``delay`` in seconds before the next step (0 once done);
    ``errors`` in a row so far."""

    status: Optional[OperationStatus]
    error: Optional[BaseException]
    delay: float
    done: bool
    errors: int = 0


def _retry_wait(client, policy, url, exc, errors, rand, time_left, ceiling=None):
    """The wait before another try after *exc* (the *errors*-th in a row): a plugin's, else
    the server's hint, else the policy's backoff, clamped; raises *exc* if not worth one."""
    if policy.max_errors is not None and errors > policy.max_errors:
        raise exc  # the caller's bound holds whatever plugins say
    hooks = client.hooks
    if hooks is not None:
        verdict = hooks.call("opstatus_retry_delay", client.scrub, url=url, error=exc,
                             errors=errors, policy=policy)
        if verdict is False:
            raise exc
        if verdict is not None and verdict is not True:
            return policy.clamp(_plugin_number(verdict, hooks, "opstatus_retry_delay"), time_left)
    if not policy.is_retryable(exc, errors):
        raise exc
    hint = getattr(exc, "retry_after", None)
    if hint is not None:
        return policy.clamp_hint(hint, time_left, ceiling)
    return policy.clamp(policy.error_delay(errors, rand), time_left)


#: HTTP statuses that say who is asking is at fault, not the operation.
_AUTH_STATUSES = frozenset((401, 403, 407))


def _read_answer(response: Response, vocab: Vocabulary, scrub: Callable[[str], str], url: str,
                 policy: RetryPolicy) -> OperationStatus:
    """The status an answer to a poll means under *vocab*, or raise its :class:`HTTPError`."""
    code = response.status
    if vocab.accepted_means_running:  # ARM: Location polling, or a status document
        if code == 202:
            return OperationStatus(Status.RUNNING, None, document=_lenient_body(response))
        if code in (200, 201, 204):
            doc = _lenient_body(response)
            if any(k.lower() == vocab.status_field.lower() for k in doc):
                return OperationStatus.from_dict(doc, vocabulary=vocab)
            return OperationStatus(Status.SUCCEEDED, None, document=doc)
        if code >= 400 and code not in policy.retry_statuses and code not in _AUTH_STATUSES:
            doc = _lenient_body(response)  # the operation failed: the error is the body
            error_code, message = _error_details(response, scrub)
            return OperationStatus(Status.FAILED, None, message=message, document=doc,
                                   error_code=error_code, raw_status="HTTP %d" % code)
    if code != 200:
        raise _http_error(response, scrub, url)
    if vocab is FACE:  # from_json's path, but a poller keeps the document: one copy of its word
        data = _load_json_object(response.body)
        if type(data) is not dict:
            return OperationStatus.from_dict(data)  # its error
        word = data.get("status")
        if word.__class__ is str:
            data["status"] = _FACE_WORD.get(word, word)
        return _read_face(OperationStatus, data, owned=True)
    return OperationStatus.from_json(response.body, vocabulary=vocab,
                                     max_bytes=max(vocab.max_bytes, len(response.body)))


def _lenient_body(response):
    """The body as a JSON object, else ``{}`` (an ARM 202 may carry anything, or nothing)."""
    if not response.body.strip():
        return {}
    try:
        doc = _load_json_object(response.body, len(response.body))
    except StatusDocumentError:
        return {}
    return doc if isinstance(doc, dict) else {}


class Poller:
    """Polls one operation until it ends, with no threads of its own. Iterate to see every
    status observed (the last one terminal), or call :meth:`wait`::

        for status in Poller(location, endpoint=endpoint, key=key):
            print(status.status, status.last_action_time)

    :meth:`cancel` (from any thread) stops it at the next chance. *clock* (monotonic
    seconds), *sleep* and *random* (a float in [0, 1)) can be injected, else are looked up
    when used (``freezegun`` applies); time slept counts toward the deadline even if the
    clock stands still. *plugins*: a pluggy ``PluginManager``, ``False`` (none) or ``None``
    (the process-wide one); an explicit *transport* or *policy* wins over plugins.
    *vocabulary* (a :class:`Vocabulary` or a built-in's name, default ``"face"``) says how
    the service writes its status; *max_bytes* caps a response body (1 MiB for ``"face"``,
    else the vocabulary's cap).
    """

    # slots: a Watcher holds thousands of pollers (a subclass may still add attributes)
    __slots__ = ("vocabulary", "url", "_shown", "_client", "timeout", "policy", "_clock",
                 "_sleep", "_random", "_on_status", "_cancelled", "latest", "polls", "errors",
                 "slept", "_start", "_errors_in_row", "_last_attempt", "_wait_limit",
                 "_wait_for", "_last_error", "_age0", "_hint", "_done", "_ever_answered",
                 "_errors_since", "_warned", "_asked", "_took", "_bound", "__weakref__")
    _log = _log

    def __init__(self, operation_location, *, endpoint=None, key=None, headers=None,
                 timeout=DEFAULT_TIMEOUT, policy=None, transport=None, allow_http=False,
                 ssl_context=None, cafile=None, request_timeout=DEFAULT_REQUEST_TIMEOUT,
                 max_bytes=None, clock=None, sleep=None, random=None,
                 on_status=None, plugins=None, vocabulary=None):
        self.vocabulary = vocab = _vocabulary_of(vocabulary)
        if max_bytes is None:
            max_bytes = MAX_RESPONSE_BYTES if vocab is FACE else vocab.max_bytes
        if timeout is not None and _finite_delay(timeout, float("inf")) is None:
            raise ValueError("timeout must be a finite number >= 0 or None, not %r" % (timeout,))
        if _finite_delay(request_timeout, float("inf")) is None or not request_timeout:
            raise ValueError("request_timeout must be a finite number > 0, not %r"
                             % (request_timeout,))
        self.url = resolve_operation_url(operation_location, endpoint, allow_http=allow_http)
        self._shown = redact_url(self.url)  # what logs and errors show of it
        self._client = _Client(endpoint, key, headers, allow_http, transport, ssl_context,
                               cafile, request_timeout, max_bytes, plugins)
        self._client.bind(self.url)
        self._bound = self.url  # what bind() checked: a url set later is checked again
        self._client.scrub.add(*_query_values(self.url))
        self.timeout = None if timeout is None else float(timeout)
        self.policy = policy if policy is not None else _DEFAULT_POLICY
        self._clock, self._sleep, self._random = clock, sleep, random
        self._on_status, self._cancelled = on_status, None  # a _Flag, made by _flag()
        self.latest: Optional[OperationStatus] = None
        self.polls = 0  #: requests sent (each one billed by the service)
        self.errors = 0  #: transient errors met
        self.slept = 0.0  #: seconds spent waiting
        # _start: the deadline's clock; _wait_limit, _wait_for: a deadline given to wait();
        # _hint: the last Retry-After; _errors_since: elapsed at the first error in a row
        self._start = self._wait_limit = self._wait_for = self._hint = self._errors_since = None
        self._last_error: Optional[BaseException] = None
        self._errors_in_row, self._done, self._warned = 0, False, False
        self._last_attempt = False  # the deadline allows no wait after the next poll
        self._ever_answered = False  # an HTTP answer came since the poll began
        self._age0 = 0.0  # age of the operation when a resumed poll started
        self._asked = 0.0  # the wait the last step asked for
        self._took = 1.0  # seconds the last request took (a guess until one is sent)

    def __repr__(self):
        state = self.latest.status.value if self.latest else "not polled"
        return "<Poller %s: %s, %d polls>" % (redact_url(self.url), state, self.polls)

    # -- time ---------------------------------------------------------------

    def _now(self):
        return self._clock() if self._clock is not None else _time.monotonic()

    def _elapsed(self):  # the time slept counts even if the clock stands still
        return max(self._now() - self._start, self.slept)

    def _limit(self):
        """The deadline in force: ``timeout``, or a nearer one given to :meth:`wait`."""
        limits = [limit for limit in (self.timeout, self._wait_limit) if limit is not None]
        return min(limits) if limits else None

    def _time_left(self):
        limit = self._limit()
        return None if limit is None else limit - self._elapsed()

    def _rand(self):
        value = self._random() if self._random is not None else _random.random()
        return value if 0.0 <= value <= 1.0 else 0.5

    def _timeout(self, cause=None):
        if self._wait_limit is not None and (self.timeout is None
                                             or self._wait_limit < self.timeout):
            message = "operation did not end within the %gs given to wait()" % self._wait_for
        else:
            message = "operation did not end within %gs" % self.timeout
        if self.latest is not None:
            message += " (last status: %s)" % self.latest.status.value
        if cause is not None:
            message += "; last error: %s" % self._client.scrub(cause)
        return PollTimeout(message, self.latest, self.timeout, cause)

    def _plan_wait(self, delay, cause=None):
        """*delay*, or less when the deadline comes first: then the wait ends early enough
        for one last request, after which the poll times out."""
        left = self._time_left()
        if left is not None:
            # kept for the last request: 3 times what the last took (little when it was fast)
            reserve = min(1.0, self._client.request_timeout, left / 2.0,
                          max(0.2, 3.0 * self._took))
            if self._last_attempt or left <= 0.001:
                raise self._timeout(cause)
            if delay > left - reserve:
                self._last_attempt = True
                delay = left - reserve
        return max(0.0, delay)

    # -- the steps -----------------------------------------------------------

    def cancel(self):
        """Ask the poller to stop; safe to call from another thread."""
        self._flag().set()

    @property
    def cancelled(self):
        flag = self._cancelled
        return flag is not None and flag.is_set()

    def _flag(self):
        """The flag :meth:`cancel` sets, made on first need: the thousands of polls that
        asyncio runs at once need none."""
        if self._cancelled is None:
            with _LAZY_LOCK:
                if self._cancelled is None:
                    self._cancelled = _Flag()
        return self._cancelled

    @property
    def done(self) -> bool:
        return self.latest is not None and self.latest.is_terminal

    def _attempt(self):
        """One GET (a generator of its requests, see :meth:`_Client.drive`): returns
        ``(status, 0, None)``, or ``(None, delay, error)`` for a transient error worth another
        try. Raises what ends the poll."""
        if self.cancelled:
            raise PollCancelled("polling cancelled", self.latest)
        self.start()
        left = self._time_left()
        if left is not None and left <= 0.001:
            raise self._timeout(self._last_error)
        timeout = self._client.request_timeout
        if left is not None:
            timeout = min(timeout, left)
        sent_at = _time.monotonic()  # a request takes real time, whatever the clock
        try:
            self.polls += 1
            response = yield from self._client.exchanges("GET", self.url, timeout=timeout,
                                                         bound=self.url is self._bound)
            self._log.debug("opstatus: GET %s -> %d (poll %d)", self._shown, response.status,
                            self.polls)
            status = _read_answer(response, self.vocabulary, self._client.scrub, self.url,
                                  self.policy)
            if status.message is not None:  # a key the service echoes stays hidden
                clean = self._client.scrub(status.message)
                if clean != status.message:
                    status = _dataclasses.replace(status, message=clean)
        except (NetworkError, HTTPError) as exc:
            self._took = max(0.0, _time.monotonic() - sent_at)
            self._client.scrub_error(exc)
            self._errors_in_row += 1
            self.errors += 1
            self._last_error = exc
            self._erring(exc)
            delay = _retry_wait(self._client, self.policy, self.url, exc, self._errors_in_row,
                                self._rand, self._time_left(), self.vocabulary.max_server_wait)
            self._log.debug("opstatus: %s; retrying in %.3f s", exc, delay)
            self._notify("opstatus_retry_scheduled", url=self.url, error=exc, delay=delay,
                         errors=self._errors_in_row)
            return None, delay, exc
        except OpStatusError as exc:
            raise self._client.scrub_error(exc)
        self._took = max(0.0, _time.monotonic() - sent_at)
        self._answered(response)
        self._observe(status)
        return status, 0.0, None

    def _finish(self, outcome, error):
        self._notify("opstatus_operation_finished", url=self.url, outcome=outcome,
                     status=self.latest, error=error)

    def _failure(self, status):
        cls = OperationCanceled if status.status is Status.CANCELED else OperationFailed
        return self._client.scrub_error(cls(status))

    def _answered(self, response):
        """The service answered with a status: the errors in a row end."""
        if self._warned:
            self._log.info("opstatus: %s answers again", self._shown)
        self._ever_answered, self._errors_in_row, self._errors_since = True, 0, None
        self._warned, self._last_error = False, None
        self._hint = parse_retry_after(response.headers)

    def _erring(self, exc):
        """Bookkeeping of a transient error: one WARNING once errors have lasted a minute; a
        short bound while the address has never answered."""
        now = self._elapsed()
        if self._errors_since is None:
            self._errors_since = now
        if isinstance(exc, HTTPError):
            self._ever_answered = True
        lasted = now - self._errors_since
        if lasted >= ERRORS_WARNING_AFTER and not self._warned:
            self._warned = True
            self._log.warning("opstatus: %s: errors for %.0f s, still retrying: %s",
                              redact_url(self.url), lasted, exc)
        bound = self.policy.unreachable
        if (bound is not None and not self._ever_answered and isinstance(exc, NetworkError)
                and not exc.sent and now >= bound):
            origin = "%s://%s" % _origin(_split_url(self.url, allow_http=True))[:2]
            raise NetworkError(
                "%s has not answered for %.0f s (%s): check the endpoint's address and that "
                "the service is reachable from here" % (origin, now, exc),
                sent=False, url=exc.url, retryable=False) from None

    def start(self):
        """Start the deadline's clock now (else the first :meth:`step` does)."""
        if self._start is None:
            self._start = self._now()

    @property
    def time_left(self) -> Optional[float]:
        """Seconds left before the deadline (``None``: no deadline)."""
        return self._limit() if self._start is None else self._time_left()

    def step(self) -> Step:
        """Send one request; return a :class:`Step`: what it saw and when to come back.
        Raises what ends the poll (the deadline, :meth:`cancel`, an error not worth another
        try); the plugins hear of every end."""
        return self._client.drive(self.step_requests())

    def step_requests(self):
        """:meth:`step` as a generator of the requests to send; a driver other than
        :meth:`step` (a Watcher's) sends them and answers with each response."""
        if self._done:
            return Step(self.latest, None, 0.0, True)
        # the wait the last step asked for has passed, whatever the clock says
        self.slept += self._asked
        self._asked = 0.0
        try:
            status, delay, error = yield from self._attempt()
            if status is not None and status.is_terminal:
                self._done = True
                failure = self._failure(status) if status.failed or status.canceled else None
                self._finish(status.status.value, failure)
                return Step(status, failure, 0.0, True)
            if status is not None:
                delay = self._next_delay(status)
            delay = self._plan_wait(delay, error)
        except OpStatusError as exc:
            self._finish("timeout" if isinstance(exc, PollTimeout) else
                         "cancelled" if isinstance(exc, PollCancelled) else "error", exc)
            raise
        self._asked = delay
        self._log.debug("opstatus: waiting %.3f s before the next poll", delay)
        return Step(status, error, delay, False, self._errors_in_row)

    def _next_delay(self, status):
        age = self._elapsed() + self._age0
        if status.last_action_time is not None and status.created_time is not None:
            age = max(age, (status.last_action_time - status.created_time).total_seconds())
        hooks, hint, ceiling = self._client.hooks, self._hint, self.vocabulary.max_server_wait
        value = None if hooks is None or not hooks.has("opstatus_next_delay") else hooks.call(
            "opstatus_next_delay", self._client.scrub, url=self.url, status=status, age=age,
            polls=self.polls, policy=self.policy, retry_after=hint)
        if value is None:
            if hint is not None:
                return self.policy.clamp_hint(hint, self._time_left(), ceiling)
            return self.policy.clamp(self.policy.poll_delay(age, self._rand), self._time_left())
        delay = _plugin_number(value, hooks, "opstatus_next_delay")
        if hint is None:
            return self.policy.clamp(delay, self._time_left())
        # a plugin may wait past the cap, as long as the service asked
        return self.policy.clamp_hint(delay, self._time_left(),
                                      None if ceiling is None else min(hint, ceiling))

    def _notify(self, hook, **kwargs):
        if self._client.hooks is not None:
            self._client.hooks.notify(hook, self._client.scrub, **kwargs)

    def _observe(self, status):
        previous = self.latest
        self.latest = status
        if previous is None or previous.status is not status.status:
            self._log.info("opstatus: %s is %s", self._shown, status.status.value)
            self._notify("opstatus_status_changed", url=self.url, previous=previous, status=status)
        if self._on_status is not None:
            self._on_status(status)

    def __iter__(self) -> Iterator[OperationStatus]:
        try:
            while not self._done:
                step = self.step()
                if step.status is not None:
                    yield step.status
                _pause(step.delay, self._sleep, self._flag())  # counted by the next step
        finally:
            self._client.close()  # idle connections; a later poll reconnects

    def _async_parts(self):
        import asyncio
        loop = asyncio.get_event_loop()
        direct = self._client.direct()
        return loop, None if direct is None else _LoopMux.of(loop, direct)

    async def _step_async(self, loop):
        """One step in the loop's default executor (used when a plugin may block)."""
        async with _async_gate(loop):  # thousands of polls queue here, not in the executor
            return await loop.run_in_executor(None, self.step)

    def _left_to_wait(self, delay):
        """What is left of *delay* for the event loop to wait: nothing once an injected
        ``sleep`` (a test's clock) has taken it."""
        if self._sleep is None:
            return delay
        self._sleep(delay)
        return 0.0

    async def __aiter__(self):
        """``async for status in poller``: the requests go out on the event loop's own
        selector when they go straight to an :class:`HTTPTransport`, else they run in its
        default executor; cancelling the task cancels the poller."""
        import asyncio
        loop, mux = self._async_parts()
        delay = 0.0
        try:
            while not self._done:
                if mux is None:
                    if delay:
                        await asyncio.sleep(delay)
                    step = await self._step_async(loop)
                else:
                    step = await mux.step(self, delay)
                if step.status is not None:
                    yield step.status
                if step.done:
                    return
                delay = self._left_to_wait(step.delay)
        except asyncio.CancelledError:
            self.cancel()
            raise
        finally:
            if mux is not None:
                mux.leave()
            self._client.close()  # idle connections; a later poll reconnects

    async def wait_async(self) -> OperationStatus:
        """:meth:`wait` for ``asyncio`` (as ``async for``, without a generator: thousands
        run at once). Polls running at once share kept-alive connections (unless this
        poller has TLS options or a transport)."""
        return await Poller.poll_async(self)

    @staticmethod
    async def poll_async(operation_location, *, endpoint=None, key=None, headers=None,
                         timeout=DEFAULT_TIMEOUT, **options) -> OperationStatus:
        """:func:`poll` for ``asyncio`` (``opstatus.poll_async``): the event loop is never
        blocked (requests go out on its selector; in its default executor once a plugin is
        registered or with a transport of another kind) and cancelling the task stops the
        poll. *operation_location* may be a :class:`Poller`, followed as it is (what
        :meth:`wait_async` does)."""
        import asyncio
        if isinstance(operation_location, Poller):
            if endpoint is not None or key is not None or headers is not None or options or \
                    timeout is not DEFAULT_TIMEOUT:
                raise TypeError("poll_async(poller) takes no other argument: the poller "
                                "has its settings")
            poller = operation_location
        else:
            poller = Poller(operation_location, endpoint=endpoint, key=key, headers=headers,
                            timeout=timeout, **options)
        # The loop is here, not in a coroutine this one awaits: thousands of polls run at
        # once, each holding this frame and one future, and no other frame, while it waits.
        del options
        client = poller._client
        pooled = client.owns_transport and client.builtin and not client.explicit_tls
        if pooled:  # one client for the polls the same in all settings
            poller._client = _SHARED_POOL.join(client)
        client = None  # its own, when it shares another's: not held while the poll runs
        loop, mux = poller._async_parts()
        delay = 0.0
        try:
            while not poller._done:
                if mux is None:
                    if delay:
                        await asyncio.sleep(delay)
                    step = await poller._step_async(loop)
                else:  # mux.step() inline: the wait for its time and a turn is one future
                    turn = mux.turn(delay)
                    try:
                        await turn
                    except asyncio.CancelledError:
                        mux.forgo(turn)
                        raise
                    turn = None
                    step = await mux.run(poller)
                if step.done:
                    break
                delay, step = poller._left_to_wait(step.delay), None  # not held meanwhile
        except asyncio.CancelledError:
            poller.cancel()
            raise
        finally:
            if mux is not None:
                mux.leave()
            poller._client.close()
            if pooled:
                _SHARED_POOL.release()
        return poller._final()

    def wait(self, timeout: Optional[float] = None) -> OperationStatus:
        """Poll to the end and return the final status if it succeeded; raise
        :class:`OperationFailed`, :class:`PollTimeout`, :class:`PollCancelled`,
        :class:`HTTPError`, :class:`NetworkError` or :class:`StatusDocumentError`. *timeout*
        bounds this call only: after its :class:`PollTimeout` the poller can wait again."""
        if timeout is not None:
            if _finite_delay(timeout, float("inf")) is None:
                raise ValueError("timeout must be a finite number >= 0, not %r" % (timeout,))
            self.start()
            self._wait_for = float(timeout)
            self._wait_limit = self._elapsed() + float(timeout)
        self._last_attempt = False
        try:
            for _status in self:
                pass
        finally:
            self._wait_limit, self._last_attempt = None, False
            self._client.close()
        return self._final()

    def _final(self):
        final = self.latest
        if final is None or not final.is_terminal:  # pragma: no cover - loop ends terminal
            raise self._timeout()
        if final.status is Status.FAILED or final.status is Status.CANCELED:
            raise self._failure(final)
        return final

    # -- resume tokens -------------------------------------------------------

    def resume_token(self) -> str:
        """A small JSON token from which :meth:`from_resume_token` carries on after a
        restart: URL, endpoint, created time, schedule state; never a secret, never pickle;
        sealed with an HMAC keyed by the key (if any). ``ValueError`` for a URL whose query
        may carry a credential (``sig=``, ``key=``, ``token=``...) and for a vocabulary that
        is not built in."""
        query = self.url.partition("?")[2]
        if "#" in self.url or _QUERY_SECRET.search(query):
            raise ValueError("the operation URL has a query string that may carry a "
                             "credential: it is not put in a resume token")
        latest = self.latest
        created = latest.created_time if latest is not None else None
        doc = {"type": _TOKEN_TYPE, "version": _TOKEN_VERSION, "url": self.url,
               "endpoint": self._client.endpoint, "polls": self.polls,
               "createdTime": format_datetime(created) if created is not None else None,
               "status": latest.status.value if latest else None,
               "age": round(self._age0 + (self._elapsed() if self._start is not None else 0.0), 3)}
        vocab: Vocabulary = self.vocabulary
        if vocab is not FACE:  # face tokens stay as they always were
            if VOCABULARIES.get(vocab.name) is not vocab:
                raise ValueError("the vocabulary %r is not a built-in one: a resume token "
                                 "can record only a built-in's name" % vocab.name)
            doc["vocabulary"] = vocab.name
        key = next((v for k, v in self._client.headers.items()
                    if k.lower() == KEY_HEADER.lower()), None)
        doc["mac"] = _token_mac(doc, key)
        return _json.dumps(doc, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_resume_token(cls, token: str, *, key: Optional[str] = None,
                          endpoint: Optional[str] = None, **options: Any) -> Poller:
        """A poller that carries on from :meth:`resume_token`. The token is checked (type,
        version, fields, seal with *key*) and its URL held to the rules of a new one; an
        *endpoint* given must be the token's origin. Raises :class:`ResumeTokenError`."""
        doc = _read_token(token, key)
        token_endpoint = doc["endpoint"]
        if key is None and endpoint is None:
            # sealed without a key, a token proves nothing: secrets go only where the caller says
            raise ResumeTokenError(
                "this token cannot be authenticated (no key): pass endpoint= (the "
                "service's address) so that the token's URL is checked against it")
        if endpoint is not None and token_endpoint is not None:
            allow = bool(options.get("allow_http"))
            if _origin(_split_url(endpoint, allow_http=allow, what="endpoint")) != _origin(
                    _split_url(token_endpoint, allow_http=allow, what="token endpoint")):
                raise ResumeTokenError("the token is for %s, not for the endpoint %s"
                                       % (redact_url(token_endpoint), redact_url(endpoint)))
        recorded = vocabulary(doc.get("vocabulary", "face"))
        given = options.get("vocabulary")
        if given is not None and _vocabulary_of(given) is not recorded:
            raise ResumeTokenError("the token is for the vocabulary %r, not %r" % (
                recorded.name, _vocabulary_of(given).name))
        options["vocabulary"] = recorded
        poller = cls(doc["url"], endpoint=endpoint or token_endpoint, key=key, **options)
        poller.polls = doc["polls"]
        poller._age0 = doc["age"]
        return poller

    def share_connections(self, other):
        """Use the kept-alive connections of *other* (a :class:`Poller` of the same service,
        or an :class:`HTTPTransport`) when this poller uses the built-in transport; *other*
        stays in charge of closing them."""
        if isinstance(other, HTTPTransport):
            self._client.share(other)
        else:
            self._client.share(other._client.transport, other._client)

    @property
    def direct_transport(self) -> Optional[HTTPTransport]:
        """The :class:`HTTPTransport` every request goes straight to, with no plugin
        registered (a hook may block) and no transport of another kind; or ``None``. A
        :class:`Watcher` and ``poll_async`` send such polls' requests on non-blocking
        connections from one thread; others run on worker threads."""
        return self._client.direct()

    def close(self):
        """Release the connections of the built-in transport."""
        self._client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def _pause(seconds, sleep, cancelled):
    """Wait *seconds* with the injected *sleep*, or until the *cancelled* event is set."""
    if not seconds or seconds <= 0:
        return
    if sleep is not None:
        sleep(seconds)
    else:
        cancelled.wait(seconds)  # the next step raises PollCancelled


def _plugin_number(value, hooks, hook):
    """A delay a plugin returned: a real number (the core clamps it)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        plugin = ", ".join(hooks.names(hook))
        raise PluginError("plugin %s returned %s from %s, not a number of seconds"
                          % (plugin, _short_repr(value), hook), plugin)
    return value


def poll(operation_location, *, endpoint=None, key=None, headers=None, timeout=DEFAULT_TIMEOUT,
         **options) -> OperationStatus:
    """Poll an operation until it ends and return its final status.

    *operation_location* is the ``Operation-Location`` of the 202 that started it, absolute
    or relative to the API base of *endpoint*. *key* is sent as
    ``Ocp-Apim-Subscription-Key``, *headers* adds others; secrets go only to the endpoint's
    origin. Other keyword arguments are those of :class:`Poller`. Raises as
    :meth:`Poller.wait` does, or :class:`UnsafeURLError`.
    """
    return Poller(operation_location, endpoint=endpoint, key=key, headers=headers,
                  timeout=timeout, **options).wait()


#: :meth:`Poller.poll_async`: :func:`poll` for ``asyncio``.
poll_async = Poller.poll_async


_TOKEN_TYPE = "opstatus-resume"
_TOKEN_VERSION = 1
_TOKEN_FIELDS = {"type": str, "version": int, "url": str, "endpoint": (str, type(None)),
                 "createdTime": (str, type(None)), "status": (str, type(None)),
                 "polls": int, "age": (int, float), "mac": str}
#: Largest resume token read, in bytes.
MAX_TOKEN_BYTES = 4096


def _token_mac(doc, key):
    import hashlib  # with hmac, on first use: on PyPy they load the socket machinery
    import hmac
    body = _json.dumps({k: v for k, v in doc.items() if k != "mac"}, sort_keys=True,
                      separators=(",", ":")).encode("utf-8")
    secret = (key or "").encode("utf-8") + b"\x00opstatus-resume"
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def _read_token(token, key):
    if not isinstance(token, str):
        raise ResumeTokenError("a resume token is a str, not %s" % type(token).__name__)
    size = len(token.encode("utf-8", "surrogatepass"))
    if size > MAX_TOKEN_BYTES:
        raise ResumeTokenError("resume token too large (%d bytes, limit %d)"
                               % (size, MAX_TOKEN_BYTES))
    try:
        doc = _load_json_object(token, MAX_TOKEN_BYTES)
    except StatusDocumentError as exc:
        raise ResumeTokenError("resume token is not valid JSON: %s" % exc.problem) from None
    if not isinstance(doc, dict) or doc.get("type") != _TOKEN_TYPE:
        raise ResumeTokenError("not an opstatus resume token")
    if doc.get("version") != _TOKEN_VERSION:
        raise ResumeTokenError("resume token version %s is not supported (this is version %d)"
                               % (_short_repr(doc.get("version")), _TOKEN_VERSION))
    if set(doc) - {"vocabulary"} != set(_TOKEN_FIELDS):
        raise ResumeTokenError("resume token has fields %s, expected %s"
                               % (sorted(doc), sorted(_TOKEN_FIELDS)))
    if "vocabulary" in doc and (not isinstance(doc["vocabulary"], str)
                                or doc["vocabulary"].lower() not in VOCABULARIES):
        raise ResumeTokenError("resume token names an unknown vocabulary %s"
                               % _short_repr(doc["vocabulary"]))
    for name, kind in _TOKEN_FIELDS.items():
        if not isinstance(doc[name], kind) or isinstance(doc[name], bool):
            raise ResumeTokenError("resume token field %s has the wrong type" % name)
    if doc["polls"] < 0 or not 0 <= doc["age"] <= 10 ** 9:
        raise ResumeTokenError("resume token has an impossible schedule state")
    import hmac
    if not hmac.compare_digest(doc["mac"].encode("utf-8", "surrogatepass"),
                               _token_mac(doc, key).encode("ascii")):
        raise ResumeTokenError("resume token was altered, or sealed with another key")
    return doc


###############################################################################
# Take and apply ##############################################################
###############################################################################

#: The object types a snapshot can be taken of, in the service's spelling.
SNAPSHOT_TYPES = ("FaceList", "LargeFaceList", "PersonGroup", "LargePersonGroup")
_OBJECT_ID = _LazyRegex(r"[a-z0-9_-]{1,64}")
_SNAPSHOT_ID = _LazyRegex(r"[A-Za-z0-9_-]{1,64}")
_UUID = _LazyRegex(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
#: Longest ``userData`` of a snapshot, in characters.
MAX_USER_DATA = 16384


def _check_object_id(value, name="object_id"):
    if not isinstance(value, str) or not _OBJECT_ID.fullmatch(value):
        raise ValueError("%s must be 1 to 64 characters of a-z, 0-9, '-' and '_', not %s"
                         % (name, _short_repr(value)))
    return value


def _send_start(client, method, url, body, content_type, *, timeout, policy=None, clock=None,
                sleep=None, random=None, accept=(202,)):
    """Send the request that starts an operation until an answer in *accept* comes; again
    only when the service surely did not act on it (the request never left, or a 429), with
    the policy's waits and the retry hooks, within *timeout* seconds (then PollTimeout)."""
    if _finite_delay(timeout, float("inf")) is None:
        raise ValueError("timeout must be a finite number >= 0, not %r" % (timeout,))
    policy = policy if policy is not None else RetryPolicy()
    now = clock if clock is not None else _time.monotonic
    start, slept, errors = now(), 0.0, 0

    def time_left():  # the time slept counts even if the clock stands still
        return timeout - max(now() - start, slept)
    while True:
        try:
            left = time_left()
            if left <= 0.001:
                raise NetworkError("no time left to send the request (%s)"
                                   % redact_url(url), sent=False, url=redact_url(url))
            response = client.send(method, url, body=body, content_type=content_type,
                                   timeout=min(client.request_timeout, left))
            if response.status not in accept:
                raise _http_error(response, client.scrub, url)
            return response
        except OpStatusError as exc:
            client.scrub_error(exc)
            if not ((isinstance(exc, NetworkError) and not exc.sent)
                    or (isinstance(exc, HTTPError) and exc.status == 429)):
                raise
            errors += 1
            rand = random if random is not None else _random.random
            wait = _retry_wait(client, policy, url, exc, errors, rand, None)
            if wait >= time_left():
                raise PollTimeout("the request to start the operation got no answer "
                                  "within %gs; last error: %s" % (timeout, exc),
                                  timeout=timeout, last_error=exc) from None
            if client.hooks is not None:
                client.hooks.notify("opstatus_retry_scheduled", client.scrub, url=url,
                                    error=exc, delay=wait, errors=errors)
            slept += wait
            (sleep if sleep is not None else _time.sleep)(wait)


def _start_operation(endpoint, key, path, payload, *, headers, allow_http, transport,
                     ssl_context, cafile, request_timeout, **retry):
    """POST a Face snapshot request; the Operation-Location of its 202."""
    if endpoint is None:
        raise ValueError("endpoint is required")
    client = _Client(endpoint, key, headers, allow_http, transport, ssl_context, cafile,
                     request_timeout, MAX_RESPONSE_BYTES, retry.pop("plugins", None))
    url = api_base(endpoint, allow_http=allow_http) + path
    try:
        response = _send_start(client, "POST", url, _json.dumps(payload).encode("utf-8"),
                               "application/json; charset=utf-8", **retry)
    finally:
        client.close()
    location = response.headers.get("operation-location")
    if not location:
        raise HTTPError(202, None, "202 without an Operation-Location header", url=redact_url(url))
    resolve_operation_url(location, endpoint, allow_http=allow_http)
    return location


#: Largest body :func:`start_operation` sends, in bytes.
MAX_REQUEST_BYTES = 64 * 1024 * 1024


def start_operation(url, *, endpoint=None, key=None, method="POST", json=None, data=None,
                    headers=None, vocabulary="azure", allow_http=False, transport=None,
                    ssl_context=None, cafile=None, request_timeout=DEFAULT_REQUEST_TIMEOUT,
                    timeout=DEFAULT_START_TIMEOUT, policy=None, clock=None, sleep=None,
                    random=None, plugins=None, content_type=None) -> Optional[str]:
    """Send the request that starts a long-running operation of any Azure service; return
    the URL to poll (with the same *vocabulary*), or ``None`` when the service finished at
    once (a 200 or 201 without one).

    *url* is absolute, or relative to *endpoint* as a browser resolves it. The body is
    *json* (any JSON value) or *data* (bytes, sent as ``application/octet-stream`` unless
    *content_type* says otherwise), at most :data:`MAX_REQUEST_BYTES`. The URL to poll comes
    from the vocabulary's headers, made absolute and held to the origin rules of every URL
    that gets a secret. Retried as :func:`take_snapshot` is.
    """
    vocab = _vocabulary_of(vocabulary)
    if json is not None and data is not None:
        raise ValueError("give json= or data=, not both")
    body: Optional[bytes] = None
    if json is not None:
        body = _json.dumps(json).encode("utf-8")
        content_type = content_type or "application/json; charset=utf-8"
    elif data is not None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError("data must be bytes, not %s" % type(data).__name__)
        body = bytes(data)
        content_type = content_type or "application/octet-stream"
    if body is not None and len(body) > MAX_REQUEST_BYTES:
        raise ValueError("the body is %d bytes, more than the cap of %d"
                         % (len(body), MAX_REQUEST_BYTES))
    if not isinstance(method, str) or not _TOKEN.fullmatch(method):
        raise ValueError("method must be an HTTP method name, not %s" % _short_repr(method))
    url = _absolute(url, endpoint, allow_http)
    client = _Client(endpoint, key, headers, allow_http, transport, ssl_context, cafile,
                     request_timeout, MAX_RESPONSE_BYTES, plugins)
    client.bind(url)
    try:
        response = _send_start(client, method.upper(), url, body, content_type,
                               timeout=timeout, policy=policy, clock=clock, sleep=sleep,
                               random=random, accept=(200, 201, 202))
    finally:
        client.close()
    for name in vocab.url_headers:
        location = response.headers.get(name.lower())
        if location:
            absolute = _absolute(location.strip(), url, allow_http)
            client._check_origin(absolute, "operation URL")
            return absolute
    headers_named = " or ".join(vocab.url_headers)
    if response.status == 202:
        raise HTTPError(202, None, "202 without a %s header" % headers_named, url=redact_url(url))
    _log.info("opstatus: %s %s answered %d without %s: the operation ended at once",
              method.upper(), redact_url(url), response.status, headers_named)
    return None


def _absolute(url: str, base: Optional[str], allow_http: bool) -> str:
    """*url* made absolute against *base* as a browser would, checked."""
    if not isinstance(url, str) or not url:
        raise UnsafeURLError("the URL must be a non-empty str")
    if _BAD_URL_CHARS.search(url):
        raise UnsafeURLError("the URL has control characters, spaces or non-ASCII: refused")
    if "://" not in url.split("?", 1)[0]:
        if base is None:
            raise UnsafeURLError("%s is relative: pass the endpoint it belongs to"
                                 % _clip(url, 80))
        _split_url(base, allow_http=allow_http, what="endpoint")
        url = _urljoin(base, url)
    _split_url(url, allow_http=allow_http)
    return url


def take_snapshot(endpoint, key, *, object_type, object_id, apply_scope, user_data=None,
                  headers=None, allow_http=False, transport=None, ssl_context=None,
                  cafile=None, request_timeout=DEFAULT_REQUEST_TIMEOUT,
                  timeout=DEFAULT_START_TIMEOUT, policy=None, clock=None, sleep=None,
                  random=None, plugins=None) -> str:
    """Start taking a snapshot of a face list or person group.

    ``POST {endpoint}/face/v1.0/snapshots``; returns the operation's ``Operation-Location``,
    to give to :func:`poll` with the same endpoint and key. *apply_scope* lists the
    subscription ids (UUIDs) that may apply it, each once. The input is checked before
    anything is sent (``ValueError``). Sent again only when the service surely did not act
    on it (the request never left, or a 429), with the waits of *policy* and the retry
    hooks, all within *timeout* seconds (:class:`PollTimeout` after). *clock*, *sleep* and
    *random* can be injected as for :class:`Poller`.
    """
    kinds = {k.lower(): k for k in SNAPSHOT_TYPES}
    if not isinstance(object_type, str) or object_type.lower() not in kinds:
        raise ValueError("object_type must be one of %s, not %s"
                         % (", ".join(SNAPSHOT_TYPES), _short_repr(object_type)))
    _check_object_id(object_id)
    if isinstance(apply_scope, str) or not apply_scope:
        raise ValueError("apply_scope must be a non-empty list of subscription ids (UUIDs)")
    scope = list(apply_scope)
    seen = set()
    for item in scope:
        if not isinstance(item, str) or not _UUID.fullmatch(item):
            raise ValueError("apply_scope: %s is not a UUID" % _short_repr(item))
        if item.lower() in seen:  # the service refuses it (400 BadArgument)
            raise ValueError("apply_scope: %s is listed twice" % item)
        seen.add(item.lower())
    payload = {"type": kinds[object_type.lower()], "objectId": object_id, "applyScope": scope}
    if user_data is not None:
        if not isinstance(user_data, str) or len(user_data) > MAX_USER_DATA:
            raise ValueError("user_data must be a str of at most %d characters" % MAX_USER_DATA)
        payload["userData"] = user_data
    return _start_operation(endpoint, key, "/snapshots", payload, headers=headers,
                            allow_http=allow_http, transport=transport, ssl_context=ssl_context,
                            cafile=cafile, request_timeout=request_timeout, timeout=timeout,
                            policy=policy, clock=clock, sleep=sleep, random=random,
                            plugins=plugins)


def apply_snapshot(endpoint, key, snapshot_id, *, object_id, mode="CreateNew", headers=None,
                   allow_http=False, transport=None, ssl_context=None, cafile=None,
                   request_timeout=DEFAULT_REQUEST_TIMEOUT, timeout=DEFAULT_START_TIMEOUT,
                   policy=None, clock=None, sleep=None, random=None, plugins=None) -> str:
    """Start applying snapshot *snapshot_id* to a new object *object_id*.

    ``POST {endpoint}/face/v1.0/snapshots/{snapshot_id}/apply``; returns the
    ``Operation-Location``, and retries, as :func:`take_snapshot` does."""
    if not isinstance(snapshot_id, str) or not _SNAPSHOT_ID.fullmatch(snapshot_id):
        raise ValueError("snapshot_id must be 1 to 64 characters of A-Z, a-z, 0-9, '-' "
                         "and '_', not %s" % _short_repr(snapshot_id))
    _check_object_id(object_id)
    if mode != "CreateNew":
        raise ValueError("mode must be 'CreateNew' (the only mode the service has)")
    return _start_operation(endpoint, key, "/snapshots/%s/apply" % snapshot_id,
                            {"objectId": object_id, "mode": mode}, headers=headers,
                            allow_http=allow_http, transport=transport, ssl_context=ssl_context,
                            cafile=cafile, request_timeout=request_timeout, timeout=timeout,
                            policy=policy, clock=clock, sleep=sleep, random=random,
                            plugins=plugins)


###############################################################################
###############################################################################
##                                                                           ##
##  The optional tail: Watcher, Simulator, command line.                     ##
##                                                                           ##
##  Nothing above this banner uses what follows it: a vendored copy that     ##
##  needs only to read, start and poll operations may cut the file here     ##
##  (tests/test_packaging.py runs the core's tests on such a cut copy).      ##
##                                                                           ##
###############################################################################
###############################################################################

__all__ += ["Outcome", "Watcher", "Simulator", "main"]


###############################################################################
# Many operations #############################################################
###############################################################################

#: Worker threads a :class:`Watcher` uses by default (16 at most advised).
DEFAULT_WORKERS = 8


class _SelectMux(_Mux):
    """A Watcher's requests, on a selector it waits on in its own thread."""

    def __init__(self, transport):
        import selectors
        super().__init__(transport)
        self._events = selectors.EVENT_WRITE, selectors.EVENT_READ
        self.selector = selectors.DefaultSelector()
        self.ended: list = []

    def send(self, key, request):
        """Start sending *request*; its end comes out of :meth:`wait` with *key*."""
        try:
            origin, message = self.transport._message(request)
        except Exception as exc:
            self.ended.append((key, None, exc))
            return
        self._start(key, request, origin, message,
                    _time.monotonic() + max(0.001, request.timeout))

    def _watch(self, wire, writing):
        want = 2 if writing else 1
        if wire.watching != want:
            event = self._events[0 if writing else 1]
            if wire.watching:
                self.selector.modify(wire.sock, event, wire)
            else:
                self.selector.register(wire.sock, event, wire)
            wire.watching = want

    def _unwatch(self, wire):
        if wire.watching:
            self.selector.unregister(wire.sock)
            wire.watching = 0

    def _end(self, key, response, error):
        self.ended.append((key, response, error))

    def wait(self, timeout):
        """The ``(key, response, error)`` of the exchanges that ended, after waiting up to
        *timeout* seconds (``None``: until one ends) for the first."""
        if not self.ended and self.busy:
            first = min(wire.deadline for wire in self.busy) - _time.monotonic()
            timeout = max(0.0, first if timeout is None else min(timeout, first))
            for selected, mask in self.selector.select(timeout):
                wire = selected.data
                if wire in self.busy:
                    (self._write if mask & self._events[0] else self._read)(wire)
                elif wire.watching:  # idle, and the server closed it (else failed meanwhile)
                    self._idle_read(wire)
            now = _time.monotonic()
            for wire in [w for w in self.busy if w.deadline <= now]:
                self._expire(wire)
        ended, self.ended = self.ended, []
        return ended

    def close(self):
        super().close()
        self.selector.close()


class _Threads:
    """A Watcher's steps, run on at most *size* threads."""

    def __init__(self, pollers, size):
        from concurrent.futures import ThreadPoolExecutor
        self.pollers, self.running = pollers, {}  # future -> index
        self.pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="opstatus-watch")

    def __len__(self):
        return len(self.running)

    def start(self, index):
        self.running[self.pool.submit(self.pollers[index].step)] = index

    def wait(self, timeout):
        """``(index, step, error)`` of the steps that ended, waiting up to *timeout*."""
        from concurrent.futures import FIRST_COMPLETED, wait
        done, _pending = wait(list(self.running), timeout=timeout, return_when=FIRST_COMPLETED)
        ended = []
        for future in done:
            index = self.running.pop(future)
            try:
                ended.append((index, future.result(), None))
            except Exception as exc:  # OpStatusError; and a bug must not stop the others
                ended.append((index, None, exc))
        return ended

    def close(self):
        self.pool.shutdown(wait=True)


class _Here:
    """A Watcher's steps, run in the watching thread: their requests go out together on
    non-blocking connections (:class:`_Mux`)."""

    def __init__(self, pollers, transport):
        self.pollers, self.running = pollers, {}  # index -> its step's generator
        self.mux, self.ended = _SelectMux(transport), []

    def __len__(self):
        return len(self.running) + len(self.ended)

    def start(self, index):
        self._advance(index, self.pollers[index].step_requests(), None, None)

    def _advance(self, index, steps, response, error):
        """Resume a step with *response* (or *error*): its next request goes out, or it
        ends."""
        try:
            if error is not None:
                request = steps.throw(error)
            elif response is not None:
                request = steps.send(response)
            else:
                request = next(steps)
        except StopIteration as stop:
            self.ended.append((index, stop.value, None))
            return
        except Exception as exc:  # OpStatusError; and a bug must not stop the others
            self.ended.append((index, None, exc))
            return
        self.running[index] = steps
        self.mux.send(index, request)

    def wait(self, timeout):
        for index, response, error in self.mux.wait(0.0 if self.ended else timeout):
            self._advance(index, self.running.pop(index), response, error)
        ended, self.ended = self.ended, []
        return ended

    def close(self):
        while self.running and (self.mux.busy or self.mux.ended or self.ended):
            self.wait(None)  # let the steps under way end (cancelled: no other begins)
        self.mux.close()


@_dataclasses.dataclass(frozen=True)
class Outcome:
    """How one operation watched by a :class:`Watcher` ended: ``index`` in the list given,
    the final (or last seen) ``status``, and ``error``: ``None`` on success, else the
    exception :func:`poll` would have raised."""

    index: int
    location: str
    status: Optional[OperationStatus]
    error: Optional[BaseException] = _dataclasses.field(default=None, compare=False)

    @property
    def ok(self) -> bool:
        return self.error is None


class Watcher:
    """Watch many operations at once with a few threads; outcomes come out as operations
    end, like ``concurrent.futures.as_completed``::

        for outcome in Watcher(locations, endpoint=endpoint, key=key, timeout=600):
            print(outcome.location, outcome.status.status if outcome.ok else outcome.error)

    Each operation keeps its own schedule; at most *max_workers* requests are under way at
    once, over shared kept-alive connections, at most *max_rate* a second (every poll is
    billed). With no plugin registered and the built-in transport, they go out from the
    watching thread on non-blocking connections (callbacks run in it: keep them short);
    else on *max_workers* threads.
    One *timeout* holds for all; :meth:`cancel` stops all (from any thread); a failure of
    one does not stop the others. *on_status* is called as ``on_status(index, status)``,
    *on_step* as ``on_step(index, step)``; other keyword arguments are those of
    :class:`Poller`.
    """

    def __init__(self, locations, *, endpoint=None, key=None, headers=None,
                 timeout=DEFAULT_TIMEOUT, max_workers=DEFAULT_WORKERS, max_rate=None,
                 clock=None, sleep=None, on_status=None, on_step=None, **options):
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or not (
                1 <= max_workers <= 64):
            raise ValueError("max_workers must be an int from 1 to 64")
        if max_rate is not None and (isinstance(max_rate, bool) or not isinstance(
                max_rate, (int, float)) or not 0 < max_rate < float("inf")):
            raise ValueError("max_rate must be None or a number of requests per second > 0")
        self.max_rate, self.max_workers = max_rate, max_workers
        self.locations = list(locations)
        self._clock, self._sleep, self._on_step = clock, sleep, on_step
        self._cancelled = _threading.Event()
        self.pollers: list = []
        for index, location in enumerate(self.locations):
            callback = None if on_status is None else (lambda st, i=index: on_status(i, st))
            self.pollers.append(Poller(location, endpoint=endpoint, key=key, headers=headers,
                                       timeout=timeout, clock=clock, on_status=callback,
                                       **options))
        for poller in self.pollers[1:]:
            poller.share_connections(self.pollers[0])

    def __repr__(self):
        return "<Watcher of %d operations, %d workers>" % (len(self.pollers), self.max_workers)

    def _now(self):
        return self._clock() if self._clock is not None else _time.monotonic()

    def cancel(self):
        """Stop watching, from any thread: pending operations end with :class:`PollCancelled`."""
        self._cancelled.set()
        for poller in self.pollers:
            poller.cancel()

    def _outcome(self, index, error=None):
        return Outcome(index, self.locations[index], self.pollers[index].latest, error)

    def _runner(self):
        """Steps run here when every request goes straight to one HTTPTransport, else on
        threads."""
        direct = {poller.direct_transport for poller in self.pollers}
        if len(direct) == 1 and None not in direct:
            return _Here(self.pollers, direct.pop())
        return _Threads(self.pollers, self.max_workers)

    def __iter__(self) -> Iterator[Outcome]:
        now = self._now()
        for poller in self.pollers:
            poller.start()  # one deadline for all
        heap = [(now, i) for i in range(len(self.pollers))]
        self._next_send = now
        running = self._runner()
        try:
            while heap or running:
                if self._cancelled.is_set():
                    while heap:  # each ends at once with PollCancelled, no request
                        index = _heapq.heappop(heap)[1]
                        # cancel() may still be telling the pollers, from another thread
                        self.pollers[index].cancel()
                        yield self._step_here(index)
                now = self._now()
                while heap and heap[0][0] <= now and self._out_of_time(heap[0][1]):
                    yield self._step_here(_heapq.heappop(heap)[1])  # no request, no rate slot
                self._submit(heap, running, now)
                idle = None
                if heap and len(running) < self.max_workers:
                    idle = max(0.0, heap[0][0] - now, self._next_send - now)
                if not running:
                    _pause(idle, self._sleep, self._cancelled)
                    continue
                for index, step, error in running.wait(idle):
                    outcome = self._settle(index, step, error, heap)
                    if outcome is not None:
                        yield outcome
        finally:
            if heap or running:
                self.cancel()
            running.close()
            if self.pollers:
                self.pollers[0].close()  # the connections all of them shared

    def _out_of_time(self, index):
        left = self.pollers[index].time_left
        return left is not None and left <= 0.001

    def _step_here(self, index):
        """In this thread, the outcome of a poller that ends without a request."""
        try:
            self.pollers[index].step()
        except OpStatusError as exc:
            return self._outcome(index, exc)
        raise AssertionError("a cancelled or timed-out poller sent a request")  # pragma: no cover

    def _submit(self, heap, running, now):
        """Start the steps that are due, within the workers and the rate."""
        spacing = 1.0 / self.max_rate if self.max_rate else 0.0
        while (heap and heap[0][0] <= now and len(running) < self.max_workers
               and self._next_send <= now):
            running.start(_heapq.heappop(heap)[1])
            if spacing:
                self._next_send = max(self._next_send, now - spacing) + spacing

    def _settle(self, index, step, error, heap):
        """The outcome of a finished step, or None once it is scheduled again."""
        if error is None and self._on_step is not None:
            try:
                self._on_step(index, step)
            except Exception as exc:  # a bug must not stop the others
                error = exc
        if error is not None:
            return self._outcome(index, error)
        if step.done:
            return self._outcome(index, step.error)
        _heapq.heappush(heap, (self._now() + step.delay, index))
        return None

    def results(self) -> list:
        """Watch to the end; the outcomes in the order the locations were given."""
        return sorted(self, key=lambda o: o.index)


###############################################################################
# Simulator ###################################################################
###############################################################################

_SIM_401 = ("Access denied due to invalid subscription key or wrong API endpoint. Make "
            "sure to provide a valid key for an active subscription and use a correct "
            "regional API endpoint for your resource.")
_TICKS = 10_000_000  # .NET ticks per second
#: What each object type is called in the service's documented error texts.
_SIM_OBJECT_NAMES = {"facelist": "Face list", "largefacelist": "Large face list",
                     "persongroup": "Person group", "largepersongroup": "Large person group"}
#: Gap between ``createdTime`` and ``lastActionTime`` of a 2021 operation not yet started.
_SIM_2021_FIRST_ACTION = 0.0391674
#: Job kinds with paths of their own: where a POST starts one, where its status lives.
_SIM_JOB_PATHS = {"azure": ("/jobs", "/jobs"),
                  "read": ("/vision/v3.2/read/analyze", "/vision/v3.2/read/analyzeResults"),
                  "translator": ("/translator/document/batches",) * 2,
                  "language": ("/language/analyze-text/jobs",) * 2}
_SIM_ARM_KINDS = ("arm-async", "arm-location")
_SIM_JOB_KINDS = tuple(_SIM_JOB_PATHS) + _SIM_ARM_KINDS
_SIM_JOB_OUTCOMES = ("succeeded", "failed", "canceled")
#: The words of a Translator batch and of a Language job, by state.
_SIM_TRANSLATOR_WORDS = {"notStarted": "NotStarted", "running": "Running",
                         "succeeded": "Succeeded", "failed": "ValidationFailed",
                         "canceled": "Cancelled"}
_SIM_LANGUAGE_WORDS = {"notStarted": "notStarted", "running": "running",
                       "succeeded": "partiallyCompleted", "failed": "failed",
                       "canceled": "cancelled"}
_SIM_ARM_API_VERSION = "2023-01-01"
_SIM_DEFAULT = object()  # "not given", where None means something
_SIM_DRAIN = 64 * 1024  # a refused request's body up to this is dropped, the connection kept
_SIM_TYPES = {t.lower(): t for t in SNAPSHOT_TYPES}  # snapshot types by lower-case spelling
_SIM_HOST = _LazyRegex(r"(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?")


def _wire_time(posix: float) -> str:
    """A POSIX time as the service writes it: 7 digits, trailing zeros trimmed."""
    whole = int(posix // 1)
    ticks = int(round((posix - whole) * _TICKS))
    if ticks >= _TICKS:
        whole, ticks = whole + 1, ticks - _TICKS
    dt = _datetime.datetime(1970, 1, 1) + _datetime.timedelta(seconds=whole)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + (".%07d" % ticks).rstrip("0").rstrip(".") + "Z"


class _SimOperation:
    """A Face take or apply; *source* is the snapshot an apply reads."""

    __slots__ = ("id", "kind", "created", "start", "finish", "fail", "result", "on_success",
                 "source")

    def __init__(self, op_id, kind, created, start, finish, fail, result, on_success, source=None):
        self.id, self.kind, self.source = op_id, kind, source
        self.created, self.start, self.finish = created, start, finish
        self.fail, self.result, self.on_success = fail, result, on_success


class _SimJob:
    """An operation of another Azure service (:meth:`Simulator.start_job`)."""

    __slots__ = ("id", "kind", "outcome", "created", "start", "finish", "retry_after",
                 "result", "error")

    def __init__(self, job_id, kind, outcome, created, start, finish, retry_after, result, error):
        self.id, self.kind, self.outcome = job_id, kind, outcome
        self.created, self.start, self.finish = created, start, finish
        self.retry_after, self.result, self.error = retry_after, result, error

    def state(self, now):
        """``"notStarted"``, ``"running"`` or the outcome, at *now*."""
        if now < self.start:
            return "notStarted"
        return "running" if now < self.finish else self.outcome


def _sim_job_error(outcome: str, error: Any) -> Optional[Dict[str, str]]:
    """The ``{"code", "message"}`` a job that ends *outcome* reports."""
    if outcome == "succeeded":
        return None
    if isinstance(error, dict):
        return {"code": str(error.get("code", "")), "message": str(error.get("message", ""))}
    if isinstance(error, (tuple, list)) and len(error) == 2:
        return {"code": str(error[0]), "message": str(error[1])}
    if isinstance(error, str):
        return {"code": "JobFailed" if outcome == "failed" else "Canceled", "message": error}
    if outcome == "failed":
        return {"code": "InternalServerError", "message": "The job failed."}
    return {"code": "Canceled", "message": "The operation was canceled."}


class Simulator:
    """A local, faithful stand-in for the retired Face snapshot API: an HTTP server on
    127.0.0.1 (port 0: a free one) in a thread of its own while the ``with`` block lasts::

        with Simulator(objects=[("PersonGroup", "sample")]) as sim:
            location = take_snapshot(sim.endpoint, sim.key, object_type="PersonGroup",
                                     object_id="sample", apply_scope=[sim.subscription])
            status = poll(location, endpoint=sim.endpoint, key=sim.key)

    It serves every snapshot call with the real paths (also under the 2021
    ``/face/v1.0-preview``), bodies, headers and status codes, and checks the key (401).
    Operations go notStarted -> running -> succeeded after *queue_seconds*, then
    *take_seconds* / *apply_seconds*. *dialect* ``"2019"`` or ``"2021"``: see
    ``docs/face-sdk.md``. A take needs its object to exist (404 ``PersonGroupNotFound``
    and kin) unless ``require_objects=False``: pass *objects* ((type, objectId) pairs) or
    call :meth:`add_object`. Faults, also settable later as attributes: *fail* (a message:
    operations fail), *rate_limit* (the next N requests answer 429, waiting
    *rate_limit_seconds*, with a ``Retry-After`` of *rate_limit_retry_after* unless None),
    *server_errors* (the next N answer *server_error_status*), *slow* (seconds before each
    answer), *snapshot_ttl*. *clock* (monotonic seconds) may be a test's fake one. A
    connection idle *idle_timeout* seconds is closed. :meth:`start_job` plays the
    operations of other Azure services (status monitor, Resource Manager polling).
    """

    def __init__(self, *, key=None, dialect="2021", host="127.0.0.1", port=0,
                 queue_seconds=0.3, take_seconds=1.0, apply_seconds=1.0, fail=None,
                 rate_limit=0, rate_limit_retry_after=None, rate_limit_seconds=1,
                 server_errors=0, server_error_status=503, slow=0.0, snapshot_ttl=48 * 3600.0,
                 clock=None, api_path=FACE_API_PATH, require_objects=True, objects=(),
                 account=None, idle_timeout=5.0, max_body=1 << 20):
        if dialect not in ("2019", "2021"):
            raise ValueError("dialect must be '2019' or '2021', not %r" % (dialect,))
        if not (isinstance(idle_timeout, (int, float)) and 0 < idle_timeout < 1e9):
            raise ValueError("idle_timeout must be a positive number of seconds, not %r"
                             % (idle_timeout,))
        import secrets
        import uuid
        self.key = key if key is not None else secrets.token_hex(16)
        self.subscription = str(uuid.uuid4())
        self.account = account or (
            "/subscriptions/%s/resourceGroups/opstatus-simulator/providers/"
            "Microsoft.CognitiveServices/accounts/face-simulator" % self.subscription)
        self.dialect, self.api_path, self.fail, self.slow = dialect, api_path, fail, slow
        self.queue_seconds, self.take_seconds = queue_seconds, take_seconds
        self.apply_seconds, self.snapshot_ttl = apply_seconds, snapshot_ttl
        self.rate_limit, self.rate_limit_seconds = rate_limit, rate_limit_seconds
        self.rate_limit_retry_after = rate_limit_retry_after
        self.server_errors, self.server_error_status = server_errors, server_error_status
        self.require_objects, self.max_body = require_objects, max_body
        self.idle_timeout, self._clock, self._host, self._port = idle_timeout, clock, host, port
        self._wall0 = self._mono0 = None  # POSIX and monotonic time at start()
        self._lock = _threading.Lock()
        self.operations, self.jobs, self.snapshots = {}, {}, {}  # by id
        self.objects, self.requests = set(), []  # (type, objectId) that exist; (method, path)
        self.settle_examined = 0  # operations _settle looked at: only those due, never all
        self._due, self._seq = [], _itertools.count()  # heap of (finish, seq, op) to settle
        self._server = self._thread = None
        for object_type, object_id in objects:
            self.add_object(object_type, object_id)

    def now(self):
        """The simulator's monotonic time."""
        return _time.monotonic() if self._clock is None else self._clock()

    def wall(self, mono=None):
        """POSIX time of a monotonic instant (default: now)."""
        return self._wall0 + ((self.now() if mono is None else mono) - self._mono0)

    @property
    def endpoint(self):
        """The resource endpoint, as users know it (``http://127.0.0.1:PORT``); bound to
        every interface, loopback of the same family (``::`` -> ``[::1]``)."""
        if self._server is None:
            raise RuntimeError("the simulator is not running: start() it, or use it in a "
                               "with block")
        host, port = self._server.server_address[:2]
        host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
        return ("http://[%s]:%d" if ":" in host else "http://%s:%d") % (host, port)

    def start(self):
        self._mono0, self._wall0 = self.now(), _time.time()
        host = self._host.strip("[]") if self._host else self._host
        handler = type("_Handler", (_make_sim_handler(),),
                       {"sim": self, "timeout": self.idle_timeout})
        self._server = _sim_server_class(host)((host, self._port), handler)
        self._thread = _threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="opstatus-simulator", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.close_connections()
            self._server.server_close()
            self._thread.join(5)
            self._server = None

    def __enter__(self):
        return self if self._server is not None else self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def __repr__(self):
        where = self.endpoint if self._server is not None else "stopped"
        return "<Simulator %s dialect=%s>" % (where, self.dialect)

    def add_object(self, object_type, object_id):
        """Make an object exist: a take needs one, an apply refuses one (409)."""
        self.objects.add((object_type.lower(), object_id))

    def _new_operation(self, kind, seconds, result, on_success, source=None):
        import uuid
        now, queue = self.now(), self.queue_seconds
        op = _SimOperation(str(uuid.uuid4()), kind, now, now + queue, now + queue + seconds,
                           self.fail, result, on_success, source)
        self.operations[op.id] = op
        if on_success is not None:
            _heapq.heappush(self._due, (op.finish, next(self._seq), op))
        return op

    def _accepted_headers(self, op):
        """The headers of a 202 that started *op*, as each dialect sent them."""
        if self.dialect == "2019":
            return (("Cache-Control", "no-cache"), ("Pragma", "no-cache"),
                    ("Operation-Location", "/operations/" + op.id), ("Expires", "-1"))
        return (("operation-location", "/operations/" + op.id),
                ("CSP-Billing-Usage", "CognitiveServices.Face.Transaction=1"))

    def _settle(self):
        """Bring about what finished operations produced (a take's snapshot), as of when
        they finished; a heap: only those due are looked at."""
        now, due = self.now(), self._due
        while due and due[0][0] <= now:
            op = _heapq.heappop(due)[2]
            self.settle_examined += 1
            if op.on_success is not None and not op.fail:
                op.on_success(op.finish)
            op.on_success = None

    def operation_document(self, op: _SimOperation) -> Dict[str, Any]:
        now = self.now()
        if now < op.start:
            status, last = "notStarted", op.created
            if self.dialect == "2021":
                last = min(op.created + _SIM_2021_FIRST_ACTION, op.start)
        elif now < op.finish:
            status, last = "running", now
        else:
            status, last = ("failed" if op.fail else "succeeded"), op.finish
        message = op.fail if status == "failed" else None
        location = op.result if status == "succeeded" else None
        created, last = _wire_time(self.wall(op.created)), _wire_time(self.wall(last))
        if self.dialect == "2019":
            return {"CreatedTime": created, "LastActionTime": last, "Message": message,
                    "ResourceLocation": location, "Status": status}
        if status != "succeeded" and op.kind in ("take", "apply"):
            location = "/snapshots/" + (op.source or "")  # 2021: the source snapshot, if any
        doc = {"status": status, "createdTime": created, "lastActionTime": last}
        if status in ("succeeded", "failed"):
            doc["finishedTime"] = _wire_time(self.wall(op.finish) - 0.0000003)
        if location is not None:
            doc["resourceLocation"] = location
        if message is not None:
            doc["message"] = message
        return doc

    def start_job(self, kind: str = "azure", *, outcome: str = "succeeded",
                  seconds: Optional[float] = None, queue_seconds: Optional[float] = None,
                  retry_after: Any = _SIM_DEFAULT, result: Any = None, error: Any = None,
                  base: Optional[str] = None) -> str:
        """Start an operation of another Azure service; returns the absolute URL a client
        polls (the header its 202 would carry). *kind* is its form on the wire:
        ``"azure"`` (the REST guidelines' status monitor, ``/jobs/{id}``), ``"read"`` (the
        same on Computer Vision Read 3.2's paths), ``"translator"`` or ``"language"``
        (those services' job shapes), ``"arm-async"`` (Resource Manager's
        ``Azure-AsyncOperation``: InProgress, then Succeeded, Failed or Canceled) or
        ``"arm-location"`` (its ``Location``: bare 202s, then 200 with the resource or 400
        with the error; ``arm-async`` jobs answer there too).

        It waits *queue_seconds*, runs *seconds* (default: the simulator's queue and take
        times) and ends *outcome* (``"succeeded"``, ``"failed"`` or ``"canceled"``); *error*
        (a message, a ``(code, message)`` pair or a dict) and *result* (JSON) replace the
        defaults. *retry_after*: whole seconds or None (no header); by default 1 for ARM,
        None for the others. *base* replaces :attr:`endpoint` in the URL.
        """
        with self._lock:
            job = self._add_job(kind, outcome=outcome, seconds=seconds,
                                queue_seconds=queue_seconds, retry_after=retry_after,
                                result=result, error=error)
        return self.job_url(job, base)

    def _add_job(self, kind, *, outcome="succeeded", seconds=None, queue_seconds=None,
                 retry_after=_SIM_DEFAULT, result=None, error=None):
        """:meth:`start_job` under the lock; returns the job."""
        for name, value, known in (("kind", kind, _SIM_JOB_KINDS),
                                   ("outcome", outcome, _SIM_JOB_OUTCOMES)):
            if value not in known:
                raise ValueError("%s must be one of %s, not %r" % (name, ", ".join(known), value))
        seconds = self.take_seconds if seconds is None else seconds
        queue = self.queue_seconds if queue_seconds is None else queue_seconds
        for name, value in (("seconds", seconds), ("queue_seconds", queue)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not 0 <= value < 1e9:
                raise ValueError("%s must be a number of seconds, not %r" % (name, value))
        if retry_after is _SIM_DEFAULT:
            retry_after = 1 if kind in _SIM_ARM_KINDS else None
        if retry_after is not None and (isinstance(retry_after, bool)
                                        or not isinstance(retry_after, int)
                                        or not 0 <= retry_after < 1e9):
            raise ValueError("retry_after must be a whole number of seconds or None, not %r"
                             % (retry_after,))
        import uuid
        now = self.now()
        job = _SimJob(str(uuid.uuid4()), kind, outcome, now, now + queue, now + queue + seconds,
                      retry_after, result, _sim_job_error(outcome, error))
        self.jobs[job.id] = job
        return job

    def job_url(self, job: _SimJob, base: Optional[str] = None, form: Optional[str] = None) -> str:
        """The URL a client polls *job* at, in the *form* of a kind (default: its own):
        ``Operation-Location``, ``Azure-AsyncOperation`` or ``Location``."""
        base = (base or self.endpoint).rstrip("/")
        form = form or job.kind
        if form in _SIM_JOB_PATHS:
            return "%s%s/%s" % (base, _SIM_JOB_PATHS[form][1], job.id)
        what = "operationStatuses" if form == "arm-async" else "operationResults"
        return "%s%s/%s/%s?api-version=%s" % (base, self._arm_prefix(), what, job.id,
                                             _SIM_ARM_API_VERSION)

    def _arm_prefix(self):
        return "/subscriptions/%s/providers/Microsoft.Simulator/locations/local" % (
            self.subscription,)

    def job_document(self, job: _SimJob) -> Dict[str, Any]:
        """The status document of *job* (an ``arm-location`` one answers ``azure``'s)."""
        now = self.now()
        state = job.state(now)
        if job.kind == "arm-async":
            doc = {"id": "%s/operationStatuses/%s" % (self._arm_prefix(), job.id),
                   "name": job.id,
                   "status": state.capitalize() if state in _SIM_JOB_OUTCOMES else "InProgress",
                   "startTime": _wire_time(self.wall(job.created))}
            if state in _SIM_JOB_OUTCOMES:
                doc["endTime"] = _wire_time(self.wall(job.finish))
            if state in ("failed", "canceled"):
                doc["error"] = dict(job.error)
            return doc
        last = {"notStarted": job.created, "running": now}.get(state, job.finish)
        created, last = _wire_time(int(self.wall(job.created))), _wire_time(int(self.wall(last)))
        if job.kind == "language":  # analyze-text 2023-04-01: one task fails, even on success
            doc = {"jobId": job.id, "createdDateTime": created, "lastUpdatedDateTime": last,
                   "status": _SIM_LANGUAGE_WORDS[state],
                   "tasks": {"completed": int(state == "succeeded"), "failed": 1,
                             "inProgress": 0, "total": 2, "items": []}}
            if state in ("succeeded", "failed"):
                doc["errors"] = [dict(job.error)] if state == "failed" else [
                    {"code": "InvalidDocument", "message": "Document text is empty."}]
            return doc
        if job.kind == "translator":  # a batch of Translator v1.1
            doc = {"id": job.id, "createdDateTimeUtc": created, "lastActionDateTimeUtc": last,
                   "status": _SIM_TRANSLATOR_WORDS[state],
                   "summary": {"total": 1, "failed": 0, "success": int(state == "succeeded"),
                               "inProgress": int(state == "running"),
                               "notYetStarted": int(state == "notStarted"),
                               "cancelled": int(state == "canceled"), "totalCharacterCharged": 0}}
        else:
            doc = {"status": state, "createdDateTime": created, "lastUpdatedDateTime": last}
        if state == "succeeded" and job.kind != "translator":
            doc["analyzeResult" if job.kind == "read" else "result"] = (
                job.result if job.result is not None else _sim_default_result(job))
        if state == "failed":
            doc["error"] = dict(job.error)
        return doc


def _sim_default_result(job):
    if job.kind != "read":
        return {"jobId": job.id}
    return {"version": "3.2.0", "modelVersion": "2022-04-30", "readResults": [{
        "page": 1, "angle": 0, "width": 338, "height": 479, "unit": "pixel", "lines": [{
            "boundingBox": [25, 14, 318, 14, 318, 59, 25, 59], "text": "NOTHING",
            "appearance": {"style": {"name": "other", "confidence": 0.971}},
            "words": [{"boundingBox": [27, 15, 294, 15, 294, 60, 27, 60], "text": "NOTHING",
                       "confidence": 0.994}]}]}]}


def _sim_error(status, code, message):
    return status, {"error": {"code": code, "message": message}}


def _sim_bad(message):
    return _sim_error(400, "BadArgument", message)


def _sim_server_class(host):
    """An ``http.server`` class for *host* (IPv6 if it has a colon) that skips ``getfqdn``
    on bind, logs a vanished client in one line, and can end the connections it serves."""
    import socket
    import socketserver
    from http.server import ThreadingHTTPServer

    class _Server(ThreadingHTTPServer):
        request_queue_size = 128
        daemon_threads = True
        address_family = socket.AF_INET6 if host and ":" in host else socket.AF_INET
        _open = set()
        _open_lock = _threading.Lock()

        def server_bind(self):
            socketserver.TCPServer.server_bind(self)
            self.server_name, self.server_port = str(self.server_address[0]), \
                self.server_address[1]

        def handle_error(self, request, client_address):
            # One line when the client went away (or stalled); a traceback for our errors.
            exc = _sys.exc_info()[1]
            log = _logging.getLogger("opstatus.simulator")
            where = "%s:%s" % tuple(client_address[:2]) if client_address else "?"
            if isinstance(exc, OSError):
                log.info("opstatus simulator: client %s went away (%s: %s)", where,
                         exc.__class__.__name__, exc)
            else:
                log.error("opstatus simulator: error while answering %s: %r", where, exc,
                          exc_info=True)

        def process_request(self, request, client_address):
            with self._open_lock:
                self._open.add(request)
            super().process_request(request, client_address)

        def shutdown_request(self, request):
            with self._open_lock:
                self._open.discard(request)
            super().shutdown_request(request)

        def close_connections(self):
            with self._open_lock:
                open_now = list(self._open)
            for sock in open_now:
                try:
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)
                except OSError:
                    pass

    return _Server


def _make_sim_handler():
    from http.server import BaseHTTPRequestHandler

    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go in two writes
        server_version = "FaceSimulator/1.0"
        sim: Simulator = None
        timeout = 5.0  # seconds a connection may idle (the simulator sets its own)

        def log_message(self, format, *args):  # silent
            pass

        def __getattr__(self, name):
            # Every method goes to the router: a JSON 404 or 405, not http.server's HTML 501.
            if name.startswith("do_"):
                return self._handle
            raise AttributeError(name)

        def _answer(self, status, doc=None, headers=(), close=False):
            body = b"" if doc is None else _json.dumps(doc, separators=(",", ":")).encode()
            self.send_response(status)
            if doc is not None:
                self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers:
                self.send_header(name, value)
            if close:
                self.send_header("Connection", "close")
            self.end_headers()
            if body and self.command != "HEAD":
                self.wfile.write(body)

        def send_error(self, code, message=None, explain=None):
            """http.server's own errors (a bad request line, headers too long), as JSON."""
            short = self.responses.get(code, ("Error",))[0]
            if getattr(self, "request_version", "") == "HTTP/0.9":
                self.request_version = "HTTP/1.0"
            self.command = getattr(self, "command", None)
            self._answer(*_sim_error(code, str(code), message or short), close=True)

        def _handle(self):
            sim = self.sim
            with sim._lock:
                sim.requests.append((self.command, self.path))
            if sim.slow:
                _time.sleep(sim.slow)
            refusal = self._refusal()
            if refusal is not None:
                return self._refuse(refusal)
            length, error = self._body_length()
            if error is not None:
                return self._answer(*error, close=True)
            body, error = self._read_json(length)
            if error is not None:
                return self._answer(*error)
            with sim._lock:
                sim._settle()
                answer = self._dispatch(body)
            self._answer(*answer)

        def _refusal(self):
            """The answer to a fault or a wrong key, before the body is read; or None."""
            sim = self.sim
            with sim._lock:
                if sim.server_errors > 0:
                    sim.server_errors -= 1
                    return _sim_error(sim.server_error_status, "InternalServerError",
                                      "The service is temporarily unavailable.")
            if not self._key_ok():
                return _sim_error(401, "401", _SIM_401)
            with sim._lock:
                if sim.rate_limit > 0:
                    sim.rate_limit -= 1
                    text = ("Try again in %s seconds." if sim.dialect == "2019"
                            else "Please retry after %s second(s).") % (sim.rate_limit_seconds,)
                    retry = sim.rate_limit_retry_after
                    headers = () if retry is None else (("Retry-After", str(retry)),)
                    return _sim_error(429, "429", "Rate limit is exceeded. " + text) + (headers,)
            return None

        def _refuse(self, answer):
            """Answer unread; then drop a small body (keeping the connection), or close."""
            length, error = self._body_length()
            close = error is not None or length > _SIM_DRAIN
            self._answer(*answer, close=close)
            while not close and length > 0:
                chunk = self.rfile.read(min(length, 16384))
                if not chunk:
                    break
                length -= len(chunk)

        def _key_ok(self):
            """The key (or beside Face ``Authorization: Bearer``), in constant time."""
            got = self.headers.get("Ocp-Apim-Subscription-Key")
            if got is None and self._face_parts(self.path.partition("?")[0]) is None:
                auth = self.headers.get("Authorization") or ""
                if auth[:7].lower() == "bearer ":
                    got = auth[7:].strip()
            import hmac
            return hmac.compare_digest((got or "").encode("utf-8", "surrogateescape"),
                                       self.sim.key.encode("utf-8", "surrogateescape"))

        def _body_length(self):
            """(Content-Length, None), or (0, the error answer) for a body not to read."""
            if self.headers.get("Transfer-Encoding") is not None:
                return 0, _sim_error(411, "LengthRequired",
                                     "Send the request body with a Content-Length.")
            raw = (self.headers.get("Content-Length") or "0").strip()
            if not (0 < len(raw) <= 15 and raw.isascii() and raw.isdigit()):
                return 0, _sim_bad("Content-Length is invalid.")
            length = int(raw)
            if length > self.sim.max_body:
                return length, _sim_error(413, "BadArgument", "Request body is too large.")
            return length, None

        def _read_json(self, length):
            """(the JSON body or None, None), or (None, the error answer)."""
            if not length:
                return None, None
            raw = self.rfile.read(length)
            if len(raw) < length:
                raise ConnectionAbortedError("the request body ended early")
            try:
                return _json.loads(raw.decode("utf-8")), None
            except (ValueError, RecursionError):
                return None, _sim_bad("JSON parsing error.")

        def _dispatch(self, body):
            path = self.path.partition("?")[0]
            parts = self._face_parts(path)
            routes = self._face_routes(parts) if parts is not None else self._job_routes(path)
            if routes is None:
                return _sim_error(404, "404", "Resource not found")
            route = routes.get("GET" if self.command == "HEAD" else self.command)
            if route is None:
                return _sim_error(405, "405", "Method not allowed") + (
                    (("Allow", ", ".join(sorted(routes))),),)
            return route(body)

        def _face_parts(self, path):
            """A Face path's parts after *api_path* (default's 2021 ``-preview`` too), or None."""
            api = self.sim.api_path.rstrip("/")
            for base in (api, api + "-preview") if api == FACE_API_PATH else (api,):
                if path == base or path.startswith(base + "/"):
                    return [p for p in path[len(base):].split("/") if p]
            return None

        def _face_routes(self, parts):
            if parts == ["snapshots"]:
                return {"POST": self._take, "GET": self._list}
            if len(parts) == 3 and parts[0] == "snapshots" and parts[2] == "apply":
                return {"POST": lambda body: self._apply(parts[1], body)}
            if len(parts) == 2 and parts[0] == "snapshots":
                return dict.fromkeys(("GET", "PATCH", "DELETE"),
                                     lambda body: self._snapshot(parts[1], body))
            if len(parts) == 2 and parts[0] == "operations":
                return {"GET": lambda body: self._operation(parts[1])}
            return None

        def _job_routes(self, path):
            parts = [p for p in path.split("/") if p]
            if parts == ["jobs"]:
                return {"POST": lambda body: self._start_job(None, body)}
            for kind, (start, where) in _SIM_JOB_PATHS.items():
                if path == start:
                    return {"POST": lambda body, kind=kind: self._start_job(kind, body)}
                if path.startswith(where + "/") and (len(parts) == 5 if kind == "read" else
                                                     path.count("/") == where.count("/") + 1):
                    return {"GET": lambda body, kind=kind: self._job_status(parts[-1], (kind,))}
            prefix = self.sim._arm_prefix() + "/"
            rest = path[len(prefix):].split("/") if path.startswith(prefix) else ()
            if len(rest) == 2 and rest[0] == "operationStatuses":
                return {"GET": lambda body: self._job_status(rest[1], _SIM_ARM_KINDS)}
            if len(rest) == 2 and rest[0] == "operationResults":
                return {"GET": lambda body: self._job_status(rest[1], _SIM_ARM_KINDS, True)}
            return None

        def _expired(self, snap):
            return self.sim.now() >= snap["_created"] + self.sim.snapshot_ttl

        def _live_snapshot(self, snap_id):
            snap = self.sim.snapshots.get(snap_id)
            return None if snap is None or self._expired(snap) else snap

        @staticmethod
        def _snapshot_doc(snap):
            return {k: v for k, v in snap.items() if not k.startswith("_")}

        def _take(self, body):
            """Start a take, once checked in the order the service documents (400s, 404)."""
            import uuid
            if not isinstance(body, dict):
                return _sim_bad("Request body is invalid.")
            kind = body.get("type")
            if not isinstance(kind, str) or kind.lower() not in _SIM_TYPES:
                return _sim_bad("Snapshot type is invalid.")
            kind, object_id = kind.lower(), body.get("objectId")
            scope, user_data = body.get("applyScope"), body.get("userData")
            error = _sim_object_id_error(kind, object_id) or _sim_scope_error(scope) or \
                _sim_user_data_error(user_data)
            if error is not None:
                return error
            sim, type_name = self.sim, _SIM_TYPES[kind]
            if sim.require_objects and (kind, object_id) not in sim.objects:
                return _sim_error(404, "%sNotFound" % type_name,
                                  "%s is not found." % _SIM_OBJECT_NAMES[kind])
            snap_id, created = str(uuid.uuid4()), sim.now()
            def done(finished):
                sim.snapshots[snap_id] = {
                    "id": snap_id, "account": sim.account, "type": type_name,
                    "applyScope": scope, "userData": user_data,
                    "createdTime": _wire_time(sim.wall(created)),
                    "lastUpdateTime": _wire_time(sim.wall(finished)), "_created": finished}
            op = sim._new_operation("take", sim.take_seconds, "/snapshots/" + snap_id, done)
            return 202, None, sim._accepted_headers(op)

        def _list(self, body):
            query = _parse_qs(self.path.partition("?")[2])
            kind = (query.get("type") or [""])[0].lower()
            scopes = set(",".join(query.get("applyScope") or []).lower().split(",")) - {""}
            return 200, [self._snapshot_doc(s) for s in self.sim.snapshots.values()
                         if not self._expired(s)
                         and (not kind or s["type"].lower() == kind)
                         and (not scopes or scopes & {a.lower() for a in s["applyScope"]})]

        def _snapshot(self, snap_id, body):
            """Get (or HEAD), delete or update (PATCH) a snapshot."""
            snap = self._live_snapshot(snap_id)
            if snap is None:
                return _sim_error(404, "SnapshotNotFound", "Snapshot is not found.")
            if self.command == "DELETE":
                del self.sim.snapshots[snap_id]
                return 200, None
            if self.command != "PATCH":
                return 200, self._snapshot_doc(snap)
            if not isinstance(body, dict):
                return _sim_bad("Request body is invalid.")
            error = _sim_user_data_error(body.get("userData")) or (
                _sim_scope_error(body["applyScope"]) if "applyScope" in body else None)
            if error is not None:
                return error
            for field in ("userData", "applyScope"):
                if field in body:
                    snap[field] = body[field]
            snap["lastUpdateTime"] = _wire_time(self.sim.wall())
            return 200, None

        def _apply(self, snap_id, body):
            sim = self.sim
            if not isinstance(body, dict):
                return _sim_bad("Request body is invalid.")
            snap = self._live_snapshot(snap_id)
            if snap is None:
                return _sim_error(404, "SnapshotNotFound", "Snapshot is not found.")
            kind, object_id = snap["type"].lower(), body.get("objectId")
            error = _sim_object_id_error(kind, object_id)
            if error is not None:
                return error
            if body.get("mode", "CreateNew") != "CreateNew":
                return _sim_bad("Apply mode is invalid.")
            if (kind, object_id) in sim.objects:
                return _sim_error(409, "ConcurrentOperationConflict",
                                  "There is a conflict operation on resource %s, please "
                                  "try later." % object_id)
            sim.objects.add((kind, object_id))
            op = sim._new_operation("apply", sim.apply_seconds, "/%s/%s" % (kind, object_id),
                                    None, source=snap_id)
            return 202, None, sim._accepted_headers(op)

        def _operation(self, op_id):
            op = self.sim.operations.get(op_id)
            if op is None:
                return _sim_error(404, "OperationNotFound", "Operation is not found.")
            return 200, self.sim.operation_document(op)

        def _base(self):
            """The origin the request came to (its Host, if sane), for the URLs handed out."""
            host = self.headers.get("Host") or ""
            return "http://" + host if _SIM_HOST.fullmatch(host) else self.sim.endpoint

        @staticmethod
        def _retry_after(job):
            return () if job.retry_after is None else (("Retry-After", str(job.retry_after)),)

        def _start_job(self, kind, body):
            sim = self.sim
            options = dict(body) if isinstance(body, dict) else {}
            options.update(_parse_qsl(self.path.partition("?")[2]))
            try:
                job = sim._add_job(kind or options.get("kind", "azure"),
                                   **_sim_job_options(options))
            except ValueError as exc:
                return _sim_error(400, "InvalidRequest", str(exc))
            base = self._base()
            if job.kind not in _SIM_ARM_KINDS:
                headers = [("Operation-Location", sim.job_url(job, base))]
            else:
                headers = [("Location", sim.job_url(job, base, "arm-location"))]
                if job.kind == "arm-async":
                    headers.insert(0, ("Azure-AsyncOperation", sim.job_url(job, base)))
            return 202, None, tuple(headers) + self._retry_after(job)

        def _job_status(self, job_id, kinds, result=False):
            """A job's status document, or (*result*) what its ``Location`` answers."""
            sim, job = self.sim, self.sim.jobs.get(job_id)
            if job is None or job.kind not in kinds:
                return _sim_error(404, "NotFound", "The operation was not found.")
            state = job.state(sim.now())
            if not result:
                ended = state in _SIM_JOB_OUTCOMES
                return 200, sim.job_document(job), () if ended else self._retry_after(job)
            if state == "succeeded":  # the resource the ARM job made
                return 200, {"id": "/subscriptions/%s/resourceGroups/opstatus-simulator/providers/"
                                   "Microsoft.Simulator/jobs/%s" % (sim.subscription, job.id),
                             "name": job.id, "type": "Microsoft.Simulator/jobs",
                             "properties": {"provisioningState": "Succeeded",
                                            "result": {} if job.result is None else job.result}}
            if state in _SIM_JOB_OUTCOMES:
                return 400, {"error": dict(job.error)}
            location = ("Location", sim.job_url(job, self._base(), "arm-location"))
            return 202, None, (location,) + self._retry_after(job)

    return _Handler


def _sim_object_id_error(kind, object_id):
    """The 400 of a bad objectId, or None."""
    if not isinstance(object_id, str) or not _OBJECT_ID.fullmatch(object_id):
        return _sim_bad("%s ID is invalid." % _SIM_OBJECT_NAMES[kind])
    return None


def _sim_scope_error(scope):
    """The 400 of a bad ``applyScope`` (repeated ids included), or None."""
    if not isinstance(scope, list) or not scope or not all(
            isinstance(s, str) and _UUID.fullmatch(s) for s in scope):
        return _sim_bad("Apply scope is invalid.")
    if len({s.lower() for s in scope}) != len(scope):
        return _sim_bad("Apply scope has duplicate subscription ids.")
    return None


def _sim_user_data_error(user_data):
    if user_data is not None and not isinstance(user_data, str):
        return _sim_bad("Request body is invalid.")
    if user_data is not None and len(user_data) > MAX_USER_DATA:
        return _sim_bad("'userData' is too long.")
    return None


def _sim_job_options(options):
    """The keyword arguments of :meth:`Simulator._add_job` that the query or JSON body of
    ``POST /jobs`` asks for."""
    kwargs = {"outcome": options.get("outcome", "succeeded"),
              "error": options.get("error"), "result": options.get("result")}
    for field, keyword in (("seconds", "seconds"), ("queueSeconds", "queue_seconds"),
                           ("retryAfter", "retry_after")):
        if field not in options:
            continue
        text, integer = options[field], field == "retryAfter"
        if integer and text in (None, "", "none"):
            kwargs[keyword] = None
            continue
        try:
            value = int(text) if integer else float(text)
        except (TypeError, ValueError):
            value = -1
        if not 0 <= value < 1e9:
            raise ValueError("'%s' must be a non-negative %s, not %r"
                             % (field, "integer" if integer else "number", text))
        kwargs[keyword] = value
    return kwargs


###############################################################################
# Command line ################################################################
###############################################################################

#: Exit statuses of the command line, one meaning each (listed by ``--help``).
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_TIMEOUT, EXIT_NETWORK = 0, 1, 2, 3, 4
EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 130, 141  # 141: 128 + SIGPIPE, as a shell says

_EPILOG_EXIT = """exit status:
  0    succeeded (take, apply: the operation started; parse: the document is valid)
  1    the operation failed or was canceled
  2    usage error or invalid input
  3    the deadline passed (--timeout), whether or not the service ever answered
  4    an HTTP or network error ended it
  130  interrupted (Ctrl-C)
  141  the output was closed (broken pipe)"""

_EPILOG_ENV = """environment:
  OPSTATUS_ENDPOINT  the resource endpoint, when --endpoint is not given
  OPSTATUS_KEY       the subscription key (or name another variable with --key-env);
                     --key is refused: other users of the machine could read it"""


class _UsageError(Exception):
    """Internal: a mistake of the user's, printed as one line, exit 2."""


class _Interrupted(KeyboardInterrupt):
    """Internal: Ctrl-C; ``args[0]`` lists the lines saying how to carry on."""


class _RealTime:
    """The clocks and sleep of the command line (tests put a fake in ``_cli_time``)."""
    monotonic = staticmethod(lambda: _time.monotonic())  # looked up at each call
    time = staticmethod(lambda: _time.time())
    sleep = staticmethod(lambda seconds: _time.sleep(seconds))


_cli_time = _RealTime()


def _dash(stream):
    """An em dash, or ``-`` where the stream cannot encode one."""
    try:
        "\u2014\u2026".encode(getattr(stream, "encoding", None) or "ascii")
    except (LookupError, UnicodeEncodeError):
        return "-"
    return "\u2014"


class _Console:
    """Where a command writes: results on stdout, the rest on stderr, a line at
    a time. A service's text goes through :meth:`safe` or :meth:`json`."""

    def __init__(self, out, err, verbose=0):
        self.out, self.err, self.verbose = out, err, verbose
        self.scrub = _Scrubber()
        self._secrets: list = []
        self.lock = _threading.RLock()
        self.live = None  # the live display: cleared before a line on stderr, then redrawn
        self.vocabulary = FACE  # of the operations shown (--json adds others' documents)

    def secret(self, value):  # a key, masked wherever it would be shown
        if value and len(value) >= 8:
            self.scrub.add(value)
            self._secrets.append(value)

    def mask(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def safe(self, text: Any) -> str:
        return _printable(self.scrub(str(text)))

    def json(self, value: Any) -> str:
        return _json.dumps(self._masked(value))

    def _masked(self, value):
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, _Mapping):
            return {self.mask(str(k)): self._masked(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._masked(v) for v in value]
        return value

    def write(self, text):  # the caller made *text* safe
        with self.lock:
            self.out.write(text)
            self.out.flush()

    def say(self, text):
        """One line ``opstatus: TEXT`` on stderr, made safe."""
        self.line("opstatus: " + self.safe(text))

    def line(self, text):
        with self.lock:
            live = self.live
            if live is not None:
                live.clear()
            self.err.write(text + "\n")
            self.err.flush()
            if live is not None:
                live.draw()


def _error_text(exc: BaseException) -> str:
    """An error's text without its URL (``HTTP 401: Access denied``, the code once)."""
    if isinstance(exc, HTTPError):
        text = "HTTP %d" % exc.status
        if exc.code and exc.code.strip() != str(exc.status):
            text += " " + exc.code
        return text + (": " + exc.message if exc.message else "")
    text = str(exc)
    url = getattr(exc, "url", None)
    if isinstance(url, str) and url and text.endswith(" (%s)" % url):
        text = text[: -len(url) - 3]
    return text


def _describe_error(exc: BaseException) -> str:
    """The whole text of an error that ended a command."""
    if isinstance(exc, HTTPError):
        return _error_text(exc) + (" (%s)" % exc.url if exc.url else "")
    text = str(exc)
    cause = getattr(exc, "last_error", None)
    if isinstance(cause, HTTPError):
        text = text.replace(str(cause), _describe_error(cause))
    return text


def _exit_status(exc: BaseException) -> int:
    """The exit status of an error that ended a poll (see _EPILOG_EXIT): a timeout
    with or without an answer is 3; the command line cancels only on Ctrl-C."""
    for kinds, status in ((OperationFailed, EXIT_FAILED), (PollTimeout, EXIT_TIMEOUT),
                          (PollCancelled, EXIT_INTERRUPTED),
                          ((HTTPError, NetworkError, ResponseTooLarge, StatusDocumentError),
                           EXIT_NETWORK)):
        if isinstance(exc, kinds):
            return status
    return EXIT_USAGE


def _terminal_time(dt: _datetime.datetime) -> str:
    """A timestamp for the terminal: UTC, always six fraction digits (columns line up)."""
    if dt.tzinfo is not None and dt.utcoffset() is not None:
        dt = dt.astimezone(_UTC)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (
        dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second, dt.microsecond)


def _describe_status(st: OperationStatus, safe: Callable[[Any], str]=_printable) -> str:
    lines = ["status:       %s" % st.status.value]
    if st.created_time is not None:
        lines.append("created:      %s" % _terminal_time(st.created_time))
    if st.last_action_time is not None:
        took = "" if st.duration is None else " (+%.3f s)" % st.duration.total_seconds()
        lines.append("last action:  %s%s" % (_terminal_time(st.last_action_time), took))
    if st.message is not None:
        lines.append("message:      %s" % safe(st.message))
    if st.resource_location is not None:
        ref = st.resource
        lines.append("resource:     %s%s" % (safe(st.resource_location), " (%s %s)" % (
            safe(ref.kind), safe(ref.id)) if ref else ""))
    for key, value in st.extra.items():
        lines.append("extra:        %s = %s" % (safe(key), safe(_short_repr(value, 200))))
    return "\n".join(lines)


def _read_input(name, limit, error):
    """At most *limit* bytes of the file *name* (``-``: stdin)."""
    try:
        if name == "-":
            return getattr(_sys.stdin, "buffer", _sys.stdin).read(limit)
        with open(name, "rb") as fh:
            return fh.read(limit)
    except OSError as exc:
        raise _UsageError(error % (name, exc.strerror or exc))


def _cmd_parse(args, con):
    data = _read_input(args.file, MAX_DOCUMENT_BYTES + 1, "cannot read %s: %s")
    status = OperationStatus.from_json(data)
    if args.json:
        con.write(con.json(status.to_dict(include_extra=True)) + "\n")
    else:
        con.write(_describe_status(status, con.safe) + "\n")
    return EXIT_OK


def _type_error(message):
    import argparse
    return argparse.ArgumentTypeError(message)


def _seconds(text):
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):  # NaN too
        raise _type_error("expected a number of seconds >= 0, not %r" % text)
    return value


def _positive_seconds(text):
    value = _seconds(text)
    if value <= 0:
        raise _type_error("expected a number of seconds > 0, not %r" % text)
    return value


def _snapshot_type(text):
    kinds = {k.lower(): k for k in SNAPSHOT_TYPES}
    if text.lower() not in kinds:
        raise _type_error("expected one of %s, not %r" % (", ".join(SNAPSHOT_TYPES), text))
    return kinds[text.lower()]


#: The ``--key-env`` values shown (any other may be a key given there by mistake).
_SHOWN_VARIABLE = _LazyRegex(r"[A-Z_][A-Z0-9_]{0,63}")


def _unset(name: str) -> str:
    if _SHOWN_VARIABLE.fullmatch(name):
        return "set %s to the subscription key (it is never read from the command line)" % name
    return "the variable that --key-env names is not set (its name is not shown, in case " \
           "it is a key: a key is never read from the command line)"


def _connection_options(args, con, *, need_endpoint):
    endpoint = args.endpoint or _os.environ.get("OPSTATUS_ENDPOINT") or None
    if need_endpoint and not endpoint:
        raise _UsageError("no endpoint: pass --endpoint URL or set OPSTATUS_ENDPOINT")
    if args.no_key:
        if args.key_env:
            raise _UsageError("--no-key and --key-env contradict each other")
        key = None
    else:
        key_env = args.key_env or "OPSTATUS_KEY"
        try:
            key = _os.environ.get(key_env) or None
        except ValueError:  # a NUL in the name
            key = None
        if key is None:
            raise _UsageError("no key: %s; or pass --no-key when the URL or a plugin carries "
                              "the credential" % _unset(key_env))
        con.secret(key)
    if endpoint is not None:
        api_base(endpoint, allow_http=args.allow_http)
    if args.cafile is not None and not _os.path.isfile(args.cafile):
        raise _UsageError("--cafile %s: no such file" % args.cafile)
    return endpoint, key


def _poller_options(args):
    try:
        policy = RetryPolicy(**{name: getattr(args, name) for name in ("floor", "cap")
                                if getattr(args, name) is not None})
    except ValueError as exc:
        raise _UsageError(str(exc))
    return dict(timeout=args.timeout or None, policy=policy, allow_http=args.allow_http,
                cafile=args.cafile, request_timeout=args.request_timeout,
                clock=_cli_time.monotonic, vocabulary=getattr(args, "vocabulary", None))


_BARE_OPERATION_ID = _LazyRegex(r"[A-Za-z0-9][A-Za-z0-9._~-]{0,199}")


def _operation_argument(text: str) -> str:
    """What ``watch`` was given (a URL, an id, an ``Operation-Location: …`` line,
    ``take --json``'s document) as an Operation-Location."""
    value = text.strip()
    if value.startswith("{"):
        try:
            doc = _json.loads(value)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            found = doc.get("operationUrl") or doc.get("operationLocation")
            if isinstance(found, str):
                value = found.strip()
    name, colon, rest = value.partition(":")
    if colon and name.strip().lower() == "operation-location":
        value = rest.strip()
    if _BARE_OPERATION_ID.fullmatch(value):
        value = "/operations/" + value
    return value


def _check_location(location, endpoint, args, con):
    if location.startswith("/") and not location.startswith("//") and endpoint is None:
        raise _UsageError("%s is relative: pass --endpoint or set OPSTATUS_ENDPOINT"
                          % con.safe(redact_url(location)))
    return resolve_operation_url(location, endpoint, allow_http=args.allow_http)


def _log_records(logger, level, show):
    """Pass *logger*'s records from *level* on to ``show(record, text)``; its undoing."""
    class Handler(_logging.Handler):
        def emit(self, record):
            try:
                text = record.getMessage()
            except Exception:  # a plugin's malformed log call
                text = str(record.msg)
            show(record, text)
    handler, saved = Handler(level), logger.level
    if level == _logging.DEBUG:
        logger.setLevel(level)
    logger.addHandler(handler)
    def undo():
        logger.removeHandler(handler)
        logger.setLevel(saved)
    return undo


def _log_to(con):
    """Show the ``opstatus`` loggers' records on stderr, made safe: warnings, all with
    -vv, and with -v each HTTP exchange (``opstatus.http``). Returns what undoes it."""
    def show(record, text):
        if record.name == _http_log.name:
            return  # shown by the handler below
        if record.name != "opstatus":
            text = "%s: %s" % (record.name, text)
        elif not text.startswith("opstatus"):
            text = "opstatus: " + text
        con.line(con.safe(text))
    level = _logging.DEBUG if con.verbose >= 2 else _logging.WARNING
    undo = [_log_records(_logging.getLogger("opstatus"), level, show)]
    if con.verbose >= 1:
        undo.append(_log_records(_http_log, _logging.DEBUG,
                                 lambda record, text: con.say(con.safe(text))))
    return lambda: [step() for step in reversed(undo)]


def _plugin_rows(pm):
    """(name, version, origin, hooks) of each plugin of *pm*."""
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    order = [name for name in vars(HookSpecs) if name.startswith("opstatus_")]
    rows = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:  # blocked
            rows.append((name, "-", "blocked (OPSTATUS_DISABLED_PLUGINS)", []))
            continue
        dist = dists.get(id(plugin))
        if isinstance(plugin, _BuiltinPlugin):
            version, origin = __version__, "built in (trylast)"
        elif dist is not None:
            version = getattr(dist, "version", "?")
            origin = "entry point of %s" % getattr(dist, "project_name", "?")
        else:
            version = getattr(_sys.modules.get(getattr(plugin, "__module__", ""), None),
                              "__version__", "-")
            origin = "registered from %s" % (getattr(plugin, "__name__", None)
                                            or getattr(plugin, "__module__", "code"))
        hooks = {caller.name for caller in (pm.get_hookcallers(plugin) or ())}
        rows.append((name, str(version), origin, [h for h in order if h in hooks]))
    return rows


def _say_setup(con, args):
    """-v: the plugins, and what sends the requests (in the order the core tries them)."""
    pm, transport = None, "built-in (HTTP/1.1 over sockets)"
    if _import_pluggy() is None:
        con.say("plugins: none (pluggy is not installed)")
    else:
        try:
            pm = plugin_manager()
        except PluginError as exc:
            con.say("plugins: %s" % exc)
            return
        con.say("plugins: %s" % ", ".join(
            "%s %s" % (name, version) if version != "-" else "%s (%s)" % (name, origin)
            for name, version, origin, _hooks in _plugin_rows(pm)))
        callers = pm.hook.opstatus_send_request.get_hookimpls()
        plugins = [impl.plugin_name for impl in reversed(callers)
                   if not isinstance(impl.plugin, _BuiltinPlugin)]
        if plugins and getattr(args, "cafile", None) is not None:
            transport += ": --cafile is honoured by the built-in one only, so the " \
                         "transport plugin %s is not used" % plugins[0]
        elif plugins:
            transport = "plugin %s (then the %s for requests it passes on)" % (
                ", then ".join(plugins), transport)
    con.say("transport: %s" % transport)


def _status_document(st: OperationStatus, con: _Console) -> Dict[str, Any]:
    """*st* as --json prints it, with the timestamps as the service wrote them."""
    doc = st.to_dict(include_extra=True)
    wire = st.document
    if con.vocabulary is not FACE:  # another service: its own words and body
        if st.raw_status is not None:
            doc["status"] = st.raw_status
        if st.error_code is not None:
            doc["errorCode"] = st.error_code
        doc["document"] = dict(wire)
        return doc
    for key, value in (wire or {}).items():
        name = _WIRE_BY_FIELD.get(_FIELD_BY_WIRE.get(str(key).lower(), ""))
        if name in ("createdTime", "lastActionTime") and name in doc \
                and isinstance(value, str) and value[-1:] in ("Z", "z"):
            try:
                if parse_datetime(value).replace(tzinfo=None) == parse_datetime(
                        doc[name]).replace(tzinfo=None):
                    doc[name] = value
            except ValueError:
                pass
    return doc


def _isatty(stream):
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class _Live:
    """What _Display and _Board share: the start, the width, the idle wait, and
    retried errors told on stderr (the same at most once a minute)."""

    def __init__(self, con, tty):
        import shutil
        self.con, self.tty = con, tty
        self.started = _cli_time.monotonic()
        self._told: Dict[str, float] = {}
        self.dash = _dash(con.out)
        self.columns = max(20, shutil.get_terminal_size((80, 24)).columns) - 1

    def fit(self, line):  # a line that wraps cannot be redrawn in place
        return line if len(line) <= self.columns else line[: self.columns - 3] + "..."

    def tell(self, error, delay, errors, where):
        text, now = _error_text(error), _cli_time.monotonic()
        told = self._told.get(text)
        if told is not None and now - told < 60.0:
            return
        self._told[text] = now
        self.con.say("%s %s retry %d in %.1f s (%s)"
                     % (text, _dash(self.con.err), errors, delay, where))

    def wait(self, end):  # on the CLI clock, redrawing every 0.2 s on a terminal
        while True:
            left = end - _cli_time.monotonic()
            if left <= 0:
                return
            self.draw()
            _cli_time.sleep(min(left, 0.2) if self.tty else left)

    def finish(self):
        if self.con.live is self:
            self.con.live = None


class _Display(_Live):
    """The statuses of one poll: a live line on a terminal (with any error being
    retried), a line per change otherwise, or a JSON document per change."""

    def __init__(self, con, *, json_mode, tty, final_only=False):
        super().__init__(con, tty and not json_mode)
        self.json_mode, self.final_only = json_mode, final_only
        self.where = ""
        self.last: Optional[OperationStatus] = None
        self.due: Optional[float] = None  # the next request, on the CLI clock
        self.trouble: Optional[Tuple[str, int]] = None  # error retried, errors
        self.pending = None  # a retry to tell on stderr when its wait begins
        self._drawn = 0

    def elapsed(self):
        return _cli_time.monotonic() - self.started

    def status(self, st: OperationStatus) -> None:
        changed = self.last is None or self.last.status is not st.status
        self.last = st
        self.trouble = self.pending = None
        if self.json_mode:
            if (changed and not self.final_only) or st.is_terminal:
                self.con.write(self.con.json(_status_document(st, self.con)) + "\n")
        elif self.tty:
            self.draw()
        elif changed:
            self.con.write("%-10s  %7.1fs%s\n" % (
                st.status.value, self.elapsed(), self._since_action(st)))

    def retrying(self, error, delay, errors):
        self.trouble = (_error_text(error), errors)
        self.pending = (error, errors)

    @staticmethod
    def _since_action(st):
        if st.last_action_time is None:
            return ""
        ago = _cli_time.time() - st.last_action_time.timestamp()
        return "  last action %.1fs ago" % max(0.0, ago)

    def _line(self):
        state = self.last.status.value if self.last is not None else "waiting"
        line = "%-10s  elapsed %6.1fs" % (state, self.elapsed())
        if self.last is not None:
            line += self._since_action(self.last)
        left = None if self.due is None else max(0.0, self.due - _cli_time.monotonic())
        if self.trouble is not None:
            text, errors = self.trouble
            line += "  %s %s retry %d" % (self.con.safe(text), self.dash, errors)
            if left is not None:
                line += " in %.1f s" % left
        elif left is not None:
            line += "  next poll in %.1fs" % left
        return self.fit(line)

    def draw(self):
        if not self.tty:
            return
        with self.con.lock:
            line = self._line()
            pad = max(0, self._drawn - len(line))
            self._drawn = len(line)
            self.con.out.write("\r" + line + " " * pad)
            self.con.out.flush()

    def clear(self):
        if self._drawn:
            self.con.out.write("\r" + " " * self._drawn + "\r")
            self.con.out.flush()
            self._drawn = 0

    def finish(self):  # the last state stays on its line
        super().finish()
        if self.tty and (self.last is not None or self.trouble is not None):
            self.due = None
            self.draw()
            self.con.write("\n")

    def sleep(self, seconds):
        """The poller's sleep: the live line counts down, or a retried error is told."""
        self.due = _cli_time.monotonic() + seconds
        if self.pending is not None and not self.tty:
            error, errors = self.pending
            self.tell(error, seconds, errors, self.where)
        self.pending = None
        try:
            self.wait(self.due)
        finally:
            self.due = None


def _watch_poller(location, endpoint, key, args, con, make=Poller):
    """Step the operation of ``make(location, ...)`` (a new Poller) to its end,
    showing each status and retried error; the exit status, or raises what ended it."""
    display = _Display(con, json_mode=args.json, tty=_isatty(con.out),
                       final_only=args.command == "start")
    save = getattr(args, "save_token", None)
    poller = make(location, endpoint=endpoint, key=key, **_poller_options(args))
    con.vocabulary = poller.vocabulary
    display.where = redact_url(poller.url)
    if display.tty:
        con.live = display
    try:
        while True:
            step = poller.step()
            if step.status is not None:
                display.status(step.status)
                if save:
                    _save_token(save, poller)
            elif step.error is not None:
                display.retrying(step.error, step.delay, step.errors)
            if step.done:
                break
            display.sleep(step.delay)
    except KeyboardInterrupt:
        display.finish()
        raise _Interrupted(_resume_hint(poller, args, con)) from None
    finally:
        poller.close()
        display.finish()
    if step.error is not None:
        raise step.error  # OperationFailed for a failure
    final = step.status
    ref = final.resource
    if args.json:
        return EXIT_OK
    if ref is not None and ref.kind == "snapshot":
        con.write("snapshot id: %s\n" % con.safe(ref.id))
    elif ref is not None:
        con.write("target: %s\n" % con.safe(ref.path))
    elif final.resource_location:
        con.write("resource: %s\n" % con.safe(final.resource_location))
    return EXIT_OK


def _again_options(args):
    """The options a later ``watch`` of the same operation needs again."""
    words = []
    if args.key_env and _SHOWN_VARIABLE.fullmatch(args.key_env):
        words += ["--key-env", args.key_env]
    if args.allow_http:
        words.append("--allow-http")
    if args.cafile:
        words += ["--cafile", args.cafile]
    if getattr(args, "vocabulary", None) not in (None, "face"):
        words += ["--vocabulary", args.vocabulary]
    return "".join(" " + _shlex.quote(w) for w in words)


def _resume_hint(poller, args, con):
    """What to run to carry on after Ctrl-C: lines for main to print."""
    lines = ["the operation goes on at the service"]
    save = getattr(args, "save_token", None)
    if save:
        try:
            _save_token(save, poller)  # the schedule as it stands now
        except (OSError, ValueError):
            pass
        return lines + ["resume with: opstatus watch%s --resume %s"
                        % (_again_options(args), _shlex.quote(_os.path.abspath(save)))]
    return lines + ["watch it again with: opstatus watch%s %s"
                    % (_again_options(args), _shlex.quote(poller.url)),
                    "(with --save-token FILE a watch can be resumed where it stopped)"]


def _read_resume(value):
    """--resume takes a token or the path of a file holding one."""
    if value.lstrip().startswith("{"):
        return value
    if not _os.path.isfile(value):
        raise _UsageError("--resume: %s is neither a token nor a file" % _short_repr(value))
    try:
        with open(value, "rb") as fh:
            return fh.read(MAX_TOKEN_BYTES + 1).decode("utf-8", "replace")
    except OSError as exc:
        raise _UsageError("cannot read %s: %s" % (value, exc.strerror or exc))


def _save_token(path, poller):
    """Write the poller's resume token to *path*, atomically, owner-readable only."""
    tmp = "%s.%d.tmp" % (path, _os.getpid())
    fd = _os.open(tmp, _os.O_WRONLY | _os.O_CREAT | _os.O_TRUNC, 0o600)
    with _os.fdopen(fd, "w") as fh:
        fh.write(poller.resume_token() + "\n")
    _os.replace(tmp, path)


def _cmd_watch(args, con):
    endpoint, key = _connection_options(args, con, need_endpoint=False)
    save = args.save_token
    folder = _os.path.dirname(_os.path.abspath(save or "."))
    if save and (_os.path.isdir(save) or not _os.path.isdir(folder)
                 or not _os.access(folder, _os.W_OK)):
        raise _UsageError("--save-token %s: cannot write a file there" % save)
    if args.resume:
        if args.operation:
            raise _UsageError("give either --resume or OPERATION_LOCATION, not both")
        def resumed(token, **options):
            try:
                return Poller.from_resume_token(token, **options)
            except ResumeTokenError as exc:
                raise _UsageError(str(exc))
        return _watch_poller(_read_resume(args.resume), endpoint, key, args, con, make=resumed)
    if not args.operation:
        raise _UsageError("give an OPERATION_LOCATION (or --resume TOKEN_OR_FILE)")
    locations = [_operation_argument(text) for text in args.operation]
    for location in locations:
        _check_location(location, endpoint, args, con)
    if len(locations) == 1:
        return _watch_poller(locations[0], endpoint, key, args, con)
    if args.save_token:
        raise _UsageError("--save-token keeps the token of one operation: give only one")
    con.vocabulary = vocabulary(args.vocabulary or "face")
    return _watch_many(locations, endpoint, key, args, con)


class _Board(_Live):
    """Several operations, a row each: redrawn in place on a terminal (cut at its
    width, but whole the last time), or one line per change otherwise."""

    def __init__(self, con, labels, *, tty):
        super().__init__(con, tty)
        self.labels = [con.safe(label) for label in labels]
        self.width = max(len(label) for label in self.labels)
        self.state = ["waiting"] * len(labels)
        self.final: list = [None] * len(labels)  # the text of an ended one
        self.trouble: list = [None] * len(labels)  # (text, errors, due)
        self._shown = 0  # rows on the screen
        self._whole = False

    def row(self, index):
        text = self.final[index]
        if text is None:
            now = _cli_time.monotonic()
            text = "%-10s  %6.1fs" % (self.state[index], now - self.started)
            if self.trouble[index] is not None:
                error, errors, due = self.trouble[index]
                text += "  %s %s retry %d in %.1f s" % (error, self.dash, errors,
                                                         max(0.0, due - now))
        return "%-*s  %s" % (self.width, self.labels[index], text)

    def draw(self):
        if not self.tty:
            return
        with self.con.lock:
            rows = [self.row(i) for i in range(len(self.labels))]
            if not self._whole:
                rows = [self.fit(row) for row in rows]
            self.clear()
            self.con.out.write("".join(row + "\n" for row in rows))
            self.con.out.flush()
            self._shown = len(rows)

    def clear(self):
        if self._shown:
            self.con.out.write("\x1b[%dF\x1b[J" % self._shown)
            self._shown = 0

    def _show(self, index):
        if self.tty:
            self.draw()
        else:
            self.con.write(self.row(index) + "\n")

    def changed(self, index, st):
        self.trouble[index] = None
        if st.status.value != self.state[index] and not st.is_terminal:
            self.state[index] = st.status.value
            self._show(index)

    def retrying(self, index, error, delay, errors):
        if self.tty:
            self.trouble[index] = (self.con.safe(_error_text(error)), errors,
                                   _cli_time.monotonic() + delay)
        else:
            self.tell(error, delay, errors, self.labels[index])

    def ended(self, index, text):
        self.trouble[index] = None
        self.final[index] = text
        self._show(index)

    def finish(self):
        super().finish()
        if self.tty:
            self._whole = True
            self.draw()

    def sleep(self, seconds):  # the watcher's idle wait
        self.wait(_cli_time.monotonic() + seconds)


def _label(location: str) -> str:
    """A row's name of an operation: its redacted location, at most 60 characters."""
    label = redact_url(location)
    if len(label) > 60 and "://" in label:
        label = "/" + label.split("://", 1)[1].partition("/")[2]
    return label if len(label) <= 60 else "..." + label[-57:]


def _watch_many(locations, endpoint, key, args, con):
    labels = [_label(loc) for loc in locations]
    tty = _isatty(con.out) and not args.json
    board = _Board(con, labels, tty=tty)
    last = {}
    def on_status(index, st):
        if args.json:
            if last.get(index) is not st.status or st.is_terminal:
                doc = _status_document(st, con)
                doc["operationLocation"] = locations[index]
                con.write(con.json(doc) + "\n")
        else:
            board.changed(index, st)
        last[index] = st.status
    def on_step(index, step):
        if step.status is None and step.error is not None:
            board.retrying(index, step.error, step.delay, step.errors)
    watcher = Watcher(locations, endpoint=endpoint, key=key, on_status=on_status,
                      on_step=on_step, sleep=board.sleep, **_poller_options(args))
    if tty:
        con.live = board
        board.draw()
    worst = EXIT_OK
    try:
        for outcome in watcher:  # each outcome as it comes
            error = outcome.error
            if error is not None:
                worst = max(worst, _exit_status(error) if isinstance(error, OpStatusError)
                            else EXIT_NETWORK)
                if args.json:
                    con.say("error: %s: %s" % (labels[outcome.index], _describe_error(error)))
                else:
                    board.ended(outcome.index, "error: %s" % con.safe(_describe_error(error)))
            elif not args.json:
                ref = outcome.status.resource
                board.ended(outcome.index, "%-10s  %6.1fs  %s" % (
                    outcome.status.status.value, _cli_time.monotonic() - board.started,
                    con.safe(ref.path) if ref is not None else ""))
    except KeyboardInterrupt:
        board.finish()
        raise _Interrupted(["the operations go on at the service",
                            "watch them again with the same command"]) from None
    board.finish()
    return worst


def _request_options(args):
    return dict(allow_http=args.allow_http, cafile=args.cafile,
                request_timeout=args.request_timeout, sleep=_cli_time.sleep)


def _cmd_snapshot(args, con):
    """take and apply: the operation URL alone on stdout (``opstatus watch
    "$(opstatus take ...)"`` works), or a JSON document with --json."""
    endpoint, key = _connection_options(args, con, need_endpoint=True)
    what = args.command
    if what == "take":
        location = take_snapshot(endpoint, key, object_type=args.type,
                                 object_id=args.object_id, apply_scope=args.apply_scope,
                                 user_data=args.user_data, **_request_options(args))
    else:
        location = apply_snapshot(endpoint, key, args.snapshot_id, object_id=args.object_id,
                                  **_request_options(args))
    url = resolve_operation_url(location, endpoint, allow_http=args.allow_http)
    doc = {"operationLocation": location, "operationUrl": url}
    con.write((con.json(doc) if args.json else con.mask(url)) + "\n")
    if con.verbose:
        con.say("%s started; the service answered Operation-Location: %s" % (what, location))
    if args.wait:
        return _watch_poller(url, endpoint, key, args, con)
    if _isatty(con.err):
        con.say("%s started; follow it with: opstatus watch%s %s"
                % (what, _again_options(args), _shlex.quote(url)))
    return EXIT_OK


def _cmd_start(args, con):
    endpoint, key = _connection_options(args, con, need_endpoint=False)
    args.vocabulary = args.vocabulary or "azure"
    con.vocabulary = vocabulary(args.vocabulary)
    body = None
    if args.data:
        body = _read_input(args.data, MAX_REQUEST_BYTES + 1, "--data %s: %s")
        if len(body) > MAX_REQUEST_BYTES:
            raise _UsageError("--data %s: more than %d bytes" % (args.data, MAX_REQUEST_BYTES))
    url = start_operation(args.url, endpoint=endpoint, key=key, method=args.method, data=body,
                          content_type="application/json" if body else None,
                          vocabulary=args.vocabulary, **_request_options(args))
    if url is None:
        con.say("the service answered without an operation URL: the operation is done")
        return EXIT_OK
    if args.wait:
        return _watch_poller(url, None, key, args, con)
    con.write((con.json({"operationUrl": url}) if args.json else con.mask(url)) + "\n")
    return EXIT_OK


def _cmd_serve(args, con):
    key = None
    if args.serve_key_env:
        key = _os.environ.get(args.serve_key_env)
        if not key:
            raise _UsageError("--key-env: %s" % _unset(args.serve_key_env))
    host, out = args.host.strip("[]"), con.out
    options = {name: getattr(args, name) for name in (
        "dialect", "port", "queue_seconds", "take_seconds", "apply_seconds", "fail",
        "rate_limit", "server_errors", "slow", "require_objects", "idle_timeout",
        "rate_limit_retry_after")}
    sim = Simulator(key=key, host=host, objects=args.objects or (), **options)
    try:
        sim.start()
    except (OSError, OverflowError) as exc:
        raise _UsageError("cannot listen on %s port %s: %s"
                          % (args.host, args.port, getattr(exc, "strerror", None) or exc))
    with sim:
        log = _logging.getLogger("opstatus.simulator")
        level, handler = log.level, _logging.StreamHandler(_sys.stderr)
        log.setLevel(_logging.INFO)  # one line for each client that went away
        log.addHandler(handler)
        try:
            out.write("Face snapshot simulator (dialect %s) listening; Ctrl-C stops it.\n"
                      % args.dialect)
            if not is_loopback(host):
                _sys.stderr.write("opstatus: warning: listening on %s: other hosts can reach "
                                  "this simulator (plain http)\n" % (args.host or "*"))
            out.write("export OPSTATUS_ENDPOINT=%s\nexport OPSTATUS_KEY=%s\n"
                      % (sim.endpoint, sim.key))
            out.flush()
            while True:
                _time.sleep(3600)
        finally:
            log.removeHandler(handler)
            log.setLevel(level)


def _sim_object(text):
    """``TYPE:ID`` of ``serve --object``."""
    kind, sep, object_id = text.partition(":")
    if not sep or kind.lower() not in {t.lower() for t in SNAPSHOT_TYPES} \
            or not _OBJECT_ID.fullmatch(object_id):
        raise _type_error("expected TYPE:ID (TYPE one of %s, ID of [a-z0-9-_], at most 64), "
                          "not %r" % (", ".join(SNAPSHOT_TYPES), text))
    return kind, object_id


def _demo_poll(sim, location, out):
    """Poll *location* of the demo's *sim*, a line per status; (final status, polls)."""
    t0, seen = _time.monotonic(), []
    def show(st):
        if seen and seen[-1] is st.status:
            return
        seen.append(st.status)
        took = ""
        if st.is_terminal and st.duration is not None:
            took = "  (service: %.2f s from created to last action)" % st.duration.total_seconds()
        out.write("  %+7.2fs  %-10s  last action %s%s\n" % (
            _time.monotonic() - t0, st.status.value,
            _terminal_time(st.last_action_time or st.created_time), took))
        out.flush()
    poller = Poller(location, endpoint=sim.endpoint, key=sim.key, timeout=60, on_status=show)
    return poller.wait(), poller.polls


def _cmd_demo(args, con):
    out, started = con.out, _time.monotonic()
    sim = Simulator(dialect=args.dialect, take_seconds=1.0, apply_seconds=1.0,
                    queue_seconds=0.3, objects=[("PersonGroup", "sample-group")])
    with sim:
        out.write("Face snapshot simulator at %s (wire dialect %s)\n\n"
                  % (sim.endpoint, args.dialect))
        out.write("take a snapshot of PersonGroup 'sample-group'\n")
        if args.fail:  # the poll raises OperationFailed: no apply
            sim.fail = "Source object was modified while the snapshot was being taken. " \
                       "Please retry."
        location = take_snapshot(sim.endpoint, sim.key, object_type="PersonGroup",
                                 object_id="sample-group", apply_scope=[sim.subscription])
        out.write("  POST /snapshots -> 202  Operation-Location: %s\n" % location)
        final, polls = _demo_poll(sim, location, out)
        snapshot_id = final.snapshot_id
        out.write("  snapshot id: %s\n\napply it to a new PersonGroup 'sample-group-copy'\n"
                  % snapshot_id)
        location = apply_snapshot(sim.endpoint, sim.key, snapshot_id,
                                  object_id="sample-group-copy")
        out.write("  POST /snapshots/%s/apply -> 202  Operation-Location: %s\n"
                  % (snapshot_id, location))
        final, more = _demo_poll(sim, location, out)
        out.write("  target: %s\n\n" % final.resource_location)
    out.write("done in %.1f s with %d polls (each one a billed transaction on the real "
              "service)\n" % (_time.monotonic() - started, polls + more))
    return EXIT_OK


def _cmd_plugins(args, con):
    if _import_pluggy() is None:
        con.write("pluggy is not installed, so no plugins are loaded (pip install pluggy)\n")
        return EXIT_OK
    rows = _plugin_rows(plugin_manager())
    if args.json:
        con.write(_json.dumps([{"name": n, "version": v, "origin": o, "hooks": h}
                              for n, v, o, h in rows], indent=2) + "\n")
        return EXIT_OK
    width = max(len(r[0]) for r in rows)
    for name, version, origin, hooks in rows:
        line = "%-*s  %-10s  %s" % (width, name, version, origin)
        if hooks:
            line += "; hooks: " + ", ".join(h[len("opstatus_"):] for h in hooks)
        con.write(con.safe(line) + "\n")
    if _os.environ.get("OPSTATUS_DISABLE_PLUGIN_AUTOLOAD"):
        con.write("(autoload of entry-point plugins is off: OPSTATUS_DISABLE_PLUGIN_AUTOLOAD)\n")
    return EXIT_OK


_COMMANDS = ("demo", "watch", "take", "apply", "serve", "parse", "plugins")

#: A quoted word in an argparse message that may be a secret given by mistake.
_SECRETISH = _LazyRegex(r"'([A-Za-z0-9+=_.~-]{16,})'")


def _unechoed(message: str) -> str:
    """*message* without the values that look like secrets."""
    def hide(match):
        word = match.group(1)
        if any(c.isdigit() for c in word) and any(c.isalpha() for c in word):
            return "'***'"
        return match.group()
    return _SECRETISH.sub(hide, message)


def _unrecognized(extras: list) -> str:
    """The words no option took: options by their name (a value may be a secret)."""
    names = [w.split("=", 1)[0] for w in extras if w.startswith("-") and len(w) > 1]
    if names:
        return "unrecognized option%s %s" % ("s" if len(names) > 1 else "", " ".join(names))
    return _unechoed("unexpected argument%s %s" % ("s" if len(extras) > 1 else "",
                                                  " ".join(repr(w) for w in extras)))


def _vocabulary_name(text):
    try:
        return vocabulary(text).name
    except ValueError as exc:
        raise _type_error(str(exc))


#: Each command: its name, function, one-line help, description and examples.
_COMMAND_TEXTS = (
    ("demo", _cmd_demo, "run take -> poll -> apply -> poll against the built-in simulator",
     "Take a snapshot of a sample PersonGroup on the built-in Face simulator, apply it to a new "
     "PersonGroup, and print the timeline of both. Creates nothing outside the process.",
     "  opstatus demo --dialect 2019\n"
     "  opstatus demo --fail    # a failed operation and the error you would see"),
    ("watch", _cmd_watch, "poll operations until they end",
     "Poll operations, each given by its URL, /operations/ID, bare ID, or the line "
     "'Operation-Location: ...' of a service's answer, until they end. On a terminal a line "
     "shows each, with any error being retried; otherwise each change is a line on stdout, "
     "each retried error one on stderr (the same at most once a minute).\n\n" + _EPILOG_ENV,
     "  opstatus watch \"$(opstatus take --type PersonGroup --object-id g1 --apply-scope "
     "UUID)\"\n  opstatus watch --json --timeout 600 /operations/6f1b... | tail -n1\n"
     "  opstatus watch --save-token op.json /operations/6f1b...   # after a restart:\n"
     "  opstatus watch --resume op.json"),
    ("start", _cmd_start, "start an operation of any Azure service; print its URL",
     "Send the request that starts a long-running operation and print the URL to poll alone "
     "on stdout (for opstatus watch); with --wait, follow it like watch. A relative URL is "
     "resolved against the endpoint's origin.\n\n" + _EPILOG_ENV,
     "  opstatus start /vision/v3.2/read/analyze --data request.json --wait --json | "
     "jq .document\n"
     "  opstatus start --vocabulary arm --method PUT \"$RESOURCE_URL\" --data body.json"),
    ("take", _cmd_snapshot, "start taking a snapshot; print the operation's URL",
     "POST /snapshots: start taking a snapshot of a face list or person group; print the URL "
     "of the operation alone on stdout (--json: a document).\n\n" + _EPILOG_ENV,
     "  opstatus take --type PersonGroup --object-id group1 --apply-scope UUID --wait"),
    ("apply", _cmd_snapshot, "start applying a snapshot; print the operation's URL",
     "POST /snapshots/{id}/apply: create a new object from a snapshot; print the URL of the "
     "operation alone on stdout (--json: a document).\n\n" + _EPILOG_ENV,
     "  opstatus apply SNAPSHOT_ID --object-id group1-copy --wait"),
    ("serve", _cmd_serve, "run the Face snapshot simulator in the foreground",
     "Run the built-in simulator of the Face snapshot API on loopback and print its endpoint "
     "and key. A take needs its object to exist (--object, or --no-require-objects). It also "
     "plays POST /jobs?kind=azure|arm-async|arm-location&outcome=succeeded|failed|canceled"
     "&seconds=S and POST /vision/v3.2/read/analyze.",
     "  opstatus serve --port 8080 --object PersonGroup:group1\n"
     "  opstatus serve --dialect 2019 --fail 'source modified' --rate-limit 3"),
    ("plugins", _cmd_plugins, "list the plugins loaded, with version, origin and hooks",
     "List the plugins (entry points of the group 'opstatus', those registered from code, the "
     "built-in one) and their hooks. OPSTATUS_DISABLE_PLUGIN_AUTOLOAD=1 turns autoload off; "
     "OPSTATUS_DISABLED_PLUGINS=a,b blocks the named ones.",
     "  opstatus plugins --json"),
    ("parse", _cmd_parse, "read an operation status document and print it",
     "Read an operation status document (JSON) and print it, or the error that makes it "
     "invalid (exit 2).",
     "  curl -s ... | opstatus parse -\n"
     "  opstatus parse --json status.json   # normalized camelCase JSON"),
)


def _build_parser():
    """The parser of the command line, and that of each command by name (argparse
    is imported only here): options never abbreviated, -v and the refusal of --key
    on every parser, errors as one line on stderr, exit 2 (without the usage)."""
    import argparse
    class RefuseKey(argparse.Action):
        def __call__(self, parser, namespace, values, option_string=None):
            raise argparse.ArgumentError(  # without a word about the value given
                self, "refused: the key is taken only from the environment (OPSTATUS_KEY, "
                "or the variable that --key-env names), never from the command line, "
                "where other users of the machine can read it")
    class Parser(argparse.ArgumentParser):
        def __init__(self, verbose="verbose", **options):
            super().__init__(formatter_class=argparse.RawDescriptionHelpFormatter,
                             allow_abbrev=False, **options)
            self.add_argument("-v", "--verbose", action="count", default=0, dest=verbose,
                              help="say more on stderr: the transport and plugins in use, "
                              "then each request and answer (-vv: also the debug log)")
            self.add_argument("--key", nargs="?", action=RefuseKey, help=argparse.SUPPRESS)

        def error(self, message):
            command = self.prog.partition(" ")[2]
            self.exit(EXIT_USAGE, "opstatus: error: %s%s (see '%s --help')\n"
                      % (command + ": " if command else "", _printable(_unechoed(message)),
                         self.prog))
    parser = Parser(
        verbose="verbose_before", prog="opstatus",
        description="Follow Azure-style asynchronous operations (Face API snapshots) to "
        "their end.",
        epilog="examples:\n  opstatus demo\n  OPSTATUS_KEY=... opstatus watch --endpoint "
        "https://westus.api.cognitive.microsoft.com /operations/ID\n  opstatus watch "
        "\"$(opstatus take --type PersonGroup --object-id g1 --apply-scope UUID)\"\n\n"
        + _EPILOG_EXIT)
    parser.add_argument("--version", action="version", version="opstatus " + __version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    parsers = {}
    for name, func, help, description, examples in _COMMAND_TEXTS:
        parsers[name] = sub.add_parser(name, help=help, description=description,
                                       epilog="examples:\n%s\n\n%s" % (examples, _EPILOG_EXIT))
        parsers[name].set_defaults(func=func)
    add = parsers["demo"].add_argument
    add("--fail", action="store_true", help="make the take fail")
    add("--dialect", choices=("2019", "2021"), default="2021",
        help="wire dialect of the simulator (default: %(default)s)")
    add = parsers["watch"].add_argument
    add("operation", nargs="*", metavar="OPERATION", help="an operation URL, /operations/ID, "
        "ID, or 'Operation-Location: ...' line; several are watched at once")
    add("--resume", metavar="TOKEN_OR_FILE", help="carry on from a resume token (or its file)")
    add("--save-token", metavar="FILE", help="keep a resume token of the operation in FILE "
        "(mode 600), updated at each poll and on Ctrl-C")
    add = parsers["start"].add_argument
    add("url", metavar="URL", help="the URL to send the request to")
    add("--method", default="POST", type=str.upper, help="HTTP method (default: %(default)s)")
    add("--data", metavar="FILE", help="the request body (JSON) from FILE, or - for stdin")
    add = parsers["take"].add_argument
    add("--type", required=True, type=_snapshot_type, metavar="TYPE",
        help="object type: %s (any letter case)" % ", ".join(SNAPSHOT_TYPES))
    add("--object-id", required=True, help="id of the object to snapshot")
    add("--apply-scope", required=True, action="append", metavar="UUID",
        help="subscription id that may apply it (repeat for more)")
    add("--user-data", help="user data (at most %d characters)" % MAX_USER_DATA)
    parsers["apply"].add_argument("snapshot_id", metavar="SNAPSHOT_ID")
    parsers["apply"].add_argument("--object-id", required=True, help="id of the new object")
    for name, default in (("watch", "face"), ("start", "azure"), ("take", ""), ("apply", "")):
        add = parsers[name].add_argument
        if default:
            add("--vocabulary", type=_vocabulary_name, metavar="NAME", help="how the service "
                "writes its status documents: %s (default: %s)"
                % (", ".join(VOCABULARIES), default))
        if name != "watch":
            add("--wait", action="store_true", help="poll the operation to its end")
        add = parsers[name].add_argument_group("connection").add_argument
        add("--endpoint", metavar="URL", help="resource endpoint, e.g. https://westus.api."
            "cognitive.microsoft.com (default: $OPSTATUS_ENDPOINT); /face/v1.0 is added "
            "when it has no path")
        add("--key-env", metavar="NAME",
            help="environment variable holding the key (default: OPSTATUS_KEY)")
        add("--no-key", action="store_true", help="send no key: the URL (a SAS token) or a "
            "plugin (a bearer token) carries the credential")
        add("--allow-http", action="store_true",
            help="allow plain http to a host other than loopback (unsafe)")
        add("--cafile", metavar="FILE", help="trust the CA certificates in FILE")
        add("--request-timeout", type=_positive_seconds, metavar="S",
            default=DEFAULT_REQUEST_TIMEOUT, help="timeout of one request (default: %(default)s)")
        add("--json", action="store_true",
            help="print JSON: one status document per change, the final one last")
        add = parsers[name].add_argument_group("schedule").add_argument
        add("--timeout", type=_seconds, default=DEFAULT_TIMEOUT, metavar="S",
            help="give up after S seconds; 0 means never (default: %(default)s)")
        add("--floor", type=_seconds, metavar="S",
            help="shortest wait between polls (default: %s)" % DEFAULT_FLOOR)
        add("--cap", type=_seconds, metavar="S",
            help="longest wait between polls (default: %s)" % DEFAULT_CAP)
    add = parsers["serve"].add_argument
    add("--host", default="127.0.0.1", help="address (default: %(default)s)")
    add("--port", type=int, default=0, help="port (default: a free one)")
    add("--dialect", choices=("2019", "2021"), default="2021")
    add("--key-env", dest="serve_key_env", metavar="NAME",
        help="take the key from this environment variable (default: random)")
    for phase, default in (("queue", 0.3), ("take", 1.0), ("apply", 1.0)):
        add("--%s-seconds" % phase, type=_seconds, default=default, metavar="S")
    add("--fail", metavar="MESSAGE", help="operations end failed with MESSAGE")
    add("--rate-limit", type=int, default=0, metavar="N", help="answer the next N with 429")
    add("--server-errors", type=int, default=0, metavar="N", help="answer the next N with 503")
    add("--slow", type=_seconds, default=0.0, metavar="S", help="wait S s before each answer")
    add("--object", dest="objects", action="append", type=_sim_object, metavar="TYPE:ID",
        help="make an object exist, e.g. PersonGroup:group1 (repeat for more)")
    add("--no-require-objects", dest="require_objects", action="store_false",
        help="let a take of any objectId succeed (the service answers 404)")
    add("--rate-limit-retry-after", type=int, metavar="S",
        help="send Retry-After: S with each 429 (the Face service sent none)")
    add("--idle-timeout", type=_positive_seconds, default=5.0, metavar="S",
        help="close a connection idle for S seconds (default: %(default)s)")
    parsers["plugins"].add_argument("--json", action="store_true", help="print JSON")
    add = parsers["parse"].add_argument
    add("file", nargs="?", default="-", metavar="FILE",
        help="the document; '-' (the default) reads standard input")
    add("--json", action="store_true", help="print the document as normalized JSON")
    return parser, parsers


def _split_short_flags(argv):
    """``-vv`` as ``-v -v`` (argparse < 3.8 does not when abbreviations are off)."""
    if _sys.version_info >= (3, 8):
        return list(argv)
    words = []
    for index, word in enumerate(argv):
        if word == "--":
            return words + list(argv[index:])
        if len(word) > 2 and word[0] == "-" and set(word[1:]) == {"v"}:
            words += ["-v"] * (len(word) - 1)
        else:
            words.append(word)
    return words


_NEGATIVE_NUMBER = _LazyRegex(r"-[0-9]*\.?[0-9]+")


def _unknown_options(argv, parser, parsers):
    """The options in *argv* that no parser knows (those of ``opstatus`` before
    the command, of the command after it), and the parser to blame."""
    where, unknown = parser, []
    for word in argv:
        if word == "--":
            break
        if where is parser and word in parsers:
            where = parsers[word]
            continue
        if where is parser and not word.startswith("-"):
            break  # not a command: argparse names it
        if len(word) < 2 or word[0] != "-" or _NEGATIVE_NUMBER.fullmatch(word) \
                or set(word[1:]) == {"v"}:
            continue
        name = word.split("=", 1)[0]
        if name not in where._option_string_actions:
            unknown.append(name)
    return where, unknown


def _parse_args(argv):
    """The command line's arguments, or SystemExit (usage errors name their culprit)."""
    parser, parsers = _build_parser()
    argv = _split_short_flags([str(a) for a in (_sys.argv[1:] if argv is None else argv)])
    where, unknown = _unknown_options(argv, parser, parsers)
    if unknown:  # named first: argparse would complain of what they stand for
        where.error(_unrecognized(unknown))
    args, extras = parser.parse_known_args(argv)
    if extras:
        parsers.get(args.command, parser).error(_unrecognized(extras))
    if args.command is None:
        parser.error("give a COMMAND: %s" % ", ".join(_COMMANDS))
    args.verbose = getattr(args, "verbose", 0) + args.verbose_before
    return args


def _report(exc, args, con):
    """Say what ended the command; its exit status."""
    if isinstance(exc, StatusDocumentError) and args.command != "parse":
        hint = ""
        if getattr(args, "vocabulary", None) is None:
            hint = "; a document of another service? try --vocabulary %s" % "|".join(
                n for n in VOCABULARIES if n != "face")
        con.say("error: the service sent %s%s" % (exc, hint))
        return EXIT_NETWORK
    if isinstance(exc, (UnsafeURLError, ResumeTokenError, StatusDocumentError)) \
            or not isinstance(exc, OpStatusError):  # input checks of take/apply, parse
        con.say("error: %s" % exc)
        return EXIT_USAGE
    con.say("error: %s" % _describe_error(exc))
    return _exit_status(exc)


def main(argv: Optional[list] = None) -> int:
    """Run the command line with *argv* (default ``sys.argv[1:]``); the exit status."""
    con = _Console(_sys.stdout, _sys.stderr)
    try:
        args = _parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_OK if exc.code is None \
            else EXIT_USAGE
    con.verbose = args.verbose
    undo = _log_to(con)
    try:
        if con.verbose and args.command in ("demo", "watch", "take", "apply"):
            _say_setup(con, args)
        return args.func(args, con)
    except KeyboardInterrupt as exc:
        con.live = None
        con.err.write("\n")
        hint = exc.args[0] if isinstance(exc, _Interrupted) else []
        con.say("interrupted" + ("; " + hint[0] if hint else ""))
        for line in hint[1:]:
            con.say(line)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # ``| head``: no complaint from Python's flush at exit
        con.live = None
        try:
            _os.dup2(_os.open(_os.devnull, _os.O_WRONLY), _sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_BROKEN_PIPE
    except _UsageError as exc:
        con.say("error: %s" % exc)
        return EXIT_USAGE
    except (OpStatusError, ValueError) as exc:
        return _report(exc, args, con)
    finally:
        undo()


if __name__ == "__main__":
    _sys.exit(main())
