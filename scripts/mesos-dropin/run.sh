#!/bin/sh
# Checks drover-executor under a real Mesos agent, by hand (CI has no Mesos
# build): a master and an agent on loopback whose --launcher_dir holds
# Mesos' mesos-containerizer and mesos-fetcher and drover-executor as
# mesos-executor, then framework.py in command mode and in custom mode.
# Starts only the master and the agent, and stops both (by pid) at the end.
# Root (the agent and drover-executor's cgroups).
#
# usage: scripts/mesos-dropin/run.sh MESOS_BIN_DIR DROVER_EXECUTOR [RUN_DIR]
#   MESOS_BIN_DIR: where mesos-master, mesos-agent, mesos-containerizer and
#   mesos-fetcher are (a Mesos build's src/). Ports 25050 (master) and
#   25051 (agent), tasks' ports 26000-26999.
set -eu
B="$1"; EXE="$(realpath "$2")"; R="${3:-$(mktemp -d /tmp/mesos-dropin.XXXXXX)}"
HERE="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$R/launcher" "$R/master" "$R/agent"
ln -sf "$B/mesos-containerizer" "$R/launcher/mesos-containerizer"
ln -sf "$B/mesos-fetcher" "$R/launcher/mesos-fetcher"
ln -sf "$EXE" "$R/launcher/mesos-executor"
echo "input fetched by the Mesos agent" > "$R/input.txt"
chmod 755 "$R"; chmod 644 "$R/input.txt"
PIDS=""
stop() { for p in $PIDS; do kill "$p" 2>/dev/null || true; done; }
trap stop EXIT INT TERM
"$B/mesos-master" --ip=127.0.0.1 --port=25050 --hostname=localhost \
  --work_dir="$R/master" --registry=in_memory --log_dir="$R/master" > "$R/master.out" 2>&1 &
PIDS="$!"
# A hybrid host's cgroup2 mount is hidden from the agent, in a mount
# namespace of its own (the agent refuses the hybrid layout).
HIDE_V2=":"
[ -d /sys/fs/cgroup/unified ] && HIDE_V2="umount -l /sys/fs/cgroup/unified && mount -t tmpfs none /sys/fs/cgroup/unified"
unshare -m sh -c "mount --make-rprivate / && $HIDE_V2; exec $B/mesos-agent \
  --master=127.0.0.1:25050 --ip=127.0.0.1 --port=25051 --hostname=dropin.agent \
  --work_dir=$R/agent --launcher=posix --isolation=posix/cpu,posix/mem \
  --no-systemd_enable_support --no-switch_user --launcher_dir=$R/launcher \
  --executor_environment_variables='{\"PATH\":\"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\",\"DROVER_NAMESPACES\":\"true\"}' \
  --resources='cpus:2;mem:2048;disk:4096;ports:[26000-26999]'" > "$R/agent.out" 2>&1 &
PIDS="$PIDS $!"
for _ in $(seq 1 60); do
  curl -s http://127.0.0.1:25050/master/slaves | grep -q '"active":true' && break; sleep 1
done
status=0
for mode in command custom; do
  echo "== $mode"
  python3 "$HERE/framework.py" 127.0.0.1:25050 "$mode" "$R/input.txt" "$EXE" || status=1
done
echo "run dir: $R"
exit $status
