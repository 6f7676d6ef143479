//! `drover-agent-sim`, the Mesos master with simulated agents and real
//! ones, started on `127.0.0.1:0` with the flags a test asks for
//! ([`AgentSimBuilder`]), and what tests read from it: `/sim/tasks` and
//! the instances with more than one live task there.
//!
//! Real agents get a work dir the test owns and a cgroup parent of the
//! test's own ([`CgroupParent`]). Stopping (or dropping) an [`AgentSim`]
//! SIGTERMs it, so it stops its executors and removes that parent itself.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use drover_test_support::netns::Host;
use serde_json::Value;

use super::binaries;
use super::cgroup::CgroupParent;
use super::http;
use super::process::Process;

/// A running `drover-agent-sim`.
pub struct AgentSim {
    // Dropped in this order: the simulator stops (and removes its cgroup
    // parent), then the parent's guard removes anything it left.
    process: Process,
    cgroup: Option<CgroupParent>,
    /// Its address as text, `127.0.0.1:PORT`, for URLs.
    pub address: String,
    /// The same address, for sockets.
    pub addr: SocketAddr,
    /// `https` when it serves TLS ([`AgentSimBuilder::tls`]), else `http`.
    pub scheme: &'static str,
}

/// The flags an [`AgentSim`] starts with; `--listen 127.0.0.1:0` always
/// (the host's address, port 0, in a test host).
pub struct AgentSimBuilder {
    seed: u64,
    args: Vec<String>,
    cgroup: Option<CgroupParent>,
    log: Option<(PathBuf, String)>,
    tls: bool,
    host: Option<Host>,
}

impl AgentSim {
    /// The URL a scheduler's `--master` names: `http://` or `https://`.
    pub fn master_url(&self) -> String {
        format!("{}://{}", self.scheme, self.address)
    }

    /// The simulator with its own defaults and seed 42, plus what the
    /// builder adds: what agent-sim's own protocol tests run against.
    pub fn builder() -> AgentSimBuilder {
        AgentSimBuilder {
            seed: 42,
            args: Vec::new(),
            cgroup: None,
            log: None,
            tls: false,
            host: None,
        }
    }

    /// `agents` simulated agents offered every 100 ms, status updates
    /// retried after 1 s, seed 7: the master the scheduler's end-to-end
    /// tests run against (fast enough that a test waits seconds, not
    /// minutes).
    pub fn for_scheduler(agents: usize) -> AgentSimBuilder {
        AgentSim::builder().seed(7).agents(agents).args(&[
            "--allocation-interval",
            "100ms",
            "--status-update-retry-interval",
            "1secs",
        ])
    }

    /// The simulator's pid.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The cgroup parent its real agents use, if it has real agents.
    pub fn cgroup_parent(&self) -> Option<&CgroupParent> {
        self.cgroup.as_ref()
    }

    /// SIGKILL and wait: a master that dies without a word (its
    /// ZooKeeper session, with `--zk`, then expires).
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// SIGTERM and wait (see [`Process::stop`]): the simulator stops its
    /// executors and removes its cgroup parent and temporary work dir.
    pub fn stop(&mut self) {
        self.process.stop();
    }

    /// GET `path` (`/state`, `/sim/executors`, `/files/read?...`), answered
    /// as JSON (see [`http::call`]).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        http::get(&self.address, path).await
    }

    /// POST of a JSON body to a `/sim` control path.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        http::post(&self.address, path, body).await
    }
}

impl AgentSimBuilder {
    /// `--seed`: one seed replays the same offers and ids.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// `--agents`: how many agents (simulated unless made real).
    pub fn agents(self, agents: usize) -> Self {
        self.args(&["--agents", &agents.to_string()])
    }

