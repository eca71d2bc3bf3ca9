"""opstatus-azure-identity with a fake credential and an injected clock; the
header is checked end to end against a loopback server. No network, no
azure-identity needed."""

import json
import logging
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import opstatus
import opstatus_azure_identity
from opstatus_azure_identity import SCOPE, AzureIdentityAuth

SUCCEEDED = {"status": "succeeded", "createdTime": "2026-01-01T00:00:00Z",
             "lastActionTime": "2026-01-01T00:00:01Z", "resourceLocation": "/snapshots/abc"}
T0 = 1767225600.0  # 2026-01-01T00:00:00Z


class WallClock:
    """POSIX seconds that move only when told to."""

    def __init__(self, now=T0):
        self.now = now

    def __call__(self):
        return self.now


class Token:
    def __init__(self, token, expires_on, refresh_on=None):
        self.token = token
        self.expires_on = expires_on
        if refresh_on is not None:
            self.refresh_on = refresh_on


class FakeCredential:
    """Hands out ``tok-1``, ``tok-2``… valid *lifetime* seconds from the
    clock's now; ``fail`` makes the next calls raise."""

    def __init__(self, clock, lifetime=3600.0, delay=0.0):
        self.clock = clock
        self.lifetime = lifetime
        self.delay = delay
        self.calls = []
        self.fail = None
        self._lock = threading.Lock()

    def get_token(self, *scopes, **kwargs):
        with self._lock:
            self.calls.append(scopes)
            n = len(self.calls)
        if self.delay:
            time.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        return Token("tok-%d" % n, self.clock() + self.lifetime)


@pytest.fixture
def clock():
    return WallClock()


@pytest.fixture
def credential(clock):
    return FakeCredential(clock)


def auth_for(credential, clock, **options):
    options.setdefault("hosts", ("127.0.0.1",))
    return AzureIdentityAuth(credential, clock=clock, **options)


def prepared(auth, url="http://127.0.0.1:8080/face/v1.0/operations/x", headers=None):
    request = opstatus.Request("GET", url, headers or {})
    auth.opstatus_prepare_request(request)
    return request.headers


###############################################################################
# Token cache
###############################################################################


def test_token_is_fetched_once_for_the_cognitive_services_scope(credential, clock):
    auth = auth_for(credential, clock)
    assert prepared(auth)["Authorization"] == "Bearer tok-1"
    assert prepared(auth)["Authorization"] == "Bearer tok-1"
    assert credential.calls == [(SCOPE,)]
    assert SCOPE == "https://cognitiveservices.azure.com/.default"


def test_token_is_refreshed_a_margin_before_expiry(credential, clock):
    auth = auth_for(credential, clock)  # margin 300 s, tokens live 3600 s
    auth.token()
    clock.now = T0 + 3600 - 300 - 0.001
    assert auth.token() == "tok-1"
    clock.now = T0 + 3600 - 300
    assert auth.token() == "tok-2"
    assert len(credential.calls) == 2 and auth.refreshes == 2


def test_margin_is_configurable(credential, clock):
    auth = auth_for(credential, clock, margin=60)
    auth.token()
    clock.now = T0 + 3600 - 61
    assert auth.token() == "tok-1"
    clock.now = T0 + 3600 - 60
    assert auth.token() == "tok-2"


def test_refresh_on_hint_is_honoured(clock):
    class Hinting:
        calls = 0

        def get_token(self, *scopes):
            Hinting.calls += 1
            return Token("hint-%d" % Hinting.calls, clock() + 3600, refresh_on=clock() + 1000)

    auth = auth_for(Hinting(), clock)
    assert auth.token() == "hint-1"
    clock.now = T0 + 999
    assert auth.token() == "hint-1"
    clock.now = T0 + 1000
    assert auth.token() == "hint-2"


def test_short_lived_token_is_refreshed_at_half_life(credential, clock):
    credential.lifetime = 120.0  # less than the 300 s margin
    auth = auth_for(credential, clock)
    auth.token()
    clock.now = T0 + 59
    assert auth.token() == "tok-1"  # not fetched on every request
    clock.now = T0 + 60
    assert auth.token() == "tok-2"


def test_failed_refresh_keeps_the_valid_token_and_retries_later(credential, clock, caplog):
    auth = auth_for(credential, clock)
    auth.token()
    clock.now = T0 + 3400  # in the margin, still valid for 200 s
    credential.fail = RuntimeError("AADSTS50058: secret-ish details")
    with caplog.at_level(logging.WARNING, logger="opstatus.azure_identity"):
        assert auth.token() == "tok-1"
    assert "refresh failed" in caplog.text and "tok-1" not in caplog.text
    calls = len(credential.calls)
    clock.now = T0 + 3420  # within 30 s: the credential is not hammered
    assert auth.token() == "tok-1" and len(credential.calls) == calls
    clock.now = T0 + 3431
    credential.fail = None
    assert auth.token() == "tok-3"  # tried again, and succeeded


