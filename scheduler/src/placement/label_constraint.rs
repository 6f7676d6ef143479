//! Peloton's constraints: a LABEL_CONSTRAINT counts the occurrences of a
//! label among the host's attributes (HOST; `hostname` included) or among
//! the labels of the pods already on the host (POD), and compares the
//! count with `requirement`; AND and OR compose them. A rejection names
//! the failed requirement as users think of it: `zone==c`,
//! `pods[app=web] < 1`.
//!
//! A pod's `soft_constraint` is the same expression as a preference: hosts
//! that satisfy it rank ahead of hosts that do not, and none is rejected.

use super::filter::{Filter, Rejection};
use super::host_view::HostView;
use super::preference::Preference;
use super::round::Round;
use crate::model::demand::TaskDemand;
use crate::model::spec::{Condition, Constraint, ConstraintType, LabelConstraint, LabelKind};

/// Rejects hosts that fail the task's constraint.
#[derive(Debug, Clone, Copy, Default)]
pub struct LabelConstraintFilter;

impl Filter for LabelConstraintFilter {
    fn name(&self) -> &'static str {
        "constraint"
    }

    fn check(&self, task: &TaskDemand, host: &HostView, _: &Round) -> Result<(), Rejection> {
        match &task.constraint {
            None => Ok(()),
            Some(c) => evaluate(c, host).map_err(|reason| Rejection {
                filter: self.name(),
                reason: reason.into(),
            }),
        }
    }

    fn admits(&self, task: &TaskDemand, host: &HostView, _: &Round) -> bool {
        task.constraint.as_ref().is_none_or(|c| satisfied(c, host))
    }
}

/// Prefers hosts that satisfy the task's soft constraint (penalty 1 for
/// one that does not).
#[derive(Debug, Clone, Copy, Default)]
pub struct SoftConstraintPreference;

impl Preference for SoftConstraintPreference {
    fn name(&self) -> &'static str {
        "soft_constraint"
    }

    fn penalty(&self, task: &TaskDemand, host: &HostView, _: &Round) -> u32 {
        match &task.soft_constraint {
            Some(c) if !satisfied(c, host) => 1,
            _ => 0,
        }
    }
}

/// Whether `host` satisfies `constraint`: [`evaluate`] without rendering
/// the failed requirement, for the hot path.
pub fn satisfied(constraint: &Constraint, host: &HostView) -> bool {
    match constraint.constraint_type {
        ConstraintType::Label => constraint
            .label_constraint
            .as_ref()
            .is_some_and(|lc| holds(lc, host)),
        ConstraintType::And => constraint.operands().iter().all(|c| satisfied(c, host)),
        ConstraintType::Or => constraint.operands().iter().any(|c| satisfied(c, host)),
    }
}

/// Ok if `host` satisfies `constraint`, else the failed requirement.
pub fn evaluate(constraint: &Constraint, host: &HostView) -> Result<(), String> {
    match constraint.constraint_type {
        ConstraintType::Label => match &constraint.label_constraint {
            Some(lc) if holds(lc, host) => Ok(()),
            Some(lc) => Err(render(lc)),
            None => Err("a well-formed constraint".into()),
        },
        ConstraintType::And => constraint
            .operands()
            .iter()
            .try_for_each(|c| evaluate(c, host)),
        ConstraintType::Or => {
            let mut failed = Vec::new();
            for c in constraint.operands() {
                match evaluate(c, host) {
                    Ok(()) => return Ok(()),
                    Err(why) => failed.push(why),
                }
            }
            Err(format!("({})", failed.join(" || ")))
        }
    }
}

fn occurrences(lc: &LabelConstraint, host: &HostView) -> u32 {
    let (key, value) = (&lc.label.key, &lc.label.value);
    match lc.kind {
        LabelKind::Host => u32::from(host.attributes.get(key) == Some(value)),
        LabelKind::Pod => host
            .pods
            .iter()
            .filter(|p| p.labels.iter().any(|(k, v)| k == key && v == value))
            .count() as u32,
    }
}

fn holds(lc: &LabelConstraint, host: &HostView) -> bool {
    let n = occurrences(lc, host);
    match lc.condition {
        Condition::LessThan => n < lc.requirement,
        Condition::Equal => n == lc.requirement,
        Condition::GreaterThan => n > lc.requirement,
    }
}

