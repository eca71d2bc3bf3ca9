"""Issue 12: the simulator plays the operations of other Azure services, at
the HTTP level (urllib against the simulator, its clock faked).

- ``azure``: the REST guidelines' status monitor (``Operation-Location``,
  ``status`` notStarted / running / succeeded / failed / canceled,
  ``createdDateTime``, ``lastUpdatedDateTime``, ``error``, ``result``);
  ``read``: the same on Computer Vision Read 3.2's paths (``analyzeResult``).
- ``arm-async``: Resource Manager's ``Azure-AsyncOperation`` status resource
  (``InProgress`` then ``Succeeded`` / ``Failed`` / ``Canceled``).
- ``arm-location``: Resource Manager's ``Location`` polling (bare 202s, then
  the resource, or an error status).
"""

import json
import re
import urllib.error
import urllib.request
import uuid

import pytest

import opstatus
from opstatus import parse_datetime

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
WIRE_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,7})?Z")
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


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


def call(sim, method, url, doc=None, headers=None):
    if url.startswith("/"):
        url = sim.endpoint + url
    sent = {"Ocp-Apim-Subscription-Key": sim.key} if headers is None else headers
    data = None
    if doc is not None:
        data = json.dumps(doc).encode("utf-8")
        sent = dict(sent, **{"Content-Type": "application/json"})
    request = urllib.request.Request(url, data=data, headers=sent, method=method)
    try:
        with _OPENER.open(request, timeout=5) as response:
            return Raw(response.status, response.getheaders(), response.read())
    except urllib.error.HTTPError as exc:
        try:
            return Raw(exc.code, list(exc.headers.items()), exc.read())
        finally:
            exc.close()


def get(sim, url):
    return call(sim, "GET", url)


@pytest.fixture
def quick(sim):
    """The simulator with short operations: queued 0.3 s, running 1 s."""
    sim.queue_seconds, sim.take_seconds = 0.3, 1.0
    return sim


###############################################################################
# azure: the guidelines' status monitor
###############################################################################


def test_azure_job_goes_not_started_running_succeeded(quick, fake_clock):
    sim = quick
    url = sim.start_job("azure")
    assert re.fullmatch(re.escape(sim.endpoint) + "/jobs/" + UUID, url)
    answer = get(sim, url)
    assert answer.status == 200
    assert answer.header("Content-Type") == "application/json; charset=utf-8"
    assert "retry-after" not in answer.names()
    doc = answer.json()
    assert list(doc) == ["status", "createdDateTime", "lastUpdatedDateTime"]
    assert doc["status"] == "notStarted"
    assert WIRE_TIME.fullmatch(doc["createdDateTime"])
    fake_clock.advance(0.5)
    assert get(sim, url).json()["status"] == "running"
    fake_clock.advance(1.0)
    doc = get(sim, url).json()
    assert list(doc) == ["status", "createdDateTime", "lastUpdatedDateTime", "result"]
    assert doc["status"] == "succeeded"
    assert doc["result"] == {"jobId": url.rsplit("/", 1)[1]}
    assert parse_datetime(doc["lastUpdatedDateTime"]) >= parse_datetime(doc["createdDateTime"])


@pytest.mark.parametrize("error, expected", [
    (None, {"code": "InternalServerError", "message": "The job failed."}),
    ("disk full", {"code": "JobFailed", "message": "disk full"}),
    (("InvalidImage", "The image is corrupt."),
     {"code": "InvalidImage", "message": "The image is corrupt."}),
    ({"code": "Timeout", "message": "Too slow."}, {"code": "Timeout", "message": "Too slow."}),
])
def test_azure_job_fails_with_an_error_object(quick, fake_clock, error, expected):
    url = quick.start_job("azure", outcome="failed", error=error, result={"never": "shown"})
    fake_clock.advance(2.0)
    doc = get(quick, url).json()
    assert list(doc) == ["status", "createdDateTime", "lastUpdatedDateTime", "error"]
    assert doc["status"] == "failed" and doc["error"] == expected


def test_azure_job_can_be_canceled(quick, fake_clock):
    url = quick.start_job("azure", outcome="canceled", seconds=0.0, queue_seconds=0.0)
    doc = get(quick, url).json()
    assert doc["status"] == "canceled"
    assert "error" not in doc and "result" not in doc


