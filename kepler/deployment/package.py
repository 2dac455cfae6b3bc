"""Packaging a release for BentoML: the release resolved to its verified ONNX artifact and lineage,
a BentoML model holding that artifact, and a bento holding the generic service and that model.

Both live in the project's BentoML store (``.kepler/bentoml``, given to BentoML as ``BENTOML_HOME``).
Their tags are content addresses, so packaging the same release again reuses them:

- model ``kepler-<release>:<hash of the lineage>`` (which includes the artifact's sha256);
- bento ``kepler-<release>:<hash of the model tag, the service settings and the serving code>``.

BentoML keeps its store location in process-wide singletons, so the BentoML half runs in a child
process (``python -m kepler.deployment.package SPEC``) with ``BENTOML_HOME`` set: one process can package
releases of several projects, and the caller's process is left as it was. The child builds one bento: BentoML
imports the bento's entry module (:mod:`kepler.deployment.entry_service`), which configures the service from
the arguments given to ``bentoml.build``, once per process.

The bento's source folder carries only the serving code (``kepler.deployment.service``, its traffic recorder and entry module,
``kepler.runtimes``, ``kepler.targets`` and ``kepler.errors``) and its requirements are only numpy, onnxruntime
and bentoml.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kepler.errors import ArtifactError, KeplerError, VersioningError

if TYPE_CHECKING:
    from kepler.runtimes.manifest import Manifest
    from kepler.targets import TargetProfile

SERVICE = "kepler.deployment.entry_service:KeplerService"  # configured from the bento's arguments
TAG_MAX = 63
_TAG_BAD = re.compile(r"[^a-z0-9_.-]+")
SERVING_PACKAGES = ("numpy", "onnxruntime")  # BentoML pins itself
DEFAULT_MAX_BODY_MB = 4.0


# --------------------------------------------------------------------------- resolving a release


@dataclass
class ResolvedRelease:
    """A release with its verified artifact and lineage.

    Attributes:
        name: The release name.
        release: The release record.
        unified: Its unified version.
        artifact_path: The compiled artifact folder (``model.onnx`` + ``manifest.json``).
        manifest: The artifact's manifest.
        lineage: Release, version, data md5, MLflow run, git commit, artifact sha256... (JSON values).
    """

    name: str
    release: Any
    unified: Any
    artifact_path: Path
    manifest: Manifest
    lineage: dict[str, Any]


def _artifact_folder(project: Any, unified: Any) -> Path:
    recorded = (unified.metadata or {}).get("build_path")
    if not recorded:
        raise ArtifactError(
            f"unified version {unified.version_id!r} records no build folder, so its artifact cannot "
            f"be found; build the model with `kepler build` inside the project"
        )
    build = Path(recorded)
    candidates = [build] if build.is_absolute() else [project.root / build, Path.cwd() / build]
    for folder in candidates:
        if (folder / "artifact").is_dir():
            return folder / "artifact"
    raise ArtifactError(
        f"the artifact of unified version {unified.version_id!r} is missing ({candidates[0]}/artifact); "
        f"rebuild it with `kepler reproduce from-version {unified.version_id}`"
    )


def resolve_release(name: str, *, project: Any = None) -> ResolvedRelease:
    """Finds a release's artifact through its unified version and checks it byte for byte.

    The ONNX file's sha256 must equal its manifest's and the one the unified version recorded.

    Raises:
        VersioningError: an unknown release, or one that names no unified version.
        ArtifactError: the artifact is missing, or its sha256 does not match.
    """
    from kepler.runtimes import read_artifact
    from kepler.versioning.project import current
    from kepler.versioning.releases import get_release
    from kepler.versioning.unified import get_unified_version

    project = current(project)
    release = get_release(name, project=project)
    if not release.unified_version:
        raise VersioningError(
            f"release {name!r} names no unified version, so there is no artifact to deploy; create "
            f"the release with unified_version='build-...' (see `kepler versioning list-unified`)"
        )
    unified = get_unified_version(release.unified_version, project=project)
    folder = _artifact_folder(project, unified)
    try:
        artifact = read_artifact(folder, verify=True)
    except ArtifactError as exc:
        raise ArtifactError(f"release {name!r} refused: {exc}") from None
    sha = artifact.manifest.sha256
    if unified.artifact_sha256 and sha != unified.artifact_sha256:
        raise ArtifactError(
            f"release {name!r} refused: its artifact's sha256 {sha[:12]}… differs from the "
            f"{unified.artifact_sha256[:12]}… recorded in unified version {unified.version_id!r}; "
            f"the build folder {folder.parent} was changed, so rebuild it with "
            f"`kepler reproduce from-version {unified.version_id}`"
        )
    return ResolvedRelease(
        name=name,
        release=release,
        unified=unified,
        artifact_path=folder,
        manifest=artifact.manifest,
        lineage=lineage_of(release, unified, artifact.manifest),
    )


def lineage_of(release: Any, unified: Any, manifest: Manifest) -> dict[str, Any]:
    """The lineage a service carries: where its release's data, code, run and artifact came from."""
    data = [dict(d) for d in (unified.data or [])]
    first = data[0] if data else {}
    model = release.components.get("mlflow_model") or unified.model
    return {
        "release": release.release_id,
        "version": release.version,
        "model_line": release.model_line,
        "unified_version": unified.version_id,
        "data": data,
        "data_version": first.get("data_version"),
        "data_md5": unified.dvc_data_version or first.get("md5"),
        "mlflow_run_id": unified.mlflow_run_id,
        "mlflow_experiment": unified.experiment_name,
        "mlflow_model": model,
        "git_commit": unified.git_commit,
        "git_dirty": bool(unified.git_dirty),
        "release_git_commit": release.git_commit,
        "artifact_sha256": manifest.sha256,
        "target": manifest.target.name,
        "lineage_node": release.release_id,
    }


