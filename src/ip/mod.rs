//! The IP layer's stateful parts: fragment reassembly, fragmentation on send,
//! and the token buckets that pace ICMP errors and TCP challenge ACKs.
//!
//! Owns: the fragments of datagrams in reassembly (bounded in bytes, in
//! datagrams and in time), the per-destination identification counters, and
//! rate-limiter state.
//!
//! Must not touch: packet bytes beyond what the caller hands in (headers are
//! parsed and emitted by `wire`), clocks (time arrives as `now: Instant`),
//! or I/O. Everything here is sans-IO and deterministic, and no input, however
//! malformed, makes it panic or grow without bound.

pub mod fragment;
pub mod ratelimit;
pub mod reassembly;

pub use fragment::{FragmentError, FragmentPlan, FragmentSpec, IdGenerator, IpVersion, plan};
pub use ratelimit::TokenBucket;
pub use reassembly::{
    Config as ReassemblyConfig, Expired, FirstFragment, FragKey, Reassembled, Reassembler,
    ReassemblyError, ReassemblyStats,
};
