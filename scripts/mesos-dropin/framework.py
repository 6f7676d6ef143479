#!/usr/bin/env python3
"""A raw Mesos v1 scheduler (JSON, stdlib only) that checks drover-executor
running under a real Mesos agent, as the agent's command executor
(`command`) or as a custom executor named in ExecutorInfo (`custom`).
It launches its tasks on the first offer, acknowledges every update,
kills the tasks it must, prints every update, and exits 0 only when every
task ended as expected (1 otherwise, 2 on a timeout).

usage: framework.py MASTER_HOST:PORT command|custom INPUT_FILE EXECUTOR_PATH
"""
import base64
import http.client
import json
import sys
import threading

host, port = sys.argv[1].split(":")
mode, input_file, executor_path = sys.argv[2], sys.argv[3], sys.argv[4]
TERMINAL = {"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_LOST",
            "TASK_ERROR", "TASK_DROPPED"}
IPV6_PORT = 26100
state = {"fid": None, "stream": None, "launched": False}
seen = {}  # task id -> list of updates
done = threading.Event()


def call(body):
    body["framework_id"] = {"value": state["fid"]}
    c = http.client.HTTPConnection(host, int(port), timeout=10)
    c.request("POST", "/api/v1/scheduler", json.dumps(body),
              {"Content-Type": "application/json", "Accept": "application/json",
               "Mesos-Stream-Id": state["stream"]})
    r = c.getresponse()
    data = r.read()
    if r.status >= 300:
        print("call", body["type"], r.status, data[:300], flush=True)
    c.close()