def model_labels(lineage: dict[str, Any]) -> dict[str, str]:
    """BentoML labels (text to text) of the lineage."""
    pairs = {
        "kepler.release": lineage.get("release"),
        "kepler.version": lineage.get("version"),
        "kepler.model-line": lineage.get("model_line"),
        "kepler.unified-version": lineage.get("unified_version"),
        "kepler.data-version": lineage.get("data_version"),
        "kepler.data-md5": lineage.get("data_md5"),
        "kepler.mlflow-run": lineage.get("mlflow_run_id"),
        "kepler.git-commit": lineage.get("git_commit"),
        "kepler.artifact-sha256": lineage.get("artifact_sha256"),
        "kepler.target": lineage.get("target"),
    }
    return {k: str(v) for k, v in pairs.items() if v not in (None, "")}


def tag_name(release: str) -> str:
    """A BentoML tag name for a release: ``kepler-<release>``, lowercase, at most 63 characters.

    When lowering case or replacing characters loses information, a short hash of the exact name
    keeps two releases apart.
    """
    base = _TAG_BAD.sub("-", f"kepler-{release}".lower()).strip("-_.")
    lossy = base != f"kepler-{release}"
    if lossy or len(base) > TAG_MAX:
        suffix = hashlib.sha256(release.encode()).hexdigest()[:8]
        base = f"{base[: TAG_MAX - 9].rstrip('-_.')}-{suffix}"
    return base


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- service settings


def batching_settings(profile: TargetProfile, batching: Any) -> dict[str, Any]:
    """Adaptive batching settings from the target profile the artifact was compiled for.

    ``batching`` is False/None (off, the default: see the README's serving figures), True (on, with
    ``max_latency_ms`` = the profile's p99 budget at batch 1 and ``max_batch_size`` = the largest benchmarked
    batch size up to 1000), or a dict overriding ``max_batch_size`` and ``max_latency_ms``.
    """
    if batching in (None, False):
        return {"batching": False}
    sizes = [b for b in profile.batch_sizes if 1 < b <= 1000] or [100]
    chosen = {
        "batching": True,
        "max_batch_size": max(sizes),
        "max_latency_ms": max(1, round(profile.latency_p99_ms)),
    }
    if isinstance(batching, dict):
        unknown = set(batching) - {"max_batch_size", "max_latency_ms"}
        if unknown:
            raise KeplerError(
                f"unknown batching option(s) {', '.join(sorted(unknown))}; "
                f"use max_batch_size and max_latency_ms"
            )
        chosen.update({k: int(v) for k, v in batching.items()})
    elif batching is not True:
        raise KeplerError(
            f"batching must be True, False or a dict of max_batch_size/max_latency_ms, got {batching!r}"
        )
    if chosen["max_batch_size"] < 2 or chosen["max_latency_ms"] < 1:
        raise KeplerError("batching needs max_batch_size >= 2 and max_latency_ms >= 1")
    return chosen


