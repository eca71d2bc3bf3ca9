"""Resume tokens: Poller.resume_token() / Poller.from_resume_token().

What a token holds (and never holds), the round trip on a fake clock shared
with the Simulator (polls and the schedule's age carried over), and every way
an altered or foreign token is refused. Tokens with a *correct* seal for a
URL that breaks a rule are built with ``opstatus._token_mac``, so that the
URL rules are seen to apply on their own.
"""

import json
import re
import uuid

import pytest

import opstatus
from conftest import FakeClock, gets, take  # noqa: F401
from opstatus import (
    Poller,
    ResumeTokenError,
    Status,
    UnsafeURLError,
    format_datetime,
)

FIELDS = {"type", "version", "url", "endpoint", "createdTime", "status", "polls", "age", "mac"}
#: The operation stays notStarted for a long while: its status document then
#: says nothing of its age (lastActionTime == createdTime), so that the age a
#: poller goes by is the one it carries itself.
QUEUED = {"queue_seconds": 1000.0, "take_seconds": 5.0}


###############################################################################
# Helpers
###############################################################################


def fake_time(clock, rand=0.0):
    return {"clock": clock, "sleep": clock.sleep, "random": lambda: rand, "plugins": False}


def seal(doc, key):
    """*doc* with a correct mac for *key*, as a token."""
    doc = {k: v for k, v in doc.items() if k != "mac"}
    doc["mac"] = opstatus._token_mac(doc, key)
    return json.dumps(doc)


def polled_token(sim, clock, statuses=3):
    """A token from a poller that saw *statuses* statuses; (token, poller)."""
    location = take(sim)
    poller = Poller(location, endpoint=sim.endpoint, key=sim.key, **fake_time(clock))
    with poller:
        for n, _status in enumerate(poller, 1):
            if n == statuses:
                break
    return poller.resume_token(), poller


@pytest.fixture
def token_doc(sim, fake_clock):
    """(the parsed token of a poller that saw 3 statuses, the key)."""
    token, _poller = polled_token(sim, fake_clock)
    return json.loads(token), sim.key


###############################################################################
# What a token holds
###############################################################################


def test_token_is_json_with_the_documented_fields(sim, fake_clock):
    token, poller = polled_token(sim, fake_clock, statuses=3)
    assert isinstance(token, str) and len(token.encode()) < 1024
    doc = json.loads(token)
    assert set(doc) == FIELDS
    assert doc["type"] == "opstatus-resume"
    assert doc["version"] == 1
    assert doc["url"] == poller.url
    assert doc["url"].startswith(sim.endpoint + "/face/v1.0/operations/")
    assert doc["endpoint"] == sim.endpoint
    assert doc["createdTime"] == format_datetime(poller.latest.created_time)
    assert opstatus.parse_datetime(doc["createdTime"]) == poller.latest.created_time
    assert doc["status"] == poller.latest.status.value
    assert doc["polls"] == poller.polls == 3
    assert doc["age"] == pytest.approx(fake_clock.slept, abs=1e-3)  # 0.5 + 0.5 s
    assert doc["age"] == pytest.approx(1.0, abs=1e-3)
    assert re.fullmatch(r"[0-9a-f]{64}", doc["mac"])


def test_token_before_any_poll(sim, fake_clock):
    location = take(sim)
    with Poller(location, endpoint=sim.endpoint, key=sim.key,
                **fake_time(fake_clock)) as poller:
        doc = json.loads(poller.resume_token())
    assert set(doc) == FIELDS
    assert (doc["createdTime"], doc["status"], doc["polls"], doc["age"]) == (None, None, 0, 0)
    assert gets(sim) == []


def test_token_holds_no_key_and_no_header_value(sim, fake_clock):
    location = take(sim)
    secrets = {"Authorization": "Bearer eyJhbGciOi.secret-bearer-value",
               "X-Api-Key": "api-key-value-0123456789",
               "X-Trace": "trace-value-abcdef"}
    with Poller(location, endpoint=sim.endpoint, key=sim.key, headers=secrets,
                **fake_time(fake_clock)) as poller:
        next(iter(poller))
        token = poller.resume_token()
    for value in [sim.key] + list(secrets.values()):
        assert value not in token
        assert value.lower() not in token.lower()
    assert "Bearer" not in token and "Ocp-Apim" not in token
    assert set(json.loads(token)) == FIELDS  # and no header names either


