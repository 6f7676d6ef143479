//! Test hosts in network namespaces (needs root): a [`Lab`] is a bridge in
//! a namespace of its own, and each [`Host`] a namespace with one veth to
//! that bridge and an address on the lab's private /24, so a test can run
//! ZooKeeper, PostgreSQL, agent-sim and scheduler replicas on "machines"
//! it can partition: [`Host::partition`] cuts one from everything (its
//! bridge port goes down), [`Host::block`] cuts it from one peer only (a
//! blackhole route inside it; no iptables needed).
//!
//! The root namespace gets one veth per lab, with the lab's first address,
//! so the test process itself reaches every host (and hosts reach it).
//! Nothing else is added to the root namespace: its routes and the other
//! labs stay as they were.
//!
//! Built with `ip` (iproute2) as a subprocess: each step is one command a
//! reader can paste into a shell to see what the lab looks like, and a
//! failure comes with `ip`'s own message. Processes enter a host through
//! `setns(2)` in `pre_exec` (not `ip netns exec`), so the pid a test holds
//! is the program's own and nothing between them remounts `/sys`.
//!
//! Names carry the test process's pid: namespaces `drl<pid>-<n>` (the
//! bridge) and `drl<pid>-<n>-<host>`, the root veth `dl<pid>-<n>` (≤ 15
//! characters, the kernel's limit). Dropping the lab (and every [`Host`]
//! handle) removes all of them; a lab left by a SIGKILLed test is swept
//! by the next [`Lab::new`] (its pid is dead), so it never breaks a run.

use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};
use nix::sched::{setns, CloneFlags};

/// Where `ip netns` keeps its namespaces (one bind-mounted file each).
const NETNS_DIR: &str = "/run/netns";
/// Held while a lab picks its subnet and claims it, so labs of parallel
/// test processes never pick the same one.
const SUBNET_LOCK: &str = "/run/drover-netns.lock";
/// The first lab subnet is 10.64.0.0/24; there are this many after it.
const SUBNETS: u32 = 16_384;
/// Host `i` (from 1) gets `.HOST_BASE + i` on the lab's /24.
const HOST_BASE: u8 = 10;

/// A private network of test hosts. Cheap to make (a few `ip` commands);
/// removed when it and every [`Host`] from it are dropped.
pub struct Lab {
    shared: Arc<LabShared>,
}

/// One host of a [`Lab`]: a network namespace with `lo` up and one
/// address on the lab's subnet. Clones are handles on the same host.
#[derive(Clone)]
pub struct Host {
    inner: Arc<HostInner>,
}

struct LabShared {
    /// `<pid>-<n>`, in every name the lab makes.
    tag: String,
    /// The bridge's namespace.
    netns: String,
    /// The root namespace's end of the veth to the bridge.
    root_veth: String,
    /// The lab's /24 is `10.A.B.0/24`: these are `[10, A, B]`.
    prefix: [u8; 3],
    /// Host namespaces made so far, removed on drop.
    hosts: Mutex<Vec<String>>,
}

struct HostInner {
    lab: Arc<LabShared>,
    name: String,
    netns: String,
    /// Its port on the bridge, inside the lab's namespace.
    port: String,
    addr: Ipv4Addr,
    /// `/run/netns/<netns>`, open so `setns` can enter it.
    file: File,
}

