"""The hooks added by issue 11: ``retry_after`` for ``opstatus_next_delay``,
``opstatus_response_received`` (a credential refreshed on a 401), the
historic ``opstatus_configure``, and failures attributed to their plugin
when pluggy runs the hook (wrappers included)."""

import logging

import pytest

import opstatus
from conftest import FakeClock, fake_time

pluggy = pytest.importorskip("pluggy")

RUNNING = b'{"status": "running", "createdTime": "2026-01-01T00:00:00Z"}'
DONE = (b'{"status": "succeeded", "createdTime": "2026-01-01T00:00:00Z",'
        b' "resourceLocation": "/snapshots/abc"}')


class Scripted:
    """A transport that answers from a list and records the requests."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.requests = []

    def send(self, request):
        self.requests.append((request.method, dict(request.headers)))
        status, headers, body = self.answers.pop(0)
        return opstatus.Response(status, headers, body, request.url)


@pytest.fixture
def pm():
    return opstatus.make_plugin_manager()


def poller(pm, transport, clock, **options):
    return opstatus.Poller("https://svc.example/face/v1.0/operations/x", key="k" * 32,
                           transport=transport, plugins=pm, **fake_time(clock), **options)


def test_next_delay_hears_the_service_s_retry_after(pm):
    seen = []

    class Pace:
        @opstatus.hookimpl
        def opstatus_next_delay(self, url, status, age, polls, policy, retry_after):
            seen.append(retry_after)
            return None  # the core's choice: the service's hint

    pm.register(Pace())
    clock = FakeClock()
    transport = Scripted((200, {"Retry-After": "7"}, RUNNING), (200, {}, RUNNING),
                         (200, {}, DONE))
    poller(pm, transport, clock).wait()
    assert seen == [7.0, None]
    assert clock.sleeps[0] == 7.0


def test_an_old_next_delay_plugin_without_retry_after_still_works(pm):
    class Old:
        @opstatus.hookimpl
        def opstatus_next_delay(self, url, status, age, polls, policy):
            return 3.0

    pm.register(Old())
    clock = FakeClock()
    poller(pm, Scripted((200, {}, RUNNING), (200, {}, DONE)), clock).wait()
    assert clock.sleeps == [3.0]


class RefreshOn401:
    def __init__(self):
        self.token = "Bearer first-token-0000"
        self.seen = []

    @opstatus.hookimpl
    def opstatus_prepare_request(self, request):
        request.headers["Authorization"] = self.token

    @opstatus.hookimpl
    def opstatus_response_received(self, request, response):
        self.seen.append(response.status)
        if response.status == 401:
            self.token = "Bearer second-token-1111"
            return True


def test_a_plugin_refreshes_its_credential_on_a_401_and_the_request_is_sent_again(pm):
    auth = pm.register(RefreshOn401()) and pm.get_plugins()
    plugin = [p for p in auth if isinstance(p, RefreshOn401)][0]
    transport = Scripted((401, {}, b'{"error": {"code": "401", "message": "expired"}}'),
                         (200, {}, DONE))
    final = poller(pm, transport, FakeClock()).wait()
    assert final.snapshot_id == "abc"
    assert [h["Authorization"] for _m, h in transport.requests] == [
        "Bearer first-token-0000", "Bearer second-token-1111"]
    assert plugin.seen == [401, 200]


def test_a_request_is_sent_again_at_most_once(pm):
    pm.register(RefreshOn401())
    transport = Scripted((401, {}, b"{}"), (401, {}, b"{}"), (200, {}, DONE))
    with pytest.raises(opstatus.HTTPError) as info:
        poller(pm, transport, FakeClock()).wait()
    assert info.value.status == 401 and len(transport.requests) == 2


def test_a_post_is_sent_again_only_after_a_401(pm):
    class Always:
        @opstatus.hookimpl
        def opstatus_response_received(self, request, response):
            return True

    pm.register(Always())
    transport = Scripted((500, {}, b"{}"), (202, {"Operation-Location": "/operations/y"}, b""))
    with pytest.raises(opstatus.HTTPError):
        opstatus.take_snapshot("https://svc.example", "k" * 32, object_type="PersonGroup",
                               object_id="pg", apply_scope=["00000000-0000-0000-0000-000000000001"],
                               transport=transport, plugins=pm)
    assert [m for m, _h in transport.requests] == ["POST"]


def test_configure_is_historic_and_gets_the_environment(monkeypatch):
    monkeypatch.setenv("MYPLUGIN_LIMIT", "42")
    pm = opstatus.make_plugin_manager()
    seen = []

    class Configured:
        @opstatus.hookimpl
        def opstatus_configure(self, environ):
            seen.append(environ["MYPLUGIN_LIMIT"])

    pm.register(Configured())  # registered after the manager was made
    assert seen == ["42"]


def test_a_plugin_whose_configure_fails_is_refused_naming_it(monkeypatch):
    monkeypatch.setattr(opstatus, "_PLUGIN_MANAGER", opstatus.make_plugin_manager())

    class Refusing:
        @opstatus.hookimpl
        def opstatus_configure(self, environ):
            raise ValueError("MYPLUGIN_LIMIT is not a number")

    with pytest.raises(opstatus.PluginError, match="refusing.*MYPLUGIN_LIMIT"):
        opstatus.register_plugin(Refusing(), name="refusing")


def test_a_failure_under_a_wrapper_is_attributed_to_the_plugin_that_raised(pm):
    class Wrapper:
        @opstatus.hookimpl(hookwrapper=True)
        def opstatus_next_delay(self, url, status, age, polls, policy, retry_after):
            yield

    class Broken:
        @opstatus.hookimpl
        def opstatus_next_delay(self, url, status, age, polls, policy, retry_after):
            return {}["missing"]

    pm.register(Wrapper(), name="wrapper")
    pm.register(Broken(), name="broken")
    with pytest.raises(opstatus.PluginError) as info:
        poller(pm, Scripted((200, {}, RUNNING)), FakeClock()).wait()
    assert info.value.plugin == "broken" and "opstatus_next_delay" in str(info.value)


def test_notifiers_after_a_failing_one_still_run_and_wrappers_are_not_called_twice(pm, caplog):
    calls = []

    class Wrapper:
        @opstatus.hookimpl(hookwrapper=True)
        def opstatus_status_changed(self, url, previous, status):
            calls.append("wrapper")
            yield

    class Boom:
        @opstatus.hookimpl
        def opstatus_status_changed(self, url, previous, status):
            raise RuntimeError("boom")

    class Quiet:
        @opstatus.hookimpl
        def opstatus_status_changed(self, url, previous, status):
            calls.append("quiet")

    pm.register(Quiet(), name="quiet")
    pm.register(Boom(), name="boom")  # called before quiet (LIFO)
    pm.register(Wrapper(), name="wrapper")
    with caplog.at_level(logging.WARNING, logger="opstatus"):
        poller(pm, Scripted((200, {}, DONE)), FakeClock()).wait()
    assert calls == ["wrapper", "quiet"]
    assert any("plugin boom failed in opstatus_status_changed" in r.getMessage()
               for r in caplog.records)


def test_a_plugin_refused_by_its_configure_is_named_and_not_left_registered(pm):
    class Refusing:
        @opstatus.hookimpl
        def opstatus_configure(self, environ):
            raise ValueError("MYPLUGIN_LIMIT is not a number")

    plugin = Refusing()
    with pytest.raises(opstatus.PluginError) as info:
        pm.register(plugin, name="refusing")
    assert info.value.plugin == "refusing" and "MYPLUGIN_LIMIT" in str(info.value)
    assert not pm.is_registered(plugin) and pm.get_plugin("refusing") is None


def test_every_plugin_hears_every_answer_and_one_true_resends(pm):
    seen = []

    class Counter:
        @opstatus.hookimpl
        def opstatus_response_received(self, request, response):
            seen.append(response.status)

    pm.register(Counter(), name="counter")
    pm.register(RefreshOn401(), name="auth")  # registered last: called first
    transport = Scripted((401, {}, b"{}"), (200, {}, DONE))
    poller(pm, transport, FakeClock()).wait()
    assert seen == [401, 200]


def test_a_plugin_delay_may_wait_as_long_as_the_service_asked(pm):
    class Slow:
        @opstatus.hookimpl
        def opstatus_next_delay(self, url, status, age, polls, policy, retry_after):
            return retry_after

    pm.register(Slow())
    clock = FakeClock()
    transport = Scripted((200, {"Retry-After": "300"}, RUNNING), (200, {}, DONE))
    poller(pm, transport, clock, vocabulary=opstatus.Vocabulary(
        "plain", created_fields=("createdTime",))).wait()
    assert clock.sleeps == [300.0]  # above the 60 s cap, as the service asked
