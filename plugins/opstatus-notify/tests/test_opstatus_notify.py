"""opstatus-notify against real loopback servers: the opstatus simulator for
the events, a small webhook receiver (plain and TLS) for the chat messages.
Time is injected into pollers; nothing is mocked. The clock, the simulator
and a fresh plugin manager (``pm``) are the core's fixtures
(tests/opstatus_testing.py)."""

import io
import json
import logging
import socket
import threading
import time

import pytest

import opstatus
import opstatus_notify
from opstatus_notify import EventLog, WebhookNotifier
from opstatus_testing import LoopbackServer, take

SECRET_PATH = "/services/T000/B000/XXXXsecretXXXX"


def poll(sim, clock, pm, location=None, **options):
    kwargs = dict(endpoint=sim.endpoint, key=sim.key, clock=clock, sleep=clock.sleep,
                  random=lambda: 0.0, plugins=pm)
    kwargs.update(options)
    return opstatus.Poller(location or take(sim), **kwargs).wait()


class Receiver(LoopbackServer):
    """A loopback webhook receiver: :attr:`posts` holds (path, headers, JSON
    body) of each POST; it answers *status* (a 3xx goes with a Location),
    after *delay* seconds or the end of the test."""

    def __init__(self, status=200, ssl_context=None, delay=None):
        super().__init__(self._answer, ssl_context=ssl_context)
        self.status = status
        self.delay = delay

    def _answer(self, handler):
        if self.delay:
            self.release.wait(self.delay)
        handler.send_response(self.status)
        if 300 <= self.status < 400:
            handler.send_header("Location", "http://127.0.0.1:9/elsewhere")
        handler.send_header("Content-Length", "2")
        handler.end_headers()
        handler.wfile.write(b"ok")

    @property
    def posts(self):
        return [(e.path, e.headers, json.loads(e.body.decode("utf-8"))) for e in self.seen]

    def url(self, scheme="http", host="127.0.0.1"):
        return "%s://%s:%d%s" % (scheme, host, self.port, SECRET_PATH)


def lines(text):
    return [json.loads(line) for line in text.splitlines()]


###############################################################################
# EventLog
###############################################################################


def test_event_log_tells_each_change_retry_and_end(sim, clock, pm):
    stream = io.StringIO()
    pm.register(EventLog(stream, clock=lambda: 1767225600.25), name="events")
    location = take(sim)
    sim.server_errors = 1
    poll(sim, clock, pm, location)
    events = lines(stream.getvalue())
    assert [e["event"] for e in events] == [
        "retry_scheduled", "status_changed", "status_changed", "operation_finished"]
    retry, running, done, finished = events
    assert retry["errorType"] == "HTTPError" and retry["httpStatus"] == 503
    assert retry["delay"] == clock.sleeps[0] and retry["errors"] == 1
    assert (running["previous"], running["status"]) == (None, "running")
    assert (done["previous"], done["status"]) == ("running", "succeeded")
    assert finished["outcome"] == "succeeded" and finished["error"] is None
    assert finished["resourceLocation"].startswith("/snapshots/")
    assert finished["duration"] > 0
    assert {e["time"] for e in events} == {"2026-01-01T00:00:00.250Z"}
    assert {e["operation"] for e in events} == {sim.endpoint + "/face/v1.0" + location}


def test_event_log_failed_and_timeout(sim, clock, pm):
    stream = io.StringIO()
    pm.register(EventLog(stream), name="events")
    sim.fail = "Source was modified."
    with pytest.raises(opstatus.OperationFailed):
        poll(sim, clock, pm)
    finished = lines(stream.getvalue())[-1]
    assert (finished["outcome"], finished["status"], finished["message"]) == (
        "failed", "failed", "Source was modified.")
    assert finished["errorType"] == "OperationFailed"

    sim.fail, sim.take_seconds = None, 1000.0
    with pytest.raises(opstatus.PollTimeout):
        poll(sim, clock, pm, timeout=5.0)
    finished = lines(stream.getvalue())[-1]
    assert (finished["outcome"], finished["status"]) == ("timeout", "running")
    assert "did not end within" in finished["error"]


