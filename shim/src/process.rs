//! What this process and thread are, as the hooks need to know before
//! anything else: a fork child of the process that owns the in-process
//! stack ([`forked`]), and a thread inside the shim's own code whose calls
//! must reach libc unhooked ([`bypass`], [`as_shim`]).
//!
//! A leaf: depends on nothing in the shim, so every module may ask it.
//! Owns the fork flag and the per-thread bypass flag only.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ustack_core::runtime::ThreadWaker;

/// The errno of every call but close on a virtual socket inherited across
/// fork: the stack lives in the parent.
pub const EFORKED: i32 = libc::EBADFD;

static FORKED: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// Set while the shim itself runs code that may call hooked functions
    /// (starting the stack): those calls go straight to libc.
    static BYPASS: Cell<bool> = const { Cell::new(false) };
}

/// Whether hooks on this thread must pass straight through.
pub fn bypass() -> bool {
    BYPASS.with(Cell::get)
}

/// Whether this process is a fork child of the one that owns the stack.
pub fn forked() -> bool {
    FORKED.load(Ordering::Relaxed)
}

/// The pthread_atfork child handler the in-process stack registers.
pub extern "C" fn in_child() {
    FORKED.store(true, Ordering::Relaxed);
}

/// Runs `f` with hooks bypassed on this thread, so the fds it opens are
/// marked as the shim's own.
pub fn as_shim<R>(f: impl FnOnce() -> R) -> R {
    let was = BYPASS.with(|b| b.replace(true));
    let r = f();
    BYPASS.with(|b| b.set(was));
    r
}

/// This thread's waker, its eventfd marked as the shim's own.
pub fn thread_waker() -> std::io::Result<Arc<ThreadWaker>> {
    as_shim(ThreadWaker::current)
}
