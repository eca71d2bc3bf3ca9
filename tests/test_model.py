"""Status, OperationStatus, StatusDocumentError and ResourceRef.

The wire facts come from shared/docs/face-operations.md: two dialects (2019
PascalCase with explicit nulls and ``notStarted``; 2021 camelCase with an
extra ``finishedTime``), keys in any case, ``location`` as an alias of
``resourceLocation``, and ``resourceLocation`` trusted only on success.
"""

import copy
import dataclasses
import datetime
import json
import pickle
import types
import weakref

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import opstatus
from opstatus import (
    OperationStatus,
    OpStatusError,
    ResourceRef,
    Status,
    StatusDocumentError,
)

UTC = datetime.timezone.utc
DT = datetime.datetime

# The two dialects, verbatim from face-operations.md.
WIRE_2019 = (
    '{"CreatedTime":"2019-05-16T04:15:15.2959673Z","LastActionTime":'
    '"2019-05-16T04:15:15.2959673Z","Message":null,"ResourceLocation":null,'
    '"Status":"notStarted"}'
)
WIRE_2021 = (
    '{"status":"running","createdTime":"2021-06-08T22:28:33.5402214Z",'
    '"lastActionTime":"2021-06-08T22:28:33.5793888Z","resourceLocation":"/snapshots/"}'
)
CREATED = "2018-12-25T11:41:02.2331413Z"
CREATED_DT = DT(2018, 12, 25, 11, 41, 2, 233141, UTC)


def doc(**fields):
    """A minimal valid document (dict) with *fields* added or replaced."""
    base = {"status": "running", "createdTime": CREATED}
    base.update(fields)
    return base


def from_fields(**fields):
    return OperationStatus.from_json(json.dumps(doc(**fields)))


###############################################################################
# Status
###############################################################################


def test_status_is_a_str_enum_of_the_four_face_states_and_canceled():
    # CANCELED (issue 12) is for other services; the face vocabulary refuses it.
    assert issubclass(Status, str)
    assert [m.value for m in Status] == ["notstarted", "running", "succeeded", "failed",
                                         "canceled"]
    assert [m.name for m in Status] == ["NOTSTARTED", "RUNNING", "SUCCEEDED", "FAILED",
                                        "CANCELED"]
    assert Status.RUNNING == "running"
    assert isinstance(Status.FAILED, str)


@pytest.mark.parametrize(
    "text, member",
    [
        ("notstarted", Status.NOTSTARTED),
        ("notStarted", Status.NOTSTARTED),
        ("NotStarted", Status.NOTSTARTED),
        ("NOTSTARTED", Status.NOTSTARTED),
        ("running", Status.RUNNING),
        ("Running", Status.RUNNING),
        ("RUNNING", Status.RUNNING),
        ("succeeded", Status.SUCCEEDED),
        ("Succeeded", Status.SUCCEEDED),
        ("failed", Status.FAILED),
        ("FAILED", Status.FAILED),
        ("fAiLeD", Status.FAILED),
    ],
)
def test_status_lookup_case_insensitive(text, member):
    assert Status(text) is member


def test_status_is_terminal():
    assert Status.SUCCEEDED.is_terminal is True
    assert Status.FAILED.is_terminal is True
    assert Status.RUNNING.is_terminal is False
    assert Status.NOTSTARTED.is_terminal is False


@pytest.mark.parametrize("word", ["canceled", "Canceled", "cancelled", "Cancelled"])
def test_the_face_vocabulary_refuses_canceled(word):
    # Status.CANCELED exists for other services (issue 12); Face snapshot
    # operations cannot be canceled and the word stays unknown there.
    with pytest.raises(StatusDocumentError) as info:
        OperationStatus.from_dict({"status": word, "createdTime": "2020-01-01T00:00:00Z"})
    assert "unknown status %r; known: notstarted, running, succeeded, failed" % word in str(
        info.value)


@pytest.mark.parametrize(
    "value", ["paused", "cancelling", "Cancelledd", "", " running", "running ", "not started",
              "not_started", "succeed", "r\u0131nning"]
)
def test_status_unknown_value(value):
    with pytest.raises(StatusDocumentError) as info:
        Status(value)
    err = info.value
    assert isinstance(err, ValueError)
    assert isinstance(err, OpStatusError)
    assert err.field == "status"
    message = str(err)
    assert repr(value) in message
    for known in ("notstarted", "running", "succeeded", "failed"):
        assert known in message.split(repr(value), 1)[1]


def test_status_unknown_long_value_is_cut_in_message():
    with pytest.raises(StatusDocumentError) as info:
        Status("x" * 10000)
    assert len(str(info.value)) < 300


@pytest.mark.parametrize("value", [1, None, 1.5, True, b"running", ["running"], {}])
def test_status_non_str(value):
    with pytest.raises(StatusDocumentError) as info:
        Status(value)
    assert isinstance(info.value, ValueError)
    assert info.value.field == "status"


def test_status_str_and_format():
    assert str(Status.RUNNING) == "running"
    assert "{}".format(Status.RUNNING) == "running"
    assert f"{Status.RUNNING}" == "running"
    assert f"{Status.NOTSTARTED:>12}" == "  notstarted"
    assert "%s" % Status.SUCCEEDED == "succeeded"


def test_status_json_dumps_as_value():
    assert json.dumps({"s": Status.FAILED}) == '{"s": "failed"}'


###############################################################################
# StatusDocumentError
###############################################################################


