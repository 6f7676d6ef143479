//! Peloton's messages name `mesos.v1` types (ContainerInfo, CommandInfo,
//! ExecutorInfo, AgentID, Offer and what they contain). build.rs maps them
//! onto drover-proto's generated types instead of generating Peloton's copy
//! again. That is sound only if every field of Peloton's copy (the
//! `mesos.v1` rows of the Peloton table) is in drover-proto's Mesos with the
//! same number, label and type, so bytes a Peloton client encodes decode
//! into drover-proto's types unchanged. This test checks it.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::path::PathBuf;

use drover_proto::descriptors::pool;
use drover_seed_api::peloton::api::v1alpha::pod::ContainerSpec;
use prost_reflect::{Cardinality, Kind};

fn kind_name(kind: &Kind) -> String {
    match kind {
        Kind::Message(m) => format!(".{}", m.full_name()),
        Kind::Enum(e) => format!(".{}", e.full_name()),
        // Scalars: prost-reflect's names are the proto names, capitalised.
        other => format!("{other:?}").to_lowercase(),
    }
}

#[test]
fn every_field_and_enum_value_of_pelotons_mesos_copy_is_in_drover_protos() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("reference");
    let fields = std::fs::read_to_string(dir.join("peloton-v1alpha-proto-fields.tsv")).unwrap();
    let enums = std::fs::read_to_string(dir.join("peloton-v1alpha-proto-enums.tsv")).unwrap();
    let mut problems = Vec::new();
    let mut checked = 0;
    for line in fields.lines().skip(1) {
        let row: Vec<&str> = line.split('\t').collect();
        let [package, message, field, number, label, ty, _oneof, _default] = row[..] else {
            panic!("malformed row {row:?}");
        };
        if package != "mesos.v1" {
            continue;
        }
        checked += 1;
        let full = format!("{package}.{message}");
        let Some(desc) = pool().get_message_by_name(&full) else {
            problems.push(format!("{full} is not in drover-proto"));
            continue;
        };
        if field.is_empty() {
            continue;
        }
        let Some(f) = desc.get_field_by_name(field) else {
            problems.push(format!("{full}.{field} is not in drover-proto"));
            continue;
        };
        let got_label = match f.cardinality() {
            Cardinality::Optional => "optional",
            Cardinality::Required => "required",
            Cardinality::Repeated => "repeated",
        };
        if f.number().to_string() != number || got_label != label || kind_name(&f.kind()) != ty {
            problems.push(format!(
                "{full}.{field}: drover-proto has {} {got_label} {}, Peloton {number} {label} {ty}",
                f.number(),
                kind_name(&f.kind())
            ));
        }
    }
    for line in enums.lines().skip(1) {
        let row: Vec<&str> = line.split('\t').collect();
        let [package, name, value, number] = row[..] else {
            panic!("malformed row {row:?}");
        };
        if package != "mesos.v1" {
            continue;
        }
        let full = format!("{package}.{name}");
        match pool()
            .get_enum_by_name(&full)
            .and_then(|e| e.get_value_by_name(value))
        {
            Some(v) if v.number().to_string() == number => {}
            _ => problems.push(format!("{full}.{value}={number} is not in drover-proto")),
        }
    }
    // 281 mesos.v1 rows (279 fields and two messages with none).
    assert!(checked > 250, "only {checked} mesos.v1 rows");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_peloton_container_spec_carries_drover_protos_container_info() {
    // Compiles only while the extern mapping holds.
    let spec = ContainerSpec {
        container: Some(drover_proto::v1::ContainerInfo::default()),
        command: Some(drover_proto::v1::CommandInfo {
            value: Some("sleep 1".to_owned()),
            ..Default::default()
        }),
        ..ContainerSpec::default()
    };
    let bytes = prost::Message::encode_to_vec(&spec);
    let back: ContainerSpec = prost::Message::decode(bytes.as_slice()).unwrap();
    assert_eq!(back, spec);
}
