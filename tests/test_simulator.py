"""The Face simulator: what it puts on the wire, read with urllib directly.

The simulator runs on the test's fake clock (the ``sim`` fixture), so the
life of an operation is walked through by moving the clock, not by sleeping.
"""

import json
import re
import socket
import statistics
import time
import urllib.error
import urllib.request
import uuid

import pytest

import opstatus
from opstatus import HTTPError, Status, parse_datetime

OP_PATH = re.compile(r"/operations/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
WIRE_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,7})?Z")
DIALECTS = pytest.mark.parametrize("sim", [{"dialect": "2019"}, {"dialect": "2021"}],
                                   indirect=True, ids=["2019", "2021"])
KEYS_2019 = {"CreatedTime", "LastActionTime", "Message", "ResourceLocation", "Status"}
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Raw:
    """A response as it came: status, headers with their wire spelling, body bytes."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name):
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return values[0] if values else None

    def json(self):
        return json.loads(self.body.decode("utf-8"))


def fetch(sim, method, path, doc=None, key=True, raw_body=None):
    headers = {}
    if key is True:
        headers["Ocp-Apim-Subscription-Key"] = sim.key
    elif key is not None:
        headers["Ocp-Apim-Subscription-Key"] = key
    data = raw_body
    if doc is not None:
        data = json.dumps(doc).encode("utf-8")
        headers["Content-Type"] = "application/json; charset=utf-8"
    request = urllib.request.Request(sim.endpoint + path, data=data, headers=headers,
                                     method=method)
    try:
        with _OPENER.open(request, timeout=5) as response:
            return Raw(response.status, response.getheaders(), response.read())
    except urllib.error.HTTPError as exc:
        try:
            return Raw(exc.code, list(exc.headers.items()), exc.read())
        finally:
            exc.close()


def start_take(sim, object_id="pg", object_type="PersonGroup", **extra):
    sim.add_object(object_type, object_id)
    doc = {"type": object_type, "objectId": object_id, "applyScope": [sim.subscription]}
    doc.update(extra)
    answer = fetch(sim, "POST", "/face/v1.0/snapshots", doc)
    assert answer.status == 202, answer.body
    return answer


def op_doc(sim, location):
    answer = fetch(sim, "GET", "/face/v1.0" + location)
    assert answer.status == 200, answer.body
    assert answer.header("Content-Type") == "application/json; charset=utf-8"
    return answer


def finish_take(sim, fake_clock, **kwargs):
    """Take a snapshot and let it finish: (location, snapshot id)."""
    location = start_take(sim, **kwargs).header("Operation-Location")
    fake_clock.advance(sim.queue_seconds + sim.take_seconds + 0.1)
    doc = op_doc(sim, location).json()
    path = doc.get("resourceLocation", doc.get("ResourceLocation"))
    assert path.startswith("/snapshots/") and len(path) > len("/snapshots/")
    return location, path[len("/snapshots/"):]


def fractional_digits(stamp):
    match = WIRE_TIME.fullmatch(stamp)
    assert match, stamp
    return len(match.group(1) or ".") - 1


###############################################################################
# Keys and paths
###############################################################################


@pytest.mark.parametrize("key", [None, "", "wrong-key"], ids=["missing", "empty", "wrong"])
@pytest.mark.parametrize("method, path", [("GET", "/face/v1.0/operations/x"),
                                          ("POST", "/face/v1.0/snapshots"),
                                          ("GET", "/face/v1.0/snapshots")])
def test_wrong_or_missing_key_is_401_with_the_service_message(sim, key, method, path):
    doc = {"type": "PersonGroup", "objectId": "pg", "applyScope": [sim.subscription]} \
        if method == "POST" else None
    answer = fetch(sim, method, path, doc, key=key)
    assert answer.status == 401
    error = answer.json()["error"]
    assert error["code"] == "401"
    assert error["message"].startswith(
        "Access denied due to invalid subscription key or wrong API endpoint.")
    assert sim.operations == {}


def test_the_key_is_random_and_can_be_chosen():
    a, b = opstatus.Simulator(), opstatus.Simulator()
    assert a.key != b.key and len(a.key) >= 16
    assert opstatus.Simulator(key="mine").key == "mine"
    assert a.subscription != b.subscription
    uuid.UUID(a.subscription)


@pytest.mark.parametrize("path", ["/snapshots", "/face/v2.0/snapshots", "/face/v1.0/nope",
                                  "/face/v1.0/operations", "/face/v1.0-preview2/snapshots",
                                  "/face/v1.0-preview/nope"])
def test_unknown_paths_are_404(sim, path):
    answer = fetch(sim, "GET", path)
    assert answer.status == 404
    assert answer.json() == {"error": {"code": "404", "message": "Resource not found"}}


@pytest.mark.parametrize("sim", [{"api_path": "/face/v1.0-preview"}], indirect=True)
def test_api_path_moves_the_api(sim):
    assert fetch(sim, "GET", "/face/v1.0-preview/snapshots").status == 200
    assert fetch(sim, "GET", "/face/v1.0/snapshots").status == 404


def test_unknown_operation_is_404(sim):
    answer = fetch(sim, "GET", "/face/v1.0/operations/%s" % uuid.uuid4())
    assert answer.status == 404
    assert answer.json() == {"error": {"code": "OperationNotFound",
                                       "message": "Operation is not found."}}


def test_requests_are_recorded(sim):
    fetch(sim, "GET", "/face/v1.0/snapshots?type=PersonGroup")
    fetch(sim, "GET", "/face/v1.0/operations/x", key="wrong")
    start_take(sim)
    assert sim.requests == [("GET", "/face/v1.0/snapshots?type=PersonGroup"),
                            ("GET", "/face/v1.0/operations/x"),
                            ("POST", "/face/v1.0/snapshots")]


def test_invalid_dialect_is_refused():
    with pytest.raises(ValueError):
        opstatus.Simulator(dialect="2020")


def test_context_manager_starts_and_stops(fake_clock):
    with opstatus.Simulator(clock=fake_clock) as sim:
        endpoint = sim.endpoint
        assert endpoint.startswith("http://127.0.0.1:")
        assert endpoint in repr(sim)
        assert fetch(sim, "GET", "/face/v1.0/snapshots").status == 200
    assert "stopped" in repr(sim)
    port = int(endpoint.rsplit(":", 1)[1])
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    sim.stop()  # twice is harmless


def test_kept_alive_requests_are_answered_quickly(sim):
    location = start_take(sim).header("Operation-Location")
    url = sim.endpoint + "/face/v1.0" + location
    times = []
    with opstatus.HTTPTransport() as transport:
        for _ in range(7):
            started = time.perf_counter()
            response = transport.send(opstatus.Request(
                "GET", url, {"Ocp-Apim-Subscription-Key": sim.key}))
            times.append(time.perf_counter() - started)
            assert response.status == 200
    assert statistics.median(times) < 0.02, ["%.1f ms" % (t * 1000) for t in times]


###############################################################################
# Take and apply
###############################################################################


@DIALECTS
def test_take_answers_202_with_an_empty_body_and_operation_location(sim):
    answer = start_take(sim)
    assert answer.status == 202
    assert answer.body == b""
    names = [name for name, _ in answer.headers if name.lower() == "operation-location"]
    assert names == ["Operation-Location" if sim.dialect == "2019" else "operation-location"]
    location = answer.header("Operation-Location")
    assert OP_PATH.fullmatch(location)
    assert location[len("/operations/"):] in sim.operations


@pytest.mark.parametrize("doc, message", [
    ({"type": "Person", "objectId": "pg"}, "Snapshot type is invalid."),
    ({"type": "PersonGroup", "objectId": "PG"}, "Person group ID is invalid."),
    ({"type": "PersonGroup", "objectId": "a" * 65}, "Person group ID is invalid."),
    ({"type": "LargeFaceList", "objectId": "a b"}, "Large face list ID is invalid."),
    ({"type": "PersonGroup", "objectId": "pg", "applyScope": []}, "Apply scope is invalid."),
    ({"type": "PersonGroup", "objectId": "pg", "applyScope": ["x"]}, "Apply scope is invalid."),
    ({"type": "PersonGroup", "objectId": "pg", "userData": "u" * 16385},
     "'userData' is too long."),
    ({"type": "PersonGroup", "objectId": "pg", "userData": 5}, "Request body is invalid."),
    ([], "Request body is invalid."),
])
def test_take_refuses_a_bad_body_with_400(sim, doc, message):
    if isinstance(doc, dict):
        doc.setdefault("applyScope", [sim.subscription])
    answer = fetch(sim, "POST", "/face/v1.0/snapshots", doc)
    assert answer.status == 400
    assert answer.json() == {"error": {"code": "BadArgument", "message": message}}
    assert sim.operations == {}


@pytest.mark.parametrize("raw", [b"{not json", b"\xff\xfe", b"[" * 100000])
def test_invalid_json_is_400(sim, raw):
    answer = fetch(sim, "POST", "/face/v1.0/snapshots", raw_body=raw)
    assert answer.status == 400
    assert answer.json() == {"error": {"code": "BadArgument", "message": "JSON parsing error."}}


def test_take_of_a_missing_object_is_404(sim):
    assert sim.require_objects is True  # the default, as on the service
    doc = {"type": "PersonGroup", "objectId": "nobody", "applyScope": [sim.subscription]}
    answer = fetch(sim, "POST", "/face/v1.0/snapshots", doc)
    assert answer.status == 404
    assert answer.json()["error"]["code"] == "PersonGroupNotFound"
    sim.add_object("PersonGroup", "nobody")
    answer = fetch(sim, "POST", "/face/v1.0/snapshots", doc)
    assert answer.status == 202
    sim.require_objects = False
    doc["objectId"] = "anybody"
    answer = fetch(sim, "POST", "/face/v1.0/snapshots", doc)
    assert answer.status == 202


def test_apply_to_an_existing_target_is_409(sim, fake_clock):
    _, snapshot_id = finish_take(sim, fake_clock)
    sim.add_object("PersonGroup", "existing")
    with pytest.raises(HTTPError) as info:
        opstatus.apply_snapshot(sim.endpoint, sim.key, snapshot_id, object_id="existing")
    assert info.value.status == 409
    assert info.value.code == "ConcurrentOperationConflict"
    # a target that an earlier apply creates is taken too
    first = opstatus.apply_snapshot(sim.endpoint, sim.key, snapshot_id, object_id="fresh")
    assert OP_PATH.fullmatch(first)
    with pytest.raises(HTTPError) as info:
        opstatus.apply_snapshot(sim.endpoint, sim.key, snapshot_id, object_id="fresh")
    assert info.value.status == 409


def test_apply_of_an_unknown_snapshot_is_404(sim):
    with pytest.raises(HTTPError) as info:
        opstatus.apply_snapshot(sim.endpoint, sim.key, str(uuid.uuid4()), object_id="t")
    assert info.value.status == 404
    assert info.value.code == "SnapshotNotFound"


def test_apply_with_another_mode_is_400(sim, fake_clock):
    _, snapshot_id = finish_take(sim, fake_clock)
    answer = fetch(sim, "POST", "/face/v1.0/snapshots/%s/apply" % snapshot_id,
                   {"objectId": "t", "mode": "Overwrite"})
    assert answer.status == 400


###############################################################################
# The status documents
###############################################################################


@pytest.mark.parametrize("sim", [{"dialect": "2019"}], indirect=True)
def test_2019_documents(sim, fake_clock):
    location = start_take(sim).header("Operation-Location")
    docs = []
    doc = op_doc(sim, location).json()
    docs.append(doc)
    assert set(doc) == KEYS_2019
    assert doc["Status"] == "notStarted"
    assert doc["Message"] is None  # explicit null
    assert doc["ResourceLocation"] is None  # null until it succeeded, as recorded
    assert doc["LastActionTime"] == doc["CreatedTime"]

    fake_clock.advance(sim.queue_seconds + 0.25)
    doc = op_doc(sim, location).json()
    docs.append(doc)
    assert set(doc) == KEYS_2019
    assert doc["Status"] == "running"
    assert doc["Message"] is None and doc["ResourceLocation"] is None

    fake_clock.advance(sim.take_seconds)
    raw = op_doc(sim, location).body
    assert b'"Message": null' in raw or b'"Message":null' in raw
    doc = json.loads(raw.decode("utf-8"))
    docs.append(doc)
    assert set(doc) == KEYS_2019
    assert doc["Status"] == "succeeded"
    assert re.fullmatch(r"/snapshots/[0-9a-f-]{36}", doc["ResourceLocation"])
    assert doc["Message"] is None
    status = opstatus.OperationStatus.from_json(raw)
    assert status.status is Status.SUCCEEDED and status.snapshot_id in sim.snapshots


@pytest.mark.parametrize("sim", [{"dialect": "2021"}], indirect=True)
def test_2021_documents(sim, fake_clock):
    location = start_take(sim).header("Operation-Location")
    doc = op_doc(sim, location).json()
    assert set(doc) == {"status", "createdTime", "lastActionTime", "resourceLocation"}
    assert doc["status"] == "notStarted"
    assert doc["resourceLocation"] == "/snapshots/"
    # a little after createdTime, as recorded (39 ms)
    gap = parse_datetime(doc["lastActionTime"]) - parse_datetime(doc["createdTime"])
    assert 0 < gap.total_seconds() < 0.1

    fake_clock.advance(sim.queue_seconds + 0.25)
    doc = op_doc(sim, location).json()
    assert set(doc) == {"status", "createdTime", "lastActionTime", "resourceLocation"}
    assert doc["status"] == "running"

    fake_clock.advance(sim.take_seconds)
    doc = op_doc(sim, location).json()
    assert set(doc) == {"status", "createdTime", "lastActionTime", "resourceLocation",
                        "finishedTime"}
    assert doc["status"] == "succeeded"
    assert re.fullmatch(r"/snapshots/[0-9a-f-]{36}", doc["resourceLocation"])
    finished, last = parse_datetime(doc["finishedTime"]), parse_datetime(doc["lastActionTime"])
    assert 0 <= (last - finished).total_seconds() < 0.001  # a few ticks earlier


@DIALECTS
def test_apply_documents(sim, fake_clock):
    _, snapshot_id = finish_take(sim, fake_clock)
    location = opstatus.apply_snapshot(sim.endpoint, sim.key, snapshot_id, object_id="target")
    doc = op_doc(sim, location).json()
    if sim.dialect == "2019":
        assert doc["ResourceLocation"] is None and doc["Status"] == "notStarted"
    else:  # the source snapshot's path, as the 2021 service sent it
        assert doc["resourceLocation"] == "/snapshots/" + snapshot_id
        assert doc["status"] == "notStarted"
    fake_clock.advance(sim.queue_seconds + sim.apply_seconds + 0.1)
    status = opstatus.OperationStatus.from_json(op_doc(sim, location).body)
    assert status.status is Status.SUCCEEDED
    assert status.resource_location == "/persongroup/target"
    assert ("persongroup", "target") in sim.objects


@DIALECTS
def test_failed_documents(sim, fake_clock):
    sim.fail = "Snapshot failed: the source changed."
    location = start_take(sim).header("Operation-Location")
    fake_clock.advance(sim.queue_seconds + sim.take_seconds + 0.1)
    doc = op_doc(sim, location).json()
    if sim.dialect == "2019":
        assert set(doc) == KEYS_2019
        assert (doc["Status"], doc["Message"]) == ("failed", sim.fail)
    else:
        assert (doc["status"], doc["message"]) == ("failed", sim.fail)
        assert "finishedTime" in doc
    assert sim.snapshots == {}


@DIALECTS
def test_timestamps_have_seven_fractional_digits_at_most(sim, fake_clock):
    location = start_take(sim).header("Operation-Location")
    stamps = []
    for step in (0.0, 0.3 + 0.1234567, 0.2, 0.2, 0.2, 1.0):
        fake_clock.advance(step)
        doc = op_doc(sim, location).json()
        stamps += [v for k, v in doc.items() if k.lower().endswith("time")]
    digits = [fractional_digits(s) for s in stamps]
    assert max(digits) == 7, stamps  # .NET ticks, trailing zeros trimmed
    assert all(parse_datetime(s).tzinfo is not None for s in stamps)


@pytest.mark.parametrize("posix, wire", [
    (0.0, "1970-01-01T00:00:00Z"),
    (1.5, "1970-01-01T00:00:01.5Z"),
    (0.1234567, "1970-01-01T00:00:00.1234567Z"),
    (0.00000012, "1970-01-01T00:00:00.0000001Z"),
    (59.99999999, "1970-01-01T00:01:00Z"),  # rounds to whole ticks, carrying
    (1560000000.25, "2019-06-08T13:20:00.25Z"),
])
def test_wire_time(posix, wire):
    assert opstatus._wire_time(posix) == wire


@DIALECTS
def test_last_action_time_increases_while_running(sim, fake_clock):
    location = start_take(sim).header("Operation-Location")
    created = None
    lasts = []
    fake_clock.advance(sim.queue_seconds + 0.01)
    for _ in range(5):
        status = opstatus.OperationStatus.from_json(op_doc(sim, location).body)
        assert status.status is Status.RUNNING
        created = created or status.created_time
        assert status.created_time == created
        lasts.append(status.last_action_time)
        fake_clock.advance(0.15)
    assert all(a < b for a, b in zip(lasts, lasts[1:]))
    assert lasts[0] > created
    assert (lasts[-1] - lasts[0]).total_seconds() == pytest.approx(0.6, abs=1e-5)


###############################################################################
# Snapshots
###############################################################################


def test_get_list_patch_delete_snapshot(sim, fake_clock):
    _, snapshot_id = finish_take(sim, fake_clock, userData="first")
    path = "/face/v1.0/snapshots/" + snapshot_id

    answer = fetch(sim, "GET", path)
    assert answer.status == 200
    snap = answer.json()
    assert snap["id"] == snapshot_id
    assert snap["type"] == "PersonGroup"
    assert snap["applyScope"] == [sim.subscription]
    assert snap["userData"] == "first"
    assert snap["account"] == sim.account
    assert snap["account"].startswith("/subscriptions/%s/resourceGroups/" % sim.subscription)
    assert WIRE_TIME.fullmatch(snap["createdTime"]) and WIRE_TIME.fullmatch(snap["lastUpdateTime"])
    assert not any(k.startswith("_") for k in snap)

    listed = fetch(sim, "GET", "/face/v1.0/snapshots")
    assert listed.status == 200 and listed.json() == [snap]

    other = str(uuid.uuid4())
    fake_clock.advance(5.0)
    patched = fetch(sim, "PATCH", path, {"userData": "second", "applyScope": [other]})
    assert patched.status == 200
    before, snap = snap, fetch(sim, "GET", path).json()
    assert snap["userData"] == "second" and snap["applyScope"] == [other]
    assert snap["createdTime"] == before["createdTime"]
    assert parse_datetime(snap["lastUpdateTime"]) > parse_datetime(before["lastUpdateTime"])

    assert fetch(sim, "DELETE", path).status == 200
    gone = fetch(sim, "GET", path)
    assert gone.status == 404
    assert gone.json()["error"]["code"] == "SnapshotNotFound"
    assert fetch(sim, "DELETE", path).status == 404
    assert fetch(sim, "PATCH", path, {"userData": "x"}).status == 404
    assert fetch(sim, "GET", "/face/v1.0/snapshots").json() == []


def test_list_snapshots_filters_by_type(sim, fake_clock):
    finish_take(sim, fake_clock, object_id="group", object_type="PersonGroup")
    finish_take(sim, fake_clock, object_id="faces", object_type="FaceList")
    listed = fetch(sim, "GET", "/face/v1.0/snapshots?type=FaceList").json()
    assert [s["type"] for s in listed] == ["FaceList"]


def test_a_finished_take_has_its_snapshot_without_being_polled(sim, fake_clock):
    start_take(sim)
    fake_clock.advance(sim.queue_seconds + sim.take_seconds + 0.1)
    listed = fetch(sim, "GET", "/face/v1.0/snapshots").json()
    assert len(listed) == 1


@pytest.mark.parametrize("sim", [{"snapshot_ttl": 100.0}], indirect=True)
def test_snapshot_expires(sim, fake_clock):
    _, snapshot_id = finish_take(sim, fake_clock)
    path = "/face/v1.0/snapshots/" + snapshot_id
    fake_clock.advance(99.0)
    assert fetch(sim, "GET", path).status == 200
    fake_clock.advance(1.5)
    answer = fetch(sim, "GET", path)
    assert answer.status == 404
    assert answer.json()["error"]["code"] == "SnapshotNotFound"
    assert fetch(sim, "GET", "/face/v1.0/snapshots").json() == []
    before = len(sim.requests)
    with pytest.raises(HTTPError) as info:
        opstatus.apply_snapshot(sim.endpoint, sim.key, snapshot_id, object_id="late")
    assert info.value.status == 404
    assert info.value.code == "SnapshotNotFound"
    assert sim.requests[before:] == [("POST", "/face/v1.0/snapshots/%s/apply" % snapshot_id)]


###############################################################################
# Faults
###############################################################################


@pytest.mark.parametrize("retry_after", ["7", None])
@DIALECTS
def test_rate_limit_fault(sim, retry_after):
    assert sim.rate_limit_retry_after is None  # no Face recording has the header
    sim.rate_limit = 2
    sim.rate_limit_retry_after = retry_after
    answers = [fetch(sim, "GET", "/face/v1.0/snapshots") for _ in range(3)]
    assert [a.status for a in answers] == [429, 429, 200]
    text = {"2019": "Rate limit is exceeded. Try again in 1 seconds.",
            "2021": "Rate limit is exceeded. Please retry after 1 second(s)."}[sim.dialect]
    assert answers[0].json() == {"error": {"code": "429", "message": text}}
    assert answers[0].header("Retry-After") == retry_after
    assert sim.rate_limit == 0


def test_rate_limit_comes_after_the_key_check(sim):
    sim.rate_limit = 1
    assert fetch(sim, "GET", "/face/v1.0/snapshots", key="wrong").status == 401
    assert sim.rate_limit == 1
    assert fetch(sim, "GET", "/face/v1.0/snapshots").status == 429


@pytest.mark.parametrize("code", [500, 502, 503, 504])
def test_server_error_fault(sim, code):
    sim.server_errors = 2
    sim.server_error_status = code
    answers = [fetch(sim, "GET", "/face/v1.0/snapshots") for _ in range(3)]
    assert [a.status for a in answers] == [code, code, 200]
    assert answers[0].json()["error"]["message"] == "The service is temporarily unavailable."
    assert sim.server_errors == 0


@pytest.mark.parametrize("sim", [{"fail": "broken", "server_errors": 1, "rate_limit": 1,
                                  "rate_limit_retry_after": "3", "queue_seconds": 2.0,
                                  "take_seconds": 5.0, "apply_seconds": 7.0,
                                  "server_error_status": 502}], indirect=True)
def test_faults_can_be_set_at_construction(sim, fake_clock):
    assert fetch(sim, "GET", "/face/v1.0/snapshots").status == 502
    answer = fetch(sim, "GET", "/face/v1.0/snapshots")
    assert answer.status == 429 and answer.header("Retry-After") == "3"
    location = start_take(sim).header("Operation-Location")
    fake_clock.advance(1.9)
    assert op_doc(sim, location).json()["status"] == "notStarted"
    fake_clock.advance(5.0)
    assert op_doc(sim, location).json()["status"] == "running"
    fake_clock.advance(0.2)
    assert op_doc(sim, location).json()["message"] == "broken"


def test_fail_applies_to_operations_started_after_it_is_set(sim, fake_clock):
    before = start_take(sim, object_id="a").header("Operation-Location")
    sim.fail = "late failure"
    after = start_take(sim, object_id="b").header("Operation-Location")
    fake_clock.advance(10)
    assert op_doc(sim, before).json()["status"] == "succeeded"
    assert op_doc(sim, after).json()["status"] == "failed"


def test_simulator_time_follows_its_clock(sim, fake_clock):
    wall = sim.wall()
    assert sim.now() == fake_clock()
    fake_clock.advance(12.5)
    assert sim.wall() == pytest.approx(wall + 12.5)
    assert abs(wall - time.time()) < 60


###############################################################################
# Many operations (issue 15): a request costs the same with 10 or 10,000
###############################################################################


class _Watched:
    """Stands in for an operation and counts every look at its attributes."""

    looks = 0

    def __init__(self, finish):
        self.finish = finish
        self.on_success = lambda finished: None
        self.fail = None

    def __getattribute__(self, name):
        type(self).looks += 1
        return object.__getattribute__(self, name)


def test_a_request_does_not_look_at_every_operation_held(sim, fake_clock):
    for i in range(10000):
        sim.operations["held-%d" % i] = _Watched(fake_clock() - 1.0)
    _Watched.looks = 0
    for _ in range(3):
        assert fetch(sim, "GET", "/face/v1.0/snapshots").status == 200
    assert _Watched.looks == 0  # a scan would look at each, on every request


def test_settle_examines_only_the_operations_that_are_due(sim, fake_clock):
    done = []
    for i in range(10000):  # held, none due for a long while
        sim._new_operation("take", 1000.0 + i, "/snapshots/%d" % i,
                           lambda finished, i=i: done.append(i))
    location = start_take(sim).header("Operation-Location")  # due after 1.3 s
    before = sim.settle_examined
    for _ in range(5):
        op_doc(sim, location)
    assert sim.settle_examined == before  # nothing due: nothing examined
    fake_clock.advance(sim.queue_seconds + 1000.5)  # the take and the first held one
    assert op_doc(sim, location).json()["status"] == "succeeded"
    assert sim.settle_examined == before + 2
    assert done == [0] and len(sim.snapshots) == 1
    op_doc(sim, location)
    assert sim.settle_examined == before + 2
    fake_clock.advance(10.0)
    fetch(sim, "GET", "/face/v1.0/snapshots")
    assert sim.settle_examined == before + 12 and done == list(range(11))
