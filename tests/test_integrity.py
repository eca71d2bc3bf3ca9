"""Every answer belongs to its own request: interim answers, truncated
bodies, redirect deadlines, forged resume tokens, and the model as an
ordinary dataclass (subclass, pickle, type hints).

The servers here are raw sockets on loopback that speak just enough HTTP to
misbehave in one precise way.
"""

import copy
import json
import os
import pickle
import shutil
import socket
import subprocess
import sys
import threading
import time
import typing

import pytest

import opstatus
from conftest import FakeClock, fake_time


def status_body(status="succeeded", location=None):
    doc = {"status": status, "createdTime": "2021-06-08T22:28:33.5402214Z",
           "lastActionTime": "2021-06-08T22:28:34.5402214Z"}
    if location:
        doc["resourceLocation"] = location
    return json.dumps(doc).encode()


def answer(body, status="200 OK", headers=()):
    head = "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n" % (
        status, len(body))
    head += "".join("%s: %s\r\n" % h for h in headers)
    return head.encode("latin-1") + b"\r\n" + body


class KeepAliveServer:
    """Accepts connections on 127.0.0.1 (port 0) and answers each request on
    them with ``respond(path, connection_number) -> bytes`` (raw bytes sent as
    they are; ``None`` closes the connection). Records the requests seen."""

    def __init__(self, respond, piece=None):
        self.respond, self.piece = respond, piece  # piece: send answers in bits of this size
        self.requests = []  # (connection number, path)
        self.heads = []  # each request's head, as sent
        self.connections = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.origin = "http://127.0.0.1:%d" % self.port
        self._stop = threading.Event()
        self._threads = []
        self._accepter = threading.Thread(target=self._accept, daemon=True)
        self._accepter.start()

    def _accept(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            t = threading.Thread(target=self._serve, args=(conn, self.connections), daemon=True)
            self._threads.append(t)
            t.start()

    def _serve(self, conn, number):
        conn.settimeout(0.2)
        data = b""
        try:
            while not self._stop.is_set():
                while b"\r\n\r\n" not in data:
                    try:
                        chunk = conn.recv(65536)
                    except socket.timeout:
                        if self._stop.is_set():
                            return
                        continue
                    if not chunk:
                        return
                    data += chunk
                head, _, data = data.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(data) < length:
                    data += conn.recv(65536)
                data = data[length:]
                path = head.split(b" ")[1].decode()
                self.heads.append(head)
                self.requests.append((number, path))
                out = self.respond(path, number)
                if out is None:
                    return
                close_after = isinstance(out, tuple)  # (answer, "close"): then it closes
                if close_after:
                    out = out[0]
                if self.piece is None:
                    conn.sendall(out)
                for i in range(0, len(out) if self.piece else 0, self.piece or 1):
                    conn.sendall(out[i:i + self.piece])
                    time.sleep(0.0005)
                if close_after:
                    return
        except OSError:
            pass
        finally:
            conn.close()

    def stop(self):
        self._stop.set()
        self._accepter.join(5)
        for t in self._threads:
            t.join(5)
        self.sock.close()


@pytest.fixture
def keepalive():
    servers = []

    def start(respond, piece=None):
        server = KeepAliveServer(respond, piece)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


# -- 1. interim answers ------------------------------------------------------------


@pytest.mark.parametrize("interim", [
    b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n",
    b"HTTP/1.1 102 Processing\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\n\r\n",
], ids=["103", "102", "100+103"])
def test_interim_answers_are_skipped_and_never_reach_another_operation(keepalive, interim):
    def respond(path, number):
        op = path.rsplit("/", 1)[-1]
        return interim + answer(status_body("succeeded", "/snapshots/snap-" + op))

    server = keepalive(respond)
    with opstatus.HTTPTransport() as transport:
        watcher = opstatus.Watcher(
            [server.origin + "/face/v1.0/operations/a", server.origin + "/face/v1.0/operations/b"],
            key="k", max_workers=1, transport=transport, plugins=False, timeout=10)
        outcomes = {o.location.rsplit("/", 1)[-1]: o for o in watcher}
    assert outcomes["a"].ok and outcomes["b"].ok, outcomes
    assert outcomes["a"].status.snapshot_id == "snap-a"
    assert outcomes["b"].status.snapshot_id == "snap-b"
    assert server.connections == 1  # the kept-alive connection was reused, and safely


def test_endless_interim_answers_end_in_a_network_error(keepalive):
    server = keepalive(lambda path, n: b"HTTP/1.1 102 Processing\r\n\r\n" * 40
                       + answer(status_body()))
    with opstatus.HTTPTransport() as transport:
        with pytest.raises(opstatus.NetworkError) as info:
            transport.send(opstatus.Request("GET", server.origin + "/x", timeout=5))
    assert "interim" in str(info.value)


def test_switching_protocols_is_an_error_and_the_connection_is_not_reused(keepalive):
    def respond(path, number):
        if path == "/first":
            return b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: evil\r\n\r\n" + answer(
                status_body("failed"))
        return answer(status_body())

    server = keepalive(respond)
    with opstatus.HTTPTransport() as transport:
        first = transport.send(opstatus.Request("GET", server.origin + "/first", timeout=5))
        second = transport.send(opstatus.Request("GET", server.origin + "/second", timeout=5))
    assert first.status == 101
    assert second.status == 200 and json.loads(second.body)["status"] == "succeeded"
    assert server.connections == 2