def test_failed_refresh_after_expiry_raises(credential, clock):
    auth = auth_for(credential, clock)
    auth.token()
    clock.now = T0 + 3600
    credential.fail = LookupError("no account")
    with pytest.raises(LookupError):
        auth.token()


@pytest.mark.parametrize("answer", [
    object(), Token(None, T0 + 3600), Token("", T0 + 3600), Token("a\r\nb", T0 + 3600),
    Token("good", "tomorrow"), Token("good", float("nan")), Token("good", True),
], ids=["no-attributes", "none", "empty", "crlf", "str-expiry", "nan-expiry", "bool-expiry"])
def test_unusable_tokens_are_refused_without_showing_them(clock, answer):
    class Odd:
        def get_token(self, *scopes):
            return answer

    with pytest.raises(ValueError) as info:
        auth_for(Odd(), clock).token()
    assert "Odd.get_token()" in str(info.value)
    assert "a\r\nb" not in str(info.value) and "good" not in str(info.value)


def test_one_refresh_for_many_threads(clock):
    credential = FakeCredential(clock, delay=0.05)
    auth = auth_for(credential, clock)
    barrier = threading.Barrier(16)
    tokens = []

    def worker():
        barrier.wait()
        tokens.append(auth.token())

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert tokens == ["tok-1"] * 16
    assert len(credential.calls) == 1


def test_credential_must_have_get_token():
    with pytest.raises(TypeError, match="get_token"):
        AzureIdentityAuth(object())


def test_repr_holds_no_token(credential, clock):
    auth = auth_for(credential, clock)
    auth.token()
    assert "tok-1" not in repr(auth) and "FakeCredential" in repr(auth)


###############################################################################
# Which requests get it
###############################################################################


@pytest.mark.parametrize("url, applies", [
    ("https://myface.cognitiveservices.azure.com/face/v1.0/operations/x", True),
    ("https://cognitiveservices.azure.com/x", True),
    ("https://westus.api.cognitive.microsoft.com/face/v1.0/operations/x", True),
    ("https://MYFACE.CognitiveServices.Azure.com./x", True),
    ("http://myface.cognitiveservices.azure.com/x", False),  # not over plain http
    ("https://cognitiveservices.azure.com.evil.example/x", False),
    ("https://evilcognitiveservices.azure.com/x", False),
    ("https://example.com/x", False),
    ("http://127.0.0.1:8080/x", False),  # loopback, but not listed
])
def test_token_goes_only_to_its_hosts(credential, clock, url, applies):
    auth = AzureIdentityAuth(credential, clock=clock)
    assert ("Authorization" in prepared(auth, url)) is applies
    assert auth.applies_to(url) is applies


def test_loopback_http_when_listed(credential, clock):
    auth = auth_for(credential, clock, hosts=("127.0.0.1", "localhost"))
    assert "Authorization" in prepared(auth, "http://127.0.0.1:9/x")
    assert "Authorization" in prepared(auth, "http://localhost:9/x")
    assert "Authorization" not in prepared(auth, "http://10.0.0.1:9/x")


def test_callers_own_authorization_header_wins(credential, clock):
    auth = auth_for(credential, clock)
    headers = prepared(auth, headers={"authorization": "Bearer mine"})
    assert headers == {"authorization": "Bearer mine"}
    assert credential.calls == []  # not even fetched


###############################################################################
# End to end, through the core
###############################################################################


class TokenCheckingServer:
    """A loopback server that serves a finished operation only to a request
    with ``Authorization: Bearer <expected>``, 401 otherwise."""

    def __init__(self):
        self.expected = None
        self.seen = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format, *args):
                pass

            def do_GET(self):
                auth = self.headers.get("Authorization")
                owner.seen.append(auth)
                ok = owner.expected is not None and auth == "Bearer " + owner.expected
                doc = SUCCEEDED if ok else {"error": {
                    "code": "PermissionDenied", "message": "bad token %s" % auth}}
                body = json.dumps(doc).encode("utf-8")
                self.send_response(200 if ok else 401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)

    @property
    def url(self):
        return "http://127.0.0.1:%d/face/v1.0/operations/op1" % self.httpd.server_address[1]


@pytest.fixture
def pm():
    return opstatus.make_plugin_manager()


def test_poll_with_the_token(pm, credential, clock):
    auth = auth_for(credential, clock)
    pm.register(auth, name="azure-identity")
    try:
        with TokenCheckingServer() as server:
            server.expected = "tok-1"
            final = opstatus.poll(server.url, plugins=pm, sleep=lambda s: None)
        assert final.snapshot_id == "abc"
        assert server.seen == ["Bearer tok-1"]
    finally:
        pm.unregister(auth)


def test_token_never_shows_in_errors(pm, credential, clock):
    pm.register(auth_for(credential, clock), name="azure-identity")
    with TokenCheckingServer() as server:
        server.expected = "another-token"
        with pytest.raises(opstatus.HTTPError) as info:
            opstatus.poll(server.url, plugins=pm, sleep=lambda s: None)
    assert server.seen == ["Bearer tok-1"]
    assert info.value.status == 401 and "bad token" in str(info.value)
    assert "tok-1" not in str(info.value)


