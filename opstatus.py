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
- :func:`take_snapshot` and :func:`apply_snapshot` start Face snapshot
  operations; :func:`poll`, :class:`Poller`, :func:`poll_async` and
  :class:`Watcher` follow operations to their end, with a deadline, jittered
  backoff, ``Retry-After``, typed errors, and secrets that go nowhere else;
- hooks let pluggy plugins add transports, auth, notifications and retry
  policies (pluggy is optional);
- :class:`Simulator` stands in for the Face snapshot API, retired in 2023;
- ``python opstatus.py demo | watch | take | apply | serve | parse | plugins``
  is the command line.
"""

from __future__ import annotations

__all__ = [
    "__version__",
    # errors
    "OpStatusError",
    "StatusDocumentError",
    "UnsafeURLError",
    "NetworkError",
    "ResponseTooLarge",
    "HTTPError",
    "OperationNotFound",
    "OperationFailed",
    "PollTimeout",
    "PollCancelled",
    # model
    "Status",
    "OperationStatus",
    "ResourceRef",
    # timestamps
    "parse_datetime",
    "format_datetime",
    # polling
    "RetryPolicy",
    "parse_retry_after",
    "Request",
    "Response",
    "HTTPTransport",
    "Poller",
    "poll",
    "poll_async",
    "ResumeTokenError",
    "Watcher",
    "Outcome",
    "take_snapshot",
    "apply_snapshot",
    "api_base",
    "resolve_operation_url",
    "redact_url",
    # plugins
    "PluginError",
    "HookSpecs",
    "hookimpl",
    "plugin_manager",
    "make_plugin_manager",
    "register_plugin",
    # simulator
    "Simulator",
    # command line
    "main",
]

__version__ = "0.1.0"

import datetime as _datetime
import enum as _enum
import _thread
import io as _io
import sys as _sys
import types as _types
from collections.abc import Mapping as _Mapping

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from typing import Any, Callable, Dict, Iterator, Mapping, Optional, Tuple, Union


###############################################################################
# Compatibility and lazy machinery ############################################
###############################################################################
#
# ``import opstatus`` must stay cheap: a script that reads one status should
# not pay for ``re`` patterns it never uses or for ``dataclasses`` (which
# costs as much as this whole module). Both are made ready on first use.


class _LazyRegex:
    """A regular expression compiled (and ``re`` imported) on first use."""

    def __init__(self, pattern):
        self._pattern = pattern

    def __getattr__(self, name):
        import re

        compiled = re.compile(self._pattern)
        for method in ("match", "fullmatch", "search", "sub", "finditer", "findall"):
            setattr(self, method, getattr(compiled, method))  # later calls skip this
        return getattr(compiled, name)

    def __repr__(self):
        return "<_LazyRegex %r>" % (self._pattern,)


class _FieldSpec:
    """``dataclasses.field(**kwargs)``, written before ``dataclasses`` loads."""

    def __init__(self, **kwargs):
        self.kwargs = kwargs


class _DataclassMeta(type):
    """The metaclass of this module's frozen dataclasses.

    Each is completed by ``dataclasses.dataclass(frozen=True)``, in place, on
    first use: its first instance, or the first look at its dataclass
    attributes (``dataclasses.fields(cls)``, ``is_dataclass(cls)``). From then
    on it is an ordinary frozen dataclass.
    """

    def __getattr__(cls, name):
        if name.startswith("__dataclass_") and _complete_dataclass(cls):
            return getattr(cls, name)
        raise AttributeError("type object %r has no attribute %r" % (cls.__name__, name))


_DATACLASS_LOCK = _thread.allocate_lock()


def _complete_dataclass(cls):
    # type: (type) -> bool
    """Complete *cls* once; another thread that needs it meanwhile waits."""
    state = cls.__dict__.get("_lazy_dataclass")
    if state is not True and state != "completing":
        return False  # not one of ours, or done
    if state == "completing" and cls.__dict__.get("_lazy_owner") == _thread.get_ident():
        return False  # dataclasses looking at the class it is completing
    with _DATACLASS_LOCK:
        if cls.__dict__.get("_lazy_dataclass") is not True:
            return False  # another thread completed it while we waited
        cls._lazy_owner = _thread.get_ident()
        cls._lazy_dataclass = "completing"
        try:
            import dataclasses

            for name, value in list(cls.__dict__.items()):
                if isinstance(value, _FieldSpec):
                    setattr(cls, name, dataclasses.field(**value.kwargs))
            dataclasses.dataclass(frozen=True)(cls)
        except BaseException:
            cls._lazy_dataclass = True
            raise
        cls._lazy_dataclass = False
    return True


class _FrozenDataclass(metaclass=_DataclassMeta):
    """Base of the module's frozen dataclasses (see :class:`_DataclassMeta`)."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls._lazy_dataclass = True

    def __new__(cls, *args, **kwargs):
        _complete_dataclass(cls)
        return object.__new__(cls)


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


class UnsafeURLError(OpStatusError, ValueError):
    """A URL or header was refused by a security rule before any I/O.

    Raised for a scheme other than ``https`` (``http`` only to loopback, or
    when explicitly allowed), userinfo in a URL, control characters, and an
    ``Operation-Location`` or redirect that would carry a secret to another
    origin. The message never contains a secret or a query string.
    """


class NetworkError(OpStatusError):
    """The request did not get an HTTP answer: refused, reset, timed out.

    :attr:`sent` is ``False`` when the request surely never reached the
    server (connection refused, name not resolved, connect timeout), so that
    even a POST may be sent again.
    """

    def __init__(self, message, *, sent=True, url=None, retryable=True):
        super().__init__(message)
        self.sent = sent
        self.url = url
        #: False for failures that another try cannot mend (an untrusted
        #: certificate).
        self.retryable = retryable


class ResponseTooLarge(OpStatusError):
    """A response announced or sent more bytes than the cap allows."""


class HTTPError(OpStatusError):
    """The service answered with an HTTP error status.

    :attr:`status` is the HTTP status code; :attr:`code` and
    :attr:`message` are the service's ``error.code`` and ``error.message``
    (``None`` when the body had none); :attr:`retry_after` is the delay the
    service asked for, in seconds, if any.
    """

    def __init__(self, status, code=None, message=None, *, url=None, retry_after=None):
        self.status = status
        self.code = code
        self.message = message
        self.url = url
        self.retry_after = retry_after
        text = "HTTP %d" % status
        if code:
            text += " %s" % code
        if message:
            text += ": %s" % message
        if url:
            text += " (%s)" % url
        super().__init__(text)


class OperationNotFound(HTTPError):
    """404 or 410 for an operation: unknown, or expired (48 hours)."""


class OperationFailed(OpStatusError):
    """The operation ended with status ``failed``.

    :attr:`status` is the final :class:`OperationStatus`; :attr:`message`
    the service's failure message (``None`` if it sent none).
    """

    def __init__(self, status):
        self.status = status
        self.message = status.message
        text = "operation failed"
        if status.message:
            text += ": " + _clip(status.message)
        super().__init__(text)


class PollTimeout(OpStatusError, TimeoutError):
    """The deadline passed before the operation ended.

    :attr:`last_status` is the last :class:`OperationStatus` seen (``None``
    if no poll got an answer); :attr:`timeout` the deadline in seconds;
    :attr:`last_error` the error of the last attempt, if it failed.
    """

    def __init__(self, message, last_status=None, timeout=None, last_error=None):
        super().__init__(message)
        self.last_status = last_status
        self.timeout = timeout
        #: the transient error met last, if the last attempt failed
        self.last_error = last_error


class PollCancelled(OpStatusError):
    """:meth:`Poller.cancel` was called; :attr:`last_status` as for timeouts."""

    def __init__(self, message, last_status=None):
        super().__init__(message)
        self.last_status = last_status


class ResumeTokenError(OpStatusError, ValueError):
    """A resume token is malformed, of another version, altered, or sealed
    with another key."""


class PluginError(OpStatusError):
    """A plugin raised, returned something unusable, or did not return in
    time; :attr:`plugin` names it. Also raised when registering a plugin
    without pluggy installed."""

    def __init__(self, message, plugin=None):
        super().__init__(message)
        self.plugin = plugin


#: Longest service message carried into an exception's text.
MAX_MESSAGE_CHARS = 1000


def _clip(text, limit=MAX_MESSAGE_CHARS):
    # type: (str, int) -> str
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


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


def _status_of(value):
    # type: (Any) -> Status
    """``Status(value)`` without the enum's own error chained to ours (it
    would carry the raw value, which may be anything a server sent)."""
    if isinstance(value, Status):
        return value
    if isinstance(value, str):
        member = _STATUS_BY_LOWER.get(value.lower())
        if member is not None:
            return member
    return Status._missing_(value)  # raises the error naming the value


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
#          YYYY-MM | YYYY | YYYY-Www | YYYYWww      (reduced precision, alone:
#                                                   midnight of the first day)
#   time   hh[:mm[:ss]] | hh[mm[ss]], a fraction (. or ,) of any length on the
#          lowest component; 24:00[:00[.0…]] is midnight of the next day
#   sep    T, t or one space
#   offset Z | z | ±hh:mm | ±hhmm | ±hh          (hh <= 23, mm <= 59)
#
# Extended and basic format never mix within one string. YYYYMM is refused:
# ISO 8601 leaves it out, as it reads like YYMMDD. Leap seconds (23:59:60)
# are rejected: Python's datetime cannot hold them and silently moving them
# to :59 or to the next minute would change the instant. Fractions beyond
# microseconds are truncated, never rounded.
#
# Two readers. The fast path, at the top of parse_datetime(), takes the few
# shapes met nearly always (the service's 2018-12-25T11:41:02.2331413Z, a
# plain 2018-12-25, the basic 20181225T114102Z: _FAST_SHAPES) and leaves
# anything else to the general reader, _read_datetime(), which reads every
# form, one _read_x(text, pos) -> (value, pos) function per part, and names
# the field and index of a fault.

_UTC = _datetime.timezone.utc
_TZ_CACHE = {0: _UTC}  # type: Dict[int, _datetime.timezone]
_ONE_DAY = _datetime.timedelta(days=1)
_DIGITS = frozenset("0123456789")
_DIGIT_CHARS = "0123456789"
#: "0" to "9" and "00" to "99" with their values: one look-up checks and reads
#: the fields of one or two ASCII digits.
_SMALL_NUMBERS = {"%0*d" % (width, n): n for width in (1, 2) for n in range(10 ** width)}
_DAYS_IN_MONTH = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_MONTH_NAMES = (
    None, "January", "February", "March", "April", "May", "June", "July",
    "August", "September", "October", "November", "December",
)
_TIME_FIELDS = ("hour", "minute", "second")
_MICROS_IN = {"hour": 3600000000, "minute": 60000000}

#: ``datetime.fromisoformat`` reads ``Z`` and any number of fraction digits
#: from Python 3.11 on; before, only ``+00:00`` and 3 or 6 digits.
_ISO_Z = _sys.version_info >= (3, 11)
_fromisoformat = _datetime.datetime.fromisoformat
_ZERO_DIGITS = bytes.maketrans(b"123456789", b"000000000")


def _read_fast_fields(text):
    # type: (str) -> _datetime.datetime
    """The fast path's date and service shapes, field by field: on PyPy,
    whose ``fromisoformat`` is written in Python, as its JIT compiles this.
    ``ValueError`` when *text* is not in its shape, or out of range."""
    b = text.encode()
    if not (
        len(b) == len(text)  # ASCII: bytes.isdigit() takes only 0-9
        and b[4] == b[7] == 45  # '-'
        and (b[:4] + b[5:7] + b[8:10]).isdigit()
    ):
        raise ValueError("not in the fast path's shape")
    year = b[0] * 1000 + b[1] * 100 + b[2] * 10 + b[3] - 53328  # 48 * 1111
    month, day = b[5] * 10 + b[6] - 528, b[8] * 10 + b[9] - 528  # 48 * 11
    if len(b) == 10:
        return _datetime.datetime(year, month, day)
    fraction = b[20:-1]
    if not (
        b[10] == 84 and b[13] == b[16] == 58 and b[-1] == 90  # 'T', ':', 'Z'
        and (len(b) == 20 or b[19] == 46)  # '.'
        and (b[11:13] + b[14:16] + b[17:19] + fraction).isdigit()
    ):
        raise ValueError("not in the fast path's shape")
    return _datetime.datetime(
        year, month, day, b[11] * 10 + b[12] - 528, b[14] * 10 + b[15] - 528,
        b[17] * 10 + b[18] - 528, int((fraction + b"00000")[:6]) if fraction else 0, _UTC,
    )


def _read_fast_basic(text):
    # type: (str) -> _datetime.datetime
    """The fast path's basic shape, ``20181225T114102Z``, which
    ``fromisoformat`` reads only from Python 3.11 on. ``ValueError`` when
    *text* is not in that shape, or out of range."""
    b = text.encode()
    if not (len(b) == 16 and b[8] == 84 and b[15] == 90 and (b[:8] + b[9:15]).isdigit()):
        raise ValueError("not in the fast path's shape")  # 84 'T', 90 'Z'
    return _datetime.datetime(
        int(b[:4]), int(b[4:6]), int(b[6:8]), int(b[9:11]), int(b[11:13]), int(b[13:15]), 0, _UTC
    )


def _fast_shapes():
    # type: () -> Dict[int, Tuple[Optional[bytes], Any, int, str]]
    """The fast path's shapes by length: (mask, reader, kept, suffix).

    The shapes met nearly always: the service's ``2018-12-25T11:41:02``, 0
    to 9 fraction digits, ``Z``; a plain ``2018-12-25``; and the basic
    ``20181225T114102Z``. A *reader* function, if any, takes the text (and
    checks its shape). Otherwise *mask* is the text with every digit written
    ``0``: ``text.encode().translate(_ZERO_DIGITS) == mask`` checks the shape
    (ASCII digits only, as a non-ASCII character takes more than one byte);
    then ``fromisoformat`` reads ``text[:kept] + suffix``, a form that the
    running Python reads to the value the general reader would give, or
    refuses.
    """
    by_fromisoformat = _sys.implementation.name == "cpython"  # C, not Python
    shapes = {16: (None, _read_fast_basic, 0, "")}  # type: Dict[int, Any]
    for digits in range(-1, 10):  # -1: the plain date; then fraction digits
        if digits < 0:
            mask, kept, suffix = b"0000-00-00", 10, ""
        else:
            mask = b"0000-00-00T00:00:00" + (b"." + b"0" * digits if digits else b"") + b"Z"
            kept, suffix = len(mask), ""
            if not _ISO_Z and digits:  # six digits, truncated or padded; +00:00 for Z
                kept, suffix = 20 + min(digits, 6), "0" * max(6 - digits, 0) + "+00:00"
            elif not _ISO_Z:
                kept, suffix = 19, "+00:00"
        shapes[len(mask)] = (
            (mask, None, kept, suffix) if by_fromisoformat else (None, _read_fast_fields, 0, "")
        )
    return shapes


_FAST_SHAPES = _fast_shapes()


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


def _digits_end(text, pos):
    # type: (str, int) -> int
    """The index after the run of ASCII digits at *pos*."""
    return len(text) - len(text[pos:].lstrip(_DIGIT_CHARS))


def _read_int(text, pos, width, field):
    # type: (str, int, int, str) -> Tuple[int, int]
    """Exactly *width* ASCII digits at *pos*, or _Reject naming *field*."""
    digits = text[pos : pos + width]
    if len(digits) == width:
        value = _SMALL_NUMBERS.get(digits)
        if value is not None:
            return value, pos + width
        # isdigit() alone takes other scripts' digits ('٢', '²'): ASCII first.
        if digits.isascii() and digits.isdigit():
            return int(digits), pos + width
    bad = min(_digits_end(text, pos), pos + width - 1)
    raise _Reject(
        "%s: expected a digit at index %d, found %s" % (field, bad, _describe(text, bad)),
        bad,
    )


def _expect(text, pos, char, field):
    # type: (str, int, str, str) -> int
    """*char* at *pos*: the index after it, or _Reject naming *field*."""
    if text[pos : pos + 1] != char:
        raise _Reject(
            "%s: expected %r at index %d, found %s" % (field, char, pos, _describe(text, pos)),
            pos,
        )
    return pos + 1


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


def _read_fraction(text, pos, field):
    # type: (str, int, str) -> Tuple[str, int]
    """A decimal fraction (``.`` or ``,`` then digits) at *pos*, if any:
    (its digits, the index after it)."""
    if text[pos : pos + 1] not in (".", ","):
        return "", pos
    end = _digits_end(text, pos + 1)
    if end == pos + 1:
        raise _Reject(
            "%s: expected a digit after the decimal sign at index %d, found %s"
            % (field, end, _describe(text, end)),
            end,
        )
    return text[pos + 1 : end], end


def _tz(minutes):
    # type: (int) -> _datetime.timezone
    tz = _TZ_CACHE.get(minutes)
    if tz is None:
        tz = _TZ_CACHE[minutes] = _datetime.timezone(
            _datetime.timedelta(minutes=minutes)
        )
    return tz


def _year_zero():
    # type: () -> _Reject
    return _Reject("year: 0000 is out of range 1..9999", 0)


def _read_date(text, extended):
    # type: (str, bool) -> Tuple[Tuple[int, int, int], int]
    """The date at the start of *text*: ((year, month, day), index after it)."""
    year, pos = _read_int(text, 0, 4, "year")
    if pos == len(text):  # YYYY alone
        if year == 0:
            raise _year_zero()
        return (year, 1, 1), pos
    if extended:
        pos += 1
    if text[pos : pos + 1] == "W":
        return _read_week_date(text, pos + 1, year, extended)
    if year == 0:
        raise _year_zero()
    if text[pos + 3 : pos + 4] not in _DIGITS and _digits_end(text, pos) == pos + 3:
        return _read_ordinal_date(text, pos, year)
    return _read_calendar_date(text, pos, year, extended)


