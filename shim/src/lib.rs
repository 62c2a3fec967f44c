//! `libustack.so`: the LD_PRELOAD shim.
//!
//! Not yet implemented beyond linking against the library: see issue 5.
#[allow(unused_imports)]
use ustack_core as _;
