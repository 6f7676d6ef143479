//! A dag's tasks and a steps template's steps: which template each calls,
//! with which arguments, after which tasks, under which `when`, over
//! which loop.

use super::condition::Condition;
use super::error::PipelineError;
use super::fields::{get, items, require, Key, Located};
use super::parse_io::{artifact_ref, raw_data, REPOSITORY_FIELDS};
use super::spec::{ArgumentArtifact, ArgumentParameter, ArtifactSource, Dag, Loop, Task};
use super::text::Text;

/// Fields of a task or step Drover does not run.
const REFUSED_TASK_FIELDS: &[Key] = &[
    Key::Refused("templateRef", "WorkflowTemplates are not stored by Drover"),
    Key::Refused(
        "inline",
        "inline templates are not supported; kfp 1.8 names every template",
    ),
    Key::Refused(
        "continueOn",
        "continueOn is not supported: a failed dependency fails the run",
    ),
    Key::Refused("onExit", "exit handlers are not run by Drover yet"),
    Key::Refused("hooks", "lifecycle hooks are not run by Drover"),
    Key::Refused(
        "withSequence",
        "withSequence loops are not supported (kfp 1.8 writes withItems and withParam)",
    ),
];

/// `dag`.
pub(crate) fn parse_dag(found: &Located<'_>) -> Result<Dag, PipelineError> {
    let map = found.field().object(&[
        Key::Read("tasks"),
        Key::Refused(
            "target",
            "dag targets are not supported: a run runs every task",
        ),
        Key::Refused("failFast", "failFast is not supported"),
    ])?;
    let tasks = items(map, &found.path, "tasks")?
        .iter()
        .map(|t| parse_task(t, true))
        .collect::<Result<Vec<_>, _>>()?;
    if tasks.is_empty() {
        return Err(PipelineError::Missing {
            path: super::fields::child_path(&found.path, "tasks"),
        });
    }
    Ok(Dag { tasks })
}

/// `steps`: a list of groups, each a list of steps run at once.
pub(crate) fn parse_steps(found: &Located<'_>) -> Result<Vec<Vec<Task>>, PipelineError> {
    let groups = found.field().as_array()?;
    let mut out = Vec::new();
    for (i, group) in groups.iter().enumerate() {
        let group = Located::new(group, super::fields::index_path(&found.path, i));
        let steps = group.field().as_array()?;
        let mut parsed = Vec::new();
        for (j, step) in steps.iter().enumerate() {
            let step = Located::new(step, super::fields::index_path(&group.path, j));
            parsed.push(parse_task(&step, false)?);
        }
        out.push(parsed);
    }
    if out.iter().all(Vec::is_empty) {
        return Err(PipelineError::Missing {
            path: found.path.clone(),
        });
    }
    Ok(out)
}

fn parse_task(found: &Located<'_>, in_dag: bool) -> Result<Task, PipelineError> {
    let path = &found.path;
    let mut keys = vec![
        Key::Read("name"),
        Key::Read("template"),
        Key::Read("arguments"),
        Key::Read("when"),
        Key::Read("withItems"),
        Key::Read("withParam"),
    ];
    if in_dag {
        keys.push(Key::Read("dependencies"));
        keys.push(Key::Read("depends"));
    }
    keys.extend(REFUSED_TASK_FIELDS.iter().copied());
    let map = found.field().object(&keys)?;
    let name = require(map, path, "name")?.field().as_str()?.to_string();
    let template = require(map, path, "template")?
        .field()
        .as_str()?
        .to_string();

    let (parameters, artifacts) = match get(map, path, "arguments") {
        None => (Vec::new(), Vec::new()),
        Some(a) => parse_task_arguments(&a)?,
    };

    let dependencies = match (get(map, path, "dependencies"), get(map, path, "depends")) {
        (Some(d), None) => d.field().as_strings()?,
        (None, Some(d)) => plain_depends(&d)?,
        (None, None) => Vec::new(),
        (Some(_), Some(d)) => {
            return Err(d
                .field()
                .malformed("cannot be used with dependencies (Argo refuses both)"))
        }
    };

    let when = get(map, path, "when")
        .map(|w| Condition::parse(w.field().as_str()?, &w.path))
        .transpose()?;

    let loop_over = match (get(map, path, "withItems"), get(map, path, "withParam")) {
        (Some(items), None) => Some(Loop::Items(items.field().as_array()?.to_vec())),
        (None, Some(param)) => Some(Loop::Param(Text::parse(
            &param.field().as_text()?,
            &param.path,
        )?)),
        (None, None) => None,
        (Some(_), Some(p)) => return Err(p.field().malformed("cannot be used with withItems")),
    };

    Ok(Task {
        name,
        path: path.clone(),
        template,
        parameters,
        artifacts,
        dependencies,
        when,
        loop_over,
    })
}

fn parse_task_arguments(
    found: &Located<'_>,
) -> Result<(Vec<ArgumentParameter>, Vec<ArgumentArtifact>), PipelineError> {
    let map = found
        .field()
        .object(&[Key::Read("parameters"), Key::Read("artifacts")])?;
    let mut parameters = Vec::new();
    for param in items(map, &found.path, "parameters")? {
        let m = param.field().object(&[
            Key::Read("name"),
            Key::Read("value"),
            Key::Accepted("description"),
            Key::Refused(
                "valueFrom",
                "argument values from config maps need Kubernetes",
            ),
        ])?;
        let name = require(m, &param.path, "name")?
            .field()
            .as_str()?
            .to_string();
        let value = match get(m, &param.path, "value") {
            Some(v) => Text::parse(&v.field().as_text()?, &v.path)?,
            None => Text::literal(""),
        };
        parameters.push(ArgumentParameter { name, value });
    }
    let mut artifacts = Vec::new();
    for artifact in items(map, &found.path, "artifacts")? {
        let mut keys = vec![
            Key::Read("name"),
            Key::Read("from"),
            Key::Read("raw"),
            Key::Refused(
                "path",
                "an argument artifact's path is the callee's input path",
            ),
            Key::Refused("optional", "optional argument artifacts are not supported"),
        ];
        keys.extend(REPOSITORY_FIELDS.iter().copied());
        let m = artifact.field().object(&keys)?;
        let name = require(m, &artifact.path, "name")?
            .field()
            .as_str()?
            .to_string();
        let source = match (
            get(m, &artifact.path, "from"),
            get(m, &artifact.path, "raw"),
        ) {
            (Some(f), None) => ArtifactSource::From(artifact_ref(&f)?),
            (None, Some(r)) => ArtifactSource::Raw(raw_data(&r)?),
            _ => {
                return Err(artifact
                    .field()
                    .malformed("needs exactly one of from and raw"))
            }
        };
        artifacts.push(ArgumentArtifact { name, source });
    }
    Ok((parameters, artifacts))
}

/// `depends` when it says no more than `dependencies` can: task names
/// joined by `&&`. Argo's result forms (`A.Succeeded`, `||`, `!`) are
/// refused: they need continue-on-failure semantics Drover lacks.
fn plain_depends(found: &Located<'_>) -> Result<Vec<String>, PipelineError> {
    let text = found.field().as_str()?;
    let names: Vec<String> = text.split("&&").map(|n| n.trim().to_string()).collect();
    let plain = names.iter().all(|n| {
        !n.is_empty()
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    });
    if plain {
        Ok(names)
    } else {
        Err(PipelineError::Unsupported {
            path: found.path.clone(),
            why: "only task names joined by && are supported in depends",
        })
    }
}