def test_credential_failure_is_a_plugin_error_naming_the_plugin(pm, credential, clock):
    credential.fail = RuntimeError("DefaultAzureCredential failed to retrieve a token")
    pm.register(auth_for(credential, clock), name="azure-identity")
    with TokenCheckingServer() as server:
        with pytest.raises(opstatus.PluginError) as info:
            opstatus.poll(server.url, plugins=pm, sleep=lambda s: None)
        assert server.seen == []  # nothing sent without a token
    assert info.value.plugin == "azure-identity"
    assert "failed to retrieve a token" in str(info.value)


def test_with_the_simulator_and_a_key_too(pm, credential):
    seen = []

    class Spy:
        @opstatus.hookimpl(trylast=True)
        def opstatus_prepare_request(self, request):
            seen.append(request.headers.get("Authorization"))

    wall = WallClock()
    pm.register(Spy(), name="spy")
    pm.register(AzureIdentityAuth(credential, hosts=["127.0.0.1"], clock=wall), name="aad")
    with opstatus.Simulator(queue_seconds=0, take_seconds=0, require_objects=False) as sim:
        location = opstatus.take_snapshot(sim.endpoint, sim.key, object_type="PersonGroup",
                                          object_id="g", apply_scope=[sim.subscription],
                                          plugins=pm)
        opstatus.poll(location, endpoint=sim.endpoint, key=sim.key, plugins=pm,
                      sleep=lambda s: None)
    assert seen and set(seen) == {"Bearer tok-1"}  # the POST and every GET


###############################################################################
# The installed plugin
###############################################################################


@pytest.fixture
def unconfigured(monkeypatch):
    monkeypatch.setattr(opstatus_azure_identity, "_DEFAULT", None)
    monkeypatch.setattr(opstatus_azure_identity, "_CONFIGURED", False)
    monkeypatch.delenv("OPSTATUS_AZURE_CREDENTIAL", raising=False)


def test_installed_plugin_does_nothing_until_configured(unconfigured, credential, clock):
    request = opstatus.Request("GET", "https://x.cognitiveservices.azure.com/face/v1.0/x")
    opstatus_azure_identity.opstatus_prepare_request(request)
    assert request.headers == {}
    opstatus_azure_identity.configure(credential, clock=clock)
    opstatus_azure_identity.opstatus_prepare_request(request)
    assert request.headers == {"Authorization": "Bearer tok-1"}
    opstatus_azure_identity.configure(None)
    request.headers.clear()
    opstatus_azure_identity.opstatus_prepare_request(request)
    assert request.headers == {}


def test_module_registers_cleanly(unconfigured):
    pm = opstatus.make_plugin_manager()
    pm.register(opstatus_azure_identity, name="opstatus-azure-identity")
    pm.check_pending()
    assert pm.hook.opstatus_prepare_request.get_hookimpls()[0].plugin is opstatus_azure_identity
    pm.unregister(opstatus_azure_identity)


FAKE_AZURE_IDENTITY = '''
import time

class AccessToken:
    def __init__(self, token, expires_on):
        self.token, self.expires_on = token, expires_on

class DefaultAzureCredential:
    def get_token(self, *scopes):
        return AccessToken("from-default:" + ",".join(scopes), time.time() + 3600)
'''


def test_environment_names_an_azure_identity_credential(unconfigured, monkeypatch, tmp_path):
    package = tmp_path / "azure" / "identity"
    package.mkdir(parents=True)
    (tmp_path / "azure" / "__init__.py").write_text("")
    (package / "__init__.py").write_text(FAKE_AZURE_IDENTITY)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m == "azure" or m.startswith("azure.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setenv("OPSTATUS_AZURE_CREDENTIAL", "default")
    monkeypatch.setenv("OPSTATUS_AZURE_SCOPE", "https://cognitiveservices.azure.us/.default")
    monkeypatch.setenv("OPSTATUS_AZURE_HOSTS", "cognitiveservices.azure.us")
    request = opstatus.Request("GET", "https://x.cognitiveservices.azure.us/face/v1.0/x")
    try:
        opstatus_azure_identity.opstatus_prepare_request(request)
    finally:
        for name in [m for m in sys.modules if m == "azure" or m.startswith("azure.")]:
            del sys.modules[name]  # the fake package goes with the test
    assert request.headers["Authorization"] == (
        "Bearer from-default:https://cognitiveservices.azure.us/.default")


def test_environment_without_azure_identity_says_what_to_install(unconfigured, monkeypatch):
    monkeypatch.setitem(sys.modules, "azure.identity", None)
    with pytest.raises(opstatus.PluginError, match="pip install azure-identity"):
        opstatus_azure_identity._from_environment({"OPSTATUS_AZURE_CREDENTIAL": "cli"})
    assert opstatus_azure_identity._from_environment({}) is None
