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

    def __init__(self, respond):
        self.respond = respond
        self.requests = []  # (connection number, path)
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
                self.requests.append((number, path))
                out = self.respond(path, number)
                if out is None:
                    return
                conn.sendall(out)
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

    def start(respond):
        server = KeepAliveServer(respond)
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


def test_truncated_body_error_names_the_byte_counts():
    full = status_body()
    raw_full = answer(full)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)

    def serve():
        conn, _ = sock.accept()
        conn.recv(65536)
        conn.sendall(raw_full[: len(raw_full) - len(full) + 30])
        conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        with opstatus.HTTPTransport() as transport:
            with pytest.raises(opstatus.NetworkError) as info:
                transport.send(opstatus.Request(
                    "GET", "http://127.0.0.1:%d/x" % sock.getsockname()[1], timeout=5))
    finally:
        t.join(5)
        sock.close()
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
