"""Tell people and programs how opstatus operations go: a JSON-lines event
log, and a chat webhook (Slack, Microsoft Teams) told when an operation ends.

::

    import opstatus
    from opstatus_notify import EventLog, WebhookNotifier

    opstatus.register_plugin(EventLog("/var/log/opstatus/events.jsonl"))
    opstatus.register_plugin(WebhookNotifier(os.environ["SLACK_WEBHOOK_URL"],
                                             outcomes={"failed", "timeout", "error"}))

:class:`EventLog` writes one JSON object a line for each status change,
retry and end. URLs in it are shown with :func:`opstatus.redact_url` (no
query string, where SAS signatures travel); error texts are the core's,
which hold no secret.

:class:`WebhookNotifier` POSTs ``{"text": "..."}``, which both Slack
incoming webhooks and Teams connectors accept, over ``http.client`` with a
timeout: https only (http to loopback only), certificates verified,
redirects not followed. A failure is logged (logger ``opstatus.notify``),
never raised: a notifier cannot break a poll. The webhook URL is a secret
(its path is the credential): logs show its scheme and host only.

An event log that cannot be written (a folder missing, a full disk) is told
once, on the same logger, until it can be written again: its events are lost
meanwhile, and the poll goes on.

Installed, the module is a plugin (entry point ``opstatus-notify``) that does
nothing unless ``OPSTATUS_NOTIFY_LOG`` (a file path, or ``-`` for standard
error) or ``OPSTATUS_NOTIFY_WEBHOOK`` (a URL) is set;
``OPSTATUS_NOTIFY_OUTCOMES`` (comma-separated) limits the webhook to some
outcomes. They are read when the plugin joins a plugin manager
(``opstatus_configure``). A mistake in these (an unknown outcome, a webhook
URL that is refused) is told once, then, as a warning on ``opstatus.notify``,
and never stops a poll. :func:`configure` does the same from code (it wins
over the environment, and raises ``ValueError`` for a mistake).
"""

import datetime
import json
import logging
import os
import re
import threading

import opstatus

__all__ = ["EventLog", "WebhookNotifier", "configure"]

__version__ = "0.2.0"

#: Longest service message or error text put in an event or a chat message.
MAX_TEXT = 500

#: The outcomes of ``opstatus_operation_finished``.
OUTCOMES = frozenset(("succeeded", "failed", "timeout", "cancelled", "error"))

_log = logging.getLogger("opstatus.notify")


def _clip(text, limit=MAX_TEXT):
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _iso(dt):
    return None if dt is None else opstatus.format_datetime(dt)


def _status_fields(status):
    if status is None:
        return {}
    fields = {"status": status.status.value, "createdTime": _iso(status.created_time),
              "lastActionTime": _iso(status.last_action_time)}
    if status.resource_location is not None:
        fields["resourceLocation"] = opstatus.redact_url(status.resource_location)
    if status.message is not None:
        fields["message"] = _clip(status.message)
    return fields


def _error_fields(error):
    if error is None:
        return {"error": None}
    fields = {"error": _clip(error), "errorType": type(error).__name__}
    status = getattr(error, "status", None)
    if isinstance(status, int) and not isinstance(status, bool):
        fields["httpStatus"] = status
    return fields