impl Lab {
    /// Makes a lab: its namespace with a bridge, and the veth from the root
    /// namespace (address `10.A.B.1/24`, [`Lab::gateway`]). Panics with
    /// the reason when it cannot (not root, no `ip`): a test that needs
    /// hosts cannot run without them, and must not pass silently.
    pub fn new() -> Lab {
        assert!(
            nix::unistd::geteuid().is_root(),
            "netns::Lab needs root (network namespaces, veth, bridge): run this test as root"
        );
        sweep_stale_labs();
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let tag = format!(
            "{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let netns = format!("drl{tag}");
        let root_veth = format!("dl{tag}");
        let bridge_end = format!("dp{tag}");
        assert!(root_veth.len() <= 15, "interface name {root_veth} too long");
        let lock = lock_subnets();
        let prefix = free_prefix();
        // From here on, a panic drops `shared`, which removes what exists.
        let shared = Arc::new(LabShared {
            tag,
            netns,
            root_veth,
            prefix,
            hosts: Mutex::new(Vec::new()),
        });
        let ns = shared.netns.as_str();
        ip(&["netns", "add", ns]);
        ip(&["-n", ns, "link", "set", "lo", "up"]);
        ip(&["-n", ns, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", ns, "link", "set", "br0", "up"]);
        ip(&[
            "link",
            "add",
            &shared.root_veth,
            "type",
            "veth",
            "peer",
            "name",
            &bridge_end,
        ]);
        ip(&["link", "set", &bridge_end, "netns", ns]);
        ip(&["-n", ns, "link", "set", &bridge_end, "master", "br0"]);
        ip(&["-n", ns, "link", "set", &bridge_end, "up"]);
        let gateway = format!("{}/24", shared.addr(1));
        ip(&["addr", "add", &gateway, "dev", &shared.root_veth]);
        ip(&["link", "set", &shared.root_veth, "up"]);
        // The address is in place: the next lab's `free_prefix` sees it.
        drop(lock);
        Lab { shared }
    }

    /// Makes host `name` (letters, digits and `-`; unique in this lab): a
    /// namespace with `lo` up, a veth to the bridge, and the next address.
    pub fn host(&self, name: &str) -> Host {
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "host name {name:?}: use letters, digits and '-'"
        );
        let lab = &self.shared;
        let netns = format!("drl{}-{name}", lab.tag);
        let index = {
            let mut hosts = lab.hosts.lock().unwrap_or_else(|p| p.into_inner());
            assert!(
                !hosts.contains(&netns),
                "this lab already has a host {name:?}"
            );
            assert!(hosts.len() < 200, "a lab holds at most 200 hosts");
            ip(&["netns", "add", &netns]);
            hosts.push(netns.clone());
            hosts.len()
        };
        let port = format!("p{index}");
        let addr = lab.addr(HOST_BASE + u8::try_from(index).expect("at most 200 hosts"));
        ip(&["-n", &netns, "link", "set", "lo", "up"]);
        ip(&[
            "-n", &lab.netns, "link", "add", &port, "type", "veth", "peer", "name", "eth0",
            "netns", &netns,
        ]);
        ip(&["-n", &lab.netns, "link", "set", &port, "master", "br0"]);
        ip(&["-n", &lab.netns, "link", "set", &port, "up"]);
        ip(&[
            "-n",
            &netns,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            "eth0",
        ]);
        ip(&["-n", &netns, "link", "set", "eth0", "up"]);
        let path = Path::new(NETNS_DIR).join(&netns);
        let file =
            File::open(&path).unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
        Host {
            inner: Arc::new(HostInner {
                lab: Arc::clone(lab),
                name: name.to_owned(),
                netns,
                port,
                addr,
                file,
            }),
        }
    }

    /// The test process's address on the lab (`10.A.B.1`): hosts reach
    /// the test through it.
    pub fn gateway(&self) -> Ipv4Addr {
        self.shared.addr(1)
    }

    /// The bridge's namespace, for `ip -n NAME ...` by hand.
    pub fn netns(&self) -> &str {
        &self.shared.netns
    }
}

impl Default for Lab {
    fn default() -> Self {
        Lab::new()
    }
}

impl Host {
    /// The host's name as given to [`Lab::host`].
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Its address on the lab's subnet: servers in it listen here.
    pub fn addr(&self) -> Ipv4Addr {
        self.inner.addr
    }

    /// Its namespace's name, for `ip netns exec NAME ...` by hand.
    pub fn netns(&self) -> &str {
        &self.inner.netns
    }

    /// `prog`, to run inside the host: a plain `Command` (add args, envs,
    /// stdio as usual) that enters the namespace between fork and exec.
    pub fn command(&self, prog: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(prog);
        self.enter(&mut command);
        command
    }

    /// Makes `command` run inside the host. Other `pre_exec` hooks run
    /// after this one, in the host; `Command::uid` runs before it and
    /// would leave the child unable to enter: use [`Host::enter_as`].
    pub fn enter(&self, command: &mut Command) {
        self.enter_then(command, None);
    }

    /// As [`Host::enter`], then drops to `uid`/`gid` (no supplementary
    /// groups) inside the host: for a server that refuses root
    /// (PostgreSQL). Entering needs root, so the order is fixed here.
    pub fn enter_as(&self, command: &mut Command, uid: u32, gid: u32) {
        self.enter_then(command, Some((uid, gid)));
    }

    fn enter_then(&self, command: &mut Command, user: Option<(u32, u32)>) {
        let inner = Arc::clone(&self.inner);
        // SAFETY: between fork and exec the hook only makes syscalls
        // (setns, setgroups, setgid, setuid) on an fd the parent keeps
        // open (`inner` holds the file), and allocates nothing.
        unsafe {
            command.pre_exec(move || {
                let fd = BorrowedFd::borrow_raw(inner.file.as_raw_fd());
                setns(fd, CloneFlags::CLONE_NEWNET)?;
                if let Some((uid, gid)) = user {
                    nix::unistd::setgroups(&[])?;
                    nix::unistd::setgid(nix::unistd::Gid::from_raw(gid))?;
                    nix::unistd::setuid(nix::unistd::Uid::from_raw(uid))?;
                }
                Ok(())
            });
        }
    }

    /// A listening socket inside the host on `addr():port` (for a test's
    /// own server in a host). A socket stays in the namespace it was made
    /// in, so it is made on a short-lived thread that entered the host.
    pub fn bind_tcp(&self, port: u16) -> io::Result<TcpListener> {
        let addr = SocketAddr::from((self.addr(), port));
        self.on_thread(move || TcpListener::bind(addr))
    }

    /// A TCP connection from inside the host to `to`, given up after
    /// `timeout`: what a process on this host would get.
    pub fn connect_tcp(&self, to: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        self.on_thread(move || TcpStream::connect_timeout(&to, timeout))
    }

    fn on_thread<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> io::Result<T> + Send + 'static,
    ) -> io::Result<T> {
        let inner = Arc::clone(&self.inner);
        std::thread::spawn(move || {
            // setns moves only this thread; it ends with the work.
            setns(&inner.file, CloneFlags::CLONE_NEWNET)?;
            work()
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the host's thread panicked")))
    }

    /// A port on the test process's `127.0.0.1` forwarded to
    /// `127.0.0.1:port` inside the host, for a server that listens on
    /// loopback only (the scheduler's API without TLS refuses any other
    /// address). It stands for a console on the machine, not a network
    /// path: a partition of the host does not cut it.
    pub fn forward_loopback(&self, port: u16) -> LoopbackForward {
        LoopbackForward::start(self.clone(), port)
    }

    /// Cuts the host off everything (the test process included): its
    /// bridge port goes down, so packets to and from it are lost, as when
    /// a machine's cable is pulled. Connections stall rather than reset.
    pub fn partition(&self) {
        let lab = &self.inner.lab;
        ip(&["-n", &lab.netns, "link", "set", &self.inner.port, "down"]);
    }

    /// Ends [`Host::partition`].
    pub fn heal(&self) {
        let lab = &self.inner.lab;
        ip(&["-n", &lab.netns, "link", "set", &self.inner.port, "up"]);
    }

    /// Cuts the host off `peer` only: a blackhole route to it inside the
    /// host, so nothing the host sends reaches the peer (a TCP connection
    /// either way stalls: its replies are lost), while every other peer
    /// is reached as before.
    pub fn block(&self, peer: Ipv4Addr) {
        ip(&[
            "-n",
            &self.inner.netns,
            "route",
            "add",
            "blackhole",
            &format!("{peer}/32"),
        ]);
    }

    /// Ends [`Host::block`] of `peer`.
    pub fn unblock(&self, peer: Ipv4Addr) {
        ip(&[
            "-n",
            &self.inner.netns,
            "route",
            "del",
            "blackhole",
            &format!("{peer}/32"),
        ]);
    }
}

/// A TCP forwarder from the test process's loopback into a host's (see
/// [`Host::forward_loopback`]). Dropping it stops accepting; connections
/// already forwarded end when either side closes.
pub struct LoopbackForward {
    addr: SocketAddr,
    stop: Arc<std::sync::atomic::AtomicBool>,
    acceptor: Option<std::thread::JoinHandle<()>>,
}

/// How often the forwarder's acceptor looks for a stop.
const FORWARD_POLL: Duration = Duration::from_millis(10);

impl LoopbackForward {
    fn start(host: Host, port: u16) -> LoopbackForward {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a loopback port");
        let addr = listener.local_addr().expect("the forwarder's address");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking forwarder listener");
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let acceptor = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let inside = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
                while !stop.load(Ordering::SeqCst) {
                    let Ok((client, _)) = listener.accept() else {
                        std::thread::sleep(FORWARD_POLL);
                        continue;
                    };
                    let _ = client.set_nonblocking(false);
                    // A refused upstream drops the client: it sees the
                    // server gone, as it is.
                    let Ok(upstream) = host.connect_tcp(inside, Duration::from_secs(5)) else {
                        continue;
                    };
                    let (Ok(client_copy), Ok(upstream_copy)) =
                        (client.try_clone(), upstream.try_clone())
                    else {
                        continue;
                    };
                    std::thread::spawn(move || pipe(client, upstream_copy));
                    std::thread::spawn(move || pipe(upstream, client_copy));
                }
            })
        };
        LoopbackForward {
            addr,
            stop,
            acceptor: Some(acceptor),
        }
    }