def test_error_hierarchy_and_attributes():
    err = StatusDocumentError("missing (a required field)", "createdTime")
    assert isinstance(err, OpStatusError)
    assert isinstance(err, ValueError)
    assert isinstance(err, Exception)
    assert err.field == "createdTime"
    assert err.problem == "missing (a required field)"
    assert "createdTime" in str(err) and "missing" in str(err)
    whole = StatusDocumentError("invalid JSON: x")
    assert whole.field is None
    assert "invalid JSON" in str(whole)


###############################################################################
# Reading the wire dialects
###############################################################################


def test_read_2019_dialect():
    st_ = OperationStatus.from_json(WIRE_2019)
    assert st_.status is Status.NOTSTARTED
    assert st_.created_time == DT(2019, 5, 16, 4, 15, 15, 295967, UTC)
    assert st_.last_action_time == DT(2019, 5, 16, 4, 15, 15, 295967, UTC)
    assert st_.message is None
    assert st_.resource_location is None
    assert dict(st_.extra) == {}
    assert st_.resource is None and st_.snapshot_id is None and st_.target_id is None
    assert st_.is_terminal is False
    assert st_.duration == datetime.timedelta(0)


def test_read_2021_dialect():
    text = WIRE_2021[:-1] + ',"finishedTime":"2021-06-08T22:28:33.5793880Z"}'
    st_ = OperationStatus.from_json(text)
    assert st_.status is Status.RUNNING
    assert st_.created_time == DT(2021, 6, 8, 22, 28, 33, 540221, UTC)
    assert st_.last_action_time == DT(2021, 6, 8, 22, 28, 33, 579388, UTC)
    assert st_.message is None
    assert st_.resource_location == "/snapshots/"
    assert st_.extra["finishedTime"] == "2021-06-08T22:28:33.5793880Z"
    assert st_.resource is None  # not succeeded yet
    assert st_.duration == datetime.timedelta(microseconds=579388 - 540221)


def test_read_2021_dialect_verbatim():
    st_ = OperationStatus.from_json(WIRE_2021)
    assert st_.status is Status.RUNNING
    assert dict(st_.extra) == {}


@pytest.mark.parametrize(
    "keys",
    [
        ("status", "createdTime", "lastActionTime", "message", "resourceLocation"),
        ("Status", "CreatedTime", "LastActionTime", "Message", "ResourceLocation"),
        ("STATUS", "CREATEDTIME", "LASTACTIONTIME", "MESSAGE", "RESOURCELOCATION"),
        ("status", "createdtime", "lastactiontime", "message", "resourcelocation"),
        ("sTaTuS", "cReAtEdTiMe", "lAsTaCtIoNtImE", "mEsSaGe", "rEsOuRcElOcAtIoN"),
    ],
)
def test_keys_in_any_case(keys):
    values = ["Failed", CREATED, "2018-12-25T11:51:27.8705696Z", "boom", "/snapshots/x"]
    st_ = OperationStatus.from_dict(dict(zip(keys, values)))
    assert st_.status is Status.FAILED
    assert st_.created_time == CREATED_DT
    assert st_.last_action_time == DT(2018, 12, 25, 11, 51, 27, 870569, UTC)
    assert st_.message == "boom"
    assert st_.resource_location == "/snapshots/x"
    assert dict(st_.extra) == {}


def test_nulls_are_absent():
    st_ = OperationStatus.from_dict(
        doc(lastActionTime=None, message=None, resourceLocation=None, location=None)
    )
    assert st_.last_action_time is None
    assert st_.message is None
    assert st_.resource_location is None
    assert st_ == OperationStatus.from_dict(doc())
    assert st_.to_dict() == {"status": "running", "createdTime": "2018-12-25T11:41:02.233141Z"}


@pytest.mark.parametrize("field", ["status", "createdTime", "Status", "CreatedTime"])
def test_null_required_field_is_missing(field):
    data = doc()
    data[field[0].lower() + field[1:]] = None
    if field[0].isupper():  # PascalCase null instead of the camelCase key
        del data[field[0].lower() + field[1:]]
        data[field] = None
    with pytest.raises(StatusDocumentError) as info:
        OperationStatus.from_dict(data)
    assert info.value.field == field[0].lower() + field[1:]
    assert "missing" in str(info.value)


def test_location_alias():
    st_ = OperationStatus.from_dict(doc(status="succeeded", location="/snapshots/abc"))
    assert st_.resource_location == "/snapshots/abc"
    assert st_.snapshot_id == "abc"
    assert dict(st_.extra) == {}
    st_ = OperationStatus.from_dict(doc(Location="/persongroup/pg1", ResourceLocation=None))
    assert st_.resource_location == "/persongroup/pg1"
    assert dict(st_.extra) == {}


def test_resource_location_wins_over_location():
    st_ = OperationStatus.from_dict(
        doc(status="succeeded", location="/snapshots/loser", resourceLocation="/snapshots/winner")
    )
    assert st_.resource_location == "/snapshots/winner"
    assert st_.snapshot_id == "winner"
    assert dict(st_.extra) == {"location": "/snapshots/loser"}
    # Order does not matter, nor does key case.
    data = {"Location": "/a/b", "status": "running", "ResourceLocation": "/c/d",
            "createdTime": CREATED}
    st_ = OperationStatus.from_dict(data)
    assert st_.resource_location == "/c/d"
    assert dict(st_.extra) == {"Location": "/a/b"}


