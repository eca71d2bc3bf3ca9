"""opstatus, azure-core's LROPoller and a plain urllib loop against hostile servers.

Run from the repository root::

    python3 benchmarks/compare_hostile.py                  # prints the table, writes the doc
    python3 benchmarks/compare_hostile.py --no-write       # prints it only
    python3 benchmarks/compare_hostile.py --only 1,2,11a   # some scenarios (doc not written)

Needs azure-core (``python -m pip install azure-core``); without it the
azure-core column says so. Linux (peak RSS from /proc).

Every cell of the table comes from running the client against servers of
this script on 127.0.0.1 (raw sockets, port 0, one thread per connection,
one request per connection unless a scenario keeps them alive): nothing is
mocked on the client side. Each client starts the operation the
way its users do (a POST to ``{endpoint}/snapshots`` that answers 202 with an
``Operation-Location``) and then polls that URL to its end:

- opstatus: ``take_snapshot(...)`` then ``poll(location, endpoint=, key=,
  timeout=3, request_timeout=1, policy=RetryPolicy(floor=0.05, cap=0.2),
  plugins=False)``;
- azure-core: ``LROPoller(client, initial, callback,
  LROBasePolling(timeout=0.05)).result()`` over a ``PipelineClient`` with the
  policies a generated SDK client puts in its pipeline, each with its default
  settings (HeadersPolicy carrying the key, UserAgentPolicy, ProxyPolicy,
  RedirectPolicy, RetryPolicy, CustomHookPolicy, NetworkTraceLoggingPolicy,
  HttpLoggingPolicy) and its default transport (requests);
- urllib: the loop of the typical sample, with a 0.05 s sleep::

      while True:
          r = urllib.request.urlopen(Request(url, headers={KEY_HEADER: key}))
          doc = json.load(r)
          if doc["status"] in ("succeeded", "failed"):
              break
          time.sleep(0.05)

Each attempt runs in a daemon thread joined with a hard timeout (6 s): one
that has not returned by then is reported as still running (a hang). The
memory scenarios (6a, 6b) run each client in a child process of its own so
that its peak RSS (VmHWM, reset through /proc/self/clear_refs after the
imports) is its alone. Host names ending in ``.invalid`` are answered by a
wrapper of ``socket.getaddrinfo`` that counts the lookup and fails it, so
that scenario 4 sends nothing anywhere. ``*_proxy`` variables are removed
from the environment. Every attempt has its own servers, its own key and its
own URL prefix; when it ends its servers answer every later request with
``succeeded`` so that pollers left behind stop.
"""

from __future__ import print_function

import argparse
import collections
import datetime
import json
import os
import platform
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import opstatus  # noqa: E402

THIS_FILE = os.path.abspath(__file__)
DOC_PATH = os.path.join(REPO_ROOT, "docs", "hostile-servers.md")

KEY_HEADER = "Ocp-Apim-Subscription-Key"
SCOPE = "00000000-0000-0000-0000-000000000000"
CREATED = "2021-06-08T22:28:33.5402214Z"
LAST = "2021-06-08T22:28:34.5793888Z"

#: Hard bound of one attempt, in seconds.
BOUND = 6.0
#: Polling interval given to the peers; opstatus gets floor=0.05, cap=0.2.
INTERVAL = 0.05
#: opstatus's overall deadline and per-request timeout in every scenario.
OPSTATUS_TIMEOUT = 3.0
OPSTATUS_REQUEST_TIMEOUT = 1.0
#: Scenario 10's overall budget.
BUDGET = 3.0
#: What a hostile streaming server sends on one connection before it stops.
STREAM_LIMIT = 50 * 1024 * 1024
CLIENTS = ("opstatus", "azure-core", "urllib")


###############################################################################
# DNS: count lookups of *.invalid and fail them without any I/O
###############################################################################

DNS_LOOKUPS = collections.Counter()
_real_getaddrinfo = socket.getaddrinfo


def _getaddrinfo(host, *args, **kwargs):
    name = host.decode("ascii", "replace") if isinstance(host, bytes) else str(host)
    if name.lower().rstrip(".").endswith(".invalid"):
        DNS_LOOKUPS[name.lower()] += 1
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return _real_getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _getaddrinfo
for _name in list(os.environ):
    if _name.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        del os.environ[_name]


###############################################################################
# Loopback servers
###############################################################################


class Req(object):
    def __init__(self, method, path, headers, body):
        self.method, self.path, self.headers, self.body = method, path, headers, body


HOLD = object()  # the handler's answer: keep the connection open, say nothing


def http_response(status, headers=(), body=b"", reason=None, close=True):
    reasons = {200: "OK", 202: "Accepted", 302: "Found", 307: "Temporary Redirect",
               404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error"}
    if isinstance(body, str):
        body = body.encode("utf-8")
    lines = ["HTTP/1.1 %d %s" % (status, reason or reasons.get(status, "Status"))]
    lines += ["%s: %s" % (k, v) for k, v in headers]
    lines += ["Content-Length: %d" % len(body)] + (["Connection: close"] if close else [])
    lines += ["", ""]
    return "\r\n".join(lines).encode("latin-1") + body


def json_response(status, document, headers=(), close=True):
    body = document if isinstance(document, str) else json.dumps(document)
    return http_response(status, list(headers) + [("Content-Type", "application/json")], body,
                         close=close)


def status_doc(status, **extra):
    doc = {"status": status, "createdTime": CREATED, "lastActionTime": LAST}
    doc.update(extra)
    return doc


class Server(object):
    """A raw-socket HTTP/1.1 server on 127.0.0.1: one request per connection.

    *handler(req)* returns the bytes to send, HOLD, or a callable that writes
    the answer itself on the socket. Only requests under ``/<token>/`` reach
    it (others get 404 and are not counted)."""

    def __init__(self, token, handler, keep_alive=False):
        self.token = token
        self.handler = handler
        #: serve further requests on a connection after an answer (the
        #: handler's answers then must not say ``Connection: close``)
        self.keep_alive = keep_alive
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.connections = 0
        self.requests = []
        self.bytes_streamed = 0
        self.retired = threading.Event()
        self.held = []
        threading.Thread(target=self._accept, name="hostile-accept", daemon=True).start()

    def url(self, path=""):
        return "http://127.0.0.1:%d/%s%s" % (self.port, self.token, path)

    def snapshot(self):
        with self.lock:
            return {"connections": self.connections, "requests": list(self.requests),
                    "streamed": self.bytes_streamed}

    def retire(self):
        """From now on answer everything with a terminal status; let go of
        held connections."""
        self.retired.set()
        with self.lock:
            held, self.held = self.held, []
        for conn in held:
            _close(conn)

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), name="hostile-conn",
                             daemon=True).start()

    def _serve(self, conn):
        try:
            conn.settimeout(30)
            while True:
                req = _read_request(conn)
                if req is None:
                    _close(conn)
                    return
                if self.retired.is_set():
                    conn.sendall(json_response(200, status_doc("succeeded")))
                    _close(conn)
                    return
                if not req.path.startswith("/%s/" % self.token):
                    conn.sendall(http_response(404, body="not this attempt"))
                    _close(conn)
                    return
                with self.lock:
                    self.requests.append(req)
                answer = self.handler(req)
                if answer is HOLD:
                    with self.lock:
                        self.held.append(conn)
                    if self.retired.is_set():
                        _close(conn)
                    return
                if callable(answer):
                    answer(self, conn)
                else:
                    conn.sendall(answer)
                if not self.keep_alive:
                    _close(conn)
                    return
        except OSError:
            _close(conn)


