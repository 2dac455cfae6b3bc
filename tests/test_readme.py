"""The README's Python snippet runs as written from the repository root (with a shorter search)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_readme_snippet_runs_from_the_repository_root() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    snippet = re.search(r"```python\n(import kepler as kp\n.*?)```", text, re.S).group(1)
    assert 'optimization_time="30s"' in snippet
    # 5 s, not less: the snippet's first trial (a forest, 5-fold on 5,000 rows) needs about a second of a core,
    # and three test workers share two cores.
    quick = snippet.replace('optimization_time="30s"', 'optimization_time="5s"')
    done = subprocess.run(
        [sys.executable, "-c", quick], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert lines[0].split()[1] in ("True", "False") and len(lines) >= 3
    assert "temporary: removed when this process exits" in done.stderr
