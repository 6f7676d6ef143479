//! What each seed service not served yet waits for (the Peloton, Titus
//! job, pod, watch, pool and host services are served; their own
//! handlers answer for a method they lack): the capability, named
//! as users know it, that its translation needs. Pure.

const PELOTON_VOLUMES: &str = "peloton.api.v1alpha.volume.svc.VolumeService";

/// The capability `service`'s `method` waits for.
pub fn waits_for(service: &str, _method: &str) -> &'static str {
    match service {
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
        assert!(waits_for("api.RunService", "CreateRun").contains("Kubeflow"));
        assert!(waits_for(PELOTON_VOLUMES, "ListVolumes").contains("does not run"));
    }
}