def test_null_location_with_resource_location():
    st_ = OperationStatus.from_dict(doc(location=None, resourceLocation="/snapshots/x"))
    assert st_.resource_location == "/snapshots/x"
    assert "location" not in st_.extra


def test_unknown_keys_kept_in_extra_read_only():
    st_ = OperationStatus.from_dict(doc(finishedTime="2021-06-08T22:28:33Z", percent=42,
                                        nested={"a": [1, 2]}, nothing=None))
    assert dict(st_.extra) == {"finishedTime": "2021-06-08T22:28:33Z", "percent": 42,
                               "nested": {"a": [1, 2]}, "nothing": None}
    assert isinstance(st_.extra, types.MappingProxyType)
    with pytest.raises(TypeError):
        st_.extra["x"] = 1
    with pytest.raises(TypeError):
        del st_.extra["percent"]


def test_extra_does_not_alias_input():
    data = doc(percent=1)
    st_ = OperationStatus.from_dict(data)
    data["percent"] = 2
    data["more"] = 3
    assert dict(st_.extra) == {"percent": 1}


def test_extra_not_part_of_equality_or_hash():
    a = OperationStatus.from_dict(doc(finishedTime="x"))
    b = OperationStatus.from_dict(doc(finishedTime="y", other=1))
    c = OperationStatus.from_dict(doc())
    assert a == b == c
    assert hash(a) == hash(b) == hash(c)
    assert len({a, b, c}) == 1
    assert "finishedTime" not in repr(a)


def test_inequality_on_fields():
    base = OperationStatus.from_dict(doc())
    assert base != OperationStatus.from_dict(doc(status="succeeded"))
    assert base != OperationStatus.from_dict(doc(createdTime="2018-12-25T11:41:03Z"))
    assert base != OperationStatus.from_dict(doc(message="m"))
    assert base != OperationStatus.from_dict(doc(resourceLocation="/snapshots/x"))
    assert base != OperationStatus.from_dict(doc(lastActionTime=CREATED))


@pytest.mark.parametrize(
    "document",
    [
        WIRE_2019,
        WIRE_2019.encode("utf-8"),
        bytearray(WIRE_2019.encode("utf-8")),
        WIRE_2019.encode("utf-8-sig"),
        WIRE_2019.encode("utf-16"),  # with BOM
        WIRE_2019.encode("utf-16-le"),
        WIRE_2019.encode("utf-16-be"),
        WIRE_2019.encode("utf-32"),
        memoryview(WIRE_2019.encode("utf-8")),
    ],
    ids=["str", "utf8", "bytearray", "utf8-bom", "utf16-bom", "utf16le", "utf16be",
         "utf32", "memoryview"],
)
def test_from_json_accepts_text_and_bytes(document):
    assert OperationStatus.from_json(document) == OperationStatus.from_json(WIRE_2019)
    assert OperationStatus.from_json(document).status is Status.NOTSTARTED


def test_from_json_non_ascii_message():
    st_ = OperationStatus.from_json(
        json.dumps(doc(status="failed", message="Échec: objet modifié \u2603"),
                   ensure_ascii=False).encode("utf-8"))
    assert st_.message == "Échec: objet modifié \u2603"


@pytest.mark.parametrize("document", [None, 1, 1.5, {"status": "running"}, ["x"], object()],
                         ids=lambda v: type(v).__name__)
def test_from_json_type_error(document):
    with pytest.raises(TypeError):
        OperationStatus.from_json(document)


@pytest.mark.parametrize("data", [[], "x", 1, None, ("status", "running")],
                         ids=lambda v: type(v).__name__)
def test_from_dict_non_mapping(data):
    with pytest.raises(StatusDocumentError) as info:
        OperationStatus.from_dict(data)
    assert info.value.field is None
    assert "object" in str(info.value)


def test_from_dict_non_str_key():
    with pytest.raises(StatusDocumentError) as info:
        OperationStatus.from_dict({"status": "running", "createdTime": CREATED, 1: "x"})
    assert "key" in str(info.value)


def test_from_dict_accepts_datetime_and_status_objects():
    st_ = OperationStatus.from_dict({"status": Status.SUCCEEDED, "createdTime": CREATED_DT})
    assert st_.status is Status.SUCCEEDED
    assert st_.created_time == CREATED_DT


def test_constructor_normalizes():
    st_ = OperationStatus("NotStarted", CREATED)
    assert st_.status is Status.NOTSTARTED
    assert st_.created_time == CREATED_DT and st_.created_time.tzinfo is UTC
    assert st_ == OperationStatus.from_dict(doc(status="notstarted"))
    with pytest.raises(StatusDocumentError):
        OperationStatus("paused", CREATED)
    with pytest.raises(StatusDocumentError) as info:
        OperationStatus("running", CREATED, message=5)
    assert info.value.field == "message"


###############################################################################
# Writing
###############################################################################


def test_to_dict_camel_case_lower_status():
    st_ = OperationStatus.from_json(WIRE_2019)
    assert st_.to_dict() == {
        "status": "notstarted",
        "createdTime": "2019-05-16T04:15:15.295967Z",
        "lastActionTime": "2019-05-16T04:15:15.295967Z",
    }
    out = st_.to_dict()
    assert type(out["status"]) is str


