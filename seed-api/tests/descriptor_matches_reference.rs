//! The compiled seed `.proto` files must say exactly what the seeds' do. The
//! reference tables in `shared/reference/` (copied to `seed-api/reference/`)
//! list every message field, enum value and service method of Peloton
//! v1alpha, Titus v3 and the Kubeflow Pipelines v1beta1 run API; these tests
//! check every row against the compiled descriptors, and check that the
//! descriptors of those packages hold nothing the tables do not.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::OnceLock;

use prost_reflect::{Cardinality, DescriptorPool, FieldDescriptor, Kind};

/// The three APIs, by their tables' prefix.
const APIS: &[&str] = &["peloton-v1alpha", "titus-v3", "kfp-v1beta1"];

fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| DescriptorPool::decode(drover_seed_api::FILE_DESCRIPTOR_SET).unwrap())
}

/// The tables: `seed-api/reference/` (a copy of `shared/reference/`'s, kept
/// in the repository so that a fresh clone tests on its own), or
/// `DROVER_SEED_REFERENCE_DIR`.
fn reference_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("DROVER_SEED_REFERENCE_DIR") {
        return dir.into();
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("reference")
}

/// Where a workplace keeps the shared originals, beside the repository.
fn shared_reference_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference")
}

fn table_files() -> Vec<String> {
    let mut files = vec!["seed-apis-sources.md".to_owned()];
    for api in APIS {
        for kind in ["proto-fields", "proto-enums", "services"] {
            files.push(format!("{api}-{kind}.tsv"));
        }
    }
    files
}

#[test]
fn the_copied_tables_match_the_shared_originals_where_those_exist() {
    let shared = shared_reference_dir();
    if !shared.is_dir() {
        // A fresh clone on its own: the copy is all there is.
        return;
    }
    let copy = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("reference");
    for file in table_files() {
        let original = std::fs::read(shared.join(&file)).unwrap();
        let copied = std::fs::read(copy.join(&file)).unwrap();
        assert!(
            original == copied,
            "seed-api/reference/{file} differs from shared/reference/{file}: copy it again"
        );
    }
}

/// The rows of a reference table, header dropped and checked. Fails (never
/// skips) when the table is missing: a test that cannot see the reference
/// proves nothing.
fn rows(file: &str, header: &str) -> Vec<Vec<String>> {
    let path = reference_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read the reference table {} ({e}); set DROVER_SEED_REFERENCE_DIR",
            path.display()
        )
    });
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(header), "{file}: unexpected header");
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}

const FIELDS_HEADER: &str = "package\tmessage\tfield\tnumber\tlabel\ttype\toneof\tdefault";
const ENUMS_HEADER: &str = "package\tenum\tvalue_name\tnumber";
const SERVICES_HEADER: &str =
    "package\tservice\tmethod\trequest_type\tresponse_type\tclient_streaming\tserver_streaming\thttp";

fn fields(api: &str) -> Vec<Vec<String>> {
    rows(&format!("{api}-proto-fields.tsv"), FIELDS_HEADER)
}

fn enums(api: &str) -> Vec<Vec<String>> {
    rows(&format!("{api}-proto-enums.tsv"), ENUMS_HEADER)
}

fn services(api: &str) -> Vec<Vec<String>> {
    rows(&format!("{api}-services.tsv"), SERVICES_HEADER)
}

/// The packages the tables cover: every package named in any table.
fn table_packages() -> BTreeSet<String> {
    let mut packages = BTreeSet::new();
    for api in APIS {
        packages.extend(fields(api).into_iter().map(|r| r[0].clone()));
        packages.extend(enums(api).into_iter().map(|r| r[0].clone()));
        packages.extend(services(api).into_iter().map(|r| r[0].clone()));
    }
    packages
}

/// The type of a field as the tables write it: a scalar name, a fully
/// qualified message or enum name with a leading dot, or `map<K,V>`.
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
        Kind::Message(m) => format!(".{}", m.full_name()),
        Kind::Enum(e) => format!(".{}", e.full_name()),
    }
}

