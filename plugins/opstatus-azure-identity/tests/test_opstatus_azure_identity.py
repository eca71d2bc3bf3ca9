"""opstatus-azure-identity with a fake credential and an injected clock; the
header is checked end to end against a loopback server. No network, no
azure-identity needed. The clock, the loopback server and a fresh plugin
manager (``pm``) are the core's (tests/opstatus_testing.py)."""

import logging
import sys
import threading
import time

import pytest

import opstatus
import opstatus_azure_identity
from opstatus_azure_identity import SCOPE, AzureIdentityAuth
from opstatus_testing import SUCCEEDED, FakeClock, LoopbackServer, send_json

T0 = 1767225600.0  # 2026-01-01T00:00:00Z


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
    """Wall-clock POSIX seconds (what ``expires_on`` is compared with)."""
    return FakeClock(T0)


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


class TokenCheckingServer(LoopbackServer):
    """A loopback server that serves a finished operation only to a request
    with ``Authorization: Bearer <expected>``, 401 otherwise; :attr:`tokens`
    lists the ``Authorization`` of each request."""

    def __init__(self):
        super().__init__(self._answer)
        self.expected = None

    def _answer(self, handler):
        auth = handler.headers.get("Authorization")
        if self.expected is not None and auth == "Bearer " + self.expected:
            send_json(handler, 200, SUCCEEDED)
        else:
            send_json(handler, 401, {"error": {"code": "PermissionDenied",
                                               "message": "bad token %s" % auth}})

    @property
    def tokens(self):
        return [e.headers.get("authorization") for e in self.seen]


def test_poll_with_the_token(pm, credential, clock):
    auth = auth_for(credential, clock)
    pm.register(auth, name="azure-identity")
    try:
        with TokenCheckingServer() as server:
            server.expected = "tok-1"
            final = opstatus.poll(server.url(), plugins=pm, sleep=lambda s: None)
        assert final.snapshot_id == "abc"
        assert server.tokens == ["Bearer tok-1"]
    finally:
        pm.unregister(auth)


def test_token_never_shows_in_errors(pm, credential, clock):
    pm.register(auth_for(credential, clock), name="azure-identity")
    with TokenCheckingServer() as server:
        server.expected = "another-token"
        with pytest.raises(opstatus.HTTPError) as info:
            opstatus.poll(server.url(), plugins=pm, sleep=lambda s: None)
    assert server.tokens == ["Bearer tok-1", "Bearer tok-2"]  # refused, refreshed, refused
    assert len(credential.calls) == 2  # a fresh token refused: not about its age, no third
    assert info.value.status == 401 and "bad token" in str(info.value)
    assert "tok-1" not in str(info.value) and "tok-2" not in str(info.value)


def test_credential_failure_is_a_plugin_error_naming_the_plugin(pm, credential, clock):
    credential.fail = RuntimeError("DefaultAzureCredential failed to retrieve a token")
    pm.register(auth_for(credential, clock), name="azure-identity")
    with TokenCheckingServer() as server:
        with pytest.raises(opstatus.PluginError) as info:
            opstatus.poll(server.url(), plugins=pm, sleep=lambda s: None)
        assert server.tokens == []  # nothing sent without a token
    assert info.value.plugin == "azure-identity"
    assert "failed to retrieve a token" in str(info.value)


def test_with_the_simulator_and_a_key_too(pm, credential):
    seen = []

    class Spy:
        @opstatus.hookimpl(trylast=True)
        def opstatus_prepare_request(self, request):
            seen.append(request.headers.get("Authorization"))

    wall = FakeClock(T0)
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
# A refused token (401): refreshed, and the request sent once more
###############################################################################


@pytest.fixture(params=["instance", "installed"])
def registered(request, pm, credential, clock, unconfigured):
    """The plugin on *pm*: an AzureIdentityAuth, or the installed module
    configured in code; returns the AzureIdentityAuth."""
    if request.param == "instance":
        auth = auth_for(credential, clock)
        pm.register(auth, name="azure-identity")
    else:
        auth = opstatus_azure_identity.configure(credential, clock=clock, hosts=["127.0.0.1"])
        pm.register(opstatus_azure_identity, name="opstatus-azure-identity")
    return auth


def test_a_refused_token_is_refreshed_and_the_request_sent_again(registered, pm, credential):
    # The cache still holds tok-1 (valid for an hour), but the service has
    # revoked it: a 401, a fresh token, the same GET once more.
    with TokenCheckingServer() as server:
        server.expected = "tok-2"
        final = opstatus.poll(server.url(), plugins=pm, sleep=lambda s: None)
    assert final.snapshot_id == "abc"
    assert server.tokens == ["Bearer tok-1", "Bearer tok-2"]
    assert len(credential.calls) == 2 and registered.token() == "tok-2"