def test_to_dict_all_fields():
    st_ = OperationStatus.from_dict({
        "Status": "Failed", "CreatedTime": "2018-12-25T11:41:02Z",
        "LastActionTime": "2018-12-25T11:51:27.8705696Z", "Message": "edited during apply",
        "ResourceLocation": "/persongroup/pg", "finishedTime": "x",
    })
    assert st_.to_dict() == {
        "status": "failed",
        "createdTime": "2018-12-25T11:41:02Z",
        "lastActionTime": "2018-12-25T11:51:27.870569Z",
        "message": "edited during apply",
        "resourceLocation": "/persongroup/pg",
    }
    assert list(st_.to_dict()) == ["status", "createdTime", "lastActionTime", "message",
                                   "resourceLocation"]
    assert st_.to_dict(include_extra=True)["finishedTime"] == "x"
    assert "finishedTime" not in st_.to_dict()


def test_to_json_round_trip():
    st_ = OperationStatus.from_json(WIRE_2021[:-1] + ',"finishedTime":"t"}')
    text = st_.to_json()
    assert json.loads(text) == st_.to_dict()
    assert OperationStatus.from_json(text) == st_
    again = OperationStatus.from_json(st_.to_json(include_extra=True))
    assert again == st_
    assert dict(again.extra) == {"finishedTime": "t"}
    assert st_.to_json(indent=2, sort_keys=True) == json.dumps(st_.to_dict(), indent=2,
                                                               sort_keys=True)


def test_include_extra_with_location_loser_round_trips():
    st_ = OperationStatus.from_dict(doc(location="/l/1", resourceLocation="/r/2"))
    again = OperationStatus.from_dict(st_.to_dict(include_extra=True))
    assert again == st_
    assert again.resource_location == "/r/2"
    assert dict(again.extra) == {"location": "/l/1"}


###############################################################################
# Datetimes
###############################################################################


def test_datetimes_aware_utc():
    st_ = OperationStatus.from_json(WIRE_2019)
    assert st_.created_time.tzinfo is UTC
    assert st_.last_action_time.tzinfo is UTC


def test_timestamps_without_offset_taken_as_utc():
    st_ = OperationStatus.from_dict(doc(createdTime="2018-12-25T11:41:02.2331413",
                                        lastActionTime="2018-12-25T11:51:27"))
    assert st_.created_time == CREATED_DT
    assert st_.created_time.tzinfo is UTC
    assert st_.last_action_time == DT(2018, 12, 25, 11, 51, 27, 0, UTC)
    st_ = OperationStatus.from_dict(doc(createdTime=DT(2018, 12, 25, 11, 41, 2, 233141)))
    assert st_.created_time.tzinfo is UTC and st_.created_time == CREATED_DT


def test_timestamp_with_offset_same_instant():
    st_ = OperationStatus.from_dict(doc(createdTime="2018-12-25T12:41:02.2331413+01:00"))
    assert st_.created_time == CREATED_DT
    assert st_.to_dict()["createdTime"] == "2018-12-25T11:41:02.233141Z"


def test_timestamp_with_offset_converted_to_utc():
    st_ = OperationStatus.from_dict(doc(createdTime="2018-12-25T12:41:02.2331413+01:00",
                                        lastActionTime="2018-12-25T06:51:27-05:00"))
    assert st_.created_time.tzinfo is UTC
    assert st_.created_time.hour == 11
    assert st_.last_action_time.tzinfo is UTC
    assert st_.last_action_time.hour == 11


@pytest.mark.parametrize("created", ["9999-12-31T23:00:00-05:00", "0001-01-01T00:30:00+01:00"])
def test_timestamp_out_of_utc_range(created):
    try:
        st_ = OperationStatus.from_dict(doc(createdTime=created))
    except StatusDocumentError as exc:
        assert exc.field == "createdTime"
    else:
        st_.to_json()  # must not raise OverflowError


def test_truncation_on_the_wire():
    st_ = OperationStatus.from_dict(doc(createdTime="2018-12-31T23:59:59.9999999Z"))
    assert st_.created_time == DT(2018, 12, 31, 23, 59, 59, 999999, UTC)


###############################################################################
# resource, snapshot_id, target_id
###############################################################################


@pytest.mark.parametrize(
    "location, kind, ident",
    [
        ("/snapshots/e58b3f08-1e8b-4165-81df-aa9858f233dc", "snapshot",
         "e58b3f08-1e8b-4165-81df-aa9858f233dc"),
        ("/persongroup/pg-1", "persongroup", "pg-1"),
        ("/largepersongroup/lpg_1", "largepersongroup", "lpg_1"),
        ("/facelist/fl1", "facelist", "fl1"),
        ("/largefacelist/lfl1", "largefacelist", "lfl1"),
        ("/PersonGroup/pg1", "persongroup", "pg1"),
        ("/Snapshots/abc", "snapshot", "abc"),
        ("/snapshots/abc/", "snapshot", "abc"),
        ("https://westus.api.cognitive.microsoft.com/face/v1.0/snapshots/abc", "snapshot", "abc"),
        ("https://westus.api.cognitive.microsoft.com/face/v1.0/largefacelist/x1",
         "largefacelist", "x1"),
        ("http://localhost:8080/face/v1.0-preview/persongroup/p?api-version=1", "persongroup", "p"),
        ("/snapshots/abc?x=1", "snapshot", "abc"),
    ],
)
def test_resource_on_success(location, kind, ident):
    st_ = from_fields(status="succeeded", resourceLocation=location)
    ref = st_.resource
    assert ref == ResourceRef(kind, ident, location)
    assert ref.kind == kind and ref.id == ident and ref.path == location
    if kind == "snapshot":
        assert st_.snapshot_id == ident
        assert st_.target_id is None
    else:
        assert st_.target_id == ident
        assert st_.snapshot_id is None