@pytest.mark.parametrize("suffix", ["?sig=sas-signature-value", "?a=1&key=k", "#frag",
                                    "?code=abc#x", "?api-version=1&token=t"])
def test_url_with_a_credential_in_its_query_is_not_put_in_a_token(sim, fake_clock, suffix):
    url = sim.endpoint + "/face/v1.0/operations/%s%s" % (uuid.uuid4(), suffix)
    with Poller(url, endpoint=sim.endpoint, key=sim.key, **fake_time(fake_clock)) as poller:
        with pytest.raises(ValueError, match="query string") as info:
            poller.resume_token()
    assert "sas-signature-value" not in str(info.value)
    assert not isinstance(info.value, ResumeTokenError)


###############################################################################
# Round trip
###############################################################################


@pytest.mark.parametrize("sim", [QUEUED], indirect=True)
def test_round_trip_carries_polls_and_age_over(sim, fake_clock):
    location = take(sim)
    first = Poller(location, endpoint=sim.endpoint, key=sim.key, **fake_time(fake_clock))
    with first:
        for n, status in enumerate(first, 1):
            assert status.status is Status.NOTSTARTED
            if fake_clock.slept >= 30:  # old enough for waits above the floor
                break
    token = first.resume_token()
    doc = json.loads(token)
    assert doc["polls"] == first.polls == n
    age = doc["age"]
    assert age == pytest.approx(fake_clock.slept, abs=1e-3) and age >= 30

    # a fresh poller of the same operation starts from the floor ...
    fresh = Poller(location, endpoint=sim.endpoint, key=sim.key, **fake_time(fake_clock))
    with fresh:
        mark = len(fake_clock.sleeps)
        iterator = iter(fresh)
        next(iterator)
        next(iterator)
        iterator.close()
    assert fake_clock.sleeps[mark:] == [0.5]

    # ... a resumed one from the age the token carries
    resumed = Poller.from_resume_token(token, key=sim.key, **fake_time(fake_clock))
    assert resumed.url == first.url and resumed.polls == n
    mark, requests = len(fake_clock.sleeps), len(gets(sim))
    with resumed:
        statuses = list(resumed)
    sleeps = fake_clock.sleeps[mark:]
    assert sleeps[0] == pytest.approx(0.2 * age, abs=1e-3)  # growth x age, no jitter
    assert sleeps[0] > 5.0
    assert statuses[-1].status is Status.SUCCEEDED
    # polls carried over: the old ones and each one it sent
    assert resumed.polls == n + (len(gets(sim)) - requests) == n + len(statuses)


@pytest.mark.parametrize("stop_after", [1, 4, 12])
def test_resumed_schedule_continues_the_uninterrupted_one(stop_after):
    """The waits before and after a restart are those of a poller that never
    stopped (the resumed one polls once at once, then goes on as it would)."""
    options = {"queue_seconds": 60.0, "take_seconds": 30.0}

    def uninterrupted():
        clock = FakeClock()
        with opstatus.Simulator(clock=clock, **options) as sim:
            with Poller(take(sim), endpoint=sim.endpoint, key=sim.key,
                        **fake_time(clock)) as poller:
                poller.wait()
            return clock.sleeps, poller.polls

    def interrupted():
        clock = FakeClock()
        with opstatus.Simulator(clock=clock, **options) as sim:
            with Poller(take(sim), endpoint=sim.endpoint, key=sim.key,
                        **fake_time(clock)) as first:
                for n, _status in enumerate(first, 1):
                    if n == stop_after:
                        break
            token = first.resume_token()
            with Poller.from_resume_token(token, key=sim.key, **fake_time(clock)) as resumed:
                resumed.wait()
            assert resumed.polls == len(gets(sim))
            return clock.sleeps, resumed.polls

    sleeps, polls = uninterrupted()
    resumed_sleeps, resumed_polls = interrupted()
    assert resumed_sleeps == pytest.approx(sleeps, abs=2e-3)
    assert resumed_polls == polls + 1