def _read_calendar_date(text, pos, year, extended):
    # type: (str, int, int, bool) -> Tuple[Tuple[int, int, int], int]
    """MM-DD or MMDD at *pos*, or MM alone in extended format (the 1st)."""
    month_at = pos
    month, pos = _read_int(text, pos, 2, "month")
    if pos == len(text):
        if not extended:
            raise _Reject(
                "day: expected a digit at index %d, found end of text (a year and"
                " month alone are written YYYY-MM: YYYYMM is not ISO 8601)" % pos,
                pos,
            )
        day, day_at = 1, pos
    else:
        if extended:
            pos = _expect(text, pos, "-", "day")
        day_at = pos
        day, pos = _read_int(text, pos, 2, "day")
    if not 1 <= month <= 12:
        raise _Reject("month: %d is out of range 1..12" % month, month_at)
    last = 29 if month == 2 and _is_leap(year) else _DAYS_IN_MONTH[month]
    if not 1 <= day <= last:
        raise _Reject(
            "day: %d is out of range 1..%d for %s %d" % (day, last, _MONTH_NAMES[month], year),
            day_at,
        )
    return (year, month, day), pos


def _read_ordinal_date(text, pos, year):
    # type: (str, int, int) -> Tuple[Tuple[int, int, int], int]
    """DDD, the day of the year, at *pos*."""
    ordinal = int(text[pos : pos + 3])
    last = 366 if _is_leap(year) else 365
    if not 1 <= ordinal <= last:
        raise _Reject(
            "day of year: %d is out of range 1..%d for %d" % (ordinal, last, year), pos
        )
    date = _datetime.date.fromordinal(_datetime.date(year, 1, 1).toordinal() + ordinal - 1)
    return (year, date.month, date.day), pos + 3


def _read_week_date(text, pos, year, extended):
    # type: (str, int, int, bool) -> Tuple[Tuple[int, int, int], int]
    """ww-D or wwD after the ``W`` (or ww alone: the week's Monday)."""
    week_at = pos
    week, pos = _read_int(text, pos, 2, "week")
    weekday = 1
    if pos < len(text):
        if extended:
            pos = _expect(text, pos, "-", "weekday")
        weekday, pos = _read_int(text, pos, 1, "weekday")
    if year == 0:
        raise _year_zero()
    if not 1 <= week <= _weeks_in_year(year):
        raise _Reject(
            "week: %d is out of range 1..%d for %d" % (week, _weeks_in_year(year), year),
            week_at,
        )
    if not 1 <= weekday <= 7:
        raise _Reject("weekday: %d is out of range 1..7" % weekday, pos - 1)
    jan4 = _datetime.date(year, 1, 4)
    ordinal = jan4.toordinal() - jan4.weekday() + 7 * (week - 1) + weekday - 1
    if ordinal > _datetime.date.max.toordinal():
        raise _Reject("week date %04d-W%02d-%d is past 9999-12-31" % (year, week, weekday), 0)
    date = _datetime.date.fromordinal(ordinal)
    return (date.year, date.month, date.day), pos


def _next_time_field(text, pos, extended):
    # type: (str, int, bool) -> Optional[int]
    """Where the next time field (minute, second) starts, or None if none
    follows; _Reject for a ':' after a basic-format date."""
    char = text[pos : pos + 1]
    if char == ":":
        if not extended:
            raise _Reject(
                "':' at index %d mixes extended time with a basic-format date" % pos, pos
            )
        return pos + 1
    return pos if char in _DIGITS and not extended else None


def _read_time(text, pos, extended):
    # type: (str, int, bool) -> Tuple[Tuple[int, int, int, int], int]
    """hh[:mm[:ss]] or hh[mm[ss]] and a fraction of the last field:
    ((hour, minute, second, microsecond), index after it). Hour 24 comes
    back as 24, checked to be the end of the day."""
    hour_at = pos
    fields = [0, 0, 0]  # hour, minute, second
    fields[0], pos = _read_int(text, pos, 2, "hour")
    if extended and text[pos : pos + 1] in _DIGITS:  # 2018-12-25T1141
        raise _Reject(
            "digit at index %d: basic-format time after an extended-format date" % pos, pos
        )
    count = 1
    while count < 3:
        start = _next_time_field(text, pos, extended)
        if start is None:
            break
        fields[count], pos = _read_int(text, start, 2, _TIME_FIELDS[count])
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


def _check_time(hour, minute, second, fraction, hour_at, step):
    # type: (int, int, int, str, int, int) -> None
    """The range checks of _read_time: hour at index *hour_at*, minute and
    second *step* and 2 * *step* after it."""
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


def _read_offset(text, pos, extended):
    # type: (str, int, bool) -> Tuple[Optional[_datetime.timezone], int]
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
    if char == ":":
        if not extended:
            raise _Reject("offset: ':' at index %d mixes extended and basic format" % pos, pos)
        minute_at = pos + 1
        minutes, pos = _read_int(text, minute_at, 2, "offset minute")
    elif char in _DIGITS:
        if extended:
            raise _Reject(
                "offset: basic ±hhmm at index %d in an extended-format text" % (pos - 3), pos
            )
        minute_at = pos
        minutes, pos = _read_int(text, minute_at, 2, "offset minute")
    if hours > 23:
        raise _Reject("offset hour: %d is out of range 0..23" % hours, hour_at)
    if minutes > 59:
        raise _Reject("offset minute: %d is out of range 0..59" % minutes, minute_at)
    minutes += hours * 60
    return _tz(-minutes if sign == "-" else minutes), pos


def _read_datetime(text):
    # type: (str) -> _datetime.datetime
    """The general reader: every form above, or _Reject naming the fault."""
    if len(text) < 4:
        raise _Reject("too short for a date", len(text))
    extended = text[4:5] == "-"
    (year, month, day), pos = _read_date(text, extended)
    if pos == len(text):
        return _datetime.datetime(year, month, day)
    if text[pos] not in "Tt ":
        raise _Reject(
            "expected 'T', 't' or ' ' before the time at index %d, found %s"
            % (pos, _describe(text, pos)),
            pos,
        )
    (hour, minute, second, micro), end = _read_time(text, pos + 1, extended)
    tzinfo, end = _read_offset(text, end, extended)
    if end < len(text):
        raise _Reject(
            "unexpected %s at index %d after the %s"
            % (_describe(text, end), end, "offset" if tzinfo is not None else "date-time"),
            end,
        )
    if hour < 24:
        return _datetime.datetime(year, month, day, hour, minute, second, micro, tzinfo)
    try:  # 24:00, the end of the day
        return _datetime.datetime(year, month, day, 0, 0, 0, 0, tzinfo) + _ONE_DAY
    except OverflowError:
        raise _Reject("24:00 on 9999-12-31 is past the largest date", pos + 1)