@pytest.mark.parametrize("status", ["notStarted", "running", "failed"])
@pytest.mark.parametrize("location", ["/snapshots/", "/snapshots/source-snap-id",
                                      "/persongroup/pg1", None])
def test_resource_none_before_success(status, location):
    st_ = from_fields(status=status, resourceLocation=location)
    assert st_.resource is None
    assert st_.snapshot_id is None
    assert st_.target_id is None


@pytest.mark.parametrize("location", ["/snapshots/", "/snapshots", "", "/", "/operations/abc",
                                      "/persongroup/", "https://host/", "/unknown/abc"])
def test_resource_none_on_success_without_id(location):
    st_ = from_fields(status="succeeded", resourceLocation=location)
    assert st_.resource is None
    assert st_.snapshot_id is None
    assert st_.target_id is None


def test_resource_none_on_success_without_location():
    st_ = from_fields(status="succeeded")
    assert st_.resource is None and st_.snapshot_id is None and st_.target_id is None
    assert st_.succeeded and st_.is_terminal and not st_.failed


def test_resource_relative_path_with_url_in_query():
    st_ = from_fields(status="succeeded",
                      resourceLocation="/snapshots/abc?next=https://example.com/x")
    assert st_.snapshot_id == "abc"


def test_resource_ref_frozen():
    ref = ResourceRef("snapshot", "abc", "/snapshots/abc")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ref.id = "x"
    assert hash(ref) == hash(ResourceRef("snapshot", "abc", "/snapshots/abc"))


###############################################################################
# Bad payloads
###############################################################################

BAD = [
    # (document, field, words that must appear in the message)
    ("[]", None, ["object", "array"]),
    ('[{"status": "running"}]', None, ["object", "array"]),
    ('"running"', None, ["object", "string"]),
    ("42", None, ["object", "number"]),
    ("4.5", None, ["object", "number"]),
    ("true", None, ["object"]),
    ("null", None, ["object", "null"]),
    ("", None, ["invalid JSON"]),
    ("{", None, ["invalid JSON"]),
    ("{'status': 'running'}", None, ["invalid JSON"]),
    ('{"status": "running",}', None, ["invalid JSON"]),
    ('{"status": "running"} x', None, ["invalid JSON"]),
    ('{"createdTime": "%s"}' % CREATED, "status", ["status", "missing"]),
    ('{"status": null, "createdTime": "%s"}' % CREATED, "status", ["status", "missing"]),
    ('{"status": "running"}', "createdTime", ["createdTime", "missing"]),
    ("{}", "status", ["status", "missing"]),
    ('{"status": 1, "createdTime": "%s"}' % CREATED, "status", ["status", "string"]),
    ('{"status": true, "createdTime": "%s"}' % CREATED, "status", ["status"]),
    ('{"status": ["running"], "createdTime": "%s"}' % CREATED, "status", ["status"]),
    ('{"status": {"a": 1}, "createdTime": "%s"}' % CREATED, "status", ["status"]),
    ('{"status": "running", "createdTime": 5}', "createdTime", ["createdTime", "int"]),
    ('{"status": "running", "createdTime": ["x"]}', "createdTime", ["createdTime"]),
    ('{"status": "running", "createdTime": "%s", "message": 3}' % CREATED, "message",
     ["message", "string"]),
    ('{"status": "running", "createdTime": "%s", "message": {}}' % CREATED, "message",
     ["message"]),
    ('{"status": "running", "createdTime": "%s", "resourceLocation": 7}' % CREATED,
     "resourceLocation", ["resourceLocation"]),
    ('{"status": "running", "createdTime": "%s", "location": 7}' % CREATED,
     "resourceLocation", ["resourceLocation"]),
    ('{"status": "running", "createdTime": "%s", "lastActionTime": 1.5}' % CREATED,
     "lastActionTime", ["lastActionTime"]),
    ('{"status": "paused", "createdTime": "%s"}' % CREATED, "status",
     ["'paused'", "notstarted", "running", "succeeded", "failed"]),
    ('{"status": "running", "createdTime": "2018-13-25T11:41:02Z"}', "createdTime",
     ["createdTime", "month"]),
    ('{"status": "running", "createdTime": "yesterday"}', "createdTime",
     ["createdTime", "'yesterday'"]),
    ('{"status": "running", "createdTime": "%s", "lastActionTime": "2018-12-25T23:59:60Z"}'
     % CREATED, "lastActionTime", ["lastActionTime", "leap"]),
    ('{"status": "running", "createdTime": ""}', "createdTime", ["createdTime"]),
    ('{"status": NaN, "createdTime": "%s"}' % CREATED, None, ["NaN"]),
    ('{"status": "running", "createdTime": "%s", "x": NaN}' % CREATED, None, ["NaN"]),
    ('{"status": "running", "createdTime": "%s", "x": Infinity}' % CREATED, None, ["Infinity"]),
    ('{"status": "running", "createdTime": "%s", "x": -Infinity}' % CREATED, None,
     ["Infinity"]),
    ('{"status": "running", "createdTime": "%s", "x": 1e999}' % CREATED, None, ["1e999"]),
    ('{"status": "running", "createdTime": "%s", "x": -1e999}' % CREATED, None, ["1e999"]),
    ('{"status": "running", "createdTime": "%s", "x": [1e400]}' % CREATED, None, ["1e400"]),
    ('{"status": "running", "createdTime": "%s", "x": %s}' % (CREATED, "9" * 5000), None,
     ["number"]),
    ('{"status": "running", "createdTime": "%s", "x": -%s}' % (CREATED, "1" * 5000), None,
     ["number"]),
    ('{"status": "running", "createdTime": "%s", "x": 0.%s}' % (CREATED, "1" * 5000), None,
     ["number"]),
    ('{"status": "running", "Status": "running", "createdTime": "%s"}' % CREATED, "status",
     ["duplicate", "status", "Status"]),
    ('{"createdTime": "%s", "CreatedTime": "%s", "status": "running"}' % (CREATED, CREATED),
     "createdTime", ["duplicate", "createdTime", "CreatedTime"]),
    ('{"status": "running", "createdTime": "%s", "location": "/a", "LOCATION": "/b"}' % CREATED,
     "resourceLocation", ["duplicate"]),
    ('{"status": "running", "createdTime": "%s", "x": {"a": 1, "a": 2}}' % CREATED, None,
     ["duplicate", "'a'"]),
]


