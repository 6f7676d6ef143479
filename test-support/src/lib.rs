//! Test helpers shared by the tests of crates that cannot depend on each
//! other: `drover-tests` depends on `drover-scheduler` and
//! `drover-agent-sim`, so their own tests cannot use its harness (a
//! dev-dependency back would be a cycle, and would build the whole harness
//! into them). This crate depends on neither.
//!
//! - [`run`]: a binary run to its exit, optionally in a private mount
//!   namespace of its own.
//! - [`trickle`]: a slow client sending a request a byte at a time.
//! - [`job_spec`]: the job spec the API tests create.
//! - [`images`]: the container test images (`scripts/test-images.sh`).
//! - [`zookeeper`]: a real ZooKeeper server (`scripts/zookeeper-env.sh`).
//! - [`postgres`]: a real PostgreSQL server (`scripts/postgres-env.sh`).
//! - [`netns`]: test hosts in network namespaces (root), to partition.

pub mod images;
pub mod job_spec;
pub mod netns;
pub mod postgres;
pub mod run;
pub mod trickle;
pub mod zookeeper;
