//! `drover quickstart`: the first five minutes in one command. Starts
//! `drover-agent-sim` (simulated agents, plus real agents running
//! `drover-executor` in cgroups when it supports `--real-agents`) and
//! `drover-scheduler` with a temporary data directory, submits
//! `examples/batch-hello.yaml` and `examples/service-web.yaml`, watches
//! them until the batch job has SUCCEEDED and every service pod is RUNNING,
//! then keeps everything up for the user until Ctrl-C or `--duration`, and
//! finally stops the jobs, the scheduler and the simulator (by pid) and
//! removes the temporary directory.

use super::children::ChildProc;
use super::client::ApiClient;
use super::error::CliError;
use super::job::create_from_text;
use super::output::{self, Output};
use super::pod::pods_table;
use super::watch::{self, Outcome, Until};
use crate::auth::credentials;
use clap::Args;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The example batch job, as shipped in `examples/`.
const BATCH_EXAMPLE: &str = include_str!("../../../examples/batch-hello.yaml");
/// The example service job, as shipped in `examples/`.
const SERVICE_EXAMPLE: &str = include_str!("../../../examples/service-web.yaml");

/// `drover quickstart`.
#[derive(Debug, Clone, Args)]
pub struct QuickstartArgs {
    /// Simulated agents.
    #[arg(long, default_value_t = 3)]
    pub agents: usize,
    /// Agents running real executors in real cgroups (needs root, and an
    /// agent-sim with `--real-agents`).
    #[arg(long, default_value_t = 1)]
    pub real_agents: usize,
    /// Zones the agents are spread over.
    #[arg(long, default_value = "a,b,c")]
    pub zones: String,
    /// Stop everything after this long (Mesos duration: `90secs`, `5mins`);
    /// default: run until Ctrl-C.
    #[arg(long, value_parser = crate::config::parse_duration)]
    pub duration: Option<Duration>,
    /// Where drover-scheduler, drover-agent-sim and drover-executor are
    /// (default: beside this binary).
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
}

/// What the quickstart started, stopped in reverse order when dropped.
struct Cluster {
    dir: PathBuf,
    sim: Option<ChildProc>,
    scheduler: Option<ChildProc>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(mut s) = self.scheduler.take() {
            println!("stopping drover-scheduler (pid {})", s.pid());
            s.stop(Duration::from_secs(10));
        }
        if let Some(mut s) = self.sim.take() {
            println!("stopping drover-agent-sim (pid {})", s.pid());
            s.stop(Duration::from_secs(20));
        }
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => println!("removed {}", self.dir.display()),
            Err(e) => eprintln!("cannot remove {}: {e}", self.dir.display()),
        }
    }
}

fn bin(dir: &Path, name: &str) -> Result<PathBuf, CliError> {
    let path = dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(CliError::Quickstart(format!(
            "{} not found: build it first (scripts/quickstart does: cargo build --release \
             -p drover-scheduler -p drover-agent-sim -p drover-executor)",
            path.display()
        )))
    }
}

/// Whether this agent-sim has `--real-agents`, and why not if not.
fn real_agents_unsupported(sim: &Path, bin_dir: &Path) -> Option<String> {
    let help = std::process::Command::new(sim)
        .arg("--help")
        .output()
        .ok()?;
    if !String::from_utf8_lossy(&help.stdout).contains("--real-agents") {
        return Some("this drover-agent-sim has no --real-agents".into());
    }
    if !bin_dir.join("drover-executor").is_file() {
        return Some(format!("no drover-executor in {}", bin_dir.display()));
    }
    if !nix::unistd::geteuid().is_root() {
        return Some("real agents put executors in cgroups, which needs root".into());
    }
    None
}

