#!/usr/bin/env python3
"""Create a job on Drover through Peloton's own gRPC API, as a Peloton user's
Python client would: the official v1alpha protos (Drover's copies in
seed-api/proto, compiled here with grpcio-tools), a literal Peloton JobSpec
with the seed's enum spellings, JobService.CreateJob, then GetJob.

Usage: peloton_create_job.py HOST:PORT [--name NAME] [--instances N]
Prints the job id, then the job's state and pod stats as GetJob reports
them (protobuf JSON). Exits non-zero on an RPC error, naming its code.
Set up the Python side with scripts/grpc-env.sh.
"""

import argparse
import os
import importlib.resources
import pathlib
import sys
import tempfile

import grpc
from grpc_tools import protoc

REPO = pathlib.Path(__file__).resolve().parents[2]
PROTOS = REPO / "seed-api" / "proto"


def compile_protos(out):
    """Peloton's protos (and the mesos.v1 types they use) as Python modules."""
    well_known = importlib.resources.files("grpc_tools") / "_proto"
    files = [str(p.relative_to(PROTOS)) for d in ("peloton", "mesos") for p in (PROTOS / d).rglob("*.proto")]
    args = ["protoc", f"-I{PROTOS}", f"-I{well_known}", f"--python_out={out}", f"--grpc_python_out={out}", *files]
    if protoc.main(args) != 0:
        sys.exit("cannot compile the Peloton protos")
    sys.path.insert(0, out)


def job_spec(name, instances):
    """A Peloton stateless JobSpec as Peloton's docs write one."""
    return {
        "name": name,
        "owner": "examples",
        "owning_team": "drover",
        "description": "a web-ish service started over gRPC",
        "labels": [{"key": "app", "value": name}],
        "instance_count": instances,
        "sla": {"priority": 1, "maximum_unavailable_instances": 1},
        "default_spec": {
            "labels": [{"key": "tier", "value": "example"}],
            "containers": [
                {
                    "name": "main",
                    "resource": {"cpu_limit": 0.1, "mem_limit_mb": 32, "disk_limit_mb": 16},
                    "command": {"value": "sleep 3600", "shell": True},
                    "liveness_check": {
                        "enabled": True,
                        "type": "HEALTH_CHECK_TYPE_COMMAND",
                        "command_check": {"command": "true"},
                        "initial_interval_secs": 1,
                        "interval_secs": 5,
                        "max_consecutive_failures": 3,
                        "timeout_secs": 2,
                    },
                }
            ],
            "constraint": {
                "type": "CONSTRAINT_TYPE_LABEL",
                "label_constraint": {
                    "kind": "LABEL_CONSTRAINT_KIND_POD",
                    "condition": "LABEL_CONSTRAINT_CONDITION_LESS_THAN",
                    "label": {"key": "app", "value": name},
                    "requirement": 1,
                },
            },
        },
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("address", help="the scheduler's --listen address, HOST:PORT")
    parser.add_argument("--name", default="grpc-example")
    parser.add_argument("--instances", type=int, default=2)
    parser.add_argument(
        "--token",
        default=os.environ.get("DROVER_TOKEN"),
        help="a bearer token from the scheduler's credentials file (default: $DROVER_TOKEN)",
    )
    args = parser.parse_args()
    # Every call carries the token, as Peloton's clients carry theirs.
    metadata = [("authorization", f"Bearer {args.token}")] if args.token else []

    with tempfile.TemporaryDirectory() as out:
        compile_protos(out)
        from google.protobuf import json_format
        from peloton.api.v1alpha.job.stateless import stateless_pb2
        from peloton.api.v1alpha.job.stateless.svc import stateless_svc_pb2 as svc
        from peloton.api.v1alpha.job.stateless.svc import stateless_svc_pb2_grpc as svc_grpc

        spec = json_format.ParseDict(job_spec(args.name, args.instances), stateless_pb2.JobSpec())
        with grpc.insecure_channel(args.address) as channel:
            jobs = svc_grpc.JobServiceStub(channel)
            try:
                created = jobs.CreateJob(svc.CreateJobRequest(spec=spec), timeout=30, metadata=metadata)
                print(created.job_id.value)
                got = jobs.GetJob(
                    svc.GetJobRequest(job_id=created.job_id, summary_only=True),
                    timeout=30,
                    metadata=metadata,
                )
            except grpc.RpcError as e:
                sys.exit(f"{e.code().name}: {e.details()}")
            status = got.summary.status
            print(json_format.MessageToJson(status, indent=None))


if __name__ == "__main__":
    main()