def test_event_log_holds_no_secret(sim, clock, pm, tmp_path):
    path = tmp_path / "events.jsonl"
    pm.register(EventLog(str(path)), name="events")
    url = sim.endpoint + "/face/v1.0" + take(sim) + "?sig=SAS-SIGNATURE-SECRET"
    sim.server_errors = 1
    poll(sim, clock, pm, url)
    with pytest.raises(opstatus.HTTPError):  # 401: with the wrong key
        poll(sim, clock, pm, url, key="wrong-key-0123456789")
    text = path.read_text(encoding="utf-8")
    assert "SAS-SIGNATURE-SECRET" not in text and "sig=" not in text
    assert sim.key not in text and "wrong-key-0123456789" not in text
    assert len(lines(text)) >= 5 and "?\u2026" in text


def test_event_log_appends_to_a_file(sim, clock, pm, tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"earlier": true}\n')
    pm.register(EventLog(path), name="events")  # a PathLike works too
    poll(sim, clock, pm)
    events = lines(path.read_text(encoding="utf-8"))
    assert events[0] == {"earlier": True}
    assert events[-1]["outcome"] == "succeeded"


class SlowStream:
    """A text stream that writes a character at a time and lets other
    threads run in between, as a pipe or a terminal may."""

    def __init__(self):
        self.parts = []

    def write(self, text):
        for ch in text:
            self.parts.append(ch)
            if ch in ",:":
                time.sleep(0)

    def getvalue(self):
        return "".join(self.parts)


@pytest.mark.parametrize("target", ["stream", "path"])
def test_event_log_lines_never_interleave(tmp_path, target):
    stream = SlowStream()
    log = EventLog(stream if target == "stream" else tmp_path / "events.jsonl")
    status = opstatus.OperationStatus.from_dict({
        "status": "running", "createdTime": "2026-01-01T00:00:00Z", "message": "x" * 400})

    def worker(n):
        for i in range(30):
            log.opstatus_status_changed("https://h.example/operations/%d-%d" % (n, i),
                                        None, status)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    text = stream.getvalue() if target == "stream" else \
        (tmp_path / "events.jsonl").read_text(encoding="utf-8")
    events = lines(text)
    assert len(events) == 240
    assert len({e["operation"] for e in events}) == 240


###############################################################################
# WebhookNotifier
###############################################################################


def test_webhook_posts_the_final_status(sim, clock, pm):
    with Receiver() as receiver:
        pm.register(WebhookNotifier(receiver.url()), name="chat")
        location = take(sim)
        poll(sim, clock, pm, location)
    [(path, headers, payload)] = receiver.posts
    assert path == SECRET_PATH
    assert headers["content-type"].startswith("application/json")
    assert list(payload) == ["text"]  # Slack and Teams both take {"text": ...}
    assert "succeeded" in payload["text"] and location in payload["text"]
    assert "/snapshots/" in payload["text"]


def test_webhook_tells_only_the_outcomes_asked(sim, clock, pm):
    with Receiver() as receiver:
        pm.register(WebhookNotifier(receiver.url(), outcomes={"failed", "timeout"}),
                    name="chat")
        poll(sim, clock, pm)
        assert receiver.posts == []
        sim.fail = "Source was modified."
        with pytest.raises(opstatus.OperationFailed):
            poll(sim, clock, pm)
    [(_, _, payload)] = receiver.posts
    assert "failed" in payload["text"] and "Source was modified." in payload["text"]


