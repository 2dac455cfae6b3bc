"""Lineage: a DAG of data, pipeline, model, release and service nodes, as git-committed records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import kepler as kp
from kepler.errors import VersioningError
from kepler.versioning import gitrepo
from kepler.versioning.lineage import (
    create_data_lineage,
    create_model_lineage,
    create_pipeline_lineage,
    create_release_lineage,
    create_service_lineage,
    get_complete_lineage,
    get_lineage_node,
    lineage_tree,
)
from kepler.versioning.project import Project

KEPLER = str(Path(sys.executable).with_name("kepler"))


def guide_graph() -> None:
    create_data_lineage("sensors-raw", "data/sensors.csv", metadata={"source": "splunk"})
    create_pipeline_lineage("preprocessing-v1.2", "sensor-preprocessing", inputs=["sensors-raw"])
    create_model_lineage("xgboost-v1.3", "predictive-maintenance", inputs=["preprocessing-v1.2"])


def test_guide_block_7_runs_as_written(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    # Crear trazabilidad completa de datos a deployment
    data_lineage = kp.versioning.create_data_lineage(
        node_id="sensors-raw",
        data_path="data/sensors.csv",
        metadata={"source": "splunk", "extraction_time": "2025-09-07T08:00:00Z"},
    )

    pipeline_lineage = kp.versioning.create_pipeline_lineage(
        node_id="preprocessing-v1.2",
        pipeline_name="sensor-preprocessing",
        inputs=["sensors-raw"],
        metadata={"steps": ["scaler", "polynomial", "selection"]},
    )

    model_lineage = kp.versioning.create_model_lineage(
        node_id="xgboost-v1.3",
        model_name="predictive-maintenance",
        inputs=["preprocessing-v1.2"],
        metadata={"algorithm": "xgboost", "accuracy": 0.94},
    )

    # Obtener trazabilidad completa
    complete_lineage = kp.versioning.get_complete_lineage("xgboost-v1.3")
    print("Trazabilidad completa desde datos hasta modelo:")
    for step in complete_lineage:
        print(f"  {step['node_id']} → {step['outputs']}")

    assert capsys.readouterr().out == (
        "Trazabilidad completa desde datos hasta modelo:\n"
        "  sensors-raw → ['preprocessing-v1.2']\n"
        "  preprocessing-v1.2 → ['xgboost-v1.3']\n"
        "  xgboost-v1.3 → []\n"
    )
    assert data_lineage["kind"] == "data" and data_lineage["name"] == "data/sensors.csv"
    assert pipeline_lineage["inputs"] == ["sensors-raw"] and model_lineage["metadata"]["accuracy"] == 0.94
    assert [s["kind"] for s in complete_lineage] == ["data", "pipeline", "model"]
    assert [s["relation"] for s in complete_lineage] == ["upstream", "upstream", "self"]
    assert get_lineage_node("sensors-raw")["outputs"] == ["preprocessing-v1.2"]


def test_complete_lineage_goes_up_and_down_in_topological_order(project: Project) -> None:
    guide_graph()
    create_data_lineage("maintenance-raw", "data/maintenance.csv")
    create_pipeline_lineage("join-v1", "join", inputs=["sensors-raw", "maintenance-raw"])
    create_model_lineage("lgbm-v1", "predictive-maintenance", inputs=["join-v1", "preprocessing-v1.2"])
    create_release_lineage("stable-v1.0", "stable-v1.0", inputs=["xgboost-v1.3"])
    create_release_lineage("canary-v1.1", "canary-v1.1", inputs=["xgboost-v1.3", "lgbm-v1"])
    create_service_lineage(
        "pm-service", "pm-cloud-run", inputs=["stable-v1.0"], metadata={"platform": "cloud_run"}
    )
    create_data_lineage("unrelated", "data/other.csv")

    steps = get_complete_lineage("xgboost-v1.3")
    order = [s["node_id"] for s in steps]
    assert set(order) == {
        "sensors-raw",
        "preprocessing-v1.2",
        "xgboost-v1.3",
        "stable-v1.0",
        "canary-v1.1",
        "pm-service",
    }  # not lgbm-v1's own branch, nor unrelated nodes
    position = {node: i for i, node in enumerate(order)}
    for step in steps:
        assert all(position[i] < position[step["node_id"]] for i in step["inputs"] if i in position)
    assert order[:3] == ["sensors-raw", "preprocessing-v1.2", "xgboost-v1.3"]
    by_id = {s["node_id"]: s for s in steps}
    assert sorted(by_id["xgboost-v1.3"]["outputs"]) == ["canary-v1.1", "stable-v1.0"]
    assert sorted(by_id["sensors-raw"]["outputs"]) == [
        "join-v1",
        "preprocessing-v1.2",
    ]  # every output, on path or not
    assert by_id["pm-service"]["relation"] == "downstream"
    assert by_id["pm-service"]["metadata"] == {"platform": "cloud_run"}

    # From a source, everything downstream of it; from the service, everything upstream.
    assert [s["node_id"] for s in get_complete_lineage("maintenance-raw")][:2] == [
        "maintenance-raw",
        "join-v1",
    ]
    upstream = [s["node_id"] for s in get_complete_lineage("pm-service")]
    assert upstream == ["sensors-raw", "preprocessing-v1.2", "xgboost-v1.3", "stable-v1.0", "pm-service"]


def test_unknown_inputs_and_nodes(project: Project) -> None:
    with pytest.raises(VersioningError, match="unknown lineage input.*'sensors-raw'"):
        create_pipeline_lineage("p", "prep", inputs=["sensors-raw"])
    with pytest.raises(VersioningError, match="unknown lineage node 'ghost'"):
        get_complete_lineage("ghost")
    with pytest.raises(VersioningError, match="unknown lineage node"):
        get_lineage_node("ghost")
    with pytest.raises(VersioningError, match="inputs must be a list"):
        create_model_lineage("m", "model", inputs="p")
    assert project.store.names("lineage") == []


def test_names_with_path_separators_are_refused(project: Project) -> None:
    with pytest.raises(VersioningError, match="not allowed"):
        create_data_lineage("../escape", "data/sensors.csv")
    with pytest.raises(VersioningError, match="not allowed"):
        create_data_lineage("a/b", "data/sensors.csv")
    create_data_lineage("raw", "data/sensors.csv")
    with pytest.raises(VersioningError, match="not allowed"):
        create_pipeline_lineage("p", "prep", inputs=["../raw"])
    assert not (project.root / ".kepler" / "escape.json").exists()


def test_cycles_are_refused_and_named(project: Project) -> None:
    create_data_lineage("raw", "data/sensors.csv")
    with pytest.raises(VersioningError, match=r"cycle p -> p"):
        create_pipeline_lineage("p", "prep", inputs=["raw", "p"])

    # A record can still name a node that is gone (deleted by hand, a merge): recreating that node
    # downstream of the record would close a loop.
    create_pipeline_lineage("p", "prep", inputs=["raw"])
    create_model_lineage("m", "model", inputs=["p"])
    create_release_lineage("r", "release", inputs=["m"])
    project.store.path("lineage", "m").unlink()
    with pytest.raises(VersioningError, match=r"would close the cycle m -> r -> m"):
        create_model_lineage("m", "model", inputs=["r"])
    assert not project.store.exists("lineage", "m")


def test_stored_cycles_are_reported_not_looped_on(project: Project) -> None:
    create_data_lineage("raw", "data/sensors.csv")
    create_pipeline_lineage("p", "prep", inputs=["raw"])
    create_model_lineage("m", "model", inputs=["p"])
    record = project.store.read("lineage", "p")
    record["inputs"] = ["raw", "m"]  # a hand edit closing p -> m -> p
    with project.store.lock("lineage"):
        project.store.write("lineage", "p", record)
    with pytest.raises(VersioningError, match="cycle"):
        get_complete_lineage("m")
    assert lineage_tree("m")["upstream"][0]["upstream"][1]["repeated"] is True


def test_node_ids_are_immutable(project: Project) -> None:
    first = create_data_lineage("raw", "data/sensors.csv", metadata={"source": "splunk"})
    again = create_data_lineage("raw", "data/sensors.csv", metadata={"source": "splunk"})
    assert again == first
    with pytest.raises(VersioningError, match="already exists with other content"):
        create_data_lineage("raw", "data/sensors.csv", metadata={"source": "csv"})
    with pytest.raises(VersioningError, match="already exists"):
        create_model_lineage("raw", "model", inputs=[])
    absolute = create_data_lineage("abs", str(project.root / "data" / "x.csv"))
    assert absolute["name"] == "data/x.csv"  # inside the project: stored relative to its root


def test_nodes_are_committed_to_git(project: Project) -> None:
    guide_graph()
    log = gitrepo.git(project.root, "log", "--format=%s").splitlines()
    assert log[:3] == [
        "lineage model xgboost-v1.3 <- preprocessing-v1.2",
        "lineage pipeline preprocessing-v1.2 <- sensors-raw",
        "lineage data sensors-raw",
    ]
    committed = json.loads(
        gitrepo.git(project.root, "show", "HEAD:.kepler/records/lineage/xgboost-v1.3.json")
    )
    assert committed["inputs"] == ["preprocessing-v1.2"] and committed["kind"] == "model"
    assert gitrepo.git(project.root, "status", "--porcelain", "--", ".kepler/records") == ""


def test_lineage_tree_and_cli(project: Project) -> None:
    guide_graph()
    create_release_lineage("stable-v1.0", "stable-v1.0", inputs=["xgboost-v1.3"])
    tree = lineage_tree("preprocessing-v1.2")
    assert [n["node_id"] for n in tree["upstream"]] == ["sensors-raw"]
    assert tree["downstream"][0]["node_id"] == "xgboost-v1.3"
    assert tree["downstream"][0]["downstream"][0]["node_id"] == "stable-v1.0"

    env = {k: v for k, v in os.environ.items() if k != "KEPLER_DEBUG"}
    done = subprocess.run(
        [KEPLER, "versioning", "lineage", "preprocessing-v1.2"],
        capture_output=True,
        text=True,
        cwd=project.root,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "preprocessing-v1.2" in lines[0]
    text = done.stdout
    assert (
        text.index("upstream")
        < text.index("sensors-raw")
        < text.index("downstream")
        < text.index("xgboost-v1.3")
        < text.index("stable-v1.0")
    )
    done = subprocess.run(
        [KEPLER, "versioning", "lineage", "xgboost-v1.3", "--json"],
        capture_output=True,
        text=True,
        cwd=project.root,
        env=env,
        timeout=120,
    )
    assert json.loads(done.stdout)["upstream"][0]["upstream"][0]["node_id"] == "sensors-raw"
    done = subprocess.run(
        [KEPLER, "versioning", "lineage", "ghost"],
        capture_output=True,
        text=True,
        cwd=project.root,
        env=env,
        timeout=120,
    )
    assert done.returncode == 11 and "unknown lineage node 'ghost'" in done.stderr
