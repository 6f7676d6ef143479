//! The network-namespace lab against the real kernel (root): hosts reach
//! each other and the test process; a partition cuts a host from all of
//! them and a heal brings it back; a block cuts one peer only; a dropped
//! lab leaves nothing behind, and a dead process's lab is swept.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use drover_test_support::netns::{Host, Lab};

/// Long enough for a SYN and its answer on a veth, short enough that the
/// cut cases (which must time out) keep the test quick.
const CONNECT: Duration = Duration::from_millis(700);
const PORT: u16 = 7000;

/// A thread answering every connection on `listener` with one byte.
fn serve(listener: TcpListener) {
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let _ = stream.write_all(b"!");
        }
    });
}

/// Whether a connection to `to` gets the server's byte.
fn answered(stream: std::io::Result<TcpStream>) -> bool {
    let Ok(mut stream) = stream else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(CONNECT));
    let mut byte = [0u8; 1];
    matches!(stream.read(&mut byte), Ok(1))
}

fn from_test(host: &Host) -> bool {
    answered(TcpStream::connect_timeout(
        &SocketAddr::from((host.addr(), PORT)),
        CONNECT,
    ))
}

fn from_host(from: &Host, to: &Host) -> bool {
    answered(from.connect_tcp(SocketAddr::from((to.addr(), PORT)), CONNECT))
}

fn netns_names() -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn root_links() -> String {
    let out = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .expect("run ip");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn hosts_reach_each_other_until_partitioned_or_blocked_and_the_lab_leaves_nothing() {
    let lab = Lab::new();
    let a = lab.host("a");
    let b = lab.host("b");
    let c = lab.host("c");
    for host in [&a, &b, &c] {
        serve(host.bind_tcp(PORT).expect("bind inside the host"));
    }

    // A process started in a host sees the host's address and `lo`.
    let out = a
        .command("ip")
        .args(["-4", "-o", "addr", "show"])
        .output()
        .expect("run ip in host a");
    let seen = String::from_utf8_lossy(&out.stdout);
    assert!(seen.contains(&format!("inet {}/24", a.addr())), "{seen}");
    assert!(seen.contains("inet 127.0.0.1/8"), "{seen}");
    assert!(
        !seen.contains(&format!("inet {}/", lab.gateway())),
        "{seen}"
    );

    assert!(from_test(&a) && from_test(&b) && from_test(&c));
    assert!(from_host(&a, &b) && from_host(&b, &a) && from_host(&c, &a));

    a.partition();
    assert!(!from_test(&a), "the test reached a partitioned host");
    assert!(!from_host(&b, &a), "b reached a partitioned host");
    assert!(!from_host(&a, &c), "a partitioned host reached c");
    assert!(from_host(&b, &c), "the partition of a cut b from c");
    a.heal();
    assert!(from_test(&a) && from_host(&b, &a) && from_host(&a, &c));

    // A server on the host's loopback only, reached through a forward
    // (which a partition does not cut: it is the machine's console).
    let local = bind_loopback_in(&a);
    let port = local.local_addr().expect("address").port();
    serve(local);
    let forward = a.forward_loopback(port);
    assert!(answered(TcpStream::connect_timeout(
        &forward.addr(),
        CONNECT
    )));
    assert!(
        !answered(TcpStream::connect_timeout(
            &SocketAddr::from((a.addr(), port)),
            CONNECT
        )),
        "a loopback server was reached on the host's address"
    );
    drop(forward);

    a.block(b.addr());
    assert!(!from_host(&a, &b), "a reached the peer it blocks");
    assert!(!from_host(&b, &a), "b got answers from a, which blocks it");
    assert!(from_host(&a, &c) && from_host(&c, &a) && from_test(&a));
    a.unblock(b.addr());
    assert!(from_host(&a, &b) && from_host(&b, &a));

    let netns = a.netns().to_owned();
    let bridge = lab.netns().to_owned();
    let tag = bridge.trim_start_matches("drl").to_owned();
    drop((a, b, c));
    assert!(netns_names().contains(&netns), "the lab outlived a host");
    drop(lab);
    let left: Vec<_> = netns_names()
        .into_iter()
        .filter(|n| n.starts_with(&bridge))
        .collect();
    assert!(left.is_empty(), "namespaces left: {left:?}");
    let links = root_links();
    assert!(
        !links.contains(&format!(" dl{tag}@")),
        "root veth left: {links}"
    );
}

#[test]
fn a_lab_left_by_a_dead_process_is_swept() {
    // A pid that is gone: a child that ran and was reaped.
    let mut child = Command::new("true").spawn().expect("run true");
    let dead = child.id();
    child.wait().expect("reap true");
    assert!(!Path::new(&format!("/proc/{dead}")).exists());
    let stale = format!("drl{dead}-0");
    let stale_veth = format!("dl{dead}-0");
    let ok = |args: &[&str]| {
        let status = Command::new("ip").args(args).status().expect("run ip");
        assert!(status.success(), "ip {args:?}");
    };
    ok(&["netns", "add", &stale]);
    ok(&[
        "link",
        "add",
        &stale_veth,
        "type",
        "veth",
        "peer",
        "name",
        &format!("dp{dead}-0"),
    ]);

    let lab = Lab::new();
    assert!(!netns_names().contains(&stale), "stale namespace kept");
    assert!(
        !root_links().contains(&format!(" {stale_veth}@")),
        "stale veth kept"
    );
    drop(lab);
}

#[test]
fn zookeeper_and_postgres_serve_from_inside_a_host() {
    use drover_test_support::postgres::Postgres;
    use drover_test_support::zookeeper::ZooKeeper;

    let lab = Lab::new();
    let zk_host = lab.host("zk");
    let db_host = lab.host("db");
    let zk = ZooKeeper::start_in(&zk_host);
    let pg = Postgres::start_in(&db_host);
    assert_eq!(zk.addr(), SocketAddr::from((zk_host.addr(), 2181)));
    assert_eq!(zk.four_letter("ruok"), "imok");
    assert_eq!(pg.addr().ip(), std::net::IpAddr::V4(db_host.addr()));
    assert_eq!(pg.psql("SELECT 41 + 1"), "42");
    // From the other host too, not only from the test process.
    assert!(
        answered_connect(&db_host, zk.addr()),
        "db host cannot reach zk"
    );
    zk_host.partition();
    assert_eq!(
        zk.four_letter("ruok"),
        "",
        "a partitioned ZooKeeper answered"
    );
    zk_host.heal();
    assert_eq!(zk.four_letter("ruok"), "imok");
}

fn answered_connect(from: &Host, to: SocketAddr) -> bool {
    from.connect_tcp(to, CONNECT).is_ok()
}

/// A listener on `127.0.0.1:0` inside `host`.
fn bind_loopback_in(host: &Host) -> TcpListener {
    let (tx, rx) = std::sync::mpsc::channel();
    let ns = std::fs::File::open(format!("/run/netns/{}", host.netns())).expect("open netns");
    std::thread::spawn(move || {
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        let _ = tx.send(TcpListener::bind("127.0.0.1:0").expect("bind in the host"));
    });
    rx.recv().expect("the listener")
}