def resources(cpus, mem, port=None):
    res = [{"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}},
           {"name": "mem", "type": "SCALAR", "scalar": {"value": mem}}]
    if port:
        res.append({"name": "ports", "type": "RANGES",
                    "ranges": {"range": [{"begin": port, "end": port}]}})
    return res


def command_info_pb(value):
    """CommandInfo{value (3): value, shell (6): true}, protobuf-encoded, for
    TaskInfo.data (a task naming an executor carries no `command`)."""
    b = value.encode()
    assert len(b) < 128
    return bytes([0x1a, len(b)]) + b + bytes([0x30, 1])


def ended(state_, reason=None, message=None, healthy=None):
    """What a task's updates must show."""
    return {"state": state_, "reason": reason, "message": message, "healthy": healthy}


def tasks(agent):
    if mode == "custom":
        executor = {"executor_id": {"value": "drover-custom"}, "type": "CUSTOM",
                    "framework_id": {"value": state["fid"]},
                    "name": "drover-executor (custom)",
                    "command": {"shell": False, "value": executor_path,
                                "arguments": ["drover-executor"]},
                    "resources": resources(0.1, 32)}

        def custom(tid, cmd):
            return {"name": tid, "task_id": {"value": tid}, "agent_id": agent,
                    "resources": resources(0.1, 64), "executor": executor,
                    "data": base64.b64encode(command_info_pb(cmd)).decode()}
        return [custom("c-ok", "echo custom-ok from $MESOS_TASK_ID"),
                custom("c-fail", "exit 4")], {
            "c-ok": ended("TASK_FINISHED"),
            "c-fail": ended("TASK_FAILED", message="status 4"),
        }

    def command(tid, cmd, port=None, **extra):
        task = {"name": tid, "task_id": {"value": tid}, "agent_id": agent,
                "resources": resources(0.1, 64, port),
                "command": {"shell": True, "value": cmd}}
        task["command"].update(extra.pop("command_extra", {}))
        task.update(extra)
        return task

    def health(kind, **fields):
        check = {"type": kind, "delay_seconds": 0, "interval_seconds": 1,
                 "grace_period_seconds": 10, "consecutive_failures": 2,
                 "timeout_seconds": 5}
        check.update(fields)
        return check
    return [
        command("fetch", "cat input.txt && echo dropin-ok",
                command_extra={"uris": [{"value": "file://" + input_file, "extract": False}]}),
        command("fail", "echo failing; exit 3"),
        command("deadline", "sleep 60", max_completion_time={"nanoseconds": 2000000000}),
        command("health", "sleep 60", health_check=health(
            "COMMAND", command={"value": "exit 1"}, grace_period_seconds=0)),
        command("killme", "trap 'echo got TERM; exit 0' TERM; sleep 60 & wait",
                kill_policy={"grace_period": {"nanoseconds": 3000000000}}),
        command("ipv6", "exec python3 -m http.server %d --bind ::1" % IPV6_PORT,
                port=IPV6_PORT, health_check=health(
                    "TCP", tcp={"port": IPV6_PORT, "protocol": "IPv6"})),
        # Healthy only from inside the task's PID namespace (the agent gives
        # drover-executor DROVER_NAMESPACES=true): PID 2 is the task's shell.
        command("nscheck", "sleep 60; : drover-ns-marker", health_check=health(
            "COMMAND", command={"value": "grep -q drover-ns-marker /proc/2/cmdline"})),
    ], {
        "fetch": ended("TASK_FINISHED"),
        "fail": ended("TASK_FAILED", message="status 3"),
        "deadline": ended("TASK_FAILED", reason="REASON_MAX_COMPLETION_TIME_REACHED"),
        "health": ended("TASK_KILLED", healthy=False),
        "killme": ended("TASK_KILLED"),
        "ipv6": ended("TASK_KILLED", healthy=True),
        "nscheck": ended("TASK_KILLED", healthy=True),
    }


expected = {}
KILL_WHEN_HEALTHY = {"ipv6", "nscheck"}


def kill(st):
    call({"type": "KILL", "kill": {"task_id": st["task_id"], "agent_id": st["agent_id"]}})


def handle(ev):
    ty = ev.get("type")
    if ty == "SUBSCRIBED":
        state["fid"] = ev["subscribed"]["framework_id"]["value"]
        print("SUBSCRIBED", state["fid"], flush=True)
    elif ty == "OFFERS":
        for o in ev["offers"].get("offers", []):
            if state["launched"]:
                call({"type": "DECLINE", "decline": {"offer_ids": [o["id"]]}})
                continue
            state["launched"] = True
            infos, wanted = tasks(o["agent_id"])
            expected.update(wanted)
            call({"type": "ACCEPT", "accept": {"offer_ids": [o["id"]], "operations": [
                {"type": "LAUNCH", "launch": {"task_infos": infos}}]}})
            print("LAUNCHED", sorted(wanted), "on", o["agent_id"]["value"], flush=True)
    elif ty == "UPDATE":
        st = ev["update"]["status"]
        tid, s = st["task_id"]["value"], st["state"]
        seen.setdefault(tid, []).append(st)
        print("UPDATE", tid, s, st.get("reason"), st.get("source"),
              repr(st.get("message")), "healthy=%s" % st.get("healthy"), flush=True)
        if tid == "killme" and s == "TASK_RUNNING":
            threading.Timer(1.0, kill, args=(st,)).start()
        if tid in KILL_WHEN_HEALTHY and st.get("healthy") is True and s == "TASK_RUNNING":
            kill(st)
        if "uuid" in st:
            call({"type": "ACKNOWLEDGE", "acknowledge": {
                "agent_id": st["agent_id"], "task_id": st["task_id"], "uuid": st["uuid"]}})
        if expected and all(any(u["state"] in TERMINAL for u in seen.get(t, []))
                            for t in expected):
            done.set()
    elif ty != "HEARTBEAT":
        print("EVENT", ty, json.dumps(ev)[:300], flush=True)


def verdict():
    bad = []
    for tid, want in sorted(expected.items()):
        updates = seen.get(tid, [])
        last = updates[-1] if updates else {}
        problems = []
        if last.get("state") != want["state"]:
            problems.append("ended %s" % last.get("state"))
        if want["reason"] and last.get("reason") != want["reason"]:
            problems.append("reason %s" % last.get("reason"))
        if want["message"] and want["message"] not in (last.get("message") or ""):
            problems.append("message %r" % last.get("message"))
        if want["healthy"] is not None and not any(
                u.get("healthy") is want["healthy"] for u in updates):
            problems.append("never healthy=%s" % want["healthy"])
        print("%-9s %s" % (tid, "ok" if not problems else "; ".join(problems)), flush=True)
        bad += problems
    return not bad


fi = {"user": "nobody", "name": "drover-dropin-check", "roles": ["*"],
      "capabilities": [{"type": "MULTI_ROLE"}, {"type": "TASK_KILLING_STATE"}]}
conn = http.client.HTTPConnection(host, int(port))
conn.request("POST", "/api/v1/scheduler",
             json.dumps({"type": "SUBSCRIBE", "subscribe": {"framework_info": fi}}),
             {"Content-Type": "application/json", "Accept": "application/json"})
resp = conn.getresponse()
if resp.status != 200:
    print("SUBSCRIBE failed:", resp.status, resp.read())
    sys.exit(1)
state["stream"] = resp.getheader("Mesos-Stream-Id")


def reader():
    buf = b""
    while True:
        chunk = resp.read1(65536)
        if not chunk:
            done.set()
            return
        buf += chunk
        while b"\n" in buf:
            n, rest = buf.split(b"\n", 1)
            if len(rest) < int(n):
                break
            record, buf = rest[:int(n)], rest[int(n):]
            handle(json.loads(record))


threading.Thread(target=reader, daemon=True).start()
finished = done.wait(120)
call({"type": "TEARDOWN"})
if not finished:
    print("TIMED OUT")
    verdict()
    sys.exit(2)
sys.exit(0 if verdict() else 1)
