//! The manifest's top and its templates, read into [`Pipeline`]: the
//! workflow's `metadata` and `spec`, then each template's kind, inputs,
//! outputs, retry, deadline and parallelism. Containers, tasks and the
//! inputs/outputs have their own readers; [`super::check`] then checks
//! the references between them. Each object's keys are listed here with
//! what Drover does with them (read, accepted without effect and why, or
//! refused and why).

use super::check::check_pipeline;
use super::error::PipelineError;
use super::fields::{self, decode, get, items, require, Key, Located};
use super::parse_container::parse_container;
use super::parse_io::{parse_inputs, parse_outputs};
use super::parse_task::{parse_dag, parse_steps};
use super::spec::{
    Pipeline, RetryBackoff, RetryPolicy, RetryStrategy, Template, TemplateBody, WorkflowArgument,
};

/// Argo's Workflow kind and group, as kfp 1.8 writes them.
const API_VERSION: &str = "argoproj.io/v1alpha1";
const KIND: &str = "Workflow";

/// Pod-level fields Argo and Kubernetes know that place, shape or secure
/// the pod: Drover has no pods to shape, so each is refused where it is
/// written (workflow or template).
const POD_FIELDS: &[Key] = &[
    Key::Refused("volumes", "volumes need a Kubernetes pod; a node has only its sandbox"),
    Key::Refused("nodeSelector", "Kubernetes node labels do not select Mesos agents"),
    Key::Refused("tolerations", "Kubernetes taints do not exist on Mesos agents"),
    Key::Refused("affinity", "Kubernetes affinity does not place Drover tasks"),
    Key::Refused("securityContext", "the pod's security context is Kubernetes'; Drover's task-user rule decides who a task runs as"),
    Key::Refused("podSpecPatch", "a pod spec patch needs a Kubernetes pod"),
    Key::Refused("hostAliases", "host aliases need a Kubernetes pod"),
    Key::Refused("priorityClassName", "Kubernetes priority classes do not exist on Drover"),
    Key::Refused("priority", "Kubernetes pod priority does not exist on Drover"),
    Key::Refused("schedulerName", "pods are placed by Drover, not a Kubernetes scheduler"),
    Key::Refused("automountServiceAccountToken", "Kubernetes service account tokens do not exist on Drover"),
    Key::Refused("executor", "Argo's executor settings need Argo"),
    Key::Refused("synchronization", "Argo semaphores and mutexes are not kept by Drover"),
    Key::Refused("metrics", "Argo's Prometheus metrics are not emitted by Drover; use ReportRunMetrics"),
    Key::Refused("hooks", "lifecycle hooks are not run by Drover"),
    Key::Refused("memoize", "Argo memoization needs config maps"),
];