def _close(conn):
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        conn.close()
    except OSError:
        pass


def _read_request(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk or len(data) > 1 << 20:
            return None
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) < 3:
        return None
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    try:
        length = int(headers.get("content-length") or 0)
    except ValueError:
        length = 0
    while len(rest) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        rest += chunk
    return Req(parts[0], parts[1], headers, rest[:length])


def stream_body(chunked, announce=None):
    """A writer: headers, then body bytes up to STREAM_LIMIT, then close."""

    def write(server, conn):
        head = ["HTTP/1.1 200 OK", "Content-Type: application/json"]
        if chunked:
            head.append("Transfer-Encoding: chunked")
        else:
            head.append("Content-Length: %d" % announce)
        conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        piece = b" " * 65536
        frame = (b"%x\r\n" % len(piece)) + piece + b"\r\n" if chunked else piece
        sent = 0
        while sent < STREAM_LIMIT:
            try:
                conn.sendall(frame)
            except OSError:
                break
            sent += len(piece)
            with server.lock:
                server.bytes_streamed += len(piece)

    return write


###############################################################################
# The three clients
###############################################################################


def _payload():
    return {"type": "PersonGroup", "objectId": "group1", "applyScope": [SCOPE]}


def client_opstatus(endpoint, key, budget=None):
    location = opstatus.take_snapshot(
        endpoint, key, object_type="PersonGroup", object_id="group1", apply_scope=[SCOPE],
        request_timeout=OPSTATUS_REQUEST_TIMEOUT, plugins=False)
    final = opstatus.poll(
        location, endpoint=endpoint, key=key,
        timeout=budget if budget is not None else OPSTATUS_TIMEOUT,
        request_timeout=OPSTATUS_REQUEST_TIMEOUT,
        policy=opstatus.RetryPolicy(floor=INTERVAL, cap=0.2), plugins=False)
    return final.to_dict(include_extra=True)


def azure_pipeline_client(endpoint, key):
    from azure.core import PipelineClient
    from azure.core.configuration import Configuration
    from azure.core.pipeline import policies

    config = Configuration()
    config.headers_policy = policies.HeadersPolicy(base_headers={KEY_HEADER: key})
    config.user_agent_policy = policies.UserAgentPolicy(sdk_moniker="compare-hostile/1.0")
    config.proxy_policy = policies.ProxyPolicy()
    config.redirect_policy = policies.RedirectPolicy()
    config.retry_policy = policies.RetryPolicy()
    config.custom_hook_policy = policies.CustomHookPolicy()
    config.logging_policy = policies.NetworkTraceLoggingPolicy()
    config.http_logging_policy = policies.HttpLoggingPolicy()
    return PipelineClient(base_url=endpoint, config=config)


def client_azure(endpoint, key, budget=None):
    from azure.core.polling import LROPoller
    from azure.core.polling.base_polling import LROBasePolling
    from azure.core.rest import HttpRequest

    client = azure_pipeline_client(endpoint, key)
    initial = client.send_request(HttpRequest("POST", endpoint + "/snapshots", json=_payload()),
                                  _return_pipeline_response=True)
    poller = LROPoller(client, initial, lambda pr: pr.http_response.json(),
                       LROBasePolling(timeout=INTERVAL))
    return poller.result(timeout=budget) if budget is not None else poller.result()


def client_urllib(endpoint, key, budget=None):
    from urllib.request import Request, urlopen

    r = urlopen(Request(endpoint + "/snapshots", data=json.dumps(_payload()).encode("utf-8"),
                        headers={KEY_HEADER: key, "Content-Type": "application/json"},
                        method="POST"))
    url = r.headers["Operation-Location"]
    while True:
        r = urlopen(Request(url, headers={KEY_HEADER: key}))
        doc = json.load(r)
        if doc["status"] in ("succeeded", "failed"):
            break
        time.sleep(INTERVAL)
    return doc


CLIENT_FUNCS = {"opstatus": client_opstatus, "azure-core": client_azure, "urllib": client_urllib}


def azure_available():
    try:
        import azure.core.polling.base_polling  # noqa: F401
        import azure.core.rest  # noqa: F401
    except ImportError:
        return False
    return True


def azure_version():
    try:
        from importlib import metadata
        return metadata.version("azure-core")
    except Exception:
        try:
            import azure.core
            return azure.core.__version__
        except Exception:
            return None


###############################################################################
# Running one attempt
###############################################################################


class Outcome(object):
    """What one client did: returned (value), raised (exc) or hung."""

    def __init__(self):
        self.done = False
        self.value = None
        self.exc = None
        self.exc_type = None
        self.exc_text = ""       # str(exc)
        self.trace_text = ""     # the whole formatted exception, chain included
        self.elapsed = None
        self.extra = {}

    def as_json(self):
        return {"done": self.done, "value": self.value, "exc_type": self.exc_type,
                "exc_text": self.exc_text, "trace_text": self.trace_text,
                "elapsed": self.elapsed, "extra": self.extra}

    @classmethod
    def from_json(cls, data):
        out = cls()
        for name, value in data.items():
            setattr(out, name, value)
        return out


def run_bounded(func, bound=BOUND):
    """Run *func()* in a daemon thread; wait at most *bound* seconds."""
    out = Outcome()
    started = time.monotonic()

    def target():
        try:
            out.value = func()
        except BaseException as exc:  # noqa: B902 - everything is an outcome
            out.exc = exc
            out.exc_type = type(exc).__name__
            out.exc_text = str(exc)
            out.trace_text = "".join(traceback.format_exception(type(exc), exc,
                                                                exc.__traceback__))
        out.elapsed = time.monotonic() - started
        out.done = True

    before = set(threading.enumerate())
    worker = threading.Thread(target=target, name="attempt", daemon=True)
    worker.start()
    worker.join(bound)
    if not worker.is_alive() and out.done:
        return out
    out.done = False
    out.elapsed = bound
    out.extra["blocked_in"] = _blocked_in(before)
    return out


