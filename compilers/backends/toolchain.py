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

# The library is built for the base level of its architecture, so it loads on any machine of that
# architecture: its AVX2 and AVX-512 kernels are compiled for their instruction sets inside it and chosen at
# run time from what the CPU reports (c_source.py); -march had no measurable effect on the portable kernel.
BASE_FLAGS = ("-O3", "-fPIC", "-shared", "-pthread", "-fno-math-errno", "-fvisibility=default")
COMPILE_TIMEOUT_S = 600


@dataclass(frozen=True)
class Toolchain:
    """A C compiler and the target it builds for.

    Attributes:
        compiler: The compiler's path.
        version: Its first ``--version`` line.
        machine: ``platform.machine()`` of the libraries it builds.
        isa: The instruction-set level it builds for (``x86-64``: the base level), or ``generic``.
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
        machine = platform.machine().lower().replace("amd64", "x86_64")
        isa = "x86-64" if machine == "x86_64" else "generic"
        flags = (*BASE_FLAGS, *(("-march=x86-64",) if isa == "x86-64" else ()))
        return Toolchain(path, version, machine, isa, (), flags)
    raise NotCompilable(
        f"no C compiler found ({', '.join(candidates)}); install gcc or set CC to build the compiled backend"
    )


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
