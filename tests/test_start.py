"""Issue 12 end to end: start_operation and every built-in vocabulary against
the simulator's other Azure services (real loopback HTTP, a fake clock)."""

import json
import logging

import pytest

import opstatus
from conftest import fake_time
from opstatus import Status

# (simulator kind, the path a client POSTs to, vocabulary)
KINDS = [
    ("azure", "/jobs", "azure"),
    ("read", "/vision/v3.2/read/analyze", "azure"),
    ("translator", "/translator/document/batches", "translator"),
    ("language", "/language/analyze-text/jobs", "language"),
    ("arm-async", "/jobs?kind=arm-async", "arm"),
    ("arm-location", "/jobs?kind=arm-location", "arm"),
]

# What each kind says at its end: (status, raw word, code, message) by outcome.
ENDS = {
    "azure": {"succeeded": (Status.SUCCEEDED, "succeeded", None, None),
              "failed": (Status.FAILED, "failed", "InternalServerError", "The job failed."),
              "canceled": (Status.CANCELED, "canceled", None, None)},
    "translator": {"succeeded": (Status.SUCCEEDED, "Succeeded", None, None),
                   "failed": (Status.FAILED, "ValidationFailed", "InternalServerError",
                              "The job failed."),
                   "canceled": (Status.CANCELED, "Cancelled", None, None)},
    "language": {"succeeded": (Status.SUCCEEDED, "partiallyCompleted", "InvalidDocument",
                               "Document text is empty."),
                 "failed": (Status.FAILED, "failed", "InternalServerError", "The job failed."),
                 "canceled": (Status.CANCELED, "cancelled", None, None)},
    "arm-async": {"succeeded": (Status.SUCCEEDED, "Succeeded", None, None),
                  "failed": (Status.FAILED, "Failed", "InternalServerError", "The job failed."),
                  "canceled": (Status.CANCELED, "Canceled", "Canceled", None)},
    "arm-location": {"succeeded": (Status.SUCCEEDED, None, None, None),
                     "failed": (Status.FAILED, "HTTP 400", "InternalServerError",
                                "The job failed."),
                     "canceled": (Status.FAILED, "HTTP 400", "Canceled", None)},
}
ENDS["read"] = ENDS["azure"]


def _end(kind, outcome):
    return ENDS[kind][outcome]


@pytest.mark.parametrize("outcome", ["succeeded", "failed", "canceled"])
@pytest.mark.parametrize("kind, path, vocabulary", KINDS, ids=[k[0] for k in KINDS])
def test_every_vocabulary_end_to_end(sim, fake_clock, kind, path, vocabulary, outcome):
    sep = "&" if "?" in path else "?"
    url = opstatus.start_operation(path + sep + "outcome=%s&seconds=3" % outcome,
                                   endpoint=sim.endpoint, key=sim.key, json={"x": 1},
                                   vocabulary=vocabulary, plugins=False,
                                   **fake_time(fake_clock))
    assert url.startswith(sim.endpoint + "/")
    status, raw, code, message = _end(kind, outcome)
    poller = opstatus.Poller(url, key=sim.key, vocabulary=vocabulary, plugins=False,
                             **fake_time(fake_clock))
    with poller:
        seen = [st.status for st in poller]
    final = poller.latest
    assert seen[-1] is status and final.status is status
    assert Status.RUNNING in seen or Status.NOTSTARTED in seen  # it was followed, not guessed
    assert final.raw_status == raw
    if message is not None:
        assert final.message == message
    assert final.error_code == code
    if status is Status.SUCCEEDED:
        assert poller.wait() is final
    else:
        with pytest.raises(opstatus.OperationFailed) as info:
            poller.wait()
        assert isinstance(info.value, opstatus.OperationCanceled) == (status is Status.CANCELED)
        assert info.value.status.status is status and info.value.code == code
        if raw and raw.lower() not in ("failed", "canceled"):
            assert raw in str(info.value)
        if message:
            assert message in str(info.value)


def test_the_read_result_is_in_the_final_document(sim, fake_clock):
    url = opstatus.start_operation("/vision/v3.2/read/analyze", endpoint=sim.endpoint,
                                   key=sim.key, json={"url": "https://example.com/a.png"},
                                   plugins=False, **fake_time(fake_clock))
    final = opstatus.poll(url, key=sim.key, vocabulary="azure", plugins=False,
                          **fake_time(fake_clock))
    lines = final.document["analyzeResult"]["readResults"][0]["lines"]
    assert lines[0]["text"] == "NOTHING"
    assert final.created_time is not None and final.last_action_time is not None


def test_arm_pacing_is_honoured_above_the_cap(sim, fake_clock):
    url = sim.start_job("arm-async", seconds=1500, retry_after=600)
    opstatus.poll(url, key=sim.key, vocabulary="arm", plugins=False, **fake_time(fake_clock))
    assert fake_clock.sleeps[:2] == [600.0, 600.0]  # not clamped to the 60 s cap


