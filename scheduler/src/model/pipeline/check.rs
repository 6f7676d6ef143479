//! The rules between the parts of a parsed manifest, checked at create so
//! a run never stops on a reference that could not work: templates exist
//! and do not call themselves, a dag's dependencies name its own tasks
//! and have no cycle, every variable names something the node can see
//! (a task output only of a task it depends on, `{{item}}` only in a
//! loop), and every call passes the inputs its template needs.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::error::PipelineError;
use super::spec::{
    ArtifactRef, ArtifactSource, Loop, ParameterSource, Pipeline, Task, Template, TemplateBody,
};
use super::text::{Text, Variable};

pub(crate) fn check_pipeline(pipeline: &Pipeline) -> Result<(), PipelineError> {
    let mut names = BTreeSet::new();
    for template in &pipeline.templates {
        if !names.insert(template.name.as_str()) {
            return Err(malformed(
                &format!("{}.name", template.path),
                format!("template {:?} is defined twice", template.name),
            ));
        }
    }
    if pipeline.entry().is_none() {
        return Err(malformed(
            "spec.entrypoint",
            format!("names no template ({:?})", pipeline.entrypoint),
        ));
    }
    // Before the references: a recursive call would otherwise be reported
    // as whatever reference it breaks first.
    check_no_recursion(pipeline)?;
    let workflow_parameters: BTreeSet<&str> =
        pipeline.arguments.iter().map(|a| a.name.as_str()).collect();
    check_entry_inputs(pipeline, &workflow_parameters)?;
    for template in &pipeline.templates {
        let ctx = Context {
            pipeline,
            template,
            workflow_parameters: &workflow_parameters,
        };
        ctx.check_template()?;
    }
    Ok(())
}

/// Argo passes the workflow's arguments to the entrypoint by name: each
/// of its inputs needs one, or a default.
fn check_entry_inputs(
    pipeline: &Pipeline,
    workflow_parameters: &BTreeSet<&str>,
) -> Result<(), PipelineError> {
    let Some(entry) = pipeline.entry() else {
        return Ok(());
    };
    for input in &entry.inputs.parameters {
        if input.default.is_none() && !workflow_parameters.contains(input.name.as_str()) {
            return Err(malformed(
                "spec.arguments.parameters",
                format!(
                    "has no {:?}, an input of the entrypoint {:?} without a default",
                    input.name, entry.name
                ),
            ));
        }
    }
    Ok(())
}

fn malformed(path: &str, reason: String) -> PipelineError {
    PipelineError::Malformed {
        path: path.to_string(),
        reason,
    }
}

struct Context<'a> {
    pipeline: &'a Pipeline,
    template: &'a Template,
    workflow_parameters: &'a BTreeSet<&'a str>,
}

/// Where a text sits, which decides what it may name.
enum Place<'a> {
    /// A container's command, args, env, or an input's raw data.
    Container,
    /// A dag task's texts: `tasks.T` of `reachable` (its dependencies,
    /// transitively); `item` when `in_loop`.
    DagTask {
        dag: &'a [Task],
        reachable: &'a BTreeSet<String>,
        in_loop: bool,
    },
    /// A step's texts: `steps.S` of the earlier groups.
    Step {
        earlier: &'a [Vec<Task>],
        in_loop: bool,
    },
    /// A dag's or steps' own outputs: any of its children.
    Outputs,
}

