//! The rules a job spec must satisfy before anything is stored: each
//! failure names the offending field by its path in the request
//! (`spec.default_spec.containers[0].resource.cpu_limit`), so a user can fix
//! it without guessing. Pure; the API maps [`SpecError`] to INVALID_ARGUMENT.

use super::resources::Resources;
use super::spec::{
    Constraint, ConstraintType, HealthCheckSpec, HealthCheckType, JobSpec, JobType, PodSpec,
};
use std::collections::HashSet;
use std::ops::RangeInclusive;

/// Bounds on what one job may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobLimits {
    /// Most instances in one job (`--max-job-instances`). Default 100,000:
    /// the largest fleet Drover is measured on (issue 7) runs as one job;
    /// the bound keeps one request from asking for millions of runs.
    pub max_instances: u32,
}

impl Default for JobLimits {
    fn default() -> Self {
        JobLimits {
            max_instances: 100_000,
        }
    }
}

/// A spec that breaks a rule: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct SpecError {
    /// Path of the field in the request body.
    pub field: String,
    /// What is wrong.
    pub problem: String,
}

/// A secrets rule broken, as a field error (`spec.secrets[0].path`).
pub fn secret_error(at: &str, e: super::secret::SecretError) -> SpecError {
    let text = e.to_string();
    match text.split_once(' ') {
        Some((field, problem)) if field.starts_with("secrets[") => {
            err(format!("{at}.{field}"), problem)
        }
        _ => err(format!("{at}.secrets"), text),
    }
}

fn err(field: impl Into<String>, problem: impl Into<String>) -> SpecError {
    SpecError {
        field: field.into(),
        problem: problem.into(),
    }
}

/// Checks a whole job spec; `at` is its path in the request (`spec`).
pub fn validate_job(spec: &JobSpec, limits: &JobLimits, at: &str) -> Result<(), SpecError> {
    if spec.name.trim().is_empty() {
        return Err(err(format!("{at}.name"), "is required"));
    }
    if spec.instance_count == 0 {
        return Err(err(format!("{at}.instance_count"), "must be at least 1"));
    }
    if spec.instance_count > limits.max_instances {
        return Err(err(
            format!("{at}.instance_count"),
            format!("must be at most {}", limits.max_instances),
        ));
    }
    for (i, label) in spec.labels.iter().enumerate() {
        if label.key.is_empty() {
            return Err(err(format!("{at}.labels[{i}].key"), "must not be empty"));
        }
    }
    super::secret::validate(&spec.secrets).map_err(|e| secret_error(at, e))?;
    if let Some(budget) = &spec.disruption_budget {
        budget
            .validate()
            .map_err(|e| err(format!("{at}.disruption_budget"), e.to_string()))?;
    }
    validate_pod(
        &spec.default_spec,
        spec.job_type,
        &format!("{at}.default_spec"),
    )?;
    for instance in spec.instance_spec.keys() {
        let field = format!("{at}.instance_spec.{instance}");
        if *instance >= spec.instance_count {
            return Err(err(
                field,
                format!("names an instance outside 0..{}", spec.instance_count),
            ));
        }
        validate_pod(&spec.pod_spec(*instance), spec.job_type, &field)?;
    }
    Ok(())
}

