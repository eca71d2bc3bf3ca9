"""Vocabularies read the services' own published status documents (issue 12).

Every body under ``tests/data/azure/`` is the ``200`` body of an example
file committed to ``Azure/azure-rest-api-specs`` (``SOURCES.md`` there names
each file and commit). Each built-in vocabulary must read its services'
bodies to the right outcome, raw word, times (in UTC) and failure code and
message; the default ``"face"`` vocabulary must refuse all of them but the
Face-shaped ones; an unknown word fails closed everywhere but under
``"arm"``; and no input, however odd, gets anything out of ``from_json``
but an :class:`~opstatus.OperationStatus` or a
:class:`~opstatus.StatusDocumentError`.
"""

import collections
import dataclasses
import datetime
import json
import os
import types

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import opstatus
from opstatus import OperationStatus, Status, StatusDocumentError, Vocabulary

UTC = datetime.timezone.utc
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "azure")
NAMES = ("face", "azure", "translator", "language", "arm")


def DT(*args):
    return datetime.datetime(*args, tzinfo=UTC)


#: One published body: the file, the vocabulary that reads it, where the
#: status document is in the body (``None``: the body itself; ``"value"``:
#: the first item of a list page), and what it must read to. ``created`` and
#: ``updated`` are ``(wire field, the field's instant in UTC)`` or ``None``.
Case = collections.namedtuple(
    "Case", "file vocabulary item status raw created updated code message")