def test_a_connection_with_stray_bytes_is_not_reused(keepalive):
    # The server sends a second, unasked-for answer after the first one: the
    # next request must not read it as its own.
    def respond(path, number):
        if path == "/first":
            return answer(status_body("running")) + answer(status_body("failed"))
        return answer(status_body("succeeded"))

    server = keepalive(respond)
    with opstatus.HTTPTransport() as transport:
        transport.send(opstatus.Request("GET", server.origin + "/first", timeout=5))
        time.sleep(0.05)  # let the stray bytes arrive (a real race, not time injection)
        second = transport.send(opstatus.Request("GET", server.origin + "/second", timeout=5))
    assert json.loads(second.body)["status"] == "succeeded"
    assert server.connections == 2


# -- 5. a body cut short -------------------------------------------------------------


def test_truncated_body_then_close_is_retried_by_the_poller():
    full = status_body("succeeded", "/snapshots/s1")
    raw_full = answer(full)
    cut = raw_full[: len(raw_full) - len(full) + 30]
    seen = []
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    port = sock.getsockname()[1]

    def serve():
        for i in range(2):
            conn, _ = sock.accept()
            conn.recv(65536)
            seen.append(i)
            conn.sendall(cut if i == 0 else raw_full)
            conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    clock = FakeClock()
    try:
        status = opstatus.poll("http://127.0.0.1:%d/face/v1.0/operations/x" % port, key="k",
                               plugins=False, timeout=60, **fake_time(clock))
    finally:
        t.join(5)
        sock.close()
    assert status.succeeded and status.snapshot_id == "s1"
    assert seen == [0, 1]


