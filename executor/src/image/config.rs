//! The part of an image's configuration a container runs with: Docker's
//! `Entrypoint`, `Cmd`, `Env`, `WorkingDir` and `User`, read from the OCI
//! image configuration (or Docker's, which has the same `config` object).

use oci_spec::image::ImageConfiguration;

/// The image's defaults for the process a container runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    /// `Entrypoint`; None when unset or empty.
    pub entrypoint: Option<Vec<String>>,
    /// `Cmd`; None when unset or empty.
    pub cmd: Option<Vec<String>>,
    /// `Env`, `NAME=value` entries in the image's order.
    pub env: Vec<String>,
    /// `WorkingDir`; None when unset or empty (Docker writes `""`).
    pub working_dir: Option<String>,
    /// `User` (`user`, `uid`, `user:group`, `uid:gid`); None when unset or empty.
    pub user: Option<String>,
}

impl ImageConfig {
    /// The defaults of `configuration`, with Docker's empty values as unset.
    pub fn from_oci(configuration: &ImageConfiguration) -> Self {
        let Some(config) = configuration.config() else {
            return ImageConfig::default();
        };
        let non_empty_list =
            |list: &Option<Vec<String>>| list.clone().filter(|list| !list.is_empty());
        let non_empty = |value: &Option<String>| value.clone().filter(|value| !value.is_empty());
        ImageConfig {
            entrypoint: non_empty_list(config.entrypoint()),
            cmd: non_empty_list(config.cmd()),
            env: config.env().clone().unwrap_or_default(),
            working_dir: non_empty(config.working_dir()),
            user: non_empty(config.user()),
        }
    }
}