@pytest.mark.parametrize("document, field, words", BAD,
                         ids=[repr(d)[:60] for d, _, _ in BAD])
def test_bad_payload(document, field, words):
    for form in (document, document.encode("utf-8")):
        with pytest.raises(StatusDocumentError) as info:
            OperationStatus.from_json(form)
        err = info.value
        assert isinstance(err, ValueError)
        assert isinstance(err, OpStatusError)
        assert err.field == field
        message = str(err)
        for word in words:
            assert word in message, message
        assert len(message) < 500
        # A field error's message names the field.
        if field is not None:
            assert field in message


def test_bom_in_str_is_invalid_but_in_bytes_is_valid():
    with pytest.raises(StatusDocumentError) as info:
        OperationStatus.from_json("\ufeff" + WIRE_2021)
    assert info.value.field is None
    assert OperationStatus.from_json(("\ufeff" + WIRE_2021).encode("utf-8")).status is Status.RUNNING


def test_duplicate_status_key():
    document = '{"status": "running", "status": "failed", "createdTime": "%s"}' % CREATED
    with pytest.raises(StatusDocumentError) as info:
        OperationStatus.from_json(document)
    message = str(info.value)
    assert "duplicate" in message and "status" in message
    # Caught by the JSON reader (a document-level problem) or by the model.
    assert info.value.field in (None, "status")


@pytest.mark.parametrize("document", [b"\xff\xfe\xfd", b'{"status": "\xff"}',
                                      b'{"status": "running", "createdTime": "\xc3"}',
                                      b"\x00{\x00", b"\x00"])
def test_bytes_not_text(document):
    with pytest.raises(StatusDocumentError) as info:
        OperationStatus.from_json(document)
    assert info.value.field is None


def test_body_too_large():
    limit = opstatus.MAX_DOCUMENT_BYTES
    assert limit == 64 * 1024
    pad = "x" * limit
    document = json.dumps(doc(padding=pad))
    for form in (document, document.encode("utf-8"), bytearray(document.encode("utf-8"))):
        with pytest.raises(StatusDocumentError) as info:
            OperationStatus.from_json(form)
        assert info.value.field is None
        assert "too large" in str(info.value)
        assert str(limit) in str(info.value)


def test_body_just_under_the_limit():
    limit = opstatus.MAX_DOCUMENT_BYTES
    document = json.dumps(doc(padding=""))
    document = json.dumps(doc(padding="x" * (limit - len(document))))
    assert len(document.encode("utf-8")) == limit
    st_ = OperationStatus.from_json(document.encode("utf-8"))
    assert len(st_.extra["padding"]) == limit - len(json.dumps(doc(padding="")))
    assert OperationStatus.from_json(document) == st_


def test_max_bytes_parameter():
    document = json.dumps(doc())
    size = len(document.encode("utf-8"))
    assert OperationStatus.from_json(document, max_bytes=size).status is Status.RUNNING
    assert OperationStatus.from_json(document.encode(), max_bytes=size).status is Status.RUNNING
    for form in (document, document.encode()):
        with pytest.raises(StatusDocumentError) as info:
            OperationStatus.from_json(form, max_bytes=size - 1)
        assert "too large" in str(info.value)
        assert info.value.field is None
    big = json.dumps(doc(padding="x" * 100000))
    assert len(OperationStatus.from_json(big, max_bytes=200000).extra["padding"]) == 100000


def test_max_bytes_is_keyword_only():
    with pytest.raises(TypeError):
        OperationStatus.from_json(json.dumps(doc()), 10)


@pytest.mark.parametrize("opener", ["[", "{\"a\":"])
def test_nesting_too_deep(opener):
    document = '{"status": "running", "createdTime": "%s", "x": %s}' % (
        CREATED, opener * 100000)
    with pytest.raises(StatusDocumentError) as info:
        OperationStatus.from_json(document, max_bytes=10 ** 6)
    assert info.value.field is None
    assert "deep" in str(info.value)
    with pytest.raises(StatusDocumentError) as info:
        OperationStatus.from_json("[" * 100000 + "]" * 100000, max_bytes=10 ** 6)
    assert "deep" in str(info.value)


def test_nesting_limit_boundary():
    depth = opstatus.MAX_DOCUMENT_DEPTH
    assert depth == 32

    def nested(levels):  # the top-level object is one level
        return '{"status": "running", "createdTime": "%s", "x": %s1%s}' % (
            CREATED, "[" * (levels - 1), "]" * (levels - 1))

    st_ = OperationStatus.from_json(nested(depth))
    inner = st_.extra["x"]
    for _ in range(depth - 2):
        inner = inner[0]
    assert inner == [1]
    with pytest.raises(StatusDocumentError) as info:
        OperationStatus.from_json(nested(depth + 1))
    assert "deep" in str(info.value)


