"""An opstatus transport over ``requests``: proxies, custom CAs, connection
reuse, and everything else a ``requests.Session`` knows.

Installed, it is an ``opstatus`` plugin (entry point ``opstatus-requests``):
every poller that consults plugins sends its requests through a default
session, which honours ``HTTPS_PROXY`` / ``NO_PROXY`` and
``REQUESTS_CA_BUNDLE``. For a session of your own::

    import requests, opstatus
    from opstatus_requests import RequestsTransport

    session = requests.Session()
    session.proxies = {"https": "http://proxy.example:3128"}
    session.verify = "/etc/ssl/corp-ca.pem"

    transport = RequestsTransport(session)
    opstatus.register_plugin(transport)            # every poller, or
    opstatus.poll(location, endpoint=..., key=..., transport=transport)  # one

The transport follows the rules of ``opstatus_send_request``: redirects are
returned, not followed (the core follows same-origin ones only); the body is
read with a cap (``request.max_bytes``, after decompression); a failure to
connect is a :class:`opstatus.NetworkError` with ``sent=False`` (safe to send
again, even a POST), a failure later one with ``sent=True``; a certificate
that fails verification (untrusted, expired, for another host name) is a
``NetworkError`` with ``retryable=False``, so that no poll retries it until
its deadline; error texts hold the URL without its query string, never a
header.

``request.timeout`` is one deadline for the whole exchange, as in the core's
own transport: connecting gets the time left, and every read of the answer
(status line, headers, body) gets only the time left, so a server that drips
its answer a byte at a time cannot stretch a request past its timeout.
"""

import functools
import io
import threading
import time

import opstatus

__all__ = ["RequestsTransport", "default_transport", "opstatus_send_request"]

__version__ = "0.2.0"

#: Bytes read from the response at a time.
CHUNK_SIZE = 8192


class RequestsTransport:
    """Send opstatus requests with a ``requests.Session``.

    Both a plugin (it implements ``opstatus_send_request``) and a transport
    object for ``transport=`` (it has ``send(request)``). *session* defaults
    to a new ``requests.Session()``, closed by :meth:`close`; a session you
    pass stays yours to close. Safe to share between threads as far as the
    session is (its connection pool is).

    ``session.verify`` (a CA bundle path, or ``True``) is honoured even when
    ``REQUESTS_CA_BUNDLE`` is set, which plain ``requests`` would let win; a
    session that does not verify certificates (``verify=False``) is refused,
    as the core refuses such an ``ssl_context``.
    """

    def __init__(self, session=None):
        if session is None:
            import requests

            session = requests.Session()
            self._owns_session = True
        else:
            self._owns_session = False
        _check_verify(session)
        self.session = session

    def __repr__(self):
        return "<RequestsTransport %s>" % type(self.session).__name__

    @opstatus.hookimpl
    def opstatus_send_request(self, request):
        return self.send(request)

    def send(self, request):
        """Send *request* (an :class:`opstatus.Request`); return an
        :class:`opstatus.Response` or raise :class:`opstatus.NetworkError` /
        :class:`opstatus.ResponseTooLarge`."""
        import requests

        _check_verify(self.session)
        timeout = max(0.001, float(request.timeout))
        deadline = time.monotonic() + timeout
        kwargs = {
            "headers": request.headers,
            "data": request.body,
            "timeout": (timeout, timeout),
            "allow_redirects": False,
            "stream": True,
            # Passed explicitly, or REQUESTS_CA_BUNDLE would override the
            # session's own CA bundle (requests issue 3829).
            "verify": self.session.verify,
        }
        if any(name.lower() == "authorization" for name in request.headers):
            # The request carries its credential already: keep requests from
            # replacing it with ~/.netrc or session.auth.
            kwargs["auth"] = _keep_headers
        _watch_adapter(self.session, request.url)
        _LOCAL.deadline = deadline
        try:
            response = self._request(request, kwargs)
            try:
                body = _read_body(response, request, deadline)
                headers = {}
                for name, value in response.headers.items():
                    headers[name.lower()] = value
                return opstatus.Response(response.status_code, headers, body, request.url)
            finally:
                response.close()
        finally:
            _LOCAL.deadline = None

    def _request(self, request, kwargs):
        """The session's response. As the core's transport does, a GET that meets a
        kept-alive connection the server had closed (dropped before any answer) goes
        once more, on a new connection; any other failure is a :class:`NetworkError`."""
        for attempt in (1, 2):
            _LOCAL.reused = False
            try:
                return self.session.request(request.method, request.url, **kwargs)
            except _network_exceptions() as exc:
                if attempt == 1 and request.method == "GET" and _LOCAL.reused and \
                        _dropped(exc):
                    continue
                raise _network_error(exc, request, sent=not _before_send(exc)) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self):
        """Close the session if this transport made it."""
        if self._owns_session:
            self.session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def _check_verify(session):
    if getattr(session, "verify", True) is False:
        raise ValueError("the session does not verify TLS certificates (verify=False): "
                         "refused; give it a CA bundle instead (session.verify = path)")


