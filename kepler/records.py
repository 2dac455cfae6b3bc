"""Versioned JSON records: the schema version and dict round trip of every record Kepler writes and reads.

A record class is a dataclass that derives from :class:`Record` (a whole JSON file: a build report, a
release...) or :class:`Section` (a part of one: a report's artifact summary, a release's history entry).

- ``to_dict()`` gives JSON-ready values; a record's dict starts with ``schema_version``.
- ``from_dict()`` reads the dict back. A record without ``schema_version`` was written before records
  carried one and reads as version 1; one from a newer Kepler is refused by name. Unknown keys are ignored,
  or kept in the ``extra`` field of a class that has one, so that they survive a round trip.
- Every field is in ``to_dict()``, except that a field made with :func:`optional` (a key that only some
  records have, such as the keys of a search in a build report) is left out while it is None, unless the
  dict it was read from had it (``null``). So a record of the current schema round-trips to the same keys.
  ``recorded(name)`` tells a field that the dict read lacked (an older record) from one it held.
- :func:`keyed` names a field whose key is not a Python name (``from``).
- Sections also read like the dicts they replace (``entry["action"]``, ``entry.get("details")``), for
  callers written against the JSON form; Kepler's own code reads attributes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, Self, cast

from kepler.errors import KeplerError

SCHEMA_KEY = "schema_version"
EXTRA = "extra"  # the field that keeps unknown keys, in the classes that have one
_OPTIONAL = "kepler.records.optional"
_KEY = "kepler.records.key"


def optional(default: Any = None) -> Any:
    """A dataclass field left out of ``to_dict()`` while None, unless the dict it was read from had it."""
    return dataclasses.field(default=default, metadata={_OPTIONAL: True})


def keyed(key: str, default: Any = None) -> Any:
    """A dataclass field whose key in the dict form is ``key`` (a Python keyword, such as ``from``)."""
    return dataclasses.field(default=default, metadata={_KEY: key})


def _key(field: dataclasses.Field[Any]) -> str:
    return str(field.metadata.get(_KEY, field.name))


class Section:
    """A dataclass read from and written to a JSON object (see the module notes).

    Class attributes:
        NESTED: Field name -> the Section class of its value (an object, or a list of objects).
        KIND: What the record is, for messages (``"release"``, ``"build report"``).
        ERROR: The KeplerError subclass raised for a record that cannot be read.
    """

    NESTED: ClassVar[Mapping[str, type[Section]]] = {}
    KIND: ClassVar[str] = "record"
    ERROR: ClassVar[type[KeplerError]] = KeplerError
    # The keys of the dict this object was read from; None for an object built in code.
    _given: frozenset[str] | None = None

    @classmethod
    def _fields(cls) -> tuple[dataclasses.Field[Any], ...]:
        return dataclasses.fields(cast(Any, cls))

    def recorded(self, name: str) -> bool:
        """False when this object was read from a dict without the field ``name`` (its name or its key: a
        record older than the field, whose value here is only the default); True otherwise."""
        names = {_key(f): f.name for f in self._fields()}
        return self._given is None or names.get(name, name) in self._given

    def _written(self) -> dict[str, str]:
        """Key in the dict form -> field name, for the fields the dict form has: every field but an
        :func:`optional` one that is None and was not in the dict read."""
        return {
            _key(f): f.name
            for f in self._fields()
            if f.name != EXTRA
            and (
                not f.metadata.get(_OPTIONAL)
                or getattr(self, f.name) is not None
                or (self._given is not None and f.name in self._given)
            )
        }

    def _keys(self) -> list[str]:
        return list(self._written())

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict: nested sections as dicts, then the unknown keys read with it (``extra``)."""
        data = {key: _plain(getattr(self, name)) for key, name in self._written().items()}
        for key, value in (getattr(self, EXTRA, None) or {}).items():
            data.setdefault(key, _plain(value))
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Reads the dict form back (unknown keys ignored, or kept in ``extra``; nested sections typed).

        Raises:
            KeplerError: (``ERROR``) not a JSON object, or a required key is missing.
        """
        if not isinstance(data, Mapping):
            raise cls.ERROR(
                f"a {cls.KIND} must be a JSON object, got {type(data).__name__}; restore the file"
            )
        fields = {f.name: f for f in cls._fields()}
        by_key = {_key(f): f.name for f in fields.values() if f.name != EXTRA}
        known: dict[str, Any] = {}
        unknown: dict[str, Any] = {}
        for key, value in data.items():
            name = by_key.get(key)
            if name is not None:
                nested = cls.NESTED.get(name)
                known[name] = _typed(nested, value) if nested is not None else value
            elif key != SCHEMA_KEY:
                unknown[key] = value
        if EXTRA in fields:
            known[EXTRA] = unknown
        missing = [
            name
            for name, f in fields.items()
            if name not in known
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
            and f.init
        ]
        if missing:
            raise cls.ERROR(
                f"a {cls.KIND} record lacks {', '.join(_key(fields[n]) for n in missing)}; "
                f"restore it from git or from a backup"
            )
        record = cast(Any, cls)(**known)
        record._given = frozenset(known)
        return cast(Self, record)

    # Read access by key, as on the dict this class replaces.
    def __getitem__(self, key: str) -> Any:
        name = self._written().get(key)
        if name is not None:
            return getattr(self, name)
        extra = getattr(self, EXTRA, None) or {}
        if key in extra:
            return extra[key]
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key`` as in the dict form, or ``default``."""
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key, _ABSENT) is not _ABSENT

    def keys(self) -> list[str]:
        """The keys of the dict form."""
        extra = [k for k in (getattr(self, EXTRA, None) or {}) if k not in self._keys()]
        return [*self._keys(), *extra]

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def __bool__(self) -> bool:  # an object, not a container: true even with no keys
        return True