impl Context<'_> {
    fn check_template(&self) -> Result<(), PipelineError> {
        let t = self.template;
        for artifact in &t.inputs.artifacts {
            if let Some(raw) = &artifact.raw {
                self.check_text(
                    raw,
                    &format!("{}.inputs.artifacts", t.path),
                    &Place::Container,
                )?;
            }
        }
        match &t.body {
            TemplateBody::Container(c) => {
                let path = format!("{}.container", t.path);
                for text in c
                    .command
                    .iter()
                    .chain(&c.args)
                    .chain(c.env.iter().map(|e| &e.value))
                {
                    self.check_text(text, &path, &Place::Container)?;
                }
            }
            TemplateBody::Dag(dag) => {
                let closure = dependency_closure(&dag.tasks, &format!("{}.dag", t.path))?;
                for task in &dag.tasks {
                    let place = Place::DagTask {
                        dag: &dag.tasks,
                        reachable: &closure[&task.name],
                        in_loop: task.loop_over.is_some(),
                    };
                    self.check_task(task, &place)?;
                }
            }
            TemplateBody::Steps(groups) => {
                let mut seen = BTreeSet::new();
                for (i, group) in groups.iter().enumerate() {
                    for step in group {
                        if !seen.insert(step.name.as_str()) {
                            return Err(malformed(
                                &format!("{}.name", step.path),
                                format!("step {:?} is named twice", step.name),
                            ));
                        }
                        let place = Place::Step {
                            earlier: &groups[..i],
                            in_loop: step.loop_over.is_some(),
                        };
                        self.check_task(step, &place)?;
                    }
                }
            }
        }
        let outputs_path = format!("{}.outputs", t.path);
        for param in &t.outputs.parameters {
            if let ParameterSource::Parameter(text) = &param.source {
                self.check_text(text, &outputs_path, &Place::Outputs)?;
            }
        }
        for artifact in &t.outputs.artifacts {
            if let ArtifactSource::From(r) = &artifact.source {
                self.check_artifact_ref(r, &outputs_path, &Place::Outputs)?;
            }
        }
        Ok(())
    }

    fn check_task(&self, task: &Task, place: &Place<'_>) -> Result<(), PipelineError> {
        let Some(callee) = self.pipeline.template(&task.template) else {
            return Err(malformed(
                &format!("{}.template", task.path),
                format!("names no template ({:?})", task.template),
            ));
        };
        let args_path = format!("{}.arguments", task.path);
        for param in &task.parameters {
            if callee.input_parameter(&param.name).is_none() {
                return Err(malformed(
                    &format!("{args_path}.parameters"),
                    format!(
                        "template {:?} has no input parameter {:?}",
                        callee.name, param.name
                    ),
                ));
            }
            self.check_text(&param.value, &format!("{args_path}.parameters"), place)?;
        }
        for needed in &callee.inputs.parameters {
            let passed = task.parameters.iter().any(|p| p.name == needed.name);
            if !passed && needed.default.is_none() {
                return Err(malformed(
                    &format!("{args_path}.parameters"),
                    format!(
                        "passes no {:?}, an input of template {:?} without a default",
                        needed.name, callee.name
                    ),
                ));
            }
        }
        for artifact in &task.artifacts {
            if !callee
                .inputs
                .artifacts
                .iter()
                .any(|a| a.name == artifact.name)
            {
                return Err(malformed(
                    &format!("{args_path}.artifacts"),
                    format!(
                        "template {:?} has no input artifact {:?}",
                        callee.name, artifact.name
                    ),
                ));
            }
            match &artifact.source {
                ArtifactSource::From(r) => {
                    self.check_artifact_ref(r, &format!("{args_path}.artifacts"), place)?
                }
                ArtifactSource::Raw(text) => {
                    self.check_text(text, &format!("{args_path}.artifacts"), place)?
                }
                ArtifactSource::File(_) => {}
            }
        }
        for needed in &callee.inputs.artifacts {
            let passed = task.artifacts.iter().any(|a| a.name == needed.name);
            if !passed && needed.raw.is_none() && !needed.optional {
                return Err(malformed(
                    &format!("{args_path}.artifacts"),
                    format!(
                        "passes no {:?}, an input artifact of template {:?}",
                        needed.name, callee.name
                    ),
                ));
            }
        }
        if let Some(when) = &task.when {
            for text in when.texts() {
                self.check_text(text, &format!("{}.when", task.path), place)?;
            }
        }
        match &task.loop_over {
            Some(Loop::Param(text)) => {
                self.check_text(
                    text,
                    &format!("{}.withParam", task.path),
                    &without_item(place),
                )?;
            }
            Some(Loop::Items(items)) => {
                let path = format!("{}.withItems", task.path);
                for text in item_texts(items, &path)? {
                    self.check_text(&text, &path, &without_item(place))?;
                }
            }
            None => {}
        }
        Ok(())
    }

    fn check_text(&self, text: &Text, path: &str, place: &Place<'_>) -> Result<(), PipelineError> {
        for var in text.variables() {
            self.check_variable(var, path, place)?;
        }
        Ok(())
    }

    fn check_variable(
        &self,
        var: &Variable,
        path: &str,
        place: &Place<'_>,
    ) -> Result<(), PipelineError> {
        let refuse = |why: &str| Err(malformed(path, format!("{{{{{var}}}}} {why}")));
        match var {
            Variable::InputParameter(x) => {
                if self.template.input_parameter(x).is_none() {
                    return refuse(&format!(
                        "names no input parameter of template {:?}",
                        self.template.name
                    ));
                }
            }
            Variable::WorkflowParameter(x) => {
                if !self.workflow_parameters.contains(x.as_str()) {
                    return refuse("names no parameter in spec.arguments.parameters");
                }
            }
            Variable::WorkflowName
            | Variable::WorkflowUid
            | Variable::WorkflowNamespace
            | Variable::PodName => {}
            Variable::Item | Variable::ItemField(_) => {
                let in_loop = match place {
                    Place::DagTask { in_loop, .. } | Place::Step { in_loop, .. } => *in_loop,
                    _ => false,
                };
                if !in_loop {
                    return refuse("is only known in a task with withItems or withParam");
                }
            }
            Variable::TaskOutputParameter { task, name } => {
                let callee = self
                    .sibling_task(task, place)
                    .map_err(|why| malformed(path, format!("{{{{{var}}}}} {why}")))?;
                if !callee.outputs.parameters.iter().any(|p| &p.name == name) {
                    return refuse(&format!(
                        "names no output parameter of template {:?}",
                        callee.name
                    ));
                }
            }
            Variable::StepOutputParameter { step, name } => {
                let callee = self
                    .earlier_step(step, place)
                    .map_err(|why| malformed(path, format!("{{{{{var}}}}} {why}")))?;
                if !callee.outputs.parameters.iter().any(|p| &p.name == name) {
                    return refuse(&format!(
                        "names no output parameter of template {:?}",
                        callee.name
                    ));
                }
            }
            Variable::InputArtifact(_)
            | Variable::TaskOutputArtifact { .. }
            | Variable::StepOutputArtifact { .. } => {
                return refuse("is a file, only usable as an artifact's from");
            }
        }
        Ok(())
    }

    fn check_artifact_ref(
        &self,
        r: &ArtifactRef,
        path: &str,
        place: &Place<'_>,
    ) -> Result<(), PipelineError> {
        let (callee, artifact) = match r {
            ArtifactRef::Input(name) => {
                if self
                    .template
                    .inputs
                    .artifacts
                    .iter()
                    .any(|a| &a.name == name)
                {
                    return Ok(());
                }
                return Err(malformed(
                    path,
                    format!(
                        "template {:?} has no input artifact {name:?}",
                        self.template.name
                    ),
                ));
            }
            ArtifactRef::TaskOutput { task, artifact } => {
                (self.sibling_task(task, place), artifact)
            }
            ArtifactRef::StepOutput { step, artifact } => {
                (self.earlier_step(step, place), artifact)
            }
        };
        let callee = callee.map_err(|why| malformed(path, why))?;
        if callee.outputs.artifacts.iter().any(|a| &a.name == artifact) {
            Ok(())
        } else {
            Err(malformed(
                path,
                format!(
                    "template {:?} has no output artifact {artifact:?}",
                    callee.name
                ),
            ))
        }
    }

    /// The template of task `name`, if this place may read its outputs.
    fn sibling_task(&self, name: &str, place: &Place<'_>) -> Result<&Template, String> {
        let task = match place {
            Place::DagTask { dag, reachable, .. } => {
                if !reachable.contains(name) {
                    return Err(format!(
                        "names task {name:?}, which is not among its dependencies"
                    ));
                }
                dag.iter().find(|t| t.name == name)
            }
            Place::Outputs => match &self.template.body {
                TemplateBody::Dag(dag) => dag.task(name),
                _ => None,
            },
            _ => None,
        };
        task.and_then(|t| self.pipeline.template(&t.template))
            .ok_or_else(|| format!("names no task {name:?} of this dag"))
    }

    /// The template of step `name`, if this place may read its outputs.
    fn earlier_step(&self, name: &str, place: &Place<'_>) -> Result<&Template, String> {
        let step = match place {
            Place::Step { earlier, .. } => earlier.iter().flatten().find(|s| s.name == name),
            Place::Outputs => match &self.template.body {
                TemplateBody::Steps(groups) => groups.iter().flatten().find(|s| s.name == name),
                _ => None,
            },
            _ => None,
        };
        step.and_then(|s| self.pipeline.template(&s.template))
            .ok_or_else(|| format!("names no earlier step {name:?}"))
    }
}