/// Reads and checks a workflow manifest (JSON or YAML), as the run's
/// `pipeline_spec.workflow_manifest` carries it.
pub fn parse_workflow(manifest: &str) -> Result<Pipeline, PipelineError> {
    let root = decode(manifest)?;
    let top = Located::new(&root, "");
    let map = top.field().object(&[
        Key::Read("apiVersion"),
        Key::Read("kind"),
        Key::Read("metadata"),
        Key::Read("spec"),
        Key::Refused("status", "a workflow to run has no status yet"),
    ])?;
    expect_text(require(map, "", "apiVersion")?, API_VERSION)?;
    expect_text(require(map, "", "kind")?, KIND)?;

    let metadata = require(map, "", "metadata")?;
    let meta = metadata.field().object(&[
        Key::Read("name"),
        Key::Read("generateName"),
        Key::Read("annotations"),
        Key::Read("labels"),
        Key::Refused(
            "namespace",
            "a run's namespace comes from the API, not the manifest",
        ),
    ])?;
    let name = get(meta, &metadata.path, "name")
        .map(|n| n.field().as_str().map(str::to_string))
        .transpose()?;
    let generate_name = get(meta, &metadata.path, "generateName")
        .map(|n| n.field().as_str().map(str::to_string))
        .transpose()?;
    let name = match (name, &generate_name) {
        (Some(name), _) if !name.is_empty() => name,
        (_, Some(generated)) if !generated.trim_end_matches('-').is_empty() => {
            generated.trim_end_matches('-').to_string()
        }
        _ => {
            return Err(PipelineError::Missing {
                path: fields::child_path(&metadata.path, "generateName"),
            })
        }
    };
    let annotations = string_map(meta, &metadata.path, "annotations")?;
    let labels = string_map(meta, &metadata.path, "labels")?;

    let spec = require(map, "", "spec")?;
    let mut spec_keys = vec![
        Key::Read("entrypoint"),
        Key::Read("templates"),
        Key::Read("arguments"),
        Key::Read("parallelism"),
        Key::Read("activeDeadlineSeconds"),
        // kfp writes `pipeline-runner` on every workflow: a Kubernetes
        // identity for the pod. Drover's tasks run as its task-user rule
        // says, the same for every run, so the name has nothing to act on.
        Key::Accepted("serviceAccountName"),
        Key::Refused(
            "onExit",
            "exit handlers (dsl.ExitHandler) are not run by Drover yet",
        ),
        Key::Refused(
            "volumeClaimTemplates",
            "persistent volume claims need Kubernetes",
        ),
        Key::Refused(
            "podGC",
            "Drover keeps each node's sandbox and task; there are no pods to collect",
        ),
        Key::Refused("ttlStrategy", "a run is kept until DeleteRun"),
        Key::Refused("volumeClaimGC", "persistent volume claims need Kubernetes"),
        Key::Refused(
            "imagePullSecrets",
            "images are not pulled: commands run on the host",
        ),
        Key::Refused("dnsConfig", "a node's DNS is its agent host's"),
        Key::Refused("dnsPolicy", "a node's DNS is its agent host's"),
        Key::Refused("hostNetwork", "a node always uses its agent host's network"),
        Key::Refused(
            "podDisruptionBudget",
            "Kubernetes disruption budgets do not apply to run nodes",
        ),
        Key::Refused(
            "podPriorityClassName",
            "Kubernetes priority classes do not exist on Drover",
        ),
        Key::Refused(
            "podPriority",
            "Kubernetes pod priority does not exist on Drover",
        ),
        Key::Refused("podMetadata", "there are no pods to label"),
        Key::Refused(
            "artifactRepositoryRef",
            "artifacts stay in the node's sandbox; there is no other repository",
        ),
        Key::Refused(
            "artifactGC",
            "artifacts stay in the node's sandbox until the run is deleted",
        ),
        Key::Refused("archiveLogs", "logs stay in the node's sandbox"),
        Key::Refused(
            "templateDefaults",
            "template defaults are not merged by Drover",
        ),
        Key::Refused(
            "workflowTemplateRef",
            "WorkflowTemplates are not stored by Drover",
        ),
        Key::Refused("workflowMetadata", "workflow metadata rules are Argo's"),
        Key::Refused(
            "retryStrategy",
            "retry whole workflows with RetryRun; per-template retryStrategy is honoured",
        ),
        Key::Refused("suspend", "suspended workflows are not supported"),
        Key::Refused("shutdown", "stop a run with TerminateRun"),
    ];
    spec_keys.extend(POD_FIELDS.iter().copied());
    let spec_map = spec.field().object(&spec_keys)?;

    let entrypoint = require(spec_map, &spec.path, "entrypoint")?
        .field()
        .as_str()?
        .to_string();
    let arguments = parse_arguments(spec_map, &spec.path)?;
    let parallelism = get(spec_map, &spec.path, "parallelism")
        .map(|p| parallelism(&p))
        .transpose()?
        .flatten();
    let active_deadline_seconds = get(spec_map, &spec.path, "activeDeadlineSeconds")
        .map(|d| d.field().as_u64())
        .transpose()?;
    let templates = items(spec_map, &spec.path, "templates")?
        .iter()
        .map(parse_template)
        .collect::<Result<Vec<_>, _>>()?;
    if templates.is_empty() {
        return Err(PipelineError::Missing {
            path: fields::child_path(&spec.path, "templates"),
        });
    }

    let pipeline = Pipeline {
        name,
        generate_name,
        entrypoint,
        arguments,
        templates,
        parallelism,
        active_deadline_seconds,
        annotations,
        labels,
    };
    check_pipeline(&pipeline)?;
    Ok(pipeline)
}

fn expect_text(found: Located<'_>, want: &str) -> Result<(), PipelineError> {
    let text = found.field().as_str()?;
    if text == want {
        Ok(())
    } else {
        Err(found
            .field()
            .malformed(format!("is {text:?}; Drover runs {want:?} manifests")))
    }
}

fn string_map(
    map: &serde_json::Map<String, serde_json::Value>,
    parent: &str,
    key: &str,
) -> Result<std::collections::BTreeMap<String, String>, PipelineError> {
    get(map, parent, key)
        .map(|m| m.field().as_string_map())
        .transpose()
        .map(Option::unwrap_or_default)
}

