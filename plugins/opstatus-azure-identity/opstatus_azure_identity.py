"""Microsoft Entra ID (Azure AD) bearer tokens for opstatus, from any
azure-identity credential.

::

    from azure.identity import DefaultAzureCredential
    import opstatus, opstatus_azure_identity

    auth = opstatus_azure_identity.AzureIdentityAuth(DefaultAzureCredential())
    opstatus.register_plugin(auth)
    opstatus.poll(location, endpoint="https://myface.cognitiveservices.azure.com")

A credential is anything with ``get_token(*scopes)`` returning an object with
``.token`` (str) and ``.expires_on`` (POSIX seconds), as every azure-identity
credential does; this module never imports azure-identity itself unless
``OPSTATUS_AZURE_CREDENTIAL`` asks it to.

The token is cached and refreshed :data:`DEFAULT_MARGIN` seconds before it
expires (or at the credential's ``refresh_on`` hint), by one thread while
the others wait; if a refresh fails while the old token is still valid, the
old one is used and the refresh is tried again later. A request whose token
the service refuses (``401``) is sent once more with a fresh token, when the
credential gives another (hook ``opstatus_response_received``). The header is added
only to requests for the hosts the token is meant for (the Cognitive
Services domains by default), over https (http only to loopback), and never
replaces an ``Authorization`` header the caller set. The core then treats it
as a secret: it goes to the endpoint's origin only and is scrubbed from
every error and log line.

Installed, the module is a plugin (entry point ``opstatus-azure-identity``)
that does nothing until :func:`configure` is called, or
``OPSTATUS_AZURE_CREDENTIAL`` names an azure-identity credential class
(``default`` for ``DefaultAzureCredential``, ``cli``, ``managed-identity``,
``environment``, ``workload-identity``, or a class name). The variable is
read when the plugin joins a plugin manager (``opstatus_configure``); a
credential that cannot be made there (azure-identity missing, a class it
does not have) refuses the plugin, with a :class:`opstatus.PluginError`,
rather than letting requests go without the token asked for.
"""

import logging
import math
import threading

import opstatus

__all__ = ["AzureIdentityAuth", "configure", "SCOPE", "DEFAULT_MARGIN", "DEFAULT_HOSTS"]

__version__ = "0.2.0"

#: Scope of Azure AI services (Cognitive Services) tokens.
SCOPE = "https://cognitiveservices.azure.com/.default"

#: Seconds before expiry when a token is refreshed (azure-core uses 300).
DEFAULT_MARGIN = 300.0

#: Seconds before a failed refresh is tried again while the old token holds.
DEFAULT_RETRY_AFTER_FAILURE = 30.0

#: Hosts a token is sent to: these domains and their subdomains.
DEFAULT_HOSTS = ("cognitiveservices.azure.com", "api.cognitive.microsoft.com")

_CREDENTIALS = {
    "default": "DefaultAzureCredential",
    "cli": "AzureCliCredential",
    "managed-identity": "ManagedIdentityCredential",
    "environment": "EnvironmentCredential",
    "workload-identity": "WorkloadIdentityCredential",
}

_log = logging.getLogger("opstatus.azure_identity")


def _now():
    import time

    return time.time()


class _Cached:
    __slots__ = ("token", "expires_on", "refresh_at")

    def __init__(self, token, expires_on, refresh_at):
        self.token = token
        self.expires_on = expires_on
        self.refresh_at = refresh_at