@pytest.mark.parametrize("sim", [QUEUED], indirect=True)
def test_age_accumulates_over_several_restarts(sim, fake_clock):
    token, _first = polled_token(sim, fake_clock, statuses=4)
    ages = [json.loads(token)["age"]]
    for _ in range(3):
        with Poller.from_resume_token(token, key=sim.key,
                                      **fake_time(fake_clock)) as poller:
            iterator = iter(poller)
            next(iterator)
            next(iterator)  # after one wait
            iterator.close()
            token = poller.resume_token()
        ages.append(json.loads(token)["age"])
    waits = [b - a for a, b in zip(ages, ages[1:])]
    assert all(w > 0 for w in waits)
    # each wait is growth x the age so far: the age was carried each time
    for age, wait in zip(ages, waits):
        assert wait == pytest.approx(max(0.5, 0.2 * age), abs=2e-3)
    assert json.loads(token)["polls"] == 4 + 3 * 2


def test_resumed_poller_polls_the_same_operation(sim, fake_clock):
    token, first = polled_token(sim, fake_clock, statuses=2)
    before = set(gets(sim))
    with Poller.from_resume_token(token, key=sim.key, **fake_time(fake_clock)) as resumed:
        final = resumed.wait()
    assert final.succeeded and final.created_time == first.latest.created_time
    assert set(gets(sim)) == before  # one path: the same operation


def test_token_without_a_key_resumes_without_one(sim, fake_clock):
    location = take(sim)
    with Poller(location, endpoint=sim.endpoint, **fake_time(fake_clock)) as poller:
        token = poller.resume_token()
    # Unauthenticated, it needs the caller to name the endpoint (issue 10).
    with Poller.from_resume_token(token, endpoint=sim.endpoint,
                                  **fake_time(fake_clock)) as resumed:
        assert resumed.url == poller.url
    with pytest.raises(ResumeTokenError, match="cannot be authenticated"):
        Poller.from_resume_token(token, plugins=False)
    with pytest.raises(ResumeTokenError, match="altered, or sealed with another key"):
        Poller.from_resume_token(token, key=sim.key, plugins=False)


###############################################################################
# Altered and foreign tokens
###############################################################################


def _changed(doc, name, value):
    doc = dict(doc)
    doc[name] = value
    return doc


