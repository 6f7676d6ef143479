#!/usr/bin/env bash
# zookeeper-env.sh: make sure Debian's ZooKeeper server (package
# `zookeeper`, which pulls a Java runtime) is installed, for the HA tests
# (`drover_test_support::zookeeper::ZooKeeper::start()` runs this script)
# and CI, and for trying `--zk` by hand.
#
# It is idempotent: an installed package is left as it is; apt-get update
# runs once only if the first install fails. It starts nothing unless asked:
#
#   scripts/zookeeper-env.sh                 install if missing; the last
#                                            stdout line is the classpath
#   scripts/zookeeper-env.sh run PORT DIR    also run a standalone server in
#                                            the foreground on 127.0.0.1:PORT
#                                            with its data in DIR (Ctrl-C stops)
#
# Needs: root (apt-get) when the package is missing.
# Exit codes: 0 ready; 1 cannot install; 2 bad usage.
set -euo pipefail

jar=/usr/share/java/zookeeper.jar

install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends zookeeper >&2
}

if [[ ! -f "$jar" ]] || ! command -v java >/dev/null 2>&1; then
    if ! install; then
        apt-get update -q >&2 || true
        install || { echo "zookeeper-env: installing the zookeeper package failed" >&2; exit 1; }
    fi
fi
if [[ ! -f "$jar" ]]; then
    echo "zookeeper-env: $jar is missing after installing zookeeper" >&2
    exit 1
fi
# zookeeper.jar's manifest names its dependencies (/usr/share/java/*.jar);
# slf4j-simple (a dependency of the package) makes the server log to stderr
# instead of dropping its log.
classpath="$jar"
if [[ -f /usr/share/java/slf4j-simple.jar ]]; then
    classpath="$classpath:/usr/share/java/slf4j-simple.jar"
fi

case "${1:-}" in
    "")
        echo "$classpath"
        ;;
    run)
        port="${2:?usage: zookeeper-env.sh run PORT DIR}"
        dir="${3:?usage: zookeeper-env.sh run PORT DIR}"
        mkdir -p "$dir/data"
        cat >"$dir/zoo.cfg" <<CFG
tickTime=200
minSessionTimeout=400
maxSessionTimeout=60000
dataDir=$dir/data
clientPort=$port
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr,cons
CFG
        exec java -Xmx128m -XX:+UseSerialGC -cp "$classpath" \
            org.apache.zookeeper.server.ZooKeeperServerMain "$dir/zoo.cfg"
        ;;
    *)
        echo "usage: zookeeper-env.sh [run PORT DIR]" >&2
        exit 2
        ;;
esac
