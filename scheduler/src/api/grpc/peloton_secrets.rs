//! Peloton's `peloton.Secret` both ways: a request's secrets become the
//! job's ([`crate::model::secret`]), and GetJob answers each secret's id
//! and path, never its value. As in Peloton (`validateSecretsAndConfig`,
//! `populateTaskConfigWithSecrets`), `value.data` carries the secret
//! base64-encoded; Drover decodes it once, here.

use crate::api::error::ApiError;
use crate::model::secret::{decode_base64, SecretSpec, SecretValue};
use drover_seed_api::peloton::api::v1alpha::peloton;

/// A request's secrets as the job's; `at` names the field (`secrets`).
pub fn secrets_from_proto(
    secrets: &[peloton::Secret],
    at: &str,
) -> Result<Vec<SecretSpec>, ApiError> {
    secrets
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let data = s.value.as_ref().map_or(&[][..], |v| &v.data[..]);
            let value =
                match std::str::from_utf8(data) {
                    Ok("") => SecretValue::default(),
                    Ok(text) => SecretValue::new(
                        decode_base64(text)
                            .map_err(|e| ApiError::invalid(&format!("{at}[{i}].value.data"), e))?,
                    ),
                    Err(_) => return Err(ApiError::invalid(
                        &format!("{at}[{i}].value.data"),
                        "secret value is not base64 (Peloton sends a secret's data base64-encoded)",
                    )),
                };
            let id = s
                .secret_id
                .as_ref()
                .map(|id| id.value.clone())
                .filter(|id| !id.is_empty())
                .unwrap_or_else(|| s.path.clone());
            Ok(SecretSpec {
                id,
                path: s.path.clone(),
                value,
            })
        })
        .collect()
}

/// The job's secrets as GetJob answers them: id and path, no value.
pub fn secrets_to_proto(secrets: &[SecretSpec]) -> Vec<peloton::Secret> {
    secrets
        .iter()
        .map(|s| peloton::Secret {
            secret_id: Some(peloton::SecretId {
                value: s.id.clone(),
            }),
            path: s.path.clone(),
            value: None,
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn secret(id: &str, path: &str, data: &[u8]) -> peloton::Secret {
        peloton::Secret {
            secret_id: Some(peloton::SecretId { value: id.into() }),
            path: path.into(),
            value: Some(peloton::secret::Value {
                data: data.to_vec(),
            }),
        }
    }

    #[test]
    fn a_pelotons_secret_data_is_base64_and_get_job_answers_no_value() {
        let ours =
            secrets_from_proto(&[secret("db", "db.pass", b"aHVudGVyMg==")], "secrets").unwrap();
        assert_eq!(ours[0].value.expose(), b"hunter2");
        let back = secrets_to_proto(&ours);
        assert_eq!(back[0].path, "db.pass");
        assert_eq!(back[0].secret_id.as_ref().unwrap().value, "db");
        assert!(back[0].value.is_none());
    }

    #[test]
    fn data_that_is_not_base64_is_refused_without_quoting_it() {
        let err =
            secrets_from_proto(&[secret("db", "db.pass", b"hunter2!")], "secrets").unwrap_err();
        assert!(
            err.message.contains("secrets[0].value.data"),
            "{}",
            err.message
        );
        assert!(!err.message.contains("hunter2"), "{}", err.message);
    }
}