def test_a_retry_after_never_passes_the_deadline(sim, fake_clock):
    url = sim.start_job("arm-async", seconds=1500, retry_after=600)
    with pytest.raises(opstatus.PollTimeout):
        opstatus.poll(url, key=sim.key, vocabulary="arm", plugins=False, timeout=700,
                      **fake_time(fake_clock))
    assert fake_clock.slept <= 700


def test_arm_location_polling_reads_bare_202s_as_running(sim, fake_clock):
    url = sim.start_job("arm-location", seconds=5)
    statuses = list(opstatus.Poller(url, key=sim.key, vocabulary="arm", plugins=False,
                                    **fake_time(fake_clock)))
    assert statuses[-1].succeeded and statuses[-1].raw_status is None
    assert statuses[-1].document["properties"]["provisioningState"] == "Succeeded"
    assert all(st.status is Status.RUNNING for st in statuses[:-1]) and len(statuses) > 2
    assert set(fake_clock.sleeps) == {1.0}  # the Retry-After of each 202


def test_a_relative_url_keeps_only_the_endpoint_s_origin(sim, fake_clock):
    url = opstatus.start_operation("/vision/v3.2/read/analyze",
                                   endpoint=sim.endpoint + "/some/base/path/",
                                   key=sim.key, json={}, plugins=False, **fake_time(fake_clock))
    assert url.startswith(sim.endpoint + "/vision/v3.2/read/analyzeResults/")
    assert [p for m, p in sim.requests if m == "POST"] == ["/vision/v3.2/read/analyze"]


def test_a_body_over_the_cap_is_refused_before_any_request(sim, monkeypatch):
    monkeypatch.setattr(opstatus, "MAX_REQUEST_BYTES", 10)
    with pytest.raises(ValueError, match="cap"):
        opstatus.start_operation("/jobs", endpoint=sim.endpoint, key=sim.key,
                                 data=b"x" * 11, plugins=False)
    assert sim.requests == []


def test_json_and_data_together_are_refused(sim):
    with pytest.raises(ValueError, match="not both"):
        opstatus.start_operation("/jobs", endpoint=sim.endpoint, json={}, data=b"",
                                 plugins=False)


class Answer:
    """A transport with one canned answer to every request."""

    def __init__(self, status, headers):
        self.status, self.headers, self.sent = status, headers, []

    def send(self, request):
        self.sent.append(request)
        return opstatus.Response(self.status, self.headers, b"{}", request.url)


def test_200_without_an_operation_header_returns_none_and_says_why(caplog):
    transport = Answer(200, {"content-type": "application/json"})
    with caplog.at_level(logging.INFO, logger="opstatus"):
        assert opstatus.start_operation("https://svc.example/analyze", key="k",
                                        transport=transport, plugins=False) is None
    assert any("without Operation-Location" in r.getMessage() for r in caplog.records)


def test_an_operation_url_on_another_origin_is_refused():
    transport = Answer(202, {"Operation-Location": "https://evil.example/ops/1"})
    with pytest.raises(opstatus.UnsafeURLError, match="another origin"):
        opstatus.start_operation("https://svc.example/analyze", key="k", json={},
                                 transport=transport, plugins=False)


def test_a_relative_operation_url_is_made_absolute():
    transport = Answer(202, {"Azure-AsyncOperation": "/ops/1?api-version=2",
                             "Location": "/results/1"})
    url = opstatus.start_operation("https://svc.example/start", key="k", json={},
                                   vocabulary="arm", transport=transport, plugins=False)
    assert url == "https://svc.example/ops/1?api-version=2"


def test_a_post_that_may_have_arrived_is_not_sent_again():
    class Dropping:
        sent = 0

        def send(self, request):
            Dropping.sent += 1
            raise opstatus.NetworkError("connection reset", sent=True)

    with pytest.raises(opstatus.NetworkError):
        opstatus.start_operation("https://svc.example/start", key="k", json={},
                                 transport=Dropping(), plugins=False)
    assert Dropping.sent == 1


def test_the_face_vocabulary_says_which_field_is_missing_from_another_service_s_document(
        sim, fake_clock):
    url = sim.start_job("azure", seconds=1)
    with pytest.raises(opstatus.StatusDocumentError, match="createdTime"):
        opstatus.poll(url, key=sim.key, plugins=False, **fake_time(fake_clock))


def test_watcher_follows_several_vocabularies_worth_of_jobs(sim, fake_clock):
    urls = [sim.start_job("azure", seconds=2), sim.start_job("azure", outcome="failed")]
    outcomes = opstatus.Watcher(urls, key=sim.key, vocabulary="azure", plugins=False,
                                clock=fake_clock, sleep=fake_clock.sleep).results()
    assert outcomes[0].ok and isinstance(outcomes[1].error, opstatus.OperationFailed)
    assert json.dumps(dict(outcomes[0].status.document))  # the whole body, as read
