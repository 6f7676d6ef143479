//! Secrets in the SQLite store: written sealed, opened by the writer's
//! load with its key, left out by readers, and refused with another key.
#![allow(clippy::unwrap_used)]

use super::tests::batch_spec;
use super::*;
use crate::model::change::{Change, JobWrite};
use crate::model::ids::JobId;
use crate::model::job::Job;
use crate::model::secret::{SecretSpec, SecretValue};
use crate::store::secret_key::{SecretKey, KEY_BYTES};
use crate::store::{Store, StoreError, StoreRead};

fn job_with_secret(value: &[u8]) -> Job {
    let mut spec = batch_spec(1);
    spec.secrets = vec![SecretSpec {
        id: "db".into(),
        path: "conf/db.pass".into(),
        value: SecretValue::new(value.to_vec()),
    }];
    Job::new(JobId::parse("sealed").unwrap(), spec, 1)
}

fn store(dir: &std::path::Path, key: u8) -> SqliteStore {
    SqliteStore::open(dir)
        .unwrap()
        .with_secret_key(SecretKey::from_bytes(&[key; KEY_BYTES]))
}

#[test]
fn a_secret_is_stored_sealed_opened_by_the_writer_and_left_out_for_readers() {
    let dir = tempfile::tempdir().unwrap();
    let value = b"stored-secret-bytes-0123456789";
    {
        let mut writer = store(dir.path(), 1);
        let change = Change {
            jobs: vec![JobWrite::Create(Box::new(job_with_secret(value)))],
            ..Change::default()
        };
        writer.commit(&change).unwrap();
        let loaded = writer.load().unwrap();
        assert_eq!(loaded.jobs[0].0.spec.secrets[0].value.expose(), value);
        let reader = SqliteStore::open_reader(dir.path()).unwrap();
        let read = reader
            .job(&JobId::parse("sealed").unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(read.spec.secrets[0].path, "conf/db.pass");
        assert!(read.spec.secrets[0].value.is_empty());
        let (listed, _) = reader.jobs(0, 10).unwrap();
        assert!(listed[0].spec.secrets[0].value.is_empty());
    }
    for name in [DB_FILE, "drover.sqlite-wal"] {
        if let Ok(bytes) = std::fs::read(dir.path().join(name)) {
            assert!(
                !bytes.windows(value.len()).any(|w| w == value),
                "{name} holds the secret in the clear"
            );
        }
    }
    // The right key opens it after a restart; another refuses the store.
    assert_eq!(
        store(dir.path(), 1).load().unwrap().jobs[0].0.spec.secrets[0]
            .value
            .expose(),
        value
    );
    match store(dir.path(), 2).load() {
        Err(StoreError::SecretKey { job, secret, .. }) => {
            assert_eq!((job.as_str(), secret.as_str()), ("sealed", "db"));
        }
        other => panic!("another key was not refused: {other:?}"),
    }
}

#[test]
fn a_writer_without_a_key_stores_no_secret_rather_than_drop_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = SqliteStore::open(dir.path()).unwrap();
    let change = Change {
        jobs: vec![JobWrite::Create(Box::new(job_with_secret(b"x")))],
        ..Change::default()
    };
    let err = writer.commit(&change).unwrap_err();
    assert!(err.to_string().contains("no secret key"), "{err}");
    assert!(writer.load().unwrap().jobs.is_empty());
}