def _keep_headers(prepared_request):
    return prepared_request


def _network_exceptions():
    import requests

    e = requests.exceptions
    return (e.ConnectionError, e.Timeout, e.ChunkedEncodingError, e.ContentDecodingError)


def _causes(exc):
    """*exc* and the exceptions it wraps: args, ``reason``, cause, context."""
    seen = set()
    stack = [exc]
    while stack and len(seen) < 32:
        current = stack.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        stack.append(current.__context__)
        stack.append(current.__cause__)
        stack.append(getattr(current, "reason", None))
        stack.extend(getattr(current, "args", ()))


def _before_send(exc):
    """Whether *exc* surely came before the request reached the server."""
    import requests

    e = requests.exceptions
    if isinstance(exc, (e.ConnectTimeout, e.SSLError, e.ProxyError)):
        return True
    if isinstance(exc, e.ConnectionError):
        try:
            from urllib3.exceptions import NewConnectionError
        except ImportError:  # pragma: no cover - urllib3 comes with requests
            return False
        return any(isinstance(c, NewConnectionError) for c in _causes(exc))
    return False


def _dropped(exc):
    """Whether *exc* is a connection the server closed before it answered (not a
    timeout, not TLS: what a kept-alive connection closed while idle gives)."""
    import requests

    if isinstance(exc, (requests.exceptions.Timeout, requests.exceptions.SSLError)) or \
            not isinstance(exc, requests.exceptions.ConnectionError):
        return False
    return any(isinstance(c, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError))
               for c in _causes(exc))


def _describe(exc, sent):
    """A short text for *exc* that holds no URL, query or header."""
    import socket

    import requests

    e = requests.exceptions
    causes = list(_causes(exc))
    names = {type(c).__name__ for c in causes}
    if isinstance(exc, e.SSLError):
        reason = next((getattr(c, "reason", None) for c in causes
                       if type(c).__name__.startswith("SSL") and
                       isinstance(getattr(c, "reason", None), str)), None)
        return "TLS error" + (": %s" % reason if reason else "")
    if isinstance(exc, e.ProxyError):
        return "proxy error"
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return "connection refused"
    if "NameResolutionError" in names or any(isinstance(c, socket.gaierror) for c in causes):
        return "host name not resolved"
    if isinstance(exc, e.ConnectTimeout):
        return "timed out connecting"
    if isinstance(exc, e.Timeout) or "ReadTimeoutError" in names:
        return "timed out"
    if any(isinstance(c, ConnectionResetError) for c in causes):
        return "connection reset"
    if "RemoteDisconnected" in names:
        return "server closed the connection without answering"
    if isinstance(exc, e.ContentDecodingError):
        return "response body could not be decoded"
    if isinstance(exc, e.ChunkedEncodingError) or "IncompleteRead" in names:
        return "response body cut short"
    return "%s%s" % (type(exc).__name__, "" if sent else " before sending")


