//! Kubeflow experiments: the groups runs are created in (a run names one
//! by its EXPERIMENT resource reference). Stored (migration 17, which
//! also stores `Default`), so a restarted scheduler keeps them and the
//! runs that name them.

/// The id of the `Default` experiment (fixed: runs that name it keep
/// naming it).
pub const DEFAULT_EXPERIMENT_ID: &str = "00000000-0000-4000-8000-00000000d3f0";
/// The name the SDK gives runs with no experiment named.
pub const DEFAULT_EXPERIMENT_NAME: &str = "Default";

/// One experiment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Experiment {
    /// Its id (uuid).
    pub id: String,
    /// Its name, unique.
    pub name: String,
    pub description: String,
    /// When it was made, ms since the epoch.
    pub created_at_ms: i64,
}

/// Why an experiment is not made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExperimentRefused {
    #[error("experiment.name: the experiment name is empty: give the experiment a name")]
    NoName,
    #[error("an experiment named {0:?} already exists")]
    NameTaken(String),
}

/// Whether `new` may join `existing`: it needs a name no other has.
pub fn check_new(existing: &[Experiment], new: &Experiment) -> Result<(), ExperimentRefused> {
    if new.name.trim().is_empty() {
        return Err(ExperimentRefused::NoName);
    }
    if existing.iter().any(|e| e.name == new.name) {
        return Err(ExperimentRefused::NameTaken(new.name.clone()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str) -> Experiment {
        Experiment {
            id: format!("id-{name}"),
            name: name.into(),
            description: String::new(),
            created_at_ms: 0,
        }
    }

    #[test]
    fn names_are_required_and_unique() {
        let existing = [named("Default")];
        assert_eq!(check_new(&existing, &named("mine")), Ok(()));
        assert_eq!(
            check_new(&existing, &named("Default")),
            Err(ExperimentRefused::NameTaken("Default".into()))
        );
        assert_eq!(
            check_new(&existing, &named("  ")),
            Err(ExperimentRefused::NoName)
        );
    }
}
