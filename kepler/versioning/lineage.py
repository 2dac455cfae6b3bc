"""End-to-end lineage: a directed acyclic graph of data, pipeline, model, release, service and monitoring nodes.

Each node is a JSON record in ``.kepler/records/lineage/<node_id>.json`` (committed to git)
holding its kind, the name of what it stands for, its inputs and metadata. Edges go from an
input to the node that lists it; a node's *outputs* are the nodes that list it as an input.

Rules:

- Inputs must already exist, so the graph grows from its sources (data) towards services.
- A node that would close a cycle is refused, naming the cycle (``a -> b -> a``).
- Node ids are immutable: creating an existing id again with the same kind, name, inputs and
  metadata returns it unchanged; with anything different it is an error (create a new id).
- Any kind may feed any kind (a model can feed a feature pipeline); only cycles are refused.

Example (guide section 7)::

    kp.versioning.create_data_lineage("sensors-raw", "data/sensors.csv", metadata={"source": "splunk"})
    kp.versioning.create_pipeline_lineage("preprocessing-v1.2", "sensor-preprocessing", inputs=["sensors-raw"])
    kp.versioning.create_model_lineage("xgboost-v1.3", "predictive-maintenance", inputs=["preprocessing-v1.2"])
    for step in kp.versioning.get_complete_lineage("xgboost-v1.3"):   # sources first, then descendants
        print(step["node_id"], "→", step["outputs"])
"""

from __future__ import annotations

import heapq
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kepler.clock import now
from kepler.errors import VersioningError
from kepler.records import Record
from kepler.versioning import gitrepo
from kepler.versioning.names import check_name
from kepler.versioning.project import current

KIND = "lineage"
NODE_KINDS = ("data", "pipeline", "model", "release", "service", "monitoring")
_RANK = {kind: rank for rank, kind in enumerate(NODE_KINDS)}


@dataclass
class LineageNode(Record):
    """One node of the graph (its record: ``.kepler/records/lineage/<node_id>.json``). The API gives nodes
    as dicts (:func:`get_lineage_node`), with their ``outputs`` as well.

    Schema versions: 1, the record as written before records carried ``schema_version``.

    Attributes:
        node_id: Its id (immutable).
        kind: data, pipeline, model, release, service or monitoring.
        name: What it stands for (a data path, a pipeline, model, release or service name).
        inputs: The ids of the nodes it is made from.
        metadata: What the caller attached.
        created_at: UTC time of creation.
        created_by: The git user who created it.
    """

    KIND = "lineage node"
    ERROR = VersioningError

    node_id: str
    kind: str | None = None
    name: str | None = None
    inputs: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: str | None = None
    created_by: str | None = None


def _graph(project: Any) -> dict[str, LineageNode]:
    """Every node record by id (a file without a node id is not a node)."""
    nodes = (LineageNode.from_dict(r) for r in project.store.all(KIND) if "node_id" in r)
    return {node.node_id: node for node in nodes}


def _outputs(graph: dict[str, LineageNode]) -> dict[str, list[str]]:
    outputs: dict[str, list[str]] = {node_id: [] for node_id in graph}
    for node_id in sorted(graph, key=lambda n: _order_key(graph[n])):
        for source in graph[node_id].inputs:
            outputs.setdefault(source, []).append(node_id)
    return outputs


def _order_key(node: LineageNode) -> tuple[int, str, str]:
    return (_RANK.get(node.kind or "", len(NODE_KINDS)), node.created_at or "", node.node_id)


def _view(node: LineageNode, outputs: dict[str, list[str]]) -> dict[str, Any]:
    """A node as the API gives it: its record's fields and its outputs."""
    return {
        "node_id": node.node_id,
        "kind": node.kind,
        "name": node.name,
        "inputs": list(node.inputs),
        "outputs": list(outputs.get(node.node_id, [])),
        "metadata": dict(node.metadata or {}),
        "created_at": node.created_at,
        "created_by": node.created_by,
    }


def _upstream_path(graph: dict[str, LineageNode], start: str, goal: str) -> list[str] | None:
    """A chain ``start, its input, that one's input, ..., goal`` following inputs, or None."""
    stack = [(start, [start])]
    seen: set[str] = set()
    while stack:
        node, path = stack.pop()
        if node == goal:
            return path
        if node in seen:
            continue
        seen.add(node)
        for source in graph[node].inputs if node in graph else []:
            stack.append((source, [*path, source]))
    return None


def _check_inputs(graph: dict[str, LineageNode], node_id: str, inputs: list[str]) -> None:
    if node_id in inputs:
        raise VersioningError(
            f"lineage node {node_id!r} cannot be its own input (cycle {node_id} -> {node_id})"
        )
    missing = [i for i in inputs if i not in graph]
    if missing:
        raise VersioningError(
            f"unknown lineage input(s) {', '.join(map(repr, missing))} for {node_id!r}; "
            f"create those nodes first (a data node with create_data_lineage)"
        )
    for source in inputs:
        # A record may still list node_id as an input (a node deleted by hand, or a merge): follow the inputs.
        path = _upstream_path(graph, source, node_id)
        if path:
            cycle = [node_id, *reversed(path[:-1]), node_id]
            raise VersioningError(
                f"lineage node {node_id!r} with input {source!r} would close the cycle "
                f"{' -> '.join(cycle)}; lineage must stay acyclic"
            )


