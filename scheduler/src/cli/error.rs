//! The CLI's one error type and how each kind is shown to the user: API
//! errors as `error: CODE: message`, spec-file errors with the file, line,
//! column and field, and the exit code each maps to.

use std::path::PathBuf;

/// Something that stops a `drover` command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The scheduler answered `{"code", "message"}` with an error status.
    #[error("{code}: {message}")]
    Api {
        /// gRPC-style code, e.g. INVALID_ARGUMENT.
        code: String,
        /// The scheduler's message.
        message: String,
    },
    /// The scheduler (or an agent) answered something that is not the API's
    /// error shape.
    #[error("{url} answered HTTP {status}: {body}")]
    Http {
        /// What was asked.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The body, as text.
        body: String,
    },
    /// No connection could be made.
    #[error("cannot reach {url}: {reason} (is the scheduler running? set --addr or DROVER_ADDR)")]
    Unreachable {
        /// What was asked.
        url: String,
        /// Why.
        reason: String,
    },
    /// `--addr` is not a usable address.
    #[error("--addr '{0}' is not an http://host:port or https://host:port address")]
    BadAddr(String),
    /// An `https://` address without `--ca-file`.
    #[error(
        "{0} is https:// but no CA verifies its certificate: pass --ca-file FILE \
         (DROVER_CA_FILE) with the PEM CA that signed the scheduler's certificate"
    )]
    NoCaFile(String),
    /// `--ca-file` cannot be used.
    #[error("--ca-file: {0}")]
    Tls(#[source] crate::tls::pem::TlsError),
    /// A job spec file that does not parse or breaks a rule.
    #[error("{0}")]
    Spec(#[from] super::spec_file::SpecFileError),
    /// A local file cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A request that cannot be carried out as asked.
    #[error("{0}")]
    Usage(String),
    /// A quickstart step failed.
    #[error("quickstart: {0}")]
    Quickstart(String),
}

impl CliError {
    /// The process exit code for this error: 2 for what the user must fix
    /// in the request, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Api { code, .. } if code == "INVALID_ARGUMENT" => 2,
            CliError::Spec(_)
            | CliError::BadAddr(_)
            | CliError::NoCaFile(_)
            | CliError::Tls(_)
            | CliError::Usage(_) => 2,
            _ => 1,
        }
    }
}