/// Runs the quickstart; answers the exit code (0 when the batch job
/// SUCCEEDED and the service job ran).
pub async fn run(args: QuickstartArgs) -> Result<u8, CliError> {
    let started = Instant::now();
    let bin_dir = match &args.bin_dir {
        Some(d) => d.clone(),
        None => std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .ok_or_else(|| CliError::Quickstart("cannot find this binary's directory".into()))?,
    };
    let sim_bin = bin(&bin_dir, "drover-agent-sim")?;
    let scheduler_bin = bin(&bin_dir, "drover-scheduler")?;
    let dir = std::env::temp_dir().join(format!("drover-quickstart-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("work")).map_err(|source| CliError::Io {
        path: dir.clone(),
        source,
    })?;
    let mut cluster = Cluster {
        dir: dir.clone(),
        sim: None,
        scheduler: None,
    };
    let wait = Duration::from_secs(30);

    let mut real = args.real_agents;
    if real > 0 {
        if let Some(why) = real_agents_unsupported(&sim_bin, &bin_dir) {
            println!("note: starting without real agents: {why}");
            real = 0;
        }
    }
    let work_dir = dir.join("work").display().to_string();
    let mut sim_args: Vec<String> = [
        "--listen",
        "127.0.0.1:0",
        "--agents",
        &(args.agents + real).to_string(),
        "--zones",
        &args.zones,
        "--allocation-interval",
        "200ms",
    ]
    .map(str::to_owned)
    .to_vec();
    if real > 0 {
        sim_args.extend([
            "--real-agents".to_owned(),
            real.to_string(),
            "--work-dir".to_owned(),
            work_dir.clone(),
            "--executor-path".to_owned(),
            bin_dir.join("drover-executor").display().to_string(),
        ]);
    }
    let sim = ChildProc::start(
        "drover-agent-sim",
        &sim_bin,
        &sim_args,
        &dir.join("agent-sim.log"),
        wait,
    )?;
    let master = format!("http://{}", sim.address);
    println!(
        "master:    {master} (drover-agent-sim, pid {}: {} simulated + {real} real agents, zones {})",
        sim.pid(),
        args.agents,
        args.zones
    );
    cluster.sim = Some(sim);

    // An admin with a fresh token (the CLI's) and password (the UI's
    // login): the scheduler runs as any other does, authenticated.
    let login = AdminLogin::new()?;
    let credentials_file = dir.join("credentials.yaml");
    login.write(&credentials_file)?;
    let scheduler_args: Vec<String> = [
        "--listen",
        "127.0.0.1:0",
        "--master",
        &master,
        "--data-dir",
        &dir.join("data").display().to_string(),
        "--credentials-file",
        &credentials_file.display().to_string(),
        // Tasks run as nobody, never as the root the quickstart usually
        // runs as: the examples need no more (their sandbox is handed to
        // the task's user), and root tasks would need --allow-root-tasks.
        "--user",
        "nobody",
    ]
    .map(str::to_owned)
    .to_vec();
    let scheduler = ChildProc::start(
        "drover-scheduler",
        &scheduler_bin,
        &scheduler_args,
        &dir.join("scheduler.log"),
        wait,
    )?;
    let addr = format!("http://{}", scheduler.address);
    println!(
        "scheduler: {addr} (drover-scheduler, pid {})",
        scheduler.pid()
    );
    println!("logs:      {}", dir.display());
    println!(
        "login:     token {} (DROVER_TOKEN); web UI user admin, password {}",
        login.token, login.password
    );
    cluster.scheduler = Some(scheduler);

    let client = ApiClient::new(&addr)?.with_token(&login.token)?;
    let deadline = args.duration.map(|d| started + d);
    let stop = async move {
        match deadline {
            Some(at) => tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                _ = tokio::time::sleep_until(at.into()) => {},
            },
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    tokio::pin!(stop);

    println!("\nsubmitting examples/batch-hello.yaml and examples/service-web.yaml");
    let batch = create_from_text(
        &client,
        Output::Table,
        "examples/batch-hello.yaml",
        BATCH_EXAMPLE,
        Some("batch-hello"),
    )
    .await?;
    let service = create_from_text(
        &client,
        Output::Table,
        "examples/service-web.yaml",
        SERVICE_EXAMPLE,
        Some("service-web"),
    )
    .await?;
    println!();
    let jobs = [
        (batch.clone(), Until::Terminal),
        (service.clone(), Until::Running),
    ];
    let outcomes = watch::watch(
        &client,
        &jobs,
        Duration::from_millis(500),
        Output::Table,
        &mut stop,
    )
    .await?;
    let ready = matches!(&outcomes, Some(o) if o.iter().all(|x| matches!(x, Outcome::Reached(_))));
    println!();
    for (id, _) in &jobs {
        let pods = client.get(&format!("/api/v1/jobs/{id}/pods")).await?;
        let job = client.get(&format!("/api/v1/jobs/{id}")).await?;
        println!(
            "{id}: {}",
            output::text(&job["job_info"]["status"]["state"])
        );
        print!("{}", pods_table(&pods["pods"]));
    }
    if ready {
        println!(
            "\nquickstart: batch job {batch} SUCCEEDED, service job {service} RUNNING.\n\
             The web UI: {addr}/ui/\n\
             Try, in another terminal:\n  export DROVER_ADDR={addr} DROVER_TOKEN={token}\n  \
             drover job list\n  drover job get {service}\n  drover pod events {batch}-0\n  \
             drover job create examples/constraints-zones.yaml --watch",
            token = login.token
        );
        if real > 0 {
            println!(
                "  drover pod logs {batch}-0 --agent {master} --work-dir {work_dir}   \
                 (if it ran on the real agent)"
            );
        }
        match args.duration {
            Some(d) => println!("Everything stops after {d:?} in all, or on Ctrl-C."),
            None => println!("Press Ctrl-C to stop everything."),
        }
        (&mut stop).await;
    } else if outcomes.is_some() {
        println!("\nquickstart: a job did not reach its goal; see the tables above");
    } else {
        println!("\nquickstart: stopped before the jobs were ready");
    }

    println!("\nstopping the jobs");
    for (id, _) in &jobs {
        if let Err(e) = client
            .post(&format!("/api/v1/jobs/{id}/stop"), &serde_json::json!({}))
            .await
        {
            eprintln!("cannot stop {id}: {e}");
        }
    }
    wait_for_pods_down(&client, &jobs.map(|(id, _)| id)).await;
    drop(cluster);
    Ok(if ready { 0 } else { 1 })
}

/// The quickstart's one user: an admin, with a new token and password.
struct AdminLogin {
    token: String,
    password: String,
}

impl AdminLogin {
    fn new() -> Result<AdminLogin, CliError> {
        let token = credentials::new_token();
        // Shorter than a token: typed into the UI's login page.
        let password = credentials::new_token()[..16].to_owned();
        Ok(AdminLogin { token, password })
    }

    /// The credentials file naming it (0600: it holds a password hash).
    fn write(&self, path: &Path) -> Result<(), CliError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let hash = credentials::hash_password(&self.password)
            .map_err(|e| CliError::Quickstart(format!("cannot hash the password: {e}")))?;
        let text = format!(
            "users:\n  - name: admin\n    role: admin\n    tokens: [{}]\n    password: '{hash}'\n",
            credentials::digest_text(&self.token)
        );
        let io = |source| CliError::Io {
            path: path.to_owned(),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        file.write_all(text.as_bytes()).map_err(io)
    }
}

/// Waits (a bounded while) until no pod of `jobs` is live, so executors
/// end before the simulator does.
async fn wait_for_pods_down(client: &ApiClient, jobs: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        let mut live = 0;
        for id in jobs {
            if let Ok(job) = client.get(&format!("/api/v1/jobs/{id}")).await {
                let stats = &job["job_info"]["status"]["pod_stats"];
                for state in [
                    "POD_STATE_LAUNCHING",
                    "POD_STATE_LAUNCHED",
                    "POD_STATE_STARTING",
                    "POD_STATE_RUNNING",
                    "POD_STATE_KILLING",
                ] {
                    live += stats[state].as_u64().unwrap_or(0);
                }
            }
        }
        if live == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
