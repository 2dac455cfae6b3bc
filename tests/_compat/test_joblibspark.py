"""Canaries of kepler._compat.joblibspark: joblibspark's abort still reads joblib's old attribute name, and the
fixed abort cancels the jobs and reconfigures with the arguments joblib keeps (no Spark needed)."""

from __future__ import annotations

import inspect
from typing import Any

import joblibspark.backend
from joblib import Parallel
from joblibspark.backend import SparkDistributedBackend

from kepler._compat.joblibspark import backend_arguments, fix_abort


def test_joblibspark_still_needs_the_fix() -> None:
    # When this fails, joblibspark reads the current name (or joblib the old one again): remove the shim.
    source = inspect.getsource(joblibspark.backend)  # the file, whether or not the fix is installed
    assert "self.parallel._backend_args" in source
    assert not hasattr(Parallel(n_jobs=2), "_backend_args")
    assert isinstance(Parallel(n_jobs=2)._backend_kwargs, dict)
    assert callable(SparkDistributedBackend._cancel_all_jobs)


def test_the_fixed_abort_cancels_and_reconfigures() -> None:
    fix_abort()
    fix_abort()  # once per process: a second call changes nothing
    calls: list[Any] = []
    backend = object.__new__(SparkDistributedBackend)  # no session: the two calls it makes are recorded
    backend._cancel_all_jobs = lambda: calls.append("cancel")  # type: ignore[method-assign]
    backend.configure = lambda **kwargs: calls.append(kwargs)  # type: ignore[method-assign]
    parallel = Parallel(n_jobs=2)
    backend.parallel = parallel
    backend.abort_everything(ensure_ready=True)
    assert calls == ["cancel", {"n_jobs": 2, "parallel": parallel, **backend_arguments(parallel)}]
    assert backend_arguments(object()) == {}
