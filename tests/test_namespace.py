"""``import kepler as kp``: the guide's callables stay callable whatever Kepler modules were imported before."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.integration
def test_top_level_functions_are_not_shadowed_by_modules() -> None:
    code = (
        "import kepler as kp\n"
        "import kepler.cli.commands, kepler.builds, kepler.deploy.local, kepler.versioning.project\n"
        "for name in ('build', 'deploy', 'compile', 'init', 'bench'):\n"
        "    assert callable(getattr(kp, name)), name\n"
        "assert kp.build.__module__ == 'kepler.builds'\n"
    )
    done = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
