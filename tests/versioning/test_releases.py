"""Releases in real git projects: semantic versions, promotions, audit trail, MLflow aliases, the CLI."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest

import kepler as kp
from kepler.errors import VersioningError
from kepler.versioning import gitrepo
from kepler.versioning.project import Project
from kepler.versioning.releases import (
    create_release,
    get_release,
    list_releases,
    promote_release,
    record_deployment,
)

KEPLER = str(Path(sys.executable).with_name("kepler"))


def git_log(project: Project) -> list[str]:
    return gitrepo.git(project.root, "log", "--format=%s").splitlines()


def kepler(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("KEPLER_DEBUG", "MLFLOW_TRACKING_URI")}
    return subprocess.run([KEPLER, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120)


def test_guide_block_6_runs_as_written(project: Project) -> None:
    # Crear release para producción
    release = kp.versioning.create_release(
        release_name="stable-v1.0",
        version="1.0.0",
        components={
            "data_version": "sensors-v1.0",
            "model_version": "xgboost-v1.3",
            "pipeline_version": "preprocessing-v1.2",
        },
        status="production",
    )

    # Promover release
    kp.versioning.promote_release("stable-v1.0", target_environment="production")

    assert (
        release.release_id == "stable-v1.0" and release.status == "production" and release.version == "1.0.0"
    )
    assert get_release("stable-v1.0").history == release.history  # promoting to where it is changes nothing
    assert [e["action"] for e in release.history] == ["create"]
    assert release.components["model_version"] == "xgboost-v1.3"

    # Reproducir release completo: delegated to kp.reproduce.from_version on the release's model version.
    # No unified version of that name in this project: the reproduction says so in its result.
    reproduction = kp.versioning.reproduce_release("stable-v1.0")
    assert reproduction.success is False and "xgboost-v1.3" in reproduction.error_message
    assert get_release("stable-v1.0").history[-1]["action"] == "reproduce"


def test_guide_workflow_release_ready_for_deployment(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    automl_result = {"best_algorithm": "xgboost", "deployment_ready": True}
    if automl_result["deployment_ready"]:
        release = kp.versioning.create_release(
            f"production-{automl_result['best_algorithm']}-v2.0",
            version="2.0.0",
            status="ready_for_deployment",
        )

        print(f"✅ Release creado: {release.release_id}")
        print(f"Listo para: kepler deploy {release.release_id}")
    assert "kepler deploy production-xgboost-v2.0" in capsys.readouterr().out
    assert release.status == "staging"  # ready_for_deployment is the guide's word for staging


def test_reproduce_release_needs_something_to_reproduce(project: Project) -> None:
    create_release("bare", version="1.0.0")
    with pytest.raises(VersioningError, match="names no unified version"):
        kp.versioning.reproduce_release("bare")


@pytest.mark.parametrize("bad", ["1.0", "01.0.0", "latest", "1.0.0-", "1.0.0.0", "", None])
def test_bad_semantic_versions_are_refused_with_an_example(project: Project, bad: object) -> None:
    with pytest.raises(VersioningError, match="MAJOR.MINOR.PATCH such as '1.0.0'"):
        create_release("r", version=bad)
    assert list_releases() == []


def test_versions_are_normalized(project: Project) -> None:
    assert create_release("a", version="v1.2.3").version == "1.2.3"
    assert create_release("b", version="2.0.0-rc.1+build.7").version == "2.0.0-rc.1+build.7"


def test_duplicate_release_name_and_version(project: Project) -> None:
    create_release("stable-v1.0", version="1.0.0")
    with pytest.raises(VersioningError, match="already exists"):
        create_release("stable-v1.0", version="1.0.1")
    with pytest.raises(VersioningError, match="already released as 'stable-v1.0'.*1.0.1"):
        create_release("again", version="v1.0.0")
    with pytest.raises(VersioningError, match="already released"):
        create_release("again", version="1.0.0+other-build")  # build metadata does not make another version
    assert create_release("other-line", version="1.0.0", model_line="anomaly").model_line == "anomaly"
    assert create_release("rc", version="1.0.0-rc.1").version == "1.0.0-rc.1"


def test_bad_names_and_statuses(project: Project) -> None:
    with pytest.raises(VersioningError, match="not allowed"):
        create_release("../evil", version="1.0.0")
    with pytest.raises(VersioningError, match="not allowed"):
        get_release("../evil")
    with pytest.raises(VersioningError, match="unknown release status"):
        create_release("r", version="1.0.0", status="live")
    with pytest.raises(VersioningError, match="unknown release 'ghost'"):
        promote_release("ghost", "staging")
    with pytest.raises(VersioningError, match="unknown unified version"):
        create_release("r", version="1.0.0", unified_version="nope")
    with pytest.raises(VersioningError, match="components must be"):
        create_release("r", version="1.0.0", components=["model"])
    assert not (project.root / ".kepler" / "records" / "releases").exists() or list_releases() == []


def test_promotion_cannot_skip_a_state(project: Project) -> None:
    create_release("r1", version="1.0.0")
    with pytest.raises(
        VersioningError, match="draft and cannot move to production; allowed next: staging or archived"
    ):
        promote_release("r1", target_environment="production")
    assert get_release("r1").status == "draft"
    assert promote_release("r1", "ready_for_deployment").status == "staging"
    assert promote_release("r1", "production").status == "production"
    with pytest.raises(VersioningError, match="allowed next: archived"):
        promote_release("r1", "staging")
    assert promote_release("r1", "archived").status == "archived"
    with pytest.raises(VersioningError, match="archived is final"):
        promote_release("r1", "production")
    history = get_release("r1").history
    assert [(e["action"], e["from"], e["to"]) for e in history] == [
        ("create", None, "draft"),
        ("promote", "draft", "staging"),
        ("promote", "staging", "production"),
        ("archive", "production", "archived"),
    ]
    assert all(e["by"] == gitrepo.user(project.root) and e["at"] for e in history)


def test_one_production_release_per_model_line(project: Project) -> None:
    create_release("pm-v1", version="1.0.0", status="production", model_line="pm")
    create_release("qc-v1", version="1.0.0", status="production", model_line="qc")
    create_release("pm-v2", version="2.0.0", model_line="pm")
    promote_release("pm-v2", "staging")
    promote_release("pm-v2", "production")

    old, new, other = get_release("pm-v1"), get_release("pm-v2"), get_release("qc-v1")
    assert (old.status, new.status, other.status) == ("archived", "production", "production")
    assert old.history[-1]["action"] == "archive" and old.history[-1]["from"] == "production"
    assert old.history[-1]["reason"] == "superseded by pm-v2 (2.0.0)"
    assert [e["to"] for e in new.history] == ["draft", "staging", "production"]
    assert [r.release_id for r in list_releases(model_line="pm")] == ["pm-v1", "pm-v2"]
    assert [r.release_id for r in list_releases(status="production")] == ["pm-v2", "qc-v1"]
    assert git_log(project)[0] == "release pm-v2 2.0.0: staging -> production; archived pm-v1"

    # Created directly at production, a release archives the line's current one too.
    create_release("pm-v3", version="3.0.0", status="production", model_line="pm")
    assert get_release("pm-v2").status == "archived"
    assert [r.release_id for r in list_releases(model_line="pm", status="production")] == ["pm-v3"]


def test_records_are_committed_to_git(project: Project) -> None:
    create_release(
        "stable-v1.0", version="1.0.0", components={"model_version": "xgboost-v1.3"}, notes="first"
    )
    promote_release("stable-v1.0", "staging")
    record_deployment(
        "stable-v1.0", platform="local", target="http://127.0.0.1:3000", details={"bento": "pm:abc"}
    )
    assert git_log(project)[:3] == [
        "release stable-v1.0 1.0.0: deploy to local http://127.0.0.1:3000",
        "release stable-v1.0 1.0.0: draft -> staging",
        "release stable-v1.0 1.0.0 created (draft)",
    ]
    assert gitrepo.git(project.root, "status", "--porcelain", "--", ".kepler/records") == ""
    committed = json.loads(
        gitrepo.git(project.root, "show", "HEAD:.kepler/records/releases/stable-v1.0.json")
    )
    assert committed["history"][-1]["action"] == "deploy"
    assert committed["history"][-1]["details"] == {"bento": "pm:abc"}
    assert committed["notes"] == "first" and committed["git_commit"]
    assert committed["schema_version"] == 1  # kepler.records: every record carries its schema version
    record_deployment("stable-v1.0", platform="local", target="svc", rollback=True)
    assert get_release("stable-v1.0").history[-1]["action"] == "rollback"


def _register_versions(project: Project, name: str, count: int) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=project.tracking_uri)
    client.create_registered_model(name)
    for number in range(count):
        source = project.root / "models" / f"{name}-{number}"
        source.mkdir(parents=True)
        client.create_model_version(name, source=str(source))


def test_mlflow_aliases_follow_the_status(project: Project) -> None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    _register_versions(project, "pm-model", 2)
    client = MlflowClient(tracking_uri=project.tracking_uri)

    def alias(name: str) -> str | None:
        try:
            return str(client.get_model_version_by_alias("pm-model", name).version)
        except MlflowException:
            return None

    r1 = create_release(
        "pm-1.0", version="1.0.0", components={"mlflow_model": {"name": "pm-model", "version": "1"}}
    )
    assert r1.model_line == "pm-model"  # the registered model's name is the default line
    assert alias("staging") is None
    promote_release("pm-1.0", "staging")
    assert (alias("staging"), alias("production")) == ("1", None)
    promote_release("pm-1.0", "production")
    assert (alias("staging"), alias("production")) == (None, "1")

    create_release(
        "pm-1.1", version="1.1.0", components={"mlflow_model": "models:/pm-model/2"}, status="staging"
    )
    assert (alias("staging"), alias("production")) == ("2", "1")
    promote_release("pm-1.1", "production")
    assert (alias("staging"), alias("production")) == (None, "2")
    assert get_release("pm-1.0").status == "archived"  # and archiving it left the new alias alone

    promote_release("pm-1.1", "archived")
    assert (alias("staging"), alias("production")) == (None, None)

    # A release of a unified version takes the registered model version that the unified version records.
    kp.versioning.create_unified_version("pm-uv-1.2", model={"name": "pm-model", "version": "2"})
    r3 = create_release("pm-1.2", version="1.2.0", unified_version="pm-uv-1.2", status="production")
    assert (
        r3.components["mlflow_model"] == {"name": "pm-model", "version": "2"} and r3.model_line == "pm-model"
    )
    assert (alias("staging"), alias("production")) == (None, "2")

    with pytest.raises(VersioningError, match="register that model version first"):
        create_release(
            "pm-9",
            version="9.0.0",
            components={"mlflow_model": {"name": "pm-model", "version": "9"}},
            status="production",
        )
    assert not project.store.exists("releases", "pm-9")
    with pytest.raises(VersioningError, match="not a registered model version"):
        create_release("pm-x", version="9.0.1", components={"mlflow_model": {"name": "pm-model"}})


def test_numeric_model_version_in_an_explicit_line_names_the_registered_model(project: Project) -> None:
    from mlflow import MlflowClient

    _register_versions(project, "qc", 1)
    create_release(
        "qc-1", version="1.0.0", components={"model_version": 1}, model_line="qc", status="production"
    )
    assert (
        MlflowClient(tracking_uri=project.tracking_uri).get_model_version_by_alias("qc", "production").version
        == 1
    )


def test_concurrent_creations_lose_nothing(project: Project) -> None:
    context = multiprocessing.get_context("spawn")
    arguments = [(f"parallel-{i}", f"1.0.{i}") for i in range(8)]
    with context.Pool(8) as pool:
        created = pool.starmap(create_release, arguments)
    assert sorted(r.release_id for r in created) == [name for name, _ in arguments]
    records = list_releases()
    assert sorted((r.release_id, r.version) for r in records) == arguments
    assert all(len(r.history) == 1 for r in records)
    assert sum(line.startswith("release parallel-") for line in git_log(project)) == 8
    assert gitrepo.git(project.root, "status", "--porcelain", "--", ".kepler/records") == ""
    folder = project.root / ".kepler" / "records" / "releases"
    leftovers = [p.name for p in folder.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_cli_release_commands(project: Project) -> None:
    done = kepler(
        "versioning",
        "create-release",
        "stable-v1.0",
        "--version",
        "1.0.0",
        "--status",
        "production",
        cwd=project.root,
    )
    assert done.returncode == 0, done.stderr
    assert "stable-v1.0" in done.stdout and "production" in done.stdout

    done = kepler(
        "versioning",
        "create-release",
        "next",
        "--version",
        "v1.1.0",
        "--components",
        '{"model_version": "xgboost-v1.4"}',
        "--notes",
        "faster",
        "--json",
        cwd=project.root,
    )
    assert done.returncode == 0, done.stderr
    created = json.loads(done.stdout)
    assert created["version"] == "1.1.0" and created["components"] == {"model_version": "xgboost-v1.4"}

    done = kepler("versioning", "promote", "next", "--to", "production", cwd=project.root)
    assert done.returncode == 11 and "allowed next: staging or archived" in done.stderr
    assert kepler("versioning", "promote", "next", "--to", "staging", cwd=project.root).returncode == 0
    done = kepler("versioning", "promote", "next", "--to", "production", "--json", cwd=project.root)
    assert done.returncode == 0 and json.loads(done.stdout)["status"] == "production"

    done = kepler("versioning", "list-releases", "--json", cwd=project.root)
    assert [(r["release_id"], r["status"]) for r in json.loads(done.stdout)] == [
        ("stable-v1.0", "archived"),
        ("next", "production"),
    ]
    done = kepler("versioning", "list-releases", cwd=project.root)
    assert done.returncode == 0 and "stable-v1.0" in done.stdout and "archived" in done.stdout
    done = kepler("versioning", "show-release", "stable-v1.0", cwd=project.root)
    assert done.returncode == 0 and "superseded by next" in done.stdout

    done = kepler("versioning", "create-release", "bad", "--version", "1.0", cwd=project.root)
    assert done.returncode == 11 and "not a semantic version" in done.stderr
    done = kepler("versioning", "create-release", "bad", "--components", "{nope", cwd=project.root)
    assert done.returncode == 2 and "--components" in done.stderr