class EventLog:
    """An opstatus plugin that appends one JSON line per event to *target*:
    a file path (opened for each line, so log rotation is harmless) or a
    text stream (anything with ``write``). Thread-safe.

    Each line has ``time`` (UTC, ISO 8601), ``event``
    (``status_changed``, ``retry_scheduled``, ``operation_finished``) and
    ``operation`` (the redacted URL), then the event's own fields.
    *clock* gives POSIX seconds (``time.time`` by default).
    """

    def __init__(self, target, *, clock=None):
        if not hasattr(target, "write"):
            target = os.fspath(target)
        self.target = target
        self._clock = clock
        self._lock = threading.Lock()
        self._trouble = None  # the failure last told, until a line is written again

    def __repr__(self):
        return "<EventLog %s>" % self._where()

    def _time(self):
        if self._clock is not None:
            posix = self._clock()
        else:
            import time

            posix = time.time()
        dt = datetime.datetime.fromtimestamp(posix, datetime.timezone.utc)
        return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (dt.microsecond // 1000)

    def write(self, event, url, **fields):
        """Append one event (what the hooks call)."""
        record = {"time": self._time(), "event": event, "operation": opstatus.redact_url(url)}
        record.update(fields)
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        with self._lock:
            if isinstance(self.target, str):
                with open(self.target, "a", encoding="utf-8") as fh:
                    fh.write(line)
            else:
                self.target.write(line)
                flush = getattr(self.target, "flush", None)
                if flush is not None:
                    flush()

    def record(self, event, url, **fields):
        """:meth:`write`, for the hooks: a line that cannot be written is
        lost, and the failure told once on logger ``opstatus.notify`` (not
        once per event) until a line is written again."""
        try:
            self.write(event, url, **fields)
        except (OSError, ValueError) as exc:  # no folder, no space, a closed stream
            trouble = "%s: %s" % (type(exc).__name__, getattr(exc, "strerror", None) or exc)
            with self._lock:
                told, self._trouble = self._trouble == trouble, trouble
            if not told:
                _log.warning("opstatus: event log %s cannot be written (%s); its events are "
                             "lost until it can", self._where(), _clip(trouble, 200))
        else:
            if self._trouble is not None:
                with self._lock:
                    self._trouble = None
                _log.info("opstatus: event log %s is written again", self._where())

    def _where(self):
        return self.target if isinstance(self.target, str) else type(self.target).__name__

    @opstatus.hookimpl
    def opstatus_status_changed(self, url, previous, status):
        fields = _status_fields(status)
        fields["previous"] = previous.status.value if previous is not None else None
        self.record("status_changed", url, **fields)

    @opstatus.hookimpl
    def opstatus_retry_scheduled(self, url, error, delay, errors):
        fields = _error_fields(error)
        fields.update(delay=round(float(delay), 3), errors=errors)
        self.record("retry_scheduled", url, **fields)

    @opstatus.hookimpl
    def opstatus_operation_finished(self, url, outcome, status, error):
        fields = {"outcome": outcome}
        fields.update(_status_fields(status))
        if status is not None and status.duration is not None:
            fields["duration"] = round(status.duration.total_seconds(), 3)
        fields.update(_error_fields(error))
        self.record("operation_finished", url, **fields)


def default_text(url, outcome, status, error):
    """The chat message for an operation that ended."""
    where = opstatus.redact_url(url)
    if outcome == "succeeded":
        text = "\u2705 operation %s succeeded" % where
        if status is not None and status.resource_location:
            text += ": %s" % opstatus.redact_url(status.resource_location)
        if status is not None and status.duration is not None:
            text += " (%.1f s)" % status.duration.total_seconds()
        return text
    marks = {"failed": "\u274c", "timeout": "\u23f1", "cancelled": "\u26d4"}
    text = "%s operation %s %s" % (marks.get(outcome, "\u26a0"), where,
                                   "timed out" if outcome == "timeout" else outcome)
    if error is not None:
        text += ": %s" % _clip(error)
    if status is not None and outcome != "failed":
        text += " (last status: %s)" % status.status.value
    return text


class WebhookNotifier:
    """An opstatus plugin that POSTs ``{"text": ...}`` to a chat webhook
    when an operation ends.

    :param url: the webhook URL (https; http only to loopback).
    :param outcomes: the outcomes to tell (default: all).
    :param timeout: seconds for each network step (connect, send, read).
    :param ssl_context: an ``ssl.SSLContext`` that verifies (default: the
        system's); *cafile* adds a CA bundle.
    :param text: ``text(url, outcome, status, error)`` builds the message
        (default :func:`default_text`); *payload* ``(text) -> dict`` the
        JSON body (default ``{"text": text}``).
    """

    def __init__(self, url, *, outcomes=None, timeout=5.0, ssl_context=None, cafile=None,
                 text=None, payload=None):
        from urllib.parse import urlsplit

        if not isinstance(url, str) or re.search(r"[\x00-\x20\x7f\\]", url):
            raise ValueError("webhook URL must be a str without spaces or control characters")
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").lower()
        if scheme not in ("https", "http") or not host:
            raise ValueError("webhook URL must be an absolute https URL")
        if "@" in parts.netloc:
            raise ValueError("webhook URL must not hold a user name or password")
        if scheme == "http" and not opstatus.is_loopback(host):
            raise ValueError("webhook URL must use https (plain http only to loopback)")
        if ssl_context is not None:
            import ssl

            if ssl_context.verify_mode != ssl.CERT_REQUIRED or not ssl_context.check_hostname:
                raise ValueError("ssl_context must verify certificates and host names")
        if outcomes is not None:
            outcomes = frozenset(outcomes)
            unknown = outcomes - OUTCOMES
            if unknown:
                raise ValueError("unknown outcomes %s (known: %s)"
                                 % (sorted(unknown), ", ".join(sorted(OUTCOMES))))
        self._url = url
        self._scheme, self._host, self._port = scheme, host, parts.port
        self._path = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        self.label = "%s://%s%s" % (scheme, host, ":%d" % parts.port if parts.port else "")
        self.outcomes = outcomes
        self.timeout = float(timeout)
        self._ssl_context = ssl_context
        self._cafile = cafile
        self._text = text or default_text
        self._payload = payload or (lambda text: {"text": text})

    def __repr__(self):
        return "<WebhookNotifier %s/…>" % self.label  # never the path: it is the secret

    @opstatus.hookimpl
    def opstatus_operation_finished(self, url, outcome, status, error):
        if self.outcomes is not None and outcome not in self.outcomes:
            return
        self.post(self._payload(self._text(url, outcome, status, error)))

    def post(self, payload):
        """POST *payload* as JSON; ``True`` on a 2xx answer. Never raises:
        failures are logged with the webhook's scheme and host only."""
        body = json.dumps(payload).encode("utf-8")
        try:
            status = self._send(body)
        except Exception as exc:  # a notifier must not break a poll
            _log.warning("opstatus: webhook %s failed: %s", self.label, self._safe(exc))
            return False
        if not 200 <= status < 300:
            _log.warning("opstatus: webhook %s answered HTTP %d%s", self.label, status,
                         " (redirects are not followed)" if 300 <= status < 400 else "")
            return False
        return True

    def _safe(self, exc):
        text = "%s: %s" % (type(exc).__name__, _clip(exc, 200))
        for secret in (self._url, self._path, self._path.split("?", 1)[0]):
            if len(secret) > 1:
                text = text.replace(secret, "/…")
        return text

    def _send(self, body):
        import http.client

        if self._scheme == "https":
            context = self._ssl_context
            if context is None:
                import ssl

                context = ssl.create_default_context(cafile=self._cafile)
            conn = http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout,
                                               context=context)
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
        try:
            conn.request("POST", self._path, body=body, headers={
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "opstatus-notify/" + __version__,
            })
            response = conn.getresponse()
            response.read(64 * 1024)
            return response.status
        finally:
            conn.close()