def test_webhook_custom_text_and_payload():
    with Receiver() as receiver:
        hook = WebhookNotifier(receiver.url(), text=lambda *a: "custom %s" % a[1],
                               payload=lambda text: {"summary": text, "text": text})
        hook.opstatus_operation_finished("https://h.example/operations/1", "cancelled",
                                         None, None)
    assert receiver.posts[0][2] == {"summary": "custom cancelled", "text": "custom cancelled"}


@pytest.mark.parametrize("status", [500, 404, 302])
def test_webhook_failure_is_logged_not_raised(sim, clock, pm, caplog, status):
    with Receiver(status=status) as receiver:
        with Receiver() as elsewhere:
            pm.register(WebhookNotifier(receiver.url()), name="chat")
            with caplog.at_level(logging.WARNING):
                final = poll(sim, clock, pm)
            assert elsewhere.posts == []
    assert final.status is opstatus.Status.SUCCEEDED
    assert len(receiver.posts) == 1  # once, not retried, redirect not followed
    assert "HTTP %d" % status in caplog.text
    assert "XXXXsecretXXXX" not in caplog.text and "127.0.0.1" in caplog.text


def test_webhook_unreachable_is_logged_not_raised(sim, clock, pm, caplog):
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    url = "http://127.0.0.1:%d%s" % (probe.getsockname()[1], SECRET_PATH)
    probe.close()
    pm.register(WebhookNotifier(url), name="chat")
    with caplog.at_level(logging.WARNING):
        assert poll(sim, clock, pm).status is opstatus.Status.SUCCEEDED
    assert "ConnectionRefusedError" in caplog.text
    assert SECRET_PATH not in caplog.text and "XXXXsecretXXXX" not in caplog.text


def test_webhook_timeout_is_bounded(caplog):
    with Receiver(delay=2.0) as receiver:
        hook = WebhookNotifier(receiver.url(), timeout=0.15)
        started = time.monotonic()
        with caplog.at_level(logging.WARNING):
            assert hook.post({"text": "x"}) is False
        took = time.monotonic() - started
    assert took < 1.0
    assert "timed out" in caplog.text or "timeout" in caplog.text.lower()


def test_webhook_over_tls_with_a_private_ca(tmp_path, caplog):
    trustme = pytest.importorskip("trustme")
    import ssl

    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    cafile = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    with Receiver(ssl_context=server_context) as receiver:
        url = receiver.url(scheme="https")
        assert WebhookNotifier(url, cafile=str(cafile)).post({"text": "tls"}) is True
        with caplog.at_level(logging.WARNING):
            assert WebhookNotifier(url).post({"text": "untrusted"}) is False
    assert [p[2]["text"] for p in receiver.posts] == ["tls"]
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text or "SSL" in caplog.text


@pytest.mark.parametrize("url", [
    "http://hooks.example.com/services/x",  # plain http off loopback
    "ftp://127.0.0.1/x",
    "https://user:pass@hooks.example.com/x",
    "https://hooks.example.com/a b",
    "https://hooks.example.com/x\r\nHost: evil",
    "/relative/path",
])
def test_webhook_url_rules(url):
    with pytest.raises(ValueError):
        WebhookNotifier(url)


def test_webhook_allows_https_and_loopback_http_and_hides_its_path():
    hook = WebhookNotifier("https://hooks.slack.com" + SECRET_PATH)
    assert "XXXXsecretXXXX" not in repr(hook) and hook.label == "https://hooks.slack.com"
    WebhookNotifier("http://localhost:8080/hook")
    WebhookNotifier("http://[::1]:8080/hook")
    with pytest.raises(ValueError, match="outcomes"):
        WebhookNotifier("https://hooks.example.com/x", outcomes={"sucess"})
    import ssl

    lax = ssl.create_default_context()
    lax.check_hostname = False
    lax.verify_mode = ssl.CERT_NONE
    with pytest.raises(ValueError, match="verify"):
        WebhookNotifier("https://hooks.example.com/x", ssl_context=lax)


###############################################################################
# The installed plugin
###############################################################################


