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
old one is used and the refresh is tried again later. The header is added
only to requests for the hosts the token is meant for (the Cognitive
Services domains by default), over https (http only to loopback), and never
replaces an ``Authorization`` header the caller set. The core then treats it
as a secret: it goes to the endpoint's origin only and is scrubbed from
every error and log line.

Installed, the module is a plugin (entry point ``opstatus-azure-identity``)
that does nothing until :func:`configure` is called, or
``OPSTATUS_AZURE_CREDENTIAL`` names an azure-identity credential class
(``default`` for ``DefaultAzureCredential``, ``cli``, ``managed-identity``,
``environment``, ``workload-identity``, or a class name).
"""

import logging
import math
import os
import threading

import opstatus

__all__ = ["AzureIdentityAuth", "configure", "SCOPE", "DEFAULT_MARGIN", "DEFAULT_HOSTS"]

__version__ = "0.1.0"

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
        return scheme == "https" or (scheme == "http" and _is_loopback(host))

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
                fresh = self.credential.get_token(*self.scopes)
                self._cached = self._check(fresh, now)
            except Exception as exc:
                if not still_valid:
                    raise
                self._next_attempt = now + self.retry_after_failure
                _log.warning("opstatus: token refresh failed (%s); using the current token, "
                             "valid %.0f s more", type(exc).__name__, cached.expires_on - now)
                return cached.token
            self.refreshes += 1
            self._next_attempt = 0.0
            return self._cached.token

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

    @opstatus.hookimpl
    def opstatus_prepare_request(self, request):
        if any(name.lower() == "authorization" for name in request.headers):
            return  # the caller's own credential wins
        if not self.applies_to(request.url):
            return
        request.headers["Authorization"] = "Bearer " + self.token()


def _is_loopback(host):
    if host == "localhost" or host.endswith(".localhost"):
        return True
    import ipaddress

    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


_DEFAULT = None
_CONFIGURED = False
_LOCK = threading.Lock()


def configure(credential=None, **options):
    """Set the credential the installed plugin uses (``None``: none, the
    plugin then does nothing). *options* are those of
    :class:`AzureIdentityAuth`. Returns the :class:`AzureIdentityAuth`."""
    global _DEFAULT, _CONFIGURED
    with _LOCK:
        _DEFAULT = None if credential is None else AzureIdentityAuth(credential, **options)
        _CONFIGURED = True
        return _DEFAULT


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
    global _DEFAULT, _CONFIGURED
    if _CONFIGURED:
        return _DEFAULT
    with _LOCK:
        if not _CONFIGURED:
            _DEFAULT = _from_environment(os.environ)
            _CONFIGURED = True
        return _DEFAULT


@opstatus.hookimpl
def opstatus_prepare_request(request):
    """The installed plugin: the configured credential's token, if any."""
    auth = _default_auth()
    if auth is not None:
        auth.opstatus_prepare_request(request)