###############################################################################
# The installed plugin: configured from the environment or configure()


class _Stderr:
    def write(self, text):
        import sys

        sys.stderr.write(text)

    def flush(self):
        import sys

        sys.stderr.flush()


_UNSET = object()
_code_notifiers = _UNSET  # what configure() set: it wins over the environment
_env_notifiers = ()  # what opstatus_configure read


def _from_environment(environ):
    """The notifiers the environment asks for. A mistake is told once, as a
    warning on ``opstatus.notify``, never raised: an unknown outcome is
    ignored (none left: every outcome is told), a refused webhook URL turns
    the webhook off."""
    notifiers = []
    log = environ.get("OPSTATUS_NOTIFY_LOG", "").strip()
    if log:
        notifiers.append(EventLog(_Stderr() if log == "-" else log))
    hook = environ.get("OPSTATUS_NOTIFY_WEBHOOK", "").strip()
    if hook:
        outcomes = [o.strip() for o in environ.get("OPSTATUS_NOTIFY_OUTCOMES", "").split(",")
                    if o.strip()]
        unknown = [o for o in outcomes if o not in OUTCOMES]
        if unknown:
            outcomes = [o for o in outcomes if o in OUTCOMES]
            _log.warning("opstatus: OPSTATUS_NOTIFY_OUTCOMES: unknown outcome%s %s ignored "
                         "(known: %s); the webhook is told of %s",
                         "s" if len(unknown) > 1 else "", ", ".join(map(repr, unknown)),
                         ", ".join(sorted(OUTCOMES)),
                         ", ".join(outcomes) if outcomes else "every outcome")
        try:
            notifiers.append(WebhookNotifier(hook, outcomes=outcomes or None))
        except ValueError as exc:  # the message never holds the URL's path
            _log.warning("opstatus: OPSTATUS_NOTIFY_WEBHOOK: %s; the webhook is off", exc)
    return notifiers


def configure(*, log=None, webhook=None, outcomes=None):
    """Set what the installed plugin does: *log* a path or stream for an
    :class:`EventLog`, *webhook* a URL for a :class:`WebhookNotifier` told of
    *outcomes*. With neither, it does nothing. Returns the notifiers. In
    place of the environment's, whenever it is called."""
    global _code_notifiers
    notifiers = []
    if log is not None:
        notifiers.append(EventLog(log))
    if webhook is not None:
        notifiers.append(WebhookNotifier(webhook, outcomes=outcomes))
    _code_notifiers = tuple(notifiers)
    return notifiers


def _notifiers():
    """The notifiers in force: configure()'s, else the environment's."""
    return _env_notifiers if _code_notifiers is _UNSET else _code_notifiers


@opstatus.hookimpl
def opstatus_configure(environ):
    """Read the notifiers from the environment (mistakes told, not raised)."""
    global _env_notifiers
    _env_notifiers = tuple(_from_environment(environ))


@opstatus.hookimpl
def opstatus_status_changed(url, previous, status):
    for notifier in _notifiers():
        if isinstance(notifier, EventLog):
            notifier.opstatus_status_changed(url, previous, status)


@opstatus.hookimpl
def opstatus_retry_scheduled(url, error, delay, errors):
    for notifier in _notifiers():
        if isinstance(notifier, EventLog):
            notifier.opstatus_retry_scheduled(url, error, delay, errors)


@opstatus.hookimpl
def opstatus_operation_finished(url, outcome, status, error):
    for notifier in _notifiers():
        notifier.opstatus_operation_finished(url, outcome, status, error)