@pytest.fixture
def fresh_module(monkeypatch):
    monkeypatch.setattr(opstatus_notify, "_code_notifiers", opstatus_notify._UNSET)
    monkeypatch.setattr(opstatus_notify, "_env_notifiers", ())
    for name in ("OPSTATUS_NOTIFY_LOG", "OPSTATUS_NOTIFY_WEBHOOK", "OPSTATUS_NOTIFY_OUTCOMES"):
        monkeypatch.delenv(name, raising=False)


def test_installed_plugin_is_quiet_until_configured(fresh_module, sim, clock, pm):
    pm.register(opstatus_notify, name="opstatus-notify")
    pm.check_pending()
    poll(sim, clock, pm)
    assert opstatus_notify._notifiers() == ()


def test_installed_plugin_reads_the_environment(fresh_module, sim, clock, pm, tmp_path,
                                                monkeypatch):
    path = tmp_path / "events.jsonl"
    with Receiver() as receiver:
        monkeypatch.setenv("OPSTATUS_NOTIFY_LOG", str(path))
        monkeypatch.setenv("OPSTATUS_NOTIFY_WEBHOOK", receiver.url())
        monkeypatch.setenv("OPSTATUS_NOTIFY_OUTCOMES", "failed, succeeded")
        pm.register(opstatus_notify, name="opstatus-notify")
        poll(sim, clock, pm)
    events = lines(path.read_text(encoding="utf-8"))
    assert [e["event"] for e in events][-1] == "operation_finished"
    assert "status_changed" in [e["event"] for e in events]
    assert len(receiver.posts) == 1


def test_configure_from_code(fresh_module, sim, clock, pm, monkeypatch, tmp_path):
    stream = io.StringIO()
    notifiers = opstatus_notify.configure(log=stream)
    # The code's notifiers win over the environment, read when it registers.
    monkeypatch.setenv("OPSTATUS_NOTIFY_LOG", str(tmp_path / "events.jsonl"))
    assert [type(n).__name__ for n in notifiers] == ["EventLog"]
    pm.register(opstatus_notify, name="opstatus-notify")
    poll(sim, clock, pm)
    assert lines(stream.getvalue())[-1]["outcome"] == "succeeded"
    opstatus_notify.configure()
    before = stream.getvalue()
    poll(sim, clock, pm)
    assert stream.getvalue() == before
    assert not (tmp_path / "events.jsonl").exists()


def warnings_of(caplog):
    return [(r.name, r.getMessage()) for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_broken_log_cannot_break_the_poll_and_is_told_once(sim, clock, pm, tmp_path,
                                                             caplog):
    folder = tmp_path / "missing-dir"
    log = EventLog(folder / "events.jsonl")
    pm.register(log, name="events")
    with caplog.at_level(logging.INFO, logger="opstatus"):
        assert poll(sim, clock, pm).status is opstatus.Status.SUCCEEDED
        assert poll(sim, clock, pm).status is opstatus.Status.SUCCEEDED  # 8 events or more
    told = warnings_of(caplog)
    assert len(told) == 1, told  # once, not once per event
    name, message = told[0]
    assert name == "opstatus.notify"  # the logger the README names, not the core's
    assert str(folder) in message and "FileNotFoundError" in message
    # Once it can be written again, it says so, and a new failure is told again.
    folder.mkdir()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="opstatus"):
        poll(sim, clock, pm)
        folder.joinpath("events.jsonl").unlink()
        folder.rmdir()
        poll(sim, clock, pm)
    assert [m for n, m in warnings_of(caplog)] and len(warnings_of(caplog)) == 1
    assert any("is written again" in r.getMessage() for r in caplog.records
               if r.name == "opstatus.notify")