def test_azure_job_sends_retry_after_when_asked(quick, fake_clock):
    url = quick.start_job("azure", retry_after=3, result=[1, 2])
    assert get(quick, url).header("Retry-After") == "3"
    fake_clock.advance(2.0)
    answer = get(quick, url)
    assert "retry-after" not in answer.names()  # done: nothing to wait for
    assert answer.json()["result"] == [1, 2]


def test_read_analyze_starts_a_read_operation(quick, fake_clock):
    sim = quick
    answer = call(sim, "POST", "/vision/v3.2/read/analyze",
                  {"url": "https://example.com/receipt.png"})
    assert answer.status == 202 and answer.body == b""
    url = answer.header("Operation-Location")
    assert re.fullmatch(re.escape(sim.endpoint) + "/vision/v3.2/read/analyzeResults/" + UUID,
                        url), url
    assert "retry-after" not in answer.names()
    assert get(sim, url).json()["status"] == "notStarted"
    fake_clock.advance(2.0)
    doc = get(sim, url).json()
    # the keys of Read 3.2's published example (GetReadResult)
    assert list(doc) == ["status", "createdDateTime", "lastUpdatedDateTime", "analyzeResult"]
    assert doc["status"] == "succeeded"
    assert {"version", "modelVersion", "readResults"} <= set(doc["analyzeResult"])
    assert doc["analyzeResult"]["readResults"][0]["lines"][0]["text"]
    # an id of another kind is not found here
    other = sim.start_job("azure").rsplit("/", 1)[1]
    assert get(sim, "/vision/v3.2/read/analyzeResults/" + other).status == 404


@pytest.mark.parametrize("query, body, status, error", [
    ("?outcome=failed&seconds=0&queueSeconds=0", None, "failed",
     {"code": "InternalServerError", "message": "The job failed."}),
    ("", {"outcome": "failed", "seconds": 0, "queueSeconds": 0,
          "error": {"code": "E1", "message": "m1"}}, "failed", {"code": "E1", "message": "m1"}),
    ("?kind=azure&outcome=canceled&seconds=0&queueSeconds=0", None, "canceled", None),
    ("?seconds=0&queueSeconds=0", {"result": {"pages": 3}}, "succeeded", None),
    ("?outcome=succeeded&seconds=0&queueSeconds=0", {"outcome": "failed"}, "succeeded", None),
], ids=["query", "body", "canceled", "result", "query-wins"])
def test_post_jobs_starts_an_azure_job(sim, query, body, status, error):
    answer = call(sim, "POST", "/jobs" + query, body)
    assert answer.status == 202 and answer.body == b"", answer.body
    url = answer.header("Operation-Location")
    assert url.startswith(sim.endpoint + "/jobs/")
    doc = get(sim, url).json()
    assert doc["status"] == status
    assert doc.get("error") == error
    if body and "result" in body:
        assert doc["result"] == body["result"]


###############################################################################
# arm-async: Azure-AsyncOperation
###############################################################################


def arm_prefix(sim):
    return "%s/subscriptions/%s/providers/Microsoft.Simulator/locations/local/" % (
        sim.endpoint, sim.subscription)


def test_arm_async_start_answers_202_with_the_headers(sim):
    answer = call(sim, "POST", "/jobs?kind=arm-async")
    assert answer.status == 202 and answer.body == b""
    status_url = answer.header("Azure-AsyncOperation")
    assert re.fullmatch(re.escape(arm_prefix(sim)) + "operationStatuses/(%s)"
                        r"\?api-version=2023-01-01" % UUID, status_url), status_url
    job_id = re.findall(UUID, status_url)[-1]
    assert answer.header("Location") == status_url.replace("operationStatuses",
                                                           "operationResults")
    assert answer.header("Retry-After") == "1"
    assert sim.jobs[job_id].kind == "arm-async"


