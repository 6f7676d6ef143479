//! Golden tests of Mesos-style JSON: each message is written exactly as a
//! Mesos master or agent writes it (byte for byte), and read back from
//! that form. The expected texts follow stout's `jsonify` rules: declaration
//! order, explicit non-deprecated defaults written, enums by name, bytes as
//! base64, rapidjson's number format.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use drover_proto::json::{from_json, to_json, JsonError};
use drover_proto::media::DecodeError;
use drover_proto::v1::scheduler::{call, event, Call, Event};
use drover_proto::v1::{
    self, offer, task_status, value, AgentId, Attribute, CommandInfo, DurationInfo, ExecutorId,
    FrameworkId, FrameworkInfo, HealthCheck, KillPolicy, Offer, OfferId, Resource, TaskId,
    TaskInfo, TaskState, TaskStatus, Value,
};
use drover_proto::{MediaType, MesosMessage};

/// Writes `message`, compares with `golden`, then reads `golden` back and
/// writes it again: the same bytes must come out, and the protobuf
/// encodings of the two must decode to equal values.
fn assert_golden<M: MesosMessage + PartialEq + std::fmt::Debug>(message: &M, golden: &str) {
    assert_eq!(to_json(message), golden);
    let read: M = from_json(golden.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(to_json(&read), golden, "re-written after reading");
    let via_protobuf: M = MediaType::Protobuf
        .decode(&MediaType::Protobuf.encode(&read))
        .unwrap();
    assert_eq!(via_protobuf, read);
}

fn scalar(name: &str, v: f64) -> Resource {
    Resource {
        name: name.into(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value: v }),
        ..Default::default()
    }
}

fn master_info() -> v1::MasterInfo {
    v1::MasterInfo {
        id: "a5f8c3e1-29b4-4a7c-9d1e-0c4b7e2f6a10".into(),
        ip: 16_777_343,
        port: 5050,
        pid: Some("master@127.0.0.1:5050".into()),
        hostname: Some("localhost".into()),
        version: Some("1.12.0".into()),
        address: Some(v1::Address {
            hostname: Some("localhost".into()),
            ip: Some("127.0.0.1".into()),
            port: 5050,
        }),
        capabilities: [
            v1::master_info::capability::Type::AgentUpdate,
            v1::master_info::capability::Type::AgentDraining,
            v1::master_info::capability::Type::QuotaV2,
        ]
        .into_iter()
        .map(|t| v1::master_info::Capability {
            r#type: Some(t as i32),
        })
        .collect(),
        ..Default::default()
    }
}

#[test]
fn subscribed_event_is_written_as_the_reference_shows_it() {
    let event = Event {
        r#type: Some(event::Type::Subscribed as i32),
        subscribed: Some(Box::new(event::Subscribed {
            framework_id: FrameworkId {
                value: "a5f8c3e1-29b4-4a7c-9d1e-0c4b7e2f6a10-0000".into(),
            },
            heartbeat_interval_seconds: Some(15.0),
            master_info: Some(master_info()),
        })),
        ..Default::default()
    };
    assert_golden(
        &event,
        concat!(
            r#"{"type":"SUBSCRIBED","subscribed":{"framework_id":{"value":"a5f8c3e1-29b4-4a7c-9d1e-0c4b7e2f6a10-0000"},"#,
            r#""heartbeat_interval_seconds":15.0,"master_info":{"id":"a5f8c3e1-29b4-4a7c-9d1e-0c4b7e2f6a10","ip":16777343,"#,
            r#""port":5050,"pid":"master@127.0.0.1:5050","hostname":"localhost","version":"1.12.0","#,
            r#""address":{"hostname":"localhost","ip":"127.0.0.1","port":5050},"#,
            r#""capabilities":[{"type":"AGENT_UPDATE"},{"type":"AGENT_DRAINING"},{"type":"QUOTA_V2"}]}}}"#
        ),
    );
}

