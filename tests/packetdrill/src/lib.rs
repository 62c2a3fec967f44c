//! `libustack_packetdrill.so`: ustack under packetdrill's shared-object
//! interface (`packetdrill --so_filename=libustack_packetdrill.so`).
//!
//! packetdrill dlopens the library, calls [`packetdrill_interface_init`],
//! and from then on makes every socket call, injects every packet, sniffs
//! every packet the stack sends, and reads and moves its clock through the
//! function pointers filled in here ([`adapter`]).
//!
//! The socket calls are the LD_PRELOAD shim's own code, compiled into this
//! crate from `shim/src` (the fd table, the calls in errno terms, poll and
//! epoll, the hooks that dispatch them), over a [`Runtime`] driven by hand:
//! an in-memory link that records what the stack sends and when, and a
//! virtual clock that moves only when packetdrill sleeps or waits for a
//! packet. A script's 200 ms retransmission timeout takes no real time and
//! fires at exactly its instant, every run.
//!
//! The shim's sources are included as modules rather than linked as a
//! library: the shim's library is named `ustack` like the core's, and two
//! rlibs of one name in one build collide in the output directory.
//!
//! [`Runtime`]: ustack_core::runtime::Runtime

#[path = "../../../shim/src/addr.rs"]
pub mod addr;
#[path = "../../../shim/src/buf.rs"]
pub mod buf;
#[path = "../../../shim/src/hooks/mod.rs"]
pub mod hooks;
#[path = "../../../shim/src/ops.rs"]
pub mod ops;
#[path = "../../../shim/src/poll.rs"]
pub mod poll;
#[path = "../../../shim/src/process.rs"]
pub mod process;
#[path = "../../../shim/src/real.rs"]
pub mod real;
#[path = "../../../shim/src/shared.rs"]
pub mod shared;
#[path = "../../../shim/src/shared_io.rs"]
pub mod shared_io;
#[path = "../../../shim/src/sock.rs"]
pub mod sock;
#[path = "../../../shim/src/sockopt.rs"]
pub mod sockopt;
#[path = "../../../shim/src/stack.rs"]
pub mod stack;
#[path = "../../../shim/src/table.rs"]
pub mod table;

pub mod adapter;

pub use adapter::{PacketdrillInterface, packetdrill_interface_init};