@pytest.mark.parametrize("outcome, word, error", [
    ("succeeded", "Succeeded", None),
    ("failed", "Failed", {"code": "InternalServerError", "message": "The job failed."}),
    ("canceled", "Canceled", {"code": "Canceled", "message": "The operation was canceled."}),
])
def test_arm_async_status_resource(quick, fake_clock, outcome, word, error):
    sim = quick
    url = sim.start_job("arm-async", outcome=outcome)
    job_id = re.findall(UUID, url)[-1]
    for advance in (0.0, 0.5):  # queued, then running: both InProgress
        fake_clock.advance(advance)
        answer = get(sim, url)
        assert answer.status == 200
        assert answer.header("Retry-After") == "1"  # integer seconds
        doc = answer.json()
        assert list(doc) == ["id", "name", "status", "startTime"]
        assert doc["status"] == "InProgress" and doc["name"] == job_id
        assert doc["id"] == "/subscriptions/%s/providers/Microsoft.Simulator/locations/local/" \
                            "operationStatuses/%s" % (sim.subscription, job_id)
    fake_clock.advance(1.0)
    answer = get(sim, url)
    assert answer.status == 200 and "retry-after" not in answer.names()
    doc = answer.json()
    assert doc["status"] == word
    assert parse_datetime(doc["endTime"]) > parse_datetime(doc["startTime"])
    assert doc.get("error") == error
    assert list(doc) == ["id", "name", "status", "startTime", "endTime"] + (
        ["error"] if error else [])


def test_arm_retry_after_can_be_chosen_or_left_out(sim):
    assert get(sim, sim.start_job("arm-async", retry_after=30)).header("Retry-After") == "30"
    assert "retry-after" not in get(sim, sim.start_job("arm-async", retry_after=None)).names()
    answer = call(sim, "POST", "/jobs?kind=arm-location&retryAfter=600")
    assert answer.header("Retry-After") == "600"


###############################################################################
# arm-location: Location
###############################################################################


def test_arm_location_start_answers_202_with_location(sim):
    answer = call(sim, "POST", "/jobs?kind=arm-location")
    assert answer.status == 202 and answer.body == b""
    assert "azure-asyncoperation" not in answer.names()
    assert re.fullmatch(re.escape(arm_prefix(sim)) + "operationResults/%s"
                        r"\?api-version=2023-01-01" % UUID, answer.header("Location"))
    assert answer.header("Retry-After") == "1"


def test_arm_location_bare_202s_then_the_resource(quick, fake_clock):
    sim = quick
    url = sim.start_job("arm-location", result={"size": 3})
    job_id = re.findall(UUID, url)[-1]
    for advance in (0.0, 0.5):
        fake_clock.advance(advance)
        answer = get(sim, url)
        assert answer.status == 202 and answer.body == b""
        assert "content-type" not in answer.names()
        assert answer.header("Location") == url
        assert answer.header("Retry-After") == "1"
    fake_clock.advance(1.0)
    answer = get(sim, url)
    assert answer.status == 200 and "retry-after" not in answer.names()
    assert answer.json() == {
        "id": "/subscriptions/%s/resourceGroups/opstatus-simulator/providers/"
              "Microsoft.Simulator/jobs/%s" % (sim.subscription, job_id),
        "name": job_id, "type": "Microsoft.Simulator/jobs",
        "properties": {"provisioningState": "Succeeded", "result": {"size": 3}}}


@pytest.mark.parametrize("outcome, error", [
    ("failed", {"code": "QuotaExceeded", "message": "No more widgets."}),
    ("canceled", {"code": "Canceled", "message": "The operation was canceled."}),
])
def test_arm_location_failure_is_an_error_status(quick, fake_clock, outcome, error):
    given = ("QuotaExceeded", "No more widgets.") if outcome == "failed" else None
    url = quick.start_job("arm-location", outcome=outcome, error=given)
    fake_clock.advance(2.0)
    answer = get(quick, url)
    assert answer.status == 400
    assert answer.json() == {"error": error}


def test_an_arm_async_job_answers_at_its_location_too(quick, fake_clock):
    answer = call(quick, "POST", "/jobs?kind=arm-async&seconds=1")
    location = answer.header("Location")
    assert get(quick, location).status == 202
    fake_clock.advance(2.0)
    assert get(quick, location).status == 200
    assert get(quick, answer.header("Azure-AsyncOperation")).json()["status"] == "Succeeded"


###############################################################################
# Errors, keys, the Python API
###############################################################################


