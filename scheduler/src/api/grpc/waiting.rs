//! What each seed method not served yet waits for: the capability, named
//! as users know it, that its translation needs. Pure.

const PELOTON_JOBS: &str = "peloton.api.v1alpha.job.stateless.svc.JobService";
const PELOTON_PODS: &str = "peloton.api.v1alpha.pod.svc.PodService";
const PELOTON_HOSTS: &str = "peloton.api.v1alpha.host.svc.HostService";
const PELOTON_VOLUMES: &str = "peloton.api.v1alpha.volume.svc.VolumeService";
const TITUS_JOBS: &str = "com.netflix.titus.JobManagementService";

/// The capability `service`'s `method` waits for.
pub fn waits_for(service: &str, _method: &str) -> &'static str {
    match service {
        PELOTON_JOBS => {
            "the Peloton translation of Drover's jobs (the JSON API at /api/v1/jobs serves them \
             today)"
        }
        PELOTON_PODS => {
            "the Peloton translation of Drover's pods (the JSON API at /api/v1/pods serves them \
             today)"
        }
        TITUS_JOBS => {
            "the Titus translation of Drover's jobs (the JSON API at /api/v1/jobs serves them \
             today)"
        }
        PELOTON_HOSTS => "host maintenance (drain, down, up)",
        PELOTON_VOLUMES => "stateful jobs and their volumes, which Drover does not run",
        s if s.starts_with("api.") => "Kubeflow Pipelines runs on Mesos",
        _ => "its translation",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_method_names_what_it_waits_for() {
        assert!(waits_for(PELOTON_JOBS, "GetJob").contains("/api/v1/jobs"));
        assert!(waits_for(TITUS_JOBS, "CreateJob").contains("Titus"));
        assert!(waits_for("api.RunService", "CreateRun").contains("Kubeflow"));
        assert!(waits_for(PELOTON_VOLUMES, "ListVolumes").contains("does not run"));
    }
}
