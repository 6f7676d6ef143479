//! What each framework has finished: its completed tasks (terminal, their
//! last update acknowledged, so forgotten by the task registry) and its
//! completed executors, as a Mesos master keeps them for `/state`
//! (`Framework::completedTasks` in `src/master/master.hpp`, a circular
//! buffer of `--max_completed_tasks_per_framework`). Tools that audit what
//! ran read them there.
//!
//! Bounded: per framework, at most the configured number of each, the
//! oldest dropped first (and only the last removed frameworks keep
//! theirs, `frameworks.rs`); a record holds only what `/state` shows (no
//! TaskInfo, no update data), moved out of the registry's record without
//! copying, so keeping it costs the launch path nothing.

use std::collections::VecDeque;

use drover_proto::v1::{self, TaskState};

use super::tasks::{StatusTrail, Task};
use crate::fixed_hash::HashMap;
use crate::ids::AgentIndex;
use crate::resources::Resources;

/// How much history each framework keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryLimits {
    /// Completed tasks per framework (Mesos `--max_completed_tasks_per_framework`,
    /// 1000).
    pub tasks: usize,
    /// Completed executors per framework (the Mesos agent's
    /// `--max_completed_executors_per_framework`, 150).
    pub executors: usize,
    /// Removed frameworks that keep their history (Mesos
    /// `--max_completed_frameworks`, 50).
    pub frameworks: usize,
}

impl Default for HistoryLimits {
    fn default() -> Self {
        HistoryLimits {
            tasks: 1000,
            executors: 150,
            frameworks: 50,
        }
    }
}

/// A task that reached a terminal state.
#[derive(Debug, Clone)]
pub struct CompletedTask {
    pub task_id: v1::TaskId,
    pub name: String,
    /// Its explicit executor's id, if it had one.
    pub executor_id: Option<String>,
    pub agent: AgentIndex,
    pub resources: Resources,
    pub labels: Option<Box<v1::Labels>>,
    pub state: TaskState,
    pub statuses: StatusTrail,
}

impl CompletedTask {
    /// The record of a task the registry forgot, and its executor's info
    /// (for a completed executor record), without copying either.
    pub fn from_task(task: Task) -> (CompletedTask, Option<Box<v1::ExecutorInfo>>) {
        let executor_id = task.executor.as_ref().map(|e| e.executor_id.value.clone());
        let record = CompletedTask {
            task_id: task.task_id,
            name: task.name,
            executor_id,
            agent: task.agent,
            resources: task.resources,
            labels: task.labels,
            state: task.state,
            statuses: task.statuses,
        };
        (record, task.executor)
    }
}

/// An executor that ended, on the agent it ran on.
#[derive(Debug, Clone)]
pub struct CompletedExecutor {
    pub info: Box<v1::ExecutorInfo>,
    pub agent: AgentIndex,
}

/// One framework's history, oldest first.
#[derive(Debug, Default)]
pub struct FrameworkHistory {
    tasks: VecDeque<CompletedTask>,
    executors: VecDeque<CompletedExecutor>,
}

impl FrameworkHistory {
    pub fn tasks(&self) -> impl Iterator<Item = &CompletedTask> {
        self.tasks.iter()
    }

    pub fn executors(&self) -> impl Iterator<Item = &CompletedExecutor> {
        self.executors.iter()
    }

    fn push_task(&mut self, task: CompletedTask, limit: usize) {
        push_bounded(&mut self.tasks, task, limit);
    }

    fn push_executor(&mut self, executor: CompletedExecutor, limit: usize) {
        push_bounded(&mut self.executors, executor, limit);
    }
}

fn push_bounded<T>(ring: &mut VecDeque<T>, item: T, limit: usize) {
    if limit == 0 {
        return;
    }
    while ring.len() >= limit {
        ring.pop_front();
    }
    ring.push_back(item);
}

/// Every active framework's history.
#[derive(Debug, Default)]
pub struct History {
    limits: HistoryLimits,
    by_framework: HashMap<String, FrameworkHistory>,
}

impl History {
    pub fn new(limits: HistoryLimits) -> Self {
        History {
            limits,
            by_framework: HashMap::default(),
        }
    }

    /// A task of `framework` completed.
    pub fn on_task_completed(&mut self, framework: &str, task: CompletedTask) {
        let limit = self.limits.tasks;
        self.entry(framework).push_task(task, limit);
    }

    /// An executor of `framework` ended.
    pub fn on_executor_completed(&mut self, framework: &str, executor: CompletedExecutor) {
        let limit = self.limits.executors;
        self.entry(framework).push_executor(executor, limit);
    }

    /// The framework's history so far.
    pub fn of(&self, framework: &str) -> Option<&FrameworkHistory> {
        self.by_framework.get(framework)
    }

    /// Hands over a removed framework's history (to its completed record).
    pub fn take(&mut self, framework: &str) -> FrameworkHistory {
        self.by_framework.remove(framework).unwrap_or_default()
    }

    fn entry(&mut self, framework: &str) -> &mut FrameworkHistory {
        // Looked up before inserting: `entry` would clone the framework id
        // on every completion.
        if !self.by_framework.contains_key(framework) {
            self.by_framework
                .insert(framework.to_owned(), FrameworkHistory::default());
        }
        self.by_framework
            .get_mut(framework)
            .expect("inserted just above if it was missing")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn done(id: &str) -> CompletedTask {
        CompletedTask {
            task_id: v1::TaskId { value: id.into() },
            name: id.into(),
            executor_id: None,
            agent: 0,
            resources: Resources::default(),
            labels: None,
            state: TaskState::TaskFinished,
            statuses: StatusTrail::default(),
        }
    }

    fn ids(h: &History, fw: &str) -> Vec<String> {
        h.of(fw)
            .map(|f| f.tasks().map(|t| t.task_id.value.clone()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn completed_tasks_are_kept_per_framework_up_to_the_limit_oldest_dropped_first() {
        let mut h = History::new(HistoryLimits {
            tasks: 2,
            executors: 1,
            frameworks: 1,
        });
        for id in ["a", "b", "c"] {
            h.on_task_completed("f1", done(id));
        }
        h.on_task_completed("f2", done("z"));
        assert_eq!(ids(&h, "f1"), ["b", "c"]);
        assert_eq!(ids(&h, "f2"), ["z"]);
        let taken = h.take("f1");
        assert_eq!(taken.tasks().count(), 2);
        assert!(h.of("f1").is_none());
    }

    #[test]
    fn a_limit_of_zero_keeps_nothing() {
        let mut h = History::new(HistoryLimits {
            tasks: 0,
            executors: 0,
            frameworks: 0,
        });
        h.on_task_completed("f", done("a"));
        assert_eq!(ids(&h, "f"), Vec::<String>::new());
    }
}