CASES = [
    # Face v1.0 snapshots: the default vocabulary, bit for bit.
    Case("face-v1.0-snapshot-operation-succeeded", "face", None,
         Status.SUCCEEDED, "succeeded",
         ("createdTime", DT(2018, 12, 25, 11, 41, 2, 233141)),
         ("lastActionTime", DT(2018, 12, 25, 11, 51, 27, 870569)), None, None),
    # Face training and v1.2 operations: the guidelines' status monitor.
    Case("face-v1.0-largepersongroup-training-succeeded", "azure", None,
         Status.SUCCEEDED, "succeeded",
         ("createdDateTime", DT(2017, 12, 21, 12, 57, 27)),
         ("lastActionDateTime", DT(2017, 12, 21, 12, 57, 30)), None, None),
    Case("face-v1.2-operation-notstarted", "azure", None,
         Status.NOTSTARTED, "notStarted",
         ("createdTime", DT(2024, 3, 5, 11, 8, 20, 193000)),
         ("lastActionTime", DT(2024, 3, 5, 11, 8, 20, 193000)), None, None),
    Case("face-v1.2-persongroup-training-notstarted", "azure", None,
         Status.NOTSTARTED, "notStarted",
         ("createdDateTime", DT(2024, 3, 5, 11, 7, 58, 371000)),
         ("lastActionDateTime", DT(2024, 3, 5, 11, 7, 58, 371000)), None, None),
    Case("face-v1.2-largepersongroup-training-notstarted", "azure", None,
         Status.NOTSTARTED, "notStarted",
         ("createdDateTime", DT(2024, 3, 5, 11, 7, 58, 371000)),
         ("lastActionDateTime", DT(2024, 3, 5, 11, 7, 58, 371000)), None, None),
    Case("computervision-v3.2-read-succeeded", "azure", None,
         Status.SUCCEEDED, "succeeded",
         ("createdDateTime", DT(2019, 10, 3, 14, 32, 4, 236000)),
         ("lastUpdatedDateTime", DT(2019, 10, 3, 14, 38, 14, 852000)), None, None),
    Case("formrecognizer-2023-07-31-classify-result-succeeded", "azure", None,
         Status.SUCCEEDED, "succeeded",
         ("createdDateTime", DT(2021, 9, 24, 13, 0, 46)),
         ("lastUpdatedDateTime", DT(2021, 9, 24, 13, 0, 49)), None, None),
    Case("formrecognizer-2023-07-31-operation-succeeded", "azure", None,
         Status.SUCCEEDED, "succeeded",
         ("createdDateTime", DT(2021, 9, 23, 9, 12, 57)),
         ("lastUpdatedDateTime", DT(2021, 9, 23, 9, 13, 1)), None, None),
    Case("formrecognizer-2023-07-31-operations-list-running", "azure", "value",
         Status.RUNNING, "running",
         ("createdDateTime", DT(2021, 9, 23, 9, 12, 57)),
         ("lastUpdatedDateTime", DT(2021, 9, 23, 9, 12, 58)), None, None),
    Case("documentintelligence-2024-11-30-operation-succeeded", "azure", None,
         Status.SUCCEEDED, "succeeded",
         ("createdDateTime", DT(2021, 9, 23, 9, 12, 57)),
         ("lastUpdatedDateTime", DT(2021, 9, 23, 9, 13, 1)), None, None),
    # A batch that succeeded with one failed document: the nested
    # result.details[1].error is that document's, not the operation's.
    Case("documentintelligence-2024-11-30-analyze-batch-succeeded", "azure", None,
         Status.SUCCEEDED, "succeeded",
         ("createdDateTime", DT(2021, 9, 24, 13, 0, 46)),
         ("lastUpdatedDateTime", DT(2021, 9, 24, 13, 0, 49)), None, None),
    Case("speech-v3.2-transcription-succeeded", "azure", None,
         Status.SUCCEEDED, "Succeeded",
         ("createdDateTime", DT(2019, 1, 7, 11, 34, 12)),
         ("lastActionDateTime", DT(2019, 1, 7, 11, 36, 7)), None, None),
    # Failed, and the published example carries no properties.error: the
    # reason is absent, not made up.
    Case("speech-v3.2-transcriptions-list-failed", "azure", "values",
         Status.FAILED, "Failed",
         ("createdDateTime", DT(2019, 1, 7, 11, 34, 12)),
         ("lastActionDateTime", DT(2019, 1, 7, 11, 36, 7)), None, None),
    # Translator: a Succeeded batch may count failed documents.
    Case("translator-v1.1-batch-succeeded", "translator", None,
         Status.SUCCEEDED, "Succeeded",
         ("createdDateTimeUtc", DT(2020, 3, 26, 0, 0, 0)),
         ("lastActionDateTimeUtc", DT(2020, 3, 26, 1, 0, 0)), None, None),
    Case("translator-v1.1-document-running", "translator", None,
         Status.RUNNING, "Running",
         ("createdDateTimeUtc", DT(2020, 3, 26, 0, 0, 0)),
         ("lastActionDateTimeUtc", DT(2020, 3, 26, 1, 0, 0)), None, None),
    Case("translator-v1.1-batches-list-succeeded", "translator", "value",
         Status.SUCCEEDED, "Succeeded",
         ("createdDateTimeUtc", DT(2021, 3, 23, 7, 3, 30, 13631)),
         ("lastActionDateTimeUtc", DT(2021, 3, 26, 1, 0, 0)), None, None),
    Case("language-2023-04-01-analyze-text-job-succeeded", "language", None,
         Status.SUCCEEDED, "succeeded",
         ("createdDateTime", DT(2020, 10, 1, 15, 0, 45)),
         ("lastUpdatedDateTime", DT(2020, 10, 1, 15, 1, 3)), None, None),
    Case("language-2023-04-01-abstractive-summarization-job-succeeded", "language", None,
         Status.SUCCEEDED, "succeeded",
         ("createdDateTime", DT(2020, 10, 1, 15, 0, 45)),
         ("lastUpdatedDateTime", DT(2020, 10, 1, 15, 1, 3)), None, None),
    # The job's own status, not result.trainingStatus.status nor
    # result.evaluationStatus.status ("notStarted").
    Case("language-2023-04-01-conversation-training-job-running", "language", None,
         Status.RUNNING, "running",
         ("createdDateTime", DT(2022, 4, 18, 15, 44, 44)),
         ("lastUpdatedDateTime", DT(2022, 4, 18, 15, 45, 48)), None, None),
    # ARM Azure-AsyncOperation: startTime / endTime (7-digit fractions are
    # truncated to the microsecond), error{code,message}.
    Case("arm-servicefabricmc-2024-04-01-operation-failed", "arm", None,
         Status.FAILED, "Failed",
         ("startTime", DT(2022, 1, 3, 23, 58, 2, 250133)),
         ("endTime", DT(2022, 1, 4, 0, 13, 3, 279095)),
         "-2146233029", "A task was canceled."),
    Case("arm-servicefabricmc-2022-01-01-operation-succeeded", "arm", None,
         Status.SUCCEEDED, "Succeeded",
         ("startTime", DT(2022, 1, 3, 23, 58, 2, 250133)),
         ("endTime", DT(2022, 1, 4, 0, 13, 3, 279095)), None, None),
    Case("arm-hdinsight-2021-06-01-extension-operation-inprogress", "arm", None,
         Status.RUNNING, "InProgress", None, None, None, None),
    Case("arm-hdinsight-2021-06-01-location-operation-succeeded", "arm", None,
         Status.SUCCEEDED, "Succeeded", None, None, None, None),
]