def recording_settings(root: Path) -> dict[str, Any]:
    """The service's traffic recording settings from the project's kepler.toml ``[monitoring]`` table, read at
    deploy time: ``sample_rate`` and ``max_mb`` (see :mod:`kepler.deployment.recording`).

    Raises:
        MonitoringError: the ``[monitoring]`` table is not valid.
    """
    from kepler.monitoring.settings import load_settings

    chosen = load_settings(root)
    return {"sample_rate": chosen.sample_rate, "max_mb": chosen.max_mb}


# --------------------------------------------------------------------------- packaging


@dataclass
class Package:
    """A release packaged in a BentoML store.

    Attributes:
        release: The release name.
        version: The release's version.
        model_tag: The BentoML model (the artifact, its manifest and the lineage).
        bento_tag: The bento (the service and that model).
        bento_path: The bento's folder in the store.
        bentoml_home: The BentoML store (``BENTOML_HOME``).
        lineage: The lineage carried in the model's labels and metadata.
        settings: The service settings baked into the bento (its arguments).
        created_model: False when an identical model was already in the store.
        created_bento: False when an identical bento was already in the store.
    """

    release: str
    version: str
    model_tag: str
    bento_tag: str
    bento_path: str
    bentoml_home: Path
    lineage: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    created_model: bool = False
    created_bento: bool = False

    def env(self) -> dict[str, str]:
        """The environment for BentoML commands on this store (``bentoml serve``, ``bentoml containerize``)."""
        return bentoml_env(self.bentoml_home)

    def serve_command(self, port: int = 3000, host: str = "127.0.0.1") -> list[str]:
        """``python -m bentoml serve <bento> --port N --host H`` (run it with :meth:`env`)."""
        return [sys.executable, "-m", "bentoml", "serve", self.bento_tag, "--port", str(port), "--host", host]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        data = asdict(self)
        data["bentoml_home"] = str(self.bentoml_home)
        return data