/// Checks one (merged) pod spec; `at` is its path.
fn validate_pod(pod: &PodSpec, job_type: JobType, at: &str) -> Result<(), SpecError> {
    if let Some(c) = &pod.constraint {
        validate_constraint(c, &format!("{at}.constraint"))?;
    }
    if let Some(c) = &pod.soft_constraint {
        validate_constraint(c, &format!("{at}.soft_constraint"))?;
    }
    if pod.runtime_limit_secs.is_some_and(|l| l > 0) && job_type != JobType::Batch {
        return Err(err(
            format!("{at}.runtime_limit_secs"),
            "applies to BATCH jobs only",
        ));
    }
    match pod.containers.len() {
        0 => return Err(err(format!("{at}.containers"), "one container is required")),
        1 => {}
        n => {
            return Err(err(
                format!("{at}.containers"),
                format!("exactly one container is supported, got {n}"),
            ))
        }
    }
    for (i, label) in pod.labels.iter().enumerate() {
        if label.key.is_empty() {
            return Err(err(format!("{at}.labels[{i}].key"), "must not be empty"));
        }
    }
    let container = &pod.containers[0];
    let at = format!("{at}.containers[0]");
    if let Some(image) = &container.image {
        super::image::ImageRef::parse(image)
            .map_err(|e| err(format!("{at}.image"), e.to_string()))?;
    }
    let Some(command) = &container.command else {
        return Err(err(format!("{at}.command"), "is required"));
    };
    let shell = command.shell.unwrap_or(true);
    let has_value = command
        .value
        .as_deref()
        .is_some_and(|v| !v.trim().is_empty());
    // An image's Entrypoint and Cmd run when a non-shell command names no
    // program (Mesos' docker runtime isolator); a shell command always
    // needs its text, and without an image there is nothing to fall back on.
    let image_defaults = container.image.is_some() && !shell;
    if !has_value && !image_defaults {
        let why = if shell {
            "is required (the shell command to run)"
        } else {
            "is required (the program to run)"
        };
        return Err(err(format!("{at}.command.value"), why));
    }
    if let Some(env) = &command.environment {
        for (i, var) in env.variables.iter().enumerate() {
            if var.name.is_empty() {
                return Err(err(
                    format!("{at}.command.environment.variables[{i}].name"),
                    "must not be empty",
                ));
            }
        }
    }
    let Some(resource) = &container.resource else {
        return Err(err(format!("{at}.resource"), "is required"));
    };
    let mut names = HashSet::new();
    let mut fixed = HashSet::new();
    for (i, port) in container.ports.iter().enumerate() {
        let field = format!("{at}.ports[{i}]");
        if port.name.is_empty() {
            return Err(err(format!("{field}.name"), "must not be empty"));
        }
        if !names.insert(port.name.as_str()) {
            return Err(err(
                format!("{field}.name"),
                format!("'{}' is used twice", port.name),
            ));
        }
        if port.value > 65535 {
            return Err(err(
                format!("{field}.value"),
                "must be at most 65535 (0 = any free port)",
            ));
        }
        if port.value != 0 && !fixed.insert(port.value) {
            return Err(err(
                format!("{field}.value"),
                format!("port {} is asked for twice", port.value),
            ));
        }
        let valid_env = port
            .env_name
            .chars()
            .all(|c| c == '_' || c.is_ascii_alphanumeric())
            && !port.env_name.starts_with(|c: char| c.is_ascii_digit());
        if !valid_env {
            return Err(err(
                format!("{field}.env_name"),
                "must be letters, digits and '_', not starting with a digit",
            ));
        }
    }
    if let Some(check) = container.liveness_check.as_ref().filter(|c| c.enabled) {
        validate_health(
            check,
            !container.ports.is_empty(),
            &format!("{at}.liveness_check"),
        )?;
    }
    if let Some(check) = container.readiness_check.as_ref().filter(|c| c.enabled) {
        let at = format!("{at}.readiness_check");
        validate_health(check, !container.ports.is_empty(), &at)?;
        // A Mesos `check` (CheckInfo.Http) has no scheme: it is plain HTTP.
        let scheme = check.http_get.as_ref().and_then(|h| h.scheme.as_deref());
        if check.check_type == HealthCheckType::Http && scheme.is_some_and(|s| s != "http") {
            return Err(err(
                format!("{at}.http_get.scheme"),
                "must be http: a readiness check is a Mesos check, plain HTTP only",
            ));
        }
    }
    if !(resource_ok(container.resource.map(|r| r.gpu_limit))) {
        return Err(err(
            format!("{at}.resource.gpu_limit"),
            "must be a whole number, zero or more",
        ));
    }
    within(
        resource.cpu_limit,
        MIN_CPUS..=MAX_CPUS,
        &format!("{at}.resource.cpu_limit"),
    )?;
    within(
        resource.mem_limit_mb,
        MIN_MEM_MB..=MAX_MEM_MB,
        &format!("{at}.resource.mem_limit_mb"),
    )?;
    within(
        resource.disk_limit_mb,
        0.0..=MAX_DISK_MB,
        &format!("{at}.resource.disk_limit_mb"),
    )?;
    if resource.gpu_limit > MAX_GPUS {
        return Err(err(
            format!("{at}.resource.gpu_limit"),
            format!("must be at most {MAX_GPUS}, got {}", resource.gpu_limit),
        ));
    }
    Ok(())
}