def _send_once(reply):
    """What the built-in transport makes of *reply*, sent on a connection then closed."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)

    def serve():
        conn, _ = sock.accept()
        conn.recv(65536)
        conn.sendall(reply)
        conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        with opstatus.HTTPTransport() as transport:
            return transport.send(opstatus.Request(
                "GET", "http://127.0.0.1:%d/x" % sock.getsockname()[1], timeout=5))
    finally:
        t.join(5)
        sock.close()


def test_truncated_body_error_names_the_byte_counts():
    full = status_body()
    raw_full = answer(full)
    with pytest.raises(opstatus.NetworkError) as info:
        _send_once(raw_full[: len(raw_full) - len(full) + 30])
    assert "30 of %d bytes" % len(full) in str(info.value)
    assert info.value.sent and info.value.retryable


# -- 6. redirects share one deadline ------------------------------------------------


def test_a_redirect_chain_shares_one_deadline(keepalive):
    def respond(path, number):
        time.sleep(0.4)  # each hop answers late (the server's time, not the client's)
        hop = int(path.rsplit("/", 1)[-1])
        return answer(b"", "307 Temporary Redirect", [("Location", "/hop/%d" % (hop + 1))])

    server = keepalive(respond)
    client = opstatus._Client(None, "k", None, True, None, None, None, 1.0, 65536,
                              plugins=False)
    started = time.monotonic()
    with pytest.raises(opstatus.NetworkError):
        client.send("GET", server.origin + "/hop/0")
    elapsed = time.monotonic() - started
    client.close()
    # 6 hops of 0.4 s each would take 2.4 s; one deadline of 1 s ends it.
    assert len(server.requests) <= 3
    assert elapsed < 2.0


# -- 10. the model is an ordinary frozen dataclass ----------------------------------


def test_subclassing_the_model_before_any_instance_works():
    # In a fresh interpreter: no instance of either class exists yet.
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import opstatus\n"
        "class P(opstatus.RetryPolicy): pass\n"
        "class S(opstatus.OperationStatus): pass\n"
        "assert P(cap=5).cap == 5\n"
        "assert S('running', '2020-01-01T00:00:00Z').status is opstatus.Status.RUNNING\n"
        "print('ok')\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code, root], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, timeout=30)
    assert out.returncode == 0 and out.stdout.strip() == b"ok", out.stderr


def test_type_hints_of_the_model_resolve():
    hints = typing.get_type_hints(opstatus.OperationStatus)
    assert hints["status"] is opstatus.Status
    assert typing.get_type_hints(opstatus.RetryPolicy)["cap"] is float


def test_operation_status_pickles_and_deep_copies_equal_to_itself():
    st = opstatus.OperationStatus.from_json(
        '{"status": "succeeded", "createdTime": "2021-06-08T22:28:33.5402214Z",'
        ' "resourceLocation": "/snapshots/abc", "finishedTime": "x"}')
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        back = pickle.loads(pickle.dumps(st, protocol))
        assert back == st and back.extra == {"finishedTime": "x"}
        assert back.extra is not st.extra
    clone = copy.deepcopy(st)
    assert clone == st and dict(clone.extra) == dict(st.extra)
    assert pickle.loads(pickle.dumps(opstatus.RetryPolicy(cap=7))) == opstatus.RetryPolicy(cap=7)


# -- 2 and 8. resume tokens -------------------------------------------------------


def _forged_token(url, endpoint):
    """A token as anyone can write one: sealed without a key."""
    doc = {"type": "opstatus-resume", "version": 1, "url": url, "endpoint": endpoint,
           "createdTime": None, "status": None, "polls": 0, "age": 0.0}
    doc["mac"] = opstatus._token_mac(doc, None)
    return json.dumps(doc)


def test_a_token_without_a_key_cannot_send_headers_to_a_host_it_names(keepalive):
    attacker = keepalive(lambda path, n: answer(status_body()))
    token = _forged_token(attacker.origin + "/face/v1.0/operations/x", attacker.origin)
    secret = {"Authorization": "Bearer top-secret-token"}
    with pytest.raises(opstatus.ResumeTokenError, match="endpoint="):
        opstatus.Poller.from_resume_token(token, headers=secret, plugins=False)
    # Naming the real endpoint: the token's URL must be on it.
    with pytest.raises((opstatus.ResumeTokenError, opstatus.UnsafeURLError)):
        opstatus.Poller.from_resume_token(token, headers=secret, plugins=False,
                                          endpoint="https://real.example")
    token = _forged_token(attacker.origin + "/face/v1.0/operations/x", None)
    with pytest.raises(opstatus.UnsafeURLError):
        opstatus.Poller.from_resume_token(token, headers=secret, plugins=False,
                                          endpoint="https://real.example")
    assert attacker.requests == []


def test_a_token_without_a_key_resumes_on_the_endpoint_the_caller_names(keepalive):
    server = keepalive(lambda path, n: answer(status_body("succeeded", "/snapshots/s")))
    token = _forged_token(server.origin + "/face/v1.0/operations/x", server.origin)
    with opstatus.Poller.from_resume_token(token, endpoint=server.origin,
                                           headers={"Authorization": "Bearer t"},
                                           plugins=False) as poller:
        assert poller.wait(5).snapshot_id == "s"


@pytest.mark.parametrize("mac", ["\u00e9" * 64, "\udcff", "\x00", "A" * 64, "", "\U0001f600"])
def test_a_token_with_any_mac_is_refused_with_resume_token_error(mac):
    doc = json.loads(_forged_token("https://x.example/face/v1.0/operations/x",
                                   "https://x.example"))
    doc["mac"] = mac
    with pytest.raises(opstatus.ResumeTokenError):
        opstatus.Poller.from_resume_token(json.dumps(doc), key="k", plugins=False)


# -- 7. take and apply within a deadline (more in test_poller) ----------------------


def test_take_refuses_a_subscription_listed_twice_before_any_request(keepalive):
    server = keepalive(lambda path, n: answer(b"", "202 Accepted"))
    sub = "00000000-0000-0000-0000-000000000001"
    with pytest.raises(ValueError, match="listed twice"):
        opstatus.take_snapshot(server.origin, "k", object_type="PersonGroup", object_id="pg",
                               apply_scope=[sub, sub.upper()], plugins=False)
    assert server.requests == []


def test_take_has_a_deadline_of_its_own(keepalive):
    server = keepalive(lambda path, n: answer(
        b'{"error": {"code": "429", "message": "Rate limit is exceeded."}}',
        "429 Too Many Requests", [("Retry-After", "60")]))
    clock = FakeClock()
    with pytest.raises(opstatus.PollTimeout):
        opstatus.take_snapshot(server.origin, "k", object_type="PersonGroup", object_id="pg",
                               apply_scope=["00000000-0000-0000-0000-000000000001"],
                               plugins=False, timeout=100, **fake_time(clock))
    assert clock.slept <= 100 and len(server.requests) == 2


# -- 4. a key the service echoes -----------------------------------------------------


def test_a_key_echoed_in_a_failure_message_is_masked_in_the_status_repr(keepalive):
    key = "5f2b0c1d9e8a7b6c5f2b0c1d9e8a7b6c"
    body = json.dumps({"status": "failed", "createdTime": "2021-06-08T22:28:33Z",
                       "message": "key %s is not allowed \x1b]0;PWNED\x07" % key}).encode()
    server = keepalive(lambda path, n: answer(body))
    with pytest.raises(opstatus.OperationFailed) as info:
        opstatus.poll(server.origin + "/face/v1.0/operations/x", key=key, plugins=False,
                      timeout=5)
    for text in (str(info.value), repr(info.value.status), info.value.status.message,
                 repr(info.value)):
        assert key not in text and key[:12] not in text, text
    assert "is not allowed" in info.value.status.message


# -- 11. a vendored copy ---------------------------------------------------------------

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load_copy(tmp_path, name):
    import importlib.util

    folder = tmp_path / name.replace(".", "_")
    folder.mkdir()
    shutil.copy(os.path.join(ROOT, "opstatus.py"), str(folder / "opstatus.py"))
    spec = importlib.util.spec_from_file_location(name, str(folder / "opstatus.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


@pytest.mark.skipif(bool(os.environ.get("OPSTATUS_TEST_HIDE_PLUGGY")), reason="needs pluggy")
@pytest.mark.parametrize("env, loads", [({}, False), ({"OPSTATUS_PLUGIN_AUTOLOAD": "1"}, True)])
def test_a_copy_under_another_name_autoloads_no_plugins_unless_asked(tmp_path, env, loads):
    vendor = tmp_path / "mylib" / "_vendor"
    vendor.mkdir(parents=True)
    (tmp_path / "mylib" / "__init__.py").write_text("")
    (vendor / "__init__.py").write_text("")
    shutil.copy(os.path.join(ROOT, "opstatus.py"), str(vendor / "opstatus.py"))
    code = (
        "import sys, pluggy\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "calls = []\n"
        "pluggy.PluginManager.load_setuptools_entrypoints = lambda self, group: calls.append(group)\n"
        "from mylib._vendor import opstatus\n"
        "opstatus.plugin_manager()\n"
        "print(calls)\n"
    )
    environ = dict(os.environ, **env)
    environ.pop("OPSTATUS_DISABLE_PLUGIN_AUTOLOAD", None)
    if not env:
        environ.pop("OPSTATUS_PLUGIN_AUTOLOAD", None)
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=environ,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == (b"['opstatus']" if loads else b"[]")


def test_a_transport_returning_another_copy_s_response_is_accepted(tmp_path, keepalive):
    other = _load_copy(tmp_path, "installed_opstatus")
    assert other.Response is not opstatus.Response

    class OtherCopyTransport:
        def send(self, request):
            return other.Response(200, {"Content-Type": "application/json"},
                                  status_body("succeeded", "/snapshots/s"), request.url)

    status = opstatus.poll("https://svc.example/face/v1.0/operations/x", key="k",
                           transport=OtherCopyTransport(), plugins=False, timeout=5)
    assert status.snapshot_id == "s"


def test_a_transport_returning_something_else_names_what_it_returned():
    class Bad:
        def send(self, request):
            return {"status": 200}

    with pytest.raises(opstatus.PluginError, match="returned dict instead of an opstatus.Response"):
        opstatus.poll("https://svc.example/face/v1.0/operations/x", key="k",
                      transport=Bad(), plugins=False, timeout=5)


# -- issue 15: POSTs reuse provably idle connections, never sent twice ---------------


def test_posts_reuse_one_kept_alive_connection(sim):
    from conftest import ConnectionCounter

    sim.add_object("PersonGroup", "pg")
    counter = ConnectionCounter(sim)
    with opstatus.HTTPTransport() as transport:
        for _ in range(20):
            opstatus.take_snapshot(sim.endpoint, sim.key, object_type="PersonGroup",
                                   object_id="pg", apply_scope=[sim.subscription],
                                   transport=transport, plugins=False)
    assert counter.accepted == 1


@pytest.mark.parametrize("method, retried", [("POST", False), ("GET", True)])
def test_a_request_the_server_dropped_on_a_reused_connection(keepalive, method, retried):
    # The server reads the second request whole, then closes without an
    # answer: a GET goes again on a new connection; a POST is never sent twice.
    def respond(path, number):
        if path == "/second" and number == 1:
            return None
        return answer(status_body())

    server = keepalive(respond)
    with opstatus.HTTPTransport() as transport:
        transport.send(opstatus.Request("GET", server.origin + "/first", timeout=5))
        request = opstatus.Request(method, server.origin + "/second", timeout=5, body=b"{}")
        if retried:
            assert transport.send(request).status == 200
        else:
            with pytest.raises(opstatus.NetworkError) as info:
                transport.send(request)
            assert info.value.sent
    assert [p for _n, p in server.requests].count("/second") == (2 if retried else 1)


def test_many_poll_async_operations_share_a_few_connections(sim, fake_clock):
    import asyncio

    from conftest import ConnectionCounter

    sim.add_object("PersonGroup", "pg")
    counter = ConnectionCounter(sim)
    locations = [opstatus.take_snapshot(sim.endpoint, sim.key, object_type="PersonGroup",
                                        object_id="pg", apply_scope=[sim.subscription],
                                        plugins=False) for _ in range(200)]
    assert counter.wait_closed() == 0
    counter.reset()

    async def main():
        return await asyncio.gather(*(
            opstatus.poll_async(loc, endpoint=sim.endpoint, key=sim.key, plugins=False,
                                **fake_time(fake_clock)) for loc in locations))

    finals = asyncio.run(main())
    assert all(f.succeeded for f in finals)
    assert counter.accepted <= 16, counter.accepted
    assert counter.wait_closed() == 0  # the last one out closed them


def test_a_kept_alive_connection_gets_each_request_s_whole_timeout(keepalive):
    # The first request ends near its deadline; the second, on the same
    # connection, must still be allowed its own whole timeout.
    def respond(path, number):
        time.sleep(0.35 if path == "/first" else 0.3)
        return answer(status_body())

    server = keepalive(respond)
    with opstatus.HTTPTransport() as transport:
        transport.send(opstatus.Request("GET", server.origin + "/first", timeout=0.4))
        assert transport.send(opstatus.Request("GET", server.origin + "/second",
                                               timeout=5)).status == 200
    assert server.connections == 1


def test_exception_texts_escape_what_the_service_wrote():
    # The CLI escapes what it prints; a library user who prints an error
    # must not have the terminal driven either. The attributes keep the text.
    evil = "boom\x1b]0;PWNED\x07\x1b[2J\u202e"
    st = opstatus.OperationStatus("failed", "2020-01-01T00:00:00Z", message=evil)
    for exc in (opstatus.OperationFailed(st), opstatus.HTTPError(500, "X", evil)):
        text = str(exc)
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
        assert "\\x1b]0;PWNED\\x07" in text
    assert opstatus.OperationFailed(st).message == evil


# -- issue 15: the built-in transport reads HTTP/1.1 itself, strictly ---------------

def _send(transport, server, path, method="GET", body=None, headers=None):
    return transport.send(opstatus.Request(method, server.origin + path, headers=headers,
                                           body=body, timeout=5))


@pytest.mark.parametrize("reply, problem", [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello", "invalid Content-Length"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: five\r\n\r\nhello", "invalid Content-Length"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\nhello", "invalid Content-Length"),
    (b"HTTP/1.1 200 OK\r\nContent-Length\r\n\r\n", "malformed header line"),
    (b"HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 0\r\n\r\n", "malformed header line"),
    (b"HTTP/1.1 200 OK\r\n folded: x\r\nContent-Length: 0\r\n\r\n", "folded line before"),
    (b"HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n", "not an HTTP/1.x status line"),
    (b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n", "not an HTTP/1.x status line"),
    (b"HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n", "not an HTTP/1.x status line"),
    (b"HTTP/1.1 600 Odd\r\nContent-Length: 0\r\n\r\n", "not an HTTP/1.x status line"),
    (b"ICY 200 OK\r\n\r\n", "not an HTTP/1.x status line"),
    (b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * 101 + b"\r\n", "more than 100 headers"),
    (b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70000 + b"\r\n\r\n", "longer than 65536"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "invalid chunk size"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
     "not followed by CRLF"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", "invalid chunk size"),
])
def test_a_misframed_answer_is_a_network_error_that_names_it(keepalive, reply, problem):
    server = keepalive(lambda path, number: reply if path == "/bad" else answer(b"{}"))
    with opstatus.HTTPTransport() as transport:
        with pytest.raises(opstatus.NetworkError) as info:
            _send(transport, server, "/bad")
        assert problem in str(info.value) and server.origin in str(info.value)
        assert _send(transport, server, "/next").status == 200  # on a new connection
    assert server.connections == 2


@pytest.mark.parametrize("reply", [
    b"HTTP/1.1 200 OK\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"f" * 60 + b"\r\n",
])
def test_a_huge_length_is_refused_before_any_byte_is_read(keepalive, reply):
    server = keepalive(lambda path, number: reply)
    with opstatus.HTTPTransport() as transport:
        with pytest.raises(opstatus.ResponseTooLarge, match="cap of"):
            _send(transport, server, "/big")


def test_a_body_cut_short_inside_a_chunk_names_the_bytes_read():
    with pytest.raises(opstatus.NetworkError, match="cut short after 8 bytes"):
        _send_once(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n10\r\n"
                   b"hello")


def _two_on_one_transport(keepalive, first):
    server = keepalive(lambda path, number: first if path == "/first" else answer(b"{}"))
    with opstatus.HTTPTransport() as transport:
        response = _send(transport, server, "/first")
        assert _send(transport, server, "/second").status == 200
    return server, response


@pytest.mark.parametrize("first, reused", [
    (answer(b'{"a": 1}'), True),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\n{}", True),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nX-T: 1\r\n\r\n",
     True),
    (answer(b"{}", headers=[("Connection", "close")]), False),
    (answer(b"{}").replace(b"HTTP/1.1", b"HTTP/1.0"), False),
    # both framings: the chunked one is read, and the connection is not trusted again
    (b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"2\r\n{}\r\n0\r\n\r\n", False),
    (b"HTTP/1.1 204 No Content\r\n\r\n", True),
])
def test_a_connection_is_used_again_only_after_a_cleanly_framed_answer(keepalive, first,
                                                                       reused):
    server, response = _two_on_one_transport(keepalive, first)
    assert response.status in (200, 204)
    assert server.connections == (1 if reused else 2)


def test_folded_and_repeated_headers_are_joined(keepalive):
    reply = (b"HTTP/1.1 200 OK\r\nX-Fold: a\r\n  b\r\nX-Twice: 1\r\nx-twice: 2\r\n"
             b"Content-Length: 2\r\n\r\n{}")
    _server, response = _two_on_one_transport(keepalive, reply)
    assert response.headers["x-fold"] == "a b" and response.headers["x-twice"] == "1, 2"
    assert response.body == b"{}"


def test_the_request_head_carries_the_transport_s_own_framing(keepalive):
    server = keepalive(lambda path, number: answer(b"{}"))
    with opstatus.HTTPTransport() as transport:
        _send(transport, server, "/get?x=1", headers={"Accept": "application/json"})
        _send(transport, server, "/post", method="POST", body=b'{"a":1}',
              headers={"Content-Length": "1", "Transfer-Encoding": "chunked"})
        _send(transport, server, "/empty-post", method="POST")
        _send(transport, server, "/host", headers={"Host": "example.test"})
    get, post, empty, host = [h.decode("latin-1").split("\r\n") for h in server.heads]
    assert get[0] == "GET /get?x=1 HTTP/1.1"
    assert sorted(get[1:]) == ["Accept-Encoding: identity", "Accept: application/json",
                               "Host: 127.0.0.1:%d" % server.port]
    assert post[0] == "POST /post HTTP/1.1" and "Content-Length: 7" in post
    assert not any(line.lower().startswith(("transfer-encoding", "content-length: 1"))
                   for line in post)
    assert "Content-Length: 0" in empty
    assert "Host: example.test" in host and len([h for h in host if h.startswith("Host")]) == 1
    assert server.requests[1:] == [(1, "/post"), (1, "/empty-post"), (1, "/host")]


@pytest.mark.parametrize("method, headers, problem", [
    ("GE T", {}, "HTTP method"),
    ("GET\r\nX-Evil: 1", {}, "HTTP method"),
    ("GET", {"X-List": ["unhashable"]}, "must have a str value"),
    ("GET", {"X-Evil": "a\r\nInjected: 1"}, "control characters"),
    ("GET", {"Bad Name": "a"}, "not a valid token"),
])
def test_a_request_that_would_break_its_framing_is_refused_unsent(keepalive, method, headers,
                                                                    problem):
    server = keepalive(lambda path, number: answer(b"{}"))
    with opstatus.HTTPTransport() as transport:
        with pytest.raises(opstatus.UnsafeURLError, match=problem):
            _send(transport, server, "/x", method=method, headers=headers)
    assert server.requests == []


# -- issue 15: a Watcher reads the same answers on non-blocking connections ---------

MISFRAMED = test_a_misframed_answer_is_a_network_error_that_names_it.pytestmark[0].args[1]


def _watch(*locations, **options):
    options.setdefault("policy", opstatus.RetryPolicy(max_errors=0))
    options.setdefault("request_timeout", 5)
    return opstatus.Watcher(list(locations), allow_http=True, plugins=False, timeout=20,
                            **options).results()


@pytest.mark.parametrize("reply, problem", MISFRAMED)
def test_a_watcher_meets_a_misframed_answer_with_a_network_error(keepalive, reply, problem):
    server = keepalive(lambda path, number: reply if path == "/bad" else answer(status_body()))
    bad, good = _watch(server.origin + "/bad", server.origin + "/good", max_workers=1)
    assert isinstance(bad.error, opstatus.NetworkError) and problem in str(bad.error)
    assert server.origin + "/bad" in str(bad.error)
    assert good.ok and good.status.succeeded


@pytest.mark.parametrize("piece", [1, 7, 100])
def test_a_watcher_reads_answers_that_come_in_pieces(keepalive, piece):
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"".join(
        b"%x\r\n%s\r\n" % (len(part), part) for part in (status_body()[:9], status_body()[9:]))
        + b"0\r\n\r\n")
    interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
    server = keepalive(lambda path, number: chunked if path == "/chunked" else
                       interim + answer(status_body("failed")), piece=piece)
    first, second = _watch(server.origin + "/chunked", server.origin + "/interim",
                           max_workers=2)
    assert first.ok and first.status.succeeded
    assert isinstance(second.error, opstatus.OperationFailed)
    assert server.connections <= 2


def test_a_watcher_sends_again_what_a_dropped_kept_alive_connection_lost(keepalive):
    seen = []

    def respond(path, number):
        seen.append(number)
        if seen == [1, 1]:
            return None  # the server had dropped the kept-alive connection
        return answer(status_body("running" if len(seen) == 1 else "succeeded"))

    server = keepalive(respond)
    (outcome,) = _watch(server.origin + "/op", max_workers=1)
    assert outcome.ok and outcome.status.succeeded
    assert server.requests == [(1, "/op"), (1, "/op"), (2, "/op")]


def test_a_watcher_s_request_that_gets_no_answer_times_out(keepalive):
    server = keepalive(lambda path, number: b"" if path == "/silent" else
                       answer(status_body()))
    started = time.monotonic()
    silent, good = _watch(server.origin + "/silent", server.origin + "/good", max_workers=2,
                          request_timeout=0.5)
    assert time.monotonic() - started < 4
    assert isinstance(silent.error, opstatus.NetworkError)
    assert "timed out" in str(silent.error) and silent.error.sent
    assert good.ok


def test_a_watcher_s_oversized_answer_is_refused(keepalive):
    server = keepalive(lambda path, number: answer(b"x" * 5000))
    (outcome,) = _watch(server.origin + "/big", max_bytes=4096)
    assert isinstance(outcome.error, opstatus.ResponseTooLarge)


def test_a_watcher_follows_a_same_origin_redirect_and_refuses_another(keepalive):
    def respond(path, number):
        if path == "/moved":
            return answer(b"", "307 Temporary Redirect", [("Location", "/here")])
        if path == "/away":
            return answer(b"", "302 Found", [("Location", "http://127.0.0.2:1/x")])
        return answer(status_body())

    server = keepalive(respond)
    moved, away = _watch(server.origin + "/moved", server.origin + "/away", max_workers=2)
    assert moved.ok and moved.status.succeeded
    assert isinstance(away.error, opstatus.UnsafeURLError)
    assert sorted(path for _n, path in server.requests) == ["/away", "/here", "/moved"]


# -- issue 15: poll_async's requests on the event loop's own selector ---------------

def _async_polls(locations, **options):
    import asyncio

    async def main():
        return await asyncio.gather(*(
            opstatus.poll_async(loc, allow_http=True, plugins=False, timeout=20,
                                policy=opstatus.RetryPolicy(max_errors=0), **options)
            for loc in locations), return_exceptions=True)
    return asyncio.run(main())


def test_poll_async_queues_what_exceeds_8_requests_and_needs_no_thread(keepalive):
    under_way, peak, lock = [0], [0], threading.Lock()
    threads = set()

    def respond(path, number):
        with lock:
            under_way[0] += 1
            peak[0] = max(peak[0], under_way[0])
            threads.update(t.name for t in threading.enumerate())
        time.sleep(0.01)
        with lock:
            under_way[0] -= 1
        return answer(status_body())

    server = keepalive(respond)
    finals = _async_polls([server.origin + "/op/%d" % i for i in range(40)])
    assert all(isinstance(f, opstatus.OperationStatus) and f.succeeded for f in finals), finals
    assert 2 <= peak[0] <= opstatus._ASYNC_REQUESTS
    assert server.connections <= opstatus._ASYNC_REQUESTS
    # a connection is opened in the executor; no request runs there
    assert len([t for t in threads if t.startswith("asyncio")]) <= opstatus._ASYNC_REQUESTS


@pytest.mark.parametrize("reply, problem", MISFRAMED[:6])
def test_poll_async_meets_a_misframed_answer_with_a_network_error(keepalive, reply, problem):
    server = keepalive(lambda path, number: reply if path == "/bad" else answer(status_body()))
    bad, good = _async_polls([server.origin + "/bad", server.origin + "/good"])
    assert isinstance(bad, opstatus.NetworkError) and problem in str(bad)
    assert isinstance(good, opstatus.OperationStatus) and good.succeeded


def test_poll_async_times_out_a_silent_server_and_sends_again_on_a_dropped_connection(
        keepalive):
    seen = []

    def respond(path, number):
        seen.append((number, path))
        if path == "/silent":
            return b""
        if [n for n, p in seen if p == "/drop"] == [1, 1]:
            return None  # the server had dropped the kept-alive connection
        return answer(status_body("running" if len(seen) == 1 else "succeeded"))

    server = keepalive(respond)
    drop, = _async_polls([server.origin + "/drop"])
    assert isinstance(drop, opstatus.OperationStatus) and drop.succeeded
    assert [n for n, p in seen] == [1, 1, 2]
    started = time.monotonic()
    silent, = _async_polls([server.origin + "/silent"], request_timeout=0.5)
    assert isinstance(silent, opstatus.NetworkError) and "timed out" in str(silent)
    assert time.monotonic() - started < 4


def test_a_cancelled_poll_async_leaves_the_others_going(keepalive):
    import asyncio

    server = keepalive(lambda path, number: b"" if path == "/slow" else answer(status_body()))

    async def main():
        slow = asyncio.ensure_future(opstatus.poll_async(
            server.origin + "/slow", allow_http=True, plugins=False, timeout=20))
        others = [asyncio.ensure_future(opstatus.poll_async(
            server.origin + "/op/%d" % i, allow_http=True, plugins=False, timeout=20))
            for i in range(20)]
        await asyncio.sleep(0.2)
        slow.cancel()
        finals = await asyncio.gather(*others)
        with pytest.raises(asyncio.CancelledError):
            await slow
        return finals

    assert all(f.succeeded for f in asyncio.run(main()))


@pytest.mark.skipif(sys.implementation.name != "cpython",
                    reason="only CPython frees an object when its last reference goes")
def test_a_closed_connection_is_freed_at_once_with_its_buffer(keepalive):
    # A reference cycle kept each connection's 64 KiB buffer until the garbage collector
    # ran: 200 take_snapshot calls held megabytes.
    import gc

    def readers():
        return sum(1 for o in gc.get_objects() if type(o) is opstatus._DeadlineReader)

    server = keepalive(lambda path, number: answer(status_body()))
    gc.collect()
    before = readers()
    gc.disable()
    try:
        for _ in range(10):
            with opstatus.HTTPTransport() as transport:
                assert _send(transport, server, "/x").status == 200
        left = readers() - before
    finally:
        gc.enable()
    assert left == 0


@pytest.mark.parametrize("how", ["watcher", "poll_async"])
def test_an_idle_connection_the_server_closes_is_dropped_before_the_next_poll(keepalive,
                                                                              how):
    import asyncio

    seen = []

    def respond(path, number):
        seen.append(number)
        if len(seen) == 1:  # answers, then closes the kept-alive connection while idle
            return answer(status_body("running")), "close"
        return answer(status_body("succeeded"))

    server = keepalive(respond)
    options = dict(allow_http=True, plugins=False, timeout=20,
                   policy=opstatus.RetryPolicy(floor=0.2, cap=0.2, jitter=0.0, max_errors=0))
    if how == "watcher":
        (outcome,) = opstatus.Watcher([server.origin + "/op"], **options).results()
        final = outcome.status if outcome.ok else outcome.error
    else:
        final = asyncio.run(opstatus.poll_async(server.origin + "/op", **options))
    assert isinstance(final, opstatus.OperationStatus) and final.succeeded, final
    assert seen == [1, 2]  # no request lost on the closed connection, none sent twice
