"""Cloud Run: a container image from a release's bento, and the Cloud Run service spec that runs it.

``deploy_cloud_run`` is what ``kp.deploy(release, platform="cloud-run")`` calls once the release is a
bento in the project's BentoML store. In order, it:

1. writes ``service.yaml``: a Knative ``serving.knative.dev/v1`` Service, the format that
   ``gcloud run services replace`` takes. CPU, memory and ``containerConcurrency`` come from the target
   profile, the image is the one built here, the container listens on port 8080;
2. builds the image with BentoML's container generator (the code behind ``bentoml containerize``) and
   the Docker engine;
3. returns (and prints, on stderr) the exact deploy command,
   ``gcloud run services replace service.yaml --region REGION``. Where gcloud is not installed it stops
   there and says so; where the image carries no registry name it says how to push it first.

service.yaml is written before anything that needs Docker, so that it exists even when the build cannot
run (the spec is plain data, and an image can be built elsewhere, e.g. by Cloud Build, from the same
bento). A missing ``docker`` client, an unreachable daemon, a base image that is neither on the machine
nor pullable, or a failed build raises :class:`~kepler.errors.KeplerError` with one line that says what is
missing and how to provide it.

The container
-------------
BentoML's entrypoint copies Cloud Run's ``PORT`` into ``BENTOML_PORT``; the spec sets
``BENTOML_HOST=0.0.0.0``, so the server listens on ``0.0.0.0:$PORT``. The service keeps no state between
requests (the model is read-only inside the image), answers ``/readyz`` as soon as the model is loaded
(the spec's startup probe) and ``/livez`` afterwards (the liveness probe).

Building without Docker Hub
---------------------------
BentoML's default base image is ``python:3.X-slim`` from Docker Hub. Where Docker Hub cannot be
reached, make a base image from Debian's packages (about a minute) and pass it as ``base_image=`` (or
``kepler deploy ... --base-image``)::

    apt-get install -y debootstrap docker.io                   # as root; start dockerd if it is not running
    MIRROR=http://deb.debian.org/debian                        # or the URI in /etc/apt/sources.list.d/debian.sources
    debootstrap --variant=minbase --include=python3,python3-venv,python3-pip bookworm /tmp/kepler-base "$MIRROR"
    cp /etc/ssl/certs/ca-certificates.crt /tmp/kepler-base/etc/ssl/host-ca-certificates.crt  # only behind a TLS proxy
    tar -C /tmp/kepler-base -c . | docker import \\
        --change 'ENV PIP_BREAK_SYSTEM_PACKAGES=1' \\
        --change 'ENV SSL_CERT_FILE=/etc/ssl/host-ca-certificates.crt' \\
        --change 'ENV PIP_CERT=/etc/ssl/host-ca-certificates.crt' \\
        - kepler-base:bookworm

``PIP_BREAK_SYSTEM_PACKAGES`` lets BentoML's Dockerfile ``pip install uv`` into Debian's Python (PEP 668);
the two certificate variables make pip and uv trust the machine's CA bundle (drop the ``cp`` line and
those two ``--change`` lines on a machine without a TLS-inspecting proxy).

How the build runs, and why
---------------------------
* The Dockerfile comes from BentoML itself (:func:`kepler._compat.bentoml.write_container_context`, the
  function ``bentoml containerize`` and ``bentoml.container.build`` use), generated in a subprocess with
  ``BENTOML_HOME`` set to the project's store and copied, with the bento and its models, to
  ``output_dir/container``. ``bentoml.container.build`` is not called directly because in BentoML 1.4.40
  it logs a failed build and returns ``None`` (the cause would be lost), and it cannot change the base
  image: a bento's base image is fixed when the bento is built. Here ``base_image=`` replaces the
  Dockerfile's ``FROM`` image.
* ``docker build`` runs with the classic builder (``DOCKER_BUILDKIT=0``): BuildKit's Dockerfile
  front end is itself an image on Docker Hub, and the classic builder needs no ``buildx`` plugin.
* The build's ``RUN`` steps (apt, pip, uv) use ``--network host`` (``build_network``); the default
  bridge network is never used.
* To try the image locally: ``docker run --rm --network host -e PORT=8080 IMAGE``, then
  ``curl localhost:8080/readyz``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from kepler import atomic_files
from kepler.errors import KeplerError

__all__ = [
    "CLOUD_RUN_CPUS",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_REGION",
    "MIN_MEMORY_MIB",
    "PORT",
    "deploy_cloud_run",
    "resources_for_profile",
    "service_spec",
    "write_service_yaml",
]

PORT = 8080
DEFAULT_REGION = "us-central1"
# Cloud Run accepts these CPU counts for a container (whole CPUs).
CLOUD_RUN_CPUS = (1, 2, 4, 6, 8)
# CPUs used when a profile says "all cores" (threads = 0): the machine the service lands on is not this one.
DEFAULT_CLOUD_CPUS = 2
# Cloud Run's second-generation environment takes at least 512 MiB.
MIN_MEMORY_MIB = 512
# Requests one instance takes at once before Cloud Run starts another. One BentoML worker on one core
# answers a single-row request in a few milliseconds; a deeper queue only adds latency (see
# benchmarks/results/serve.md), so scale out instead. A profile's own "concurrency" wins.
DEFAULT_CONCURRENCY = 16
DEFAULT_MAX_INSTANCES = 10
REQUEST_TIMEOUT_S = 60

_DEBOOTSTRAP_HINT = (
    "make one offline with: debootstrap --variant=minbase --include=python3,python3-venv,python3-pip "
    "bookworm ROOT MIRROR && tar -C ROOT -c . | docker import --change "
    "'ENV PIP_BREAK_SYSTEM_PACKAGES=1' - kepler-base:bookworm (the kepler.deployment.cloudrun docstring "
    "has the whole recipe), then pass --base-image kepler-base:bookworm"
)

_CONTEXT_SCRIPT = r"""
import json, sys
from pathlib import Path
from kepler._compat.bentoml import write_container_context
print(json.dumps(write_container_context(sys.argv[1], Path(sys.argv[2]))))
"""


# --------------------------------------------------------------------------------------------- the spec


def _cpu_for_threads(threads: int) -> tuple[int, str | None]:
    if threads <= 0:
        return DEFAULT_CLOUD_CPUS, (
            f"profile threads = 0 (all cores): {DEFAULT_CLOUD_CPUS} CPUs asked of Cloud Run; "
            f"set threads in the profile to choose"
        )
    for cpus in CLOUD_RUN_CPUS:
        if cpus >= threads:
            note = (
                None
                if cpus == threads
                else (f"profile threads = {threads}: rounded up to {cpus} CPUs, a count Cloud Run accepts")
            )
            return cpus, note
    return CLOUD_RUN_CPUS[-1], f"profile threads = {threads}: capped at Cloud Run's {CLOUD_RUN_CPUS[-1]} CPUs"


def _min_memory_for_cpu(cpus: int) -> int:
    # Cloud Run's floors: 4 CPUs need 2 GiB, 6 and 8 CPUs need 4 GiB.
    return {4: 2048, 6: 4096, 8: 4096}.get(cpus, MIN_MEMORY_MIB)


def resources_for_profile(profile: dict[str, Any], *, concurrency: int | None = None) -> dict[str, Any]:
    """Cloud Run CPU, memory and concurrency for a target profile.

    Args:
        profile: The target profile as a dict (``TargetProfile.to_dict()``): ``threads`` gives the CPUs,
            ``memory_mb`` the memory limit, ``concurrency`` (optional) the requests per instance.
        concurrency: Overrides the profile's concurrency.

    Returns:
        ``{"cpu": "1", "memory": "512Mi", "concurrency": 16, "notes": [...]}``; the notes say where a
        profile value was moved to a value Cloud Run accepts.

    Raises:
        KeplerError: threads, memory_mb or concurrency is missing or not a positive number.
    """
    notes: list[str] = []
    threads = profile.get("threads")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise KeplerError(
            f"profile threads must be a whole number >= 0, got {threads!r}; fix the target profile"
        )
    cpus, note = _cpu_for_threads(threads)
    if note:
        notes.append(note)

    memory_mb = profile.get("memory_mb")
    if isinstance(memory_mb, bool) or not isinstance(memory_mb, (int, float)) or memory_mb <= 0:
        raise KeplerError(
            f"profile memory_mb must be a number > 0, got {memory_mb!r}; fix the target profile"
        )
    memory_mib = int(-(-float(memory_mb) // 1))  # ceil
    floor = _min_memory_for_cpu(cpus)
    if memory_mib < floor:
        notes.append(
            f"profile memory_mb = {memory_mb:g}: raised to {floor} MiB, Cloud Run's minimum for {cpus} CPU(s) "
            f"(the Python server needs it beside the model)"
        )
        memory_mib = floor

    value = concurrency if concurrency is not None else profile.get("concurrency")
    if value is None:
        value = DEFAULT_CONCURRENCY
        notes.append(f"containerConcurrency {DEFAULT_CONCURRENCY}: Kepler's default (the profile sets none)")
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
        raise KeplerError(
            f"concurrency must be a whole number from 1 to 1000 (Cloud Run's range), got {value!r}"
        )
    return {"cpu": str(cpus), "memory": f"{memory_mib}Mi", "concurrency": value, "notes": notes}


def _label_value(text: str) -> str:
    # Cloud Run label values: lowercase letters, digits, '_' and '-', at most 63 characters.
    return re.sub(r"[^a-z0-9_-]", "-", str(text).lower())[:63]


def _service_name(release_name: str) -> str:
    # Cloud Run service names: lowercase letters, digits and '-', start with a letter, at most 49 characters.
    name = re.sub(r"[^a-z0-9-]+", "-", f"kepler-{release_name}".lower()).strip("-")
    name = re.sub(r"-{2,}", "-", name)[:49].rstrip("-")
    return name


def _release_fields(release: dict[str, Any]) -> tuple[str, str]:
    name = release.get("release_id") or release.get("name")
    version = release.get("version")
    if not isinstance(name, str) or not name:
        raise KeplerError(f"release has no name (release_id): {sorted(release)}; pass the release record")
    if not isinstance(version, str) or not version:
        raise KeplerError(f"release {name!r} has no version; pass the release record")
    return name, version


def service_spec(
    *,
    image: str,
    profile: dict[str, Any],
    release: dict[str, Any],
    service_name: str | None = None,
    concurrency: int | None = None,
    max_instances: int = DEFAULT_MAX_INSTANCES,
    bento_tag: str | None = None,
) -> dict[str, Any]:
    """The Cloud Run (Knative ``serving.knative.dev/v1``) Service for a release's image.

    Args:
        image: The container image (a registry name such as ``REGION-docker.pkg.dev/PROJECT/REPO/NAME:TAG``
            for Cloud Run to pull).
        profile: The target profile as a dict: ``threads`` -> CPU limit, ``memory_mb`` -> memory limit,
            ``concurrency`` (optional) -> ``containerConcurrency``.
        release: The release record (``release_id``/``name`` and ``version``): names the service and labels it.
        service_name: The Cloud Run service name; ``kepler-<release>`` by default.
        concurrency: Overrides the profile's concurrency.
        max_instances: ``autoscaling.knative.dev/maxScale``.
        bento_tag: Recorded as an annotation.

    Returns:
        The spec as a dict (``write_service_yaml`` writes it).
    """
    release_name, version = _release_fields(release)
    resources = resources_for_profile(profile, concurrency=concurrency)
    name = service_name or _service_name(release_name)
    if not re.fullmatch(r"[a-z]([a-z0-9-]{0,47}[a-z0-9])?", name):
        raise KeplerError(
            f"Cloud Run service name {name!r} is invalid: use lowercase letters, digits and '-', "
            f"starting with a letter, at most 49 characters"
        )
    labels = {
        "managed-by": "kepler",
        "kepler-release": _label_value(release_name),
        "kepler-version": _label_value(version),
        "kepler-target": _label_value(profile.get("name", "")),
    }
    annotations = {"kepler.dev/release": f"{release_name} {version}"}
    if bento_tag:
        annotations["kepler.dev/bento"] = bento_tag
    probe_port = {"port": PORT}
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
        "spec": {
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {
                        "autoscaling.knative.dev/maxScale": str(max_instances),
                        "run.googleapis.com/startup-cpu-boost": "true",
                    },
                },
                "spec": {
                    "containerConcurrency": resources["concurrency"],
                    "timeoutSeconds": REQUEST_TIMEOUT_S,
                    "containers": [
                        {
                            "image": image,
                            # Cloud Run sets PORT from containerPort; BentoML's entrypoint copies it to BENTOML_PORT.
                            "ports": [{"name": "http1", "containerPort": PORT}],
                            "env": [{"name": "BENTOML_HOST", "value": "0.0.0.0"}],
                            "resources": {"limits": {"cpu": resources["cpu"], "memory": resources["memory"]}},
                            "startupProbe": {
                                "httpGet": {"path": "/readyz", **probe_port},
                                "periodSeconds": 2,
                                "timeoutSeconds": 1,
                                "failureThreshold": 60,
                            },
                            "livenessProbe": {
                                "httpGet": {"path": "/livez", **probe_port},
                                "periodSeconds": 30,
                                "timeoutSeconds": 2,
                                "failureThreshold": 3,
                            },
                        }
                    ],
                },
            },
            "traffic": [{"percent": 100, "latestRevision": True}],
        },
    }


def write_service_yaml(spec: dict[str, Any], path: Path) -> Path:
    """Writes the spec as YAML (atomically: a temp file, then a rename)."""
    import yaml

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (
        "# Cloud Run service written by Kepler. Deploy with:\n"
        "#   gcloud run services replace service.yaml --region REGION\n"
    )
    atomic_files.write_text(path, header + yaml.safe_dump(spec, sort_keys=False, default_flow_style=False))
    return path


# --------------------------------------------------------------------------------------------- the image


def _has_registry(image: str) -> bool:
    first = image.split("/", 1)[0]
    return "/" in image and ("." in first or ":" in first or first == "localhost")


def _default_image_tag(release_name: str, version: str) -> str:
    repository = re.sub(r"[^a-z0-9._-]+", "-", f"kepler-{release_name}".lower()).strip("-.")
    tag = re.sub(r"[^A-Za-z0-9_.-]", "-", version)[:128]
    return f"{repository}:{tag}"


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _docker(
    args: list[str], *, timeout: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, env=env)


def _check_docker(service_yaml: Path) -> None:
    if shutil.which("docker") is None:
        raise KeplerError(
            f"docker is not installed, so the image cannot be built (service.yaml is written at "
            f"{service_yaml}): install Docker (Debian: apt-get install docker.io), start dockerd, "
            f"and rerun"
        )
    try:
        info = _docker(["info", "--format", "{{.ServerVersion}}"], timeout=30)
    except subprocess.TimeoutExpired:
        raise KeplerError(
            f"`docker info` did not answer in 30 s, so the image cannot be built (service.yaml is "
            f"written at {service_yaml}): start dockerd or fix DOCKER_HOST, and rerun"
        ) from None
    if info.returncode != 0:
        raise KeplerError(
            f"the Docker daemon is not reachable (`docker info`: {_last_line(info.stderr)}), so the "
            f"image cannot be built (service.yaml is written at {service_yaml}): start dockerd "
            f"(e.g. `dockerd &` as root) and rerun"
        )


def _ensure_base_image(base: str, service_yaml: Path) -> str:
    if _docker(["image", "inspect", base], timeout=60).returncode == 0:
        return "local"
    try:
        pulled = _docker(["pull", base], timeout=600)
    except subprocess.TimeoutExpired:
        pulled = None
    if pulled is not None and pulled.returncode == 0:
        return "pulled"
    reason = "timed out" if pulled is None else _last_line(pulled.stderr)
    raise KeplerError(
        f"base image {base} is not on this machine and cannot be pulled ({reason}); pass a local "
        f"image with --base-image, or {_DEBOOTSTRAP_HINT} (service.yaml is written at {service_yaml})"
    )


def _build_context(bento_tag: str, bentoml_home: Path, destination: Path) -> dict[str, Any]:
    """Generates BentoML's Dockerfile and build context for the bento into ``destination``."""
    if destination.exists():
        if not (destination / "bento.yaml").exists():
            raise KeplerError(
                f"{destination} exists and is not a build context Kepler wrote; remove it or choose "
                f"another output_dir"
            )
        shutil.rmtree(destination)
    env = {**os.environ, "BENTOML_HOME": str(bentoml_home), "BENTOML_DO_NOT_TRACK": "1"}
    result = subprocess.run(
        [sys.executable, "-c", _CONTEXT_SCRIPT, bento_tag, str(destination)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    if result.returncode != 0:
        raise KeplerError(
            f"BentoML could not write the Dockerfile for bento {bento_tag} in {bentoml_home} "
            f"({_last_line(result.stderr)}); check that the bento exists (bentoml list)"
        )
    info = json.loads(result.stdout.strip().splitlines()[-1])
    info["dockerfile"] = str(destination / info["dockerfile"])
    return info


_FROM = re.compile(r"^FROM\s+(\S+)", re.MULTILINE)


def _set_base_image(dockerfile: Path, base_image: str | None) -> str:
    """Returns the Dockerfile's base image, after replacing it with ``base_image`` when one is given."""
    text = dockerfile.read_text(encoding="utf-8")
    match = _FROM.search(text)
    if match is None:
        raise KeplerError(f"{dockerfile} has no FROM line; BentoML's Dockerfile format changed, report it")
    if base_image is None:
        return match.group(1)
    text = text[: match.start(1)] + base_image + text[match.end(1) :]
    atomic_files.write_text(dockerfile, text)  # the bento's own Dockerfile: never leave it half-written
    return base_image


def _build_image(
    bento_tag: str,
    *,
    bentoml_home: Path,
    image: str,
    base_image: str | None,
    output_dir: Path,
    service_yaml: Path,
    network: str,
    timeout_s: float,
) -> dict[str, Any]:
    _check_docker(service_yaml)
    context_dir = output_dir / "container"
    info = _build_context(bento_tag, bentoml_home, context_dir)
    dockerfile = Path(info["dockerfile"])
    base = _set_base_image(dockerfile, base_image)
    base_source = _ensure_base_image(base, service_yaml)

    command = ["docker", "build", "--network", network, "-f", str(dockerfile), "-t", image, str(context_dir)]
    log = output_dir / "docker-build.log"
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    started = time.perf_counter()
    with log.open("w", encoding="utf-8") as handle:
        try:
            result = subprocess.run(
                command, stdout=handle, stderr=subprocess.STDOUT, text=True, env=env, timeout=timeout_s
            )
        except subprocess.TimeoutExpired:
            raise KeplerError(
                f"docker build ran past {timeout_s:.0f} s (log: {log}); check the network the build "
                f"uses (--network {network}) and rerun"
            ) from None
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        tail = _last_line(log.read_text(encoding="utf-8", errors="replace"))
        raise KeplerError(
            f"docker build failed ({tail}); the full log is {log}. Where pip or apt cannot reach "
            f"their index, build on a machine that can, or use a base image that has the packages"
        )
    inspected = _docker(["image", "inspect", "--format", "{{.Id}} {{.Size}}", image], timeout=60)
    if inspected.returncode != 0:
        raise KeplerError(f"docker build reported success but image {image} is missing; see {log}")
    image_id, size = inspected.stdout.split()
    return {
        "built": True,
        "image_id": image_id,
        "size_mb": round(int(size) / 1e6, 1),
        "seconds": round(seconds, 1),
        "base_image": base,
        "base_image_source": base_source,
        "dockerfile": str(dockerfile),
        "context": str(context_dir),
        "log": str(log),
        "command": " ".join(["DOCKER_BUILDKIT=0", *command]),
    }


# --------------------------------------------------------------------------------------------- the front door


def deploy_cloud_run(
    bento_tag: str,
    *,
    release: dict[str, Any],
    profile: dict[str, Any],
    bentoml_home: Path,
    image_tag: str | None = None,
    base_image: str | None = None,
    output_dir: Path,
    region: str = DEFAULT_REGION,
    service_name: str | None = None,
    concurrency: int | None = None,
    max_instances: int = DEFAULT_MAX_INSTANCES,
    build: bool = True,
    apply: bool = False,
    build_network: str = "host",
    build_timeout_s: float = 1800.0,
) -> dict[str, Any]:
    """Builds a release's container image and writes its Cloud Run service spec.

    Args:
        bento_tag: The release's bento (``name:version``) in ``bentoml_home``.
        release: The release record (``release_id`` or ``name``, ``version``).
        profile: The target profile as a dict (``TargetProfile.to_dict()``).
        bentoml_home: The project's BentoML home (the bento and its models live there).
        image_tag: The image name; ``kepler-<release>:<version>`` by default. Name a registry
            (``REGION-docker.pkg.dev/PROJECT/REPO/NAME:TAG``) for Cloud Run to pull it.
        base_image: Replaces the bento's base image (``python:3.X-slim`` unless the bento says otherwise).
        output_dir: Where service.yaml, the build context and the build log go.
        region: The Cloud Run region named in the deploy command.
        service_name: The Cloud Run service name; ``kepler-<release>`` by default.
        concurrency: Overrides the profile's ``containerConcurrency``.
        max_instances: The autoscaling ceiling.
        build: Build the image (False: write service.yaml and the commands only).
        apply: Where gcloud is installed and the image names a registry, push the image and run the deploy
            command. Off by default: both publish to a cloud account.
        build_network: The network ``docker build`` gives its RUN steps (``host``; never the default bridge).
        build_timeout_s: How long the build may take.

    Returns:
        ``{"platform": "cloud-run", "status", "message", "service_yaml", "image", "bento", "resources",
        "build", "commands": {"build", "run_local", "push", "deploy"}, "gcloud": {"installed", "message"}}``.
        ``status`` is ``"deployed"``, ``"ready"`` (image built, deploy command to run) or ``"spec-only"``.

    Raises:
        KeplerError: a bad release or profile value; Docker missing or not running; a base image that is
            neither local nor pullable; a failed build or deploy. service.yaml is written before the build.
    """
    release_name, version = _release_fields(release)
    if not isinstance(bento_tag, str) or ":" not in bento_tag:
        raise KeplerError(f"bento tag must be NAME:VERSION, got {bento_tag!r}")
    if build_network in ("bridge", "default"):
        raise KeplerError("build_network must be 'host' or 'none': the default bridge network is not used")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    image = image_tag or _default_image_tag(release_name, version)

    spec = service_spec(
        image=image,
        profile=profile,
        release=release,
        service_name=service_name,
        concurrency=concurrency,
        max_instances=max_instances,
        bento_tag=bento_tag,
    )
    service_yaml = write_service_yaml(spec, output_dir / "service.yaml")
    resources = resources_for_profile(profile, concurrency=concurrency)

    deploy_command = f"gcloud run services replace {service_yaml} --region {region}"
    push_command = (
        f"docker push {image}"
        if _has_registry(image)
        else (
            f"docker tag {image} REGION-docker.pkg.dev/PROJECT/REPO/{image} && "
            f"docker push REGION-docker.pkg.dev/PROJECT/REPO/{image}"
        )
    )
    result: dict[str, Any] = {
        "platform": "cloud-run",
        "service_yaml": str(service_yaml),
        "service_name": spec["metadata"]["name"],
        "image": image,
        "bento": bento_tag,
        "region": region,
        "resources": resources,
        "build": {"built": False},
        "commands": {
            "build": None,
            "run_local": f"docker run --rm --network host -e PORT={PORT} {image}",
            "push": push_command,
            "deploy": deploy_command,
        },
    }

    if build:
        result["build"] = _build_image(
            bento_tag,
            bentoml_home=Path(bentoml_home),
            image=image,
            base_image=base_image,
            output_dir=output_dir,
            service_yaml=service_yaml,
            network=build_network,
            timeout_s=build_timeout_s,
        )
        result["commands"]["build"] = result["build"]["command"]

    gcloud = shutil.which("gcloud")
    steps = (
        []
        if _has_registry(image)
        else [
            f"push the image to a registry Cloud Run can pull: {push_command}, "
            f"and set that name as the image in {service_yaml.name}"
        ]
    )
    if gcloud is None:
        message = f"gcloud not installed: run this command where it is: {deploy_command}"
        result["gcloud"] = {"installed": False, "message": message}
        result["status"] = "ready" if result["build"]["built"] else "spec-only"
    elif apply and not steps and result["build"]["built"]:
        for command, what in (
            ([shutil.which("docker") or "docker", "push", image], "docker push"),
            (
                [gcloud, "run", "services", "replace", str(service_yaml), "--region", region],
                "gcloud run services replace",
            ),
        ):
            ran = subprocess.run(command, capture_output=True, text=True, timeout=1800)
            if ran.returncode != 0:
                raise KeplerError(
                    f"{what} failed ({_last_line(ran.stderr)}); check `gcloud auth list` and the "
                    f"project, then run: {deploy_command}"
                )
        message = f"deployed {spec['metadata']['name']} to Cloud Run in {region}"
        result["gcloud"] = {"installed": True, "message": message}
        result["status"] = "deployed"
    else:
        message = f"gcloud found: deploy with: {deploy_command}"
        result["gcloud"] = {"installed": True, "message": message}
        result["status"] = "ready" if result["build"]["built"] else "spec-only"
    if steps:
        message = f"{message}; first {steps[0]}"
    result["next_steps"] = steps + ([] if result["status"] == "deployed" else [deploy_command])
    if int(resources["cpu"]) > 1:
        resources["notes"].append(
            f"{resources['cpu']} CPUs: package the release with workers={resources['cpu']} "
            f"(kepler deploy --workers {resources['cpu']}) so every CPU serves requests"
        )
    result["message"] = message
    print(message, file=sys.stderr)  # stderr: stdout stays clean for `kepler deploy --json`
    return result