def test_brackets_inside_strings_do_not_count():
    st_ = from_fields(status="failed", message="[" * 5000 + "{" * 5000 + '\\"[')
    assert st_.message.startswith("[[[")
    st_ = from_fields(x=[["[[[[" * 100] * 3] * 3, y="]]]]" * 100)
    assert st_.extra["y"] == "]]]]" * 100


def test_nesting_prescan_is_not_quadratic():
    # Over 32 brackets triggers the scan; then '"' followed by many '\"' makes
    # the string regex rescan the rest of the body from every quote.
    # A linear scan of these 20 KB takes about a millisecond.
    # Counted, not timed: the scan looks at each special character once.
    document = "[]" * 40 + '"' + '\\"' * 10000  # 20 KiB, within MAX_DOCUMENT_BYTES
    real = opstatus._JSON_SPECIAL
    looked = []

    class Counting:
        def finditer(self, text):
            for match in real.finditer(text):
                looked.append(match.start())
                yield match

    opstatus._JSON_SPECIAL = Counting()
    try:
        with pytest.raises(StatusDocumentError):
            OperationStatus.from_json(document)
    finally:
        opstatus._JSON_SPECIAL = real
    specials = sum(document.count(c) for c in '[]{}"\\')
    assert 0 < len(looked) <= specials and len(set(looked)) == len(looked)


###############################################################################
# frozen, hashable
###############################################################################


def test_frozen():
    st_ = OperationStatus.from_json(WIRE_2019)
    for name, value in [("status", Status.FAILED), ("created_time", CREATED_DT),
                        ("message", "x"), ("extra", {}), ("new_attribute", 1)]:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(st_, name, value)
    with pytest.raises(dataclasses.FrozenInstanceError):
        del st_.message
    assert st_.status is Status.NOTSTARTED


def test_a_status_keeps_its_fields_in_slots_and_documents_share_their_keys():
    # a poller keeps its last status: thousands of pollers, as many statuses
    a = OperationStatus.from_json(WIRE_2019)
    b = OperationStatus.from_json(WIRE_2019.replace("notStarted", "running"))
    assert not hasattr(a, "__dict__")
    assert weakref.ref(a)() is a
    assert pickle.loads(pickle.dumps(a)) == a and copy.deepcopy(a) == a
    for key_a, key_b in zip(a.document, b.document):
        assert key_a == key_b and key_a is key_b  # one copy of each known key
    # a poller keeps its last document: its status word is one copy too
    answers = [opstatus._read_answer(opstatus.Response(200, {}, WIRE_2021.encode()),
                                     opstatus.FACE, str, "https://x.invalid/op",
                                     opstatus.RetryPolicy()) for _ in range(2)]
    c, d = answers
    assert c == OperationStatus.from_json(WIRE_2021)
    assert c.raw_status == "running" and c.raw_status is d.raw_status
    assert c.document["status"] is d.document["status"] is c.raw_status

    class Mine(OperationStatus):  # a plain subclass may still set its own attributes
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.note = "mine"

    mine = Mine(Status.RUNNING, CREATED_DT)
    assert mine.note == "mine" and mine.status is Status.RUNNING
    with pytest.raises(dataclasses.FrozenInstanceError):
        mine.status = Status.FAILED


def test_hashable_and_equal_hash_equal():
    a = OperationStatus.from_json(WIRE_2019)
    b = OperationStatus.from_dict(json.loads(WIRE_2019.lower().replace("notstarted", "NotStarted")))
    assert a == b
    assert hash(a) == hash(b)
    # The same instant in another offset is equal and hashes equal.
    c = OperationStatus.from_dict(doc(createdTime="2018-12-25T12:41:02.2331413+01:00"))
    d = OperationStatus.from_dict(doc())
    assert c == d and hash(c) == hash(d)
    assert {a: 1}[b] == 1


###############################################################################
# Property tests
###############################################################################

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)

KNOWN_KEYS = ["status", "Status", "createdTime", "CreatedTime", "lastActionTime",
              "LastActionTime", "message", "Message", "resourceLocation",
              "ResourceLocation", "location", "Location", "finishedTime"]


def _only_status_document_error(document, **kwargs):
    try:
        result = OperationStatus.from_json(document, **kwargs)
    except StatusDocumentError as exc:
        assert isinstance(exc, ValueError)
        assert exc.field in (None, "status", "createdTime", "lastActionTime", "message",
                             "resourceLocation")
        return None
    assert isinstance(result, OperationStatus)
    assert isinstance(result.status, Status)
    assert result.created_time.tzinfo is not None
    result.to_dict(include_extra=True)
    return result


@given(json_values)
@settings(deadline=None)
def test_random_json_only_status_document_error(value):
    _only_status_document_error(json.dumps(value))


@given(st.dictionaries(st.sampled_from(KNOWN_KEYS), json_values, max_size=8))
@settings(deadline=None)
def test_random_known_keys_only_status_document_error(data):
    _only_status_document_error(json.dumps(data))
    try:
        OperationStatus.from_dict(data)
    except StatusDocumentError:
        pass


