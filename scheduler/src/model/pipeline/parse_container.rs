//! A container template's `container`: image, command, args, env and
//! resources, read into [`Container`]. The image is kept; whether the
//! node's job asks for it is the scheduler's choice ([`ImageUse`]);
//! everything that would shape a Kubernetes container beyond its command
//! is refused naming the field.

use super::error::PipelineError;
use super::fields::{get, items, require, Key, Located};
use super::quantity::{bytes_to_mib, parse_quantity};
#[cfg(doc)]
use super::spec::ImageUse;
use super::spec::{Container, ContainerResources, EnvVar, ResourceAmounts};
use super::text::Text;

pub(crate) fn parse_container(found: &Located<'_>) -> Result<Container, PipelineError> {
    let path = &found.path;
    let map = found.field().object(&[
        Key::Read("image"),
        Key::Read("command"),
        Key::Read("args"),
        Key::Read("env"),
        Key::Read("resources"),
        // The container's name inside its pod (kfp writes `main` at most):
        // a node runs one command, so there is nothing to name.
        Key::Accepted("name"),
        // Images come from the agents' local image store (or are not used,
        // ImageUse::Host): nothing is pulled, so no pull policy applies.
        Key::Accepted("imagePullPolicy"),
        Key::Refused("volumeMounts", "volumes need a Kubernetes pod; a node has only its sandbox"),
        Key::Refused("volumeDevices", "block devices need a Kubernetes pod"),
        Key::Refused("securityContext", "the container's security context is Kubernetes'; Drover's task-user rule decides who a task runs as"),
        Key::Refused("ports", "container ports need a pod network; a node uses its host's"),
        Key::Refused("workingDir", "a node's command runs in its sandbox"),
        Key::Refused("envFrom", "environments from config maps or secrets need Kubernetes"),
        Key::Refused("lifecycle", "container lifecycle hooks are not run by Drover"),
        Key::Refused("livenessProbe", "probes of run nodes are not run by Drover"),
        Key::Refused("readinessProbe", "probes of run nodes are not run by Drover"),
        Key::Refused("startupProbe", "probes of run nodes are not run by Drover"),
        Key::Refused("stdin", "a node's command has no stdin"),
        Key::Refused("stdinOnce", "a node's command has no stdin"),
        Key::Refused("tty", "a node's command has no terminal"),
        Key::Refused("terminationMessagePath", "termination messages are Kubernetes'"),
        Key::Refused("terminationMessagePolicy", "termination messages are Kubernetes'"),
        Key::Refused("resizePolicy", "in-place resizing is Kubernetes'"),
        Key::Refused("restartPolicy", "a node's restarts follow its template's retryStrategy"),
    ])?;
    let image = require(map, path, "image")?.field().as_str()?.to_string();
    let command = texts(map, path, "command")?;
    let args = texts(map, path, "args")?;
    if command.is_empty() {
        // Argo would run the image's entrypoint (with `args` after it),
        // which only the image knows; the node's script (its outputs and
        // inputs around the command) is made from the command here, and on
        // the host (`--kfp-images=host`) there is no entrypoint at all.
        return Err(PipelineError::Unsupported {
            path: super::fields::child_path(path, "command"),
            why: "a container without a command runs its image's entrypoint, which the scheduler cannot see to build the node's script around: give the command",
        });
    }
    let mut env = Vec::new();
    for var in items(map, path, "env")? {
        let m = var.field().object(&[
            Key::Read("name"),
            Key::Read("value"),
            Key::Refused(
                "valueFrom",
                "values from secrets, config maps or the pod's fields need Kubernetes",
            ),
        ])?;
        let name = require(m, &var.path, "name")?.field().as_str()?.to_string();
        let value = match get(m, &var.path, "value") {
            Some(v) => Text::parse(&v.field().as_text()?, &v.path)?,
            None => Text::literal(""),
        };
        env.push(EnvVar { name, value });
    }
    let resources = match get(map, path, "resources") {
        None => ContainerResources::default(),
        Some(r) => {
            let m = r.field().object(&[
                Key::Read("requests"),
                Key::Read("limits"),
                Key::Refused("claims", "dynamic resource claims are Kubernetes'"),
            ])?;
            ContainerResources {
                requests: amounts(get(m, &r.path, "requests"))?,
                limits: amounts(get(m, &r.path, "limits"))?,
            }
        }
    };
    Ok(Container {
        image,
        command,
        args,
        env,
        resources,
    })
}

fn texts(
    map: &serde_json::Map<String, serde_json::Value>,
    parent: &str,
    key: &str,
) -> Result<Vec<Text>, PipelineError> {
    items(map, parent, key)?
        .iter()
        .map(|item| Text::parse(&item.field().as_text()?, &item.path))
        .collect()
}

/// `requests` or `limits`: the resources Drover offers, in its units.
fn amounts(found: Option<Located<'_>>) -> Result<ResourceAmounts, PipelineError> {
    let Some(found) = found else {
        return Ok(ResourceAmounts::default());
    };
    let map = found.field().object(&[
        Key::Read("cpu"),
        Key::Read("memory"),
        Key::Read("ephemeral-storage"),
        Key::Read("nvidia.com/gpu"),
    ])?;
    let mut out = ResourceAmounts::default();
    for (key, _) in map {
        let Some(value) = get(map, &found.path, key) else {
            continue;
        };
        let text = value.field().as_text()?;
        let quantity = parse_quantity(&text).ok_or_else(|| {
            value
                .field()
                .malformed(format!("{text:?} is not a Kubernetes quantity"))
        })?;
        match key.as_str() {
            "cpu" => out.cpus = Some(quantity),
            "memory" => out.mem_mib = Some(bytes_to_mib(quantity)),
            "ephemeral-storage" => out.disk_mib = Some(bytes_to_mib(quantity)),
            _ => out.gpus = Some(quantity),
        }
    }
    Ok(out)
}
