"""kepler.records: the schema version and the dict round trip every record class shares."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import pytest

from kepler.errors import KeplerError, VersioningError
from kepler.records import Record, Section, keyed, optional


@dataclass
class Step(Section):
    KIND = "step"

    at: str
    action: str
    from_status: str | None = keyed("from")
    note: str | None = optional()
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Log(Record):
    KIND = "log"
    ERROR = VersioningError
    NESTED = {"steps": Step, "last": Step}

    name: str
    steps: list[Step] = field(default_factory=list)
    last: Step | None = None
    comment: str | None = None
    only_some: int | None = optional()


@dataclass
class Renamed(Record):
    """A record whose version 2 renamed ``title`` (version 1) to ``name``."""

    KIND = "renamed"
    SCHEMA_VERSION = 2

    name: str

    @classmethod
    def upgrade(cls, data: dict[str, Any], version: int) -> dict[str, Any]:
        if version < 2:
            data = {("name" if k == "title" else k): v for k, v in data.items()}
        return data


PREVIOUS = {  # a record as written before records carried schema_version
    "name": "pm",
    "steps": [
        {"at": "t1", "action": "create", "from": None},
        {"at": "t2", "action": "deploy", "from": "draft", "note": "ok", "platform": "local"},
    ],
    "last": {"at": "t2", "action": "deploy", "from": "draft"},
    "comment": None,
}


def test_a_record_without_schema_version_reads_as_version_1_and_round_trips() -> None:
    log = Log.from_dict(copy.deepcopy(PREVIOUS))
    assert isinstance(log.steps[1], Step) and isinstance(log.last, Step)
    assert log.steps[1].from_status == "draft" and log.steps[1].extra == {"platform": "local"}
    assert log.to_dict() == {"schema_version": 1, **PREVIOUS}
    assert list(log.to_dict())[0] == "schema_version"
    assert Log.from_dict(log.to_dict()) == log


def test_optional_fields_are_left_out_while_none_unless_read() -> None:
    built = Log(name="x", steps=[Step(at="t", action="create")])
    assert built.to_dict() == {
        "schema_version": 1,
        "name": "x",
        "steps": [{"at": "t", "action": "create", "from": None}],
        "last": None,
        "comment": None,
    }
    built.only_some = 3
    assert built.to_dict()["only_some"] == 3
    read = Log.from_dict({"name": "x", "only_some": None})
    assert "only_some" in read.to_dict() and read.to_dict()["only_some"] is None


def test_recorded_tells_a_missing_key_from_a_null_one() -> None:
    older = Step.from_dict({"at": "t", "action": "create"})
    assert not older.recorded("from") and older.from_status is None
    assert Step.from_dict({"at": "t", "action": "create", "from": None}).recorded("from")
    assert Step(at="t", action="create").recorded("note")  # built in code: the current schema


def test_sections_read_like_their_dicts() -> None:
    step = Log.from_dict(PREVIOUS).steps[1]
    assert step["from"] == "draft" and step["action"] == "deploy" and step["platform"] == "local"
    assert step.get("from_status") is None and step.get("missing", 7) == 7
    assert "from" in step and "note" in step and "nothing" not in step
    assert dict(step) == step.to_dict() and len(step) == len(step.to_dict())
    with pytest.raises(KeyError):
        step["nothing"]
    assert bool(Step.from_dict({"at": "", "action": ""}))


def test_a_newer_schema_version_is_refused_by_name() -> None:
    with pytest.raises(VersioningError) as caught:
        Log.from_dict({"schema_version": 2, "name": "x"})
    message = str(caught.value)
    assert "schema version 2" in message and "upgrade Kepler" in message and "\n" not in message


@pytest.mark.parametrize("version", [0, "1", 1.0, True, None])
def test_a_schema_version_that_is_not_a_version_number_is_refused(version: Any) -> None:
    with pytest.raises(VersioningError, match="not a version number"):
        Log.from_dict({"schema_version": version, "name": "x"})


def test_a_missing_required_key_and_a_non_object_are_refused() -> None:
    with pytest.raises(VersioningError, match="lacks name"):
        Log.from_dict({"steps": []})
    with pytest.raises(KeplerError, match="lacks from|lacks at"):
        Step.from_dict({"action": "x"})
    with pytest.raises(VersioningError, match="must be a JSON object"):
        Log.from_dict(["name"])  # type: ignore[arg-type]


def test_an_older_schema_version_is_upgraded() -> None:
    assert Renamed.from_dict({"title": "a"}).name == "a"  # no schema_version: version 1
    assert Renamed.from_dict({"schema_version": 1, "title": "a"}).name == "a"
    assert Renamed.from_dict({"schema_version": 2, "name": "b"}).to_dict() == {
        "schema_version": 2,
        "name": "b",
    }


def test_to_dict_is_a_copy() -> None:
    log = Log.from_dict(copy.deepcopy(PREVIOUS))
    dumped = log.to_dict()
    dumped["steps"][0]["action"] = "changed"
    assert log.steps[0].action == "create"