def _inputs(inputs: object) -> list[str]:
    if inputs is None:
        return []
    if isinstance(inputs, str) or not isinstance(inputs, (list, tuple)):
        raise VersioningError(f"inputs must be a list of node ids, got {inputs!r}")
    unique: list[str] = []
    for value in inputs:
        check_name(value, "lineage input")
        if value not in unique:
            unique.append(value)
    return unique


def _metadata(metadata: object) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise VersioningError(f"metadata must be a dict, got {type(metadata).__name__}")
    try:
        return json.loads(json.dumps(metadata))
    except (TypeError, ValueError) as exc:
        raise VersioningError(
            f"metadata must hold JSON values (text, numbers, lists, dicts): {exc}"
        ) from None


def _create(
    kind: str, node_id: str, name: object, inputs: object, metadata: object, project: Any
) -> dict[str, Any]:
    project = current(project)
    check_name(node_id, "lineage node id")
    if not isinstance(name, str) or not name.strip():
        raise VersioningError(
            f"the {kind} name of lineage node {node_id!r} must be a non-empty string, got {name!r}"
        )
    sources, facts = _inputs(inputs), _metadata(metadata)
    with project.store.lock(KIND):
        graph = _graph(project)
        existing = graph.get(node_id)
        if existing is not None:
            wanted = (kind, name, sources, facts)
            if (existing.kind, existing.name, existing.inputs, existing.metadata) == wanted:
                return _view(existing, _outputs(graph))
            raise VersioningError(
                f"lineage node {node_id!r} already exists with other content (node ids are "
                f"immutable); give the new node another id, such as {node_id}-2"
            )
        _check_inputs(graph, node_id, sources)
        node = LineageNode(
            node_id=node_id,
            kind=kind,
            name=name,
            inputs=sources,
            metadata=facts,
            created_at=now(),
            created_by=gitrepo.user(project.root),
        )
        path = project.store.write(KIND, node_id, node.to_dict())
        with project.store.lock("git"):
            arrow = f" <- {', '.join(sources)}" if sources else ""
            gitrepo.commit(project.root, [path], f"lineage {kind} {node_id}{arrow}")
        graph[node_id] = node
        return _view(node, _outputs(graph))


def create_data_lineage(
    node_id: str, data_path: str, metadata: dict[str, Any] | None = None, *, project: Any = None
) -> dict[str, Any]:
    """Creates a data node (a source: it has no inputs).

    ``data_path`` is stored as given, or relative to the project root when it is an absolute
    path inside the project. Returns the node (``node_id, kind, name, inputs, outputs, metadata, ...``).
    """
    project = current(project)
    path = str(data_path) if isinstance(data_path, (str, Path)) else data_path
    if isinstance(path, str) and Path(path).is_absolute():
        try:
            path = Path(path).resolve().relative_to(project.root.resolve()).as_posix()
        except ValueError:
            pass
    return _create("data", node_id, path, [], metadata, project)


def create_pipeline_lineage(
    node_id: str,
    pipeline_name: str,
    inputs: list[str],
    metadata: dict[str, Any] | None = None,
    *,
    project: Any = None,
) -> dict[str, Any]:
    """Creates a feature-pipeline node fed by ``inputs`` (existing node ids)."""
    return _create("pipeline", node_id, pipeline_name, inputs, metadata, project)


def create_model_lineage(
    node_id: str,
    model_name: str,
    inputs: list[str],
    metadata: dict[str, Any] | None = None,
    *,
    project: Any = None,
) -> dict[str, Any]:
    """Creates a model node fed by ``inputs`` (existing node ids)."""
    return _create("model", node_id, model_name, inputs, metadata, project)


def create_release_lineage(
    node_id: str,
    release_name: str,
    inputs: list[str],
    metadata: dict[str, Any] | None = None,
    *,
    project: Any = None,
) -> dict[str, Any]:
    """Creates a release node fed by ``inputs`` (existing node ids)."""
    return _create("release", node_id, release_name, inputs, metadata, project)


def create_service_lineage(
    node_id: str,
    service_name: str,
    inputs: list[str],
    metadata: dict[str, Any] | None = None,
    *,
    project: Any = None,
) -> dict[str, Any]:
    """Creates a service (deployment) node fed by ``inputs`` (existing node ids)."""
    return _create("service", node_id, service_name, inputs, metadata, project)


def create_monitoring_lineage(
    node_id: str,
    check: str,
    inputs: list[str],
    metadata: dict[str, Any] | None = None,
    *,
    project: Any = None,
) -> dict[str, Any]:
    """Creates a monitoring node (one monitoring run) fed by the release or service it checked."""
    return _create("monitoring", node_id, check, inputs, metadata, project)