def test_a_401_to_the_callers_own_header_is_left_alone(registered, pm, credential):
    with TokenCheckingServer() as server:
        server.expected = "tok-1"
        with pytest.raises(opstatus.HTTPError) as info:
            opstatus.poll(server.url(), plugins=pm, sleep=lambda s: None,
                          headers={"Authorization": "Bearer mine"})
    assert info.value.status == 401
    assert server.tokens == ["Bearer mine"] and credential.calls == []


def test_no_second_try_when_the_credential_gives_the_same_token(pm, clock):
    class Stale:
        calls = 0

        def get_token(self, *scopes):
            Stale.calls += 1
            return Token("same-token", clock() + 3600)  # from its own cache, say

    pm.register(auth_for(Stale(), clock), name="azure-identity")
    with TokenCheckingServer() as server:
        server.expected = "another-token"
        with pytest.raises(opstatus.HTTPError):
            opstatus.poll(server.url(), plugins=pm, sleep=lambda s: None)
    assert server.tokens == ["Bearer same-token"] and Stale.calls == 2


def test_a_failed_refresh_after_a_401_leaves_the_401(pm, credential, clock, caplog):
    auth = auth_for(credential, clock)
    pm.register(auth, name="azure-identity")
    auth.token()
    credential.fail = RuntimeError("AADSTS700082: expired refresh token")
    with TokenCheckingServer() as server:
        server.expected = "tok-2"
        with caplog.at_level(logging.WARNING, logger="opstatus.azure_identity"):
            with pytest.raises(opstatus.HTTPError) as info:
                opstatus.poll(server.url(), plugins=pm, sleep=lambda s: None)
    assert info.value.status == 401 and server.tokens == ["Bearer tok-1"]
    assert "refresh after a 401 failed (RuntimeError)" in caplog.text
    assert "AADSTS" not in caplog.text and "tok-1" not in caplog.text


def test_a_token_another_thread_refreshed_is_used_without_a_new_fetch(credential, clock):
    auth = auth_for(credential, clock)
    request = opstatus.Request("GET", "http://127.0.0.1:8080/face/v1.0/operations/x")
    auth.opstatus_prepare_request(request)  # tok-1
    clock.now = T0 + 3400  # in the margin: the next token() fetches tok-2
    assert auth.token() == "tok-2"
    refused = opstatus.Response(401, {}, b"")
    assert auth.opstatus_response_received(request, refused) is True
    assert request.headers == {} and len(credential.calls) == 2
    auth.opstatus_prepare_request(request)
    assert request.headers == {"Authorization": "Bearer tok-2"}


###############################################################################
# The installed plugin
###############################################################################


@pytest.fixture
def unconfigured(monkeypatch):
    monkeypatch.setattr(opstatus_azure_identity, "_code_auth", opstatus_azure_identity._UNSET)
    monkeypatch.setattr(opstatus_azure_identity, "_env_auth", None)
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


def test_environment_names_an_azure_identity_credential(unconfigured, monkeypatch, tmp_path,
                                                        pm):
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
        pm.register(opstatus_azure_identity, name="opstatus-azure-identity")  # reads it
    finally:
        for name in [m for m in sys.modules if m == "azure" or m.startswith("azure.")]:
            del sys.modules[name]  # the fake package goes with the test
    pm.hook.opstatus_prepare_request(request=request)
    assert request.headers["Authorization"] == (
        "Bearer from-default:https://cognitiveservices.azure.us/.default")


def test_environment_without_azure_identity_says_what_to_install(unconfigured, monkeypatch,
                                                                 pm):
    monkeypatch.setitem(sys.modules, "azure.identity", None)
    with pytest.raises(opstatus.PluginError, match="pip install azure-identity"):
        opstatus_azure_identity._from_environment({"OPSTATUS_AZURE_CREDENTIAL": "cli"})
    assert opstatus_azure_identity._from_environment({}) is None
    # Installed: the plugin is refused when it joins a manager, not at the
    # first request (which would go out without the token asked for).
    monkeypatch.setenv("OPSTATUS_AZURE_CREDENTIAL", "cli")
    with pytest.raises(opstatus.PluginError, match="pip install azure-identity") as info:
        pm.register(opstatus_azure_identity, name="opstatus-azure-identity")
    assert info.value.plugin == "opstatus-azure-identity"
    assert opstatus_azure_identity._default_auth() is None


def test_configure_wins_over_the_environment(unconfigured, monkeypatch, credential, clock, pm):
    auth = opstatus_azure_identity.configure(credential, clock=clock)
    monkeypatch.setenv("OPSTATUS_AZURE_CREDENTIAL", "cli")
    monkeypatch.setitem(sys.modules, "azure.identity", None)
    with pytest.raises(opstatus.PluginError):
        pm.register(opstatus_azure_identity, name="opstatus-azure-identity")
    assert opstatus_azure_identity._default_auth() is auth
