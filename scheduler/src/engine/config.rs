//! The engine's settings; every value has a documented default and the
//! reason for it.

use crate::model::resources::Resources;
use std::time::Duration;

/// Engine settings.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// A run with no update this long after its intent is reconciled
    /// explicitly. Default 30 s: long enough for an ACCEPT to reach an agent
    /// and report STAGING, short enough that a lost ACCEPT is noticed.
    pub launch_timeout: Duration,
    /// A kill with no terminal update after this long (plus the grace
    /// period) is sent again. Default 30 s.
    pub kill_retry: Duration,
    /// What each task's executor takes on top of the task (the Drover
    /// executor's own process), added to every run's demand. Default none
    /// (the command executor).
    pub executor_overhead: Resources,
    /// How long offers are held so that many tasks are placed at once.
    /// Default 10 ms: a master sends a framework all of one allocation
    /// cycle's offers in one OFFERS event, so a short hold only needs to
    /// gather the jobs created at about the same time; every ms of it is
    /// added to each launch. Job plans that fall due during the hold are
    /// made before it ends (the engine's tick order), so a job created
    /// while the hold runs joins the round however long its own planning
    /// takes. (100 ms was a seventh of a 20,000-task launch; 25 ms measured
    /// 15 ms slower than 10 ms at 20,000 tasks.)
    pub offer_hold: Duration,
    /// How long offers no run needs are kept (instead of declined at once).
    /// Default 1 s: a user who creates jobs one after another, or a job
    /// whose runs end and are replaced, launches on them at once instead of
    /// waiting for a REVIVE and the master's next allocation (Aurora keeps
    /// idle offers for minutes for the same reason; a second is enough to
    /// bridge API calls while keeping resources from other frameworks only
    /// briefly).
    pub idle_offer_hold: Duration,
    /// Refuse filter on declines while nothing waits. Default 5 s (the
    /// Mesos default).
    pub refuse: Duration,
    /// Refuse filter on declines while runs wait for offers. Default 1 s:
    /// a Mesos master lifts a filter as soon as more resources free up on
    /// the agent, but some masters filter the whole agent, and a long filter
    /// there would stall every launch wave behind it.
    pub pending_refuse: Duration,
    /// Periodic implicit reconciliation. Default 15 min (Mesos docs).
    pub reconcile_interval: Duration,
    /// Tasks per RECONCILE call. Default 1,000, to keep calls small.
    pub reconcile_chunk: usize,
    /// Most status updates stored per transaction. Default 16,384: one
    /// synchronous commit per batch, so bigger batches store (and then
    /// acknowledge) updates faster when they arrive in bursts, while a
    /// batch stays short enough (about 100 ms) not to delay launches long.
    pub update_batch: usize,
    /// Updates that make a batch worth its commit at once. Default 256.
    /// Fewer wait up to [`EngineConfig::update_linger`] for company.
    pub update_group: usize,
    /// Longest a status update waits for others to share its commit.
    /// Default 2 ms. A commit costs about 0.4 ms of fsync whatever its
    /// size; while a launch wave's RUNNING updates trickle in behind their
    /// STARTING acknowledgements, storing each few at once spent most of
    /// the runner's time on fsync (1,100 commits/s of 19 updates at
    /// 100,000 tasks). Group commit, as databases do it.
    pub update_linger: Duration,
    /// How long live (non-terminal) status updates of a job must pause
    /// before it is planned again (and at most
    /// [`super::plan_due::SETTLE_LIMIT`] times this after the first).
    /// Default 500 ms: such updates rarely change a plan, and planning a
    /// job of 10,000 instances during its own launch holds the engine from
    /// launching. Terminal updates plan their job at once (a relaunch may
    /// be due).
    pub update_settle: Duration,
    /// The same, for a job with an update in progress. Default 50 ms: its
    /// next batch waits for the plan that sees the last one up, and at
    /// `update_settle` a rolling update of 20 batches spent 10 s of its
    /// time waiting to be planned.
    pub workflow_settle: Duration,
    /// How long a job whose plan could not be stored waits before it is
    /// planned again. Default 1 s: a store that failed once (a full disk,
    /// a busy file) is given time, and the job is never dropped.
    pub retry_after_store_error: Duration,
    /// Most runs preempted per minute (for resource pools below their
    /// entitlement; 0: never preempt). Default 60: a pool that becomes
    /// active gets a host's worth of pods back within seconds, while a
    /// mistaken configuration cannot kill the cluster's work faster than
    /// one pod a second on average.
    pub preemption_rate: u32,
    /// How often pools waiting for their entitlement are looked at for
    /// preemption while runs wait. Default 1 s: a full cluster sends no
    /// offers, so no placement round comes to look; once a second costs
    /// one walk of the live runs.
    pub preemption_check: Duration,
    /// How long after each subscription nothing is preempted. Default
    /// 3 s: until the master's next allocation offers what is free, the
    /// cluster looks only as large as what Drover holds (a restarted
    /// scheduler knows no agent's size yet), and pools' entitlements
    /// computed over that would take more than their share back (seen:
    /// 9 more pods preempted after a restart mid-preemption).
    pub preemption_settle: Duration,
    /// How soon a job whose drain its disruption budget holds is planned
    /// again even if nothing else happens. Default 2 s: a budget's rate
    /// or time window frees it with time alone, and a replacement coming
    /// up replans the job at once anyway.
    pub drain_recheck: Duration,
    /// How far ahead a maintenance window the master announced
    /// (`Offer.unavailability`) keeps placement off its host. Default
    /// 1 h: a run placed there would be moved again soon.
    pub maintenance_lookahead: Duration,
    /// How long after a failed operator call (a drained host taken DOWN)
    /// it is made again. Default 10 s: a master failing over answers
    /// again within that, and a master without the maintenance calls is
    /// not asked in a tight loop.
    pub operator_retry: Duration,
    /// Whether Kubeflow pipeline nodes run in their container's image
    /// (asked for from the agents' image store) or on the agent's host.
    /// Default: the image, as Kubeflow runs every step in its image;
    /// `--kfp-images=host` keeps steps on hosts for agents without an
    /// image store.
    pub kfp_images: crate::model::pipeline::ImageUse,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            launch_timeout: Duration::from_secs(30),
            kill_retry: Duration::from_secs(30),
            executor_overhead: Resources::default(),
            offer_hold: Duration::from_millis(10),
            idle_offer_hold: Duration::from_secs(1),
            refuse: Duration::from_secs(5),
            pending_refuse: Duration::from_secs(1),
            reconcile_interval: Duration::from_secs(15 * 60),
            reconcile_chunk: 1000,
            update_batch: 16384,
            update_group: 256,
            update_linger: Duration::from_millis(2),
            update_settle: Duration::from_millis(500),
            workflow_settle: Duration::from_millis(50),
            retry_after_store_error: Duration::from_secs(1),
            preemption_rate: 60,
            preemption_check: Duration::from_secs(1),
            preemption_settle: Duration::from_secs(3),
            drain_recheck: Duration::from_secs(2),
            maintenance_lookahead: Duration::from_secs(3600),
            operator_retry: Duration::from_secs(10),
            kfp_images: crate::model::pipeline::ImageUse::Image,
        }
    }
}
