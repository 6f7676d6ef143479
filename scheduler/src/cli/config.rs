//! The CLI's own config file: where the scheduler is and how to prove who
//! you are, so that neither has to be typed with every command (kubectl's
//! kubeconfig, Nomad's environment).
//!
//! `$DROVER_CONFIG`, else `$XDG_CONFIG_HOME/drover/config.yaml`, else
//! `~/.config/drover/config.yaml`; YAML:
//!
//! ```yaml
//! addr: https://drover.example:8443
//! token: <a bearer token from `drover-scheduler credentials token`>
//! ca_file: /etc/drover/ca.pem
//! ```
//!
//! A flag or its variable (`--addr`/`DROVER_ADDR`, `--token`/
//! `DROVER_TOKEN`, `--ca-file`/`DROVER_CA_FILE`) wins over the file. No file is fine; a file that does
//! not parse is an error naming it. A token in a file others can read is
//! used, with a warning, as ssh warns of a readable key.

use super::error::CliError;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// What the file may say.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CliConfig {
    /// The scheduler's address.
    #[serde(default)]
    pub addr: Option<String>,
    /// A bearer token.
    #[serde(default)]
    pub token: Option<String>,
    /// The CA bundle an `https://` scheduler is verified against.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// Where the config file is looked for.
pub fn config_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("DROVER_CONFIG") {
        return Some(PathBuf::from(path));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("drover").join("config.yaml"))
}

/// Reads the file at `path`; none there is an empty config.
pub fn load(path: &Path) -> Result<CliConfig, CliError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(CliConfig::default()),
        Err(source) => {
            return Err(CliError::Io {
                path: path.to_owned(),
                source,
            })
        }
    };
    let config: CliConfig = serde_yaml::from_str(&text)
        .map_err(|e| CliError::Usage(format!("config file {}: {e}", path.display())))?;
    if config.token.is_some() {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                eprintln!(
                    "warning: {} holds a token and others can read it (chmod 600 it)",
                    path.display()
                );
            }
        }
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_gives_address_and_token_and_none_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        assert_eq!(load(&path).unwrap(), CliConfig::default());
        std::fs::write(&path, "addr: http://10.0.0.1:8080\ntoken: abc\n").unwrap();
        let config = load(&path).unwrap();
        assert_eq!(config.addr.as_deref(), Some("http://10.0.0.1:8080"));
        assert_eq!(config.token.as_deref(), Some("abc"));
        std::fs::write(&path, "adress: x\n").unwrap();
        let error = load(&path).unwrap_err().to_string();
        assert!(error.contains("unknown field `adress`"), "{error}");
    }
}
