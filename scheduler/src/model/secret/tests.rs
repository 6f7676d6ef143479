use super::*;

fn secret(id: &str, path: &str, value: &[u8]) -> SecretSpec {
    SecretSpec {
        id: id.into(),
        path: path.into(),
        value: SecretValue::new(value.to_vec()),
    }
}

/// A sealer that reverses the bytes and tags them with its key byte.
struct Toy(u8);

impl Sealer for Toy {
    fn seal(&self, aad: &[u8], plain: &[u8]) -> Result<String, SealError> {
        let mut out = vec![self.0, aad.len() as u8];
        out.extend(plain.iter().rev());
        Ok(out.iter().map(|b| format!("{b:02x}")).collect())
    }
    fn open(&self, aad: &[u8], sealed: &str) -> Result<Vec<u8>, SealError> {
        let bytes: Vec<u8> = (0..sealed.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&sealed[i..i + 2], 16).map_err(|_| SealError::Malformed))
            .collect::<Result<_, _>>()?;
        if bytes.first() != Some(&self.0) || bytes.get(1) != Some(&(aad.len() as u8)) {
            return Err(SealError::WrongKey);
        }
        Ok(bytes[2..].iter().rev().copied().collect())
    }
}

#[test]
fn debug_never_shows_the_value() {
    let s = secret("db", "conf/db.pass", b"hunter2");
    let text = format!("{s:?} {:?}", s.value);
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("redacted"));
}

#[test]
fn json_shows_id_and_path_but_never_the_value() {
    let s = secret("db", "conf/db.pass", b"hunter2");
    let json = serde_json::to_string(&s).unwrap();
    assert_eq!(json, r#"{"id":"db","path":"conf/db.pass"}"#);
}

#[test]
fn a_users_secret_is_base64_and_an_unnamed_one_takes_its_path_as_id() {
    let s: SecretSpec = serde_json::from_str(r#"{"path":"a/b","value":"aHVudGVyMg=="}"#).unwrap();
    assert_eq!(s, secret("a/b", "a/b", b"hunter2"));
    let bad = serde_json::from_str::<SecretSpec>(r#"{"path":"a","value":"hunter2!!"}"#)
        .unwrap_err()
        .to_string();
    assert!(
        bad.contains("not base64") && !bad.contains("hunter2"),
        "{bad}"
    );
}

#[test]
fn a_user_cannot_send_a_sealed_value() {
    let err = serde_json::from_str::<SecretSpec>(r#"{"path":"a","sealed":"00"}"#).unwrap_err();
    assert!(err.to_string().contains("unknown field `sealed`"), "{err}");
}

#[test]
fn the_store_seals_and_its_writer_opens_with_the_same_key() {
    let key: Arc<dyn Sealer> = Arc::new(Toy(7));
    let s = secret("db", "conf/db.pass", b"hunter2");
    let stored = sealed_with(Some(&key), || serde_json::to_string(&s)).unwrap();
    assert!(stored.contains("\"sealed\"") && !stored.contains("hunter2"));
    let back = opened_with(&key, || serde_json::from_str::<SecretSpec>(&stored))
        .unwrap()
        .unwrap();
    assert_eq!(back, s);
    // A reader gets the id and path only.
    let read = blind(|| serde_json::from_str::<SecretSpec>(&stored)).unwrap();
    assert_eq!(read, secret("db", "conf/db.pass", b""));
    // Another key: the writer is told which secret failed.
    let other: Arc<dyn Sealer> = Arc::new(Toy(8));
    let failed = opened_with(&other, || serde_json::from_str::<SecretSpec>(&stored));
    assert_eq!(failed.unwrap_err(), "db");
    // And the scope is gone afterwards.
    assert!(serde_json::from_str::<SecretSpec>(&stored).is_err());
}

#[test]
fn a_store_without_a_key_refuses_to_write_a_value() {
    let err = sealed_with(None, || serde_json::to_string(&secret("a", "a", b"x"))).unwrap_err();
    assert!(err.to_string().contains("no secret key"), "{err}");
}

#[test]
fn paths_stay_inside_the_sandbox() {
    for bad in ["/etc/passwd", "../x", "a/../../x", "a//b", "./a", "a/", ""] {
        assert!(
            validate(&[secret("s", bad, b"x")]).is_err(),
            "{bad} accepted"
        );
    }
    for good in ["a", "secrets/db.pass", ".hidden/key"] {
        validate(&[secret("s", good, b"x")]).unwrap();
    }
}

#[test]
fn paths_and_ids_are_unique_and_no_secret_sits_under_another() {
    let e = validate(&[secret("a", "x", b"1"), secret("b", "x", b"2")]).unwrap_err();
    assert!(
        matches!(
            e,
            SecretError::PathTaken {
                index: 1,
                other: 0,
                ..
            }
        ),
        "{e}"
    );
    let e = validate(&[secret("a", "x", b"1"), secret("b", "x/y", b"2")]).unwrap_err();
    assert!(matches!(e, SecretError::PathTaken { .. }), "{e}");
    let e = validate(&[secret("a", "x/y", b"1"), secret("b", "x", b"2")]).unwrap_err();
    assert!(matches!(e, SecretError::PathTaken { .. }), "{e}");
    let e = validate(&[secret("a", "x", b"1"), secret("a", "y", b"2")]).unwrap_err();
    assert!(matches!(e, SecretError::IdTaken { index: 1, .. }), "{e}");
    validate(&[secret("a", "x/y", b"1"), secret("b", "x/yz", b"2")]).unwrap();
}

#[test]
fn sizes_are_capped_one_by_one_and_together() {
    let big = vec![b'x'; MAX_SECRET_BYTES + 1];
    let e = validate(&[secret("a", "a", &big)]).unwrap_err();
    assert!(matches!(e, SecretError::TooLarge { index: 0, .. }), "{e}");
    let full = vec![b'x'; MAX_SECRET_BYTES];
    let many: Vec<_> = (0..5)
        .map(|i| secret(&i.to_string(), &format!("s{i}"), &full))
        .collect();
    let e = validate(&many).unwrap_err();
    assert!(matches!(e, SecretError::TotalTooLarge { .. }), "{e}");
}

#[test]
fn an_update_naming_no_secrets_keeps_them_and_a_named_one_keeps_its_value() {
    let current = vec![
        secret("db", "db.pass", b"old"),
        secret("tls", "tls.key", b"k"),
    ];
    let mut none = Vec::new();
    carry_over(&current, &mut none);
    assert_eq!(none, current);
    let mut some = vec![secret("db", "db.pass", b""), secret("new", "new", b"n")];
    carry_over(&current, &mut some);
    assert_eq!(
        some,
        vec![secret("db", "db.pass", b"old"), secret("new", "new", b"n")]
    );
    require_values(&some).unwrap();
    let mut unknown = vec![secret("nope", "nope", b"")];
    carry_over(&current, &mut unknown);
    assert!(matches!(
        require_values(&unknown),
        Err(SecretError::NoValue { index: 0, .. })
    ));
}
