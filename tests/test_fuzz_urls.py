"""Property tests for the URL rules: only the documented error escapes, and
whatever is accepted stays on the endpoint's origin (issue 6, fuzzing)."""

import string
from urllib.parse import urlsplit

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import opstatus  # noqa: E402

ENDPOINT = "https://westus.api.cognitive.microsoft.com"
URLISH = st.text(alphabet=string.printable + "\u00e9\u2603\x00\x7f", max_size=80)
PARTS = st.sampled_from(["https://", "http://", "//", "/", "file:", "data:", "ftp://",
                         "https://a@", "https://westus.api.cognitive.microsoft.com",
                         "https://evil.example", "http://127.0.0.1:8080", "\\", " ",
                         "/operations/", "?sig=", "#", ":443", ":0", ":99999", "\r\n"])
BUILT = st.lists(st.one_of(PARTS, URLISH), min_size=1, max_size=5).map("".join)


def _origin(url):
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, parts.hostname, parts.port or (443 if scheme == "https" else 80)


@settings(max_examples=400, deadline=None)
@given(location=st.one_of(URLISH, BUILT), allow_http=st.booleans())
def test_resolve_operation_url_raises_only_unsafe_url_error(location, allow_http):
    try:
        url = opstatus.resolve_operation_url(location, ENDPOINT, allow_http=allow_http)
    except opstatus.UnsafeURLError:
        return
    # Accepted: absolute, ASCII, no control character, on the endpoint's origin.
    assert url.isascii() and url.isprintable() and " " not in url and "\\" not in url
    assert _origin(url) == _origin(ENDPOINT)
    assert "@" not in urlsplit(url).netloc
    if location.startswith("/") and not location.startswith("//"):
        assert url == ENDPOINT + "/face/v1.0" + location


@settings(max_examples=300, deadline=None)
@given(endpoint=st.one_of(URLISH, BUILT), allow_http=st.booleans())
def test_api_base_raises_only_unsafe_url_error(endpoint, allow_http):
    try:
        base = opstatus.api_base(endpoint, allow_http=allow_http)
    except opstatus.UnsafeURLError:
        return
    parts = urlsplit(base)
    assert parts.scheme in ("https", "http")
    assert parts.path  # /face/v1.0 added when there was none
    if parts.scheme == "http" and not allow_http:
        assert opstatus.is_loopback(parts.hostname)


@settings(max_examples=300, deadline=None)
@given(url=st.one_of(URLISH, BUILT), secret=st.text(alphabet=string.ascii_letters, min_size=8,
                                                    max_size=20))
def test_redact_url_never_shows_the_query(url, secret):
    assume(secret not in url)
    shown = opstatus.redact_url(url + "?sig=" + secret)
    assert secret not in shown
    assert isinstance(shown, str)


@settings(max_examples=300, deadline=None)
@given(name=URLISH, value=URLISH)
def test_header_check_raises_only_unsafe_url_error(name, value):
    try:
        checked = opstatus._check_headers({name: value})
    except opstatus.UnsafeURLError as exc:
        assert value not in str(exc) or len(value) < 4 or name.lower() not in (
            opstatus.SECRET_HEADERS)
        return
    (got_name, got_value), = checked.items()
    assert "\r" not in got_value and "\n" not in got_value and "\x00" not in got_value
    got_value.encode("latin-1")


KNOWN = ["https://westus.api.cognitive.microsoft.com", "http://127.0.0.1:8080",
         "HTTPS://Host.Example:443", "http://[::1]:9", "https://h.example"]


@settings(max_examples=600, deadline=None)
@given(base=st.sampled_from(KNOWN), tail=st.one_of(URLISH, BUILT))
def test_the_transport_s_shortcut_splits_a_url_as_the_full_check_does(base, tail):
    # _known_target serves URLs on an origin already checked, without urlsplit: for any
    # URL it answers, it must give what the full check gives, and refuse what it refuses.
    opstatus._split_url(base + "/", allow_http=True)
    opstatus._origin(opstatus._split_url(base + "/", allow_http=True))  # the origin known
    url = base + tail
    fast = opstatus._known_target(url)
    try:
        parts = opstatus._split_url(url, allow_http=True)
    except opstatus.UnsafeURLError:
        assert fast is None, url
        return
    if fast is not None:
        path = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        assert fast == (opstatus._origin(parts), path, parts.netloc), url
