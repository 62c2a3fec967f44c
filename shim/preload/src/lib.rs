//! `libustack.so`: the shim's hooks (the `ustack-shim` crate, whose
//! `#[no_mangle]` functions a cdylib exports) and its load-time hook.
//!
//! The hooks live in a library crate so that the packetdrill adapter links
//! the same code. Here is what only programs under `LD_PRELOAD` get: the
//! `.init_array` entry (load-time hook), [`syscall`] (socket calls made by
//! number) and [`resolve`] (name lookups over the stack), which under
//! packetdrill would take the tool's own calls.

pub use ustack_shim::*;

pub mod resolve;
pub mod syscall;

#[used]
#[unsafe(link_section = ".init_array")]
static AT_LOAD: extern "C" fn() = ustack_shim::at_load;