    /// `127.0.0.1:PORT` in the test process.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for LoopbackForward {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// Copies `from` to `to` until either ends, then closes both.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let _ = io::copy(&mut from, &mut to);
    let _ = to.shutdown(std::net::Shutdown::Both);
    let _ = from.shutdown(std::net::Shutdown::Both);
}

impl LabShared {
    fn addr(&self, last: u8) -> Ipv4Addr {
        let [a, b, c] = self.prefix;
        Ipv4Addr::new(a, b, c, last)
    }
}

impl Drop for LabShared {
    fn drop(&mut self) {
        // Deleting a namespace destroys its veth ends and so their peers;
        // the root veth is deleted first so the subnet is free at once even
        // if a process still holds the lab's namespace open.
        let _ = ip_quiet(&["link", "del", &self.root_veth]);
        let hosts = std::mem::take(self.hosts.get_mut().unwrap_or_else(|p| p.into_inner()));
        for host in hosts {
            let _ = ip_quiet(&["netns", "del", &host]);
        }
        let _ = ip_quiet(&["netns", "del", &self.netns]);
    }
}

/// Runs `ip args...`; panics with its message when it fails.
fn ip(args: &[&str]) {
    if let Err(message) = ip_quiet(args) {
        panic!("{message}");
    }
}