#: Bodies in the Face v1.0 shape (``createdTime``, the four words), which the
#: strict default vocabulary reads: the snapshot operation, and the Face v1.2
#: operation that kept its shape.
FACE_SHAPED = {"face-v1.0-snapshot-operation-succeeded", "face-v1.2-operation-notstarted"}


def _body_text(name):
    with open(os.path.join(DATA, name + ".json"), "rb") as f:
        return f.read()


def _document(case):
    """The status document of *case*, as JSON text, and decoded."""
    body = json.loads(_body_text(case.file).decode("utf-8"))
    if case.item is None:
        return _body_text(case.file), body
    item = body[case.item][0]
    return json.dumps(item), item


def test_every_saved_body_is_a_case_and_listed_in_sources():
    saved = {f[:-5] for f in os.listdir(DATA) if f.endswith(".json")}
    assert saved == {c.file for c in CASES}
    with open(os.path.join(DATA, "SOURCES.md"), encoding="utf-8") as f:
        sources = f.read()
    for name in saved:
        assert "`%s.json`" % name in sources
    assert {c.vocabulary for c in CASES} == set(NAMES)


@pytest.mark.parametrize("case", CASES, ids=[c.file for c in CASES])
def test_published_body_reads_right(case):
    text, doc = _document(case)
    st_ = OperationStatus.from_json(text, vocabulary=case.vocabulary)
    assert st_.status is case.status
    assert st_.raw_status == case.raw
    assert st_.raw_status == doc["status"]
    for got, want in ((st_.created_time, case.created), (st_.last_action_time, case.updated)):
        if want is None:
            assert got is None
            continue
        field, instant = want
        assert isinstance(doc[field], str)  # the instant is the body's own field
        assert got == instant
        assert got.utcoffset() == datetime.timedelta(0)
    assert st_.error_code == case.code
    assert st_.message == case.message
    # The whole document is kept, read-only.
    assert dict(st_.document) == doc
    assert isinstance(st_.document, types.MappingProxyType)
    with pytest.raises(TypeError):
        st_.document["status"] = "x"  # type: ignore[index]
    # The same through from_dict, with the Vocabulary object itself.
    again = OperationStatus.from_dict(doc, vocabulary=opstatus.vocabulary(case.vocabulary))
    assert (again.status, again.raw_status, again.created_time, again.last_action_time,
            again.error_code, again.message) == (
        st_.status, st_.raw_status, st_.created_time, st_.last_action_time,
        st_.error_code, st_.message)


@pytest.mark.parametrize("case", [c for c in CASES if c.item is None and
                                  "resourceLocation" in json.loads(_body_text(c.file))],
                         ids=lambda c: c.file)
def test_published_resource_location_is_kept(case):
    text, doc = _document(case)
    st_ = OperationStatus.from_json(text, vocabulary=case.vocabulary)
    assert st_.resource_location == doc["resourceLocation"]