def bentoml_env(home: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (the current environment) with BentoML pointed at ``home``, tracking off."""
    env = dict(os.environ if base is None else base)
    env.update({"BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "1", "DO_NOT_TRACK": "1"})
    return env


def _installed(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{name}=={version(name)}"
    except PackageNotFoundError:
        return name


def serving_sources() -> dict[str, Path]:
    """The files of the serving code, by their path inside the bento's source folder."""
    import importlib

    here = Path(__file__).resolve().parent
    files: dict[str, Path] = {
        "kepler/errors.py": here.parent / "errors.py",
        "kepler/deployment/__init__.py": here / "__init__.py",
        "kepler/deployment/service.py": here / "service.py",
        "kepler/deployment/entry_service.py": here / "entry_service.py",
        "kepler/deployment/recording.py": here / "recording.py",
    }
    compat = here.parent / "_compat"  # the service's shims of BentoML's and uvicorn's private API
    for name in ("__init__.py", "bentoml.py", "uvicorn.py"):
        files[f"kepler/_compat/{name}"] = compat / name
    for package in ("runtimes", "targets"):
        init_file = importlib.import_module(f"kepler.{package}").__file__
        assert init_file is not None  # a regular package (with an __init__.py), never a namespace one
        folder = Path(init_file).parent
        for path in sorted(folder.iterdir()):
            if path.suffix in (".py", ".toml") and path.is_file():
                files[f"kepler/{package}/{path.name}"] = path
    return files


def _init_file(version: str) -> str:
    return (
        f'"""Kepler {version}: the serving subset (kepler.deployment.service, kepler.runtimes, kepler.targets), '
        f'packaged by kp.deploy."""\n\nimport os\n\n'
        f'for _variable in ("BENTOML_DO_NOT_TRACK", "DO_NOT_TRACK"):\n    os.environ.setdefault(_variable, "1")\n\n'
        f"__version__ = {version!r}\n"
    )


def package_release(
    release: str | ResolvedRelease,
    *,
    project: Any = None,
    platform: str = "local",
    batching: Any = None,
    workers: int = 1,
    max_body_mb: float | None = None,
    access_log: bool = False,
    unknown_columns: str = "reject",
    python_packages: list[str] | None = None,
    docker: dict[str, Any] | None = None,
    timeout_s: float = 300,
) -> Package:
    """Packages a release in the project's BentoML store (reusing an identical model or bento).

    Args:
        release: The release name (or an already resolved release).
        project: The project; the one containing the working directory by default.
        platform: Recorded in the bento (``local``, ``cloud-run``...).
        batching: Adaptive batching, off by default (see :func:`batching_settings`).
        workers: Service worker processes.
        max_body_mb: The largest request body accepted (default 4 MiB); larger ones get 413.
        access_log: BentoML's per-request access log.
        unknown_columns: ``reject`` (422, the default) or ``ignore``: what the service does with request columns
            the model does not know (the source table's columns the build dropped are always ignored).
        python_packages: The bento's requirements (default: the installed numpy and onnxruntime, pinned; BentoML adds itself).
        docker: BentoML docker options for containers (``distro``, ``python_version``, ``base_image``...).
        timeout_s: Limit for the BentoML step.

    Raises:
        VersioningError, ArtifactError: see :func:`resolve_release`.
        KeplerError: bad settings, or BentoML failed (its last lines are in the message).
    """
    from kepler import __version__
    from kepler.versioning.project import current

    project = current(project)
    resolved = release if isinstance(release, ResolvedRelease) else resolve_release(release, project=project)
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise KeplerError(f"workers must be a whole number >= 1, got {workers!r}")
    from kepler.runtimes.inputs import unknown_columns_mode
    from kepler.runtimes.manifest import profile_from_manifest

    unknown = unknown_columns_mode(unknown_columns)
    max_body = DEFAULT_MAX_BODY_MB if max_body_mb is None else float(max_body_mb)
    if not max_body > 0:
        raise KeplerError(f"max_body_mb must be positive, got {max_body_mb!r}")
    labels = model_labels(resolved.lineage)
    name = tag_name(resolved.name)
    model_tag = f"{name}:{_digest({'labels': labels, 'lineage': resolved.lineage})}"
    sources = serving_sources()
    code = _digest({path: hashlib.sha256(file.read_bytes()).hexdigest() for path, file in sources.items()})
    packages = (
        list(python_packages) if python_packages is not None else [_installed(p) for p in SERVING_PACKAGES]
    )
    settings = {
        "model_tag": model_tag,
        "release": resolved.name,
        "platform": platform,
        "workers": workers,
        "max_body_bytes": int(max_body * 2**20),
        "access_log": bool(access_log),
        "unknown_columns": unknown,
        **batching_settings(profile_from_manifest(resolved.manifest), batching),
        **recording_settings(project.root),
    }
    bento_version = _digest(
        {
            "settings": settings,
            "code": code,
            "packages": packages,
            "docker": docker,
            "kepler": __version__,
            "bentoml": _installed("bentoml"),
        }
    )
    settings["bento_tag"] = f"{name}:{bento_version}"
    spec = {
        "model_tag": model_tag,
        "bento_tag": settings["bento_tag"],
        "labels": labels,
        "metadata": {"kepler": {"lineage": resolved.lineage, "kepler_version": __version__}},
        "artifact": str(resolved.artifact_path),
        "model_file": resolved.manifest.model_file,
        "sources": {k: str(v) for k, v in sources.items()},
        "init": _init_file(__version__),
        "settings": settings,
        "packages": packages,
        "docker": docker,
        "description": f"Kepler release {resolved.name} {resolved.release.version} "
        f"(unified version {resolved.unified.version_id}, artifact sha256 {labels['kepler.artifact-sha256']})",
        "bento_labels": {
            k: v
            for k, v in labels.items()
            if k in ("kepler.release", "kepler.version", "kepler.artifact-sha256")
        },
    }
    home = project.bentoml_home
    home.mkdir(parents=True, exist_ok=True)
    result = _run_child(spec, home, timeout_s)
    return Package(
        release=resolved.name,
        version=resolved.release.version,
        model_tag=result["model_tag"],
        bento_tag=result["bento_tag"],
        bento_path=result["bento_path"],
        bentoml_home=home,
        lineage=resolved.lineage,
        settings=settings,
        created_model=result["created_model"],
        created_bento=result["created_bento"],
    )


def _run_child(spec: dict[str, Any], home: Path, timeout_s: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="kepler-package-") as work:
        spec_path = Path(work) / "spec.json"
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        try:
            done = subprocess.run(
                [sys.executable, "-m", "kepler.deployment.package", str(spec_path)],
                cwd=work,
                env=bentoml_env(home),
                capture_output=True,
                text=True,
                timeout=timeout_s,
            )
        except subprocess.TimeoutExpired:
            raise KeplerError(
                f"packaging with BentoML took more than {timeout_s:.0f} s; retry, or check "
                f"{home} for a stuck lock"
            ) from None
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
        raise KeplerError(f"BentoML could not package the release (exit {done.returncode}):\n{tail}")
    return json.loads(lines[-1])


# --------------------------------------------------------------------------- the child process


def _copy_artifact(spec: dict[str, Any], target: Path) -> None:
    """Copies what serving reads: the model file, the manifest, the probe rows and the compiled backends' files."""
    from kepler.runtimes.manifest import read_manifest

    source = Path(spec["artifact"])
    backends = read_manifest(source).backends
    compiled = [name for b in (backends.compiled if backends else ()) for name in b.files()]
    for name in (spec["model_file"], "manifest.json", "probe.json", *compiled):
        if (source / name).is_file():
            shutil.copy2(source / name, target / name)


def _ensure_model(spec: dict[str, Any]) -> bool:
    """Creates the model unless an intact one with this tag exists; True when created."""
    import bentoml
    from bentoml.exceptions import NotFound

    from kepler.runtimes import read_artifact

    tag = spec["model_tag"]
    try:
        existing = bentoml.models.get(tag)
    except NotFound:
        existing = None
    if existing is not None:
        try:
            intact = (
                read_artifact(existing.path, verify=True).manifest.sha256
                == spec["labels"]["kepler.artifact-sha256"]
            )
        except KeplerError:
            intact = False
        if intact and dict(existing.info.labels) == spec["labels"]:
            return False
        bentoml.models.delete(tag)
    with bentoml.models.create(tag, labels=spec["labels"], metadata=spec["metadata"]) as model:
        _copy_artifact(spec, Path(model.path))
    return True


def _ensure_bento(spec: dict[str, Any]) -> tuple[str, bool]:
    """Builds the bento unless one with this tag exists; (its path, True when built)."""
    import bentoml
    from bentoml.exceptions import NotFound

    try:
        return bentoml.get(spec["bento_tag"]).path, False
    except NotFound:
        pass
    name, version = spec["bento_tag"].split(":")
    with tempfile.TemporaryDirectory(prefix="kepler-bento-") as context:
        root = Path(context)
        for relative, source in spec["sources"].items():
            target = root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        (root / "kepler" / "__init__.py").write_text(spec["init"], encoding="utf-8")
        (root / "README.md").write_text(f"# {spec['bento_tag']}\n\n{spec['description']}\n", encoding="utf-8")
        bento = bentoml.build(
            SERVICE,
            name=name,
            version=version,
            build_ctx=context,
            include=["kepler/**", "README.md"],
            labels=spec["bento_labels"],
            description=spec["description"],
            args=spec["settings"],
            python={"packages": spec["packages"], "lock_packages": False},
            docker=spec["docker"] or None,
            models=[spec["model_tag"]],
        )
    return bento.path, True


def main(argv: list[str] | None = None) -> int:
    """The child process: ``python -m kepler.deployment.package SPEC`` prints one JSON line."""
    import logging

    logging.getLogger("bentoml").setLevel(logging.WARNING)
    args = sys.argv[1:] if argv is None else argv
    spec = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    created_model = _ensure_model(spec)
    bento_path, created_bento = _ensure_bento(spec)
    print(
        json.dumps(
            {
                "model_tag": spec["model_tag"],
                "bento_tag": spec["bento_tag"],
                "bento_path": str(bento_path),
                "created_model": created_model,
                "created_bento": created_bento,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