/// The same place, with `{{item}}` not yet known (a loop's own list).
fn without_item<'a>(place: &Place<'a>) -> Place<'a> {
    match place {
        Place::DagTask { dag, reachable, .. } => Place::DagTask {
            dag,
            reachable,
            in_loop: false,
        },
        Place::Step { earlier, .. } => Place::Step {
            earlier,
            in_loop: false,
        },
        Place::Container => Place::Container,
        Place::Outputs => Place::Outputs,
    }
}

/// The strings inside a `withItems` list, parsed (kfp puts task outputs
/// inside static lists when a loop item names one).
pub(crate) fn item_texts(items: &[Value], path: &str) -> Result<Vec<Text>, PipelineError> {
    let mut out = Vec::new();
    let mut stack: Vec<&Value> = items.iter().collect();
    while let Some(value) = stack.pop() {
        match value {
            Value::String(s) => out.push(Text::parse(s, path)?),
            Value::Array(a) => stack.extend(a),
            Value::Object(o) => stack.extend(o.values()),
            _ => {}
        }
    }
    Ok(out)
}

/// Each task's dependencies, transitively; refuses a dependency on a task
/// not in the dag, on itself, or a cycle.
fn dependency_closure(
    tasks: &[Task],
    dag_path: &str,
) -> Result<BTreeMap<String, BTreeSet<String>>, PipelineError> {
    let mut by_name: BTreeMap<&str, &Task> = BTreeMap::new();
    for task in tasks {
        if by_name.insert(&task.name, task).is_some() {
            return Err(malformed(
                &format!("{}.name", task.path),
                format!("task {:?} is named twice in {dag_path}", task.name),
            ));
        }
    }
    for task in tasks {
        for dep in &task.dependencies {
            if !by_name.contains_key(dep.as_str()) {
                return Err(malformed(
                    &format!("{}.dependencies", task.path),
                    format!("names no task of this dag ({dep:?})"),
                ));
            }
        }
    }
    // Kahn's order: a task's closure is its dependencies and theirs.
    let mut closure: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut remaining: Vec<&Task> = tasks.iter().collect();
    while !remaining.is_empty() {
        let before = remaining.len();
        let mut i = 0;
        while i < remaining.len() {
            let task = remaining[i];
            if task.dependencies.iter().all(|d| closure.contains_key(d)) {
                let mut all = BTreeSet::new();
                for dep in &task.dependencies {
                    all.insert(dep.clone());
                    all.extend(closure[dep].iter().cloned());
                }
                closure.insert(task.name.clone(), all);
                remaining.swap_remove(i);
            } else {
                i += 1;
            }
        }
        if remaining.len() == before {
            let mut names: Vec<&str> = remaining.iter().map(|t| t.name.as_str()).collect();
            names.sort_unstable();
            return Err(malformed(
                &format!("{dag_path}.tasks"),
                format!("dependencies form a cycle among {names:?}"),
            ));
        }
    }
    Ok(closure)
}

/// Refuses a template that calls itself, directly or not (kfp's
/// recursive graph components): Drover expands a run's dag once.
fn check_no_recursion(pipeline: &Pipeline) -> Result<(), PipelineError> {
    fn callees(template: &Template) -> Vec<&str> {
        match &template.body {
            TemplateBody::Container(_) => Vec::new(),
            TemplateBody::Dag(dag) => dag.tasks.iter().map(|t| t.template.as_str()).collect(),
            TemplateBody::Steps(groups) => groups
                .iter()
                .flatten()
                .map(|t| t.template.as_str())
                .collect(),
        }
    }
    // From each template, walk what it calls (each template once); the
    // manifest is bounded, so is the walk.
    for start in &pipeline.templates {
        let mut stack: Vec<&str> = vec![start.name.as_str()];
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        while let Some(name) = stack.pop() {
            let Some(template) = pipeline.template(name) else {
                continue;
            };
            for callee in callees(template) {
                if callee == start.name {
                    return Err(PipelineError::Unsupported {
                        path: format!("{}.name", start.path),
                        why: "recursive templates (a template that calls itself) are not supported",
                    });
                }
                if seen.insert(callee) {
                    stack.push(callee);
                }
            }
        }
    }
    Ok(())
}
