"""joblibspark internals Kepler relies on (written for joblibspark 0.6.0 with joblib 1.6).

joblibspark's ``SparkDistributedBackend.abort_everything`` reads ``Parallel._backend_args``, which joblib 1.5
renamed ``_backend_kwargs``. joblib calls it whenever a batch fails, and FLAML's trials on Spark are cancelled at
their deadline (``force_cancel``) through that path: the AttributeError then escaped FLAML's search instead of the
cancellation it handles. :func:`fix_abort` replaces the method with one that reads whichever attribute exists.
"""

from __future__ import annotations

from typing import Any

_FIXED = "_kepler_fixed_abort"


def fix_abort() -> None:
    """Makes joblibspark's abort read joblib's backend arguments by their current name (once per process)."""
    from joblibspark.backend import SparkDistributedBackend

    if getattr(SparkDistributedBackend, _FIXED, False):
        return

    def abort_everything(self: Any, ensure_ready: bool = True) -> None:
        self._cancel_all_jobs()
        if ensure_ready:
            self.configure(
                n_jobs=self.parallel.n_jobs, parallel=self.parallel, **backend_arguments(self.parallel)
            )

    SparkDistributedBackend.abort_everything = abort_everything
    setattr(SparkDistributedBackend, _FIXED, True)


def backend_arguments(parallel: Any) -> dict[str, Any]:
    """The backend arguments a joblib ``Parallel`` was configured with (``_backend_kwargs``; before 1.5
    ``_backend_args``)."""
    for name in ("_backend_kwargs", "_backend_args"):
        value = getattr(parallel, name, None)
        if isinstance(value, dict):
            return value
    return {}
