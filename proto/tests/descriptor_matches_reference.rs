//! The compiled `.proto` files must say exactly what Mesos' do. The reference
//! tables in `shared/reference/` (copied to `proto/reference/`) list every
//! message field and enum value of Mesos v1; this test checks every row
//! against the compiled descriptors, and checks that the descriptors hold
//! nothing the tables do not.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::collections::BTreeSet;
use std::path::PathBuf;

use drover_proto::descriptors::pool;
use prost_reflect::{Cardinality, FieldDescriptor, Kind};

/// The tables: `proto/reference/` (a copy of `shared/reference/`'s, kept in
/// the repository so that a fresh clone tests on its own), or
/// `DROVER_REFERENCE_DIR`.
fn reference_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("DROVER_REFERENCE_DIR") {
        return dir.into();
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("reference")
}

/// Where a workplace keeps the shared originals, beside the repository.
fn shared_reference_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference")
}

#[test]
fn the_copied_tables_match_the_shared_originals_where_those_exist() {
    let shared = shared_reference_dir();
    if !shared.is_dir() {
        // A fresh clone on its own: the copy is all there is.
        return;
    }
    let copy = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("reference");
    for file in ["mesos-v1-proto-fields.tsv", "mesos-v1-proto-enums.tsv"] {
        let original = std::fs::read(shared.join(file)).unwrap();
        let copied = std::fs::read(copy.join(file)).unwrap();
        assert!(
            original == copied,
            "proto/reference/{file} differs from shared/reference/{file}: copy it again"
        );
    }
}

/// The rows of a reference table, header dropped. Fails (never skips) when
/// the table is missing: a test that cannot see the reference proves nothing.
fn rows(file: &str) -> Vec<Vec<String>> {
    let path = reference_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read the reference table {} ({e}); set DROVER_REFERENCE_DIR",
            path.display()
        )
    });
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}

/// The type of a field as the table writes it: a scalar name, a fully
/// qualified message or enum name, or `map<K,V>`.
fn type_name(field: &FieldDescriptor) -> String {
    if field.is_map() {
        let Kind::Message(entry) = field.kind() else {
            unreachable!("maps have entry messages")
        };
        let key = kind_name(&entry.map_entry_key_field().kind());
        let value = kind_name(&entry.map_entry_value_field().kind());
        return format!("map<{key},{value}>");
    }
    kind_name(&field.kind())
}

fn kind_name(kind: &Kind) -> String {
    match kind {
        Kind::Double => "double".into(),
        Kind::Float => "float".into(),
        Kind::Int32 => "int32".into(),
        Kind::Int64 => "int64".into(),
        Kind::Uint32 => "uint32".into(),
        Kind::Uint64 => "uint64".into(),
        Kind::Sint32 => "sint32".into(),
        Kind::Sint64 => "sint64".into(),
        Kind::Fixed32 => "fixed32".into(),
        Kind::Fixed64 => "fixed64".into(),
        Kind::Sfixed32 => "sfixed32".into(),
        Kind::Sfixed64 => "sfixed64".into(),
        Kind::Bool => "bool".into(),
        Kind::String => "string".into(),
        Kind::Bytes => "bytes".into(),
        Kind::Message(m) => m.full_name().into(),
        Kind::Enum(e) => e.full_name().into(),
    }
}

fn label_name(field: &FieldDescriptor) -> &'static str {
    if field.containing_oneof().is_some() {
        return "oneof";
    }
    match field.cardinality() {
        Cardinality::Optional => "optional",
        Cardinality::Required => "required",
        Cardinality::Repeated => "repeated",
    }
}

