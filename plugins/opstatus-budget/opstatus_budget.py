"""A budget of billed polls per hour, shared by every operation a process
polls, for opstatus.

Each status request is a billed transaction. With many operations in flight
(a :class:`opstatus.Watcher` of hundreds, several pollers in threads) the
per-operation schedule alone does not bound the bill. :class:`PollBudget`
does: a token bucket (in its GCRA form) of *per_hour* requests with room for
a *burst*, shared by all pollers that consult it::

    import opstatus, dataclasses
    from opstatus_budget import PollBudget

    opstatus.register_plugin(PollBudget(per_hour=600, burst=10))
    policy = opstatus.RetryPolicy(cap=900)   # let the budget ask for long waits
    opstatus.Watcher(locations, endpoint=..., key=..., policy=policy).results()

How it works: every request the service answers is counted (hook
``opstatus_response_received``, so a request that never reached it is not).
Before each wait between polls (``opstatus_next_delay``) and before each
retry (``opstatus_retry_delay``) the budget reserves the next free slot no
earlier than the core's own choice (the service's ``Retry-After``, else the
policy's) and returns the wait until it: when the budget is ample the
schedule is the core's, when it is short the waits grow so that the process
stays within *per_hour* requests an hour (plus *burst*). First polls and
POSTs cannot be delayed (no hook comes before them): they are counted, and
when they exceed the budget they are counted in :attr:`PollBudget.overdrafts`
and push the later slots back.

The core clamps every delay to ``policy.cap`` (60 s by default): a budget
that needs longer waits than the cap allows is exceeded, and says so once in
a warning. Raise the cap (``RetryPolicy(cap=...)``) to the longest wait you
accept.

``jitter="decorrelated"`` spreads retries after errors with AWS's
"decorrelated jitter" (each wait drawn between ``policy.error_base`` and three
times the previous one, within the cap), so that pollers that failed together
do not retry together. A server's ``Retry-After`` is always honoured as a
minimum. An error the policy would not retry is left to the policy.

Installed, the module is a plugin (entry point ``opstatus-budget``) that
does nothing unless ``OPSTATUS_BUDGET_PER_HOUR`` is set
(``OPSTATUS_BUDGET_BURST`` and ``OPSTATUS_BUDGET_JITTER=decorrelated``
optional), or :func:`configure` is called. The environment is read when the
plugin joins a plugin manager (``opstatus_configure``): a value that is not
a number refuses the plugin there, with a :class:`opstatus.PluginError`
naming it, rather than letting polls run unbudgeted.
"""

import logging
import math
import threading

import opstatus

__all__ = ["PollBudget", "configure"]

__version__ = "0.2.0"

_log = logging.getLogger("opstatus.budget")