def test_face_snapshot_example_reads_as_before():
    text, _doc = _document(CASES[0])
    default = OperationStatus.from_json(text)
    assert default == OperationStatus.from_json(text, vocabulary="face")
    assert default.snapshot_id == "e58b3f08-1e8b-4165-81df-aa9858f233dc"
    assert default.message is None


def test_translator_offsets_are_converted_to_utc():
    # azure-lros.md says the Translator example carries -08:00; the stored
    # v1.1 example says Z. Same published body, its Z turned into -08:00.
    text = _body_text("translator-v1.1-batch-succeeded").decode("utf-8")
    shifted = text.replace('00:00Z"', '00:00-08:00"')
    assert shifted.count("-08:00") == 2
    st_ = OperationStatus.from_json(shifted, vocabulary="translator")
    assert st_.created_time == DT(2020, 3, 26, 8, 0, 0)
    assert st_.last_action_time == DT(2020, 3, 26, 9, 0, 0)
    assert st_.created_time.tzinfo is UTC or st_.created_time.utcoffset() == datetime.timedelta(0)


# -- the default vocabulary fails closed on all of them ---------------------


@pytest.mark.parametrize("case", [c for c in CASES if c.file not in FACE_SHAPED],
                         ids=lambda c: c.file)
def test_default_face_vocabulary_refuses_other_services(case):
    text, doc = _document(case)
    for read in (lambda: OperationStatus.from_json(text),
                 lambda: OperationStatus.from_json(text, vocabulary="face"),
                 lambda: OperationStatus.from_dict(doc),
                 lambda: OperationStatus.from_json(_body_text(case.file))):
        with pytest.raises(StatusDocumentError):
            read()


@pytest.mark.parametrize("name", sorted(FACE_SHAPED))
def test_default_face_vocabulary_reads_face_shaped_bodies(name):
    case = next(c for c in CASES if c.file == name)
    text, _doc = _document(case)
    st_ = OperationStatus.from_json(text)
    assert st_.status is case.status and st_.raw_status == case.raw
    assert st_.created_time == case.created[1]


# -- unknown words ------------------------------------------------------------

#: Words each vocabulary does not know (all real words of some other service).
UNKNOWN = {
    "face": ["InProgress", "Accepted", "Canceled", "Cancelled", "completed",
             "ValidationFailed", "partiallyCompleted", "Cancelling", "Paused", "succeded", ""],
    "azure": ["InProgress", "Accepted", "Creating", "Cancelling", "ValidationFailed",
              "partiallyCompleted", "partiallySucceeded", "skipped", "Paused", "succeded", ""],
    "translator": ["InProgress", "Accepted", "completed", "partiallyCompleted",
                   "skipped", "Paused", "succeded", ""],
    "language": ["InProgress", "Accepted", "completed", "ValidationFailed",
                 "partiallySucceededish", "skipped", "Paused", "succeded", ""],
    "arm": ["Paused", "Queued", "Cancelled", "Cancelling", "ValidationFailed", "completed",
            "partiallyCompleted", "Provisioning", "succeded", "Migrating"],
}

UNKNOWN_CASES = [(case, word) for case in CASES for word in UNKNOWN[case.vocabulary]]


@pytest.mark.parametrize("case, word", UNKNOWN_CASES,
                         ids=["%s-%s" % (c.file, w or "empty") for c, w in UNKNOWN_CASES])
def test_unknown_word_fails_closed_except_under_arm(case, word):
    _text, doc = _document(case)
    doc = dict(doc, status=word)
    if case.vocabulary == "arm":
        st_ = OperationStatus.from_json(json.dumps(doc), vocabulary="arm")
        assert st_.status is Status.RUNNING
        assert st_.raw_status == word
        assert not st_.is_terminal
        return
    with pytest.raises(StatusDocumentError) as info:
        OperationStatus.from_json(json.dumps(doc), vocabulary=case.vocabulary)
    assert info.value.field == "status"
    assert repr(word) in str(info.value)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("value", [1, 1.5, True, ["Succeeded"], {"status": "Succeeded"}])