/// Checks that every pod of `spec` asks for no more of a resource than
/// `factor` times the most any one agent has offered (`largest`): a task
/// no agent could ever hold would wait forever. What no agent has offered
/// yet (a resource never seen) is not bounded here.
pub fn validate_against_largest_agent(
    spec: &JobSpec,
    largest: &Resources,
    factor: f64,
    at: &str,
) -> Result<(), SpecError> {
    for (field, pod) in spec.pods_with_paths(at) {
        let Some(resource) = pod.containers.first().and_then(|c| c.resource) else {
            continue;
        };
        let asks = [
            ("cpu_limit", resource.cpu_limit, largest.cpus, "cpus"),
            (
                "mem_limit_mb",
                resource.mem_limit_mb,
                largest.mem_mib,
                "MB of memory",
            ),
            (
                "disk_limit_mb",
                resource.disk_limit_mb,
                largest.disk_mib,
                "MB of disk",
            ),
            ("gpu_limit", resource.gpu_limit, largest.gpus, "GPUs"),
        ];
        for (name, asked, most, unit) in asks {
            let bound = most * factor;
            if most > 0.0 && asked > bound {
                return Err(err(
                    format!("{field}.containers[0].resource.{name}"),
                    format!(
                        "asks for {}, more than {factor} times the largest agent offered ({} {unit}): at most {}",
                        Shown(asked),
                        Shown(most),
                        Shown(bound)
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn resource_ok(gpus: Option<f64>) -> bool {
    gpus.is_none_or(|g| g.is_finite() && g >= 0.0 && g.fract() == 0.0)
}

fn validate_constraint(c: &Constraint, at: &str) -> Result<(), SpecError> {
    match c.constraint_type {
        ConstraintType::Label => {
            if c.label_constraint.is_none() {
                return Err(err(
                    format!("{at}.label_constraint"),
                    "is required for LABEL_CONSTRAINT",
                ));
            }
            if c.label_constraint
                .as_ref()
                .is_some_and(|l| l.label.key.is_empty())
            {
                return Err(err(
                    format!("{at}.label_constraint.label.key"),
                    "must not be empty",
                ));
            }
        }
        ConstraintType::And | ConstraintType::Or => {
            let name = if c.constraint_type == ConstraintType::And {
                "and_constraint"
            } else {
                "or_constraint"
            };
            if c.operands().is_empty() {
                return Err(err(format!("{at}.{name}.constraints"), "must not be empty"));
            }
            for (i, inner) in c.operands().iter().enumerate() {
                validate_constraint(inner, &format!("{at}.{name}.constraints[{i}]"))?;
            }
        }
    }
    Ok(())
}

fn validate_health(check: &HealthCheckSpec, has_ports: bool, at: &str) -> Result<(), SpecError> {
    match check.check_type {
        HealthCheckType::Command => {
            let ok = check
                .command_check
                .as_ref()
                .is_some_and(|c| !c.command.trim().is_empty());
            if !ok {
                return Err(err(
                    format!("{at}.command_check.command"),
                    "is required for COMMAND",
                ));
            }
        }
        HealthCheckType::Http => {
            let http = check.http_get.clone().unwrap_or_default();
            if http.path.as_deref().is_some_and(|p| !p.starts_with('/')) {
                return Err(err(format!("{at}.http_get.path"), "must start with '/'"));
            }
            if !matches!(http.scheme.as_deref(), None | Some("http") | Some("https")) {
                return Err(err(
                    format!("{at}.http_get.scheme"),
                    "must be http or https",
                ));
            }
            if http.port == 0 && !has_ports {
                return Err(err(
                    format!("{at}.http_get.port"),
                    "is required when the container has no ports",
                ));
            }
        }
        HealthCheckType::Tcp => {
            let port = check.tcp_socket.as_ref().map_or(0, |t| t.port);
            if port == 0 && !has_ports {
                return Err(err(
                    format!("{at}.tcp_socket.port"),
                    "is required when the container has no ports",
                ));
            }
        }
    }
    Ok(())
}

/// Mesos' smallest task: 0.01 cpus (its `MIN_CPUS`), and anything less
/// would launch as `cpus 0.0` (scalars keep 3 decimals), so one agent
/// would take tasks without end.
pub const MIN_CPUS: f64 = 0.01;
/// Mesos' smallest memory for a task (its `MIN_MEM`, 32 MB).
pub const MIN_MEM_MB: f64 = 32.0;
/// Bounds for a spec submitted before any agent offered (afterwards the
/// largest agent bounds it, [`validate_against_largest_agent`]): larger
/// than any machine, small enough for Mesos' fixed-point scalars.
pub const MAX_CPUS: f64 = 1e6;
/// See [`MAX_CPUS`] (a petabyte).
pub const MAX_MEM_MB: f64 = 1e9;
/// See [`MAX_CPUS`] (an exabyte).
pub const MAX_DISK_MB: f64 = 1e12;
/// See [`MAX_CPUS`].
pub const MAX_GPUS: f64 = 1e4;

/// A number as a user reads it: 1e308 and 5e-324 in exponent form rather
/// than hundreds of digits.
struct Shown(f64);

impl std::fmt::Display for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let magnitude = self.0.abs();
        if magnitude != 0.0 && !(1e-4..1e7).contains(&magnitude) {
            write!(f, "{:e}", self.0)
        } else {
            write!(f, "{}", self.0)
        }
    }
}

fn within(value: f64, range: RangeInclusive<f64>, field: &str) -> Result<(), SpecError> {
    if value.is_finite() && range.contains(&value) {
        Ok(())
    } else {
        Err(err(
            field,
            format!(
                "must be between {} and {}, got {}",
                Shown(*range.start()),
                Shown(*range.end()),
                Shown(value)
            ),
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> JobSpec {
        serde_json::from_value(json).unwrap()
    }

    fn good() -> serde_json::Value {
        serde_json::json!({
            "type": "BATCH", "name": "j", "instance_count": 3,
            "default_spec": {"containers": [{
                "resource": {"cpu_limit": 0.1, "mem_limit_mb": 32},
                "command": {"value": "true"}
            }]}
        })
    }

    fn field_of(json: serde_json::Value) -> String {
        validate_job(&spec(json), &JobLimits::default(), "spec")
            .unwrap_err()
            .field
    }

    #[test]
    fn a_good_spec_passes() {
        validate_job(&spec(good()), &JobLimits::default(), "spec").unwrap();
    }

    #[test]
    fn an_image_lets_a_non_shell_command_leave_the_program_to_the_image() {
        let mut json = good();
        json["default_spec"]["containers"][0]["image"] = "drover-test/busybox:1".into();
        json["default_spec"]["containers"][0]["command"] =
            serde_json::json!({"shell": false, "arguments": ["x"]});
        validate_job(&spec(json.clone()), &JobLimits::default(), "spec").unwrap();
        json["default_spec"]["containers"][0]
            .as_object_mut()
            .unwrap()
            .remove("image");
        assert_eq!(
            field_of(json),
            "spec.default_spec.containers[0].command.value",
            "without an image there is no Entrypoint to fall back on"
        );
    }

    #[test]
    fn each_broken_rule_names_its_field() {
        type Mutation = fn(&mut serde_json::Value);
        let cases: Vec<(Mutation, &str)> = vec![
            (|j| j["name"] = "".into(), "spec.name"),
            (|j| j["instance_count"] = 0.into(), "spec.instance_count"),
            (
                |j| j["instance_count"] = 100_001.into(),
                "spec.instance_count",
            ),
            (
                |j| j["default_spec"]["containers"] = serde_json::json!([]),
                "spec.default_spec.containers",
            ),
            (
                |j| {
                    j["default_spec"]["containers"][0]
                        .as_object_mut()
                        .unwrap()
                        .remove("command");
                },
                "spec.default_spec.containers[0].command",
            ),
            (
                |j| j["default_spec"]["containers"][0]["command"]["value"] = " ".into(),
                "spec.default_spec.containers[0].command.value",
            ),
            (
                |j| j["default_spec"]["containers"][0]["resource"]["cpu_limit"] = 0.into(),
                "spec.default_spec.containers[0].resource.cpu_limit",
            ),
            (
                |j| j["default_spec"]["containers"][0]["image"] = "Not An Image".into(),
                "spec.default_spec.containers[0].image",
            ),
            (
                |j| {
                    j["default_spec"]["containers"][0]["image"] = "busybox:1".into();
                    j["default_spec"]["containers"][0]["command"] = serde_json::json!({});
                },
                "spec.default_spec.containers[0].command.value",
            ),
            (
                |j| j["default_spec"]["containers"][0]["resource"]["mem_limit_mb"] = (-1).into(),
                "spec.default_spec.containers[0].resource.mem_limit_mb",
            ),
            (
                |j| j["instance_spec"] = serde_json::json!({"7": {}}),
                "spec.instance_spec.7",
            ),
            (
                |j| {
                    j["default_spec"]["constraint"] = serde_json::json!({"type": "AND_CONSTRAINT",
                    "and_constraint": {"constraints": [{"type": "LABEL_CONSTRAINT"}]}})
                },
                "spec.default_spec.constraint.and_constraint.constraints[0].label_constraint",
            ),
            (
                |j| {
                    j["default_spec"]["soft_constraint"] = serde_json::json!({"type": "OR_CONSTRAINT",
                    "or_constraint": {"constraints": []}})
                },
                "spec.default_spec.soft_constraint.or_constraint.constraints",
            ),
            (
                |j| {
                    j["default_spec"]["containers"][0]["ports"] = serde_json::json!([
                    {"name": "a"}, {"name": "a"}])
                },
                "spec.default_spec.containers[0].ports[1].name",
            ),
            (
                |j| {
                    j["default_spec"]["containers"][0]["ports"] = serde_json::json!([
                    {"name": "a", "env_name": "1X"}])
                },
                "spec.default_spec.containers[0].ports[0].env_name",
            ),
            (
                |j| {
                    j["default_spec"]["containers"][0]["liveness_check"] = serde_json::json!({
                    "enabled": true, "type": "HTTP", "http_get": {"path": "/"}})
                },
                "spec.default_spec.containers[0].liveness_check.http_get.port",
            ),
            (
                |j| {
                    j["default_spec"]["containers"][0]["liveness_check"] = serde_json::json!({
                    "enabled": true, "type": "COMMAND"})
                },
                "spec.default_spec.containers[0].liveness_check.command_check.command",
            ),
            (
                |j| {
                    j["default_spec"]["containers"][0]["readiness_check"] = serde_json::json!({
                    "enabled": true, "type": "TCP"})
                },
                "spec.default_spec.containers[0].readiness_check.tcp_socket.port",
            ),
            (
                |j| {
                    j["default_spec"]["containers"][0]["readiness_check"] = serde_json::json!({
                    "enabled": true, "type": "HTTP",
                    "http_get": {"scheme": "https", "port": 8443}})
                },
                "spec.default_spec.containers[0].readiness_check.http_get.scheme",
            ),
            (
                |j| {
                    j["type"] = "SERVICE".into();
                    j["default_spec"]["runtime_limit_secs"] = 5.into();
                },
                "spec.default_spec.runtime_limit_secs",
            ),
            (
                |j| {
                    j["instance_spec"] = serde_json::json!({"1": {"containers": [
                        {"resource": {"cpu_limit": 0, "mem_limit_mb": 32}, "command": {"value": "x"}}
                    ]}})
                },
                "spec.instance_spec.1.containers[0].resource.cpu_limit",
            ),
        ];
        for (mutate, field) in cases {
            let mut json = good();
            mutate(&mut json);
            assert_eq!(field_of(json), field);
        }
    }

    #[test]
    fn soft_constraints_and_placement_preferences_are_accepted() {
        let mut json = good();
        json["default_spec"]["placement"] = serde_json::json!({
            "strategy": "BINPACK",
            "prefer": {"zone_balance": true, "unique_host": true, "exclusive_host": true}
        });
        json["default_spec"]["soft_constraint"] = serde_json::json!({
            "type": "LABEL_CONSTRAINT",
            "label_constraint": {"kind": "HOST", "condition": "CONDITION_EQUAL",
                "label": {"key": "zone", "value": "a"}, "requirement": 1}
        });
        let parsed = spec(json);
        validate_job(&parsed, &JobLimits::default(), "spec").unwrap();
        let prefer = parsed.default_spec.placement.unwrap().prefer.unwrap();
        assert!(prefer.zone_balance && prefer.unique_host && prefer.exclusive_host);
        assert!(parsed.default_spec.soft_constraint.is_some());
        let mut typo = good();
        typo["default_spec"]["placement"] = serde_json::json!({"prefer": {"zone_balanse": true}});
        assert!(
            serde_json::from_value::<JobSpec>(typo).is_err(),
            "unknown keys are refused"
        );
    }

    #[test]
    fn resources_are_finite_and_at_least_mesos_minimums() {
        let resource = |cpus: f64, mem: f64| {
            let mut json = good();
            json["default_spec"]["containers"][0]["resource"] =
                serde_json::json!({"cpu_limit": cpus, "mem_limit_mb": mem});
            validate_job(&spec(json), &JobLimits::default(), "spec")
        };
        let cpu = "spec.default_spec.containers[0].resource.cpu_limit";
        for cpus in [1e308, 5e-324, 1e-9, 0.009, 0.0, -1.0] {
            let e = resource(cpus, 64.0).unwrap_err();
            assert_eq!(e.field, cpu, "{cpus}");
            assert!(e.problem.contains("between 0.01 and"), "{e}");
        }
        let huge = resource(1e308, 64.0).unwrap_err();
        assert!(huge.problem.ends_with("got 1e308"), "{huge}");
        let e = resource(0.1, 16.0).unwrap_err();
        assert_eq!(
            e.field,
            "spec.default_spec.containers[0].resource.mem_limit_mb"
        );
        assert!(e.problem.contains("between 32 and"), "{e}");
        resource(0.01, 32.0).unwrap();
    }

    #[test]
    fn no_pod_may_ask_for_more_than_the_largest_agent_could_hold() {
        let mut json = good();
        json["instance_spec"] = serde_json::json!({"1": {"containers": [
            {"resource": {"cpu_limit": 20, "mem_limit_mb": 64}, "command": {"value": "x"}}
        ]}});
        let spec = spec(json);
        let largest = Resources {
            cpus: 8.0,
            mem_mib: 4096.0,
            disk_mib: 0.0,
            gpus: 0.0,
        };
        let e = validate_against_largest_agent(&spec, &largest, 2.0, "spec").unwrap_err();
        assert_eq!(
            e.field,
            "spec.instance_spec.1.containers[0].resource.cpu_limit"
        );
        assert!(e.problem.contains("at most 16"), "{e}");
        let roomy = Resources {
            cpus: 10.0,
            ..largest
        };
        validate_against_largest_agent(&spec, &roomy, 2.0, "spec").unwrap();
    }

    #[test]
    fn instance_overrides_replace_only_the_fields_they_set() {
        let mut json = good();
        json["default_spec"]["restart_policy"] = serde_json::json!({"max_failures": 2});
        json["instance_spec"] = serde_json::json!({"1": {"kill_grace_period_seconds": 5}});
        let spec = spec(json);
        assert_eq!(spec.pod_spec(1).kill_grace_seconds(), 5);
        assert_eq!(spec.pod_spec(1).max_failures(), 2);
        assert_eq!(spec.pod_spec(0).kill_grace_seconds(), 30);
    }
}
