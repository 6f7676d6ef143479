//! A node's phase as Argo names it (the run's `status.nodes[*].phase`,
//! which the Kubeflow UI reads), and the rule that starts a dag task from
//! its dependencies' phases.

/// Argo's node phases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodePhase {
    Pending,
    Running,
    Succeeded,
    /// The command failed (non-zero exit, deadline).
    Failed,
    /// Drover could not run it to its end (lost agent, launch error, a
    /// value that could not be resolved).
    Error,
    /// Its `when` was false, or its loop list was empty.
    Skipped,
    /// Not run because a dependency did not succeed (or the run was
    /// terminated first).
    Omitted,
}

impl NodePhase {
    /// The phase as Argo spells it.
    pub fn as_argo(self) -> &'static str {
        match self {
            NodePhase::Pending => "Pending",
            NodePhase::Running => "Running",
            NodePhase::Succeeded => "Succeeded",
            NodePhase::Failed => "Failed",
            NodePhase::Error => "Error",
            NodePhase::Skipped => "Skipped",
            NodePhase::Omitted => "Omitted",
        }
    }

    /// Whether the node is done (it will not change without a retry).
    pub fn is_terminal(self) -> bool {
        !matches!(self, NodePhase::Pending | NodePhase::Running)
    }

    /// Whether a task that depends on it may start: Argo's `dependencies`
    /// count a skipped task as done.
    pub fn lets_dependents_run(self) -> bool {
        matches!(self, NodePhase::Succeeded | NodePhase::Skipped)
    }
}

/// What a dag task's dependencies say about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// Some dependency has not finished.
    Wait,
    /// All finished and let it run: evaluate its `when`, expand its loop.
    Ready,
    /// All finished and one did not succeed: the task is `Omitted`.
    Omit,
}

/// The readiness of a task whose dependencies are in `phases` (one per
/// dependency; a dependency with no node yet is `Pending`).
pub fn readiness(phases: impl IntoIterator<Item = NodePhase>) -> Readiness {
    let mut omit = false;
    for phase in phases {
        if !phase.is_terminal() {
            return Readiness::Wait;
        }
        omit |= !phase.lets_dependents_run();
    }
    if omit {
        Readiness::Omit
    } else {
        Readiness::Ready
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use NodePhase::*;

    #[test]
    fn a_task_waits_for_every_dependency_then_runs_or_is_omitted() {
        let cases: [(&[NodePhase], Readiness); 7] = [
            (&[], Readiness::Ready),
            (&[Succeeded, Skipped], Readiness::Ready),
            (&[Succeeded, Running], Readiness::Wait),
            (&[Failed, Pending], Readiness::Wait),
            (&[Succeeded, Failed], Readiness::Omit),
            (&[Error], Readiness::Omit),
            (&[Omitted, Succeeded], Readiness::Omit),
        ];
        for (phases, want) in cases {
            assert_eq!(readiness(phases.iter().copied()), want, "{phases:?}");
        }
        assert_eq!(Omitted.as_argo(), "Omitted");
        assert!(Skipped.is_terminal() && !Running.is_terminal());
    }
}
