//! Each node's own files. kfp compiles fixed paths into every component
//! (`/tmp/outputs/Output/data`, `/tmp/inputs/report/data`): on
//! Kubernetes each pod has its own `/tmp`, but Drover's nodes share their
//! host, so two consumers running at once would write the same file. The
//! rule: every compiled input/output path `P` of a node becomes
//! `node_root + P`, where `node_root` is the node's own directory (its
//! Mesos sandbox, or a directory under it: unique per node and kept with
//! its logs), and the same rewrite is made wherever `P` appears in the
//! command's literal text (kfp passes the paths as arguments). Values
//! substituted into the command are never rewritten.
//!
//! [`container_launch`] builds what a node's Drover task runs from its
//! template and scope: the command with variables substituted and paths
//! rewritten, the environment, the files Drover must put in place first
//! and the files it reads back after.

use super::error::ResolveError;
#[cfg(doc)]
use super::spec::ImageUse;
use super::spec::{ArgumentArtifact, ArtifactRef, ArtifactSource, ParameterSource, Template};
use super::text::{NodeScope, Segment, Text};

/// Where the compiled path `compiled` (absolute) lives for the node whose
/// own directory is `node_root`.
pub fn node_path(node_root: &str, compiled: &str) -> String {
    format!("{}{}", node_root.trim_end_matches('/'), compiled)
}

/// What a container node runs, in its own paths.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeLaunch {
    /// The image as written (asked for unless the scheduler runs nodes on
    /// the host: [`ImageUse`]).
    pub image: String,
    /// `command` then `args`, substituted and rewritten: the program is
    /// the first element.
    pub argv: Vec<String>,
    /// The environment, substituted and rewritten.
    pub env: Vec<(String, String)>,
    /// Files to put in place before the command starts.
    pub input_files: Vec<InputFile>,
    /// Output parameters to read after it succeeds.
    pub output_parameters: Vec<OutputFile>,
    /// Output artifacts it leaves behind (read by ReadArtifact).
    pub output_artifacts: Vec<OutputFile>,
}

impl NodeLaunch {
    /// The directories to create before the command starts: each output's
    /// parent (a plain `ContainerOp` does not make them itself) and each
    /// input's, sorted and without repeats.
    pub fn directories(&self) -> Vec<String> {
        let mut dirs: Vec<String> = self
            .input_files
            .iter()
            .map(|f| f.path.as_str())
            .chain(self.output_parameters.iter().map(|f| f.path.as_str()))
            .chain(self.output_artifacts.iter().map(|f| f.path.as_str()))
            .filter_map(|p| p.rsplit_once('/').map(|(dir, _)| dir.to_string()))
            .filter(|d| !d.is_empty())
            .collect();
        dirs.sort();
        dirs.dedup();
        dirs
    }
}

/// An input artifact the node needs at `path`.
#[derive(Debug, Clone, PartialEq)]
pub struct InputFile {
    pub name: String,
    /// The node's own path.
    pub path: String,
    pub source: InputSource,
    /// The node starts without it when the source has none.
    pub optional: bool,
}

/// Where an input file's content comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum InputSource {
    /// Literal content (`raw.data`, substituted).
    Content(String),
    /// Another node's artifact, copied from its sandbox by the engine.
    Artifact(ArtifactRef),
}

/// An output the node writes at `path` (its own path).
#[derive(Debug, Clone, PartialEq)]
pub struct OutputFile {
    pub name: String,
    pub path: String,
    /// The compiled path, as the manifest (and the Kubeflow UI) says it.
    pub compiled_path: String,
    /// An output parameter's `valueFrom.default` (for a missing file).
    pub default: Option<String>,
    /// An artifact may be missing without failing the node.
    pub optional: bool,
}

/// What the node of `template` (a container template) runs, called with
/// `call_artifacts` (the task's `arguments.artifacts`), in `scope`, with
/// its own directory `node_root`. `None` when `template` is not a
/// container template.
pub fn container_launch(
    template: &Template,
    call_artifacts: &[ArgumentArtifact],
    scope: &NodeScope<'_>,
    node_root: &str,
) -> Option<Result<NodeLaunch, ResolveError>> {
    let container = template.container()?;
    Some(build(template, container, call_artifacts, scope, node_root))
}

