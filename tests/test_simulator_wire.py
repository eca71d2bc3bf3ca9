"""Issue 14: the simulator's bytes against the service's published examples
and the recorded traffic (2019 and 2021 dialects), one section per point.

A *shape* is a body with each timestamp written ``<time>`` and each UUID
``<uuid>``: the simulator's bytes and the recording's must have the same
shape, key order and spacing included (the service writes compact JSON).
The recordings are quoted from ``shared/docs/face-operations.md``; the
examples from Azure/azure-rest-api-specs,
``specification/cognitiveservices/data-plane/Face/stable/v1.0/examples``.
"""

import json
import re
import socket
import urllib.error
import urllib.request
import uuid

import pytest

import opstatus
from opstatus import Status, parse_datetime

WIRE_TIME = re.compile(rb'"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,7})?Z"')
UUID = re.compile(rb"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
DIALECTS = pytest.mark.parametrize("sim", [{"dialect": "2019"}, {"dialect": "2021"}],
                                   indirect=True, ids=["2019", "2021"])
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

#: Recorded 2019 (v1.0) status of a take that has not started.
RECORDED_2019_NOT_STARTED = (
    b'{"CreatedTime":"2019-05-16T04:15:15.2959673Z","LastActionTime":'
    b'"2019-05-16T04:15:15.2959673Z","Message":null,"ResourceLocation":null,'
    b'"Status":"notStarted"}')
#: Recorded 2021 (v1.0-preview) status of a running take.
RECORDED_2021_RUNNING = (
    b'{"status":"running","createdTime":"2021-06-08T22:28:33.5402214Z",'
    b'"lastActionTime":"2021-06-08T22:28:33.5793888Z","resourceLocation":"/snapshots/"}')
#: examples/TakeSnapshot.json: the request body (its 202 has an empty body).
TAKE_EXAMPLE = {"type": "FaceList", "objectId": "source-face-list-id",
                "applyScope": ["35230F59-AA9C-45E0-AB5E-C859BF1A5429",
                               "64084E07-9B7F-4A98-BEA4-9986D3A1EDEB"],
                "userData": "User-provided data attached to the snapshot."}
#: examples/GetSnapshot.json: the 200 body.
GET_SNAPSHOT_EXAMPLE = {
    "id": "e58b3f08-1e8b-4165-81df-aa9858f233dc",
    "account": "/subscriptions/f9b96b36-1f5e-4021-8959-51527e26e6d3/resourceGroups/TestRG/"
               "providers/Microsoft.CognitiveServices/accounts/FaceTest01",
    "type": "FaceList",
    "applyScope": ["35230F59-AA9C-45E0-AB5E-C859BF1A5429",
                   "64084E07-9B7F-4A98-BEA4-9986D3A1EDEB"],
    "userData": "User-provided data attached to the snapshot.",
    "createdTime": "2018-12-25T11:41:02.2331413Z",
    "lastUpdateTime": "2018-12-25T11:51:27.8705696Z"}
#: examples/UpdateSnapshot.json: the request body (its 200 has an empty body).
UPDATE_EXAMPLE = {"applyScope": ["64084E07-9B7F-4A98-BEA4-9986D3A1EDEB"],
                  "userData": "User-provided data attached to the snapshot."}
ACCOUNT = re.compile(r"/subscriptions/[0-9a-f-]{36}/resourceGroups/[^/]+/providers/"
                     r"Microsoft\.CognitiveServices/accounts/[^/]+")


class Raw:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def header(self, name):
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return values[0] if values else None

    def names(self):
        return [k.lower() for k, _ in self.headers]

    def json(self):
        return json.loads(self.body.decode("utf-8"))


def fetch(sim, method, path, doc=None, key=True, raw_body=None):
    headers = {"Ocp-Apim-Subscription-Key": sim.key} if key else {}
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


def shape(body):
    return UUID.sub(b"<uuid>", WIRE_TIME.sub(b'"<time>"', body))


def take(sim, object_id="pg", object_type="PersonGroup", base="/face/v1.0", **extra):
    sim.add_object(object_type, object_id)
    doc = {"type": object_type, "objectId": object_id, "applyScope": [sim.subscription]}
    doc.update(extra)
    answer = fetch(sim, "POST", base + "/snapshots", doc)
    assert answer.status == 202, answer.body
    return answer


def status_of(sim, location, base="/face/v1.0"):
    answer = fetch(sim, "GET", base + location)
    assert answer.status == 200, answer.body
    assert answer.header("Content-Type") == "application/json; charset=utf-8"
    return answer


def finished_take(sim, clock, **kwargs):
    location = take(sim, **kwargs).header("Operation-Location")
    clock.advance(sim.queue_seconds + sim.take_seconds + 0.1)
    status = opstatus.OperationStatus.from_json(status_of(sim, location).body)
    assert status.snapshot_id
    return status.snapshot_id


def assert_json_error(answer, status, code, message):
    assert answer.status == status
    assert answer.header("Content-Type") == "application/json; charset=utf-8"
    expected = json.dumps({"error": {"code": code, "message": message}},
                          separators=(",", ":")).encode("utf-8")
    assert answer.body == expected


###############################################################################
# 1. 2021 apply before success: the source snapshot as resourceLocation
###############################################################################


@pytest.mark.parametrize("sim", [{"dialect": "2021"}], indirect=True)
def test_2021_apply_before_success_names_the_source_snapshot(sim, fake_clock):
    snapshot_id = finished_take(sim, fake_clock)
    location = opstatus.apply_snapshot(sim.endpoint, sim.key, snapshot_id, object_id="target")
    expected_running = RECORDED_2021_RUNNING.replace(
        b'"/snapshots/"', b'"/snapshots/' + snapshot_id.encode() + b'"')
    for status, advance in (("notStarted", 0.0), ("running", sim.queue_seconds + 0.1)):
        fake_clock.advance(advance)
        raw = status_of(sim, location).body
        assert shape(raw) == shape(expected_running.replace(b'"running"',
                                                            b'"%s"' % status.encode()))
        assert json.loads(raw)["resourceLocation"] == "/snapshots/" + snapshot_id
        # the model's rule: ids only after success, whatever the placeholder
        st = opstatus.OperationStatus.from_json(raw)
        assert st.resource_location == "/snapshots/" + snapshot_id
        assert (st.resource, st.snapshot_id, st.target_id) == (None, None, None)
    fake_clock.advance(sim.apply_seconds)
    st = opstatus.OperationStatus.from_json(status_of(sim, location).body)
    assert st.status is Status.SUCCEEDED
    assert (st.target_id, st.snapshot_id) == ("target", None)
    assert st.resource_location == "/persongroup/target"


###############################################################################
# 2. 2019 take before success and on failure: "ResourceLocation": null
###############################################################################


@pytest.mark.parametrize("sim", [{"dialect": "2019"}], indirect=True)
def test_2019_take_before_success_has_a_null_resource_location(sim, fake_clock):
    location = take(sim).header("Operation-Location")
    raw = status_of(sim, location).body
    assert shape(raw) == shape(RECORDED_2019_NOT_STARTED)
    fake_clock.advance(sim.queue_seconds + 0.1)
    raw = status_of(sim, location).body
    assert shape(raw) == shape(RECORDED_2019_NOT_STARTED.replace(b"notStarted", b"running"))


@pytest.mark.parametrize("sim", [{"dialect": "2019"}], indirect=True)
def test_2019_failed_take_has_a_null_resource_location(sim, fake_clock):
    sim.fail = "Source object was modified."
    location = take(sim).header("Operation-Location")
    fake_clock.advance(sim.queue_seconds + sim.take_seconds + 0.1)
    raw = status_of(sim, location).body
    expected = RECORDED_2019_NOT_STARTED.replace(b'"Message":null',
                                                 b'"Message":"Source object was modified."')
    assert shape(raw) == shape(expected.replace(b"notStarted", b"failed"))


###############################################################################
# 3. A take of an object that does not exist: 404 with the type's code
###############################################################################


@pytest.mark.parametrize("object_type, code, message", [
    ("PersonGroup", "PersonGroupNotFound", "Person group is not found."),
    ("LargePersonGroup", "LargePersonGroupNotFound", "Large person group is not found."),
    ("FaceList", "FaceListNotFound", "Face list is not found."),
    ("LargeFaceList", "LargeFaceListNotFound", "Large face list is not found."),
])
@DIALECTS
def test_take_of_a_missing_object_is_404_by_default(sim, object_type, code, message):
    doc = dict(TAKE_EXAMPLE, type=object_type)
    answer = fetch(sim, "POST", "/face/v1.0/snapshots", doc)
    assert_json_error(answer, 404, code, message)
    assert sim.operations == {}
    sim.add_object(object_type, doc["objectId"])
    answer = fetch(sim, "POST", "/face/v1.0/snapshots", doc)
    assert answer.status == 202 and answer.body == b""


def test_objects_can_be_made_at_construction_or_not_required(fake_clock):
    doc = dict(TAKE_EXAMPLE)
    with opstatus.Simulator(clock=fake_clock,
                            objects=[("FaceList", "source-face-list-id")]) as sim:
        assert fetch(sim, "POST", "/face/v1.0/snapshots", doc).status == 202
        other = dict(doc, objectId="another")
        assert fetch(sim, "POST", "/face/v1.0/snapshots", other).status == 404
    with opstatus.Simulator(clock=fake_clock, require_objects=False) as sim:
        assert fetch(sim, "POST", "/face/v1.0/snapshots", doc).status == 202


def test_an_applied_target_exists_for_a_later_take(sim, fake_clock):
    snapshot_id = finished_take(sim, fake_clock)
    opstatus.apply_snapshot(sim.endpoint, sim.key, snapshot_id, object_id="copy")
    doc = {"type": "PersonGroup", "objectId": "copy", "applyScope": [sim.subscription]}
    assert fetch(sim, "POST", "/face/v1.0/snapshots", doc).status == 202


def test_serve_options_for_objects():
    parser = opstatus._build_parser()[0]
    args = parser.parse_args(["serve"])
    assert args.require_objects is True and not args.objects
    args = parser.parse_args(["serve", "--no-require-objects", "--object", "PersonGroup:g1",
                              "--object", "largefacelist:l_2"])
    assert args.require_objects is False
    assert args.objects == [("PersonGroup", "g1"), ("largefacelist", "l_2")]


@pytest.mark.parametrize("value", ["PersonGroup", "Person:g", "PersonGroup:G", "PersonGroup:"])
def test_serve_object_option_is_checked(value, capsys):
    with pytest.raises(SystemExit) as info:
        opstatus._build_parser()[0].parse_args(["serve", "--object", value])
    assert info.value.code == 2
    assert "TYPE:ID" in capsys.readouterr().err


###############################################################################
# 4. Repeated applyScope ids: 400 BadArgument
###############################################################################


@pytest.mark.parametrize("scope", [
    ["35230F59-AA9C-45E0-AB5E-C859BF1A5429", "35230F59-AA9C-45E0-AB5E-C859BF1A5429"],
    ["35230F59-AA9C-45E0-AB5E-C859BF1A5429", "35230f59-aa9c-45e0-ab5e-c859bf1a5429"],
], ids=["same", "letter-case"])
def test_repeated_apply_scope_ids_are_400(sim, scope):
    sim.add_object("FaceList", "source-face-list-id")
    answer = fetch(sim, "POST", "/face/v1.0/snapshots", dict(TAKE_EXAMPLE, applyScope=scope))
    assert_json_error(answer, 400, "BadArgument", "Apply scope has duplicate subscription ids.")
    assert sim.operations == {}
    # the published example (two different ids) is accepted
    assert fetch(sim, "POST", "/face/v1.0/snapshots", TAKE_EXAMPLE).status == 202


def test_repeated_apply_scope_ids_are_400_on_update_too(sim, fake_clock):
    snapshot_id = finished_take(sim, fake_clock)
    path = "/face/v1.0/snapshots/" + snapshot_id
    scope = UPDATE_EXAMPLE["applyScope"] * 2
    answer = fetch(sim, "PATCH", path, dict(UPDATE_EXAMPLE, applyScope=scope))
    assert_json_error(answer, 400, "BadArgument", "Apply scope has duplicate subscription ids.")
    assert fetch(sim, "GET", path).json()["applyScope"] == [sim.subscription]


###############################################################################
# 5. Throttling: the wait in the text, no Retry-After unless asked
###############################################################################


@pytest.mark.parametrize("sim, text", [
    ({"dialect": "2019"}, "Rate limit is exceeded. Try again in 2 seconds."),
    ({"dialect": "2021"}, "Rate limit is exceeded. Please retry after 2 second(s)."),
], indirect=["sim"], ids=["2019", "2021"])
def test_429_carries_the_wait_in_its_text_only(sim, text, fake_clock):
    sim.rate_limit, sim.rate_limit_seconds = 1, 2
    answer = fetch(sim, "GET", "/face/v1.0/snapshots")
    assert_json_error(answer, 429, "429", text)
    assert "retry-after" not in answer.names()
    assert opstatus.parse_retry_after({}, answer.body.decode("utf-8")) == 2.0
    # a poller waits what the text says, in either wording
    sim.take_seconds = 0.0
    location = take(sim).header("Operation-Location")
    sim.rate_limit = 2
    opstatus.poll(location, endpoint=sim.endpoint, key=sim.key, clock=fake_clock,
                  sleep=fake_clock.sleep, random=lambda: 0.5)
    assert fake_clock.sleeps[:2] == [2.0, 2.0]


@DIALECTS
def test_retry_after_header_on_429_is_an_option(sim):
    sim.rate_limit, sim.rate_limit_retry_after = 1, 7
    answer = fetch(sim, "GET", "/face/v1.0/snapshots")
    assert answer.status == 429 and answer.header("Retry-After") == "7"


@pytest.mark.parametrize("body, expected", [
    ("Rate limit is exceeded. Please retry after 3 second(s).", 3.0),
    ("Please retry after 1 second.", 1.0),
    ("please RETRY AFTER 12 seconds", 12.0),
    ('{"error":{"code":"429","message":"Please retry after 26 second(s)."}}', 26.0),
    ("Please retry after 5 minutes.", None),
    ("Please retry after -1 second(s).", None),
    ("Please retry after \u0661 second(s).", None),
])
def test_parse_retry_after_reads_the_2021_wording(body, expected):
    assert opstatus.parse_retry_after({}, body) == expected


###############################################################################
# 6. PATCH /snapshots/{id} updates lastUpdateTime
###############################################################################


def test_update_changes_last_update_time(sim, fake_clock):
    snapshot_id = finished_take(sim, fake_clock)
    path = "/face/v1.0/snapshots/" + snapshot_id
    before = fetch(sim, "GET", path).json()
    fake_clock.advance(60.0)
    answer = fetch(sim, "PATCH", path, UPDATE_EXAMPLE)
    assert (answer.status, answer.body, answer.header("Content-Length")) == (200, b"", "0")
    after = fetch(sim, "GET", path).json()
    assert after["createdTime"] == before["createdTime"]
    assert after["lastUpdateTime"] == opstatus._wire_time(sim.wall())
    moved = parse_datetime(after["lastUpdateTime"]) - parse_datetime(before["lastUpdateTime"])
    assert moved.total_seconds() == pytest.approx(60.1, abs=1e-6)  # 0.1 s after it ended
    assert after["applyScope"] == UPDATE_EXAMPLE["applyScope"]


###############################################################################
# 7. Error texts, and JSON errors for every method and path
###############################################################################


@pytest.mark.parametrize("doc, raw, message", [
    (None, b'{"type": "PersonGroup",', "JSON parsing error."),
    (dict(TAKE_EXAMPLE, userData="u" * 16385), None, "'userData' is too long."),
    (dict(TAKE_EXAMPLE, objectId="Upper"), None, "Face list ID is invalid."),
    ("a string", None, "Request body is invalid."),
])
def test_documented_error_messages(sim, doc, raw, message):
    answer = fetch(sim, "POST", "/face/v1.0/snapshots", doc, raw_body=raw)
    assert_json_error(answer, 400, "BadArgument", message)


def test_user_data_of_the_limit_is_accepted(sim):
    answer = take(sim, userData="u" * 16384)
    assert answer.status == 202


@pytest.mark.parametrize("method, path, allow", [
    ("PUT", "/face/v1.0/snapshots", "GET, POST"),
    ("DELETE", "/face/v1.0/operations/6f1b2c3d-0000-4000-8000-000000000001", "GET"),
    ("GET", "/face/v1.0/snapshots/x/apply", "POST"),
    ("FROBNICATE", "/face/v1.0/snapshots", "GET, POST"),
    ("OPTIONS", "/face/v1.0/snapshots/x", "DELETE, GET, PATCH"),
])
def test_an_unsupported_method_is_405_in_json(sim, method, path, allow):
    answer = fetch(sim, method, path)
    assert_json_error(answer, 405, "405", "Method not allowed")
    assert answer.header("Allow") == allow


@pytest.mark.parametrize("method", ["PUT", "FROBNICATE", "GET"])
def test_an_unknown_path_is_404_in_json(sim, method):
    answer = fetch(sim, method, "/face/v1.0/persongroups/x")
    assert_json_error(answer, 404, "404", "Resource not found")


@pytest.mark.parametrize("request_line", [
    b"GET /face/v1.0/snapshots HTTP/1.1 extra\r\n",
    b"GET /face/v1.0/snapshots HTTP/7.1\r\n",
    b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n",
], ids=["three-words", "version", "too-long"])
def test_a_malformed_request_gets_a_json_error_not_html(sim, request_line):
    port = int(sim.endpoint.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request_line + b"Host: x\r\n\r\n")
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.split(b" ")[1] in (b"400", b"414", b"505"), head
    assert b"content-type: application/json; charset=utf-8" in head.lower()
    doc = json.loads(body.decode("utf-8"))
    assert set(doc) == {"error"} and set(doc["error"]) == {"code", "message"}
    assert b"<html" not in data.lower() and b"<!doctype" not in data.lower()


###############################################################################
# 8. A snapshot's account is its ARM resource path
###############################################################################


@DIALECTS
def test_snapshot_has_the_shape_of_the_published_example(sim, fake_clock):
    sim.add_object("FaceList", "source-face-list-id")
    location = fetch(sim, "POST", "/face/v1.0/snapshots", TAKE_EXAMPLE).header(
        "Operation-Location")
    fake_clock.advance(sim.queue_seconds + sim.take_seconds + 0.1)
    snapshot_id = opstatus.OperationStatus.from_json(status_of(sim, location).body).snapshot_id
    answer = fetch(sim, "GET", "/face/v1.0/snapshots/" + snapshot_id)
    assert answer.status == 200
    example = json.dumps(GET_SNAPSHOT_EXAMPLE, separators=(",", ":")).encode("utf-8")
    # the account path has the same shape: mask its names on both sides
    mask = re.compile(rb'/resourceGroups/[^/"]+/providers/Microsoft\.CognitiveServices/'
                      rb'accounts/[^/"]+')
    assert mask.sub(b"<rg-account>", shape(answer.body)) == mask.sub(b"<rg-account>",
                                                                     shape(example))
    doc = answer.json()
    assert ACCOUNT.fullmatch(doc["account"]) and sim.subscription in doc["account"]
    assert list(doc) == list(GET_SNAPSHOT_EXAMPLE)
    listed = fetch(sim, "GET", "/face/v1.0/snapshots?type=FaceList&applyScope="
                   "64084E07-9B7F-4A98-BEA4-9986D3A1EDEB")
    assert listed.json() == [doc]


def test_account_can_be_chosen():
    account = ("/subscriptions/f9b96b36-1f5e-4021-8959-51527e26e6d3/resourceGroups/TestRG/"
               "providers/Microsoft.CognitiveServices/accounts/FaceTest01")
    assert opstatus.Simulator(account=account).account == account


###############################################################################
# 9. Details: the -preview base, compact JSON, times, headers, key order
###############################################################################


@pytest.mark.parametrize("sim", [{"dialect": "2021"}], indirect=True)
def test_the_preview_base_serves_the_whole_flow(sim, fake_clock):
    base = "/face/v1.0-preview"
    location = take(sim, base=base).header("operation-location")
    raw = status_of(sim, location, base=base).body
    assert json.loads(raw)["status"] == "notStarted"
    fake_clock.advance(sim.queue_seconds + 0.1)
    assert shape(status_of(sim, location, base=base).body) == shape(RECORDED_2021_RUNNING)
    fake_clock.advance(sim.take_seconds)
    st = opstatus.OperationStatus.from_json(status_of(sim, location, base=base).body)
    assert fetch(sim, "GET", base + "/snapshots/" + st.snapshot_id).status == 200
    # the client follows it too
    endpoint = sim.endpoint + base
    loc = opstatus.take_snapshot(endpoint, sim.key, object_type="PersonGroup", object_id="pg",
                                 apply_scope=[sim.subscription], plugins=False)
    final = opstatus.poll(loc, endpoint=endpoint, key=sim.key, clock=fake_clock,
                          sleep=fake_clock.sleep, random=lambda: 0.5, plugins=False)
    assert final.status is Status.SUCCEEDED


@DIALECTS
def test_bodies_are_compact_json(sim, fake_clock):
    snapshot_id = finished_take(sim, fake_clock, userData="a, b: c")
    for path in ("/face/v1.0/snapshots", "/face/v1.0/snapshots/" + snapshot_id,
                 "/face/v1.0/operations/" + next(iter(sim.operations))):
        body = fetch(sim, "GET", path).body
        assert body == json.dumps(json.loads(body), separators=(",", ":")).encode("utf-8")
    error = fetch(sim, "GET", "/face/v1.0/operations/x").body
    assert b", " not in error and b": " not in error


@pytest.mark.parametrize("sim", [{"dialect": "2021"}], indirect=True)
def test_2021_not_started_last_action_is_a_little_after_created(sim, fake_clock):
    location = take(sim).header("operation-location")
    doc = status_of(sim, location).json()
    assert doc["status"] == "notStarted"
    gap = parse_datetime(doc["lastActionTime"]) - parse_datetime(doc["createdTime"])
    assert 0 < gap.total_seconds() < 0.1  # recorded: 39 ms


@pytest.mark.parametrize("sim", [{"dialect": "2019"}], indirect=True)
def test_2019_202_headers(sim):
    answer = take(sim)
    assert answer.body == b""
    assert answer.header("Cache-Control") == "no-cache"
    assert answer.header("Pragma") == "no-cache"
    assert answer.header("Expires") == "-1"
    assert "csp-billing-usage" not in answer.names()
    assert "Operation-Location" in [k for k, _ in answer.headers]


@pytest.mark.parametrize("sim", [{"dialect": "2021"}], indirect=True)
def test_2021_202_headers(sim, fake_clock):
    answer = take(sim)
    assert answer.body == b""
    assert answer.header("CSP-Billing-Usage") == "CognitiveServices.Face.Transaction=1"
    assert "expires" not in answer.names() and "pragma" not in answer.names()
    assert "operation-location" in [k for k, _ in answer.headers]
    snapshot_id = finished_take(sim, fake_clock, object_id="other")
    applied = fetch(sim, "POST", "/face/v1.0/snapshots/%s/apply" % snapshot_id,
                    {"objectId": "target-face-list-id", "mode": "CreateNew"})
    assert applied.status == 202
    assert applied.header("CSP-Billing-Usage") == "CognitiveServices.Face.Transaction=1"


@pytest.mark.parametrize("sim", [{"dialect": "2021"}], indirect=True)
def test_2021_key_order(sim, fake_clock):
    location = take(sim).header("operation-location")
    fake_clock.advance(sim.queue_seconds + sim.take_seconds + 0.1)
    assert list(status_of(sim, location).json()) == [
        "status", "createdTime", "lastActionTime", "finishedTime", "resourceLocation"]
    sim.fail = "Snapshot failed."
    location = take(sim, object_id="failing").header("operation-location")
    fake_clock.advance(sim.queue_seconds + sim.take_seconds + 0.1)
    assert list(status_of(sim, location).json()) == [
        "status", "createdTime", "lastActionTime", "finishedTime", "resourceLocation",
        "message"]


@pytest.mark.parametrize("sim", [{"dialect": "2019"}], indirect=True)
def test_2019_key_order_is_the_recorded_one(sim, fake_clock):
    location = take(sim).header("Operation-Location")
    for _ in range(3):
        doc = status_of(sim, location).json()
        assert list(doc) == list(json.loads(RECORDED_2019_NOT_STARTED))
        fake_clock.advance(1.0)
