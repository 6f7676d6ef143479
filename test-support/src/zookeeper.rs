//! A real ZooKeeper server for tests: Debian's `zookeeper` (installed by
//! `scripts/zookeeper-env.sh`), run standalone in a temp dir on a free
//! loopback port, and stopped (by pid) when the handle drops. A
//! [`ZkProxy`] in front of it partitions one client from it.
//!
//! [`ZooKeeper::start_in`] runs it inside a [`Host`] of a network lab
//! instead, listening on the host's address (port 2181, the host is its
//! own), for tests that partition machines rather than one connection.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::netns::Host;

/// How long a fresh JVM may take to answer `ruok` on a loaded 2-core host.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// ZooKeeper's usual client port, used inside a [`Host`] (it has no other
/// server to collide with).
const HOST_PORT: u16 = 2181;

/// A standalone ZooKeeper server on `127.0.0.1:PORT`. Sessions may be as
/// short as 400 ms (`tickTime=200`), so tests can use short timeouts.
pub struct ZooKeeper {
    child: Option<Child>,
    dir: PathBuf,
    bind: Ipv4Addr,
    port: u16,
    host: Option<Host>,
}

impl ZooKeeper {
    /// Installs the package if missing (through the script), starts a server
    /// and waits until it answers `ruok`. Panics with the server's log when
    /// it does not start: a test cannot go on without it.
    pub fn start() -> ZooKeeper {
        // A port taken between this probe and the server's bind makes the
        // server exit; start() then fails loudly rather than hang.
        ZooKeeper::start_on(Ipv4Addr::LOCALHOST, free_port(), None)
    }

    /// As [`ZooKeeper::start`], the server running inside `host` and
    /// listening on `host.addr():2181`.
    pub fn start_in(host: &Host) -> ZooKeeper {
        ZooKeeper::start_on(host.addr(), HOST_PORT, Some(host.clone()))
    }

    fn start_on(bind: Ipv4Addr, port: u16, host: Option<Host>) -> ZooKeeper {
        let classpath = classpath();
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "drover-zk-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(dir.join("data")).expect("create the ZooKeeper temp dir");
        std::fs::write(dir.join("zoo.cfg"), config(&dir, bind, port)).expect("write zoo.cfg");
        let mut zk = ZooKeeper {
            child: None,
            dir,
            bind,
            port,
            host,
        };
        zk.spawn(&classpath);
        zk
    }

    /// `127.0.0.1:PORT` (or the host's address), as a ZooKeeper connect
    /// string (no chroot).
    pub fn connect_string(&self) -> String {
        self.addr().to_string()
    }

    /// `zk://127.0.0.1:PORT<path>`, the URL the scheduler's flags take.
    pub fn url(&self, path: &str) -> String {
        format!("zk://{}{path}", self.addr())
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((self.bind, self.port))
    }

