#!/usr/bin/env python3
"""Watch a job's pods on Drover through Peloton's own gRPC WatchService, as
a Peloton user's Python client would: the official v1alpha protos (Drover's
copies in seed-api/proto, compiled here with grpcio-tools), Watch with a
pod filter, then Cancel.

Usage: peloton_watch.py HOST:PORT JOB [--changes N] [--start-revision R]
Prints one JSON line per response (protobuf JSON: watch_id, revision, pods)
until N responses after the first and the snapshot were read (0: stop after
the snapshot), then cancels the watch and prints the stream's end code
(CANCELLED). Exits non-zero on an RPC error, naming its code.
Set up the Python side with scripts/grpc-env.sh.
"""

import argparse
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("address", help="the scheduler's --listen address, HOST:PORT")
    parser.add_argument("job", help="the job's id or name")
    parser.add_argument("--changes", type=int, default=0, help="changes to read after the snapshot")
    parser.add_argument("--start-revision", type=int, default=0, help="resume after this revision")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as out:
        compile_protos(out)
        from google.protobuf import json_format
        from peloton.api.v1alpha import peloton_pb2
        from peloton.api.v1alpha.watch import watch_pb2
        from peloton.api.v1alpha.watch.svc import watch_svc_pb2 as svc
        from peloton.api.v1alpha.watch.svc import watch_svc_pb2_grpc as svc_grpc

        request = svc.WatchRequest(
            start_revision=args.start_revision,
            pod_filter=watch_pb2.PodFilter(job_id=peloton_pb2.JobID(value=args.job)),
        )
        with grpc.insecure_channel(args.address) as channel:
            watches = svc_grpc.WatchServiceStub(channel)
            stream = watches.Watch(request, timeout=60)
            # The first response, the snapshot (without a start revision),
            # then the changes asked for.
            wanted = 1 + (0 if args.start_revision else 1) + args.changes
            watch_id = None
            try:
                for n, response in enumerate(stream, start=1):
                    watch_id = watch_id or response.watch_id
                    print(json_format.MessageToJson(response, indent=None), flush=True)
                    if n == wanted:
                        watches.Cancel(svc.CancelRequest(watch_id=watch_id), timeout=30)
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.CANCELLED:
                    sys.exit(f"{e.code().name}: {e.details()}")
                print(e.code().name)


if __name__ == "__main__":
    main()