def test_a_status_that_is_not_a_word_fails_closed_everywhere(name, value):
    with pytest.raises(StatusDocumentError):
        OperationStatus.from_dict({"status": value, "startTime": "2022-01-03T23:58:02Z",
                                   "createdDateTime": "2022-01-03T23:58:02Z"},
                                  vocabulary=name)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("doc", [{}, {"status": None}, {"Status": None, "error": {}}])
def test_a_missing_status_fails_closed_everywhere(name, doc):
    with pytest.raises(StatusDocumentError) as info:
        OperationStatus.from_dict(doc, vocabulary=name)
    assert info.value.field == "status"


# -- built-ins by name; a vocabulary of one's own ----------------------------


def test_built_ins_by_name():
    assert set(opstatus.VOCABULARIES) == set(NAMES)
    for name in NAMES:
        vocab = opstatus.vocabulary(name)
        assert isinstance(vocab, Vocabulary)
        assert vocab is opstatus.VOCABULARIES[name]
        assert vocab.name == name
        assert opstatus.vocabulary(name.upper()) is vocab


@pytest.mark.parametrize("name", ["nope", "", "Face ", None, 3, "ARM-ish"])
def test_unknown_vocabulary_name_lists_the_known_ones(name):
    with pytest.raises(ValueError) as info:
        opstatus.vocabulary(name)
    for known in NAMES:
        assert known in str(info.value)
    with pytest.raises(ValueError):
        OperationStatus.from_json('{"status": "succeeded"}', vocabulary=name or "nope")


MY_SERVICE = Vocabulary(
    "my-service", succeeded=["done"], failed=["broken"],
    running=["queued", "working"], created_fields=["submittedAt"],
    error_paths=["problem.detail"])


def test_a_vocabulary_of_ones_own_reads_its_documents():
    failed = OperationStatus.from_json(json.dumps({
        "status": "Broken", "submittedAt": "2024-01-02T03:04:05+01:00",
        "lastUpdatedDateTime": "2024-01-02T02:10:00Z",
        "problem": {"code": "E42", "detail": "disk full"}}), vocabulary=MY_SERVICE)
    assert failed.status is Status.FAILED and failed.raw_status == "Broken"
    assert failed.created_time == DT(2024, 1, 2, 2, 4, 5)
    assert failed.last_action_time == DT(2024, 1, 2, 2, 10, 0)
    assert (failed.error_code, failed.message) == ("E42", "disk full")
    assert OperationStatus.from_dict({"status": "DONE"}, vocabulary=MY_SERVICE).succeeded
    assert OperationStatus.from_dict({"status": "queued"},
                                     vocabulary=MY_SERVICE).status is Status.RUNNING
    with pytest.raises(StatusDocumentError) as info:
        OperationStatus.from_dict({"status": "succeeded"}, vocabulary=MY_SERVICE)
    assert "'succeeded'" in str(info.value) and "done" in str(info.value)
    # Its words are its own: the built-ins do not learn them.
    with pytest.raises(StatusDocumentError):
        OperationStatus.from_dict({"status": "done"}, vocabulary="azure")


def test_a_vocabulary_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        MY_SERVICE.unknown = "running"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        opstatus.vocabulary("arm").succeeded = ("done",)  # type: ignore[misc]


@pytest.mark.parametrize("kwargs", [
    {"succeeded": ["done"], "failed": ["done"]},
    {"succeeded": ["Done"], "canceled": ["DONE"]},
    {"running": ["working"], "failed": ["broken", "Working"]},
    {"succeeded": ["succeeded"], "running": ["notstarted", "succeeded"]},
])
def test_a_word_under_two_outcomes_is_refused(kwargs):
    with pytest.raises(ValueError) as info:
        Vocabulary("two-minds", **kwargs)
    assert "two-minds" in str(info.value)


@pytest.mark.parametrize("kwargs", [
    {"unknown": "maybe"}, {"succeeded": "done"}, {"failed": [""]}, {"running": [3]},
    {"created_fields": "createdAt"}, {"error_paths": [None]}, {"max_bytes": 0},
])
def test_a_malformed_vocabulary_is_refused(kwargs):
    with pytest.raises(ValueError):
        Vocabulary("bad", **kwargs)


