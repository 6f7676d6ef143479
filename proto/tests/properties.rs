//! Property tests of the codecs: RecordIO decodes the same records however
//! the stream is chunked, and JSON and protobuf both round-trip messages.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use bytes::BytesMut;
use drover_proto::json::{from_json, to_json};
use drover_proto::recordio::{write_record, RecordDecoder, RecordIoError};
use drover_proto::v1::{value, AgentId, Resource, TaskId, TaskState, TaskStatus};
use drover_proto::MediaType;
use proptest::prelude::*;

fn encode_all(records: &[Vec<u8>]) -> Vec<u8> {
    let mut dst = BytesMut::new();
    for r in records {
        write_record(&mut dst, r);
    }
    dst.to_vec()
}

/// Feeds `stream` in chunks cut at `cuts` (positions, any order) and
/// collects every record the decoder yields.
fn decode_chunked(
    stream: &[u8],
    cuts: &[usize],
    max: usize,
) -> Result<Vec<Vec<u8>>, RecordIoError> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
    cuts.push(0);
    cuts.push(stream.len());
    cuts.sort_unstable();
    let mut decoder = RecordDecoder::new(max);
    let mut out = Vec::new();
    for pair in cuts.windows(2) {
        decoder.feed(&stream[pair[0]..pair[1]]);
        while let Some(record) = decoder.next_record()? {
            out.push(record.to_vec());
        }
    }
    decoder.finish()?;
    Ok(out)
}

proptest! {
    #[test]
    fn every_chunking_of_a_stream_decodes_to_the_same_records(
        records in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..20),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
    ) {
        let stream = encode_all(&records);
        prop_assert_eq!(decode_chunked(&stream, &cuts, 1024).unwrap(), records);
    }

    #[test]
    fn a_stream_cut_short_is_truncated_not_a_shorter_list(
        records in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..100), 1..10),
        cut in any::<prop::sample::Index>(),
    ) {
        let stream = encode_all(&records);
        let end = cut.index(stream.len() - 1) + 1;
        let boundaries: Vec<usize> = records
            .iter()
            .scan(0, |at, r| { *at += r.len().to_string().len() + 1 + r.len(); Some(*at) })
            .collect();
        let result = decode_chunked(&stream[..end], &[], 1024);
        if boundaries.contains(&end) {
            prop_assert!(result.is_ok());
        } else {
            let is_truncated = matches!(result, Err(RecordIoError::Truncated { .. }));
            prop_assert!(is_truncated, "{:?}", result);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(
        stream in prop::collection::vec(any::<u8>(), 0..200),
        cuts in prop::collection::vec(any::<usize>(), 0..10),
    ) {
        let _ = decode_chunked(&stream, &cuts, 64);
    }
}

fn task_state() -> impl Strategy<Value = i32> {
    prop::sample::select(vec![
        TaskState::TaskStaging,
        TaskState::TaskStarting,
        TaskState::TaskRunning,
        TaskState::TaskFinished,
        TaskState::TaskFailed,
        TaskState::TaskKilled,
        TaskState::TaskLost,
        TaskState::TaskGone,
    ])
    .prop_map(|s| s as i32)
}

prop_compose! {
    fn arb_status()(
        task in "\\PC{1,40}",
        state in task_state(),
        message in proptest::option::of("\\PC{0,80}"),
        agent in proptest::option::of("[a-z0-9-]{1,30}"),
        timestamp in proptest::option::of(any::<f64>().prop_filter("finite", |f| f.is_finite())),
        uuid in proptest::option::of(prop::collection::vec(any::<u8>(), 16)),
        healthy in proptest::option::of(any::<bool>()),
    ) -> TaskStatus {
        TaskStatus {
            task_id: TaskId { value: task },
            state,
            message,
            agent_id: agent.map(|value| AgentId { value }),
            timestamp,
            uuid: uuid.map(Into::into),
            healthy,
            ..Default::default()
        }
    }
}

prop_compose! {
    fn arb_resource()(
        name in "[a-z]{1,10}",
        scalar in proptest::option::of(any::<f64>().prop_filter("finite", |f| f.is_finite())),
        ranges in prop::collection::vec((any::<u64>(), any::<u64>()), 0..4),
    ) -> Resource {
        Resource {
            name,
            r#type: if scalar.is_some() { value::Type::Scalar } else { value::Type::Ranges } as i32,
            scalar: scalar.map(|value| value::Scalar { value }),
            ranges: (!ranges.is_empty()).then(|| value::Ranges {
                range: ranges.into_iter().map(|(begin, end)| value::Range { begin, end }).collect(),
            }),
            ..Default::default()
        }
    }
}

proptest! {
    #[test]
    fn task_status_round_trips_through_mesos_json(status in arb_status()) {
        let json = to_json(&status);
        prop_assert_eq!(from_json::<TaskStatus>(json.as_bytes()).unwrap(), status);
    }

    #[test]
    fn resources_round_trip_through_mesos_json(resource in arb_resource()) {
        let json = to_json(&resource);
        prop_assert_eq!(from_json::<Resource>(json.as_bytes()).unwrap(), resource);
    }

    #[test]
    fn task_status_round_trips_through_protobuf(status in arb_status()) {
        let bytes = MediaType::Protobuf.encode(&status);
        prop_assert_eq!(MediaType::Protobuf.decode::<TaskStatus>(&bytes).unwrap(), status);
    }

    #[test]
    fn arbitrary_json_never_panics_the_reader(body in "\\PC{0,200}") {
        let _ = from_json::<drover_proto::v1::scheduler::Call>(body.as_bytes());
    }
}
