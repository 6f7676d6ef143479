//! Files a task asks to have sent back with its terminal status (issue
//! 23: a Kubeflow pipeline node's output parameters and artifacts). The
//! task's `kfp.output_paths` label holds a JSON list of paths relative to
//! its sandbox; when the task exits 0, each that exists is read (at most
//! [`MAX_FILE_BYTES`]; a larger one is sent as a marker the scheduler
//! refuses) and the status's `data` is a JSON object from path to its
//! content in base64. The scheduler reads nothing else from an agent, so
//! a node's outputs arrive exactly when it is known to have succeeded.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path};

use base64::Engine as _;
use drover_proto::v1::TaskInfo;

/// The label naming the files.
pub const OUTPUTS_LABEL: &str = "kfp.output_paths";

/// The largest file sent back.
pub const MAX_FILE_BYTES: u64 = 256 * 1024;

/// The paths `task` asks for, if it asks.
pub fn wanted(task: &TaskInfo) -> Option<Vec<String>> {
    let labels = task.labels.as_ref()?;
    let value = labels
        .labels
        .iter()
        .find(|l| l.key == OUTPUTS_LABEL)?
        .value
        .as_deref()?;
    match serde_json::from_str::<Vec<String>>(value) {
        Ok(paths) => Some(paths),
        Err(e) => {
            tracing::warn!(error = %e, "ignoring a malformed {OUTPUTS_LABEL} label");
            None
        }
    }
}

/// The status `data` for `paths` in `sandbox`: only relative paths that
/// stay inside it are read; a missing file is left out.
pub fn read(sandbox: &Path, paths: &[String]) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut files = BTreeMap::new();
    for path in paths {
        let relative = Path::new(path);
        let inside = relative
            .components()
            .all(|c| matches!(c, Component::CurDir | Component::Normal(_)));
        if !inside {
            tracing::warn!(path, "not sending back a path outside the sandbox");
            continue;
        }
        let Ok(file) = std::fs::File::open(sandbox.join(relative)) else {
            continue;
        };
        let mut content = Vec::new();
        if file
            .take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut content)
            .is_err()
        {
            continue;
        }
        files.insert(path.clone(), b64.encode(&content));
    }
    serde_json::to_vec(&files).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_inside_the_sandbox_are_sent_back_and_others_never() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir_all(dir.path().join("tmp/outputs")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("tmp/outputs/data"), "HOWDY")
            .unwrap_or_else(|e| panic!("{e}"));
        let paths = [
            "./tmp/outputs/data".to_string(),
            "./tmp/missing".to_string(),
            "../../etc/passwd".to_string(),
        ];
        let data: BTreeMap<String, String> =
            serde_json::from_slice(&read(dir.path(), &paths)).unwrap_or_default();
        assert_eq!(data.len(), 1);
        assert_eq!(data["./tmp/outputs/data"], "SE9XRFk=");
    }
}
