//! The one loop that makes a socket operation blocking, shared by the
//! library's handles (`crate::api`) and the LD_PRELOAD shim.
//!
//! The rule it keeps: whoever sees `EAGAIN` is registered for the socket's
//! next change under the same lock that saw it, and its waker is reset
//! before each try, so no change between the try and the sleep is lost.
//! Owns nothing; how to sleep (and so timeouts and signals) is the
//! caller's, given as `wait`.

use std::io;
use std::sync::Arc;

use super::{Runtime, ThreadWaker};
use crate::stack::{Core, SocketHandle};
use crate::time::Instant;

fn would_block(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EAGAIN)
}

impl Runtime {
    /// Runs `op` on socket `handle` until it stops saying `EAGAIN`. Without
    /// a `waker` (non-blocking) once. Otherwise after each `EAGAIN` the
    /// thread is registered with the socket and `wait` sleeps on the
    /// waker: its error (a timeout's `EAGAIN`, a signal's `EINTR`) ends
    /// the call. What the operation queued is sent from this thread.
    pub fn block_on<T>(
        &self,
        handle: SocketHandle,
        waker: Option<&Arc<ThreadWaker>>,
        mut op: impl FnMut(&mut Core, Instant) -> io::Result<T>,
        mut wait: impl FnMut(&ThreadWaker) -> io::Result<()>,
    ) -> io::Result<T> {
        loop {
            if let Some(w) = waker {
                w.reset();
            }
            let r = self.with_state(|st, now| {
                let r = op(&mut st.core, now);
                if let Err(e) = &r
                    && would_block(e)
                {
                    // The caller saw "not ready": the next change from this
                    // state must be reported, to a blocked thread and to an
                    // event loop's readiness fd alike (the edge-triggered
                    // contract: work until EAGAIN, then wait).
                    st.core.note_waiting(handle);
                    if let Some(w) = waker {
                        st.waiters.register(handle, w);
                    }
                }
                r
            });
            // The operation may have queued output or changed a window:
            // send it from this thread rather than wait for the runtime's.
            self.transmit_now();
            let Some(w) = waker else { return r };
            match r {
                Err(e) if would_block(&e) => wait(w)?,
                other => return other,
            }
        }
    }
}
