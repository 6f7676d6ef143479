//! The compiled descriptors of the Mesos v1 `.proto` files, for the code that
//! needs to know a message's shape at run time: the JSON codec. Built once,
//! on first use, from the descriptor set that `build.rs` embedded, and kept:
//! 2.7 MiB resident, so the protobuf path does not use it (the required-field
//! check walks a table `build.rs` makes from the same descriptors).

use std::sync::OnceLock;

use prost_reflect::{DescriptorPool, MessageDescriptor};

use crate::MesosMessage;

/// The encoded `FileDescriptorSet` of `mesos.v1`, `mesos.v1.scheduler` and
/// `mesos.v1.executor`.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/mesos_v1_descriptors.bin"));

/// The descriptor pool of the Mesos v1 files.
pub fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(FILE_DESCRIPTOR_SET)
            .expect("build.rs wrote this descriptor set with protox, so it decodes")
    })
}

/// The descriptor of a generated message type.
pub fn message<M: MesosMessage>() -> MessageDescriptor {
    pool()
        .get_message_by_name(&M::full_name())
        .expect("every generated type was compiled from a file in the pool")
}
