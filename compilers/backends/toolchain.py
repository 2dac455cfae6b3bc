"""Finding a C compiler and building a kernel's shared library for the machine class it will run on."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kepler.compilers.backends.tree_tables import NotCompilable
from kepler.runtimes.compiled_trees import cpu_flags

# x86-64 micro-architecture levels and the CPU flags each needs (a library built for a level loads only where
# the CPU has them); the kernel gains from BMI/AVX2 code generation, so the highest level the compiling
# machine has is used.
X86_LEVELS = (
    ("x86-64-v3", ("avx", "avx2", "bmi1", "bmi2", "fma", "movbe", "f16c")),
    ("x86-64-v2", ("sse4_1", "sse4_2", "ssse3", "popcnt")),
)
BASE_FLAGS = ("-O3", "-fPIC", "-shared", "-pthread", "-fno-math-errno", "-fvisibility=default")
COMPILE_TIMEOUT_S = 600


@dataclass(frozen=True)
class Toolchain:
    """A C compiler and the target it builds for.

    Attributes:
        compiler: The compiler's path.
        version: Its first ``--version`` line.
        machine: ``platform.machine()`` of the libraries it builds.
        isa: The instruction-set level (``x86-64-v3``...), or ``generic``.
        cpu_flags: CPU flags (as /proc/cpuinfo names them) a machine needs to run those libraries.
        flags: The compiler flags.
    """

    compiler: str
    version: str
    machine: str
    isa: str
    cpu_flags: tuple[str, ...]
    flags: tuple[str, ...]


def find_toolchain() -> Toolchain:
    """The C compiler to build kernels with: ``$CC``, else ``cc``, ``gcc`` or ``clang`` on the PATH.

    Raises:
        NotCompilable: no C compiler is found, or it does not run.
    """
    candidates = [os.environ["CC"]] if os.environ.get("CC") else ["cc", "gcc", "clang"]
    for name in candidates:
        path = shutil.which(name)
        if path is None:
            continue
        try:
            answer = subprocess.run(
                [path, "--version"], capture_output=True, text=True, timeout=60, check=True
            )
        except (OSError, subprocess.SubprocessError):
            continue
        version = (answer.stdout.splitlines() or ["unknown"])[0].strip()
        machine = platform.machine().lower()
        isa, needed = _isa(machine)
        flags = (*BASE_FLAGS, *((f"-march={isa}",) if isa != "generic" else ()))
        return Toolchain(path, version, machine, isa, needed, flags)
    raise NotCompilable(
        f"no C compiler found ({', '.join(candidates)}); install gcc or set CC to build the compiled backend"
    )


def _isa(machine: str) -> tuple[str, tuple[str, ...]]:
    if machine not in ("x86_64", "amd64"):
        return "generic", ()
    have = cpu_flags()
    for level, needed in X86_LEVELS:
        if set(needed) <= have:
            return level, needed
    return "generic", ()


def build_library(source: str, destination: Path, toolchain: Toolchain) -> None:
    """Compiles ``source`` into the shared library ``destination`` (written whole or not at all).

    Raises:
        NotCompilable: the compiler failed or timed out; names its last error line.
    """
    with tempfile.TemporaryDirectory(prefix="kepler-cc-") as scratch:
        source_path = Path(scratch) / "trees.c"
        source_path.write_text(source, encoding="utf-8")
        built = Path(scratch) / destination.name
        command = [toolchain.compiler, *toolchain.flags, "-o", str(built), str(source_path), "-lm"]
        try:
            answer = subprocess.run(command, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise NotCompilable(
                f"{toolchain.compiler} took over {COMPILE_TIMEOUT_S} s on the kernel"
            ) from None
        if answer.returncode != 0 or not built.is_file():
            errors = [line for line in answer.stderr.splitlines() if line.strip()]
            raise NotCompilable(f"{toolchain.compiler} failed: {errors[-1] if errors else 'no output'}")
        shutil.move(str(built), destination)