#[test]
fn every_field_of_the_reference_table_is_compiled_as_mesos_has_it() {
    let table = rows("mesos-v1-proto-fields.tsv");
    assert!(
        table.len() > 800,
        "the fields table looks truncated: {} rows",
        table.len()
    );
    let mut problems = Vec::new();
    let mut checked = 0;
    for row in &table {
        let [package, message, field, number, label, ty, default] = &row[..] else {
            panic!("malformed row {row:?}");
        };
        let full = format!("{package}.{message}");
        let Some(desc) = pool().get_message_by_name(&full) else {
            problems.push(format!("message {full} is missing"));
            continue;
        };
        if field.is_empty() {
            // "(message has no fields)"
            if desc.fields().len() != 0 {
                problems.push(format!("{full} should have no fields"));
            }
            checked += 1;
            continue;
        }
        let Some(f) = desc.get_field_by_name(field) else {
            problems.push(format!("{full}.{field} is missing"));
            continue;
        };
        let want_number: u32 = number.parse().expect("numbers in the table are integers");
        if f.number() != want_number {
            problems.push(format!(
                "{full}.{field}: number {} != {want_number}",
                f.number()
            ));
        }
        if label_name(&f) != label {
            problems.push(format!(
                "{full}.{field}: label {} != {label}",
                label_name(&f)
            ));
        }
        if type_name(&f) != *ty {
            problems.push(format!("{full}.{field}: type {} != {ty}", type_name(&f)));
        }
        let got_default = f
            .field_descriptor_proto()
            .default_value
            .clone()
            .unwrap_or_default();
        if !same_default(&got_default, default) {
            problems.push(format!(
                "{full}.{field}: default {got_default:?} != {default:?}"
            ));
        }
        checked += 1;
    }
    assert!(
        problems.is_empty(),
        "{} of {} rows differ:\n{}",
        problems.len(),
        table.len(),
        problems.join("\n")
    );
    assert_eq!(checked, table.len());
}

/// Defaults compare by value: protox may write `15.0` as `15`.
fn same_default(got: &str, want: &str) -> bool {
    if got == want {
        return true;
    }
    match (got.parse::<f64>(), want.parse::<f64>()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

#[test]
fn every_enum_value_of_the_reference_table_is_compiled_as_mesos_has_it() {
    let table = rows("mesos-v1-proto-enums.tsv");
    assert!(
        table.len() > 250,
        "the enums table looks truncated: {} rows",
        table.len()
    );
    let mut problems = Vec::new();
    for row in &table {
        let [package, enum_name, value, number] = &row[..] else {
            panic!("malformed row {row:?}");
        };
        let full = format!("{package}.{enum_name}");
        let Some(desc) = pool().get_enum_by_name(&full) else {
            problems.push(format!("enum {full} is missing"));
            continue;
        };
        let want: i32 = number.parse().expect("numbers in the table are integers");
        match desc.get_value_by_name(value) {
            Some(v) if v.number() == want => {}
            Some(v) => problems.push(format!("{full}.{value}: number {} != {want}", v.number())),
            None => problems.push(format!("{full}.{value} is missing")),
        }
    }
    assert!(
        problems.is_empty(),
        "{} rows differ:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn the_compiled_files_hold_nothing_the_reference_does_not() {
    let fields: BTreeSet<String> = rows("mesos-v1-proto-fields.tsv")
        .iter()
        .filter(|r| !r[2].is_empty())
        .map(|r| format!("{}.{}.{}", r[0], r[1], r[2]))
        .collect();
    let enum_values: BTreeSet<String> = rows("mesos-v1-proto-enums.tsv")
        .iter()
        .map(|r| format!("{}.{}.{}", r[0], r[1], r[2]))
        .collect();
    let mut extra = Vec::new();
    for message in pool().all_messages() {
        if message.is_map_entry() {
            continue;
        }
        for field in message.fields() {
            let name = format!("{}.{}", message.full_name(), field.name());
            if !fields.contains(&name) {
                extra.push(name);
            }
        }
    }
    for e in pool().all_enums() {
        for v in e.values() {
            // Enum values are scoped to the enum's parent in protobuf, but
            // the table names them by enum.
            let name = format!("{}.{}", e.full_name(), v.name());
            if !enum_values.contains(&name) {
                extra.push(name);
            }
        }
    }
    assert!(
        extra.is_empty(),
        "not in the reference tables:\n{}",
        extra.join("\n")
    );
}

#[test]
fn the_three_mesos_packages_are_compiled() {
    let files: Vec<String> = pool().files().map(|f| f.name().to_owned()).collect();
    for want in [
        "mesos/v1/mesos.proto",
        "mesos/v1/scheduler/scheduler.proto",
        "mesos/v1/executor/executor.proto",
    ] {
        assert!(files.iter().any(|f| f == want), "{want} not in {files:?}");
    }
}