# -- property tests: nothing but StatusDocumentError, under every vocabulary --

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)

#: Every field name a built-in reads, in two spellings, and their neighbours.
FIELD_NAMES = [
    "status", "Status", "createdTime", "lastActionTime", "createdDateTime",
    "CreatedDateTime", "lastUpdatedDateTime", "lastActionDateTime",
    "createdDateTimeUtc", "lastActionDateTimeUtc", "startTime", "endTime",
    "message", "Message", "error", "errors", "properties", "resourceLocation",
    "location", "percentComplete", "finishedTime", "expirationDateTime",
]

WORDS = ["succeeded", "Succeeded", "failed", "Failed", "canceled", "Cancelled", "Cancelling",
         "notStarted", "running", "InProgress", "Accepted", "completed", "partiallyCompleted",
         "ValidationFailed", "Paused", ""]
TIMES = ["2019-10-03T14:32:04.236Z", "2020-03-26T00:00:00-08:00", "2022-01-03T23:58:02.2501337Z",
         "2017-12-21T12:57:27.00Z", "2020-03-26T16:43:30", "9999-12-31T23:59:59-05:00",
         "0001-01-01T00:00:00+01:00", "2021-02-30T00:00:00Z", "yesterday", ""]

near_leaves = st.one_of(json_values, st.sampled_from(WORDS), st.sampled_from(TIMES))
error_objects = st.dictionaries(
    st.sampled_from(["code", "message", "Code", "Message", "innererror", "details", "error"]),
    near_leaves, max_size=4)
near_values = st.one_of(
    near_leaves,
    error_objects,
    st.lists(error_objects | json_values, max_size=3),
    st.dictionaries(st.sampled_from(["error", "errors", "status"]),
                    error_objects | st.lists(error_objects, max_size=2) | near_leaves,
                    max_size=3),
)
documents = st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=8), near_values,
                            max_size=10)


def _only_status_document_error(document, name):
    try:
        result = OperationStatus.from_json(document, vocabulary=name)
    except StatusDocumentError as exc:
        assert isinstance(exc, ValueError)
        assert exc.field is None or isinstance(exc.field, str)
        return None
    assert isinstance(result, OperationStatus)
    assert isinstance(result.status, Status)
    assert isinstance(result.raw_status, str)
    assert result.status is opstatus.vocabulary(name).outcome(result.raw_status)
    for when in (result.created_time, result.last_action_time):
        assert when is None or when.utcoffset() == datetime.timedelta(0)
    if name == "face":
        assert result.created_time is not None
    for text in (result.message, result.error_code, result.resource_location):
        assert text is None or isinstance(text, str)
    assert isinstance(result.document, types.MappingProxyType)
    repr(result)
    return result


@given(json_values)
@settings(deadline=None, max_examples=100)
def test_random_json_only_status_document_error_under_every_vocabulary(value):
    text = json.dumps(value)
    for name in NAMES:
        _only_status_document_error(text, name)


@given(st.text(alphabet='{}[]":,0123456789.eE+-tfnrulsaNIyZT \\', max_size=80))
@settings(deadline=None, max_examples=200)
def test_random_json_like_text_only_status_document_error_under_every_vocabulary(text):
    for name in NAMES:
        _only_status_document_error(text, name)


@given(documents)
@settings(deadline=None, max_examples=100)
def test_random_documents_only_status_document_error_under_every_vocabulary(data):
    text = json.dumps(data)
    encoded = text.encode("utf-16")
    for name in NAMES:
        first = _only_status_document_error(text, name)
        second = _only_status_document_error(encoded, name)
        assert (first is None) == (second is None)
        try:
            OperationStatus.from_dict(data, vocabulary=name)
        except StatusDocumentError:
            assert first is None
        else:
            assert first is not None


@given(st.binary(max_size=200))
@settings(deadline=None, max_examples=200)
def test_random_bytes_only_status_document_error_under_every_vocabulary(data):
    for name in NAMES:
        _only_status_document_error(data, name)