fn render(lc: &LabelConstraint) -> String {
    let (key, value, n) = (&lc.label.key, &lc.label.value, lc.requirement);
    match (lc.kind, lc.condition, n) {
        (LabelKind::Host, Condition::Equal, 1) | (LabelKind::Host, Condition::GreaterThan, 0) => {
            format!("{key}=={value}")
        }
        (LabelKind::Host, Condition::Equal, 0) | (LabelKind::Host, Condition::LessThan, 1) => {
            format!("{key}!={value}")
        }
        (kind, condition, n) => {
            let what = match kind {
                LabelKind::Host => "host",
                LabelKind::Pod => "pods",
            };
            let op = match condition {
                Condition::LessThan => "<",
                Condition::Equal => "==",
                Condition::GreaterThan => ">",
            };
            format!("{what}[{key}={value}] {op} {n}")
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::resources::Resources;
    use crate::model::spec_constraint::Constraints;
    use crate::placement::PodOnHost;

    fn host() -> HostView {
        HostView::new("a", "h1", "*", Resources::default())
            .with_attribute("zone", "a")
            .with_pods(vec![PodOnHost {
                job: "other".into(),
                labels: vec![("app".into(), "web".into())],
                exclusive: false,
            }])
    }

    fn compose(t: ConstraintType, list: Vec<Constraint>) -> Constraint {
        let operands = Some(Constraints { constraints: list });
        Constraint {
            constraint_type: t,
            label_constraint: None,
            and_constraint: if t == ConstraintType::And {
                operands.clone()
            } else {
                None
            },
            or_constraint: if t == ConstraintType::Or {
                operands
            } else {
                None
            },
        }
    }

    #[test]
    fn host_and_pod_labels_with_each_condition_and_composition() {
        use Condition::*;
        use LabelKind::*;
        let zone = |v: &str| Constraint::label(Host, Equal, "zone", v, 1);
        let table = [
            (zone("a"), Ok(())),
            (zone("c"), Err("zone==c".to_owned())),
            (
                Constraint::label(Host, Equal, "zone", "a", 0),
                Err("zone!=a".to_owned()),
            ),
            (Constraint::label(Host, Equal, "hostname", "h1", 1), Ok(())),
            (
                Constraint::label(Pod, LessThan, "app", "web", 1),
                Err("pods[app=web] < 1".to_owned()),
            ),
            (Constraint::label(Pod, LessThan, "app", "web", 2), Ok(())),
            (Constraint::label(Pod, GreaterThan, "app", "web", 0), Ok(())),
            (Constraint::label(Pod, Equal, "app", "db", 0), Ok(())),
            (
                compose(ConstraintType::And, vec![zone("a"), zone("c")]),
                Err("zone==c".to_owned()),
            ),
            (
                compose(ConstraintType::Or, vec![zone("b"), zone("a")]),
                Ok(()),
            ),
            (
                compose(ConstraintType::Or, vec![zone("b"), zone("c")]),
                Err("(zone==b || zone==c)".to_owned()),
            ),
        ];
        for (c, want) in table {
            assert_eq!(satisfied(&c, &host()), want.is_ok(), "{c:?}");
            assert_eq!(evaluate(&c, &host()), want, "{c:?}");
        }
    }

    #[test]
    fn a_soft_constraint_ranks_and_never_rejects() {
        let mut task = TaskDemand::new(0, "j", Resources::default());
        let r = Round::default();
        let zone = |v: &str| Constraint::label(LabelKind::Host, Condition::Equal, "zone", v, 1);
        assert_eq!(SoftConstraintPreference.penalty(&task, &host(), &r), 0);
        task.soft_constraint = Some(zone("a"));
        assert_eq!(SoftConstraintPreference.penalty(&task, &host(), &r), 0);
        task.soft_constraint = Some(zone("c"));
        assert_eq!(SoftConstraintPreference.penalty(&task, &host(), &r), 1);
        assert!(LabelConstraintFilter.admits(&task, &host(), &r));
        assert!(LabelConstraintFilter.check(&task, &host(), &r).is_ok());
    }
}