    /// The server's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server (SIGKILL, by pid) and waits for it. Its data stays,
    /// so [`ZooKeeper::restart`] brings the same tree and sessions back.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server if it runs and starts it again on the same port
    /// and data dir; sessions that do not reconnect within their timeout
    /// expire as on any server restart.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn(&classpath());
    }

    /// A TCP proxy to this server on another loopback port, so a test can
    /// cut one client (or one scheduler process) off ZooKeeper as a network
    /// partition would, while the others stay connected.
    pub fn proxy(&self) -> ZkProxy {
        ZkProxy::start(self.addr())
    }

    /// Expires the session of a client connected through `proxy`, by
    /// ZooKeeper's own recipe: the proxy is cut (so the client cannot take
    /// its session back at once, as it would), a second client joins the
    /// session with its id and password and closes it, which ends the
    /// session on the server; the proxy is healed and the first client is
    /// told `Expired` when it reconnects.
    pub async fn expire_session(&self, proxy: &ZkProxy, session: zookeeper_client::SessionInfo) {
        proxy.cut();
        let twin = zookeeper_client::Client::connector()
            .with_session(session)
            .with_session_timeout(Duration::from_secs(10))
            .connect(&self.connect_string())
            .await
            .unwrap_or_else(|e| {
                panic!("join the session to expire it: {e}\n{}", self.server_log())
            });
        // Dropping the last handle closes the session on the server; the
        // twin's state turns `Closed` once the server acknowledged it.
        let mut state = twin.state_watcher();
        drop(twin);
        let closed = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if state.changed().await.is_terminated() {
                    break;
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "the session was not closed within 10 s");
        proxy.heal();
    }

    /// The server's log so far (stdout and stderr), for failure messages.
    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// Sends a four-letter command (`ruok`, `srvr`, `cons`) and returns the
    /// answer, or "" when the server does not answer.
    pub fn four_letter(&self, command: &str) -> String {
        let mut answer = String::new();
        if let Ok(mut stream) = TcpStream::connect_timeout(&self.addr(), Duration::from_secs(1)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            if stream.write_all(command.as_bytes()).is_ok() {
                let _ = stream.read_to_string(&mut answer);
            }
        }
        answer
    }

    fn spawn(&mut self, classpath: &str) {
        let log = std::fs::File::create(self.dir.join("server.log")).expect("create server.log");
        let mut java = match &self.host {
            Some(host) => host.command("java"),
            None => Command::new("java"),
        };
        let child = java
            .args(["-Xmx128m", "-XX:+UseSerialGC", "-cp", classpath])
            .arg("org.apache.zookeeper.server.ZooKeeperServerMain")
            .arg(self.dir.join("zoo.cfg"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log file handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run java for ZooKeeper: {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if self.four_letter("ruok") == "imok" {
                return;
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() > deadline {
                let log = self.server_log();
                self.stop();
                panic!(
                    "ZooKeeper on port {} did not start ({exited:?}):\n{log}",
                    self.port
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for ZooKeeper {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn config(dir: &Path, bind: Ipv4Addr, port: u16) -> String {
    format!(
        "tickTime=200\n\
         minSessionTimeout=400\n\
         maxSessionTimeout=60000\n\
         dataDir={}\n\
         clientPort={port}\n\
         clientPortAddress={bind}\n\
         admin.enableServer=false\n\
         4lw.commands.whitelist=ruok,srvr,cons\n",
        dir.join("data").display()
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("bind a free loopback port")
}

/// The server's Java classpath, from `scripts/zookeeper-env.sh` (run once
/// per test process; it installs the package when missing).
fn classpath() -> String {
    static CLASSPATH: OnceLock<String> = OnceLock::new();
    CLASSPATH
        .get_or_init(|| {
            let script = Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .expect("drover-test-support sits in the workspace root")
                .join("scripts/zookeeper-env.sh");
            let output = Command::new(&script)
                .env_remove("RUST_BACKTRACE")
                .output()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
            assert!(
                output.status.success(),
                "{} failed ({}):\n{}",
                script.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .last()
                .unwrap_or_default()
                .trim()
                .to_string()
        })
        .clone()
}

/// A loopback TCP proxy to a ZooKeeper server. [`ZkProxy::cut`] closes
/// every connection through it and refuses new ones (the client sees the
/// server vanish, as in a partition; its session expires on the server
/// after its timeout); [`ZkProxy::heal`] lets connections through again.
/// Dropping it stops its threads.
pub struct ZkProxy {
    port: u16,
    shared: Arc<ProxyShared>,
    acceptor: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct ProxyShared {
    cut: AtomicBool,
    stop: AtomicBool,
    open: Mutex<Vec<TcpStream>>,
}

impl ProxyShared {
    fn close_all(&self) {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for stream in open.drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl ZkProxy {
    fn start(server: SocketAddr) -> ZkProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy's port");
        let port = listener.local_addr().expect("the proxy's address").port();
        listener
            .set_nonblocking(true)
            .expect("a non-blocking proxy listener");
        let shared = Arc::new(ProxyShared::default());
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || accept_loop(&listener, server, &shared))
        };
        ZkProxy {
            port,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// `127.0.0.1:PORT` of the proxy.
    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `zk://127.0.0.1:PORT<path>` through the proxy.
    pub fn url(&self, path: &str) -> String {
        format!("zk://127.0.0.1:{}{path}", self.port)
    }

    /// Partitions the proxy's clients from the server.
    pub fn cut(&self) {
        self.shared.cut.store(true, Ordering::SeqCst);
        self.shared.close_all();
    }

    /// Ends the partition.
    pub fn heal(&self) {
        self.shared.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for ZkProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.close_all();
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, server: SocketAddr, shared: &Arc<ProxyShared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        let client = match listener.accept() {
            Ok((client, _)) => client,
            Err(_) => {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        if shared.cut.load(Ordering::SeqCst) {
            drop(client);
            continue;
        }
        let _ = client.set_nonblocking(false);
        let Ok(upstream) = TcpStream::connect(server) else {
            continue;
        };
        let (Ok(client_copy), Ok(upstream_copy)) = (client.try_clone(), upstream.try_clone())
        else {
            continue;
        };
        {
            let mut open = shared
                .open
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            for stream in [&client, &upstream] {
                if let Ok(handle) = stream.try_clone() {
                    open.push(handle);
                }
            }
        }
        // Pipe threads end when either side closes (or cut() shuts both).
        std::thread::spawn(move || pipe(client, upstream_copy));
        std::thread::spawn(move || pipe(upstream, client_copy));
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(std::net::Shutdown::Both);
    let _ = from.shutdown(std::net::Shutdown::Both);
}
