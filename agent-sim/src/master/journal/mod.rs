//! The master's journal (`--state-dir DIR`): what the leading master of a
//! set keeps on disk so that the master taking over after it can have its
//! simulated agents re-register with their tasks, as Mesos agents
//! re-register with a new leading master (src/master/master.cpp:
//! `reregisterSlave`, and `recoverFramework` for the frameworks those
//! agents report).
//!
//! What it holds: every simulated agent (id, place in the fleet,
//! hostname, resources, attributes), every framework's FrameworkInfo (a
//! Mesos agent checkpoints it beside its tasks), and every task the
//! master knows: framework and task id, name, executor, agent, resources,
//! labels (those that drive the simulation, `sim.duration_ms`,
//! `sim.exit_code`, `sim.healthy`, among them), state, health, the states
//! it went through, its simulated lifecycle (launch time, kill deadline,
//! health counters) and its unacknowledged status updates. Not kept: the
//! maintenance schedule, drains and deactivations, outstanding offers
//! (a new master makes new ones), completed tasks (history), and real
//! agents and their tasks (`takeover.rs` says why).
//!
//! How it is kept, so the hot path stays fast:
//! - Without the flag nothing is recorded: the parts' change sets are
//!   `None`, and each mutation pays one branch on it.
//! - With it, the parts note which tasks, frameworks and agents changed;
//!   once per event-loop turn (each input the driver feeds the master)
//!   the driver encodes the latest state of each changed thing as one
//!   record and appends the turn's records with one `write()`, before it
//!   carries out the turn's effects (so nothing a framework was told is
//!   missing from the journal). A task that changed five times in a turn
//!   is written once.
//! - Replay takes the latest record of each thing, so a snapshot (every
//!   live thing's record) and a journal are the same format: when the
//!   journal has grown to a few times its last snapshot it is replaced by
//!   a fresh one (`file.rs`), which bounds both its size and the replay.
//!
//! Durability: appends are plain `write()`s, never `fsync`ed. A write
//! that returned is in the kernel's page cache, which outlives the
//! process: a SIGKILLed (or crashed) master loses nothing it wrote, and
//! that is the failure this journal is for. A power loss or kernel crash
//! can lose the last seconds of it; the master set would then lose what a
//! Mesos cluster loses when the agents' hosts go down too.
//!
//! A record cut by a crash mid-`write()` ends the replay at the last whole
//! record (`replay.rs`).
//!
//! # Layout
//! - [`changes`]: which things changed since the last turn (the parts hold one each).
//! - [`entry`]: the records (protobuf) and the simulated task's conversions.
//! - [`replay`]: framing, and folding records into what they describe (pure).
//! - [`file`]: the state directory, the current journal, compaction (drive).

pub mod changes;
pub mod entry;
pub mod file;
pub mod replay;

pub use entry::{Clock, Entry, Kind};
pub use file::{CompactionConfig, JournalDir, JournalError, JournalWriter, ReadBack};
pub use replay::{encode_frame, replay, Cut, CutReason, Recovered};