class PollBudget:
    """A process-wide budget of *per_hour* requests, *burst* of them at once.

    :param per_hour: requests allowed per hour (a positive number).
    :param burst: requests that may go back to back (default: a minute's
        worth, at least 1).
    :param clock: monotonic seconds (default ``time.monotonic``): the same
        clock as the pollers'.
    :param jitter: ``None`` or ``"decorrelated"`` (for retries).
    :param random: a callable returning floats in [0, 1) (default
        ``random.random``).

    Thread-safe. :attr:`sent` counts the requests seen, :attr:`overdrafts`
    those that went beyond the budget (first polls the budget could not
    delay, or waits the policy's cap cut short).
    """

    def __init__(self, per_hour, *, burst=None, clock=None, jitter=None, random=None):
        if isinstance(per_hour, bool) or not isinstance(per_hour, (int, float)) \
                or not math.isfinite(per_hour) or per_hour <= 0:
            raise ValueError("per_hour must be a positive number, not %r" % (per_hour,))
        if burst is None:
            burst = max(1.0, math.floor(per_hour / 60.0))
        if isinstance(burst, bool) or not isinstance(burst, (int, float)) \
                or not math.isfinite(burst) or burst < 1:
            raise ValueError("burst must be a number >= 1, not %r" % (burst,))
        if jitter not in (None, "decorrelated"):
            raise ValueError("jitter must be None or 'decorrelated', not %r" % (jitter,))
        self.per_hour = float(per_hour)
        self.burst = float(burst)
        self.interval = 3600.0 / self.per_hour
        self.jitter = jitter
        self._tolerance = (self.burst - 1.0) * self.interval
        self._clock = clock
        self._random = random
        self._lock = threading.Lock()
        self._tat = None  # theoretical arrival time of the next request (GCRA)
        self._pending = {}  # url -> reserved slots not yet used
        self._previous = {}  # url -> last retry delay (decorrelated jitter)
        self._warned = False
        self.sent = 0
        self.overdrafts = 0

    def __repr__(self):
        return "<PollBudget %g/hour, burst %g, %d sent, %d overdrafts>" % (
            self.per_hour, self.burst, self.sent, self.overdrafts)

    # -- time and chance -------------------------------------------------------

    def _now(self):
        if self._clock is not None:
            return self._clock()
        import time

        return time.monotonic()

    def _rand(self):
        if self._random is not None:
            value = self._random()
        else:
            import random

            value = random.random()
        return min(max(float(value), 0.0), 1.0)

    # -- the bucket --------------------------------------------------------------

    def wait_time(self):
        """Seconds until a request would be within the budget (0: now)."""
        with self._lock:
            if self._tat is None:
                return 0.0
            return max(0.0, self._tat - self._tolerance - self._now())

    def reserve(self, url, delay):
        """Reserve the first slot at least *delay* seconds from now for a
        request to *url*; return the wait until it."""
        with self._lock:
            now = self._now()
            wanted = now + max(0.0, delay)
            slot = wanted if self._tat is None else max(wanted, self._tat - self._tolerance)
            self._tat = max(self._tat if self._tat is not None else slot, slot) + self.interval
            self._pending[url] = self._pending.get(url, 0) + 1
            return slot - now

    def count(self, url, method="GET"):
        """Count one request sent to *url* (what ``opstatus_response_received``
        does): it uses a slot reserved for it, or takes one now."""
        with self._lock:
            self.sent += 1
            pending = self._pending.get(url, 0)
            if pending and method == "GET":
                if pending == 1:
                    del self._pending[url]
                else:
                    self._pending[url] = pending - 1
                return
            now = self._now()
            if self._tat is not None and now < self._tat - self._tolerance - 1e-9:
                self.overdrafts += 1
            self._tat = max(self._tat if self._tat is not None else now, now) + self.interval

    def _forget(self, url):
        with self._lock:
            self._pending.pop(url, None)
            self._previous.pop(url, None)

    def _warn_cap(self, delay, policy):
        if delay > policy.cap and not self._warned:
            self._warned = True
            _log.warning("opstatus budget of %g polls/hour asks for %.0f s between polls, but "
                         "the policy caps waits at %g s: the budget will be exceeded; raise "
                         "RetryPolicy.cap", self.per_hour, delay, policy.cap)

    # -- hooks -------------------------------------------------------------------

    # tryfirst: the hook stops at the first plugin that returns something (a
    # credential plugin asking for the request again after a 401, say), and
    # that answer must be counted too.
    @opstatus.hookimpl(tryfirst=True)
    def opstatus_response_received(self, request, response):
        self.count(request.url, request.method)

    @opstatus.hookimpl
    def opstatus_next_delay(self, url, age, policy, retry_after):
        with self._lock:
            self._previous.pop(url, None)  # a success ends a run of errors
        if not _is_seconds(retry_after):
            retry_after = None
        # No earlier than the core's own choice: the service's wait, else the policy's.
        wanted = policy.poll_delay(age, self._rand) if retry_after is None else retry_after
        delay = self.reserve(url, wanted)
        if retry_after is not None and delay <= retry_after + 1e-9:
            return None  # the service's wait binds, not the budget: the core honours it
        self._warn_cap(delay, policy)
        return delay

    @opstatus.hookimpl
    def opstatus_retry_delay(self, url, error, errors, policy):
        if not policy.is_retryable(error, errors):
            return None  # the policy's call: the core raises the error
        if self.jitter == "decorrelated":
            with self._lock:
                previous = self._previous.get(url, policy.error_base)
                low = max(policy.error_base, policy.floor)
                high = max(low, previous * 3.0)
                base = min(policy.cap, low + self._rand() * (high - low))
                self._previous[url] = base
        else:
            base = policy.error_delay(errors, self._rand)
        hint = getattr(error, "retry_after", None)
        if _is_seconds(hint):
            base = max(base, hint)
        delay = self.reserve(url, base)
        self._warn_cap(delay, policy)
        return delay

    @opstatus.hookimpl
    def opstatus_operation_finished(self, url, outcome, status, error):
        self._forget(url)


def _is_seconds(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value) and value >= 0


###############################################################################
# The installed plugin: the budget configure() sets, else the environment's

_UNSET = object()
_code_budget = _UNSET  # what configure() set: it wins over the environment
_env_budget = None  # what opstatus_configure read


def configure(per_hour=None, **options):
    """Set the budget the installed plugin enforces (``None``: none), in
    place of the environment's. *options* are those of :class:`PollBudget`.
    Returns it."""
    global _code_budget
    _code_budget = None if per_hour is None else PollBudget(per_hour, **options)
    return _code_budget


def _from_environment(environ):
    raw = environ.get("OPSTATUS_BUDGET_PER_HOUR", "").strip()
    if not raw:
        return None
    options = {}
    try:
        per_hour = float(raw)
        if environ.get("OPSTATUS_BUDGET_BURST", "").strip():
            options["burst"] = float(environ["OPSTATUS_BUDGET_BURST"])
    except ValueError:
        raise ValueError("OPSTATUS_BUDGET_PER_HOUR and OPSTATUS_BUDGET_BURST must be numbers")
    jitter = environ.get("OPSTATUS_BUDGET_JITTER", "").strip()
    if jitter:
        options["jitter"] = jitter
    try:
        return PollBudget(per_hour, **options)
    except ValueError as exc:
        raise ValueError("OPSTATUS_BUDGET_*: %s" % exc) from None


def _budget():
    """The budget in force: configure()'s, else the environment's, or None."""
    return _env_budget if _code_budget is _UNSET else _code_budget


@opstatus.hookimpl
def opstatus_configure(environ):
    """Read the budget from the environment; a bad value refuses the plugin
    (``ValueError``: the core names the plugin)."""
    global _env_budget
    _env_budget = _from_environment(environ)


@opstatus.hookimpl(tryfirst=True)
def opstatus_response_received(request, response):
    budget = _budget()
    if budget is not None:
        budget.opstatus_response_received(request, response)


@opstatus.hookimpl
def opstatus_next_delay(url, age, policy, retry_after):
    budget = _budget()
    return None if budget is None else budget.opstatus_next_delay(url, age, policy, retry_after)


@opstatus.hookimpl
def opstatus_retry_delay(url, error, errors, policy):
    budget = _budget()
    return None if budget is None else budget.opstatus_retry_delay(url, error, errors, policy)


@opstatus.hookimpl
def opstatus_operation_finished(url, outcome, status, error):
    budget = _budget()
    if budget is not None:
        budget.opstatus_operation_finished(url, outcome, status, error)
