//! The audit trail: one structured line for every write a caller asks
//! for, whatever its face: who (identity, role, how proven), through what
//! (face, method, request id), to what (the job, pod or run), and how it
//! ended (OK, or the error's code and message). Also every request refused
//! for its credentials.
//!
//! Each line goes to the log (target `drover::audit`) and, with
//! `--audit-log FILE`, to that file as one JSON object per line, appended,
//! the file made readable by its owner only. A line is written with one
//! `write` on a file opened for appending, so lines of concurrent requests
//! never interleave.

use super::authn::{Caller, Face};
use super::error::ApiError;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

/// Where audit lines go.
#[derive(Debug, Default)]
pub struct AuditLog {
    file: Option<Mutex<std::fs::File>>,
}

impl AuditLog {
    /// Lines to the log only.
    pub fn log_only() -> AuditLog {
        AuditLog::default()
    }

    /// Lines to the log and appended to `path` (made 0600 if new).
    pub fn to_file(path: &Path) -> std::io::Result<AuditLog> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        Ok(AuditLog {
            file: Some(Mutex::new(file)),
        })
    }

    /// A write by `caller` to `target`, and how it ended.
    pub fn record(&self, caller: &Caller, target: &str, result: Result<(), &ApiError>) {
        let identity = &caller.identity;
        let (code, message) = match result {
            Ok(()) => ("OK", ""),
            Err(e) => (e.code.name(), e.message.as_str()),
        };
        tracing::info!(
            target: "drover::audit",
            request_id = %caller.request_id,
            identity = %identity.name,
            role = %identity.role,
            via = caller.via.as_str(),
            face = caller.face.as_str(),
            method = %caller.method,
            target = %target,
            result = code,
            message = %message,
            "audit"
        );
        self.append(serde_json::json!({
            "at": super::rfc3339::format(crate::runner::now_millis()),
            "request_id": caller.request_id,
            "identity": identity.name,
            "role": identity.role.as_str(),
            "via": caller.via.as_str(),
            "face": caller.face.as_str(),
            "method": caller.method,
            "target": target,
            "result": code,
            "message": message,
        }));
    }

    /// A request refused before anybody was identified (401), or for a
    /// missing CSRF header.
    pub fn refused(&self, request_id: &str, face: Face, method: &str, error: &ApiError) {
        tracing::info!(
            target: "drover::audit",
            request_id = %request_id,
            face = face.as_str(),
            method = %method,
            result = error.code.name(),
            message = %error.message,
            "audit: refused"
        );
        self.append(serde_json::json!({
            "at": super::rfc3339::format(crate::runner::now_millis()),
            "request_id": request_id,
            "identity": null,
            "face": face.as_str(),
            "method": method,
            "result": error.code.name(),
            "message": error.message,
        }));
    }

    fn append(&self, line: serde_json::Value) {
        let Some(file) = &self.file else {
            return;
        };
        let mut text = line.to_string();
        text.push('\n');
        let mut file = match file.lock() {
            Ok(file) => file,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Err(e) = file.write_all(text.as_bytes()) {
            tracing::error!(error = %e, "cannot append to the audit log");
        }
    }
}