/// `parallelism`, with Argo's 0 read as no limit.
fn parallelism(found: &Located<'_>) -> Result<Option<u32>, PipelineError> {
    let n = found.field().as_u64()?;
    let n = u32::try_from(n).map_err(|_| found.field().malformed("is too large"))?;
    Ok((n > 0).then_some(n))
}

/// `spec.arguments.parameters`.
fn parse_arguments(
    spec: &serde_json::Map<String, serde_json::Value>,
    spec_path: &str,
) -> Result<Vec<WorkflowArgument>, PipelineError> {
    let Some(arguments) = get(spec, spec_path, "arguments") else {
        return Ok(Vec::new());
    };
    let args = arguments.field().object(&[
        Key::Read("parameters"),
        Key::Refused(
            "artifacts",
            "workflow input artifacts need an artifact repository; pass files as node outputs",
        ),
    ])?;
    let mut out: Vec<WorkflowArgument> = Vec::new();
    for param in items(args, &arguments.path, "parameters")? {
        let p = param.field().object(&[
            Key::Read("name"),
            Key::Read("value"),
            Key::Accepted("description"),
            Key::Refused(
                "valueFrom",
                "workflow parameters from config maps need Kubernetes",
            ),
            Key::Refused(
                "enum",
                "enumerated workflow parameters are not checked by Drover",
            ),
            Key::Refused("globalName", "global parameters are not kept by Drover"),
        ])?;
        let name = require(p, &param.path, "name")?
            .field()
            .as_str()?
            .to_string();
        if out.iter().any(|a| a.name == name) {
            return Err(param
                .field()
                .malformed(format!("parameter {name:?} is declared twice")));
        }
        let value = get(p, &param.path, "value")
            .map(|v| v.field().as_text())
            .transpose()?;
        out.push(WorkflowArgument { name, value });
    }
    Ok(out)
}

/// One of `spec.templates`.
fn parse_template(found: &Located<'_>) -> Result<Template, PipelineError> {
    let path = &found.path;
    let mut keys = vec![
        Key::Read("name"),
        Key::Read("container"),
        Key::Read("dag"),
        Key::Read("steps"),
        Key::Read("inputs"),
        Key::Read("outputs"),
        Key::Read("retryStrategy"),
        Key::Read("activeDeadlineSeconds"),
        Key::Read("parallelism"),
        Key::Read("metadata"),
        Key::Refused("script", "script templates are not run by Drover; kfp 1.8 compiles components to container templates"),
        Key::Refused("resource", "resource templates (ResourceOp, VolumeOp) create Kubernetes objects"),
        Key::Refused("containerSet", "container sets need a Kubernetes pod"),
        Key::Refused("data", "data templates need an artifact repository"),
        Key::Refused("http", "HTTP templates are not run by Drover"),
        Key::Refused("plugin", "Argo executor plugins need Argo"),
        Key::Refused("suspend", "suspend templates are not supported"),
        Key::Refused("sidecars", "sidecars need a Kubernetes pod; a node runs one command"),
        Key::Refused("initContainers", "init containers need a Kubernetes pod; a node runs one command"),
        Key::Refused("daemon", "daemon steps are not supported"),
        Key::Refused("serviceAccountName", "a per-template Kubernetes identity has no meaning on Drover"),
        Key::Refused("archiveLocation", "artifacts stay in the node's sandbox; there is no other repository"),
        Key::Refused("timeout", "use activeDeadlineSeconds"),
        Key::Refused("failFast", "failFast is not supported"),
    ];
    keys.extend(POD_FIELDS.iter().copied());
    let map = found.field().object(&keys)?;
    let name = require(map, path, "name")?.field().as_str()?.to_string();

    let container = get(map, path, "container");
    let dag = get(map, path, "dag");
    let steps = get(map, path, "steps");
    let body = match (container, dag, steps) {
        (Some(c), None, None) => TemplateBody::Container(parse_container(&c)?),
        (None, Some(d), None) => TemplateBody::Dag(parse_dag(&d)?),
        (None, None, Some(s)) => TemplateBody::Steps(parse_steps(&s)?),
        (None, None, None) => {
            return Err(found
                .field()
                .malformed("needs one of container, dag or steps (the kinds Drover runs)"))
        }
        _ => {
            return Err(found
                .field()
                .malformed("has more than one of container, dag and steps"))
        }
    };
    let inputs = get(map, path, "inputs")
        .map(|i| parse_inputs(&i))
        .transpose()?
        .unwrap_or_default();
    let is_container = matches!(body, TemplateBody::Container(_));
    let outputs = get(map, path, "outputs")
        .map(|o| parse_outputs(&o, is_container))
        .transpose()?
        .unwrap_or_default();
    let retry = get(map, path, "retryStrategy")
        .map(|r| parse_retry(&r))
        .transpose()?;
    let active_deadline_seconds = get(map, path, "activeDeadlineSeconds")
        .map(|d| d.field().as_u64())
        .transpose()?;
    let parallelism = get(map, path, "parallelism")
        .map(|p| parallelism(&p))
        .transpose()?
        .flatten();
    let (labels, annotations) = match get(map, path, "metadata") {
        None => Default::default(),
        Some(meta) => {
            let m = meta
                .field()
                .object(&[Key::Read("labels"), Key::Read("annotations")])?;
            (
                string_map(m, &meta.path, "labels")?,
                string_map(m, &meta.path, "annotations")?,
            )
        }
    };
    Ok(Template {
        name,
        path: path.clone(),
        body,
        inputs,
        outputs,
        retry,
        active_deadline_seconds,
        parallelism,
        labels,
        annotations,
    })
}