/// The label as the tables write it: `map` for maps, else the cardinality
/// (a proto3 singular field is `optional`).
fn label_name(field: &FieldDescriptor) -> &'static str {
    if field.is_map() {
        return "map";
    }
    match field.cardinality() {
        Cardinality::Optional => "optional",
        Cardinality::Required => "required",
        Cardinality::Repeated => "repeated",
    }
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
fn every_field_of_the_reference_tables_is_compiled_as_the_seeds_have_it() {
    let mut problems = Vec::new();
    for api in APIS {
        let table = fields(api);
        assert!(table.len() > 80, "{api}: the fields table looks truncated");
        for row in &table {
            let [package, message, field, number, label, ty, oneof, default] = &row[..] else {
                panic!("{api}: malformed row {row:?}");
            };
            let full = format!("{package}.{message}");
            let Some(desc) = pool().get_message_by_name(&full) else {
                problems.push(format!("message {full} is missing"));
                continue;
            };
            if field.is_empty() {
                // A message with no fields.
                if desc.fields().len() != 0 {
                    problems.push(format!("{full} should have no fields"));
                }
                continue;
            }
            let Some(f) = desc.get_field_by_name(field) else {
                problems.push(format!("{full}.{field} is missing"));
                continue;
            };
            let want_number: u32 = number.parse().expect("numbers in the tables are integers");
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
            let got_oneof = f
                .containing_oneof()
                .map(|o| o.name().to_owned())
                .unwrap_or_default();
            if got_oneof != *oneof {
                problems.push(format!("{full}.{field}: oneof {got_oneof:?} != {oneof:?}"));
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
fn every_enum_value_of_the_reference_tables_is_compiled_as_the_seeds_have_it() {
    let mut problems = Vec::new();
    for api in APIS {
        let table = enums(api);
        assert!(table.len() > 20, "{api}: the enums table looks truncated");
        for row in &table {
            let [package, enum_name, value, number] = &row[..] else {
                panic!("{api}: malformed row {row:?}");
            };
            let full = format!("{package}.{enum_name}");
            let Some(desc) = pool().get_enum_by_name(&full) else {
                problems.push(format!("enum {full} is missing"));
                continue;
            };
            let want: i32 = number.parse().expect("numbers in the tables are integers");
            match desc.get_value_by_name(value) {
                Some(v) if v.number() == want => {}
                Some(v) => {
                    problems.push(format!("{full}.{value}: number {} != {want}", v.number()))
                }
                None => problems.push(format!("{full}.{value} is missing")),
            }
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
fn every_method_of_the_reference_tables_is_compiled_as_the_seeds_have_it() {
    let mut problems = Vec::new();
    let mut methods = 0;
    for api in APIS {
        for row in services(api) {
            let [package, service, method, request, response, client_streaming, server_streaming, _http] =
                &row[..]
            else {
                panic!("{api}: malformed row {row:?}");
            };
            methods += 1;
            let full = format!("{package}.{service}");
            let Some(desc) = pool().get_service_by_name(&full) else {
                problems.push(format!("service {full} is missing"));
                continue;
            };
            let Some(m) = desc.methods().find(|m| m.name() == method) else {
                problems.push(format!("{full}/{method} is missing"));
                continue;
            };
            let got_request = format!(".{}", m.input().full_name());
            if got_request != *request {
                problems.push(format!(
                    "{full}/{method}: request {got_request} != {request}"
                ));
            }
            let got_response = format!(".{}", m.output().full_name());
            if got_response != *response {
                problems.push(format!(
                    "{full}/{method}: response {got_response} != {response}"
                ));
            }
            if m.is_client_streaming().to_string() != *client_streaming {
                problems.push(format!(
                    "{full}/{method}: client streaming {} != {client_streaming}",
                    m.is_client_streaming()
                ));
            }
            if m.is_server_streaming().to_string() != *server_streaming {
                problems.push(format!(
                    "{full}/{method}: server streaming {} != {server_streaming}",
                    m.is_server_streaming()
                ));
            }
        }
    }
    // 48 Peloton, 20 Titus and 13 Kubeflow methods (seed-apis-sources.md).
    assert_eq!(methods, 48 + 20 + 13, "the services tables look truncated");
    assert!(
        problems.is_empty(),
        "{} rows differ:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn the_compiled_files_hold_nothing_the_reference_does_not() {
    let packages = table_packages();
    let mut messages = BTreeSet::new();
    let mut field_names = BTreeSet::new();
    let mut enum_values = BTreeSet::new();
    let mut methods = BTreeSet::new();
    for api in APIS {
        for r in fields(api) {
            messages.insert(format!("{}.{}", r[0], r[1]));
            if !r[2].is_empty() {
                field_names.insert(format!("{}.{}.{}", r[0], r[1], r[2]));
            }
        }
        for r in enums(api) {
            enum_values.insert(format!("{}.{}.{}", r[0], r[1], r[2]));
        }
        for r in services(api) {
            methods.insert(format!("{}.{}/{}", r[0], r[1], r[2]));
        }
    }
    let mut extra = Vec::new();
    let mut seen_packages = BTreeSet::new();
    for message in pool().all_messages() {
        if message.is_map_entry() || !packages.contains(message.package_name()) {
            continue;
        }
        seen_packages.insert(message.package_name().to_owned());
        if !messages.contains(message.full_name()) {
            extra.push(format!("message {}", message.full_name()));
        }
        for field in message.fields() {
            let name = format!("{}.{}", message.full_name(), field.name());
            if !field_names.contains(&name) {
                extra.push(name);
            }
        }
    }
    for e in pool().all_enums() {
        if !packages.contains(e.package_name()) {
            continue;
        }
        for v in e.values() {
            // Enum values are scoped to the enum's parent in protobuf, but
            // the tables name them by enum.
            let name = format!("{}.{}", e.full_name(), v.name());
            if !enum_values.contains(&name) {
                extra.push(name);
            }
        }
    }
    for s in pool().services() {
        for m in s.methods() {
            let name = format!("{}/{}", s.full_name(), m.name());
            if !methods.contains(&name) {
                extra.push(name);
            }
        }
    }
    assert!(
        extra.is_empty(),
        "not in the reference tables:\n{}",
        extra.join("\n")
    );
    // Only the tables' packages and the well-known types are compiled.
    for file in pool().files() {
        let package = file.package_name();
        assert!(
            packages.contains(package) || package == "google.protobuf",
            "{} is in package {package}, which no table lists",
            file.name()
        );
    }
    assert!(seen_packages.len() > 15, "packages seen: {seen_packages:?}");
}

#[test]
fn the_crate_lists_every_service_the_tables_have() {
    let mut want = BTreeSet::new();
    for api in APIS {
        for r in services(api) {
            want.insert(format!("{}.{}", r[0], r[1]));
        }
    }
    let listed: BTreeSet<String> = drover_seed_api::SERVICES
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    assert_eq!(listed, want);
}
