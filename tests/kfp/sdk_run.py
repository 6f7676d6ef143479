"""Issue 23's first Done-when check, driven by the real kfp 1.8 SDK: the
three-step pipeline (scheduler/tests/fixtures/kfp/three_step.py: a producer
writing an output parameter and an artifact, two consumers in parallel, a
join) run with `kfp.Client.create_run_from_pipeline_func`, waited for with
`wait_for_run_completion`, its producer's artifact read with
`ReadArtifactV1` and metrics reported with `ReportRunMetricsV1` through the
SDK's `kfp_server_api` client, then the run read again for its metrics.

Usage: sdk_run.py HOST FIXTURES_DIR
Prints one JSON object on stdout; the Rust test (tests/tests/kfp_sdk_e2e.rs)
asserts on it.
"""

import base64
import io
import json
import sys
import tarfile

import kfp
import kfp_server_api


def node(nodes, display):
    found = [n for n in nodes.values() if n.get("displayName") == display]
    if len(found) != 1:
        raise SystemExit(f"expected one node {display!r}: {json.dumps(nodes)}")
    return found[0]


def output(n, name):
    for p in n.get("outputs", {}).get("parameters", []):
        if p["name"] == name:
            return p.get("value")
    return None


def read_one(runs, run_id, node_id, name):
    """The one file of an artifact's gzipped tar, as text."""
    tgz = base64.b64decode(runs.read_artifact(run_id, node_id, name).data)
    with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
        return tar.extractfile(tar.getmembers()[0]).read().decode()


def api_error(e):
    try:
        body = json.loads(e.body)
    except (TypeError, ValueError):
        body = e.body
    return {"status": e.status, "body": body}


def main():
    host, fixtures = sys.argv[1], sys.argv[2]
    sys.path.insert(0, fixtures)
    from three_step import three_step

    out = {}
    client = kfp.Client(host=host)
    result = client.create_run_from_pipeline_func(
        three_step, arguments={"greeting": "howdy"}, run_name="sdk three steps"
    )
    run_id = result.run_id
    out["run_id"] = run_id
    detail = client.wait_for_run_completion(run_id, timeout=150)
    out["status"] = detail.run.status
    out["experiment_refs"] = [
        r.key.type for r in (detail.run.resource_references or []) if r.key
    ]
    workflow = json.loads(detail.pipeline_runtime.workflow_manifest)
    nodes = workflow["status"]["nodes"]
    producer = node(nodes, "produce")
    out["producer_output"] = output(producer, "produce-Output")
    out["consumer_outputs"] = [
        output(node(nodes, d), d + "-Output") for d in ("consume", "consume-2")
    ]
    out["phases"] = sorted({n["phase"] for n in nodes.values()})
    out["producer_artifacts"] = [
        a["name"] for a in producer.get("outputs", {}).get("artifacts", [])
    ]

    # ReadArtifactV1 with the node id from status.nodes and Argo's name.
    runs = client.runs
    read = runs.read_artifact(run_id, producer["id"], "produce-report")
    tgz = base64.b64decode(read.data)
    with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
        members = tar.getmembers()
        out["artifact_members"] = [m.name for m in members]
        out["artifact_content"] = tar.extractfile(members[0]).read().decode()
    # Nobody consumes the join's output, so kfp compiles it as an
    # artifact only: what it says shows both consumers' values arrived.
    out["join_output"] = read_one(runs, run_id, node(nodes, "join")["id"], "join-Output")
    try:
        runs.read_artifact(run_id, producer["id"], "no-such-artifact")
        out["missing_artifact"] = None
    except kfp_server_api.ApiException as e:
        out["missing_artifact"] = api_error(e)

    # ReportRunMetricsV1: per-metric results inside a 200.
    metric = kfp_server_api.ApiRunMetric
    first = runs.report_run_metrics(
        run_id,
        kfp_server_api.ApiReportRunMetricsRequest(
            run_id=run_id,
            metrics=[
                metric(name="accuracy", node_id=producer["id"], number_value=0.75, format="PERCENTAGE"),
                metric(name="Bad_Name", node_id=producer["id"], number_value=1.0),
                metric(name="loss", node_id="", number_value=1.0),
            ],
        ),
    )
    again = runs.report_run_metrics(
        run_id,
        kfp_server_api.ApiReportRunMetricsRequest(
            run_id=run_id,
            metrics=[
                metric(name="accuracy", node_id=producer["id"], number_value=0.25, format="RAW"),
                metric(name="loss", node_id=producer["id"], number_value=0.5, format="RAW"),
            ],
        ),
    )
    out["report_first"] = [[r.metric_name, r.status] for r in first.results]
    out["report_again"] = [[r.metric_name, r.status] for r in again.results]
    shown = client.get_run(run_id).run.metrics or []
    out["metrics"] = sorted(
        [m.name, m.node_id == producer["id"], m.number_value, m.format] for m in shown
    )
    listed = client.list_runs(page_size=10).runs or []
    out["listed_metrics"] = sum(len(r.metrics or []) for r in listed if r.id == run_id)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
