//! A template's `inputs` and `outputs`: parameters, and artifacts as
//! files. Drover keeps every artifact as a file in its node's sandbox, so
//! any artifact repository (`s3`, `gcs`, `http`, ...) or archive format is
//! refused naming the field.

use super::error::PipelineError;
use super::fields::{get, items, require, Key, Located};
use super::spec::{
    ArtifactRef, ArtifactSource, InputArtifact, InputParameter, Inputs, OutputArtifact,
    OutputParameter, Outputs, ParameterSource,
};
use super::text::{Text, Variable};

/// Where an artifact could live in Argo that is not the node's sandbox.
pub(crate) const REPOSITORY_FIELDS: &[Key] = &[
    Key::Refused(
        "s3",
        "artifacts stay in the node's sandbox; there is no S3 repository",
    ),
    Key::Refused(
        "gcs",
        "artifacts stay in the node's sandbox; there is no GCS repository",
    ),
    Key::Refused(
        "http",
        "artifacts stay in the node's sandbox; there is no HTTP repository",
    ),
    Key::Refused("git", "git artifacts are not fetched by Drover"),
    Key::Refused(
        "artifactory",
        "artifacts stay in the node's sandbox; there is no Artifactory",
    ),
    Key::Refused(
        "hdfs",
        "artifacts stay in the node's sandbox; there is no HDFS",
    ),
    Key::Refused(
        "oss",
        "artifacts stay in the node's sandbox; there is no OSS repository",
    ),
    Key::Refused(
        "azure",
        "artifacts stay in the node's sandbox; there is no Azure repository",
    ),
    Key::Refused(
        "artifactGC",
        "artifacts stay in the node's sandbox until the run is deleted",
    ),
    Key::Refused("globalName", "global artifacts are not kept by Drover"),
    Key::Refused("mode", "artifact file modes are not set by Drover"),
    Key::Refused("subPath", "artifact sub-paths need a repository"),
    Key::Refused(
        "recurseMode",
        "artifact directories are not copied by Drover",
    ),
    Key::Refused("deleted", "artifact deletion is Argo's"),
];

pub(crate) fn parse_inputs(found: &Located<'_>) -> Result<Inputs, PipelineError> {
    let map = found
        .field()
        .object(&[Key::Read("parameters"), Key::Read("artifacts")])?;
    let mut parameters = Vec::new();
    for param in items(map, &found.path, "parameters")? {
        let m = param.field().object(&[
            Key::Read("name"),
            Key::Read("default"),
            Key::Read("value"),
            Key::Accepted("description"),
            Key::Refused("enum", "enumerated parameters are not checked by Drover"),
            Key::Refused("globalName", "global parameters are not kept by Drover"),
            Key::Refused(
                "valueFrom",
                "input parameters from config maps need Kubernetes",
            ),
        ])?;
        let name = require(m, &param.path, "name")?
            .field()
            .as_str()?
            .to_string();
        // A fixed `value` wins over `default`, as in Argo.
        let default = match (get(m, &param.path, "value"), get(m, &param.path, "default")) {
            (Some(v), _) | (None, Some(v)) => Some(v.field().as_text()?),
            (None, None) => None,
        };
        parameters.push(InputParameter { name, default });
    }
    let mut artifacts = Vec::new();
    for artifact in items(map, &found.path, "artifacts")? {
        let mut keys = vec![
            Key::Read("name"),
            Key::Read("path"),
            Key::Read("raw"),
            Key::Read("optional"),
            Key::Refused(
                "from",
                "input artifacts take their source from the caller's arguments",
            ),
            Key::Refused(
                "archive",
                "input artifacts are plain files; nothing is unpacked",
            ),
        ];
        keys.extend(REPOSITORY_FIELDS.iter().copied());
        let m = artifact.field().object(&keys)?;
        let name = require(m, &artifact.path, "name")?
            .field()
            .as_str()?
            .to_string();
        let path = absolute_path(require(m, &artifact.path, "path")?)?;
        let raw = get(m, &artifact.path, "raw")
            .map(|r| raw_data(&r))
            .transpose()?;
        let optional = flag(get(m, &artifact.path, "optional"))?;
        artifacts.push(InputArtifact {
            name,
            path,
            raw,
            optional,
        });
    }
    Ok(Inputs {
        parameters,
        artifacts,
    })
}

