//! Where a pod may run, as users write it: Peloton's `Constraint` (label
//! constraints on host attributes or on the labels of pods already on the
//! host, composed with AND/OR) and Titus-style placement options (unique
//! host, exclusive host, zone balance, spread or bin-pack). Shapes only;
//! [`crate::placement`] gives them meaning.

use super::spec::Label;
use serde::{Deserialize, Serialize};

/// Peloton `Constraint.Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum ConstraintType {
    /// `label_constraint` is the constraint.
    #[serde(rename = "LABEL_CONSTRAINT")]
    Label,
    /// Every one of `and_constraint.constraints` holds.
    #[serde(rename = "AND_CONSTRAINT")]
    And,
    /// At least one of `or_constraint.constraints` holds.
    #[serde(rename = "OR_CONSTRAINT")]
    Or,
}

/// Peloton `Constraint`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Constraint {
    /// Which of the fields below applies.
    #[serde(rename = "type")]
    pub constraint_type: ConstraintType,
    /// For LABEL_CONSTRAINT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_constraint: Option<LabelConstraint>,
    /// For AND_CONSTRAINT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub and_constraint: Option<Constraints>,
    /// For OR_CONSTRAINT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub or_constraint: Option<Constraints>,
}

/// Peloton `AndConstraint` / `OrConstraint`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Constraints {
    /// The operands. (A constraint nests: its schema refers to itself, and
    /// utoipa must not follow that reference when collecting schemas.)
    #[serde(default)]
    #[schema(no_recursion)]
    pub constraints: Vec<Constraint>,
}

/// Peloton `LabelConstraint.Kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum LabelKind {
    /// Labels of the pods already on the host.
    #[serde(rename = "POD")]
    Pod,
    /// The host's attributes (and `hostname`) as labels.
    #[serde(rename = "HOST")]
    Host,
}

/// Peloton `LabelConstraint.Condition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Condition {
    /// occurrences < requirement.
    #[serde(rename = "CONDITION_LESS_THAN")]
    LessThan,
    /// occurrences == requirement.
    #[serde(rename = "CONDITION_EQUAL")]
    Equal,
    /// occurrences > requirement.
    #[serde(rename = "CONDITION_GREATER_THAN")]
    GreaterThan,
}

/// Peloton `LabelConstraint`: the number of occurrences of `label` among
/// the host's labels (HOST) or its pods' labels (POD), compared with
/// `requirement`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LabelConstraint {
    /// Which labels are counted.
    pub kind: LabelKind,
    /// How the count compares with `requirement`.
    pub condition: Condition,
    /// The label counted.
    pub label: Label,
    /// The bound.
    #[serde(default)]
    pub requirement: u32,
}

/// Titus' scoring choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum PlacementStrategy {
    /// Prefer the emptiest host (the default for services: a lost host
    /// takes fewer instances with it).
    #[serde(rename = "SPREAD")]
    Spread,
    /// Prefer the fullest host that fits (the default for batch: leaves
    /// whole hosts free for big tasks).
    #[serde(rename = "BINPACK")]
    BinPack,
}

/// Titus-style placement options of a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlacementSpec {
    /// At most one instance of the job per host (Titus `uniqueHost`).
    #[serde(default)]
    pub unique_host: bool,
    /// No other job's pod on the same host (Titus `exclusiveHost`).
    #[serde(default)]
    pub exclusive_host: bool,
    /// Keep the job's instances even across the `zone` attribute's values
    /// (Titus `zoneBalance`), never more than one apart.
    #[serde(default)]
    pub zone_balance: bool,
    /// SPREAD or BINPACK; default by job type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<PlacementStrategy>,
    /// The same options as preferences (Titus soft constraints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefer: Option<Preferences>,
}

/// Titus soft constraints: what a pod's placement prefers. Scored, never
/// blocking: a host that meets them wins over one that does not, and a pod
/// still goes to one that does not when no other fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Preferences {
    /// Prefer a host with no other instance of the job.
    #[serde(default)]
    pub unique_host: bool,
    /// Prefer a host with no other job's pod.
    #[serde(default)]
    pub exclusive_host: bool,
    /// Prefer the zone with the fewest of the job's instances.
    #[serde(default)]
    pub zone_balance: bool,
}

impl Constraint {
    /// A LABEL_CONSTRAINT.
    pub fn label(kind: LabelKind, condition: Condition, key: &str, value: &str, n: u32) -> Self {
        Constraint {
            constraint_type: ConstraintType::Label,
            label_constraint: Some(LabelConstraint {
                kind,
                condition,
                label: Label {
                    key: key.to_owned(),
                    value: value.to_owned(),
                },
                requirement: n,
            }),
            and_constraint: None,
            or_constraint: None,
        }
    }

    /// The operands of an AND or OR (empty for a label constraint).
    pub fn operands(&self) -> &[Constraint] {
        let list = match self.constraint_type {
            ConstraintType::Label => None,
            ConstraintType::And => self.and_constraint.as_ref(),
            ConstraintType::Or => self.or_constraint.as_ref(),
        };
        list.map_or(&[], |c| c.constraints.as_slice())
    }
}