@given(
    st.dictionaries(
        st.sampled_from(KNOWN_KEYS),
        st.one_of(json_values, st.sampled_from(
            ["running", "NotStarted", "succeeded", "failed", CREATED, "2018-12-25",
             "/snapshots/x", "/persongroup/p", "2018-12-25T11:41:02+05:30"])),
        max_size=8,
    )
)
@settings(deadline=None)
def test_random_near_valid_documents(data):
    result = _only_status_document_error(json.dumps(data).encode("utf-16"))
    if result is not None:
        assert OperationStatus.from_dict(result.to_dict()) == result


@given(st.binary(max_size=200))
@settings(deadline=None)
def test_random_bytes_only_status_document_error(data):
    _only_status_document_error(data)


@given(st.text(alphabet='{}[]":,0123456789.eE+-tfnrulsaNIy \\', max_size=80))
@settings(deadline=None)
def test_random_json_like_text_only_status_document_error(text):
    _only_status_document_error(text)


aware_times = st.datetimes(
    min_value=DT(1, 1, 2), max_value=DT(9999, 12, 30),
    timezones=st.sampled_from([UTC, datetime.timezone(datetime.timedelta(hours=5, minutes=30)),
                               datetime.timezone(datetime.timedelta(hours=-8))]),
)


@given(
    status=st.sampled_from([s for s in Status if s is not Status.CANCELED]),
    created=aware_times,
    last=st.none() | aware_times,
    message=st.none() | st.text(),
    location=st.none() | st.text(),
    extra=st.dictionaries(st.text(min_size=1).filter(
        lambda k: k.lower() not in opstatus._FIELD_BY_WIRE), json_values, max_size=3),
)
@settings(deadline=None)
def test_valid_documents_round_trip(status, created, last, message, location, extra):
    st_ = OperationStatus(status, created, last, message, location, extra)
    data = st_.to_dict()
    assert data["status"] == status.value
    assert set(data) <= {"status", "createdTime", "lastActionTime", "message",
                         "resourceLocation"}
    assert ("message" in data) == (message is not None)
    again = OperationStatus.from_dict(data)
    assert again == st_
    assert hash(again) == hash(st_)
    assert again.created_time == created
    assert again.created_time.tzinfo is UTC
    with_extra = OperationStatus.from_json(st_.to_json(include_extra=True))
    assert with_extra == st_
    assert dict(with_extra.extra) == extra
    # The wire's PascalCase reads the same.
    pascal = {k[0].upper() + k[1:]: v for k, v in data.items()}
    assert OperationStatus.from_dict(pascal) == st_


_FACE_KEYS = st.sampled_from(["status", "Status", "STATUS", "createdTime", "CreatedTime",
                              "lastActionTime", "message", "resourceLocation", "location",
                              "Location", "finishedTime", "x"])
_FACE_VALUES = st.one_of(st.none(), st.sampled_from(
    ["succeeded", "Running", "notstarted", "failed", "bogus", "2021-06-08T22:28:33.5402214Z",
     "2021-06-08T22:28:35Z", "2018-12-25", "not a time", "/persongroups/x"]), st.integers())


def _read_or_error(data):
    try:
        status = OperationStatus.from_dict(data)
    except StatusDocumentError as exc:
        return ("error", str(exc), exc.field)
    return tuple(getattr(status, f.name) for f in dataclasses.fields(status))


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({}, optional={
    "status": st.sampled_from(["succeeded", "running", "notStarted", "failed"]),
    "createdTime": st.sampled_from(["2021-06-08T22:28:33.5402214Z", "2018-12-25"])}),
    st.dictionaries(_FACE_KEYS, _FACE_VALUES, max_size=4))
def test_the_face_fast_path_reads_a_dict_as_the_general_reader_reads_a_mapping(base, more):
    doc = dict(base, **more)
    # A plain dict may take the fast path for the service's own spellings; a read-only
    # mapping always takes the general one. Both must agree on every field and error.
    assert _read_or_error(doc) == _read_or_error(types.MappingProxyType(doc))


class _Plain(OperationStatus):
    """A subclass: read through the dataclass's own __init__ and __post_init__."""


_AZURE_DOCS = st.fixed_dictionaries({"status": st.sampled_from(
    ["notStarted", "running", "Succeeded", "failed", "canceled", "completed"])}, optional={
    "createdDateTime": st.sampled_from(["2021-06-08T22:28:33.5402214Z",
                                        "2021-06-08T22:28:33+02:00", "2018-12-25"]),
    "lastUpdatedDateTime": st.sampled_from(["2021-06-08T22:28:35Z", "2021-06-08T22:28:35"]),
    "error": st.one_of(st.none(), st.fixed_dictionaries(
        {"code": st.one_of(st.none(), st.just("InvalidRequest"), st.integers()),
         "message": st.one_of(st.just("no"), st.integers())})),
    "resourceLocation": st.one_of(st.just("/x"), st.integers())})


@settings(max_examples=200, deadline=None)
@given(_AZURE_DOCS, st.sampled_from(["azure", "language", "translator", "arm"]))
def test_the_built_status_equals_the_one_the_dataclass_init_checks(doc, name):
    # OperationStatus itself is built from fields already checked; a subclass goes through
    # __init__ and __post_init__: both must come out the same.
    def read(cls):
        try:
            status = cls.from_dict(doc, vocabulary=name)
        except StatusDocumentError as exc:
            return ("error", str(exc), exc.field)
        return tuple((f.name, getattr(status, f.name)) for f in dataclasses.fields(status))
    assert read(OperationStatus) == read(_Plain)
