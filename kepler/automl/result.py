"""The result of a search: an object that also reads as the guide's dict."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any


class AutoMLResult(Mapping):
    """The chosen model, its held-out metrics, the constraint report, every trial and the Pareto front.

    Reads like the guide's dict (``result['best_algorithm']``, ``result['deployment_ready']``)
    and carries the compiled artifact as ``result.artifact``.
    """

    def __init__(self, data: dict[str, Any], artifact: Any = None, model: Any = None) -> None:
        self._data = data
        self.artifact = artifact
        self.model = model

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_data"][name]
        except KeyError:
            raise AttributeError(name) from None

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready report."""
        return dict(self._data)

    def __repr__(self) -> str:
        return (f"AutoMLResult(best_algorithm={self._data.get('best_algorithm')!r}, "
                f"metric={self._data.get('metric')!r}, test={self._data.get('test_metrics', {}).get('score')}, "
                f"deployment_ready={self._data.get('deployment_ready')})")