/// `retryStrategy`.
fn parse_retry(found: &Located<'_>) -> Result<RetryStrategy, PipelineError> {
    let map = found.field().object(&[
        Key::Read("limit"),
        Key::Read("retryPolicy"),
        Key::Read("backoff"),
        Key::Refused(
            "expression",
            "retry expressions are not evaluated by Drover",
        ),
        Key::Refused(
            "affinity",
            "retrying on other hosts (nodeAntiAffinity) is not supported",
        ),
    ])?;
    let limit = get(map, &found.path, "limit")
        .map(|l| {
            let n = l.field().as_u64()?;
            u32::try_from(n).map_err(|_| l.field().malformed("is too large"))
        })
        .transpose()?;
    let policy = match get(map, &found.path, "retryPolicy") {
        None => RetryPolicy::OnFailure,
        Some(p) => match p.field().as_str()? {
            "Always" => RetryPolicy::Always,
            "OnFailure" => RetryPolicy::OnFailure,
            "OnError" => RetryPolicy::OnError,
            "OnTransientError" => {
                return Err(PipelineError::Unsupported {
                    path: p.path,
                    why: "Argo's transient error patterns are not Drover's",
                })
            }
            other => {
                return Err(p.field().malformed(format!(
                    "{other:?} is not a retry policy (Always, OnFailure, OnError)"
                )))
            }
        },
    };
    let backoff = match get(map, &found.path, "backoff") {
        None => None,
        Some(b) => {
            let m = b.field().object(&[
                Key::Read("duration"),
                Key::Read("factor"),
                Key::Read("maxDuration"),
            ])?;
            let first_ms = match get(m, &b.path, "duration") {
                Some(d) => duration_ms(&d)?,
                None => 0,
            };
            let factor = get(m, &b.path, "factor")
                .map(|f| {
                    f.field()
                        .as_text()?
                        .parse::<f64>()
                        .ok()
                        .filter(|x| x.is_finite() && *x >= 0.0)
                        .ok_or_else(|| f.field().malformed("must be a non-negative number"))
                })
                .transpose()?;
            let max_duration_ms = get(m, &b.path, "maxDuration")
                .map(|d| duration_ms(&d))
                .transpose()?;
            Some(RetryBackoff {
                duration_ms: first_ms,
                factor,
                max_duration_ms,
            })
        }
    };
    Ok(RetryStrategy {
        limit,
        policy,
        backoff,
    })
}

/// An Argo duration: seconds as a number, or Go's form (`30s`, `1m`,
/// `1h30m`, `500ms`).
fn duration_ms(found: &Located<'_>) -> Result<u64, PipelineError> {
    let text = found.field().as_text()?;
    parse_duration_ms(&text).ok_or_else(|| {
        found
            .field()
            .malformed(format!("{text:?} is not a duration"))
    })
}

pub(crate) fn parse_duration_ms(text: &str) -> Option<u64> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return seconds.checked_mul(1000);
    }
    let mut total: f64 = 0.0;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit_ms = match &rest[..unit_end] {
            "ms" => 1.0,
            "s" => 1000.0,
            "m" => 60_000.0,
            "h" => 3_600_000.0,
            _ => return None,
        };
        total += number * unit_ms;
        rest = &rest[unit_end..];
    }
    (total.is_finite() && total <= u64::MAX as f64).then_some(total as u64)
}
