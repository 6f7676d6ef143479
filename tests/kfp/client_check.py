"""The kfp 1.8 SDK's own client against Drover: what `kfp.Client` does
before and around creating a run (health, the Default experiment, an
experiment by name), and the run service as the SDK reaches it.

Usage: client_check.py HOST TOKEN
Prints one JSON object on stdout with what each call answered; the Rust
test (tests/tests/kfp_client.rs) asserts on it. Exit 0 unless the client
itself fails in a way the object cannot say.
"""

import json
import sys

import kfp
import kfp_server_api


def main():
    host, token = sys.argv[1], sys.argv[2]
    out = {}
    # Construction calls GET /apis/v1beta1/healthz (no namespace is set).
    client = kfp.Client(host=host, existing_token=token)
    health = client.get_kfp_healthz()
    out["multi_user"] = health.multi_user

    default = client.get_experiment(experiment_name="Default")
    out["default_id"] = default.id
    out["default_name"] = default.name
    out["default_storage_state"] = default.storage_state
    out["default_created_at"] = default.created_at.isoformat()

    # What create_run_from_pipeline_package does first: get-or-create by name.
    made = client.create_experiment(name="drover-e2e", description="made by the SDK")
    again = client.create_experiment(name="drover-e2e")
    out["created_id"] = made.id
    out["created_again_id"] = again.id
    out["created_by_id_name"] = client.get_experiment(experiment_id=made.id).name
    out["default_again_id"] = client.create_experiment(name="Default").id
    listed = client.list_experiments(page_size=10)
    out["experiments_total"] = listed.total_size

    try:
        client.get_experiment(experiment_id="no-such-experiment")
        out["missing"] = None
    except kfp_server_api.ApiException as e:
        out["missing"] = {"status": e.status, "body": json.loads(e.body)}

    # The run service as the SDK lists runs of an experiment.
    try:
        runs = client.list_runs(experiment_id=default.id, sort_by="name desc", page_size=5)
        out["list_runs"] = {"status": 200, "total_size": runs.total_size}
    except kfp_server_api.ApiException as e:
        out["list_runs"] = {"status": e.status, "body": json.loads(e.body)}

    print(json.dumps(out))


if __name__ == "__main__":
    main()
