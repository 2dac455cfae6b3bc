"""The result of a search: an object that also reads as the guide's dict."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any


class AutoMLResult(Mapping):
    """The chosen model, its held-out metrics, the constraint report, every trial and the Pareto front.

    Reads like the guide's dict (``result['best_algorithm']``, ``result['deployment_ready']``)
    and carries the compiled artifact as ``result.artifact`` and the native Pipeline as ``result.model``.

    A classification is fit on label codes 0..k-1 (the sorted labels), so ``result.model.predict`` gives
    codes; ``result.class_labels[code]`` is the label, and ``result.labels_of(codes)`` decodes them as the
    compiled artifact answers them. ``result.class_labels`` is None for a regression.
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

    def labels_of(self, codes: Any) -> Any:
        """The labels the native model's predictions (codes) stand for, as the compiled artifact answers them.

        Raises:
            KeplerError: a regression result (it has no labels).
        """
        from kepler.automl.labels import LabelCodes
        from kepler.errors import KeplerError

        labels = self._data.get("class_labels")
        if labels is None:
            raise KeplerError("a regression result has no class labels; its model predicts values")
        return LabelCodes(tuple(labels)).decode(codes)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready report."""
        return dict(self._data)

    def __repr__(self) -> str:
        return (
            f"AutoMLResult(best_algorithm={self._data.get('best_algorithm')!r}, "
            f"metric={self._data.get('metric')!r}, test={self._data.get('test_metrics', {}).get('score')}, "
            f"deployment_ready={self._data.get('deployment_ready')})"
        )