    /// `--real-agents n --work-dir work_dir`, and a cgroup parent of this
    /// test's own (`--cgroup-parent drover-test-<pid>-<n>`). The work dir
    /// (a test's 0700 temporary dir) is made enterable by every user, as
    /// an agent's is: tasks run as their users and must reach their
    /// sandboxes.
    pub fn real_agents(mut self, real: usize, work_dir: &Path) -> Self {
        std::fs::set_permissions(
            work_dir,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap_or_else(|e| panic!("opening up the work dir {}: {e}", work_dir.display()));
        let work_dir = work_dir
            .to_str()
            .unwrap_or_else(|| panic!("work dir {} is not UTF-8", work_dir.display()))
            .to_owned();
        let cgroup = CgroupParent::new();
        self = self.args(&[
            "--real-agents",
            &real.to_string(),
            "--work-dir",
            &work_dir,
            "--cgroup-parent",
            cgroup.name(),
        ]);
        self.cgroup = Some(cgroup);
        self
    }

    /// Its logs appended to `path`, at `filter` (a `DROVER_LOG` value),
    /// for a test that reads what it logged.
    pub fn log_to(mut self, path: &Path, filter: &str) -> Self {
        self.log = Some((path.to_owned(), filter.to_owned()));
        self
    }

    /// The master's port over TLS with `cert` (`--tls-cert`, `--tls-key`):
    /// an `https://` master, as Mesos with SSL enabled.
    pub fn tls(mut self, cert: &super::pki::CertFiles) -> Self {
        for (flag, path) in [("--tls-cert", &cert.cert), ("--tls-key", &cert.key)] {
            self.args.push(flag.to_owned());
            self.args.push(path.display().to_string());
        }
        self.tls = true;
        self
    }

    /// Runs it inside `host` (a network-namespace test host), listening
    /// on `host.addr()` port 0.
    pub fn in_host(mut self, host: &Host) -> Self {
        self.host = Some(host.clone());
        self
    }

    /// Any other flags, as given.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| (*a).to_owned()));
        self
    }

    /// Starts it and waits for its address.
    #[track_caller]
    pub fn start(self) -> AgentSim {
        let seed = self.seed.to_string();
        let listen = match &self.host {
            Some(host) => format!("{}:0", host.addr()),
            None => "127.0.0.1:0".to_owned(),
        };
        let mut args = vec!["--listen", &listen, "--seed", &seed];
        args.extend(self.args.iter().map(String::as_str));
        let (envs, log) = match &self.log {
            Some((path, filter)) => ([("DROVER_LOG", filter.as_str())], Some(path.as_path())),
            None => ([("DROVER_LOG", "warn")], None),
        };
        let process = Process::start_in(
            &binaries::agent_sim(),
            &args,
            &envs,
            log,
            self.host.as_ref(),
        );
        let addr = process.address.parse().unwrap_or_else(|e| {
            panic!(
                "drover-agent-sim printed {:?}, not an address: {e}",
                process.address
            )
        });
        AgentSim {
            address: process.address.clone(),
            addr,
            process,
            cgroup: self.cgroup,
            scheme: if self.tls { "https" } else { "http" },
        }
    }
}

/// The tasks the master at `address` knows, as (task id, state, agent id).
pub async fn sim_tasks(address: &str) -> Vec<(String, String, String)> {
    let (_, tasks) = http::get(address, "/sim/tasks").await;
    let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
    tasks["tasks"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|t| (text(&t["task_id"]), text(&t["state"]), text(&t["agent_id"])))
                .collect()
        })
        .unwrap_or_default()
}

/// Instances with more than one live task at the master, as `(pod, task
/// ids)`; a Drover task id is `<pod>-<run>`.
pub fn duplicate_live_tasks(tasks: &[(String, String, String)]) -> Vec<(String, Vec<String>)> {
    let live = [
        "TASK_STAGING",
        "TASK_STARTING",
        "TASK_RUNNING",
        "TASK_KILLING",
    ];
    let mut by_pod: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (task, state, _) in tasks {
        if live.contains(&state.as_str()) {
            let pod = task
                .rsplit_once('-')
                .map(|(pod, _)| pod.to_owned())
                .unwrap_or_default();
            by_pod.entry(pod).or_default().push(task.clone());
        }
    }
    by_pod.into_iter().filter(|(_, t)| t.len() > 1).collect()
}