def _certificate_failure(exc):
    """Whether *exc* is a TLS certificate that failed verification (not
    trusted, expired, issued for another host name): another try cannot mend
    it. Other TLS failures (a handshake cut short, say) may be transient."""
    import ssl

    import requests

    if not isinstance(exc, requests.exceptions.SSLError):
        return False
    for cause in _causes(exc):
        # ssl.CertificateError is ssl.SSLCertVerificationError (hostname
        # mismatch included); urllib3 2 has a CertificateError of its own.
        if isinstance(cause, ssl.CertificateError) or \
                type(cause).__name__ in ("CertificateError", "SSLCertVerificationError"):
            return True
        text = str(cause)
        if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
            return True
    return False


def _network_error(exc, request, sent):
    url = opstatus.redact_url(request.url)
    return opstatus.NetworkError("%s (%s)" % (_describe(exc, sent), url), sent=sent, url=url,
                                 retryable=not _certificate_failure(exc))


def _read_body(response, request, deadline):
    """The body, at most ``request.max_bytes`` (decompressed), read before
    *deadline* (each read of the socket gets the time left; checked between
    chunks too)."""
    limit = request.max_bytes
    length = response.headers.get("content-length")
    if length is not None and "content-encoding" not in response.headers:
        try:
            announced = int(length.strip())
        except ValueError:
            announced = None
        if announced is not None and announced > limit:
            raise opstatus.ResponseTooLarge(
                "response announces %d bytes, more than the cap of %d" % (announced, limit))
    chunks = []
    size = 0
    try:
        for chunk in response.iter_content(chunk_size=max(1, min(CHUNK_SIZE, limit + 1))):
            size += len(chunk)
            if size > limit:
                raise opstatus.ResponseTooLarge(
                    "response body exceeds the cap of %d bytes" % limit)
            chunks.append(chunk)
            if time.monotonic() > deadline:
                url = opstatus.redact_url(request.url)
                raise opstatus.NetworkError("timed out reading the response (%s)" % url,
                                            sent=True, url=url)
    except _network_exceptions() as exc:
        raise _network_error(exc, request, sent=True) from None
    return b"".join(chunks)


###############################################################################
# One deadline per exchange
###############################################################################
#
# requests (urllib3) applies its read timeout to each read of the socket, so a
# server that sends a byte now and then keeps a request going for ever. The
# core's transport gives each read only the time left before the request's
# deadline; here, the same is done for the connections of the session:
#
# - the adapter that sends a request is watched (once): each connection pool
#   it hands out is watched (once); each connection the pool hands out, in
#   the thread that sends a request of ours, gets a ``response_class`` that
#   reads through a deadline (``http.client`` makes its response objects,
#   the tunnel's to a proxy included, with ``self.response_class(self.sock)``);
# - the deadline is the sending thread's (a thread-local set by ``send``), so
#   a connection the same session uses elsewhere (another thread, another
#   request of the program's own) reads as plain requests would.
#
# This leans on urllib3's pool handing out connections through ``_get_conn``
# (so since urllib3 1.x) and on requests' adapter getting the pool through
# ``get_connection_with_tls_context`` (``get_connection`` before 2.32.2); an
# adapter or pool without them is left alone, and the core's abandonment of
# a transport that overruns (``request.timeout`` + a slack) remains.

_LOCAL = threading.local()
_WATCH_LOCK = threading.Lock()
_POOL_GETTERS = ("get_connection_with_tls_context", "_get_connection", "get_connection")