def parse_datetime(text):
    # type: (str) -> _datetime.datetime
    """Parse an ISO 8601 / RFC 3339 date-time, strictly.

    Returns an aware ``datetime`` when *text* has an offset (``Z``, ``+01:00``
    …) and a naive one when it has none; fractions past the microsecond are
    truncated, never rounded::

        >>> parse_datetime("2018-12-25T11:41:02.2331413Z")
        datetime.datetime(2018, 12, 25, 11, 41, 2, 233141, tzinfo=datetime.timezone.utc)

    A date alone, of any precision (``2018-12-25``, ``2018-12``, ``2018``,
    ``2018-W52``), is naive midnight of its first day.

    Raises ``ValueError`` naming the field, the character and its index for
    anything else, and ``TypeError`` for a non-``str`` argument.
    """
    if type(text) is not str:
        if not isinstance(text, str):
            raise TypeError(
                "parse_datetime() takes a str, not %s" % type(text).__name__
            )
        text = str(text)
    shape = _FAST_SHAPES.get(len(text))
    if shape is not None:  # the fast path, inline (a call costs 1/6 of it on 3.7)
        try:
            mask, reader, kept, suffix = shape
            if reader is not None:
                return reader(text)
            if text.encode().translate(_ZERO_DIGITS) == mask and not (
                _ISO_Z and text[11:13] == "24"  # never let fromisoformat judge 24:00
            ):
                return _fromisoformat(text[:kept] + suffix)
        except ValueError:
            pass  # another shape, a field out of range, a lone surrogate (not
            # encodable): the general reader decides, and names the fault
    try:
        return _read_datetime(text)
    except _Reject as exc:
        problem, index = exc.args
        if " index " not in problem:
            problem += " (index %d)" % index
        raise ValueError(
            "invalid ISO 8601 date-time %s: %s" % (_short_repr(text), problem)
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


class ResourceRef(_FrozenDataclass):
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
    if value.tzinfo is not _UTC:
        try:
            value = value.astimezone(_UTC)
        except OverflowError:
            raise StatusDocumentError("%s is outside the years 1..9999 in UTC"
                                      % value.isoformat(), wire) from None
    return value


class OperationStatus(_FrozenDataclass):
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
    extra: Mapping[str, Any] = _FieldSpec(
        default_factory=dict, compare=False, hash=False, repr=False
    )

    def __post_init__(self):
        setattr_ = object.__setattr__
        setattr_(self, "status", _status_of(self.status))
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
        fields["status"] = _status_of(fields["status"])
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
        path = self.resource_location.split("?", 1)[0].split("#", 1)[0]
        if "://" in path:
            path = "/" + path.split("://", 1)[1].partition("/")[2]
        parts = [p for p in path.split("/") if p]
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


_JSON_SPECIAL = _LazyRegex(r'[\[\]{}"\\]')


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


def _check_depth(document):
    # type: (str) -> None
    """Refuse nesting deeper than MAX_DOCUMENT_DEPTH, in one linear pass over
    the brackets, quotes and backslashes (strings are skipped)."""
    depth = 0
    in_string = False
    skip = -1
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
                raise StatusDocumentError(
                    "nesting too deep (more than %d levels)" % MAX_DOCUMENT_DEPTH
                )
        elif char in "]}":
            depth -= 1


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
        _check_depth(document)
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
# Retry policy ################################################################
###############################################################################

#: Shortest wait between two polls, in seconds. Small objects finish in
#: 0.5-1.5 s, so the first polls come quickly.
DEFAULT_FLOOR = 0.5

#: Longest wait between two polls, in seconds: also the most a server's
#: ``Retry-After`` can make us wait. Above azure-core's fixed 30 s so that a
#: one-hour operation costs fewer billed polls than a fixed 30 s loop.
DEFAULT_CAP = 60.0

#: Wait between polls as a share of the operation's age: the detection lag
#: stays under about a fifth of the time the operation took.
DEFAULT_GROWTH = 0.2

#: Share of each wait drawn at random (downwards), so that pollers that
#: started together drift apart.
DEFAULT_JITTER = 0.2

#: First wait after a transient error, doubled on each consecutive one.
DEFAULT_ERROR_BASE = 1.0

#: Overall deadline of :func:`poll`, in seconds (``None``: no deadline). An
#: apply takes up to an hour and a take of a large group several hours.
DEFAULT_TIMEOUT = 6 * 3600.0

#: Timeout of one HTTP request (connect, send, each read), in seconds.
DEFAULT_REQUEST_TIMEOUT = 10.0

#: Largest HTTP response body read, in bytes.
MAX_RESPONSE_BYTES = 1024 * 1024

#: HTTP statuses that are worth another try on a GET.
RETRY_STATUSES = frozenset((429, 500, 502, 503, 504))

#: Largest delay a server may ask for and still be heard (then clamped).
_MAX_HINT = 366 * 86400.0
_FACE_429 = _LazyRegex(r"(?i)try again in ([0-9]{1,7}(?:\.[0-9]{1,6})?) seconds?")


def _finite_delay(value, cap):
    # type: (Any, float) -> Optional[float]
    """*value* as a delay in [0, cap], or None if it is not a sane number."""
    if isinstance(value, bool):
        return None
    try:
        value = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if value != value or value < 0 or value > _MAX_HINT:  # NaN, negative, absurd
        return None
    return min(value, cap)


def parse_retry_after(headers, body=None, *, now=None):
    # type: (Mapping[str, str], Optional[str], Optional[float]) -> Optional[float]
    """The delay, in seconds, that a response asks for, or ``None``.

    Reads ``retry-after-ms``, ``x-ms-retry-after-ms`` and ``Retry-After``
    (delta-seconds or an HTTP-date, compared with *now*, a POSIX time that
    defaults to the wall clock) from *headers* (lower-case keys), then the
    Face 429 text "Try again in N seconds." from *body*. Anything that is not
    a sane, finite, non-negative number is ignored, never raised.
    """
    for name, scale in (("retry-after-ms", 0.001), ("x-ms-retry-after-ms", 0.001)):
        raw = headers.get(name)
        if raw is not None:
            value = _header_number(raw)
            if value is not None:
                return value * scale
    raw = headers.get("retry-after")
    if raw is not None:
        value = _header_number(raw)
        if value is not None:
            return value
        value = _http_date_delay(raw, now)
        if value is not None:
            return value
    if body:
        match = _FACE_429.search(body[:4096])
        if match:
            return float(match.group(1))
    return None


_NUMBER = _LazyRegex(r"[0-9]{1,10}(?:\.[0-9]{1,6})?")


def _header_number(raw):
    # type: (str) -> Optional[float]
    """A plain, ASCII, non-negative number of at most 10 integer digits.

    A header sent twice arrives joined with ``,``: the first value counts.
    """
    text = raw.split(",", 1)[0].strip(" \t")
    if _NUMBER.fullmatch(text):
        value = float(text)
        return value if value <= _MAX_HINT else None
    return None


def _http_date_delay(raw, now):
    # type: (str, Optional[float]) -> Optional[float]
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
    if now is None:
        import time

        now = time.time()
    try:
        delay = when.timestamp() - now
    except (OverflowError, ValueError, OSError):
        return None
    return max(0.0, delay) if delay <= _MAX_HINT else None


class RetryPolicy(_FrozenDataclass):
    """When to poll again, and which errors are worth another try.

    Immutable, like urllib3's ``Retry``: derive a variant with
    ``dataclasses.replace(policy, cap=30)``.

    Between polls the wait is ``growth`` times the operation's age, kept
    within [``floor``, ``cap``] and lowered at random by up to ``jitter``
    of itself: quick operations are seen quickly (0.5 s steps at first),
    long ones are not hammered (one poll a minute at most, after about five
    minutes). After a transient error the wait is ``error_base`` doubled
    per consecutive error, within [``floor``, ``cap``], half of it random.
    A server's ``Retry-After`` (and kin) replaces the computed wait, still
    within [``floor``, ``cap``] and the time left. ``max_errors`` bounds the
    consecutive transient errors (``None``: only the deadline does).
    """

    floor: float = DEFAULT_FLOOR
    cap: float = DEFAULT_CAP
    growth: float = DEFAULT_GROWTH
    jitter: float = DEFAULT_JITTER
    error_base: float = DEFAULT_ERROR_BASE
    max_errors: Optional[int] = None
    retry_statuses: frozenset = RETRY_STATUSES

    def __post_init__(self):
        for name in ("floor", "cap", "growth", "jitter", "error_base"):
            value = getattr(self, name)
            if (isinstance(value, bool) or not isinstance(value, (int, float))
                    or _finite_delay(value, float("inf")) is None):
                raise ValueError("RetryPolicy.%s must be a finite number >= 0, not %r"
                                 % (name, value))
        if self.max_errors is not None and (
                isinstance(self.max_errors, bool) or not isinstance(self.max_errors, int)
                or self.max_errors < 0):
            raise ValueError("RetryPolicy.max_errors must be None or an int >= 0, not %r"
                             % (self.max_errors,))
        if not 0 <= self.jitter <= 1:
            raise ValueError("RetryPolicy.jitter must be within 0..1, not %r" % (self.jitter,))
        if self.floor > self.cap:
            raise ValueError("RetryPolicy.floor (%r) is above cap (%r)" % (self.floor, self.cap))

    def poll_delay(self, age, random):
        # type: (float, Callable[[], float]) -> float
        """The wait before the next poll of an operation *age* seconds old."""
        base = min(self.cap, max(self.floor, self.growth * age))
        return max(self.floor, base * (1.0 - self.jitter * random()))

    def error_delay(self, errors, random):
        # type: (int, Callable[[], float]) -> float
        """The wait after the *errors*-th consecutive transient error."""
        base = min(self.cap, self.error_base * 2.0 ** min(max(errors - 1, 0), 30))
        return min(self.cap, max(self.floor, base * (0.5 + 0.5 * random())))

    def is_retryable(self, error, errors):
        # type: (BaseException, int) -> bool
        """Whether *error* (the *errors*-th in a row) is worth another try."""
        if self.max_errors is not None and errors > self.max_errors:
            return False
        if isinstance(error, HTTPError):
            return error.status in self.retry_statuses
        return isinstance(error, NetworkError) and error.retryable

    def clamp(self, delay, time_left=None):
        # type: (Any, Optional[float]) -> float
        """*delay* kept within [floor, cap] and the time left; a value that is
        not a sane number (NaN, inf, negative, garbage) becomes the floor."""
        value = _finite_delay(delay, self.cap)
        value = self.floor if value is None else max(self.floor, value)
        if time_left is not None:
            value = min(value, max(0.0, time_left))
        return value


###############################################################################
# URLs and secrets ############################################################
###############################################################################

#: The Face API base path added to an endpoint given without a path.
FACE_API_PATH = "/face/v1.0"

#: Header that carries the subscription key.
KEY_HEADER = "Ocp-Apim-Subscription-Key"

#: Headers whose values are secrets: never logged, shown, or sent to another
#: origin than the endpoint's.
SECRET_HEADERS = frozenset(
    ("ocp-apim-subscription-key", "authorization", "proxy-authorization", "api-key",
     "x-api-key", "cookie")
)

_BAD_URL_CHARS = _LazyRegex(r"[^\x21-\x5b\x5d-\x7e]")  # controls, space, \\, non-ASCII
_BAD_HEADER_CHARS = _LazyRegex(r"[\x00-\x08\x0a-\x1f\x7f]")
_TOKEN = _LazyRegex(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _split_url(url, *, allow_http=False, what="URL"):
    # type: (str, bool, str) -> Any
    """urlsplit() of an absolute URL that passes the safety rules."""
    from urllib.parse import urlsplit

    if not isinstance(url, str):
        raise UnsafeURLError("%s must be a str, not %s" % (what, type(url).__name__))
    if not url:
        raise UnsafeURLError("%s is empty" % what)
    match = _BAD_URL_CHARS.search(url)
    if match:
        raise UnsafeURLError(
            "%s contains %r at index %d (control characters, spaces, backslashes and "
            "non-ASCII characters are refused; percent-encode them)"
            % (what, match.group(), match.start())
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeURLError("%s is malformed: %s" % (what, exc)) from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise UnsafeURLError(
            "%s has scheme %r: only https (and http to loopback) is allowed"
            % (what, scheme or "(none)")
        )
    if "@" in parts.netloc:
        raise UnsafeURLError("%s has userinfo ('user@host'), which is refused" % what)
    if not parts.hostname:
        raise UnsafeURLError("%s has no host" % what)
    if scheme == "http" and not allow_http and not _is_loopback(parts.hostname):
        raise UnsafeURLError(
            "%s uses plain http to %s: only https is allowed to a host other than "
            "loopback (allow_http=True, or --allow-http, overrides)" % (what, parts.hostname)
        )
    if port is not None and port == 0:
        raise UnsafeURLError("%s has port 0" % what)
    return parts


def _is_loopback(host):
    # type: (str) -> bool
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _origin(parts):
    # type: (Any) -> Tuple[str, str, int]
    scheme = parts.scheme.lower()
    return (scheme, parts.hostname.lower(), parts.port or (443 if scheme == "https" else 80))


def redact_url(url):
    # type: (str) -> str
    """*url* as it may be shown: no query string (SAS ``sig=`` and other
    tokens travel there), no fragment, no userinfo."""
    if not isinstance(url, str):
        return "<%s>" % type(url).__name__
    base = url.split("#", 1)[0]
    base, q, _query = base.partition("?")
    if "://" in base:
        scheme, _, rest = base.partition("://")
        host, slash, path = rest.partition("/")
        base = "%s://%s%s%s" % (scheme, host.rpartition("@")[2], slash, path)
    return _short(base + ("?…" if q else ""), 200)


def _short(text, limit):
    return text if len(text) <= limit else text[: limit - 1] + "…"


def api_base(endpoint, *, allow_http=False):
    # type: (str, bool) -> str
    """The API base of a resource endpoint: ``https://host`` becomes
    ``https://host/face/v1.0``; an endpoint with a path is kept as it is."""
    parts = _split_url(endpoint, allow_http=allow_http, what="endpoint")
    if parts.query or parts.fragment:
        raise UnsafeURLError("endpoint must not have a query or fragment")
    path = parts.path.rstrip("/")
    if not path:
        path = FACE_API_PATH
    return "%s://%s%s" % (parts.scheme.lower(), parts.netloc, path)


def resolve_operation_url(operation_location, endpoint=None, *, allow_http=False):
    # type: (str, Optional[str], bool) -> str
    """The absolute URL of an ``Operation-Location``.

    A relative one (``/operations/{id}``) is relative to the API base, not to
    the host root; an absolute one must be on the endpoint's origin (so the
    key cannot travel elsewhere). Raises :class:`UnsafeURLError`.
    """
    if not isinstance(operation_location, str):
        raise UnsafeURLError(
            "Operation-Location must be a str, not %s" % type(operation_location).__name__
        )
    loc = operation_location
    match = _BAD_URL_CHARS.search(loc)
    if match:
        raise UnsafeURLError(
            "Operation-Location contains %r at index %d" % (match.group(), match.start())
        )
    if loc.startswith("/") and not loc.startswith("//"):
        if endpoint is None:
            raise UnsafeURLError(
                "Operation-Location %s is relative: pass the endpoint it belongs to"
                % redact_url(loc)
            )
        url = api_base(endpoint, allow_http=allow_http) + loc
        _split_url(url, allow_http=allow_http, what="Operation-Location")
        return url
    if loc.startswith("//"):
        raise UnsafeURLError("Operation-Location %s is scheme-relative: refused" % redact_url(loc))
    parts = _split_url(loc, allow_http=allow_http, what="Operation-Location")
    if endpoint is not None:
        base = _split_url(endpoint, allow_http=allow_http, what="endpoint")
        if _origin(parts) != _origin(base):
            raise UnsafeURLError(
                "Operation-Location %s is on another origin than the endpoint %s: "
                "refused, so that the key goes nowhere else"
                % (redact_url(loc), redact_url(endpoint))
            )
    return loc


def _query_values(url):
    """The values in *url*'s query string (a SAS ``sig=`` among them): they
    are treated as secrets."""
    query = url.partition("?")[2].partition("#")[0]
    values = []
    for pair in query.split("&"):
        value = pair.partition("=")[2]
        if value:
            values.append(value)
            from urllib.parse import unquote

            values.append(unquote(value))
    return values


def _check_headers(headers):
    # type: (Mapping[str, str]) -> Dict[str, str]
    """Header names and values without CR, LF or other control characters."""
    checked = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            raise UnsafeURLError("header name %s is not a valid token" % _short_repr(name, 40))
        if not isinstance(value, str):
            raise UnsafeURLError("header %s must have a str value" % name)
        if max(value, default=" ") > "\xff":  # http.client sends latin-1
            shown = "<secret>" if name.lower() in SECRET_HEADERS else _short_repr(value, 40)
            raise UnsafeURLError("header %s has characters outside latin-1: %s"
                                 % (name, shown))
        if _BAD_HEADER_CHARS.search(value) or value != value.strip(" \t"):
            shown = "<secret>" if name.lower() in SECRET_HEADERS else _short_repr(value, 40)
            raise UnsafeURLError(
                "header %s has control characters or surrounding space: %s" % (name, shown)
            )
        checked[name] = value
    return checked


_QUERY_SECRET = _LazyRegex(r"(?i)(sig|signature|key|token|code)=[^&\s\"']+")


class _Scrubber:
    """Replaces secret values in text that may be shown (errors, logs)."""

    def __init__(self, secrets=()):
        self._secrets = sorted({s for s in secrets if s and len(s) >= 8}, key=len, reverse=True)

    def add(self, *values):
        merged = set(self._secrets) | {v for v in values if v and len(v) >= 8}
        self._secrets = sorted(merged, key=len, reverse=True)

    def __call__(self, text):
        if text is None:
            return None
        text = str(text)
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "***")
            if secret.startswith("Bearer ") and secret[7:] in text:
                text = text.replace(secret[7:], "***")
            # A secret cut short by a clipped message still must not show:
            # its first 12 or more characters count as the secret.
            bare = secret[7:] if secret.startswith("Bearer ") else secret
            if len(bare) >= 16 and bare[:12] in text:
                for k in range(len(bare) - 1, 11, -1):
                    if bare[:k] in text:
                        text = text.replace(bare[:k], "***")
        return _QUERY_SECRET.sub(r"\1=***", text)

    def __repr__(self):
        return "<_Scrubber of %d secrets>" % len(self._secrets)


###############################################################################
# Transport ###################################################################
###############################################################################


class Request:
    """An HTTP request as the transport sees it.

    ``headers`` may hold secrets: ``repr()`` shows their names only.
    ``timeout`` is the time the whole exchange may take, in seconds.
    """

    __slots__ = ("method", "url", "headers", "body", "timeout", "max_bytes")

    def __init__(self, method, url, headers=None, body=None, timeout=DEFAULT_REQUEST_TIMEOUT,
                 max_bytes=MAX_RESPONSE_BYTES):
        self.method = method
        self.url = url
        self.headers = dict(headers or {})
        self.body = body
        self.timeout = timeout
        self.max_bytes = max_bytes

    def __repr__(self):
        return "<Request %s %s headers=%s>" % (
            self.method, redact_url(self.url), sorted(self.headers),
        )


class Response:
    """An HTTP response: ``status``, ``headers`` (lower-case names, repeated
    headers joined with ``", "``), ``body`` (bytes, at most the cap)."""

    __slots__ = ("status", "headers", "body", "url")

    def __init__(self, status, headers, body=b"", url=None):
        self.status = status
        self.headers = headers
        self.body = body
        self.url = url

    def text(self, limit=None):
        # type: (Optional[int]) -> str
        body = self.body if limit is None else self.body[:limit]
        return body.decode("utf-8", "replace")

    def __repr__(self):
        return "<Response %d, %d bytes>" % (self.status, len(self.body))


class _DeadlineReader(_io.RawIOBase):
    """A socket reader that never waits past a deadline in all: each read
    gets only the time left, so a server that drips one byte at a time
    cannot stretch a request beyond its timeout."""

    def __init__(self, owner):
        self._owner = owner
        owner._readers += 1

    def readable(self):
        return True

    def readinto(self, buffer):
        import socket

        owner = self._owner
        left = owner.deadline - owner._clock()
        if left <= 0:
            raise socket.timeout("timed out (request deadline)")
        owner._sock.settimeout(left)
        return owner._sock.recv_into(buffer)

    def close(self):
        if not self.closed:
            super().close()
            self._owner._reader_closed()


class _DeadlineSocket:
    """Wraps a connected socket so that http.client's reads obey a deadline.

    Like a real socket's ``makefile``, closing the socket while a response
    is still being read (a close-delimited body) waits for the reader."""

    def __init__(self, sock, clock):
        self._sock = sock
        self._clock = clock
        self._readers = 0
        self._closing = False
        self.deadline = clock() + DEFAULT_REQUEST_TIMEOUT

    def makefile(self, mode="rb", *args, **kwargs):
        import io

        return io.BufferedReader(_DeadlineReader(self))

    def _reader_closed(self):
        self._readers -= 1
        if self._closing and self._readers <= 0:
            self._sock.close()

    def close(self):
        self._closing = True
        if self._readers <= 0:
            self._sock.close()

    def sendall(self, data):
        left = self.deadline - self._clock()
        if left <= 0:
            import socket

            raise socket.timeout("timed out (request deadline)")
        self._sock.settimeout(left)
        return self._sock.sendall(data)

    def __getattr__(self, name):
        return getattr(self._sock, name)


class HTTPTransport:
    """The built-in transport: ``http.client`` with connections kept alive per
    origin (one TLS handshake, not one per poll), no proxy, no redirects
    followed (the poller decides), TLS always verified.

    *ssl_context* (an ``ssl.SSLContext``) or *cafile* select the trusted
    certificates; a context that does not verify is refused. Safe to share
    between threads.
    """

    def __init__(self, *, ssl_context=None, cafile=None):
        if ssl_context is not None:
            import ssl

            if ssl_context.verify_mode != ssl.CERT_REQUIRED or not ssl_context.check_hostname:
                raise ValueError(
                    "ssl_context must verify certificates and host names "
                    "(verify_mode=CERT_REQUIRED, check_hostname=True)"
                )
        if cafile is not None:
            import os

            if not os.path.isfile(cafile):
                raise ValueError("cafile %r is not a file" % (cafile,))
        self._ssl_context = ssl_context
        self._cafile = cafile
        self._idle = {}  # type: Dict[Tuple[str, str, int], list]
        import threading

        self._lock = threading.Lock()
        #: bumped by close(): a request that was in flight then does not put
        #: its connection back among the idle ones
        self._generation = 0

    def __repr__(self):
        return "<HTTPTransport, %d idle connections>" % sum(len(v) for v in self._idle.values())

    def _context(self):
        import ssl

        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context(cafile=self._cafile)
        context = self._ssl_context
        if context.verify_mode != ssl.CERT_REQUIRED or not context.check_hostname:
            raise UnsafeURLError("the ssl_context no longer verifies certificates and host "
                                 "names: refused")
        return context

    def _connect(self, origin, timeout):
        import http.client

        scheme, host, port = origin
        if scheme == "https":
            conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=self._context())
        else:
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
        return conn

    def send(self, request):
        # type: (Request) -> Response
        """Send *request*; raise :class:`NetworkError` or
        :class:`ResponseTooLarge`, or return the :class:`Response`."""
        import time

        clock = time.monotonic
        parts = _split_url(request.url, allow_http=True)
        origin = _origin(parts)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        deadline = clock() + max(0.001, request.timeout)
        reuse = request.method == "GET"
        generation = self._generation
        conn = None
        if reuse:
            with self._lock:
                pool = self._idle.get(origin)
                if pool:
                    conn = pool.pop()
        fresh = conn is None
        for attempt in (1, 2):
            if conn is None:
                conn = self._connect(origin, max(0.001, deadline - clock()))
                fresh = True
            try:
                if conn.sock is None:
                    try:
                        conn.connect()
                    except Exception as exc:
                        conn.close()
                        raise _network_error(exc, sent=False, url=request.url) from None
                    conn.sock = _DeadlineSocket(conn.sock, clock)
                conn.sock.deadline = deadline
                conn.request(request.method, path, body=request.body, headers=request.headers)
                raw = conn.getresponse()
                return self._read(raw, conn, origin, request, reuse, generation)
            except (NetworkError, ResponseTooLarge):
                conn.close()
                raise
            except Exception as exc:
                conn.close()
                if not _is_network_exception(exc):
                    raise
                # A kept-alive connection the server had closed: try once more
                # on a fresh one (GET only; never for a POST).
                if not fresh and attempt == 1 and _is_stale_connection(exc):
                    conn = None
                    continue
                raise _network_error(exc, sent=True, url=request.url) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _read(self, raw, conn, origin, request, reuse, generation):
        length = raw.getheader("content-length")
        limit = request.max_bytes
        if length is not None:
            try:
                announced = int(length.strip())
            except ValueError:
                announced = None
            if announced is not None and announced > limit:
                raise ResponseTooLarge(
                    "response announces %d bytes, more than the cap of %d" % (announced, limit)
                )
        chunks, total = [], 0
        while True:  # in pieces, so that an oversized body is never held whole
            chunk = raw.read(min(65536, limit + 1 - total))
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                raise ResponseTooLarge("response body exceeds the cap of %d bytes" % limit)
            chunks.append(chunk)
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        headers = {}
        for name, value in raw.getheaders():
            name = name.lower()
            headers[name] = headers[name] + ", " + value if name in headers else value
        if reuse and not raw.will_close and raw.isclosed():
            with self._lock:
                if generation == self._generation:
                    self._idle.setdefault(origin, []).append(conn)
                    conn = None
        if conn is not None:
            conn.close()
        return Response(raw.status, headers, body, request.url)

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


def _is_network_exception(exc):
    import http.client

    return isinstance(exc, (OSError, http.client.HTTPException))


def _is_stale_connection(exc):
    import http.client

    return isinstance(exc, (http.client.RemoteDisconnected, ConnectionResetError,
                            BrokenPipeError, ConnectionAbortedError))


def _network_error(exc, *, sent, url):
    # type: (BaseException, bool, Optional[str]) -> NetworkError
    import socket

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
    elif exc.__class__.__name__ == "RemoteDisconnected":
        what = "server closed the connection without answering"
    elif exc.__class__.__name__.startswith("SSL") or "CERTIFICATE" in str(exc):
        what, sent = "TLS error: %s" % _clip(getattr(exc, "reason", None) or exc, 200), False
        if exc.__class__.__name__ == "SSLCertVerificationError" or "CERTIFICATE" in str(exc):
            return NetworkError("%s (%s)" % (what, redact_url(url)), sent=False,
                                url=redact_url(url), retryable=False)
    else:
        what = "%s: %s" % (exc.__class__.__name__, _clip(exc, 200))
    return NetworkError("%s (%s)" % (what, redact_url(url)), sent=sent, url=redact_url(url))


###############################################################################
# Hooks and plugins ###########################################################
###############################################################################
#
# Plugins are pluggy plugins of the project "opstatus". The markers below set
# the attribute pluggy reads (``opstatus_impl`` / ``opstatus_spec``, a dict),
# so a plugin can be written, and this module imported, without pluggy;
# registering one needs pluggy (``pip install opstatus[plugins]``). Without
# it, pass ``transport=``, ``policy=`` and ``on_status=`` as plain arguments.

#: Entry-point group that installed plugins declare.
ENTRY_POINT_GROUP = "opstatus"


def hookimpl(function=None, *, tryfirst=False, trylast=False, optionalhook=False,
             specname=None, wrapper=False, hookwrapper=False):
    """Mark a function as an implementation of an opstatus hook, as
    ``pluggy.HookimplMarker("opstatus")`` would, without needing pluggy::

        class MyPlugin:
            @opstatus.hookimpl
            def opstatus_status_changed(self, url, previous, status): ...
    """

    def mark(func):
        setattr(func, "opstatus_impl", {
            "wrapper": wrapper, "hookwrapper": hookwrapper, "optionalhook": optionalhook,
            "tryfirst": tryfirst, "trylast": trylast, "specname": specname,
        })
        return func

    return mark if function is None else mark(function)


def _hookspec(firstresult=False):
    def mark(func):
        setattr(func, "opstatus_spec", {
            "firstresult": firstresult, "historic": False, "warn_on_impl": None,
            "warn_on_impl_args": None,
        })
        return func

    return mark


class HookSpecs:
    """The hooks of opstatus. Each method documents one; implement it in a
    plugin under the same name (decorated with :func:`hookimpl`)."""

    @_hookspec(firstresult=True)
    def opstatus_send_request(self, request):
        """Send an HTTP request and return its :class:`Response` (the transport).

        :param request: the :class:`Request` (``method``, ``url``, ``headers``,
            ``body``, ``timeout`` in seconds for the whole exchange,
            ``max_bytes``). Its URL and headers have passed the security
            rules; do not follow redirects (return the 3xx: the core decides).
        :return: a :class:`Response`, or ``None`` to let the next plugin (in
            the end the built-in ``http.client`` transport) send it. Raise
            :class:`NetworkError` for a failure to connect (``sent=False``)
            or after sending.

        Stops at first non-None result. The core still enforces the body cap
        and the deadline: a transport that takes longer than
        ``request.timeout`` is abandoned and the request counts as failed.

        Example::

            class RequestsTransport:
                def __init__(self, session):
                    self.session = session

                @opstatus.hookimpl
                def opstatus_send_request(self, request):
                    r = self.session.request(request.method, request.url,
                        headers=request.headers, data=request.body,
                        timeout=request.timeout, allow_redirects=False)
                    return opstatus.Response(r.status_code,
                        {k.lower(): v for k, v in r.headers.items()}, r.content)
        """

    @_hookspec()
    def opstatus_prepare_request(self, request):
        """Change a request before it is sent: add a header, say.

        :param request: the :class:`Request`; change ``request.headers`` in
            place. Headers added here are checked (no CR/LF), treated as
            secrets when their name is (``Authorization``…), and still go only
            to the endpoint's origin.
        :return: nothing.

        Example::

            class BearerAuth:
                @opstatus.hookimpl
                def opstatus_prepare_request(self, request):
                    request.headers["Authorization"] = "Bearer " + get_token()
        """

    @_hookspec(firstresult=True)
    def opstatus_next_delay(self, url, status, age, polls, policy):
        """Choose the wait before the next poll of an operation still running.

        :param url: the operation's URL (may hold secrets in its query: do
            not log it; use :func:`redact_url`).
        :param status: the latest :class:`OperationStatus`.
        :param age: seconds since polling started, or the operation's own
            age when the service reports a longer one.
        :param polls: requests sent so far for this operation.
        :param policy: the :class:`RetryPolicy` in force.
        :return: seconds, or ``None`` for the policy's choice. The core clamps
            the value to [floor, cap] and the time left.

        Stops at first non-None result.

        Example::

            @opstatus.hookimpl
            def opstatus_next_delay(url, status, age, polls, policy):
                return 5.0 if status.status is opstatus.Status.RUNNING else None
        """

    @_hookspec(firstresult=True)
    def opstatus_retry_delay(self, url, error, errors, policy):
        """Decide whether a transient error is worth another try, and when.

        :param url: the operation's URL (see :meth:`opstatus_next_delay`).
        :param error: the :class:`HTTPError` or :class:`NetworkError`.
        :param errors: consecutive errors so far, this one included.
        :param policy: the :class:`RetryPolicy` in force.
        :return: seconds to wait before trying again, ``False`` to give up
            (the error is raised), or ``None`` for the policy's choice.

        Stops at first non-None result.

        Example::

            @opstatus.hookimpl
            def opstatus_retry_delay(url, error, errors, policy):
                if isinstance(error, opstatus.HTTPError) and error.status == 503:
                    return False  # our gateway's 503s are final
        """

    @_hookspec()
    def opstatus_status_changed(self, url, previous, status):
        """An operation's status changed (or was seen for the first time).

        :param url: the operation's URL (see :meth:`opstatus_next_delay`).
        :param previous: the previous :class:`OperationStatus`, or ``None``.
        :param status: the new one.

        Example::

            @opstatus.hookimpl
            def opstatus_status_changed(url, previous, status):
                print(opstatus.redact_url(url), status.status)
        """

    @_hookspec()
    def opstatus_retry_scheduled(self, url, error, delay, errors):
        """A transient error will be retried after *delay* seconds.

        :param url: the operation's URL.
        :param error: the error (its text holds no secret).
        :param delay: seconds until the next try.
        :param errors: consecutive errors so far.

        Example::

            @opstatus.hookimpl
            def opstatus_retry_scheduled(url, error, delay, errors):
                metrics.increment("opstatus.retries")
        """

    @_hookspec()
    def opstatus_operation_finished(self, url, outcome, status, error):
        """Polling of an operation ended.

        :param url: the operation's URL.
        :param outcome: ``"succeeded"``, ``"failed"``, ``"timeout"``,
            ``"cancelled"`` or ``"error"``.
        :param status: the last :class:`OperationStatus` seen, or ``None``.
        :param error: the exception that ended it, or ``None`` on success.

        Notification hooks cannot stop a poll: an exception in one is logged
        (naming the plugin) and the others still run.

        Example::

            @opstatus.hookimpl
            def opstatus_operation_finished(url, outcome, status, error):
                if outcome != "succeeded":
                    page_someone(outcome, error)
        """


def _logger():
    import logging

    return logging.getLogger("opstatus")


class _BuiltinPlugin:
    """The built-in transport and retry policy, registered ``trylast`` (as
    ``opstatus.builtin``) so that any other plugin wins.

    A poller does not call these through pluggy but runs the same code
    itself, with its own transport (its ``cafile``/``ssl_context``, its kept-
    alive connections), random source and the server's ``Retry-After``;
    calling the hooks directly gets the same answers with the defaults.
    """

    def __init__(self):
        self.transport = None

    @hookimpl(trylast=True)
    def opstatus_send_request(self, request):
        if self.transport is None:
            self.transport = HTTPTransport()
        return self.transport.send(request)

    @hookimpl(trylast=True)
    def opstatus_next_delay(self, status, age, policy):
        import random

        return policy.poll_delay(age, random.random)

    @hookimpl(trylast=True)
    def opstatus_retry_delay(self, error, errors, policy):
        import random

        if not policy.is_retryable(error, errors):
            return False
        hint = getattr(error, "retry_after", None)
        return hint if hint is not None else policy.error_delay(errors, random.random)


class _Hooks:
    """Dispatch to pluggy hook implementations, attributing every failure to
    the plugin that caused it. Hook order is pluggy's (LIFO, tryfirst,
    trylast); only the public ``get_hookimpls()`` API is used. When a hook
    has wrappers, pluggy itself runs it (wrappers and all), and a failure is
    attributed to the hook rather than to one plugin."""

    def __init__(self, pm):
        self.pm = pm

    def _impls(self, name):
        caller = getattr(self.pm.hook, name, None)
        if caller is None:
            return [], False
        impls = list(reversed(caller.get_hookimpls()))
        wrapped = any(getattr(i, "hookwrapper", False) or getattr(i, "wrapper", False)
                      for i in impls)
        return impls, wrapped

    def has(self, name):
        impls, _wrapped = self._impls(name)
        return any(not isinstance(i.plugin, _BuiltinPlugin) for i in impls)

    def _via_pluggy(self, name, scrub, kwargs):
        try:
            return getattr(self.pm.hook, name)(**kwargs)
        except (OpStatusError, KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:
            raise _plugin_error("(a wrapped hook)", name, exc, scrub)

    def first(self, name, scrub, skip_builtin=False, trace=None, **kwargs):
        """The first non-None result and the name of the plugin that gave
        it, as ``(name, result)``; ``(None, None)`` when none did."""
        impls, wrapped = self._impls(name)
        if wrapped:
            result = self._via_pluggy(name, scrub, kwargs)
            return ("(a wrapped hook)", result) if result is not None else (None, None)
        for impl in impls:
            if skip_builtin and isinstance(impl.plugin, _BuiltinPlugin):
                continue
            if trace is not None:
                trace.append(impl.plugin_name)
            args = [kwargs[a] for a in impl.argnames]
            try:
                result = impl.function(*args)
            except (OpStatusError, KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:
                raise _plugin_error(impl.plugin_name, name, exc, scrub)
            if result is not None:
                return impl.plugin_name, result
        return None, None

    def each(self, name, scrub, **kwargs):
        """Call every implementation. A failing notifier is logged (naming
        it) and the others still run; a failing ``prepare_request`` ends the
        request with a :class:`PluginError`."""
        impls, wrapped = self._impls(name)
        request = kwargs.get("request")
        if wrapped:
            impls = [None]
        for impl in impls:
            try:
                if impl is None:
                    getattr(self.pm.hook, name)(**kwargs)
                else:
                    impl.function(*[kwargs[a] for a in impl.argnames])
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:
                plugin = "(a wrapped hook)" if impl is None else impl.plugin_name
                if request is not None:  # what the plugin set may be a secret too
                    headers = getattr(request, "headers", None)
                    if isinstance(headers, dict):
                        scrub.add(*(v for k, v in headers.items() if isinstance(v, str)
                                    and isinstance(k, str) and k.lower() in SECRET_HEADERS))
                if name == "opstatus_prepare_request":
                    if isinstance(exc, OpStatusError):
                        raise
                    raise _plugin_error(plugin, name, exc, scrub)
                _logger().warning("opstatus: plugin %s failed in %s: %s",
                                  plugin, name, scrub(_clip(exc, 300)))


def _plugin_error(plugin, hook, exc, scrub):
    text = scrub("%s: %s" % (type(exc).__name__, _clip(exc, 300)))
    err = PluginError("plugin %s failed in %s: %s" % (plugin, hook, text), plugin)
    # Chain the original only when its text holds no secret.
    err.__cause__ = exc if scrub(str(exc)) == str(exc) else None
    err.__suppress_context__ = True
    return err


_PLUGIN_MANAGER = None
_PM_LOCK = None


def _import_pluggy():
    try:
        import pluggy
    except ImportError:
        return None
    return pluggy


def plugin_manager():
    """The process-wide pluggy ``PluginManager`` of opstatus, created on first
    use: the specs, the built-in plugin (``trylast``), then the plugins of
    the ``opstatus`` entry-point group, unless
    ``OPSTATUS_DISABLE_PLUGIN_AUTOLOAD`` is set; names listed in
    ``OPSTATUS_DISABLED_PLUGINS`` (comma-separated) are blocked.

    Raises :class:`PluginError` when pluggy is not installed.
    """
    global _PLUGIN_MANAGER, _PM_LOCK
    if _PLUGIN_MANAGER is not None:
        return _PLUGIN_MANAGER
    import threading

    if _PM_LOCK is None:
        _PM_LOCK = threading.Lock()
    with _PM_LOCK:
        if _PLUGIN_MANAGER is None:
            _PLUGIN_MANAGER = make_plugin_manager(autoload=True)
    return _PLUGIN_MANAGER


def make_plugin_manager(autoload=False):
    """A new ``PluginManager`` with the specs and the built-in plugin; with
    *autoload*, the entry-point plugins too (as :func:`plugin_manager`).
    Tests use a fresh one each."""
    import os

    pluggy = _import_pluggy()
    if pluggy is None:
        raise PluginError(
            "plugins need pluggy: pip install 'opstatus[plugins]'. Without it, pass "
            "transport=, policy= and on_status= to poll() or Poller() directly."
        )
    pm = pluggy.PluginManager("opstatus")
    pm.add_hookspecs(HookSpecs)
    pm.register(_BuiltinPlugin(), name="opstatus.builtin")
    for name in os.environ.get("OPSTATUS_DISABLED_PLUGINS", "").split(","):
        if name.strip():
            pm.set_blocked(name.strip())
    if autoload and not os.environ.get("OPSTATUS_DISABLE_PLUGIN_AUTOLOAD"):
        try:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        except Exception as exc:
            raise PluginError("an entry-point plugin of group %r failed to load: %s; "
                              "block it with OPSTATUS_DISABLED_PLUGINS=%s"
                              % (ENTRY_POINT_GROUP, _clip(exc, 300),
                                 _failing_entry_point() or "NAME"),
                              _failing_entry_point()) from exc
    return pm


def _failing_entry_point():
    """The name of the first entry point of the group that fails to load."""
    import os

    try:
        from importlib import metadata
    except ImportError:  # Python 3.7: the backport, which pluggy uses there
        try:
            import importlib_metadata as metadata
        except ImportError:  # pragma: no cover
            return None
    blocked = {n.strip() for n in os.environ.get("OPSTATUS_DISABLED_PLUGINS", "").split(",")}
    for dist in metadata.distributions():
        for ep in dist.entry_points:
            if ep.group != ENTRY_POINT_GROUP or ep.name in blocked:
                continue
            try:
                ep.load()
            except Exception:
                return ep.name
    return None


def register_plugin(plugin, name=None):
    """Register *plugin* (a module, class instance…) with the process-wide
    plugin manager; returns its name. Needs pluggy (:class:`PluginError`
    otherwise)."""
    pm = plugin_manager()
    # Validate on a scratch manager first, so that a bad plugin leaves the
    # real one untouched (pluggy before 1.7 registers hooks one by one).
    pluggy = _import_pluggy()
    scratch = pluggy.PluginManager("opstatus")
    scratch.add_hookspecs(HookSpecs)
    try:
        scratch.register(plugin, name=name)
        scratch.check_pending()  # an opstatus_* function that matches no hook
    except Exception as exc:
        raise PluginError("plugin %s cannot be registered: %s"
                          % (name or getattr(plugin, "__name__", type(plugin).__name__),
                             _clip(exc, 300)), name) from exc
    try:
        return pm.register(plugin, name=name)
    except ValueError as exc:  # already registered, or the name is taken or blocked
        raise PluginError("plugin %s cannot be registered: %s" % (name or plugin, exc),
                          name) from exc


def _default_hooks(plugins):
    """The hooks a new poller uses: *plugins* is a PluginManager, ``False``
    (none), or ``None`` (the process-wide one when pluggy is installed)."""
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


def _error_details(response, scrub):
    # type: (Response, Callable[[str], str]) -> Tuple[Optional[str], Optional[str]]
    """The service's ``error.code`` and ``error.message``, scrubbed, or None."""
    import json

    try:
        doc = json.loads(response.text(MAX_DOCUMENT_BYTES))
    except (ValueError, RecursionError):
        return None, None
    error = doc.get("error") if isinstance(doc, dict) else None
    if not isinstance(error, dict):
        return None, None
    code, message = error.get("code"), error.get("message")
    code = _clip(scrub(code), 100) if isinstance(code, str) else None
    message = _clip(scrub(message)) if isinstance(message, str) else None
    return code, message


def _http_error(response, scrub, url, now=None):
    # type: (Response, Callable[[str], str], str, Optional[float]) -> HTTPError
    code, message = _error_details(response, scrub)
    hint = parse_retry_after(response.headers, message, now=now)
    cls = OperationNotFound if response.status in (404, 410) else HTTPError
    return cls(response.status, code, message, url=redact_url(url), retry_after=hint)


class _Client:
    """What the poller and take/apply share: URL rules, secret headers,
    same-origin redirects, size caps, scrubbed errors, plugin dispatch."""

    def __init__(self, endpoint, key, headers, allow_http, transport, ssl_context, cafile,
                 request_timeout, max_bytes, plugins=None):
        self.allow_http = bool(allow_http)
        self.endpoint = endpoint
        self.origin = None  # type: Optional[Tuple[str, str, int]]
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
        self.scrub = _Scrubber(
            v for k, v in self.headers.items() if k.lower() in SECRET_HEADERS
        )
        self.explicit_transport = transport
        #: a caller's cafile or ssl_context: the built-in transport honours
        #: them, so transport plugins are not consulted
        self.explicit_tls = ssl_context is not None or cafile is not None
        self.transport = HTTPTransport(ssl_context=ssl_context, cafile=cafile) \
            if transport is None else None
        self.request_timeout = request_timeout
        self.max_bytes = max_bytes
        self.hooks = _default_hooks(plugins)

    def __repr__(self):
        return "<_Client %s>" % (redact_url(self.endpoint) if self.endpoint else "(no endpoint)")

    def bind(self, url):
        """Fix the origin that secrets may go to (when no endpoint was given)."""
        parts = _split_url(url, allow_http=self.allow_http)
        if self.origin is None:
            self.origin = _origin(parts)

    def _check_origin(self, url, what="request"):
        parts = _split_url(url, allow_http=self.allow_http, what=what)
        if self.origin is not None and _origin(parts) != self.origin:
            raise UnsafeURLError(
                "%s to %s, another origin than the endpoint's: refused, so that no "
                "credential goes there" % (what, redact_url(url))
            )

    def _prepare(self, request):
        if self.hooks is None or not self.hooks.has("opstatus_prepare_request"):
            return
        url = request.url
        self.hooks.each("opstatus_prepare_request", self.scrub, request=request)
        if not isinstance(request.headers, dict):
            raise PluginError("a plugin replaced request.headers with %s"
                              % type(request.headers).__name__)
        request.headers = _check_headers(request.headers)
        self.scrub.add(*(v for k, v in request.headers.items() if k.lower() in SECRET_HEADERS))
        if request.url != url:
            self._check_origin(request.url)

    def _transport(self, request):
        if type(self.explicit_transport) is HTTPTransport:
            # One built-in transport shared between clients (connections kept
            # alive across take, apply and polls): it keeps the deadline itself.
            return self.explicit_transport.send(request)
        if self.explicit_transport is not None:
            name = type(self.explicit_transport).__name__
            response = _call_transport(lambda: self.explicit_transport.send(request),
                                       request, lambda: name, self.scrub)
        elif (self.hooks is not None and not self.explicit_tls
              and self.hooks.has("opstatus_send_request")):
            trace = []

            def dispatch():
                return self.hooks.first("opstatus_send_request", self.scrub,
                                        request=request, skip_builtin=True, trace=trace)

            def running():
                return "transport plugin %s" % (trace[-1] if trace else "(none yet)")

            name, response = _call_transport(dispatch, request, running, self.scrub)
            if response is None:
                return self.transport.send(request)
        else:
            return self.transport.send(request)
        return _checked_response(response, request, name)

    def send(self, method, url, body=None, timeout=None, content_type=None):
        # type: (str, str, Optional[bytes], Optional[float], Optional[str]) -> Response
        """One exchange, following at most 5 same-origin redirects."""
        headers = dict(self.headers)
        headers.setdefault("Accept", "application/json")
        headers.setdefault("User-Agent", "opstatus/" + __version__)
        if content_type:
            headers["Content-Type"] = content_type
        for _hop in range(6):
            self._check_origin(url)
            request = Request(method, url, dict(headers), body,
                              timeout=self.request_timeout if timeout is None else timeout,
                              max_bytes=self.max_bytes)
            self._prepare(request)
            response = self._transport(request)
            if response.status in (301, 302, 303, 307, 308) and "location" in response.headers:
                target = response.headers["location"].strip()
                from urllib.parse import urljoin

                if _BAD_URL_CHARS.search(target):
                    raise UnsafeURLError("redirect Location has control characters: refused")
                url = urljoin(url, target)
                self._check_origin(url, "redirect")
                if response.status == 303:
                    method, body = "GET", None
                continue
            return response
        raise HTTPError(response.status, None, "too many redirects", url=redact_url(url))

    def scrub_error(self, exc):
        """Take the secrets out of an exception's text, and out of the
        exceptions chained to it (in place); returns it."""
        seen = set()
        link = exc
        while link is not None and id(link) not in seen and len(seen) < 16:
            seen.add(id(link))
            try:
                link.args = tuple(self.scrub(a) if isinstance(a, str) else a
                                  for a in link.args)
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
        if self.transport is not None:
            self.transport.close()


def _call_transport(func, request, describe, scrub):
    """Run a third-party transport in a worker thread, so that one that hangs
    cannot hold the caller past the request's timeout (the thread is left to
    finish on its own). *describe()* names what ran, for errors."""
    import threading

    box = {}

    def run():
        try:
            box["result"] = func()
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc

    worker = threading.Thread(target=run, name="opstatus-transport", daemon=True)
    worker.start()
    worker.join(max(0.0, request.timeout) + 0.25)
    if worker.is_alive():
        raise NetworkError("%s did not answer within %.1f s (%s)"
                           % (describe(), request.timeout, redact_url(request.url)),
                           sent=True, url=redact_url(request.url))
    if "error" in box:
        exc = box["error"]
        if isinstance(exc, (OpStatusError, KeyboardInterrupt, SystemExit)):
            raise exc
        raise _plugin_error(describe(), "send", exc, scrub)
    return box.get("result")


def _checked_response(response, request, name):
    """A transport's answer, held to the core's rules: a Response, an HTTP
    status, str headers (lower-cased), a body within the cap."""
    if not isinstance(response, Response):
        raise PluginError("%s returned %s instead of an opstatus.Response"
                          % (name, type(response).__name__), name)
    status = response.status
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise PluginError("%s returned an invalid HTTP status %s" % (name, _short_repr(status)),
                          name)
    headers = response.headers
    if not isinstance(headers, _Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        raise PluginError("%s returned headers that are not a mapping of str to str" % name,
                          name)
    body = response.body
    if not isinstance(body, (bytes, bytearray)):
        raise PluginError("%s returned a body of type %s, not bytes"
                          % (name, type(body).__name__), name)
    if len(body) > request.max_bytes:
        raise ResponseTooLarge("response body exceeds the cap of %d bytes" % request.max_bytes)
    return Response(status, {k.lower(): v for k, v in headers.items()}, bytes(body),
                    request.url)


class Poller:
    """Polls one operation until it ends; no threads of its own.

    Iterate to see every status observed (the last one terminal), or call
    :meth:`wait` for the final one::

        poller = Poller(location, endpoint=endpoint, key=key)
        for status in poller:
            print(status.status, status.last_action_time)
        print(poller.latest.snapshot_id)

    :meth:`cancel` (from any thread) stops it at the next chance: a wait is
    cut short at once; a request in flight ends within its timeout.

    *clock* (monotonic seconds), *sleep* and *random* (a callable returning a
    float in [0, 1)) can be injected; by default they are looked up when
    used, so ``freezegun`` and friends apply. Even with a clock that does not
    move, the deadline holds: the time slept counts too.

    *plugins* is a pluggy ``PluginManager`` to consult (see
    :func:`make_plugin_manager`), ``False`` for none, or ``None`` (default)
    for the process-wide one when pluggy is installed. An explicit
    *transport* or *policy* wins over plugins; plugins win over built-ins.
    """

    def __init__(self, operation_location, *, endpoint=None, key=None, headers=None,
                 timeout=DEFAULT_TIMEOUT, policy=None, transport=None, allow_http=False,
                 ssl_context=None, cafile=None, request_timeout=DEFAULT_REQUEST_TIMEOUT,
                 max_bytes=MAX_RESPONSE_BYTES, clock=None, sleep=None, random=None,
                 on_status=None, plugins=None):
        if timeout is not None and _finite_delay(timeout, float("inf")) is None:
            raise ValueError("timeout must be a finite number >= 0 or None, not %r" % (timeout,))
        if _finite_delay(request_timeout, float("inf")) is None or not request_timeout:
            raise ValueError("request_timeout must be a finite number > 0, not %r" % (request_timeout,))
        self.url = resolve_operation_url(operation_location, endpoint, allow_http=allow_http)
        self._client = _Client(endpoint, key, headers, allow_http, transport, ssl_context,
                               cafile, request_timeout, max_bytes, plugins)
        self._client.bind(self.url)
        self._client.scrub.add(*_query_values(self.url))
        self.timeout = None if timeout is None else float(timeout)
        self.policy = policy if policy is not None else RetryPolicy()
        self._clock = clock
        self._sleep = sleep
        self._random = random
        self._on_status = on_status
        import threading

        self._cancelled = threading.Event()
        self.latest = None  # type: Optional[OperationStatus]
        self.polls = 0  #: requests sent (each one billed by the service)
        self.errors = 0  #: transient errors met
        self.slept = 0.0  #: seconds spent waiting
        self._start = None  # type: Optional[float]
        self._errors_in_row = 0
        self._last_attempt = False  # the deadline allows no wait after the next poll
        self._wait_limit = None  # type: Optional[float]  # a deadline given to wait()
        self._wait_for = None  # type: Optional[float]
        self._last_error = None  # type: Optional[BaseException]
        self._age0 = 0.0  # age of the operation when a resumed poll started
        self._hint = None  # type: Optional[float]
        self._done = False
        self._log = _logger()

    def __repr__(self):
        state = self.latest.status.value if self.latest else "not polled"
        return "<Poller %s: %s, %d polls>" % (redact_url(self.url), state, self.polls)

    # -- time ---------------------------------------------------------------

    def _now(self):
        if self._clock is not None:
            return self._clock()
        import time

        return time.monotonic()

    def _elapsed(self):
        # The time slept counts even if the clock stands still (a frozen clock
        # must not make the deadline unreachable).
        return max(self._now() - self._start, self.slept)

    def _limit(self):
        """The deadline in force, in seconds of elapsed time: the poller's
        ``timeout``, or a nearer one given to :meth:`wait`."""
        if self._wait_limit is None:
            return self.timeout
        if self.timeout is None:
            return self._wait_limit
        return min(self.timeout, self._wait_limit)

    def _time_left(self):
        limit = self._limit()
        if limit is None:
            return None
        return limit - self._elapsed()

    def _rand(self):
        if self._random is not None:
            value = self._random()
        else:
            import random

            value = random.random()
        return value if 0.0 <= value <= 1.0 else 0.5

    def _wait(self, seconds):
        if seconds <= 0:
            return
        self._log.debug("opstatus: waiting %.3f s before the next poll", seconds)
        self.slept += seconds
        if self._sleep is not None:
            self._sleep(seconds)
        else:
            self._cancelled.wait(seconds)
        self._check_cancel()

    def _check_cancel(self):
        if self._cancelled.is_set():
            raise PollCancelled("polling cancelled", self.latest)

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
        """*delay* (already clamped by the policy), or less when the deadline
        comes first: then the wait ends early enough for one last request,
        and after that attempt the poll times out without waiting again."""
        left = self._time_left()
        if left is not None:
            reserve = min(1.0, self._client.request_timeout, left / 2.0)
            if self._last_attempt or left <= 0.001:
                raise self._timeout(cause)
            if delay > left - reserve:
                self._last_attempt = True
                delay = left - reserve
        return max(0.0, delay)

    def _sleep_before_next(self, delay, cause=None):
        self._wait(self._plan_wait(delay, cause))

    # -- the steps -----------------------------------------------------------

    def cancel(self):
        """Ask the poller to stop; safe to call from another thread."""
        self._cancelled.set()

    @property
    def cancelled(self):
        return self._cancelled.is_set()

    @property
    def done(self):
        # type: () -> bool
        return self.latest is not None and self.latest.is_terminal

    def _attempt(self):
        # type: () -> Tuple[Optional[OperationStatus], float, Optional[BaseException]]
        """One GET of the status: ``(status, 0, None)``, or ``(None, delay,
        error)`` for a transient error worth another try after *delay*.
        Raises what ends the poll. Observes the status (hooks, callback)."""
        self._check_cancel()
        if self._start is None:
            self._start = self._now()
        left = self._time_left()
        if left is not None and left <= 0.001:
            raise self._timeout(self._last_error)
        timeout = self._client.request_timeout
        if left is not None:
            timeout = min(timeout, left)
        try:
            self.polls += 1
            response = self._client.send("GET", self.url, timeout=timeout)
            self._log.debug(
                "opstatus: GET %s -> %d (poll %d)", redact_url(self.url), response.status,
                self.polls,
            )
            if response.status != 200:
                raise _http_error(response, self._client.scrub, self.url)
            status = OperationStatus.from_json(response.body)
        except (NetworkError, HTTPError) as exc:
            self._client.scrub_error(exc)
            self._errors_in_row += 1
            self.errors += 1
            self._last_error = exc
            delay = self._retry_delay(exc, self._errors_in_row)
            self._log.debug("opstatus: %s; retrying in %.3f s", exc, delay)
            self._notify("opstatus_retry_scheduled", url=self.url, error=exc, delay=delay,
                         errors=self._errors_in_row)
            return None, delay, exc
        except OpStatusError as exc:
            raise self._client.scrub_error(exc)
        self._errors_in_row = 0
        self._last_error = None
        self._hint = parse_retry_after(response.headers)
        self._observe(status)
        if status.is_terminal:
            self._done = True
            self._finish(status.status.value,
                         self._failure(status) if status.failed else None)
        return status, 0.0, None

    def _finish(self, outcome, error):
        self._notify("opstatus_operation_finished", url=self.url, outcome=outcome,
                     status=self.latest, error=error)

    def _failure(self, status):
        return self._client.scrub_error(OperationFailed(status))

    def _finish_with(self, exc):
        outcome = ("timeout" if isinstance(exc, PollTimeout) else
                   "cancelled" if isinstance(exc, PollCancelled) else "error")
        self._finish(outcome, exc)

    def _poll_once(self):
        # type: () -> OperationStatus
        """GET the status, retrying transient errors within the deadline."""
        while True:
            status, delay, error = self._attempt()
            if status is not None:
                return status
            self._sleep_before_next(delay, cause=error)

    def _retry_delay(self, exc, errors):
        """The wait before retrying after *exc*, or raise it if not worth it."""
        if self.policy.max_errors is not None and errors > self.policy.max_errors:
            raise exc  # the caller's bound holds whatever plugins say
        hooks = self._client.hooks
        if hooks is not None:
            name, verdict = hooks.first("opstatus_retry_delay", self._client.scrub, skip_builtin=True,
                                        url=self.url, error=exc, errors=errors,
                                        policy=self.policy)
            if verdict is False:
                raise exc
            if verdict is not None and verdict is not True:
                return self.policy.clamp(_plugin_number(verdict, name, "opstatus_retry_delay"),
                                         self._time_left())
        if not self.policy.is_retryable(exc, errors):
            raise exc
        hint = getattr(exc, "retry_after", None)
        delay = hint if hint is not None else self.policy.error_delay(errors, self._rand)
        return self.policy.clamp(delay, self._time_left())

    def _next_delay(self, status):
        age = self._elapsed() + self._age0
        if status.last_action_time is not None:
            age = max(age, (status.last_action_time - status.created_time).total_seconds())
        delay = None
        hooks = self._client.hooks
        if hooks is not None:
            name, value = hooks.first("opstatus_next_delay", self._client.scrub, skip_builtin=True, url=self.url,
                                      status=status, age=age, polls=self.polls,
                                      policy=self.policy)
            if value is not None:
                delay = _plugin_number(value, name, "opstatus_next_delay")
        if delay is None:
            delay = self._hint if self._hint is not None else self.policy.poll_delay(
                age, self._rand)
        return self.policy.clamp(delay, self._time_left())

    def _notify(self, hook, **kwargs):
        if self._client.hooks is not None:
            self._client.hooks.each(hook, self._client.scrub, **kwargs)

    def _observe(self, status):
        previous = self.latest
        self.latest = status
        if previous is None or previous.status is not status.status:
            self._log.info("opstatus: %s is %s", redact_url(self.url), status.status.value)
            self._notify("opstatus_status_changed", url=self.url, previous=previous,
                         status=status)
        if self._on_status is not None:
            self._on_status(status)

    def __iter__(self):
        # type: () -> Iterator[OperationStatus]
        try:
            while not self._done:
                status = self._poll_once()
                yield status
                if not status.is_terminal:
                    self._sleep_before_next(self._next_delay(status))
        except OpStatusError as exc:
            self._finish_with(exc)
            raise
        finally:
            self._client.close()  # idle connections; a later poll reconnects

    def __aiter__(self):
        """Iterate asynchronously: ``async for status in poller``. The
        blocking requests run in the event loop's default executor, the waits
        are ``asyncio.sleep``; cancelling the task cancels the poller."""
        return self._aiter()

    async def _aiter(self):
        import asyncio

        loop = asyncio.get_event_loop()
        try:
            while not self._done:
                status, delay, error = await loop.run_in_executor(None, self._attempt)
                if status is not None:
                    yield status
                    if status.is_terminal:
                        return
                    delay, error = self._next_delay(status), None
                wait = self._plan_wait(delay, error)
                self.slept += wait
                if self._sleep is not None:
                    self._sleep(wait)
                    await asyncio.sleep(0)
                else:
                    await asyncio.sleep(wait)
                self._check_cancel()
        except asyncio.CancelledError:
            self.cancel()
            raise
        except OpStatusError as exc:
            self._finish_with(exc)
            raise
        finally:
            self._client.close()  # idle connections; a later poll reconnects

    async def wait_async(self):
        # type: () -> OperationStatus
        """:meth:`wait` for ``asyncio``: ``status = await poller.wait_async()``."""
        try:
            async for _status in self:
                pass
        finally:
            self._client.close()
        return self._final()

    def wait(self, timeout=None):
        # type: (Optional[float]) -> OperationStatus
        """Poll to the end: return the final status if it succeeded, raise
        :class:`OperationFailed` if it failed, :class:`PollTimeout`,
        :class:`PollCancelled`, :class:`HTTPError` (:class:`OperationNotFound`),
        :class:`NetworkError` or :class:`StatusDocumentError` otherwise.

        *timeout* (seconds) bounds this call only, within the poller's own
        deadline: on :class:`PollTimeout` the poller can be waited on again.
        """
        if timeout is not None:
            if _finite_delay(timeout, float("inf")) is None:
                raise ValueError("timeout must be a finite number >= 0, not %r" % (timeout,))
            if self._start is None:
                self._start = self._now()
            self._wait_for = float(timeout)
            self._wait_limit = self._elapsed() + float(timeout)
        self._last_attempt = False
        try:
            for _status in self:
                pass
        finally:
            self._wait_limit = None
            self._last_attempt = False
            self._client.close()
        return self._final()

    def _final(self):
        final = self.latest
        if final is None or not final.is_terminal:  # pragma: no cover - loop ends terminal
            raise self._timeout()
        if final.status is Status.FAILED:
            raise self._failure(final)
        return final

    # -- resume tokens -------------------------------------------------------

    def resume_token(self):
        # type: () -> str
        """A small JSON token from which :meth:`from_resume_token` carries on
        polling this operation after a restart.

        It holds the operation URL, the endpoint, the created time and the
        schedule state (polls, age); never a secret and never pickle. It is
        sealed with an HMAC keyed by the subscription key (when there is one)
        so that an altered token, or one made for another key, is refused.
        A URL with a query string (which may carry a credential, such as a
        SAS ``sig=``) is refused with ``ValueError``.
        """
        import json

        if "?" in self.url or "#" in self.url:
            raise ValueError("the operation URL has a query string, which may carry a "
                             "credential: it is not put in a resume token")
        latest = self.latest
        doc = {
            "type": _TOKEN_TYPE,
            "version": _TOKEN_VERSION,
            "url": self.url,
            "endpoint": self._client.endpoint,
            "createdTime": format_datetime(latest.created_time) if latest else None,
            "status": latest.status.value if latest else None,
            "polls": self.polls,
            "age": round(self._age0 + (self._elapsed() if self._start is not None else 0.0), 3),
        }
        key = next((v for k, v in self._client.headers.items()
                    if k.lower() == KEY_HEADER.lower()), None)
        doc["mac"] = _token_mac(doc, key)
        return json.dumps(doc, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_resume_token(cls, token, *, key=None, endpoint=None, **options):
        # type: (str, Optional[str], Optional[str], Any) -> Poller
        """A poller that carries on from :meth:`resume_token`.

        The token is checked (type, version, fields, seal with *key*) and its
        URL passes the same security rules as a new one; an *endpoint* given
        here must be the token's origin. Raises :class:`ResumeTokenError`.
        """
        doc = _read_token(token, key)
        token_endpoint = doc["endpoint"]
        if endpoint is not None and token_endpoint is not None:
            allow = bool(options.get("allow_http"))
            if _origin(_split_url(endpoint, allow_http=allow, what="endpoint")) != _origin(
                    _split_url(token_endpoint, allow_http=allow, what="token endpoint")):
                raise ResumeTokenError("the token is for %s, not for the endpoint %s"
                                       % (redact_url(token_endpoint), redact_url(endpoint)))
        poller = cls(doc["url"], endpoint=endpoint or token_endpoint, key=key, **options)
        poller.polls = doc["polls"]
        poller._age0 = doc["age"]
        return poller

    def close(self):
        """Release the connections of the built-in transport."""
        self._client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def _plugin_number(value, plugin, hook):
    """A delay a plugin returned: a real number (the core clamps it)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PluginError("plugin %s returned %s from %s, not a number of seconds"
                          % (plugin, _short_repr(value), hook), plugin)
    return value


def poll(operation_location, *, endpoint=None, key=None, headers=None, timeout=DEFAULT_TIMEOUT,
         **options):
    # type: (...) -> OperationStatus
    """Poll an operation until it ends and return its final status.

    *operation_location* is the ``Operation-Location`` header of the 202 that
    started it: relative (``/operations/{id}``, resolved against the API base
    of *endpoint*) or absolute. *key* is sent as
    ``Ocp-Apim-Subscription-Key``; *headers* adds others (``Authorization``).
    Secrets go only to the endpoint's origin. Other keyword arguments are
    those of :class:`Poller` (``policy``, ``transport``, ``allow_http``,
    ``ssl_context``, ``cafile``, ``request_timeout``, ``clock``, ``sleep``,
    ``random``, ``on_status``).

    Raises :class:`OperationFailed`, :class:`PollTimeout`,
    :class:`HTTPError` / :class:`OperationNotFound`, :class:`NetworkError`,
    :class:`UnsafeURLError` or :class:`StatusDocumentError`.
    """
    return Poller(operation_location, endpoint=endpoint, key=key, headers=headers,
                  timeout=timeout, **options).wait()


async def poll_async(operation_location, *, endpoint=None, key=None, headers=None,
                     timeout=DEFAULT_TIMEOUT, **options):
    # type: (...) -> OperationStatus
    """:func:`poll` for ``asyncio``: the event loop is never blocked (requests
    run in its default executor) and cancelling the task stops the poll."""
    poller = Poller(operation_location, endpoint=endpoint, key=key, headers=headers,
                    timeout=timeout, **options)
    return await poller.wait_async()


_TOKEN_TYPE = "opstatus-resume"
_TOKEN_VERSION = 1
_TOKEN_FIELDS = {"type": str, "version": int, "url": str, "endpoint": (str, type(None)),
                 "createdTime": (str, type(None)), "status": (str, type(None)),
                 "polls": int, "age": (int, float), "mac": str}
#: Largest resume token read, in bytes.
MAX_TOKEN_BYTES = 4096


def _token_mac(doc, key):
    import hashlib
    import hmac
    import json

    body = json.dumps({k: v for k, v in doc.items() if k != "mac"}, sort_keys=True,
                      separators=(",", ":")).encode("utf-8")
    secret = (key or "").encode("utf-8") + b"\x00opstatus-resume"
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def _read_token(token, key):
    import hmac

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
    if set(doc) != set(_TOKEN_FIELDS):
        raise ResumeTokenError("resume token has fields %s, expected %s"
                               % (sorted(doc), sorted(_TOKEN_FIELDS)))
    for name, kind in _TOKEN_FIELDS.items():
        value = doc[name]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ResumeTokenError("resume token field %s has the wrong type" % name)
    if doc["polls"] < 0 or not 0 <= doc["age"] <= 10 ** 9:
        raise ResumeTokenError("resume token has an impossible schedule state")
    if not hmac.compare_digest(doc["mac"], _token_mac(doc, key)):
        raise ResumeTokenError("resume token was altered, or sealed with another key")
    return doc


###############################################################################
# Many operations #############################################################
###############################################################################

#: Worker threads a :class:`Watcher` uses by default (16 at most advised).
DEFAULT_WORKERS = 8


class Outcome(_FrozenDataclass):
    """How one operation watched by a :class:`Watcher` ended.

    ``index`` is its position in the list given; ``status`` the final (or
    last seen) :class:`OperationStatus`; ``error`` ``None`` on success, else
    the exception :func:`poll` would have raised.
    """

    index: int
    location: str
    status: Optional[OperationStatus]
    error: Optional[BaseException] = _FieldSpec(default=None, compare=False)

    @property
    def ok(self):
        # type: () -> bool
        return self.error is None


class Watcher:
    """Watch many operations at once with a few threads.

    Each operation keeps its own schedule; requests run on at most
    *max_workers* threads (connections are kept alive and shared); outcomes
    come out as operations end, like ``concurrent.futures.as_completed``::

        for outcome in Watcher(locations, endpoint=endpoint, key=key, timeout=600):
            print(outcome.location, outcome.status.status if outcome.ok else outcome.error)

    One *timeout* holds for all; :meth:`cancel` stops all (from any thread);
    a failure of one does not stop the others. *max_rate* caps the requests
    per second of all of them together (every poll is billed, and the Face
    API allows 10 calls a second on the standard tier, 20 a minute on the
    free one). Other keyword arguments are those of :class:`Poller`.
    """

    def __init__(self, locations, *, endpoint=None, key=None, headers=None,
                 timeout=DEFAULT_TIMEOUT, max_workers=DEFAULT_WORKERS, max_rate=None,
                 clock=None, sleep=None, on_status=None, **options):
        import threading

        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or not (
                1 <= max_workers <= 64):
            raise ValueError("max_workers must be an int from 1 to 64")
        if max_rate is not None and (isinstance(max_rate, bool) or not isinstance(
                max_rate, (int, float)) or not 0 < max_rate < float("inf")):
            raise ValueError("max_rate must be None or a number of requests per second > 0")
        self.max_rate = max_rate
        self.locations = list(locations)
        self.max_workers = max_workers
        self._clock = clock
        self._sleep = sleep
        self._cancelled = threading.Event()
        self.pollers = []  # type: list
        for index, location in enumerate(self.locations):
            callback = None
            if on_status is not None:
                callback = (lambda i: lambda st: on_status(i, st))(index)
            self.pollers.append(Poller(location, endpoint=endpoint, key=key, headers=headers,
                                       timeout=timeout, clock=clock, on_status=callback,
                                       **options))
        shared = None
        for poller in self.pollers:
            if poller._client.transport is not None:
                if shared is None:
                    shared = poller._client.transport
                else:
                    poller._client.transport = shared
        self._transport = shared

    def __repr__(self):
        return "<Watcher of %d operations, %d workers>" % (len(self.pollers), self.max_workers)

    def _now(self):
        if self._clock is not None:
            return self._clock()
        import time

        return time.monotonic()

    def cancel(self):
        """Stop watching; safe from any thread. Pending operations come out
        with :class:`PollCancelled`."""
        self._cancelled.set()
        for poller in self.pollers:
            poller.cancel()

    def _outcome(self, index, error=None):
        poller = self.pollers[index]
        return Outcome(index, self.locations[index], poller.latest, error)

    def __iter__(self):
        # type: () -> Iterator[Outcome]
        import heapq
        from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

        now = self._now()
        for poller in self.pollers:
            poller._start = now
        heap = [(now, i) for i in range(len(self.pollers))]
        running = {}  # future -> index
        spacing = 1.0 / self.max_rate if self.max_rate else 0.0
        next_send = now
        pool = ThreadPoolExecutor(max_workers=self.max_workers,
                                  thread_name_prefix="opstatus-watch")
        try:
            while heap or running:
                if self._cancelled.is_set():
                    for _due, index in sorted(heap):
                        error = PollCancelled("watch cancelled", self.pollers[index].latest)
                        self.pollers[index]._finish_with(error)
                        yield self._outcome(index, error)
                    heap = []
                now = self._now()
                while heap and heap[0][0] <= now:  # out of time: no request, no rate slot
                    left = self.pollers[heap[0][1]]._time_left()
                    if left is None or left > 0.001:
                        break
                    _due, index = heapq.heappop(heap)
                    poller = self.pollers[index]
                    error = poller._timeout(poller._last_error)
                    poller._finish_with(error)
                    yield self._outcome(index, poller._client.scrub_error(error))
                while (heap and heap[0][0] <= now and len(running) < self.max_workers
                       and next_send <= now):
                    _due, index = heapq.heappop(heap)
                    running[pool.submit(self.pollers[index]._attempt)] = index
                    if spacing:
                        next_send = max(next_send, now - spacing) + spacing
                idle = None
                if heap and len(running) < self.max_workers:
                    idle = max(0.0, heap[0][0] - now, next_send - now)
                if not running:
                    if idle:
                        if self._sleep is not None:
                            self._sleep(idle)
                        else:
                            self._cancelled.wait(idle)
                    continue
                done, _pending = wait(list(running), timeout=idle, return_when=FIRST_COMPLETED)
                for future in done:
                    index = running.pop(future)
                    poller = self.pollers[index]
                    try:
                        status, delay, error = future.result()
                        if status is not None and status.is_terminal:
                            yield self._outcome(index, poller._failure(status)
                                                if status.failed else None)
                            continue
                        if status is not None:
                            delay, error = poller._next_delay(status), None
                        wait_for = poller._plan_wait(delay, error)
                    except OpStatusError as exc:
                        if not isinstance(exc, OperationFailed):
                            poller._finish_with(exc)
                        yield self._outcome(index, exc)
                        continue
                    except Exception as exc:  # a bug must not stop the others
                        yield self._outcome(index, exc)
                        continue
                    poller.slept += wait_for
                    heapq.heappush(heap, (self._now() + wait_for, index))
        finally:
            if heap or running:
                self.cancel()
            pool.shutdown(wait=True)
            if self._transport is not None:
                self._transport.close()

    def results(self):
        # type: () -> list
        """Watch to the end; the outcomes in the order the locations were given."""
        outcomes = sorted(self, key=lambda o: o.index)
        return outcomes


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
        raise ValueError(
            "%s must be 1 to 64 characters of a-z, 0-9, '-' and '_', not %s"
            % (name, _short_repr(value))
        )
    return value


def _start_operation(endpoint, key, path, payload, *, headers, allow_http, transport,
                     ssl_context, cafile, request_timeout, retries=2, sleep=None, plugins=None):
    import json

    if endpoint is None:
        raise ValueError("endpoint is required")
    client = _Client(endpoint, key, headers, allow_http, transport, ssl_context, cafile,
                     request_timeout, MAX_RESPONSE_BYTES, plugins)
    url = api_base(endpoint, allow_http=allow_http) + path
    body = json.dumps(payload).encode("utf-8")
    try:
        for attempt in range(retries + 1):
            try:
                response = client.send("POST", url, body=body,
                                       content_type="application/json; charset=utf-8")
            except OpStatusError as exc:
                # Retried only when the request surely never reached the server.
                client.scrub_error(exc)
                if not isinstance(exc, NetworkError) or exc.sent or attempt == retries:
                    raise
                wait = 2.0 ** attempt
            else:
                if response.status == 202:
                    location = response.headers.get("operation-location")
                    if not location:
                        raise HTTPError(202, None, "202 without an Operation-Location header",
                                        url=redact_url(url))
                    resolve_operation_url(location, endpoint, allow_http=allow_http)
                    return location
                error = client.scrub_error(_http_error(response, client.scrub, url))
                if response.status != 429 or attempt == retries:
                    raise error
                wait = RetryPolicy().clamp(1.0 if error.retry_after is None else error.retry_after)
            if sleep is not None:
                sleep(wait)
            else:
                import time

                time.sleep(wait)
    finally:
        client.close()
    raise AssertionError("unreachable")  # pragma: no cover


def take_snapshot(endpoint, key, *, object_type, object_id, apply_scope, user_data=None,
                  headers=None, allow_http=False, transport=None, ssl_context=None,
                  cafile=None, request_timeout=DEFAULT_REQUEST_TIMEOUT, sleep=None,
                  plugins=None):
    # type: (...) -> str
    """Start taking a snapshot of a face list or person group.

    ``POST {endpoint}/face/v1.0/snapshots``; returns the operation's
    ``Operation-Location``, to give to :func:`poll` with the same endpoint
    and key. *apply_scope* lists the subscription ids (UUIDs) that may apply
    it. The input is checked before anything is sent (``ValueError``).
    Not retried once the server may have received it.
    """
    kinds = {k.lower(): k for k in SNAPSHOT_TYPES}
    if not isinstance(object_type, str) or object_type.lower() not in kinds:
        raise ValueError("object_type must be one of %s, not %s"
                         % (", ".join(SNAPSHOT_TYPES), _short_repr(object_type)))
    _check_object_id(object_id)
    if isinstance(apply_scope, str) or not apply_scope:
        raise ValueError("apply_scope must be a non-empty list of subscription ids (UUIDs)")
    scope = list(apply_scope)
    for item in scope:
        if not isinstance(item, str) or not _UUID.fullmatch(item):
            raise ValueError("apply_scope: %s is not a UUID" % _short_repr(item))
    payload = {"type": kinds[object_type.lower()], "objectId": object_id, "applyScope": scope}
    if user_data is not None:
        if not isinstance(user_data, str) or len(user_data) > MAX_USER_DATA:
            raise ValueError("user_data must be a str of at most %d characters" % MAX_USER_DATA)
        payload["userData"] = user_data
    return _start_operation(endpoint, key, "/snapshots", payload, headers=headers,
                            allow_http=allow_http, transport=transport,
                            ssl_context=ssl_context, cafile=cafile,
                            request_timeout=request_timeout, sleep=sleep, plugins=plugins)


def apply_snapshot(endpoint, key, snapshot_id, *, object_id, mode="CreateNew", headers=None,
                   allow_http=False, transport=None, ssl_context=None, cafile=None,
                   request_timeout=DEFAULT_REQUEST_TIMEOUT, sleep=None, plugins=None):
    # type: (...) -> str
    """Start applying snapshot *snapshot_id* to a new object *object_id*.

    ``POST {endpoint}/face/v1.0/snapshots/{snapshot_id}/apply``; returns the
    ``Operation-Location`` as :func:`take_snapshot` does.
    """
    if not isinstance(snapshot_id, str) or not _SNAPSHOT_ID.fullmatch(snapshot_id):
        raise ValueError("snapshot_id must be 1 to 64 characters of A-Z, a-z, 0-9, '-' "
                         "and '_', not %s" % _short_repr(snapshot_id))
    _check_object_id(object_id)
    if mode != "CreateNew":
        raise ValueError("mode must be 'CreateNew' (the only mode the service has)")
    return _start_operation(endpoint, key, "/snapshots/%s/apply" % snapshot_id,
                            {"objectId": object_id, "mode": mode}, headers=headers,
                            allow_http=allow_http, transport=transport,
                            ssl_context=ssl_context, cafile=cafile,
                            request_timeout=request_timeout, sleep=sleep, plugins=plugins)


###############################################################################
# Simulator ###################################################################
###############################################################################

_SIM_401 = ("Access denied due to invalid subscription key or wrong API endpoint. Make "
            "sure to provide a valid key for an active subscription and use a correct "
            "regional API endpoint for your resource.")
_TICKS = 10_000_000  # .NET ticks per second


def _wire_time(posix):
    # type: (float) -> str
    """A POSIX time as the service writes it: 7 digits, trailing zeros trimmed."""
    whole = int(posix // 1)
    ticks = int(round((posix - whole) * _TICKS))
    if ticks >= _TICKS:
        whole, ticks = whole + 1, ticks - _TICKS
    dt = _datetime.datetime(1970, 1, 1) + _datetime.timedelta(seconds=whole)
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if ticks:
        text += ("." + "%07d" % ticks).rstrip("0")
    return text + "Z"


class _SimOperation:
    __slots__ = ("id", "kind", "created", "start", "finish", "fail", "result", "on_success")

    def __init__(self, op_id, kind, created, start, finish, fail, result, on_success):
        self.id = op_id
        self.kind = kind
        self.created = created
        self.start = start
        self.finish = finish
        self.fail = fail
        self.result = result
        self.on_success = on_success


class Simulator:
    """A local, faithful stand-in for the retired Face snapshot API.

    A standard-library HTTP server on 127.0.0.1 (port 0: a free one), run in
    a thread of its own while the ``with`` block lasts::

        with Simulator() as sim:
            location = take_snapshot(sim.endpoint, sim.key, object_type="PersonGroup",
                                     object_id="sample", apply_scope=[sim.subscription])
            status = poll(location, endpoint=sim.endpoint, key=sim.key)

    It serves take, apply, operation status, get, list, update and delete
    snapshot with the real paths, bodies and status codes, checks the key
    (401 otherwise) and answers a relative ``Operation-Location``. Operations
    go notStarted -> running -> succeeded after *queue_seconds* and
    *take_seconds* / *apply_seconds*, with 7-digit timestamps. *dialect* is
    ``"2019"`` (PascalCase, nulls) or ``"2021"`` (camelCase, finishedTime).

    Faults, set at construction or on the attributes at any time:
    *fail* (a message: operations end failed), *rate_limit* (the next N
    requests answer 429), *rate_limit_retry_after* (the Retry-After header
    value sent with them, or None for the Face text only), *server_errors*
    (the next N requests answer *server_error_status*), *slow* (seconds
    before each answer), *snapshot_ttl* (seconds a snapshot lives; 48 h).

    *clock* (monotonic seconds) is injectable so that a test can share a fake
    clock with a :class:`Poller`; *wall* maps it to POSIX time.

    With *require_objects*, a take answers 404 (``PersonGroupNotFound`` and
    kin, as the service does) unless its object was made to exist with
    :meth:`add_object` or by an earlier apply; by default any objectId can
    be taken, which keeps quick experiments short.
    """

    def __init__(self, *, key=None, dialect="2021", host="127.0.0.1", port=0,
                 queue_seconds=0.3, take_seconds=1.0, apply_seconds=1.0, fail=None,
                 rate_limit=0, rate_limit_retry_after="1", server_errors=0,
                 server_error_status=503, slow=0.0, snapshot_ttl=48 * 3600.0,
                 clock=None, api_path=FACE_API_PATH, require_objects=False):
        if dialect not in ("2019", "2021"):
            raise ValueError("dialect must be '2019' or '2021', not %r" % (dialect,))
        import secrets
        import threading
        import uuid

        self.key = key if key is not None else secrets.token_hex(16)
        self.subscription = str(uuid.uuid4())
        self.dialect = dialect
        self.queue_seconds = queue_seconds
        self.take_seconds = take_seconds
        self.apply_seconds = apply_seconds
        self.fail = fail
        self.rate_limit = rate_limit
        self.rate_limit_retry_after = rate_limit_retry_after
        self.server_errors = server_errors
        self.server_error_status = server_error_status
        self.slow = slow
        self.snapshot_ttl = snapshot_ttl
        self.api_path = api_path
        self.require_objects = require_objects
        self._clock = clock
        self._wall0 = None  # type: Optional[float]
        self._mono0 = None  # type: Optional[float]
        self._host, self._port = host, port
        self._lock = threading.Lock()
        self.operations = {}  # type: Dict[str, _SimOperation]
        self.snapshots = {}  # type: Dict[str, Dict[str, Any]]
        self.objects = set()  # type: set  # (type, objectId) that exist
        self.requests = []  # type: list  # (method, path) of each request
        self._server = None
        self._thread = None

    # -- time ----------------------------------------------------------------

    def now(self):
        """The simulator's monotonic time."""
        if self._clock is not None:
            return self._clock()
        import time

        return time.monotonic()

    def wall(self, mono=None):
        """POSIX time of a monotonic instant (default: now)."""
        mono = self.now() if mono is None else mono
        return self._wall0 + (mono - self._mono0)

    # -- life cycle ------------------------------------------------------------

    @property
    def endpoint(self):
        """The resource endpoint, as users know it (``http://127.0.0.1:PORT``)."""
        host, port = self._server.server_address[:2]
        return "http://%s:%d" % (host, port)

    def start(self):
        import threading
        import time
        from http.server import ThreadingHTTPServer

        self._mono0 = self.now()
        self._wall0 = time.time()
        handler = type("_Handler", (_make_sim_handler(),), {"sim": self})
        server_class = type("_Server", (ThreadingHTTPServer,), {"request_queue_size": 128})
        self._server = server_class((self._host, self._port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="opstatus-simulator", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
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

    # -- the model -------------------------------------------------------------

    def add_object(self, object_type, object_id):
        """Make an object exist: with *require_objects* a take needs its
        source to exist (404 ``PersonGroupNotFound`` and kin otherwise), and
        an apply always refuses a target that exists (409)."""
        self.objects.add((object_type.lower(), object_id))

    def _new_operation(self, kind, seconds, result, on_success):
        import uuid

        now = self.now()
        op = _SimOperation(str(uuid.uuid4()), kind, now, now + self.queue_seconds,
                           now + self.queue_seconds + seconds, self.fail, result, on_success)
        self.operations[op.id] = op
        return op

    def _location_header(self):
        # The 2019 recordings spell it Operation-Location, the 2021 ones
        # operation-location.
        return "Operation-Location" if self.dialect == "2019" else "operation-location"

    def _settle(self):
        """Bring about what finished operations produced (a take's snapshot),
        as of the moment they finished, whether or not anyone polled them."""
        now = self.now()
        for op in self.operations.values():
            if op.on_success is not None and now >= op.finish:
                if not op.fail:
                    op.on_success(op.finish)
                op.on_success = None

    def operation_document(self, op):
        # type: (_SimOperation) -> Dict[str, Any]
        now = self.now()
        if now < op.start:
            status, last = "notStarted", op.created
        elif now < op.finish:
            status, last = "running", now
        else:
            status, last = ("failed" if op.fail else "succeeded"), op.finish
        location = op.result if status == "succeeded" else (
            "/snapshots/" if op.kind == "take" else None)
        message = op.fail if status == "failed" else None
        if self.dialect == "2019":
            return {"CreatedTime": _wire_time(self.wall(op.created)),
                    "LastActionTime": _wire_time(self.wall(last)),
                    "Message": message, "ResourceLocation": location, "Status": status}
        doc = {"status": status, "createdTime": _wire_time(self.wall(op.created)),
               "lastActionTime": _wire_time(self.wall(last))}
        if location is not None:
            doc["resourceLocation"] = location
        if message is not None:
            doc["message"] = message
        if status in ("succeeded", "failed"):
            doc["finishedTime"] = _wire_time(self.wall(op.finish) - 0.0000003)
        return doc


def _sim_error(status, code, message):
    return status, {"error": {"code": code, "message": message}}


def _make_sim_handler():
    from http.server import BaseHTTPRequestHandler

    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go in two writes
        server_version = "FaceSimulator/1.0"
        sim = None  # type: Simulator

        def log_message(self, format, *args):  # silent
            pass

        def _answer(self, status, doc=None, headers=()):
            body = b"" if doc is None else __import__("json").dumps(doc).encode("utf-8")
            self.send_response(status)
            if doc is not None:
                self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            if body and self.command != "HEAD":
                self.wfile.write(body)

        def _handle(self):
            import json

            sim = self.sim
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(min(length, 1 << 20)) if length else b""
            path = self.path.split("?", 1)[0]
            with sim._lock:
                sim.requests.append((self.command, self.path))
            if sim.slow:
                import time

                time.sleep(sim.slow)
            with sim._lock:
                if sim.server_errors > 0:
                    sim.server_errors -= 1
                    return self._answer(*_sim_error(sim.server_error_status, "InternalServerError",
                                                     "The service is temporarily unavailable."))
            if self.headers.get("Ocp-Apim-Subscription-Key") != sim.key:
                return self._answer(*_sim_error(401, "401", _SIM_401))
            with sim._lock:
                if sim.rate_limit > 0:
                    sim.rate_limit -= 1
                    headers = ()
                    if sim.rate_limit_retry_after is not None:
                        headers = (("Retry-After", sim.rate_limit_retry_after),)
                    return self._answer(*_sim_error(
                        429, "429", "Rate limit is exceeded. Try again in 1 seconds."),
                        headers=headers)
            base = sim.api_path.rstrip("/")
            if not (path == base or path.startswith(base + "/")):
                return self._answer(*_sim_error(404, "404", "Resource not found"))
            parts = [p for p in path[len(base):].split("/") if p]
            body = None
            if raw:
                try:
                    body = json.loads(raw.decode("utf-8"))
                except ValueError:
                    return self._answer(*_sim_error(400, "BadArgument", "Invalid request body."))
            with sim._lock:
                sim._settle()
                return self._answer(*self._route(sim, parts, body))

        def _route(self, sim, parts, body):
            method = self.command
            if parts == ["snapshots"] and method == "POST":
                return self._take(sim, body)
            if parts == ["snapshots"] and method == "GET":
                from urllib.parse import parse_qs

                query = parse_qs(self.path.partition("?")[2])
                kind = (query.get("type") or [""])[0].lower()
                scopes = set(",".join(query.get("applyScope") or []).split(",")) - {""}
                snaps = [self._snapshot_doc(s) for s in sim.snapshots.values()
                         if not self._expired(sim, s)
                         and (not kind or s["type"].lower() == kind)
                         and (not scopes or scopes & set(s["applyScope"]))]
                return 200, snaps
            if len(parts) == 3 and parts[0] == "snapshots" and parts[2] == "apply" \
                    and method == "POST":
                return self._apply(sim, parts[1], body)
            if len(parts) == 2 and parts[0] == "snapshots":
                snap = sim.snapshots.get(parts[1])
                if snap is None or self._expired(sim, snap):
                    return _sim_error(404, "SnapshotNotFound", "Snapshot is not found.")
                if method == "GET":
                    return 200, self._snapshot_doc(snap)
                if method == "DELETE":
                    del sim.snapshots[parts[1]]
                    return 200, None
                if method == "PATCH":
                    if isinstance(body, dict):
                        if "userData" in body:
                            snap["userData"] = body["userData"]
                        if "applyScope" in body:
                            snap["applyScope"] = body["applyScope"]
                    return 200, None
            if len(parts) == 2 and parts[0] == "operations" and method == "GET":
                op = sim.operations.get(parts[1])
                if op is None:
                    return _sim_error(404, "OperationNotFound", "Operation is not found.")
                return 200, sim.operation_document(op)
            return _sim_error(404, "404", "Resource not found")

        @staticmethod
        def _expired(sim, snap):
            return sim.now() >= snap["_created"] + sim.snapshot_ttl

        @staticmethod
        def _snapshot_doc(snap):
            return {k: v for k, v in snap.items() if not k.startswith("_")}

        def _take(self, sim, body):
            import uuid

            if not isinstance(body, dict):
                return _sim_error(400, "BadArgument", "Request body is invalid.")
            kinds = {k.lower(): k for k in SNAPSHOT_TYPES}
            kind = body.get("type")
            if not isinstance(kind, str) or kind.lower() not in kinds:
                return _sim_error(400, "BadArgument", "Snapshot type is invalid.")
            object_id = body.get("objectId")
            if not isinstance(object_id, str) or not _OBJECT_ID.fullmatch(object_id):
                return _sim_error(400, "BadArgument", "Object id is invalid.")
            scope = body.get("applyScope")
            if not isinstance(scope, list) or not scope or not all(
                    isinstance(s, str) and _UUID.fullmatch(s) for s in scope):
                return _sim_error(400, "BadArgument", "Apply scope is invalid.")
            if sim.require_objects and (kind.lower(), object_id) not in sim.objects:
                return _sim_error(404, "%sNotFound" % kinds[kind.lower()],
                                  "%s is not found." % kinds[kind.lower()])
            user_data = body.get("userData")
            if user_data is not None and (not isinstance(user_data, str)
                                          or len(user_data) > MAX_USER_DATA):
                return _sim_error(400, "BadArgument", "User data is too long.")
            snap_id = str(uuid.uuid4())
            created = sim.now()

            def done(finished):
                sim.snapshots[snap_id] = {
                    "id": snap_id, "account": sim.subscription, "type": kinds[kind.lower()],
                    "applyScope": scope, "userData": user_data,
                    "createdTime": _wire_time(sim.wall(created)),
                    "lastUpdateTime": _wire_time(sim.wall(finished)), "_created": finished}

            op = sim._new_operation("take", sim.take_seconds, "/snapshots/" + snap_id, done)
            return 202, None, ((sim._location_header(), "/operations/" + op.id),)

        def _apply(self, sim, snap_id, body):
            if not isinstance(body, dict):
                return _sim_error(400, "BadArgument", "Request body is invalid.")
            snap = sim.snapshots.get(snap_id)
            if snap is None or self._expired(sim, snap):
                return _sim_error(404, "SnapshotNotFound", "Snapshot is not found.")
            object_id = body.get("objectId")
            if not isinstance(object_id, str) or not _OBJECT_ID.fullmatch(object_id):
                return _sim_error(400, "BadArgument", "Object id is invalid.")
            if body.get("mode", "CreateNew") != "CreateNew":
                return _sim_error(400, "BadArgument", "Apply mode is invalid.")
            kind = snap["type"].lower()
            if (kind, object_id) in sim.objects:
                return _sim_error(409, "ConcurrentOperationConflict",
                                  "The target object already exists or is being created.")
            sim.objects.add((kind, object_id))
            op = sim._new_operation("apply", sim.apply_seconds,
                                    "/%s/%s" % (kind, object_id), None)
            return 202, None, ((sim._location_header(), "/operations/" + op.id),)

        def do_GET(self):
            self._handle()

        do_POST = do_PATCH = do_DELETE = do_GET

    return _Handler


###############################################################################
# Command line ################################################################
###############################################################################

#: Exit statuses of the command line, documented in ``--help`` and README.
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_TIMEOUT, EXIT_NETWORK = 0, 1, 2, 3, 4
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a reader gone away

_EPILOG_EXIT = """exit status:
  0    the operation succeeded (parse: the document is valid)
  1    the operation failed
  2    usage error or invalid input
  3    timed out
  4    HTTP or network error (also: timed out without ever getting an answer)
  130  interrupted (Ctrl-C)
  141  the output was closed (broken pipe)"""

_EPILOG_ENV = """environment:
  OPSTATUS_ENDPOINT  the resource endpoint, when --endpoint is not given
  OPSTATUS_KEY       the subscription key (or name another variable with
                     --key-env); never pass a key on the command line, where
                     other users of the machine can read it"""

_SAMPLE_SCOPE = "00000000-0000-0000-0000-000000000000"


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


# -- watching ----------------------------------------------------------------


def _seconds(text):
    import argparse

    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or value != value or value < 0 or value in (float("inf"),):
        raise argparse.ArgumentTypeError("expected a number of seconds >= 0, not %r" % text)
    return value


def _positive_seconds(text):
    import argparse

    value = _seconds(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("expected a number of seconds > 0, not %r" % text)
    return value


def _snapshot_type(text):
    import argparse

    kinds = {k.lower(): k for k in SNAPSHOT_TYPES}
    if text.lower() not in kinds:
        raise argparse.ArgumentTypeError("expected one of %s, not %r"
                                         % (", ".join(SNAPSHOT_TYPES), text))
    return kinds[text.lower()]


def _connection_options(args, *, need_endpoint):
    import os

    endpoint = args.endpoint or os.environ.get("OPSTATUS_ENDPOINT") or None
    if need_endpoint and not endpoint:
        raise _UsageError("no endpoint: pass --endpoint URL or set OPSTATUS_ENDPOINT")
    key_env = args.key_env or "OPSTATUS_KEY"
    key = os.environ.get(key_env) or None
    if key is None:
        raise _UsageError(
            "no key: set %s to the subscription key (it is never read from the "
            "command line)" % key_env
        )
    if endpoint is not None:
        api_base(endpoint, allow_http=args.allow_http)
    if args.cafile is not None and not os.path.isfile(args.cafile):
        raise _UsageError("--cafile %s: no such file" % args.cafile)
    return endpoint, key


def _policy_from(args):
    fields = {}
    if args.floor is not None:
        fields["floor"] = args.floor
    if args.cap is not None:
        fields["cap"] = args.cap
    try:
        return RetryPolicy(**fields)
    except ValueError as exc:
        raise _UsageError(str(exc))


class _Display:
    """Shows the statuses of a poll: a live line on a terminal, a line per
    change otherwise, or JSON documents with --json."""

    def __init__(self, out, *, json_mode, tty):
        import time

        self.out = out
        self.json_mode = json_mode
        self.tty = tty and not json_mode
        self.started = time.monotonic()
        self.last = None  # type: Optional[OperationStatus]
        self.next_poll = None  # type: Optional[float]
        self._width = 0

    def elapsed(self):
        import time

        return time.monotonic() - self.started

    def status(self, st):
        # type: (OperationStatus) -> None
        changed = self.last is None or self.last.status is not st.status
        self.last = st
        if self.json_mode:
            if changed or st.is_terminal:
                self.out.write(st.to_json(include_extra=True) + "\n")
                self.out.flush()
        elif self.tty:
            self.redraw()
        elif changed:
            self.out.write("%-10s  %7.1fs%s\n" % (
                st.status.value, self.elapsed(), self._since_action(st)))
            self.out.flush()

    @staticmethod
    def _since_action(st):
        if st.last_action_time is None:
            return ""
        import time

        ago = time.time() - st.last_action_time.timestamp()
        return "  last action %.1fs ago" % max(0.0, ago)

    def redraw(self, wait_left=None):
        if not self.tty or self.last is None:
            return
        line = "%-10s  elapsed %6.1fs%s" % (
            self.last.status.value, self.elapsed(), self._since_action(self.last))
        if wait_left is not None and not self.last.is_terminal:
            line += "  next poll in %.1fs" % wait_left
        pad = max(0, self._width - len(line))
        self._width = len(line)
        self.out.write("\r" + line + " " * pad)
        self.out.flush()

    def finish(self):
        if self.tty and self.last is not None:
            self.redraw()
            self.out.write("\n")
            self.out.flush()

    def sleep(self, seconds):
        """A sleep that keeps the live line's countdown current."""
        import time

        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            self.redraw(left)
            time.sleep(min(left, 0.2 if self.tty else left))


def _watch_one(location, endpoint, key, args, out):
    """Poll one operation with the command's options; returns the exit status."""
    poller = Poller(location, endpoint=endpoint, key=key, timeout=args.timeout or None,
                    policy=_policy_from(args), allow_http=args.allow_http,
                    cafile=args.cafile, request_timeout=args.request_timeout)
    return _watch_poller(poller, args, out)


def _watch_poller(poller, args, out):
    display = _Display(out, json_mode=args.json, tty=out.isatty())
    save = getattr(args, "save_token", None)

    def on_status(status):
        display.status(status)
        if save:
            _save_token(save, poller)

    poller._sleep = display.sleep
    poller._on_status = on_status
    try:
        final = poller.wait()
    finally:
        display.finish()
    if not args.json:
        _print_result(final, out)
    return EXIT_OK


def _print_result(final, out):
    ref = final.resource
    if ref is not None and ref.kind == "snapshot":
        out.write("snapshot id: %s\n" % ref.id)
    elif ref is not None:
        out.write("target: %s\n" % ref.path)
    elif final.resource_location:
        out.write("resource: %s\n" % final.resource_location)


def _read_resume(value):
    """--resume takes a token or the path of a file holding one."""
    import os

    text = value
    if not value.lstrip().startswith("{"):
        if not os.path.isfile(value):
            raise _UsageError("--resume: %s is neither a token nor a file" % _short_repr(value))
        try:
            with open(value, "rb") as fh:
                text = fh.read(MAX_TOKEN_BYTES + 1).decode("utf-8", "replace")
        except OSError as exc:
            raise _UsageError("cannot read %s: %s" % (value, exc.strerror or exc))
    return text


def _save_token(path, poller):
    """Write the poller's resume token to *path*, atomically, readable by the
    owner only."""
    import os

    tmp = "%s.%d.tmp" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(poller.resume_token() + "\n")
    os.replace(tmp, path)


def _check_writable(path):
    import os

    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path) or not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise _UsageError("--save-token %s: cannot write a file there" % path)


def _cmd_watch(args, out):
    endpoint, key = _connection_options(args, need_endpoint=False)
    if args.save_token:
        _check_writable(args.save_token)
    if args.resume:
        if args.operation:
            raise _UsageError("give either --resume or OPERATION_LOCATION, not both")
        try:
            poller = Poller.from_resume_token(
                _read_resume(args.resume), key=key, endpoint=endpoint,
                timeout=args.timeout or None, policy=_policy_from(args),
                allow_http=args.allow_http, cafile=args.cafile,
                request_timeout=args.request_timeout)
        except ResumeTokenError as exc:
            raise _UsageError(str(exc))
        return _watch_poller(poller, args, out)
    if not args.operation:
        raise _UsageError("give an OPERATION_LOCATION (or --resume TOKEN_OR_FILE)")
    for location in args.operation:
        if location.startswith("/") and not location.startswith("//") and endpoint is None:
            raise _UsageError(
                "%s is relative: pass --endpoint or set OPSTATUS_ENDPOINT" % redact_url(location))
        resolve_operation_url(location, endpoint, allow_http=args.allow_http)
    if len(args.operation) == 1:
        return _watch_one(args.operation[0], endpoint, key, args, out)
    if args.save_token:
        raise _UsageError("--save-token keeps the token of one operation: give only one")
    return _watch_many(args.operation, endpoint, key, args, out)


def _watch_many(locations, endpoint, key, args, out):
    import threading
    import time

    lock = threading.Lock()
    tty = out.isatty() and not args.json
    labels = [redact_url(loc) for loc in locations]
    width = min(60, max(len(label) for label in labels))
    lines = ["%-*s  waiting" % (width, label[-width:]) for label in labels]
    started = time.monotonic()
    if tty:
        out.write("\n".join(lines) + "\n")
        out.flush()

    import shutil

    columns = max(20, shutil.get_terminal_size((80, 24)).columns - 1)

    def draw(index, text):
        with lock:
            lines[index] = "%-*s  %s" % (width, labels[index][-width:], text)
            if tty:  # a line that wraps would break the redraw of the others
                lines[index] = lines[index][:columns]
            if tty:
                out.write("\x1b[%dF" % len(lines))
                for line in lines:
                    out.write("\x1b[2K" + line + "\n")
            elif not args.json:
                out.write(lines[index] + "\n")
            out.flush()

    last = {}

    def on_status(index, st):
        if args.json:
            if last.get(index) is not st.status or st.is_terminal:
                doc = st.to_dict(include_extra=True)
                doc["operationLocation"] = locations[index]
                import json

                with lock:
                    out.write(json.dumps(doc) + "\n")
                    out.flush()
        elif last.get(index) is not st.status and not st.is_terminal:
            draw(index, "%-10s  %6.1fs" % (st.status.value, time.monotonic() - started))
        last[index] = st.status

    watcher = Watcher(locations, endpoint=endpoint, key=key, timeout=args.timeout or None,
                      policy=_policy_from(args), allow_http=args.allow_http,
                      cafile=args.cafile, request_timeout=args.request_timeout,
                      on_status=on_status)
    worst = EXIT_OK
    for outcome in watcher:
        if outcome.error is not None:
            code = _exit_status(outcome.error) if isinstance(outcome.error, OpStatusError) \
                else EXIT_NETWORK
            worst = max(worst, code)
            if not args.json:
                draw(outcome.index, "error: %s" % _clip(outcome.error, 200))
            else:
                with lock:
                    _sys.stderr.write("opstatus: error: %s: %s\n"
                                      % (labels[outcome.index], outcome.error))
        elif not args.json:
            ref = outcome.status.resource
            draw(outcome.index, "%-10s  %6.1fs  %s" % (
                outcome.status.status.value, time.monotonic() - started,
                ref.path if ref is not None else ""))
    return worst


def _exit_status(exc):
    if isinstance(exc, OperationFailed):
        return EXIT_FAILED
    if isinstance(exc, PollTimeout) and exc.last_status is None and isinstance(
            exc.last_error, (HTTPError, NetworkError)):
        return EXIT_NETWORK  # never got an answer: the network, not the operation
    if isinstance(exc, (PollTimeout, PollCancelled)):
        return EXIT_TIMEOUT
    if isinstance(exc, (HTTPError, NetworkError, ResponseTooLarge)):
        return EXIT_NETWORK
    return EXIT_USAGE


def _cmd_take(args, out):
    endpoint, key = _connection_options(args, need_endpoint=True)
    location = take_snapshot(endpoint, key, object_type=args.type, object_id=args.object_id,
                             apply_scope=args.apply_scope, user_data=args.user_data,
                             allow_http=args.allow_http, cafile=args.cafile,
                             request_timeout=args.request_timeout)
    return _started(location, endpoint, key, args, out)


def _cmd_apply(args, out):
    endpoint, key = _connection_options(args, need_endpoint=True)
    location = apply_snapshot(endpoint, key, args.snapshot_id, object_id=args.object_id,
                              allow_http=args.allow_http, cafile=args.cafile,
                              request_timeout=args.request_timeout)
    return _started(location, endpoint, key, args, out)


def _started(location, endpoint, key, args, out):
    if args.json:
        import json

        out.write(json.dumps({"operationLocation": location}) + "\n")
    else:
        out.write("Operation-Location: %s\n" % location)
    out.flush()
    if not args.wait:
        return EXIT_OK
    return _watch_one(location, endpoint, key, args, out)


# -- simulator commands ------------------------------------------------------------


def _cmd_serve(args, out):
    sim = Simulator(key=args.key_value, dialect=args.dialect, host=args.host, port=args.port,
                    queue_seconds=args.queue_seconds, take_seconds=args.take_seconds,
                    apply_seconds=args.apply_seconds, fail=args.fail,
                    rate_limit=args.rate_limit, server_errors=args.server_errors,
                    slow=args.slow)
    try:
        sim.start()
    except (OSError, OverflowError) as exc:
        raise _UsageError("cannot listen on %s port %s: %s"
                          % (args.host, args.port, getattr(exc, "strerror", None) or exc))
    with sim:
        out.write("Face snapshot simulator (dialect %s) listening; Ctrl-C stops it.\n"
                  % args.dialect)
        out.write("export OPSTATUS_ENDPOINT=%s\n" % sim.endpoint)
        out.write("export OPSTATUS_KEY=%s\n" % sim.key)
        out.flush()
        import time

        while True:
            time.sleep(3600)


def _cmd_demo(args, out):
    import time

    sim = Simulator(dialect=args.dialect, take_seconds=1.0, apply_seconds=1.0,
                    queue_seconds=0.3, require_objects=True)
    started = time.monotonic()
    polls = 0
    with sim:
        sim.add_object("PersonGroup", "sample-group")
        out.write("Face snapshot simulator at %s (wire dialect %s)\n\n"
                  % (sim.endpoint, args.dialect))
        steps = [("take", "take a snapshot of PersonGroup 'sample-group'")]
        if not args.fail:
            steps.append(("apply", "apply it to a new PersonGroup 'sample-group-copy'"))
        snapshot_id = None
        for step, title in steps:
            out.write(title + "\n")
            if step == "take":
                if args.fail:
                    sim.fail = ("Source object was modified while the snapshot was being "
                                "taken. Please retry.")
                location = take_snapshot(sim.endpoint, sim.key, object_type="PersonGroup",
                                         object_id="sample-group",
                                         apply_scope=[sim.subscription])
                out.write("  POST /snapshots -> 202  Operation-Location: %s\n" % location)
            else:
                location = apply_snapshot(sim.endpoint, sim.key, snapshot_id,
                                          object_id="sample-group-copy")
                out.write("  POST /snapshots/%s/apply -> 202  Operation-Location: %s\n"
                          % (snapshot_id, location))
            t0 = time.monotonic()
            seen = []

            def show(st, t0=t0, seen=seen):
                if not seen or seen[-1] is not st.status:
                    seen.append(st.status)
                    took = ""
                    if st.is_terminal and st.duration is not None:
                        took = "  (service: %.2f s from created to last action)" % (
                            st.duration.total_seconds())
                    out.write("  %+7.2fs  %-10s  last action %s%s\n" % (
                        time.monotonic() - t0, st.status.value,
                        format_datetime(st.last_action_time or st.created_time), took))
                    out.flush()

            poller = Poller(location, endpoint=sim.endpoint, key=sim.key, timeout=60,
                            on_status=show)
            try:
                final = poller.wait()
            finally:
                polls += poller.polls
            if step == "take":
                snapshot_id = final.snapshot_id
                out.write("  snapshot id: %s\n\n" % snapshot_id)
            else:
                out.write("  target: %s\n\n" % final.resource_location)
    out.write("done in %.1f s with %d polls (each one a billed transaction on the real "
              "service)\n" % (time.monotonic() - started, polls))
    return EXIT_OK


def _cmd_plugins(args, out):
    if _import_pluggy() is None:
        out.write("pluggy is not installed, so no plugins are loaded "
                  "(pip install 'opstatus[plugins]')\n")
        return EXIT_OK
    pm = plugin_manager()
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    rows = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:  # blocked
            rows.append((name, "-", "blocked (OPSTATUS_DISABLED_PLUGINS)"))
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
        rows.append((name, str(version), origin))
    if args.json:
        import json

        out.write(json.dumps([{"name": n, "version": v, "origin": o} for n, v, o in rows],
                             indent=2) + "\n")
        return EXIT_OK
    width = max(len(r[0]) for r in rows)
    for name, version, origin in rows:
        out.write("%-*s  %-10s  %s\n" % (width, name, version, origin))
    import os

    if os.environ.get("OPSTATUS_DISABLE_PLUGIN_AUTOLOAD"):
        out.write("(autoload of entry-point plugins is off: OPSTATUS_DISABLE_PLUGIN_AUTOLOAD)\n")
    return EXIT_OK


# -- the parser ----------------------------------------------------------------------


def _build_parser():
    import argparse

    class Parser(argparse.ArgumentParser):
        def error(self, message):
            """One line on stderr, exit 2 (argparse would print the usage too)."""
            command = self.prog.partition(" ")[2]
            self.exit(EXIT_USAGE, "opstatus: error: %s%s (see '%s --help')\n"
                      % (command + ": " if command else "", message, self.prog))

    fmt = argparse.RawDescriptionHelpFormatter
    parser = Parser(
        prog="opstatus",
        description="Follow Azure-style asynchronous operations (Face API snapshots) "
        "to their end.",
        epilog="commands:\n"
        "  demo    run the whole flow against the built-in simulator\n"
        "  watch   poll existing operations until they end\n"
        "  take    start taking a snapshot\n"
        "  apply   start applying a snapshot\n"
        "  serve   run the simulator for other programs\n"
        "  parse   read and check an operation status document\n"
        "  plugins list the plugins loaded\n\n"
        "examples:\n"
        "  opstatus demo\n"
        "  OPSTATUS_KEY=... opstatus watch --endpoint https://westus.api.cognitive"
        ".microsoft.com /operations/ID\n\n" + _EPILOG_EXIT,
        formatter_class=fmt,
    )
    parser.add_argument("--version", action="version", version="opstatus " + __version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def connection(p, wait_options=True):
        g = p.add_argument_group("connection")
        g.add_argument("--endpoint", metavar="URL",
                       help="resource endpoint, e.g. https://westus.api.cognitive.microsoft."
                       "com (default: $OPSTATUS_ENDPOINT); /face/v1.0 is added when it "
                       "has no path")
        g.add_argument("--key-env", metavar="NAME",
                       help="environment variable holding the key (default: OPSTATUS_KEY)")
        g.add_argument("--allow-http", action="store_true",
                       help="allow plain http to a host other than loopback (unsafe)")
        g.add_argument("--cafile", metavar="FILE", help="trust the CA certificates in FILE")
        g.add_argument("--request-timeout", type=_positive_seconds,
                       default=DEFAULT_REQUEST_TIMEOUT,
                       metavar="S", help="timeout of one request (default: %(default)s)")
        g.add_argument("--json", action="store_true",
                       help="print JSON: one status document per change, the final one last")
        if wait_options:
            s = p.add_argument_group("schedule")
            s.add_argument("--timeout", type=_seconds, default=DEFAULT_TIMEOUT, metavar="S",
                           help="give up after S seconds; 0 means never (default: "
                           "%(default)s)")
            s.add_argument("--floor", type=_seconds, metavar="S",
                           help="shortest wait between polls (default: %s)" % DEFAULT_FLOOR)
            s.add_argument("--cap", type=_seconds, metavar="S",
                           help="longest wait between polls (default: %s)" % DEFAULT_CAP)

    def command(name, help, description, examples, func):
        p = sub.add_parser(name, help=help, description=description,
                           epilog="examples:\n" + examples + "\n\n" + _EPILOG_EXIT,
                           formatter_class=fmt)
        p.set_defaults(func=func)
        return p

    p = command("demo", "run take -> poll -> apply -> poll against the built-in simulator",
                "Start the built-in Face simulator, take a snapshot of a sample "
                "PersonGroup, poll it, apply it to a new PersonGroup, poll that, and "
                "print a timeline. Creates nothing outside the process.",
                "  opstatus demo\n  opstatus demo --dialect 2019\n"
                "  opstatus demo --fail    # a failed operation and the error you would see",
                _cmd_demo)
    p.add_argument("--fail", action="store_true", help="make the take fail")
    p.add_argument("--dialect", choices=("2019", "2021"), default="2021",
                   help="wire dialect of the simulator (default: %(default)s)")

    p = command("watch", "poll operations until they end",
                "Poll one or more operations (their Operation-Location) until they end.\n\n"
                + _EPILOG_ENV,
                "  export OPSTATUS_ENDPOINT=https://westus.api.cognitive.microsoft.com\n"
                "  export OPSTATUS_KEY=...\n"
                "  opstatus watch /operations/6f1b...\n"
                "  opstatus watch --json --timeout 600 /operations/6f1b... | tail -n1\n"
                "  opstatus watch --save-token op.json /operations/6f1b...   # then, after a "
                "restart:\n"
                "  opstatus watch --resume op.json",
                _cmd_watch)
    p.add_argument("operation", nargs="*", metavar="OPERATION_LOCATION",
                   help="the Operation-Location: /operations/ID or an absolute URL; "
                   "several are watched at once, one line each")
    p.add_argument("--resume", metavar="TOKEN_OR_FILE",
                   help="carry on from a resume token (or a file holding one)")
    p.add_argument("--save-token", metavar="FILE",
                   help="keep a resume token of the operation in FILE (mode 600), "
                   "updated at each poll")
    connection(p)

    p = command("take", "start taking a snapshot; print its Operation-Location",
                "POST /snapshots: start taking a snapshot of a face list or person "
                "group.\n\n" + _EPILOG_ENV,
                "  opstatus take --type PersonGroup --object-id group1 \\\n"
                "      --apply-scope 00000000-0000-0000-0000-000000000000 --wait",
                _cmd_take)
    p.add_argument("--type", required=True, type=_snapshot_type, metavar="TYPE",
                   help="object type: %s (any letter case)" % ", ".join(SNAPSHOT_TYPES))
    p.add_argument("--object-id", required=True, help="id of the object to snapshot")
    p.add_argument("--apply-scope", required=True, action="append", metavar="UUID",
                   help="subscription id that may apply it (repeat for more)")
    p.add_argument("--user-data", help="user data (at most %d characters)" % MAX_USER_DATA)
    p.add_argument("--wait", action="store_true", help="poll the operation to its end")
    connection(p)

    p = command("apply", "start applying a snapshot; print its Operation-Location",
                "POST /snapshots/{id}/apply: create a new object from a snapshot.\n\n"
                + _EPILOG_ENV,
                "  opstatus apply SNAPSHOT_ID --object-id group1-copy --wait", _cmd_apply)
    p.add_argument("snapshot_id", metavar="SNAPSHOT_ID")
    p.add_argument("--object-id", required=True, help="id of the new object")
    p.add_argument("--wait", action="store_true", help="poll the operation to its end")
    connection(p)

    p = command("serve", "run the Face snapshot simulator in the foreground",
                "Run the built-in simulator of the Face snapshot API on loopback and "
                "print its endpoint and key, for other programs to use.",
                "  opstatus serve --port 8080\n"
                "  opstatus serve --dialect 2019 --fail 'source modified' --rate-limit 3",
                _cmd_serve)
    p.add_argument("--host", default="127.0.0.1", help="address (default: %(default)s)")
    p.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    p.add_argument("--dialect", choices=("2019", "2021"), default="2021")
    p.add_argument("--key-env", dest="serve_key_env", metavar="NAME",
                   help="take the key from this environment variable (default: random)")
    p.add_argument("--queue-seconds", type=_seconds, default=0.3, metavar="S")
    p.add_argument("--take-seconds", type=_seconds, default=1.0, metavar="S")
    p.add_argument("--apply-seconds", type=_seconds, default=1.0, metavar="S")
    p.add_argument("--fail", metavar="MESSAGE", help="operations end failed with MESSAGE")
    p.add_argument("--rate-limit", type=int, default=0, metavar="N",
                   help="answer the next N requests with 429")
    p.add_argument("--server-errors", type=int, default=0, metavar="N",
                   help="answer the next N requests with 503")
    p.add_argument("--slow", type=_seconds, default=0.0, metavar="S",
                   help="wait S seconds before each answer")

    p = command("plugins", "list the plugins loaded, with version and origin",
                "List the plugins of the 'opstatus' entry-point group and the built-in "
                "one. OPSTATUS_DISABLE_PLUGIN_AUTOLOAD=1 turns autoload off; "
                "OPSTATUS_DISABLED_PLUGINS=a,b blocks the named ones.",
                "  opstatus plugins\n  opstatus plugins --json", _cmd_plugins)
    p.add_argument("--json", action="store_true", help="print JSON")

    p = command("parse", "read an operation status document and print it",
                "Read an operation status document (JSON) and print it, or the error "
                "that makes it invalid (exit 2).",
                "  opstatus parse status.json\n"
                "  curl -s ... | opstatus parse -\n"
                "  opstatus parse --json status.json   # normalized camelCase JSON",
                _cmd_parse)
    p.add_argument("file", nargs="?", default="-", metavar="FILE",
                   help="the document; '-' (the default) reads standard input")
    p.add_argument("--json", action="store_true", help="print the document as normalized JSON")
    return parser


def main(argv=None):
    # type: (Optional[list]) -> int
    """Run the command line; returns the exit status."""
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command == "serve":
            import os

            args.key_value = None
            if args.serve_key_env:
                args.key_value = os.environ.get(args.serve_key_env)
                if not args.key_value:
                    raise _UsageError("%s is not set" % args.serve_key_env)
        return args.func(args, _sys.stdout)
    except KeyboardInterrupt:
        _sys.stderr.write("\nopstatus: interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (``| head``): say so in the exit status, and
        # keep Python from complaining when it flushes stdout at exit.
        import os

        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), _sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_BROKEN_PIPE
    except (_UsageError, UnsafeURLError) as exc:
        _sys.stderr.write("opstatus: error: %s\n" % exc)
        return EXIT_USAGE
    except ValueError as exc:  # input checks of take/apply, documents given to parse
        if isinstance(exc, StatusDocumentError) and args.command != "parse":
            _sys.stderr.write("opstatus: error: the service sent %s\n" % exc)
            return EXIT_NETWORK
        _sys.stderr.write("opstatus: error: %s\n" % exc)
        return EXIT_USAGE
    except OpStatusError as exc:
        _sys.stderr.write("opstatus: error: %s\n" % exc)
        return _exit_status(exc)


if __name__ == "__main__":
    _sys.exit(main())