class Record(Section):
    """A whole record (one JSON file): a Section whose dict carries ``schema_version``.

    Class attributes:
        SCHEMA_VERSION: The version this Kepler writes. A change of the dict form raises it, and
            :meth:`upgrade` reads the older forms.
    """

    SCHEMA_VERSION: ClassVar[int] = 1

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict, ``schema_version`` first."""
        return {SCHEMA_KEY: self.SCHEMA_VERSION, **super().to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Reads a record of this or an older schema version (none written: version 1).

        Raises:
            KeplerError: (``ERROR``) a newer or unreadable schema version, or as :meth:`Section.from_dict`.
        """
        if not isinstance(data, Mapping):
            return super().from_dict(data)
        version = schema_version(data, cls)
        body = {k: v for k, v in data.items() if k != SCHEMA_KEY}
        return super().from_dict(cls.upgrade(body, version) if version < cls.SCHEMA_VERSION else body)

    @classmethod
    def upgrade(cls, data: dict[str, Any], version: int) -> dict[str, Any]:
        """The dict of an older schema version in this version's form (nothing to do from version 1)."""
        return data


def schema_version(data: Mapping[str, Any], cls: type[Record]) -> int:
    """The schema version of a record's dict: 1 when it has none.

    Raises:
        KeplerError: (``cls.ERROR``) not a positive whole number, or newer than ``cls`` reads.
    """
    version = data.get(SCHEMA_KEY, 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise cls.ERROR(
            f"a {cls.KIND} record has schema_version {version!r}, not a version number; restore it"
        )
    if version > cls.SCHEMA_VERSION:
        raise cls.ERROR(
            f"a {cls.KIND} record has schema version {version}, newer than the {cls.SCHEMA_VERSION} "
            f"this Kepler reads; upgrade Kepler to read it"
        )
    return version


class _Absent:
    pass


_ABSENT = _Absent()


def _typed(section: type[Section], value: Any) -> Any:
    """A nested value as its Section class: an object, or each object of a list; other values as they are."""
    if isinstance(value, Mapping):
        return section.from_dict(value)
    if isinstance(value, list):
        return [section.from_dict(v) if isinstance(v, Mapping) else v for v in value]
    return value


def _plain(value: Any) -> Any:
    """JSON-ready copy: sections as dicts, lists and dicts copied (leaves as they are)."""
    if isinstance(value, Section):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