fn build(
    template: &Template,
    container: &super::spec::Container,
    call_artifacts: &[ArgumentArtifact],
    scope: &NodeScope<'_>,
    node_root: &str,
) -> Result<NodeLaunch, ResolveError> {
    let compiled = compiled_paths(template);
    let rewrite = |text: &Text| -> Result<String, ResolveError> {
        rewrite_literals(text, &compiled, node_root).render(scope)
    };
    let argv = container
        .command
        .iter()
        .chain(&container.args)
        .map(&rewrite)
        .collect::<Result<Vec<_>, _>>()?;
    let env = container
        .env
        .iter()
        .map(|e| Ok((e.name.clone(), rewrite(&e.value)?)))
        .collect::<Result<Vec<_>, ResolveError>>()?;

    let mut input_files = Vec::new();
    for input in &template.inputs.artifacts {
        let passed = call_artifacts.iter().find(|a| a.name == input.name);
        let source = match (passed.map(|a| &a.source), &input.raw) {
            (Some(ArtifactSource::From(r)), _) => InputSource::Artifact(r.clone()),
            (Some(ArtifactSource::Raw(text)), _) | (None, Some(text)) => {
                InputSource::Content(text.render(scope)?)
            }
            // Checked at create: an input without a source is optional.
            (Some(ArtifactSource::File(_)), None) | (None, None) => continue,
            (Some(ArtifactSource::File(_)), Some(text)) => {
                InputSource::Content(text.render(scope)?)
            }
        };
        input_files.push(InputFile {
            name: input.name.clone(),
            path: node_path(node_root, &input.path),
            source,
            optional: input.optional,
        });
    }
    let output_parameters = template
        .outputs
        .parameters
        .iter()
        .filter_map(|p| match &p.source {
            ParameterSource::File(path) => Some(OutputFile {
                name: p.name.clone(),
                path: node_path(node_root, path),
                compiled_path: path.clone(),
                default: p.default.clone(),
                optional: false,
            }),
            ParameterSource::Parameter(_) => None,
        })
        .collect();
    let output_artifacts = template
        .outputs
        .artifacts
        .iter()
        .filter_map(|a| match &a.source {
            ArtifactSource::File(path) => Some(OutputFile {
                name: a.name.clone(),
                path: node_path(node_root, path),
                compiled_path: path.clone(),
                default: None,
                optional: a.optional,
            }),
            _ => None,
        })
        .collect();
    Ok(NodeLaunch {
        image: container.image.clone(),
        argv,
        env,
        input_files,
        output_parameters,
        output_artifacts,
    })
}

/// The template's compiled file paths, longest first (so a path that is
/// a prefix of another never takes its place).
fn compiled_paths(template: &Template) -> Vec<String> {
    let mut paths: Vec<String> = template
        .inputs
        .artifacts
        .iter()
        .map(|a| a.path.clone())
        .chain(
            template
                .outputs
                .parameters
                .iter()
                .filter_map(|p| match &p.source {
                    ParameterSource::File(path) => Some(path.clone()),
                    ParameterSource::Parameter(_) => None,
                }),
        )
        .chain(
            template
                .outputs
                .artifacts
                .iter()
                .filter_map(|a| match &a.source {
                    ArtifactSource::File(path) => Some(path.clone()),
                    _ => None,
                }),
        )
        .collect();
    paths.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    paths.dedup();
    paths
}

/// The text with each compiled path in its literal parts moved under
/// `node_root`.
fn rewrite_literals(text: &Text, compiled: &[String], node_root: &str) -> Text {
    let segments = text
        .segments()
        .iter()
        .map(|segment| match segment {
            Segment::Literal(s) => Segment::Literal(rewrite_str(s, compiled, node_root)),
            Segment::Var(v) => Segment::Var(v.clone()),
        })
        .collect();
    Text::from_segments(segments)
}

/// `s` with every whole occurrence of a compiled path replaced: the
/// characters around it must not continue a path.
pub(crate) fn rewrite_str(s: &str, compiled: &[String], node_root: &str) -> String {
    let is_path_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/');
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    let mut previous: Option<char> = None;
    'scan: while let Some(c) = rest.chars().next() {
        if previous.is_none_or(|p| !is_path_char(p)) {
            for path in compiled {
                if let Some(after) = rest.strip_prefix(path.as_str()) {
                    if after.chars().next().is_none_or(|n| !is_path_char(n)) {
                        out.push_str(&node_path(node_root, path));
                        rest = after;
                        previous = path.chars().last();
                        continue 'scan;
                    }
                }
            }
        }
        out.push(c);
        previous = Some(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}