/// `outputs`; a container's parameters come from files, a dag's or
/// steps' from its children.
pub(crate) fn parse_outputs(
    found: &Located<'_>,
    is_container: bool,
) -> Result<Outputs, PipelineError> {
    let map = found.field().object(&[
        Key::Read("parameters"),
        Key::Read("artifacts"),
        Key::Refused(
            "result",
            "outputs.result is Argo's own, set by script templates",
        ),
        Key::Refused("exitCode", "outputs.exitCode is Argo's own"),
    ])?;
    let mut parameters = Vec::new();
    for param in items(map, &found.path, "parameters")? {
        let m = param.field().object(&[
            Key::Read("name"),
            Key::Read("valueFrom"),
            Key::Accepted("description"),
            Key::Refused(
                "globalName",
                "global output parameters are not kept by Drover",
            ),
            Key::Refused("value", "fixed output values are not supported"),
            Key::Refused("enum", "enumerated parameters are not checked by Drover"),
        ])?;
        let name = require(m, &param.path, "name")?
            .field()
            .as_str()?
            .to_string();
        let value_from = require(m, &param.path, "valueFrom")?;
        let v = value_from.field().object(&[
            Key::Read("path"),
            Key::Read("parameter"),
            Key::Read("default"),
            Key::Refused(
                "jsonPath",
                "output parameters from a Kubernetes resource need Kubernetes",
            ),
            Key::Refused(
                "jqFilter",
                "output parameters from a Kubernetes resource need Kubernetes",
            ),
            Key::Refused("event", "output parameters from events are not supported"),
            Key::Refused("expression", "Argo expressions are not evaluated by Drover"),
            Key::Refused(
                "supplied",
                "supplied (suspend) parameters are not supported",
            ),
            Key::Refused("configMapKeyRef", "config maps need Kubernetes"),
        ])?;
        let default = get(v, &value_from.path, "default")
            .map(|d| d.field().as_text())
            .transpose()?;
        let source = match (
            get(v, &value_from.path, "path"),
            get(v, &value_from.path, "parameter"),
        ) {
            (Some(p), None) if is_container => ParameterSource::File(absolute_path(p)?),
            (None, Some(p)) if !is_container => {
                ParameterSource::Parameter(Text::parse(&p.field().as_text()?, &p.path)?)
            }
            _ => {
                let want = if is_container { "path" } else { "parameter" };
                return Err(value_from
                    .field()
                    .malformed(format!("needs exactly {want} here")));
            }
        };
        parameters.push(OutputParameter {
            name,
            source,
            default,
        });
    }
    let mut artifacts = Vec::new();
    for artifact in items(map, &found.path, "artifacts")? {
        let mut keys = vec![
            Key::Read("name"),
            Key::Read("path"),
            Key::Read("from"),
            Key::Read("optional"),
            Key::Read("archive"),
        ];
        keys.extend(REPOSITORY_FIELDS.iter().copied());
        let m = artifact.field().object(&keys)?;
        let name = require(m, &artifact.path, "name")?
            .field()
            .as_str()?
            .to_string();
        if let Some(archive) = get(m, &artifact.path, "archive") {
            // Drover keeps the plain file, which is what `archive: {none:
            // {}}` asks for; any packing (tar, zip) is refused.
            // `tar: {}` asks for tar with its default options: present
            // is enough to refuse, empty or not.
            let packing =
                archive
                    .field()
                    .object(&[Key::Read("none"), Key::Read("tar"), Key::Read("zip")])?;
            if let Some(kind) = ["tar", "zip"]
                .into_iter()
                .find(|k| packing.contains_key(*k))
            {
                return Err(PipelineError::Unsupported {
                    path: super::fields::child_path(&archive.path, kind),
                    why: "artifacts stay plain files in the node's sandbox; nothing is packed",
                });
            }
        }
        let source = match (
            get(m, &artifact.path, "path"),
            get(m, &artifact.path, "from"),
        ) {
            (Some(p), None) if is_container => ArtifactSource::File(absolute_path(p)?),
            (None, Some(f)) if !is_container => ArtifactSource::From(artifact_ref(&f)?),
            _ => {
                let want = if is_container { "path" } else { "from" };
                return Err(artifact
                    .field()
                    .malformed(format!("needs exactly {want} here")));
            }
        };
        let optional = flag(get(m, &artifact.path, "optional"))?;
        artifacts.push(OutputArtifact {
            name,
            source,
            optional,
        });
    }
    Ok(Outputs {
        parameters,
        artifacts,
    })
}

/// An artifact's `path`: absolute, as Argo requires, so it can be moved
/// under the node's own root ([`super::node_paths`]).
pub(crate) fn absolute_path(found: Located<'_>) -> Result<String, PipelineError> {
    let path = found.field().as_str()?;
    if !path.starts_with('/') || path.split('/').any(|part| part == "..") {
        return Err(found
            .field()
            .malformed(format!("{path:?} must be an absolute path without ..")));
    }
    Ok(path.to_string())
}

/// `from: '{{tasks.T.outputs.artifacts.A}}'` and its kin: one variable,
/// nothing around it.
pub(crate) fn artifact_ref(found: &Located<'_>) -> Result<ArtifactRef, PipelineError> {
    let text = Text::parse(found.field().as_str()?, &found.path)?;
    let mut vars = text.variables();
    let only = match (vars.next(), vars.next(), text.segments().len()) {
        (Some(v), None, 1) => Some(v.clone()),
        _ => None,
    };
    match only {
        Some(Variable::TaskOutputArtifact { task, name }) => Ok(ArtifactRef::TaskOutput {
            task,
            artifact: name,
        }),
        Some(Variable::StepOutputArtifact { step, name }) => Ok(ArtifactRef::StepOutput {
            step,
            artifact: name,
        }),
        Some(Variable::InputArtifact(name)) => Ok(ArtifactRef::Input(name)),
        _ => Err(found.field().malformed(
            "must be one artifact variable ({{tasks.T.outputs.artifacts.A}}, {{steps.S.outputs.artifacts.A}} or {{inputs.artifacts.X}})",
        )),
    }
}

/// `raw: {data: ...}`.
/// kfp writes `{{workflow.parameters.X}}` here for a constant passed to
/// an `InputPath`, so the data is a [`Text`].
pub(crate) fn raw_data(found: &Located<'_>) -> Result<Text, PipelineError> {
    let m = found.field().object(&[Key::Read("data")])?;
    match get(m, &found.path, "data") {
        Some(d) => Text::parse(&d.field().as_text()?, &d.path),
        None => Ok(Text::literal("")),
    }
}

fn flag(found: Option<Located<'_>>) -> Result<bool, PipelineError> {
    match found {
        None => Ok(false),
        Some(f) => f
            .value
            .as_bool()
            .ok_or_else(|| f.field().malformed("must be true or false")),
    }
}