/// Runs `ip args...`: its stdout, or what went wrong.
fn ip_quiet(args: &[&str]) -> Result<String, String> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip` (iproute2 is needed for netns::Lab): {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "`ip {}` failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// An exclusive lock over subnet choice, across processes.
fn lock_subnets() -> Flock<File> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(SUBNET_LOCK)
        .unwrap_or_else(|e| panic!("cannot open {SUBNET_LOCK}: {e}"));
    Flock::lock(file, FlockArg::LockExclusive)
        .unwrap_or_else(|(_, e)| panic!("cannot lock {SUBNET_LOCK}: {e}"))
}

/// A 10.A.B.0/24 that no address or route of the root namespace overlaps
/// (another lab's, or the machine's own network). The search starts at a
/// point drawn from the pid, so parallel processes rarely even compare.
fn free_prefix() -> [u8; 3] {
    let taken = root_prefixes();
    let start = std::process::id().wrapping_mul(37) % SUBNETS;
    (0..SUBNETS)
        .map(|i| (start + i) % SUBNETS)
        .map(|i| {
            let [_, _, hi, lo] = (64 * 256 + i).to_be_bytes();
            [10, hi, lo]
        })
        .find(|&[a, b, c]| {
            let net = u32::from(Ipv4Addr::new(a, b, c, 0));
            !taken
                .iter()
                .any(|&(other, len)| overlaps(net, 24, other, len))
        })
        .unwrap_or_else(|| panic!("no free 10.x.y.0/24 for a netns::Lab: {taken:?}"))
}

/// Every IPv4 prefix (or address, as a /32) named by the root namespace's
/// addresses and routes, all tables.
fn root_prefixes() -> Vec<(u32, u8)> {
    let mut text = ip_quiet(&["-4", "-o", "addr", "show"]).unwrap_or_else(|e| panic!("{e}"));
    text.push_str(
        &ip_quiet(&["-4", "route", "show", "table", "all"]).unwrap_or_else(|e| panic!("{e}")),
    );
    text.split_whitespace().filter_map(parse_prefix).collect()
}

/// `a.b.c.d/len` or `a.b.c.d` (a /32), as (network bits, length).
fn parse_prefix(word: &str) -> Option<(u32, u8)> {
    let (addr, len) = match word.split_once('/') {
        Some((addr, len)) => (addr, len.parse().ok().filter(|len| *len <= 32)?),
        None => (word, 32),
    };
    let addr: Ipv4Addr = addr.parse().ok()?;
    Some((u32::from(addr), len))
}

/// Whether two prefixes share an address: they agree on the shorter one's
/// bits.
fn overlaps(a: u32, a_len: u8, b: u32, b_len: u8) -> bool {
    let len = a_len.min(b_len);
    if len == 0 {
        return true;
    }
    let mask = u32::MAX << (32 - u32::from(len));
    a & mask == b & mask
}

/// Removes the namespaces and root veths of labs whose process is gone (a
/// SIGKILLed test): names `drl<pid>-...` and `dl<pid>-<n>`.
fn sweep_stale_labs() {
    let dead = |name: &str, prefix: &str| -> bool {
        name.strip_prefix(prefix)
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
            .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
    };
    if let Ok(entries) = std::fs::read_dir(NETNS_DIR) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if dead(&name, "drl") {
                let _ = ip_quiet(&["netns", "del", &name]);
            }
        }
    }
    let links = ip_quiet(&["-o", "link", "show"]).unwrap_or_default();
    for line in links.lines() {
        // "7: dl123-0@if6: <...>": the name is the second word, up to '@'.
        let Some(word) = line.split_whitespace().nth(1) else {
            continue;
        };
        let name = word.trim_end_matches(':');
        let name = name.split('@').next().unwrap_or(name);
        let numbered = name
            .strip_prefix("dl")
            .and_then(|rest| rest.split_once('-'))
            .is_some_and(|(pid, n)| {
                !pid.is_empty()
                    && pid.bytes().all(|b| b.is_ascii_digit())
                    && !n.is_empty()
                    && n.bytes().all(|b| b.is_ascii_digit())
            });
        if numbered && dead(name, "dl") {
            let _ = ip_quiet(&["link", "del", name]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{overlaps, parse_prefix};

    #[test]
    fn prefixes_overlap_when_they_share_the_shorter_ones_bits() {
        let p = |s: &str| parse_prefix(s).expect("a prefix");
        let (a, a_len) = p("10.64.3.0/24");
        for (other, overlapping) in [
            ("10.64.3.1", true),
            ("10.0.0.0/8", true),
            ("10.64.4.0/24", false),
            ("192.0.2.0/24", false),
            ("0.0.0.0/0", true),
        ] {
            let (b, b_len) = p(other);
            assert_eq!(overlaps(a, a_len, b, b_len), overlapping, "{other}");
        }
        assert_eq!(parse_prefix("dev"), None);
        assert_eq!(parse_prefix("10.0.0.0/33"), None);
    }
}