def _blocked_in(before):
    """Where the attempt's threads are now: the innermost Python frame of the
    poller's own thread (azure-core's LROPoller) or of the attempt thread."""
    frames = sys._current_frames()
    threads = [t for t in threading.enumerate()
               if t not in before and t.is_alive() and not t.name.startswith("hostile-")]
    threads.sort(key=lambda t: (not t.name.startswith("LROPoller"), t.name != "attempt"))
    for thread in threads:
        frame = frames.get(thread.ident)
        if frame is not None:
            return "%s.%s" % (frame.f_globals.get("__name__", "?"), frame.f_code.co_name)
    return None


def new_token():
    return "t%08x" % random.getrandbits(32)


def new_key():
    return "5ec2e7c0ffee00dead" + "%014x" % random.getrandbits(56)


###############################################################################
# Describing outcomes
###############################################################################


def _requests_of(servers):
    return sum(len(s["requests"]) for s in servers)


_CONTROL = re.compile(u"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _escape_controls(text):
    """*text* with its control characters written as ``\\xNN`` (so that
    none reaches the table, or a terminal, raw)."""
    return _CONTROL.sub(lambda m: "\\x%02x" % ord(m.group()), text)


def _short_exc(out, key, limit=45):
    text = (out.exc_text or "").replace("\r", "\\r").replace("\n", " ")
    text = _escape_controls(text).replace("\t", " ")
    if key:
        text = text.replace(key, "<key>")
    text = re.sub(r"http://127\.0\.0\.1:\d+/t[0-9a-f]{8}", "", text)
    text = re.sub(r"file:///\S+?\.json", "file:…", text)
    text = re.sub(r"[\w-]+\.example\.invalid", "….example.invalid", text)
    text = re.sub(r"\s+", " ", text).strip()
    if len(text) > limit:
        cut = text[:limit]
        if " " in cut[limit // 2:]:
            cut = cut.rsplit(" ", 1)[0]
        text = cut.rstrip(" ,;:(") + "…"
    return text


def exc_phrase(out, key=None, detail=True):
    name = "`%s`" % out.exc_type
    text = _short_exc(out, key) if detail else ""
    return "%s: %s" % (name, text) if text else name


def key_leak_note(out, key):
    """Whether the key shows in the exception (message, or chain/traceback)."""
    if out.exc_type is None or not key:
        return ""
    if key in (out.exc_text or ""):
        return "; **key in the error message**"
    if key in (out.trace_text or ""):
        return "; **key in the chained traceback**"
    return ""


def fmt_seconds(value):
    return "%.1f s" % value


def plural(n, word):
    return "%d %s%s" % (n, word, "" if n == 1 else "s")


#: A hung client that made more requests than this is polling without end.
POLLING_WITHOUT_END = 10


def base_phrase(out, n_requests, key=None, detail=True):
    if not out.done:
        where = out.extra.get("blocked_in")
        if n_requests > POLLING_WITHOUT_END or not where:
            return "still polling after %g s (hang), %s so far" % (
                BOUND, plural(n_requests, "request"))
        return "still running after %g s (hang), blocked in `%s()` after %s" % (
            BOUND, where, plural(n_requests, "request"))
    if out.exc_type is not None:
        return "raised %s after %s (%s)" % (exc_phrase(out, key, detail),
                                            plural(n_requests, "request"),
                                            fmt_seconds(out.elapsed))
    status = out.value.get("status") if isinstance(out.value, dict) else None
    if status is None and isinstance(out.value, dict):
        status = out.value.get("Status")
    return "returned `%s` after %s (%s)" % (status, plural(n_requests, "request"),
                                            fmt_seconds(out.elapsed))


###############################################################################
# Scenarios
###############################################################################


class Scenario(object):
    """One hostile situation. *setup(token, key, client)* returns a dict with
    ``endpoint``, ``servers`` (name -> Server) and whatever *describe* needs;
    *describe(client, outcome, env, snaps)* returns the cell."""

    def __init__(self, ident, title, setup, describe, key=None, budget=None, child=False,
                 bound=BOUND, clients=None):
        self.ident, self.title, self.setup, self.describe = ident, title, setup, describe
        self.key, self.budget, self.child, self.bound = key, budget, child, bound
        #: client name -> function(endpoint, key, budget=None), for the
        #: scenarios whose clients do more than start and poll one operation
        self.clients = clients or {}


def simple_setup(get_handler_factory, location=None):
    """One server: POST -> 202 (Operation-Location on itself unless
    *location(env)* says otherwise), GET -> the factory's handler."""

    def setup(token, key, client):
        env = {"token": token, "key": key}
        get_handler = get_handler_factory(env)
        env["get"] = get_handler

        def handler(req):
            if req.method == "POST":
                loc = location(env) if location else env["servers"]["main"].url("/operations/1")
                return http_response(202, [("Operation-Location", loc)])
            return get_handler(req)

        main = Server(token, handler)
        env["servers"] = {"main": main}
        env["endpoint"] = main.url()
        return env

    return setup


def describe_simple(client, out, env, snaps):
    n = _requests_of(snaps.values())
    return base_phrase(out, n, env["key"]) + key_leak_note(out, env["key"])


# -- 1 and 2: the key and another origin -------------------------------------


def _evil_server(token):
    return Server(token, lambda req: json_response(200, status_doc("succeeded")))


def setup_other_origin(token, key, client):
    evil = _evil_server(token)
    main = Server(token, lambda req: http_response(
        202, [("Operation-Location", evil.url("/operations/1"))]))
    return {"token": token, "key": key, "endpoint": main.url(),
            "servers": {"main": main, "evil": evil}}


def setup_redirect(token, key, client):
    evil = _evil_server(token)

    def handler(req):
        if req.method == "POST":
            return http_response(202, [("Operation-Location", main.url("/operations/1"))])
        return http_response(302, [("Location", evil.url("/operations/1"))])

    main = Server(token, handler)
    return {"token": token, "key": key, "endpoint": main.url(),
            "servers": {"main": main, "evil": evil}}


def describe_other_origin(client, out, env, snaps):
    evil, key = snaps["evil"], env["key"]
    with_key = sum(1 for r in evil["requests"] if r.headers.get(KEY_HEADER.lower()) == key)
    if not out.done:
        head = "still running after %g s (hang)" % BOUND
    elif out.exc_type is not None:
        head = "refused it (%s)" % exc_phrase(out, key, detail=False) \
            if evil["connections"] == 0 else "raised %s" % exc_phrase(out, key)
    else:
        head = "returned `%s`%s" % (out.value.get("status"),
                                    " (the other origin's)" if evil["requests"] else "")
    if evil["connections"] == 0:
        tail = "no connection to the other origin"
    elif with_key:
        tail = "**sent the key to the other origin** (%d of %s there)" % (
            with_key, plural(len(evil["requests"]), "request"))
    else:
        tail = "other origin got %s, none with the key" % plural(len(evil["requests"]), "request")
    return "%s; %s%s" % (head, tail, key_leak_note(out, key))


# -- 3: file: URL -----------------------------------------------------------------

SENTINEL = "read-from-local-file"


def setup_file(token, key, client):
    fd, path = tempfile.mkstemp(prefix="opstatus-hostile-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(status_doc("succeeded", note=SENTINEL), f)
    main = Server(token, lambda req: http_response(
        202, [("Operation-Location", "file://" + path)]))
    return {"token": token, "key": key, "endpoint": main.url(), "servers": {"main": main},
            "cleanup": lambda: os.unlink(path)}


def describe_file(client, out, env, snaps):
    n = _requests_of(snaps.values())
    if out.done and out.exc_type is None and isinstance(out.value, dict) \
            and out.value.get("note") == SENTINEL:
        return "**opened the local file** and returned its status `%s`" % out.value["status"]
    if out.done and out.exc_type is not None and n == 1 and out.exc_type == "UnsafeURLError":
        return "refused it before opening anything (%s)" % exc_phrase(out, env["key"]) \
            + key_leak_note(out, env["key"])
    return base_phrase(out, n, env["key"]) + "; file not opened" \
        + key_leak_note(out, env["key"])


# -- 4: plain http to a host that is not loopback -----------------------------------


def setup_plain_http(token, key, client):
    host = "%s-%s.example.invalid" % (client.replace("-", ""), token)
    return {"token": token, "key": key, "endpoint": "http://%s/face/v1.0" % host,
            "servers": {}, "host": host}


def describe_plain_http(client, out, env, snaps):
    lookups = DNS_LOOKUPS.get(env["host"], 0)
    if out.done and out.exc_type is not None and lookups == 0:
        return "refused before any I/O (%s); no DNS lookup" % exc_phrase(
            out, env["key"], detail=False) \
            + key_leak_note(out, env["key"])
    state = ("still running after %g s (hang)" % BOUND if not out.done else
             "then raised %s (%s)" % (exc_phrase(out, env["key"], detail=False),
                                      fmt_seconds(out.elapsed))
             if out.exc_type else "then returned")
    return "**tried to connect**: %d DNS lookup%s of the host, %s" % (
        lookups, "" if lookups == 1 else "s", state) + key_leak_note(out, env["key"])


# -- 5: an error body that echoes the request --------------------------------------


def echo_factory(env):
    def handler(req):
        seen = "; ".join("%s: %s" % (k, v) for k, v in sorted(req.headers.items()))
        return json_response(500, {"error": {"code": "InternalServerError",
                                             "message": "request headers were " + seen}})
    return handler


def describe_echo(client, out, env, snaps):
    n = _requests_of(snaps.values())
    text = base_phrase(out, n, env["key"], detail=False)
    note = key_leak_note(out, env["key"])
    if out.done and out.exc_type is not None and not note:
        if "request headers were" in (out.exc_text or ""):
            masked = "%s: ***" % KEY_HEADER.lower() in out.exc_text
            note = "; error text keeps the echo%s" % (", key masked as `***`" if masked else
                                                      " without the key")
        else:
            note = "; echo (and key) not in the error text"
    return text + note


# -- 6: endless bodies (measured in child processes) ----------------------------------


def setup_stream(chunked):
    def setup(token, key, client):
        writer = stream_body(chunked, announce=10 * 1024 ** 3)

        def handler(req):
            if req.method == "POST":
                return http_response(202, [("Operation-Location", main.url("/operations/1"))])
            return writer

        main = Server(token, handler)
        return {"token": token, "key": key, "endpoint": main.url(), "servers": {"main": main}}

    return setup


def describe_stream(client, out, env, snaps):
    n = _requests_of(snaps.values())
    growth = out.extra.get("rss_growth_mb")
    streamed = snaps["main"]["streamed"] / 1048576.0
    mem = ("peak RSS +%d MB" % round(growth)) if growth is not None else "peak RSS unknown"
    return "%s; %s; server sent %d MB" % (base_phrase(out, n, env["key"]), mem,
                                          round(streamed))


# -- 7: documents -----------------------------------------------------------------------


def deep_factory(env):
    body = ('{"status": "running", "createdTime": "%s", "x": %s%s}'
            % (CREATED, "[" * 100000, "]" * 100000))
    return lambda req: json_response(200, body)


def nan_factory(env):
    return lambda req: json_response(200, '{"status": NaN, "createdTime": "%s"}' % CREATED)


def cancelled_factory(env):
    return lambda req: json_response(200, status_doc("Cancelled"))


# -- 8: CR/LF in the key -------------------------------------------------------------------


def setup_crlf(token, key, client):
    env = simple_setup(lambda env: (lambda req: json_response(200, status_doc("succeeded"))))(
        token, key, client)
    return env


def describe_crlf(client, out, env, snaps):
    main = snaps["main"]
    injected = sum(1 for r in main["requests"] if "x-injected" in r.headers)
    bare = env["key"].split("\r")[0]
    if out.done and out.exc_type is not None and main["connections"] == 0:
        head = "refused before any request (%s)" % exc_phrase(out, bare, detail=False)
    elif out.done and out.exc_type is not None:
        head = "raised %s after %s, %s" % (
            exc_phrase(out, bare, detail=False), plural(main["connections"], "connection"),
            plural(len(main["requests"]), "request"))
    else:
        head = base_phrase(out, len(main["requests"]), bare)
    if injected:
        head += "; **injected header reached the server**"
    return head + key_leak_note(out, bare)


# -- 9: a server that never answers --------------------------------------------------------


def hold_factory(env):
    return lambda req: HOLD


# -- 10: running forever, with a budget ----------------------------------------------------


def running_factory(env):
    return lambda req: json_response(200, status_doc("running"))


def describe_budget(client, out, env, snaps):
    n = _requests_of(snaps.values())
    status = out.value.get("status") if out.done and isinstance(out.value, dict) else None
    if status is not None and status not in ("succeeded", "failed"):
        text = "**returned the intermediate status `%s`** after %s (%s)" % (
            status, fmt_seconds(out.elapsed), plural(n, "request"))
    else:
        text = base_phrase(out, n, env["key"])
    if client == "urllib" and not out.done:
        text += "; the loop has no deadline"
    later = out.extra.get("requests_after_return")
    if later:
        text += "; its thread went on polling: %d more %s in the next %s" % (
            later, "request" if later == 1 else "requests",
            fmt_seconds(out.extra["after_window"]))
    return text + key_leak_note(out, env["key"])


# -- 11: Retry-After -------------------------------------------------------------------------


def retry_after_factory(value):
    def factory(env):
        count = [0]
        lock = threading.Lock()

        def handler(req):
            with lock:
                count[0] += 1
                first = count[0] == 1
            if first:
                return json_response(429, {"error": {"code": "429", "message": "slow down"}},
                                     [("Retry-After", value)])
            return json_response(200, status_doc("succeeded"))
        return handler
    return factory


# -- 12, 13: status documents --------------------------------------------------------------


def failed_null_factory(env):
    return lambda req: json_response(200, status_doc("failed", message=None))


def describe_failed(client, out, env, snaps):
    n = _requests_of(snaps.values())
    if out.done and out.exc_type is None:
        return "returned the `failed` document (message `%r`) after %s (%s)" % (
            out.value.get("message"), plural(n, "request"), fmt_seconds(out.elapsed))
    return base_phrase(out, n, env["key"]) + key_leak_note(out, env["key"])


def sequence_factory(documents):
    def factory(env):
        count = [0]
        lock = threading.Lock()

        def handler(req):
            with lock:
                i = min(count[0], len(documents) - 1)
                count[0] += 1
            return json_response(200, documents[i])
        return handler
    return factory


NOTSTARTED_DOCS = [status_doc("notStarted"), status_doc("running"), status_doc("succeeded")]
DIALECT_2019_DOCS = [
    {"Status": status, "CreatedTime": CREATED, "LastActionTime": LAST, "Message": None,
     "ResourceLocation": None}
    for status in ("notStarted", "running", "succeeded")
]


# -- 14: 1xx interim answers, two operations on one kept-alive connection ------------

#: Seconds between the interim answer and the final one (a real server sends
#: 103 Early Hints first and the final answer when it has it).
INTERIM_GAP = 0.05
TWO_OPS = ("a", "b")


def _raw_answer(status, reason, headers=(), body=b"", close=False):
    head = ["HTTP/1.1 %d %s" % (status, reason)] + ["%s: %s" % h for h in headers]
    if status >= 200:
        head.append("Content-Length: %d" % len(body))
        if close:
            head.append("Connection: close")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def setup_interim(status, reason, headers):
    """Two operations, a and b, on one keep-alive server: each GET of an
    operation is answered first with the 1xx *status*, then (after
    INTERIM_GAP) with that operation's own final ``succeeded``, which names
    it (``"operation": "a"``; no ``resourceLocation``, which azure-core
    would fetch)."""

    def setup(token, key, client):
        posts = [0]
        lock = threading.Lock()

        def handler(req):
            if req.method == "POST":
                with lock:
                    name = TWO_OPS[min(posts[0], 1)]
                    posts[0] += 1
                return http_response(202, [("Operation-Location",
                                            main.url("/operations/%s" % name))], close=False)
            name = req.path.rstrip("/").rsplit("/", 1)[-1]
            final = json_response(200, status_doc("succeeded", operation=name), close=False)

            def write(server, conn):
                conn.sendall(_raw_answer(status, reason, headers))
                time.sleep(INTERIM_GAP)
                conn.sendall(final)
            return write

        main = Server(token, handler, keep_alive=True)
        return {"token": token, "key": key, "endpoint": main.url(), "servers": {"main": main}}

    return setup


def _ended(result):
    """One operation's end, for the table: its status document or its error."""
    if isinstance(result, BaseException):
        return {"error": "%s: %s" % (type(result).__name__, result)}
    if isinstance(result, dict):
        return result
    return {"error": "returned %r" % (result,)}


def interim_opstatus(endpoint, key, budget=None):
    locations = [opstatus.take_snapshot(
        endpoint, key, object_type="PersonGroup", object_id="group-" + name,
        apply_scope=[SCOPE], request_timeout=OPSTATUS_REQUEST_TIMEOUT, plugins=False)
        for name in TWO_OPS]
    watcher = opstatus.Watcher(locations, endpoint=endpoint, key=key, max_workers=1,
                               timeout=OPSTATUS_TIMEOUT, request_timeout=OPSTATUS_REQUEST_TIMEOUT,
                               policy=opstatus.RetryPolicy(floor=INTERVAL, cap=0.2),
                               plugins=False)
    return {TWO_OPS[o.index]: _ended(o.error if o.error is not None
                                     else o.status.to_dict(include_extra=True))
            for o in watcher.results()}


def interim_azure(endpoint, key, budget=None):
    from azure.core.polling import LROPoller
    from azure.core.polling.base_polling import LROBasePolling
    from azure.core.rest import HttpRequest

    client = azure_pipeline_client(endpoint, key)
    initials = [client.send_request(HttpRequest("POST", endpoint + "/snapshots", json=_payload()),
                                    _return_pipeline_response=True) for _ in TWO_OPS]
    ends = {}
    for name, initial in zip(TWO_OPS, initials):
        try:
            ends[name] = _ended(LROPoller(client, initial, lambda pr: pr.http_response.json(),
                                          LROBasePolling(timeout=INTERVAL)).result())
        except Exception as exc:  # noqa: B902 - each operation's own outcome
            ends[name] = _ended(exc)
    return ends


def interim_urllib(endpoint, key, budget=None):
    from urllib.request import Request, urlopen

    urls = []
    for _ in TWO_OPS:
        r = urlopen(Request(endpoint + "/snapshots",
                            data=json.dumps(_payload()).encode("utf-8"),
                            headers={KEY_HEADER: key, "Content-Type": "application/json"},
                            method="POST"))
        urls.append(r.headers["Operation-Location"])
    ends = {}
    for name, url in zip(TWO_OPS, urls):
        try:
            while True:
                r = urlopen(Request(url, headers={KEY_HEADER: key}))
                doc = json.load(r)
                if doc["status"] in ("succeeded", "failed"):
                    break
                time.sleep(INTERVAL)
            ends[name] = _ended(doc)
        except Exception as exc:  # noqa: B902 - each operation's own outcome
            ends[name] = _ended(exc)
    return ends


INTERIM_CLIENTS = {"opstatus": interim_opstatus, "azure-core": interim_azure,
                   "urllib": interim_urllib}


def describe_interim(client, out, env, snaps):
    main = snaps["main"]
    n = _requests_of(snaps.values())
    gets = sum(1 for r in main["requests"] if r.method == "GET")
    wiring = "%s, %s" % (plural(main["connections"], "connection"),
                         plural(n, "request"))
    if not out.done or out.exc_type is not None or not isinstance(out.value, dict):
        return base_phrase(out, n, env["key"]) + "; " + wiring + key_leak_note(out, env["key"])
    parts = []
    for name in TWO_OPS:
        end = out.value.get(name) or {"error": "no outcome"}
        if "error" in end:
            fake = Outcome()
            fake.exc_type, _, fake.exc_text = end["error"].partition(": ")
            parts.append("%s raised %s" % (name, exc_phrase(fake, env["key"])))
            continue
        whose = end.get("operation")
        if whose == name:
            parts.append("%s got its own `%s`" % (name, end.get("status")))
        else:
            parts.append("**%s got %s answer** (`%s`)" % (
                name, ("%s's" % whose) if whose in TWO_OPS else "another",
                end.get("status")))
    return "%s; %s (%d GETs) (%.1f s)" % ("; ".join(parts), wiring, gets,
                                          out.elapsed) + key_leak_note(out, env["key"])


# -- 15: a body shorter than its Content-Length ---------------------------------------

SHORT_DOC = json.dumps(status_doc("succeeded")).encode()
SHORT_SENT = 30


def short_body_factory(env):
    count = [0]
    lock = threading.Lock()

    def handler(req):
        with lock:
            count[0] += 1
            first = count[0] == 1
        if first:  # announces the whole document, sends 30 bytes, closes
            return _raw_answer(200, "OK", [("Content-Type", "application/json")],
                               SHORT_DOC, close=True)[:-(len(SHORT_DOC) - SHORT_SENT)]
        return json_response(200, status_doc("succeeded"))
    return handler


def describe_short_body(client, out, env, snaps):
    n = _requests_of(snaps.values())
    text = base_phrase(out, n, env["key"])
    if out.done and out.exc_type is None and n > 2:
        text += "; the cut answer was retried"
    elif out.done and out.exc_type is not None:
        text += "; **the poll ended on the cut answer**"
    return text + key_leak_note(out, env["key"])


# -- 16: a slow redirect chain and the deadline ------------------------------------------

#: Same-origin redirects before the final answer (opstatus follows at most 5).
HOPS = 5
#: Each answer of the chain comes after 90% of opstatus's request timeout:
#: no hop on its own times out, the chain as a whole takes 6 x 0.9 s.
HOP_DELAY = 0.9 * OPSTATUS_REQUEST_TIMEOUT


def slow_redirects_factory(env):
    def handler(req):
        path = req.path.split("?", 1)[0].rstrip("/")
        hop = int(path.rsplit("/hop", 1)[1]) if "/hop" in path else 0
        time.sleep(HOP_DELAY)
        if hop < HOPS:
            target = "/%s/operations/1/hop%d" % (env["token"], hop + 1)
            return http_response(307, [("Location", target)])
        return json_response(200, status_doc("succeeded"))
    return handler


def describe_slow_redirects(client, out, env, snaps):
    if out.done and out.exc_type is None and out.value is None:
        # azure-core's result(timeout=) when its poller has no answer yet
        text = "**returned `None`** after %s (%s), the chain not yet at its end" % (
            fmt_seconds(out.elapsed), plural(_requests_of(snaps.values()), "request"))
        later = out.extra.get("requests_after_return")
        if later:
            text += "; its thread went on: %d more %s in the next %s" % (
                later, "request" if later == 1 else "requests",
                fmt_seconds(out.extra["after_window"]))
        return text + key_leak_note(out, env["key"])
    text = describe_budget(client, out, env, snaps)
    if out.done and client != "urllib" and out.elapsed > BUDGET + 0.5:
        text += "; **%.1f s past its %g s deadline**" % (out.elapsed - BUDGET, BUDGET)
    return text


# -- 17: terminal escape sequences in the failure message --------------------------------

ESCAPES = "\x1b]0;PWNED\x07\x1b[2J"


def escapes_factory(env):
    return lambda req: json_response(200, status_doc(
        "failed", message="Snapshot failed " + ESCAPES + "(see the log)"))


def _raw_controls(text):
    """The control characters in *text*, named, in order of appearance."""
    names = []
    for c in text:
        if _CONTROL.match(c):
            name = "ESC" if c == "\x1b" else "BEL" if c == "\x07" else "\\x%02x" % ord(c)
            if name not in names:
                names.append(name)
    return names


def describe_escapes(client, out, env, snaps):
    n = _requests_of(snaps.values())
    if out.done and out.exc_type is None and isinstance(out.value, dict):
        message = out.value.get("message") or ""
        raw = _raw_controls(message)
        return "returned the `failed` document after %s (%s); its message %s" % (
            plural(n, "request"), fmt_seconds(out.elapsed),
            "**holds the raw %s** (printing it runs them)" % " and ".join(raw) if raw
            else "has no raw control characters")
    text = base_phrase(out, n, env["key"], detail=False)
    if out.done and out.exc_type is not None:
        raw = _raw_controls(out.exc_text or "")
        if raw:
            text += "; **its text carries the raw %s**" % " and ".join(raw)
        elif "PWNED" in (out.exc_text or ""):
            text += "; its text has the message with the control characters escaped"
        else:
            text += "; the message is not in its text"
    return text + key_leak_note(out, env["key"])



SCENARIOS = [
    Scenario("1", "`Operation-Location` on another origin (other port of 127.0.0.1)",
             setup_other_origin, describe_other_origin),
    Scenario("2", "status URL answers `302` to another origin",
             setup_redirect, describe_other_origin),
    Scenario("3", "`file:` URL as `Operation-Location` (a local JSON file)",
             setup_file, describe_file),
    Scenario("4", "plain `http://` to a host that is not loopback (`http://….example.invalid`)",
             setup_plain_http, describe_plain_http),
    Scenario("5", "`500` whose JSON error message echoes the request headers",
             simple_setup(echo_factory), describe_echo),
    Scenario("6a", "`Content-Length: 10737418240` (10 GB); server stops after 50 MB",
             setup_stream(chunked=False), describe_stream, child=True),
    Scenario("6b", "endless chunked body; server stops after 50 MB",
             setup_stream(chunked=True), describe_stream, child=True),
    Scenario("7a", "JSON nested 100,000 levels deep (200 KB)",
             simple_setup(deep_factory), describe_simple),
    Scenario("7b", "`\"status\": NaN`", simple_setup(nan_factory), describe_simple),
    Scenario("7c", "unknown status `\"Cancelled\"`",
             simple_setup(cancelled_factory), describe_simple),
    Scenario("8", "CR/LF in the key (`<key>\\r\\nX-Injected: yes`)",
             setup_crlf, describe_crlf, key="crlf"),
    Scenario("9", "server accepts the poll and never answers",
             simple_setup(hold_factory), describe_simple),
    Scenario("10", "status `running` forever; caller's budget 3 s",
             simple_setup(running_factory), describe_budget, budget=BUDGET),
    Scenario("11a", "`429` with `Retry-After: 1e10`, then `succeeded`",
             simple_setup(retry_after_factory("1e10")), describe_simple),
    Scenario("11b", "`429` with `Retry-After: -1`, then `succeeded`",
             simple_setup(retry_after_factory("-1")), describe_simple),
    Scenario("11c", "`429` with `Retry-After: nan`, then `succeeded`",
             simple_setup(retry_after_factory("nan")), describe_simple),
    Scenario("11d", "`429` with `Retry-After: 86400` (a day), then `succeeded`",
             simple_setup(retry_after_factory("86400")), describe_simple),
    Scenario("12", "`failed` with `\"message\": null`",
             simple_setup(failed_null_factory), describe_failed),
    Scenario("13", "`notStarted` (camel case), then `running`, then `succeeded`",
             simple_setup(sequence_factory(NOTSTARTED_DOCS)), describe_simple),
    Scenario("13b", "the same in the 2019 dialect (`Status`, `CreatedTime`, … PascalCase keys)",
             simple_setup(sequence_factory(DIALECT_2019_DOCS)), describe_simple),
    Scenario("14a", "`103 Early Hints` before each final `200`; two operations, a and b, "
             "polled over one kept-alive connection (opstatus: `Watcher([a, b], "
             "max_workers=1)`; the others: a, then b)",
             setup_interim(103, "Early Hints", [("Link", "</snapshots>; rel=preload")]),
             describe_interim, clients=INTERIM_CLIENTS),
    Scenario("14b", "the same with `102 Processing`",
             setup_interim(102, "Processing", []), describe_interim, clients=INTERIM_CLIENTS),
    Scenario("15", "body shorter than its `Content-Length` (%d announced, %d sent, then "
             "close), then `succeeded`" % (len(SHORT_DOC), SHORT_SENT),
             simple_setup(short_body_factory), describe_short_body),
    Scenario("16", "%d same-origin `307` hops, then `succeeded`; each answer after %.1f s "
             "(90%% of opstatus's %g s request timeout); caller's budget %g s"
             % (HOPS, HOP_DELAY, OPSTATUS_REQUEST_TIMEOUT, BUDGET),
             simple_setup(slow_redirects_factory), describe_slow_redirects, budget=BUDGET,
             bound=(HOPS + 1) * HOP_DELAY + 3),
    Scenario("17", "`failed` whose `message` holds `\\x1b]0;PWNED\\x07\\x1b[2J` (sets the "
             "terminal title, clears the screen)",
             simple_setup(escapes_factory), describe_escapes),
]
SCENARIO_BY_ID = {s.ident: s for s in SCENARIOS}


###############################################################################
# Running
###############################################################################


def _client_call(client, scenario, endpoint, key):
    func = scenario.clients.get(client) or CLIENT_FUNCS[client]
    if scenario.budget is None:
        return lambda: func(endpoint, key)
    if client in ("opstatus", "azure-core"):
        return lambda: func(endpoint, key, budget=scenario.budget)
    return lambda: func(endpoint, key)  # the urllib loop has no budget to give


def attempt(scenario, client):
    token = new_token()
    key = new_key()
    if scenario.key == "crlf":
        key = key + "\r\nX-Injected: yes"
    env = scenario.setup(token, key, client)
    servers = env["servers"]
    try:
        if scenario.child:
            out = run_child(scenario, client, env["endpoint"], key)
        else:
            out = run_bounded(_client_call(client, scenario, env["endpoint"], key),
                              scenario.bound)
            out.exc = None
        snaps = {name: s.snapshot() for name, s in servers.items()}
        if scenario.budget is not None and out.done and out.exc_type is None:
            # The call returned: does anything keep polling behind it?
            window = 1.0
            time.sleep(window)
            later = sum(len(s.snapshot()["requests"]) for s in servers.values())
            out.extra["requests_after_return"] = later - _requests_of(snaps.values())
            out.extra["after_window"] = window
        return scenario.describe(client, out, env, snaps), out
    finally:
        for s in servers.values():
            s.retire()
        cleanup = env.get("cleanup")
        if cleanup:
            try:
                cleanup()
            except OSError:
                pass


def run_child(scenario, client, endpoint, key):
    cmd = [sys.executable, THIS_FILE, "--child", scenario.ident, client, endpoint, key]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=REPO_ROOT)
    try:
        stdout, stderr = proc.communicate(timeout=scenario.bound + 20)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
    line = stdout.decode("utf-8", "replace").strip().splitlines()
    if not line:
        out = Outcome()
        out.done = True
        out.exc_type = "ChildFailed"
        out.exc_text = stderr.decode("utf-8", "replace")[-300:]
        out.elapsed = 0.0
        return out
    return Outcome.from_json(json.loads(line[-1]))


def _proc_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def child_main(ident, client, endpoint, key):
    """Run one client in this fresh process and print its outcome and peak
    RSS growth as one JSON line."""
    scenario = SCENARIO_BY_ID[ident]
    # Import everything each client needs before the baseline.
    import http.client  # noqa: F401
    import urllib.request  # noqa: F401
    if azure_available():
        import requests  # noqa: F401
        import azure.core.pipeline.transport  # noqa: F401
        import azure.core.polling.base_polling  # noqa: F401
        import azure.core.rest  # noqa: F401
        azure_pipeline_client("http://127.0.0.1:1", "k")
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current RSS
    except OSError:
        pass
    base = _proc_kb("VmRSS")
    peak = [base]
    stop = threading.Event()

    def sampler():  # VmHWM covers it; the samples are a fallback
        while not stop.is_set():
            value = _proc_kb("VmRSS")
            if value and value > peak[0]:
                peak[0] = value
            stop.wait(0.01)

    threading.Thread(target=sampler, name="hostile-sampler", daemon=True).start()
    out = run_bounded(_client_call(client, scenario, endpoint, key), scenario.bound)
    stop.set()
    hwm = _proc_kb("VmHWM")
    top = max(hwm or 0, peak[0] or 0)
    out.extra["rss_growth_mb"] = (top - base) / 1024.0 if base else None
    data = out.as_json()
    data["value"] = data["value"] if isinstance(data["value"], (dict, type(None))) else repr(
        data["value"])
    sys.stdout.write(json.dumps(data, default=repr) + "\n")
    sys.stdout.flush()
    os._exit(0)  # do not wait for a client thread that still runs


###############################################################################
# The table and the document
###############################################################################

INTRO = """\
# opstatus against hostile servers

What opstatus, azure-core's `LROPoller` and a plain `urllib` loop do when the
server (or the `Operation-Location` it hands out) is hostile or broken. Every
cell comes from running the client against servers on 127.0.0.1 in
[`benchmarks/compare_hostile.py`](../benchmarks/compare_hostile.py); the
table below is that script's output, unedited.

- **opstatus**: `take_snapshot(...)`, then `poll(location, endpoint=, key=,
  timeout=3, request_timeout=1, policy=RetryPolicy(floor=0.05, cap=0.2),
  plugins=False)` (short timeouts so that the run is quick; the defaults are
  `timeout=%(default_timeout)g`, `request_timeout=%(default_request_timeout)g`).
  In scenarios 10 and 16 the 3 s is the caller's budget. In scenarios 14a
  and 14b it starts two operations and watches both with
  `Watcher([a, b], ..., max_workers=1)` (the same settings).
- **azure-core**: a `POST` through a `PipelineClient` whose pipeline has the
  policies a generated SDK client uses, each with its default settings (the
  key in a `HeadersPolicy`; `RedirectPolicy`, `RetryPolicy`, the logging
  policies; the default `requests` transport), then
  `LROPoller(client, initial, callback, LROBasePolling(timeout=0.05)).result()`
  (`.result(timeout=3)` in scenarios 10 and 16; in 14a and 14b two
  operations on one client, polled one after the other).
- **urllib**: the typical sample, `POST` then
  `while True: r = urlopen(Request(url, headers={key})); doc = json.load(r);
  if doc["status"] in ("succeeded", "failed"): break; time.sleep(0.05)`
  (in 14a and 14b: two operations, one after the other).

Each client starts the operation with a `POST {endpoint}/snapshots` answered
`202` with an `Operation-Location`, then polls it. "requests" counts every
HTTP request the scenario's servers received from that client, the `POST`
included. The servers answer one request per connection and then close it,
except in scenarios 14a and 14b, where they keep connections alive. Each
attempt runs in a daemon thread joined after %(bound)g s (%(bound16).1f s in
scenario 16, whose redirect chain alone takes %(chain16).1f s): one still running
then is reported as a hang (azure-core's default read timeout
is 300 s, urllib's sample sets none). Scenarios 6a and 6b run each client in
a child process of its own and report its peak RSS growth (VmHWM) over the
RSS after imports. Host names under `.invalid` are answered by a wrapper of
`socket.getaddrinfo` that counts the lookup and fails it, so scenario 4
sends nothing anywhere.
"""


def render_table(rows):
    lines = ["| # | scenario | opstatus | azure-core `LROPoller` | urllib loop |",
             "|---|---|---|---|---|"]
    for ident, title, cells in rows:
        lines.append("| %s | %s | %s |" % (ident, title, " | ".join(
            c.replace("|", "\\|") for c in cells)))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated scenario ids (the doc is not written)")
    parser.add_argument("--no-write", action="store_true", help="do not write the doc")
    parser.add_argument("--output", default=DOC_PATH, help="where to write the doc")
    parser.add_argument("--child", nargs=4, metavar=("SCENARIO", "CLIENT", "ENDPOINT", "KEY"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child_main(*args.child)

    chosen = SCENARIOS
    if args.only:
        ids = [i.strip() for i in args.only.split(",") if i.strip()]
        chosen = [SCENARIO_BY_ID[i] for i in ids]
    have_azure = azure_available()
    checkout, digest = _checkout(), _digest()
    started = time.monotonic()
    rows = []
    for scenario in chosen:
        cells = []
        for client in CLIENTS:
            if client == "azure-core" and not have_azure:
                cells.append("(azure-core not installed)")
                continue
            t0 = time.monotonic()
            cell, _out = attempt(scenario, client)
            cells.append(cell)
            sys.stderr.write("[%5.1f s] %-3s %-10s %4.1f s  %s\n" % (
                time.monotonic() - started, scenario.ident, client, time.monotonic() - t0,
                cell))
            sys.stderr.flush()
        rows.append((scenario.ident, scenario.title, cells))
    runtime = time.monotonic() - started
    table = render_table(rows)
    print(table)
    print("\n(%d scenarios x %d clients in %.0f s)" % (len(chosen), len(CLIENTS), runtime))

    changed = _digest() != digest
    if changed:
        sys.stderr.write("warning: opstatus.py changed during the run\n")
    if args.no_write or args.only:
        return 0
    command = "python3 " + " ".join(
        [os.path.relpath(THIS_FILE, REPO_ROOT)] + list(sys.argv[1:] if argv is None else argv))
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    meta = [
        "Command (from the repository root): `%s`" % command,
        "",
        "- date: %s; whole run: %.0f s" % (now, runtime),
        "- Python %s (%s) on %s" % (platform.python_version(),
                                    platform.python_implementation(), platform.platform()),
        "- opstatus %s (this checkout%s), azure-core %s, requests %s" % (
            opstatus.__version__, checkout + (" (opstatus.py changed during the run)"
                                              if changed else ""),
            azure_version() or "not installed",
            _version("requests")),
    ]
    text = INTRO % {"bound": BOUND, "bound16": SCENARIO_BY_ID["16"].bound,
                    "chain16": (HOPS + 1) * HOP_DELAY,
                    "default_timeout": opstatus.DEFAULT_TIMEOUT,
                    "default_request_timeout": opstatus.DEFAULT_REQUEST_TIMEOUT}
    text += "\n" + "\n".join(meta) + "\n\n" + table + "\n"
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w") as f:
        f.write(text)
    sys.stderr.write("wrote %s\n" % os.path.relpath(args.output, REPO_ROOT))
    return 0


def _digest():
    import hashlib
    with open(os.path.join(REPO_ROOT, "opstatus.py"), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _checkout():
    """', commit abc1234' (plus a note when opstatus.py differs from it)."""
    try:
        head = subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT,
                                       stderr=subprocess.DEVNULL).decode().strip()
        dirty = subprocess.call(["git", "diff", "--quiet", "HEAD", "--", "opstatus.py"],
                                cwd=REPO_ROOT, stderr=subprocess.DEVNULL) != 0
    except (OSError, subprocess.CalledProcessError):
        return ""
    return ", commit %s%s" % (head, " with uncommitted changes to opstatus.py" if dirty else "")


def _version(dist):
    try:
        from importlib import metadata
        return metadata.version(dist)
    except Exception:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