@pytest.mark.parametrize("query, message", [
    ("?kind=lro", "kind must be one of azure, read, translator, language, arm-async, arm-location, not 'lro'"),
    ("?outcome=done", "outcome must be one of succeeded, failed, canceled, not 'done'"),
    ("?seconds=-1", "'seconds' must be a non-negative number, not '-1'"),
    ("?seconds=nan", "'seconds' must be a non-negative number, not 'nan'"),
    ("?retryAfter=1.5", "'retryAfter' must be a non-negative integer, not '1.5'"),
])
def test_post_jobs_refuses_bad_options(sim, query, message):
    answer = call(sim, "POST", "/jobs" + query)
    assert answer.status == 400
    assert answer.json() == {"error": {"code": "InvalidRequest", "message": message}}
    assert sim.jobs == {}


def test_unknown_jobs_are_404(sim):
    job_id = str(uuid.uuid4())
    for url in ("/jobs/" + job_id, "/vision/v3.2/read/analyzeResults/" + job_id,
                arm_prefix(sim) + "operationStatuses/" + job_id,
                arm_prefix(sim) + "operationResults/" + job_id):
        answer = get(sim, url)
        assert answer.status == 404
        assert answer.json() == {"error": {"code": "NotFound",
                                           "message": "The operation was not found."}}
    # an azure job is not an ARM one
    azure_id = sim.start_job("azure").rsplit("/", 1)[1]
    assert get(sim, arm_prefix(sim) + "operationStatuses/" + azure_id).status == 404


def test_job_routes_check_the_key(sim):
    url = sim.start_job("arm-async")
    assert call(sim, "GET", url, headers={}).status == 401
    assert call(sim, "GET", url, headers={"Ocp-Apim-Subscription-Key": "x"}).status == 401
    assert call(sim, "POST", "/jobs", headers={}).status == 401
    assert sim.jobs and len(sim.jobs) == 1
    # Resource Manager clients send a bearer token: the key serves as one
    assert call(sim, "GET", url, headers={"Authorization": "Bearer " + sim.key}).status == 200
    assert call(sim, "GET", url, headers={"Authorization": "Bearer nope"}).status == 401
    # not on Face, where the service wants its key header
    assert call(sim, "GET", "/face/v1.0/snapshots",
                headers={"Authorization": "Bearer " + sim.key}).status == 401


def test_job_routes_answer_405_for_other_methods(sim):
    answer = call(sim, "GET", "/jobs")
    assert answer.status == 405 and answer.header("Allow") == "POST"
    assert call(sim, "DELETE", sim.start_job("azure")).status == 405


def test_job_urls_follow_the_host_the_client_used(sim):
    port = sim.endpoint.rsplit(":", 1)[1]
    answer = call(sim, "POST", "http://localhost:%s/jobs" % port)
    assert answer.header("Operation-Location").startswith("http://localhost:%s/jobs/" % port)
    assert sim.start_job("azure", base="https://example.test/").startswith(
        "https://example.test/jobs/")


@pytest.mark.parametrize("kwargs", [
    {"kind": "lro"}, {"outcome": "Succeeded"}, {"seconds": -1}, {"seconds": True},
    {"queue_seconds": float("inf")}, {"retry_after": 1.5}, {"retry_after": -1},
])
def test_start_job_refuses_bad_arguments(sim, kwargs):
    with pytest.raises(ValueError):
        sim.start_job(**kwargs)
    assert sim.jobs == {}


def test_faults_apply_to_jobs_too(sim):
    sim.server_errors, sim.rate_limit = 1, 1
    url = sim.start_job("azure")
    assert get(sim, url).status == 503
    assert get(sim, url).status == 429
    assert get(sim, url).status == 200


def test_face_operations_are_unchanged_beside_jobs(sim, fake_clock):
    sim.start_job("azure")
    sim.add_object("PersonGroup", "pg")
    location = opstatus.take_snapshot(sim.endpoint, sim.key, object_type="PersonGroup",
                                      object_id="pg", apply_scope=[sim.subscription],
                                      plugins=False)
    assert re.fullmatch("/operations/" + UUID, location)
    assert location[len("/operations/"):] not in sim.jobs
    assert get(sim, "/face/v1.0" + location).json()["status"] == "notStarted"


def test_start_job_needs_a_running_simulator_or_a_base():
    sim = opstatus.Simulator()
    with pytest.raises(RuntimeError, match="not running"):
        sim.start_job("azure")
    assert sim.start_job("azure", base="http://127.0.0.1:1").startswith("http://127.0.0.1:1/jobs/")