class AzureIdentityAuth:
    """An opstatus plugin that adds ``Authorization: Bearer <token>``.

    :param credential: an azure-identity credential (``get_token(*scopes)``).
    :param scopes: the scopes asked for (default :data:`SCOPE`).
    :param margin: refresh this many seconds before expiry.
    :param hosts: host names (and their subdomains) the token may go to.
    :param clock: wall-clock POSIX seconds (``time.time`` by default);
        ``expires_on`` is compared with it.
    """

    def __init__(self, credential, scopes=(SCOPE,), *, margin=DEFAULT_MARGIN,
                 hosts=DEFAULT_HOSTS, clock=None,
                 retry_after_failure=DEFAULT_RETRY_AFTER_FAILURE):
        if not callable(getattr(credential, "get_token", None)):
            raise TypeError("credential must have a get_token(*scopes) method, not %s"
                            % type(credential).__name__)
        if isinstance(scopes, str):
            scopes = (scopes,)
        self.scopes = tuple(scopes)
        if not self.scopes or not all(isinstance(s, str) and s for s in self.scopes):
            raise ValueError("scopes must be non-empty strings")
        if isinstance(hosts, str):
            hosts = (hosts,)
        self.hosts = tuple(h.lower().strip(".") for h in hosts)
        if not self.hosts:
            raise ValueError("hosts must name at least one host")
        self.margin = float(margin)
        self.retry_after_failure = float(retry_after_failure)
        self.credential = credential
        self._clock = clock
        self._cached = None  # type: _Cached
        self._previous = None  # the token the last refresh replaced
        self._after_401 = None  # the token fetched because a 401 refused the one before
        self._next_attempt = 0.0
        self._lock = threading.Lock()
        self.refreshes = 0  #: tokens fetched from the credential

    def __repr__(self):
        return "<AzureIdentityAuth %s scopes=%s>" % (type(self.credential).__name__,
                                                     list(self.scopes))

    def _time(self):
        return self._clock() if self._clock is not None else _now()

    def applies_to(self, url):
        """Whether a request to *url* gets the token: https to one of
        :attr:`hosts` (or a subdomain), or http to a loopback host listed."""
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower().rstrip(".")
        except ValueError:
            return False
        if not host or not any(host == h or host.endswith("." + h) for h in self.hosts):
            return False
        scheme = parts.scheme.lower()
        return scheme == "https" or (scheme == "http" and opstatus.is_loopback(host))

    def token(self):
        """The access token (a str), fetched or refreshed as needed."""
        cached = self._cached
        if cached is not None and self._time() < cached.refresh_at:
            return cached.token
        with self._lock:
            cached = self._cached
            now = self._time()
            if cached is not None and now < cached.refresh_at:
                return cached.token  # another thread refreshed it meanwhile
            still_valid = cached is not None and now < cached.expires_on
            if still_valid and now < self._next_attempt:
                return cached.token  # a refresh failed lately: keep the old one
            try:
                fresh = self._check(self.credential.get_token(*self.scopes), now)
            except Exception as exc:
                if not still_valid:
                    raise
                self._next_attempt = now + self.retry_after_failure
                _log.warning("opstatus: token refresh failed (%s); using the current token, "
                             "valid %.0f s more", type(exc).__name__, cached.expires_on - now)
                return cached.token
            self._store(fresh)
            return fresh.token

    def _store(self, fresh):
        """Cache *fresh* (under the lock)."""
        self._previous = self._cached.token if self._cached is not None else None
        self._cached = fresh
        self.refreshes += 1
        self._next_attempt = 0.0

    def _check(self, fresh, now):
        token = getattr(fresh, "token", None)
        expires_on = getattr(fresh, "expires_on", None)
        if not isinstance(token, str) or not token or any(c in token for c in "\r\n\x00 "):
            raise ValueError("%s.get_token() returned no usable token"
                             % type(self.credential).__name__)
        if (isinstance(expires_on, bool) or not isinstance(expires_on, (int, float))
                or not math.isfinite(expires_on)):
            raise ValueError("%s.get_token() returned expires_on=%s, not POSIX seconds"
                             % (type(self.credential).__name__, type(expires_on).__name__))
        refresh_at = expires_on - self.margin
        refresh_on = getattr(fresh, "refresh_on", None)
        if isinstance(refresh_on, (int, float)) and not isinstance(refresh_on, bool) \
                and math.isfinite(refresh_on):
            refresh_at = min(refresh_at, refresh_on)
        if refresh_at <= now:
            # A token that lives less than the margin: refresh at half its life.
            refresh_at = now + max(0.0, expires_on - now) / 2.0
        return _Cached(token, float(expires_on), refresh_at)

    def refused(self, token):
        """The service refused *token* (a 401): fetch another, unless one
        was fetched since. Whether the token now cached is another one (so
        that sending the request again may succeed). A token fetched after a
        401 and refused too is not replaced: that refusal is not about its
        age. A failure of the credential is logged, not raised: the 401
        stands."""
        with self._lock:
            cached = self._cached
            if cached is not None and cached.token != token:
                return True  # another thread fetched a new one meanwhile
            if token == self._after_401:
                return False
            now = self._time()
            try:
                fresh = self._check(self.credential.get_token(*self.scopes), now)
            except Exception as exc:
                _log.warning("opstatus: token refresh after a 401 failed (%s)",
                             type(exc).__name__)
                return False
            self._store(fresh)
            self._after_401 = fresh.token
            return fresh.token != token

    def _ours(self, request):
        """The token of ours that *request* carries, or None (none, or the
        caller's own)."""
        values = [v for k, v in request.headers.items() if k.lower() == "authorization"]
        if len(values) != 1 or not isinstance(values[0], str) \
                or not values[0].startswith("Bearer "):
            return None
        token = values[0][len("Bearer "):]
        with self._lock:
            known = {t for t in (self._cached.token if self._cached else None,
                                 self._previous) if t}
        return token if token in known else None

    @opstatus.hookimpl
    def opstatus_prepare_request(self, request):
        if any(name.lower() == "authorization" for name in request.headers):
            return  # the caller's own credential wins
        if not self.applies_to(request.url):
            return
        request.headers["Authorization"] = "Bearer " + self.token()

    @opstatus.hookimpl
    def opstatus_response_received(self, request, response):
        """On a 401 to a request that carries our token: a fresh token, and
        the request once more (``True``), with it instead of the old one."""
        if response.status != 401:
            return None
        token = self._ours(request)
        if token is None or not self.refused(token):
            return None
        for name in [k for k in request.headers if k.lower() == "authorization"]:
            del request.headers[name]  # opstatus_prepare_request adds the new one
        return True


