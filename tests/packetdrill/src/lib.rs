//! `libustack_packetdrill.so`: ustack under packetdrill's shared-object
//! interface (`packetdrill --so_filename=libustack_packetdrill.so`).
//!
//! packetdrill dlopens the library, calls [`packetdrill_interface_init`],
//! and from then on makes every socket call, injects every packet, sniffs
//! every packet the stack sends, and reads and moves its clock through the
//! function pointers filled in here ([`adapter`]).
//!
//! The socket calls are the LD_PRELOAD shim's own code, the `ustack-shim`
//! crate linked in (the fd table, the calls in errno terms, poll and
//! epoll, the hooks that dispatch them; without its load-time hook, which
//! only `libustack.so` has), over a [`Runtime`] driven by hand:
//! an in-memory link that records what the stack sends and when, and a
//! virtual clock that moves only when packetdrill sleeps or waits for a
//! packet. A script's 200 ms retransmission timeout takes no real time and
//! fires at exactly its instant, every run.
//!
//! [`Runtime`]: ustack_core::runtime::Runtime

pub use ustack_shim::{
    addr, buf, hooks, ops, poll, process, real, shared, shared_io, sock, sockopt, stack, table,
};

pub mod adapter;

pub use adapter::{PacketdrillInterface, packetdrill_interface_init};
