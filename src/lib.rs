//! ustack: a userspace TCP/IP stack.
//!
//! The stack exchanges raw IP packets with the Linux kernel through a TUN
//! device, so the kernel sees it as one more host at the far end of a
//! point-to-point link.
//!
//! A TCP echo server on the stack, in ten lines:
//!
//! ```no_run
//! use std::io::{Read, Write};
//! use ustack::api::{Stack, TcpListener};
//!
//! let stack = Stack::from_env()?; // the TUN device the USTACK_* variables name
//! let listener = TcpListener::bind(&stack, "[::]:7")?;
//! for stream in listener.incoming() {
//!     let mut s = stream?;
//!     let mut buf = [0u8; 4096];
//!     while let n @ 1.. = s.read(&mut buf)? {
//!         s.write_all(&buf[..n])?;
//!     }
//! }
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Layers, bottom up (data flows down on send and up on receive; no layer
//! reaches back up):
//!
//! - [`wire`]: packet formats. Zero-copy views and plain `Repr` structs,
//!   checksums. Pure functions that never panic on any input.
//! - [`ip`]: IPv4/IPv6 fragment reassembly and fragmentation (sans-IO).
//! - [`tcp`]: the TCP engine (sans-IO).
//! - [`stack`]: the sans-IO core: demultiplexing, ICMP, the socket table.
//! - [`device`]: links that move batches of packets: TUN, an in-memory pair,
//!   a pcap tap and a fault injector.
//! - [`ethernet`]: the stack as an Ethernet host over a TAP device: ARP, NDP,
//!   the neighbour cache, next hops.
//! - [`runtime`]: the thread that drives a stack over a link.
//! - [`api`]: `std::net`-shaped sockets over a [`api::Stack`].
//! - [`config`]: the `USTACK_*` environment variables.
//! - [`ipc`]: the shared stack: the daemon that serves many programs' sockets
//!   over Unix socketpairs, and its control protocol.
//! - `tokio` (with the `tokio` feature): async sockets for tokio over the
//!   same stack.

#![warn(missing_docs)]

pub mod api;
pub mod config;
pub mod device;
pub mod dhcp;
pub mod ethernet;
pub mod ip;
pub mod ipc;
pub mod logging;
pub mod rand;
pub mod runtime;
pub mod stack;
pub mod sys;
pub mod tcp;
pub mod time;
#[cfg(feature = "tokio")]
pub mod tokio;
pub mod wire;

pub use time::Instant;