def _watch_adapter(session, url):
    try:
        adapter = session.get_adapter(url)
    except Exception:  # no adapter for the URL: requests will say so
        return
    if getattr(adapter, "_opstatus_deadline_watch", False):
        return
    with _WATCH_LOCK:
        if getattr(adapter, "_opstatus_deadline_watch", False):
            return
        for name in _POOL_GETTERS:
            original = getattr(adapter, name, None)
            if callable(original):
                setattr(adapter, name, _pool_getter(original))
        adapter._opstatus_deadline_watch = True


def _pool_getter(original):
    @functools.wraps(original)
    def get_pool(*args, **kwargs):
        pool = original(*args, **kwargs)
        _watch_pool(pool)
        return pool

    return get_pool


def _watch_pool(pool):
    get_conn = getattr(pool, "_get_conn", None)
    if not callable(get_conn) or getattr(pool, "_opstatus_deadline_watch", False):
        return
    with _WATCH_LOCK:
        if getattr(pool, "_opstatus_deadline_watch", False):
            return

        @functools.wraps(get_conn)
        def watched_get_conn(*args, **kwargs):
            conn = get_conn(*args, **kwargs)
            # A connection with a socket was used before (urllib3 closes one it finds
            # dropped): a failure on it may be the server's close while it was idle.
            _LOCAL.reused = getattr(conn, "sock", None) is not None
            _arm(conn, getattr(_LOCAL, "deadline", None))
            return conn

        pool._get_conn = watched_get_conn
        pool._opstatus_deadline_watch = True


def _arm(conn, deadline):
    """Make *conn*'s next responses read before *deadline* (``None``: as
    its class would)."""
    import http.client

    base = getattr(type(conn), "response_class", None)
    try:
        if deadline is None or not (isinstance(base, type) and
                                    issubclass(base, http.client.HTTPResponse)):
            conn.__dict__.pop("response_class", None)
        else:
            conn.response_class = functools.partial(_deadline_response, base, deadline)
    except AttributeError:  # pragma: no cover - a connection without a __dict__
        pass


def _deadline_response(base, deadline, sock, *args, **kwargs):
    return base(_DeadlineSocket(sock, deadline), *args, **kwargs)


class _DeadlineSocket:
    """What ``http.client.HTTPResponse`` is given instead of the socket: its
    ``makefile`` reads the socket with the time left before *deadline*."""

    def __init__(self, sock, deadline):
        self._sock = sock
        self._deadline = deadline

    def makefile(self, mode="rb", *args, **kwargs):
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline))


class _DeadlineReader(io.RawIOBase):
    def __init__(self, sock, deadline):
        super().__init__()
        self._sock = sock
        self._deadline = deadline
        self._timeout = sock.gettimeout()
        # The socket's own unbuffered file: it holds a reference, so that a
        # close() of the socket while the answer is read (http.client closes
        # the connection of a close-delimited answer at once) waits for it.
        self._raw = sock.makefile("rb", buffering=0)

    def readable(self):
        return True

    def readinto(self, buffer):
        import socket

        left = self._deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out (request deadline)")
        self._sock.settimeout(left if self._timeout is None else min(left, self._timeout))
        return self._raw.readinto(buffer)

    def close(self):
        if not self.closed:
            try:
                if self._raw.fileno() >= 0:  # still open: leave its timeout as it was
                    self._sock.settimeout(self._timeout)
            except (OSError, ValueError):
                pass
            self._raw.close()
            super().close()


###############################################################################
# The installed plugin

_DEFAULT = None


def default_transport():
    """The transport the installed plugin uses: one session for the process,
    made when the plugin first joins a plugin manager (``opstatus_configure``,
    before any request), or here if called before that."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = RequestsTransport()
    return _DEFAULT


@opstatus.hookimpl
def opstatus_configure(environ):
    """Make the default transport, before any request: its session reads
    ``HTTPS_PROXY``, ``NO_PROXY`` and ``REQUESTS_CA_BUNDLE`` itself, for
    each request."""
    default_transport()


@opstatus.hookimpl
def opstatus_send_request(request):
    """The installed plugin: send through :func:`default_transport`."""
    return default_transport().send(request)