###############################################################################
# The installed plugin: the credential configure() gives, else the environment's

_UNSET = object()
_code_auth = _UNSET  # what configure() set: it wins over the environment
_env_auth = None  # what opstatus_configure made


def configure(credential=None, **options):
    """Set the credential the installed plugin uses (``None``: none, the
    plugin then does nothing), in place of the environment's. *options* are
    those of :class:`AzureIdentityAuth`. Returns the
    :class:`AzureIdentityAuth`."""
    global _code_auth
    _code_auth = None if credential is None else AzureIdentityAuth(credential, **options)
    return _code_auth


def _from_environment(environ):
    """The :class:`AzureIdentityAuth` that ``OPSTATUS_AZURE_CREDENTIAL`` (and
    ``OPSTATUS_AZURE_SCOPE``, ``OPSTATUS_AZURE_HOSTS``) describe, or None."""
    name = environ.get("OPSTATUS_AZURE_CREDENTIAL", "").strip()
    if not name:
        return None
    class_name = _CREDENTIALS.get(name.lower(), name)
    try:
        import azure.identity
    except ImportError:
        raise opstatus.PluginError(
            "OPSTATUS_AZURE_CREDENTIAL=%s needs azure-identity: pip install azure-identity"
            % name, "opstatus-azure-identity") from None
    factory = getattr(azure.identity, class_name, None)
    if factory is None or not class_name.endswith("Credential"):
        raise opstatus.PluginError("OPSTATUS_AZURE_CREDENTIAL=%s: azure.identity has no %s"
                                   % (name, class_name), "opstatus-azure-identity")
    options = {}
    if environ.get("OPSTATUS_AZURE_SCOPE"):
        options["scopes"] = tuple(environ["OPSTATUS_AZURE_SCOPE"].split())
    if environ.get("OPSTATUS_AZURE_HOSTS"):
        options["hosts"] = tuple(h.strip() for h in environ["OPSTATUS_AZURE_HOSTS"].split(",")
                                 if h.strip())
    return AzureIdentityAuth(factory(), **options)


def _default_auth():
    """The :class:`AzureIdentityAuth` in force: configure()'s, else the
    environment's, or None."""
    return _env_auth if _code_auth is _UNSET else _code_auth


@opstatus.hookimpl
def opstatus_configure(environ):
    """Make the credential ``OPSTATUS_AZURE_CREDENTIAL`` names; one that
    cannot be made refuses the plugin (:class:`opstatus.PluginError`)."""
    global _env_auth
    _env_auth = _from_environment(environ)


@opstatus.hookimpl
def opstatus_prepare_request(request):
    """The installed plugin: the configured credential's token, if any."""
    auth = _default_auth()
    if auth is not None:
        auth.opstatus_prepare_request(request)


@opstatus.hookimpl
def opstatus_response_received(request, response):
    """The installed plugin: a fresh token and one more try on a 401."""
    auth = _default_auth()
    return None if auth is None else auth.opstatus_response_received(request, response)