def get_lineage_node(node_id: str, *, project: Any = None) -> dict[str, Any]:
    """One node with its inputs and outputs.

    Raises:
        VersioningError: no such node.
    """
    graph = _graph(current(project))
    return _view(_known(graph, node_id), _outputs(graph))


def _known(graph: dict[str, LineageNode], node_id: str) -> LineageNode:
    check_name(node_id, "lineage node id")
    if node_id not in graph:
        raise VersioningError(
            f"unknown lineage node {node_id!r}; create it with kp.versioning.create_*_lineage"
        )
    return graph[node_id]


def _reach(graph: dict[str, LineageNode], start: str, neighbours: dict[str, list[str]]) -> set[str]:
    seen: set[str] = set()
    stack = list(neighbours.get(start, []))
    while stack:
        node = stack.pop()
        if node in seen or node not in graph:
            continue
        seen.add(node)
        stack.extend(neighbours.get(node, []))
    return seen


def get_complete_lineage(node_id: str, *, project: Any = None) -> list[dict[str, Any]]:
    """The node's whole lineage: its ancestors, itself and its descendants, in topological order.

    Sources come first and every node comes after all of its inputs (ties: data before pipeline,
    model, release, service, then by creation time). Each step is a dict with ``node_id``,
    ``kind``, ``name``, ``inputs``, ``outputs`` (every node that lists it as an input), ``metadata``,
    ``created_at`` and ``relation`` (``upstream``, ``self`` or ``downstream``).

    Raises:
        VersioningError: an unknown node, or a cycle in the stored records (edited by hand).
    """
    graph = _graph(current(project))
    _known(graph, node_id)
    outputs = _outputs(graph)
    inputs = {n: [i for i in node.inputs if i in graph] for n, node in graph.items()}
    upstream = _reach(graph, node_id, inputs)
    downstream = _reach(graph, node_id, outputs)
    if node_id in upstream or upstream & downstream:
        cycle = _upstream_path(graph, node_id, node_id) or [node_id]
        raise VersioningError(
            f"the lineage records hold a cycle through {node_id!r} ({' <- '.join(cycle)}); "
            f"restore .kepler/records/lineage from git"
        )
    members = upstream | downstream | {node_id}
    indegree = {n: sum(1 for i in inputs[n] if i in members) for n in members}
    ready = [(_order_key(graph[n]), n) for n in members if indegree[n] == 0]
    heapq.heapify(ready)
    steps = []
    while ready:
        _, node = heapq.heappop(ready)
        step = _view(graph[node], outputs)
        step["relation"] = "self" if node == node_id else "upstream" if node in upstream else "downstream"
        steps.append(step)
        for child in outputs.get(node, []):
            if child in members:
                indegree[child] -= 1
                if indegree[child] == 0:
                    heapq.heappush(ready, (_order_key(graph[child]), child))
    if len(steps) != len(members):
        stuck = sorted(members - {s["node_id"] for s in steps})
        raise VersioningError(
            f"the lineage records hold a cycle among {', '.join(stuck)}; "
            f"restore .kepler/records/lineage from git"
        )
    return steps


def lineage_tree(node_id: str, *, project: Any = None) -> dict[str, Any]:
    """The node with its upstream tree (inputs, their inputs...) and downstream tree (outputs...).

    Returns:
        ``{node_id, kind, name, metadata, upstream: [...], downstream: [...]}``, where each upstream
        entry has the same fields and its own ``upstream`` list, and each downstream entry its own
        ``downstream`` list. A node reached twice (a diamond) is shown once in full, then with
        ``repeated: True`` and no children.

    Raises:
        VersioningError: an unknown node.
    """
    graph = _graph(current(project))
    root = _known(graph, node_id)
    outputs = _outputs(graph)
    inputs = {n: list(node.inputs) for n, node in graph.items()}

    def grow(
        node: str, direction: str, links: dict[str, list[str]], shown: set[str], path: set[str]
    ) -> dict[str, Any]:
        record = graph.get(node) or LineageNode(node_id=node, kind="missing")
        entry: dict[str, Any] = {
            "node_id": node,
            "kind": record.kind,
            "name": record.name,
            "metadata": dict(record.metadata or {}),
            direction: [],
        }
        if node in shown or node in path:
            entry["repeated"] = True
            return entry
        shown.add(node)
        entry[direction] = [grow(n, direction, links, shown, path | {node}) for n in links.get(node, [])]
        return entry

    tree: dict[str, Any] = {
        "node_id": node_id,
        "kind": root.kind,
        "name": root.name,
        "metadata": dict(root.metadata or {}),
    }
    shown_up: set[str] = set()
    shown_down: set[str] = set()
    tree["upstream"] = [grow(n, "upstream", inputs, shown_up, {node_id}) for n in inputs.get(node_id, [])]
    tree["downstream"] = [
        grow(n, "downstream", outputs, shown_down, {node_id}) for n in outputs.get(node_id, [])
    ]
    return tree
