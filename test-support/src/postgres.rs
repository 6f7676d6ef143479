//! A real PostgreSQL server for tests: `initdb` in a temporary directory,
//! the server on a free loopback port, stopped (by its pid) when the handle
//! is dropped. The programs come from `scripts/postgres-env.sh`, which
//! installs Debian's `postgresql` when they are missing.
//!
//! PostgreSQL refuses to run as root, so as root the data directory is
//! given to the `postgres` user and the server runs as it (set on the
//! child's own uid/gid: the pid kept is the server's own, no `su` in
//! between). As any other user it runs as that user.
//!
//! [`Postgres::start_in`] runs the server inside a [`Host`] of a network
//! lab, listening on the host's address (port 5432, the host is its own);
//! `psql` and clients in the test process reach it there.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::netns::Host;

/// The superuser the tests connect as, and its password.
pub const USER: &str = "drover";
/// Its password (scram-sha-256 over TCP, as a real deployment).
pub const PASSWORD: &str = "drover-test";
/// PostgreSQL's usual port, used inside a [`Host`].
const HOST_PORT: u16 = 5432;

/// A running test server.
pub struct Postgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    bind: Ipv4Addr,
    port: u16,
    host: Option<Host>,
    run_as: Option<(u32, u32)>,
    server: Option<Child>,
}

impl Postgres {
    /// Installs (if needed), initialises and starts a server; panics with
    /// the reason when it cannot (a test without its server cannot run).
    pub fn start() -> Postgres {
        Postgres::start_on(Ipv4Addr::LOCALHOST, free_port(), None)
    }

    /// As [`Postgres::start`], the server running inside `host` and
    /// listening on `host.addr():5432`.
    pub fn start_in(host: &Host) -> Postgres {
        Postgres::start_on(host.addr(), HOST_PORT, Some(host.clone()))
    }

    fn start_on(bind: Ipv4Addr, port: u16, host: Option<Host>) -> Postgres {
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("drover-pg-")
            .tempdir()
            .expect("temporary directory for PostgreSQL");
        let run_as = postgres_user_if_root();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("PostgreSQL data directory");
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, PASSWORD).expect("PostgreSQL password file");
        if let Some((uid, gid)) = run_as {
            chown(dir.path(), uid, gid);
            chown(&data, uid, gid);
            chown(&pwfile, uid, gid);
        }
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                USER,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ])
            .args(["-E", "UTF8", "--locale=C.UTF-8", "--no-sync"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .stdout(Stdio::null());
        as_user(&mut initdb, run_as);
        let out = initdb.output().expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if host.is_some() {
            // initdb lets TCP clients in from loopback only; in a lab the
            // clients are the lab's other hosts and the test process.
            let hba = data.join("pg_hba.conf");
            let mut rules = std::fs::read_to_string(&hba).expect("read pg_hba.conf");
            rules.push_str("host all all samenet scram-sha-256\n");
            std::fs::write(&hba, rules).expect("write pg_hba.conf");
        }
        let mut pg = Postgres {
            bin,
            dir,
            bind,
            port,
            host,
            run_as,
            server: None,
        };
        pg.launch();
        pg
    }

    /// `127.0.0.1:PORT` (or the host's address).
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((self.bind, self.port))
    }

    /// The URL of the `postgres` database.
    pub fn url(&self) -> String {
        self.url_of("postgres")
    }

    /// The URL of database `name` on this server.
    pub fn url_of(&self, name: &str) -> String {
        format!("postgres://{USER}:{PASSWORD}@{}/{name}", self.addr())
    }

    /// Creates database `name` and returns its URL.
    pub fn create_database(&self, name: &str) -> String {
        self.psql(&format!("CREATE DATABASE \"{name}\""));
        self.url_of(name)
    }

    /// Runs one SQL command with `psql` against the `postgres` database
    /// and returns its unaligned output; panics if it fails.
    pub fn psql(&self, sql: &str) -> String {
        self.psql_on("postgres", sql)
    }

    /// Runs one SQL command on database `db`.
    pub fn psql_on(&self, db: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .arg(self.url_of(db))
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql {sql:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The server's pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.server.as_ref().map(Child::id)
    }

    /// Stops the server (fast shutdown: clients are disconnected, every
    /// committed transaction is kept) and waits for it to exit.
    pub fn stop(&mut self) {
        let Some(mut child) = self.server.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Stops the server and starts it again on the same port and data.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    fn launch(&mut self) {
        let data = self.dir.path().join("data");
        let log = std::fs::File::create(self.dir.path().join("server.log")).expect("server log");
        let mut cmd = Command::new(self.bin.join("postgres"));
        cmd.arg("-D")
            .arg(&data)
            .args(["-p", &self.port.to_string()])
            .arg("-c")
            .arg(format!("listen_addresses={}", self.bind))
            .arg("-c")
            .arg(format!(
                "unix_socket_directories={}",
                self.dir.path().display()
            ))
            .args(["-c", "max_connections=200", "-c", "fsync=on"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        match (&self.host, self.run_as) {
            // Entering the host needs root: in, then down to the user.
            (Some(host), Some((uid, gid))) => host.enter_as(&mut cmd, uid, gid),
            (Some(host), None) => host.enter(&mut cmd),
            (None, run_as) => as_user(&mut cmd, run_as),
        }
        let child = cmd.spawn().expect("start postgres");
        self.server = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = Command::new(self.bin.join("pg_isready"))
                .args([
                    "-h",
                    &self.bind.to_string(),
                    "-p",
                    &self.port.to_string(),
                    "-q",
                ])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ready && TcpStream::connect(self.addr()).is_ok() {
                return;
            }
            if let Some(child) = self.server.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("postgres exited at start ({status}): {}", self.log());
                }
            }
            assert!(
                Instant::now() < deadline,
                "postgres not ready after 30 s: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's log, for a failing test's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `scripts/postgres-env.sh`'s answer.
fn bin_dir() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/postgres-env.sh");
    let out = Command::new("bash")
        .arg(&script)
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/postgres-env.sh");
    assert!(
        out.status.success(),
        "scripts/postgres-env.sh failed ({}): PostgreSQL is needed for this test",
        out.status
    );
    let text = String::from_utf8_lossy(&out.stdout);
    PathBuf::from(text.lines().last().unwrap_or_default().trim())
}

/// The `postgres` user's uid and gid when this process is root.
fn postgres_user_if_root() -> Option<(u32, u32)> {
    let id = |args: &[&str]| -> Option<u32> {
        let out = Command::new("id").args(args).output().ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    if id(&["-u"])? != 0 {
        return None;
    }
    let uid = id(&["-u", "postgres"]).expect("a `postgres` user (Debian's postgresql makes it)");
    let gid = id(&["-g", "postgres"]).expect("the `postgres` user's group");
    Some((uid, gid))
}

fn as_user(cmd: &mut Command, run_as: Option<(u32, u32)>) {
    use std::os::unix::process::CommandExt;
    if let Some((uid, gid)) = run_as {
        cmd.uid(uid).gid(gid);
    }
}

fn chown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).expect("chown to the postgres user");
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