#[test]
fn heartbeat_event_is_just_its_type() {
    let event = Event {
        r#type: Some(event::Type::Heartbeat as i32),
        ..Default::default()
    };
    assert_golden(&event, r#"{"type":"HEARTBEAT"}"#);
}

// The master sets the deprecated `Resource.role` in offers (reference 2.3).
#[allow(deprecated)]
fn offer() -> Offer {
    let mut cpus = scalar("cpus", 4.0);
    cpus.role = Some("*".into());
    cpus.allocation_info = Some(v1::resource::AllocationInfo {
        role: Some("*".into()),
    });
    let mut mem = scalar("mem", 8192.0);
    mem.allocation_info = Some(v1::resource::AllocationInfo {
        role: Some("*".into()),
    });
    let ports = Resource {
        name: "ports".into(),
        r#type: value::Type::Ranges as i32,
        ranges: Some(value::Ranges {
            range: vec![value::Range {
                begin: 31000,
                end: 32000,
            }],
        }),
        ..Default::default()
    };
    Offer {
        id: OfferId {
            value: "m-O7".into(),
        },
        framework_id: FrameworkId {
            value: "m-0000".into(),
        },
        agent_id: AgentId {
            value: "m-S0".into(),
        },
        hostname: "agent-0.zone-a".into(),
        resources: vec![cpus, mem, ports],
        attributes: vec![Attribute {
            name: "zone".into(),
            r#type: value::Type::Text as i32,
            text: Some(value::Text { value: "a".into() }),
            ..Default::default()
        }],
        ..Default::default()
    }
}

const OFFER_JSON: &str = concat!(
    r#"{"id":{"value":"m-O7"},"framework_id":{"value":"m-0000"},"agent_id":{"value":"m-S0"},"hostname":"agent-0.zone-a","#,
    r#""resources":[{"name":"cpus","type":"SCALAR","scalar":{"value":4.0},"role":"*","allocation_info":{"role":"*"}},"#,
    r#"{"name":"mem","type":"SCALAR","scalar":{"value":8192.0},"allocation_info":{"role":"*"}},"#,
    r#"{"name":"ports","type":"RANGES","ranges":{"range":[{"begin":31000,"end":32000}]}}],"#,
    r#""attributes":[{"name":"zone","type":"TEXT","text":{"value":"a"}}]}"#
);

#[test]
fn offer_writes_resources_ranges_and_attributes() {
    assert_golden(&offer(), OFFER_JSON);
}

#[test]
fn offers_event_wraps_its_offers() {
    let event = Event {
        r#type: Some(event::Type::Offers as i32),
        offers: Some(event::Offers {
            offers: vec![offer()],
        }),
        ..Default::default()
    };
    assert_golden(
        &event,
        &format!(r#"{{"type":"OFFERS","offers":{{"offers":[{OFFER_JSON}]}}}}"#),
    );
}

fn task_status() -> TaskStatus {
    TaskStatus {
        task_id: TaskId {
            value: "job-1-0-1".into(),
        },
        state: TaskState::TaskRunning as i32,
        source: Some(task_status::Source::Executor as i32),
        agent_id: Some(AgentId {
            value: "m-S0".into(),
        }),
        executor_id: Some(ExecutorId {
            value: "job-1-0-1".into(),
        }),
        timestamp: Some(1_443_830_400.25),
        uuid: Some(
            vec![
                0x3d, 0x5c, 0x2a, 0x10, 0x8e, 0x11, 0x4b, 0x52, 0x9a, 0x1f, 0, 0xff, 0xfe, 1, 2, 3,
            ]
            .into(),
        ),
        healthy: Some(true),
        ..Default::default()
    }
}

const TASK_STATUS_JSON: &str = concat!(
    r#"{"task_id":{"value":"job-1-0-1"},"state":"TASK_RUNNING","source":"SOURCE_EXECUTOR","#,
    r#""agent_id":{"value":"m-S0"},"executor_id":{"value":"job-1-0-1"},"timestamp":1443830400.25,"#,
    r#""uuid":"PVwqEI4RS1KaHwD//gECAw==","healthy":true}"#
);

#[test]
fn task_status_writes_enums_by_name_and_uuid_as_base64() {
    assert_golden(&task_status(), TASK_STATUS_JSON);
}

#[test]
fn update_event_carries_the_status() {
    let event = Event {
        r#type: Some(event::Type::Update as i32),
        update: Some(event::Update {
            status: task_status(),
        }),
        ..Default::default()
    };
    assert_golden(
        &event,
        &format!(r#"{{"type":"UPDATE","update":{{"status":{TASK_STATUS_JSON}}}}}"#),
    );
}

#[test]
fn framework_info_writes_its_explicit_defaults_but_not_the_deprecated_role() {
    let minimal = FrameworkInfo {
        user: "alice".into(),
        name: "drover".into(),
        ..Default::default()
    };
    assert_golden(
        &minimal,
        r#"{"user":"alice","name":"drover","failover_timeout":0.0,"checkpoint":false}"#,
    );

    let full = FrameworkInfo {
        user: "alice".into(),
        name: "drover".into(),
        id: Some(FrameworkId {
            value: "m-0000".into(),
        }),
        failover_timeout: Some(604_800.0),
        checkpoint: Some(true),
        roles: vec!["dev".into()],
        capabilities: [
            v1::framework_info::capability::Type::MultiRole,
            v1::framework_info::capability::Type::PartitionAware,
            v1::framework_info::capability::Type::TaskKillingState,
        ]
        .into_iter()
        .map(|t| v1::framework_info::Capability {
            r#type: Some(t as i32),
        })
        .collect(),
        ..Default::default()
    };
    assert_golden(
        &full,
        concat!(
            r#"{"user":"alice","name":"drover","id":{"value":"m-0000"},"failover_timeout":604800.0,"checkpoint":true,"#,
            r#""roles":["dev"],"capabilities":[{"type":"MULTI_ROLE"},{"type":"PARTITION_AWARE"},{"type":"TASK_KILLING_STATE"}]}"#
        ),
    );
}

#[test]
fn subscribe_call_nests_the_framework_info() {
    let call = Call {
        r#type: Some(call::Type::Subscribe as i32),
        subscribe: Some(Box::new(call::Subscribe {
            framework_info: FrameworkInfo {
                user: "alice".into(),
                name: "drover".into(),
                ..Default::default()
            },
            ..Default::default()
        })),
        ..Default::default()
    };
    assert_golden(
        &call,
        r#"{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"alice","name":"drover","failover_timeout":0.0,"checkpoint":false}}}"#,
    );
}

fn task_info() -> TaskInfo {
    TaskInfo {
        name: "web-0".into(),
        task_id: TaskId {
            value: "web-0-1".into(),
        },
        agent_id: AgentId {
            value: "m-S0".into(),
        },
        resources: vec![scalar("cpus", 0.1), scalar("mem", 32.0)],
        command: Some(CommandInfo {
            value: Some("python3 -m http.server $PORT0".into()),
            ..Default::default()
        }),
        health_check: Some(Box::new(HealthCheck {
            r#type: Some(v1::health_check::Type::Http as i32),
            http: Some(v1::health_check::HttpCheckInfo {
                port: 8080,
                path: Some("/health".into()),
                ..Default::default()
            }),
            ..Default::default()
        })),
        kill_policy: Some(KillPolicy {
            grace_period: Some(DurationInfo {
                nanoseconds: 3_000_000_000,
            }),
        }),
        data: Some(b"hi".to_vec().into()),
        ..Default::default()
    }
}

const TASK_INFO_JSON: &str = concat!(
    r#"{"name":"web-0","task_id":{"value":"web-0-1"},"agent_id":{"value":"m-S0"},"#,
    r#""resources":[{"name":"cpus","type":"SCALAR","scalar":{"value":0.1}},{"name":"mem","type":"SCALAR","scalar":{"value":32.0}}],"#,
    r#""command":{"shell":true,"value":"python3 -m http.server $PORT0"},"#,
    r#""health_check":{"delay_seconds":15.0,"interval_seconds":10.0,"timeout_seconds":20.0,"consecutive_failures":3,"#,
    r#""grace_period_seconds":10.0,"type":"HTTP","http":{"protocol":"IPv4","port":8080,"path":"/health"}},"#,
    r#""kill_policy":{"grace_period":{"nanoseconds":3000000000}},"data":"aGk="}"#
);

#[test]
fn task_info_writes_command_and_health_check_defaults() {
    assert_golden(&task_info(), TASK_INFO_JSON);
}

#[test]
fn accept_call_launches_task_infos_with_default_filters() {
    let call = Call {
        framework_id: Some(FrameworkId {
            value: "m-0000".into(),
        }),
        r#type: Some(call::Type::Accept as i32),
        accept: Some(call::Accept {
            offer_ids: vec![OfferId {
                value: "m-O7".into(),
            }],
            operations: vec![offer::Operation {
                r#type: Some(offer::operation::Type::Launch as i32),
                launch: Some(offer::operation::Launch {
                    task_infos: vec![task_info()],
                }),
                ..Default::default()
            }],
            filters: Some(v1::Filters::default()),
        }),
        ..Default::default()
    };
    assert_golden(
        &call,
        &format!(
            concat!(
                r#"{{"framework_id":{{"value":"m-0000"}},"type":"ACCEPT","accept":{{"offer_ids":[{{"value":"m-O7"}}],"#,
                r#""operations":[{{"type":"LAUNCH","launch":{{"task_infos":[{TASK_INFO_JSON}]}}}}],"filters":{{"refuse_seconds":5.0}}}}}}"#
            ),
            TASK_INFO_JSON = TASK_INFO_JSON
        ),
    );
}

#[test]
fn acknowledge_call_carries_the_uuid_as_base64() {
    let call = Call {
        framework_id: Some(FrameworkId {
            value: "m-0000".into(),
        }),
        r#type: Some(call::Type::Acknowledge as i32),
        acknowledge: Some(call::Acknowledge {
            agent_id: AgentId {
                value: "m-S0".into(),
            },
            task_id: TaskId { value: "t".into() },
            uuid: vec![0xfb; 16].into(),
        }),
        ..Default::default()
    };
    assert_golden(
        &call,
        r#"{"framework_id":{"value":"m-0000"},"type":"ACKNOWLEDGE","acknowledge":{"agent_id":{"value":"m-S0"},"task_id":{"value":"t"},"uuid":"+/v7+/v7+/v7+/v7+/v7+w=="}}"#,
    );
}

#[test]
fn map_fields_and_infinite_limits_round_trip() {
    let mut task = task_info();
    task.limits
        .insert("mem".into(), value::Scalar { value: 64.0 });
    task.limits.insert(
        "cpus".into(),
        value::Scalar {
            value: f64::INFINITY,
        },
    );
    let json = to_json(&task);
    assert!(
        json.ends_with(r#""limits":{"cpus":{"value":"Infinity"},"mem":{"value":64.0}}}"#),
        "{json}"
    );
    let back: TaskInfo = from_json(json.as_bytes()).unwrap();
    assert_eq!(back.limits["cpus"].value, f64::INFINITY);
    assert_eq!(back.limits["mem"].value, 64.0);
}

#[test]
fn strings_escape_controls_in_uppercase_hex_and_keep_utf8_raw() {
    let status = TaskStatus {
        task_id: TaskId { value: "t".into() },
        state: TaskState::TaskFailed as i32,
        message: Some("exit \"1\"\n\t\u{1}/é€".into()),
        ..Default::default()
    };
    assert_eq!(
        to_json(&status),
        "{\"task_id\":{\"value\":\"t\"},\"state\":\"TASK_FAILED\",\"message\":\"exit \\\"1\\\"\\n\\t\\u0001/é€\"}"
    );
}

// ----- reading: Mesos' leniency, and its errors -----

fn read_call(json: &str) -> Result<Call, DecodeError> {
    from_json(json.as_bytes())
}

fn json_error<T: std::fmt::Debug>(result: Result<T, DecodeError>) -> JsonError {
    match result {
        Err(DecodeError::Json { source, .. }) => source,
        other => panic!("expected a JSON error, got {other:?}"),
    }
}

#[test]
fn unknown_keys_and_nulls_are_ignored() {
    let call = read_call(
        r#"{"type":"REVIVE","frameworkId":{"value":"x"},"bogus":[1,2],"framework_id":null}"#,
    )
    .unwrap();
    assert_eq!(call.r#type, Some(call::Type::Revive as i32));
    assert_eq!(call.framework_id, None);
}

#[test]
fn numbers_and_bools_may_be_strings() {
    let status: TaskStatus = from_json(
        br#"{"task_id":{"value":"t"},"state":"TASK_LOST","timestamp":" 12.5 ","healthy":"true"}"#,
    )
    .unwrap();
    assert_eq!(status.timestamp, Some(12.5));
    assert_eq!(status.healthy, Some(true));
    let range: value::Range = from_json(br#"{"begin":"31000","end":32000.0}"#).unwrap();
    assert_eq!((range.begin, range.end), (31000, 32000));
}

#[test]
fn a_single_value_stands_for_a_one_element_list() {
    let call = read_call(
        r#"{"type":"DECLINE","framework_id":{"value":"f"},"decline":{"offer_ids":{"value":"o1"}}}"#,
    )
    .unwrap();
    assert_eq!(
        call.decline.unwrap().offer_ids,
        vec![OfferId { value: "o1".into() }]
    );
}

#[test]
fn an_unknown_enum_name_drops_an_optional_field_but_fails_a_required_one() {
    let call = read_call(r#"{"type":"NOT_A_CALL"}"#).unwrap();
    assert_eq!(call.r#type, None);
    let err = from_json::<TaskStatus>(br#"{"task_id":{"value":"t"},"state":"TASK_NAPPING"}"#)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Failed to convert JSON into TaskStatus protobuf: Failed to find enum for 'TASK_NAPPING' (field 'state')"
    );
}

#[test]
fn an_enum_given_as_a_number_is_refused() {
    let err = json_error(read_call(r#"{"type":1}"#));
    assert_eq!(
        err.to_string(),
        "Not expecting a JSON number for field 'type'"
    );
}

#[test]
fn missing_required_fields_are_named_by_path() {
    let err = read_call(r#"{"type":"SUBSCRIBE","subscribe":{"framework_info":{}}}"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Failed to convert JSON into Call protobuf: Missing required fields: subscribe.framework_info.user, subscribe.framework_info.name"
    );
    let err = read_call(
        r#"{"type":"ACCEPT","framework_id":{"value":"f"},"accept":{"offer_ids":[{"value":"o"},{}]}}"#,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .ends_with("Missing required fields: accept.offer_ids[1].value"),
        "{err}"
    );
}

#[test]
fn wrong_json_types_are_refused_with_the_field_named() {
    for (body, want) in [
        (
            r#"{"type":"SUBSCRIBE","subscribe":"yes"}"#,
            "Not expecting a JSON string for field 'subscribe'",
        ),
        (
            r#"{"type":["REVIVE"]}"#,
            "Not expecting a JSON array for field 'type'",
        ),
        (
            r#"{"framework_id":{"value":7}}"#,
            "Not expecting a JSON number for field 'framework_id.value'",
        ),
        ("[]", "Expecting a JSON object"),
    ] {
        assert_eq!(json_error(read_call(body)).to_string(), want, "{body}");
    }
}

#[test]
fn out_of_range_integers_are_refused() {
    let err = from_json::<value::Range>(br#"{"begin":-1,"end":1}"#).unwrap_err();
    assert!(err.to_string().contains("not a valid uint64"), "{err}");
    let err = from_json::<HealthCheck>(br#"{"consecutive_failures":4294967296}"#).unwrap_err();
    assert!(err.to_string().contains("not a valid uint32"), "{err}");
}

#[test]
fn bytes_are_read_as_stout_reads_base64() {
    let ack = |uuid: &str| {
        read_call(&format!(
            r#"{{"type":"ACKNOWLEDGE","acknowledge":{{"agent_id":{{"value":"a"}},"task_id":{{"value":"t"}},"uuid":"{uuid}"}}}}"#
        ))
        .map(|c| c.acknowledge.unwrap().uuid.to_vec())
    };
    assert_eq!(ack("aGk=").unwrap(), b"hi");
    assert_eq!(ack("aGk").unwrap(), b"hi", "missing padding is fine");
    assert_eq!(
        ack("a G\\nk=ignored").unwrap(),
        b"hi",
        "white space skipped, stops at '='"
    );
    assert!(
        matches!(json_error(ack("a-_k")), JsonError::BadBase64 { .. }),
        "URL-safe alphabet refused"
    );
}

#[test]
fn malformed_json_is_a_syntax_error() {
    assert!(matches!(
        json_error(read_call(r#"{"type":"#)),
        JsonError::Syntax(_)
    ));
    assert!(matches!(json_error(read_call("")), JsonError::Syntax(_)));
}

#[test]
fn value_wrapper_messages_round_trip() {
    let v = Value {
        r#type: value::Type::Set as i32,
        set: Some(value::Set {
            item: vec!["a".into(), "b".into()],
        }),
        ..Default::default()
    };
    assert_golden(&v, r#"{"type":"SET","set":{"item":["a","b"]}}"#);
}