CHANGES = {
    "url": lambda d: _changed(d, "url", d["url"][:-1] + ("0" if d["url"][-1] != "0" else "1")),
    "url-other-origin": lambda d: _changed(
        d, "url", d["url"].replace("127.0.0.1", "127.0.0.2")),
    "endpoint": lambda d: _changed(d, "endpoint", d["endpoint"] + "/other"),
    "endpoint-null": lambda d: _changed(d, "endpoint", None),
    "createdTime": lambda d: _changed(d, "createdTime", "2001-01-01T00:00:00Z"),
    "status": lambda d: _changed(d, "status", "succeeded"),
    "polls": lambda d: _changed(d, "polls", d["polls"] + 1),
    "polls-zero": lambda d: _changed(d, "polls", 0),
    "age": lambda d: _changed(d, "age", d["age"] + 100),
    "age-int": lambda d: _changed(d, "age", int(d["age"]) + 7),
    "mac-flipped": lambda d: _changed(
        d, "mac", d["mac"][:-1] + ("0" if d["mac"][-1] != "0" else "1")),
    "mac-upper": lambda d: _changed(d, "mac", d["mac"].upper()),
    "mac-empty": lambda d: _changed(d, "mac", ""),
    "mac-of-no-key": lambda d: _changed(d, "mac", opstatus._token_mac(d, None)),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_altered_token_is_refused(token_doc, change):
    doc, key = token_doc
    token = json.dumps(CHANGES[change](doc))
    with pytest.raises(ResumeTokenError, match="altered, or sealed with another key"):
        Poller.from_resume_token(token, key=key, plugins=False)


def test_unaltered_token_is_accepted(token_doc):
    # the control for the test above: the same path with nothing changed
    doc, key = token_doc
    with Poller.from_resume_token(json.dumps(doc), key=key, plugins=False) as poller:
        assert poller.url == doc["url"] and poller.polls == doc["polls"]
    # reordered keys and other whitespace do not matter: the seal is over the values
    reordered = json.dumps(dict(reversed(list(doc.items()))), indent=2)
    with Poller.from_resume_token(reordered, key=key, plugins=False) as poller:
        assert poller.url == doc["url"]


@pytest.mark.parametrize("other", ["another-key-0123456789abcdef", None, "x"])
def test_token_sealed_with_another_key_is_refused(token_doc, other):
    doc, key = token_doc
    with pytest.raises(ResumeTokenError, match="altered, or sealed with another key"):
        Poller.from_resume_token(json.dumps(doc), key=other, plugins=False)


@pytest.mark.parametrize("remove", sorted(FIELDS - {"type", "version"}))
def test_token_with_a_field_removed_is_refused(token_doc, remove):
    doc, key = token_doc
    doc = {k: v for k, v in doc.items() if k != remove}
    token = json.dumps(doc) if remove == "mac" else seal(doc, key)
    with pytest.raises(ResumeTokenError, match="has fields"):
        Poller.from_resume_token(token, key=key, plugins=False)


@pytest.mark.parametrize("extra", [{"key": "k"}, {"headers": {}}, {"Polls": 1}, {"": None}])
def test_token_with_a_field_added_is_refused(token_doc, extra):
    doc, key = token_doc
    doc = dict(doc, **extra)
    for token in (json.dumps(doc), seal(doc, key)):  # however it is sealed
        with pytest.raises(ResumeTokenError, match="has fields"):
            Poller.from_resume_token(token, key=key, plugins=False)


WRONG_TYPES = [
    ("url", 1), ("url", None), ("url", ["x"]),
    ("endpoint", 5), ("endpoint", {}),
    ("createdTime", 5), ("createdTime", True),
    ("status", 1), ("status", False),
    ("polls", "3"), ("polls", 3.0), ("polls", True), ("polls", None),
    ("age", "1"), ("age", None), ("age", True), ("age", [1]),
    ("mac", 5), ("mac", None),
]


@pytest.mark.parametrize("name, value", WRONG_TYPES,
                         ids=["%s=%r" % pair for pair in WRONG_TYPES])
def test_token_field_of_the_wrong_type_is_refused(token_doc, name, value):
    doc, key = token_doc
    doc = _changed(doc, name, value)
    token = json.dumps(doc) if name == "mac" else seal(doc, key)
    with pytest.raises(ResumeTokenError, match="field %s has the wrong type" % name):
        Poller.from_resume_token(token, key=key, plugins=False)


@pytest.mark.parametrize("version", [2, 0, -1, "1", 1.5, None, True])
def test_token_of_another_version_is_refused(token_doc, version):
    doc, key = token_doc
    token = seal(_changed(doc, "version", version), key)
    with pytest.raises(ResumeTokenError, match="version"):
        Poller.from_resume_token(token, key=key, plugins=False)


def test_token_version_2_names_the_versions(token_doc):
    doc, key = token_doc
    with pytest.raises(ResumeTokenError) as info:
        Poller.from_resume_token(seal(_changed(doc, "version", 2), key), key=key,
                                 plugins=False)
    assert str(info.value) == ("resume token version 2 is not supported "
                               "(this is version 1)")


@pytest.mark.parametrize("kind", ["opstatus-resume2", "Opstatus-Resume", "", None, 1,
                                  "azure-core-continuation"])
def test_token_of_another_type_is_refused(token_doc, kind):
    doc, key = token_doc
    token = seal(_changed(doc, "type", kind), key)
    with pytest.raises(ResumeTokenError, match="not an opstatus resume token"):
        Poller.from_resume_token(token, key=key, plugins=False)


@pytest.mark.parametrize("text", ["", " ", "{", "not json", "{'type': 1}", "[]", "null",
                                  "1", '"opstatus-resume"', "{}", "[{}]",
                                  '{"type": NaN}'])
def test_token_that_is_not_a_json_object_is_refused(text):
    with pytest.raises(ResumeTokenError, match="not valid JSON|not an opstatus resume token"):
        Poller.from_resume_token(text, key="k" * 32, plugins=False)


def test_token_with_a_duplicate_field_is_refused(token_doc):
    doc, key = token_doc
    token = json.dumps(doc)[:-1] + ', "polls": 0}'
    with pytest.raises(ResumeTokenError, match="not valid JSON"):
        Poller.from_resume_token(token, key=key, plugins=False)


@pytest.mark.parametrize("name, value", [("polls", -1), ("age", -0.5), ("age", 1e10)])
def test_token_with_an_impossible_schedule_is_refused(token_doc, name, value):
    doc, key = token_doc
    with pytest.raises(ResumeTokenError, match="impossible schedule state"):
        Poller.from_resume_token(seal(_changed(doc, name, value), key), key=key,
                                 plugins=False)


@pytest.mark.parametrize("token", [None, 5, {"type": "opstatus-resume"}, ["x"],
                                   bytearray(b"{}")], ids=["None", "int", "dict", "list",
                                                           "bytearray"])
def test_token_that_is_not_text_is_refused(token):
    with pytest.raises(ResumeTokenError, match="a resume token is a str"):
        Poller.from_resume_token(token, key="k" * 32, plugins=False)


def test_token_as_bytes_is_refused(token_doc):
    doc, key = token_doc
    with pytest.raises(ResumeTokenError, match="a resume token is a str"):
        Poller.from_resume_token(json.dumps(doc).encode("ascii"), key=key, plugins=False)


def test_token_size_limit(token_doc):
    doc, key = token_doc
    token = json.dumps(doc)
    assert opstatus.MAX_TOKEN_BYTES == 4096
    # JSON allows surrounding white space: pad to the limit exactly, then one over
    at_limit = token + " " * (4096 - len(token))
    with Poller.from_resume_token(at_limit, key=key, plugins=False) as poller:
        assert poller.url == doc["url"]
    with pytest.raises(ResumeTokenError, match=r"too large \(4097 bytes, limit 4096\)"):
        Poller.from_resume_token(at_limit + " ", key=key, plugins=False)
    huge = seal(_changed(doc, "createdTime", "x" * 5000), key)
    with pytest.raises(ResumeTokenError, match="too large"):
        Poller.from_resume_token(huge, key=key, plugins=False)


def test_token_over_the_limit_in_utf8_bytes_is_refused(token_doc):
    doc, key = token_doc
    doc = _changed(doc, "status", "\u20ac" * 1500)
    doc["mac"] = opstatus._token_mac(doc, key)
    token = json.dumps(doc, ensure_ascii=False)
    assert len(token) <= 4096 < len(token.encode("utf-8"))
    with pytest.raises(ResumeTokenError, match="too large"):
        Poller.from_resume_token(token, key=key, plugins=False)


###############################################################################
# Origins and URL rules still apply to a correctly sealed token
###############################################################################


def test_explicit_endpoint_of_another_origin_is_refused(token_doc):
    doc, key = token_doc
    token = json.dumps(doc)
    port = int(doc["endpoint"].rsplit(":", 1)[1])
    for other in ("http://127.0.0.1:%d" % (port + 1), "http://localhost:%d" % port,
                  "https://127.0.0.1:%d" % port, "https://example.com"):
        with pytest.raises(ResumeTokenError, match="the token is for"):
            Poller.from_resume_token(token, key=key, endpoint=other, plugins=False)
    # the same origin is fine, with or without the API path
    for same in (doc["endpoint"], doc["endpoint"] + "/face/v1.0", doc["endpoint"] + "/"):
        with Poller.from_resume_token(token, key=key, endpoint=same, plugins=False) as p:
            assert p.url == doc["url"]


def test_sealed_url_on_another_origin_than_its_endpoint_is_refused(token_doc):
    doc, key = token_doc
    forged = _changed(doc, "url", "https://evil.example/face/v1.0/operations/x")
    with pytest.raises(UnsafeURLError, match="another origin"):
        Poller.from_resume_token(seal(forged, key), key=key, plugins=False)


def test_token_without_an_endpoint_and_an_explicit_endpoint_of_another_origin(token_doc):
    doc, key = token_doc
    token = seal(_changed(doc, "endpoint", None), key)
    with Poller.from_resume_token(token, key=key, plugins=False) as poller:
        assert poller.url == doc["url"]  # the URL's own origin is where the key goes
    with pytest.raises(UnsafeURLError, match="another origin"):
        Poller.from_resume_token(token, key=key, endpoint="https://example.com",
                                 plugins=False)


def _foreign(url, endpoint, key="k" * 32):
    doc = {"type": "opstatus-resume", "version": 1, "url": url, "endpoint": endpoint,
           "createdTime": None, "status": None, "polls": 2, "age": 3.5}
    return seal(doc, key), key


def test_plain_http_to_another_host_is_refused_even_with_a_correct_seal():
    token, key = _foreign("http://example.com/face/v1.0/operations/x", "http://example.com")
    with pytest.raises(UnsafeURLError, match="plain http to example.com"):
        Poller.from_resume_token(token, key=key, plugins=False)
    # the same token when plain http is explicitly allowed (no request is sent)
    with Poller.from_resume_token(token, key=key, allow_http=True, plugins=False) as poller:
        assert poller.url == "http://example.com/face/v1.0/operations/x"
        assert poller.polls == 2 and poller._age0 == 3.5
    # and https to that host is fine as it is
    token, key = _foreign("https://example.com/face/v1.0/operations/x", "https://example.com")
    with Poller.from_resume_token(token, key=key, plugins=False) as poller:
        assert poller.polls == 2


def test_plain_http_without_an_endpoint_is_refused_too():
    token, key = _foreign("http://example.com/face/v1.0/operations/x", None)
    with pytest.raises(UnsafeURLError, match="plain http"):
        Poller.from_resume_token(token, key=key, plugins=False)


@pytest.mark.parametrize("url", [
    "https://user:pw@example.com/face/v1.0/operations/x",
    "ftp://example.com/face/v1.0/operations/x",
    "https://example.com/face/v1.0/operations/x y",
    "https://example.com/face/v1.0/operations/\u00e9",
    "//example.com/face/v1.0/operations/x",
    "https://example.com:0/face/v1.0/operations/x",
    "",
])
def test_sealed_token_with_an_unsafe_url_is_refused(url):
    token, key = _foreign(url, None)
    with pytest.raises(UnsafeURLError):
        Poller.from_resume_token(token, key=key, plugins=False)


def test_sealed_token_with_an_unsafe_endpoint_is_refused():
    token, key = _foreign("http://example.com/face/v1.0/operations/x",
                          "http://example.com")
    with pytest.raises(UnsafeURLError):
        Poller.from_resume_token(token, key=key, endpoint="http://example.com",
                                 plugins=False)


def test_resume_token_error_is_a_value_error():
    assert issubclass(ResumeTokenError, opstatus.OpStatusError)
    assert issubclass(ResumeTokenError, ValueError)
    with pytest.raises(ValueError):
        Poller.from_resume_token("{}", key="k" * 32, plugins=False)


def test_messages_never_show_the_key(token_doc):
    doc, key = token_doc
    attempts = [json.dumps(_changed(doc, "polls", 99)), json.dumps(doc)[:-5],
                seal(_changed(doc, "version", 2), key), json.dumps(dict(doc, extra=key))]
    for token in attempts:
        with pytest.raises(ResumeTokenError) as info:
            Poller.from_resume_token(token, key=key, plugins=False)
        assert key not in str(info.value)


@pytest.mark.parametrize("suffix", ["?api-version=2023-07-31", "?a=1"])
def test_url_with_a_plain_query_is_put_in_a_token(sim, fake_clock, suffix):
    # Azure's operation URLs carry api-version: they must be resumable (issue 12).
    url = sim.endpoint + "/face/v1.0/operations/%s%s" % (uuid.uuid4(), suffix)
    with Poller(url, endpoint=sim.endpoint, key=sim.key, **fake_time(fake_clock)) as poller:
        token = poller.resume_token()
    with Poller.from_resume_token(token, key=sim.key, plugins=False) as resumed:
        assert resumed.url == url


def test_a_token_records_a_built_in_vocabulary_and_refuses_a_custom_one(sim, fake_clock):
    url = sim.start_job(kind="arm-async", seconds=5.0)
    with Poller(url, key=sim.key, vocabulary="arm", **fake_time(fake_clock)) as poller:
        token = poller.resume_token()
    assert json.loads(token)["vocabulary"] == "arm"
    with Poller.from_resume_token(token, key=sim.key, **fake_time(fake_clock)) as resumed:
        assert resumed.vocabulary is opstatus.vocabulary("arm")
        assert resumed.wait().succeeded
    with pytest.raises(ResumeTokenError, match="vocabulary"):
        Poller.from_resume_token(token, key=sim.key, vocabulary="azure", plugins=False)
    custom = opstatus.Vocabulary("mine", running=["busy"])
    with Poller(url, key=sim.key, vocabulary=custom, **fake_time(fake_clock)) as poller:
        with pytest.raises(ValueError, match="not a built-in"):
            poller.resume_token()


def test_a_token_of_an_operation_without_a_created_time(sim, fake_clock):
    # ARM Location polling has no status document: no created time to record.
    url = sim.start_job(kind="arm-location", seconds=5.0)
    with Poller(url, key=sim.key, vocabulary="arm", **fake_time(fake_clock)) as poller:
        first = poller.step()
        assert first.status.created_time is None
        doc = json.loads(poller.resume_token())
    assert doc["createdTime"] is None and doc["status"] == "running"