def test_a_closed_stream_is_told_once(sim, clock, pm, caplog):
    stream = io.StringIO()
    stream.close()
    pm.register(EventLog(stream), name="events")
    with caplog.at_level(logging.WARNING, logger="opstatus"):
        assert poll(sim, clock, pm).status is opstatus.Status.SUCCEEDED
    assert [n for n, _m in warnings_of(caplog)] == ["opstatus.notify"]


def test_mistyped_outcomes_are_told_once_and_ignored(fresh_module, sim, clock, pm,
                                                     monkeypatch, caplog):
    with Receiver() as receiver:
        monkeypatch.setenv("OPSTATUS_NOTIFY_WEBHOOK", receiver.url())
        monkeypatch.setenv("OPSTATUS_NOTIFY_OUTCOMES", "failed, sucess")
        with caplog.at_level(logging.WARNING, logger="opstatus"):
            pm.register(opstatus_notify, name="opstatus-notify")
            poll(sim, clock, pm)
            poll(sim, clock, pm)
            sim.fail = "boom"
            with pytest.raises(opstatus.OperationFailed):
                poll(sim, clock, pm)
    told = warnings_of(caplog)
    assert len(told) == 1, told
    name, message = told[0]
    assert name == "opstatus.notify"
    assert "'sucess'" in message and "OPSTATUS_NOTIFY_OUTCOMES" in message
    assert [body["text"][:1] for _path, _headers, body in receiver.posts] == ["\u274c"]


def test_outcomes_all_unknown_tell_every_outcome(fresh_module, sim, clock, pm, monkeypatch,
                                                 caplog):
    with Receiver() as receiver:
        monkeypatch.setenv("OPSTATUS_NOTIFY_WEBHOOK", receiver.url())
        monkeypatch.setenv("OPSTATUS_NOTIFY_OUTCOMES", "faild")
        with caplog.at_level(logging.WARNING, logger="opstatus"):
            pm.register(opstatus_notify, name="opstatus-notify")
            poll(sim, clock, pm)
    assert len(receiver.posts) == 1
    assert "every outcome" in warnings_of(caplog)[0][1]


def test_a_refused_webhook_url_is_told_once_and_the_log_still_works(
        fresh_module, sim, clock, pm, monkeypatch, caplog, tmp_path):
    path = tmp_path / "events.jsonl"
    monkeypatch.setenv("OPSTATUS_NOTIFY_LOG", str(path))
    monkeypatch.setenv("OPSTATUS_NOTIFY_WEBHOOK", "http://chat.example.com" + SECRET_PATH)
    with caplog.at_level(logging.WARNING, logger="opstatus"):
        pm.register(opstatus_notify, name="opstatus-notify")
        poll(sim, clock, pm)
        poll(sim, clock, pm)
    told = warnings_of(caplog)
    assert len(told) == 1 and told[0][0] == "opstatus.notify", told
    assert "OPSTATUS_NOTIFY_WEBHOOK" in told[0][1] and "https" in told[0][1]
    assert "XXXXsecretXXXX" not in caplog.text
    assert lines(path.read_text(encoding="utf-8"))[-1]["outcome"] == "succeeded"


def test_a_mistake_is_told_when_the_plugin_joins_a_manager(fresh_module, monkeypatch, caplog):
    # Told at once, before any poll: not at the first event, which may come
    # hours later in a long-running program (or never, for `opstatus plugins`).
    monkeypatch.setenv("OPSTATUS_NOTIFY_WEBHOOK", "https://chat.example.com" + SECRET_PATH)
    monkeypatch.setenv("OPSTATUS_NOTIFY_OUTCOMES", "sucess")
    with caplog.at_level(logging.WARNING, logger="opstatus"):
        opstatus.make_plugin_manager().register(opstatus_notify, name="opstatus-notify")
    [(name, message)] = warnings_of(caplog)
    assert name == "opstatus.notify" and "'sucess'" in message
    [webhook] = opstatus_notify._notifiers()
    assert webhook.label == "https://chat.example.com" and webhook.outcomes is None

