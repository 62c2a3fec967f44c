//! The process's one stack: started lazily at the first AF_INET/AF_INET6
//! socket, kept alive at exit until closed connections are delivered, and
//! disowned in a forked child.
//!
//! Owns the `Runtime` and the start-up decision (stack, kernel fallback, or
//! failure). Must not touch: the fd table (this module sits below it: the
//! exit hook in `lib.rs` closes the table's sockets and then calls
//! [`linger_at_exit`]).

use std::io::Write;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ustack_core::config::{Config, Fallback};
use ustack_core::runtime::Runtime;

use crate::process::{self, EFORKED, as_shim, forked};
use crate::sock::Res;

/// The errno of socket() for AF_INET/AF_INET6 when the stack cannot start
/// and `USTACK_FALLBACK=fail` (the default): "permission denied", the usual
/// cause (no CAP_NET_ADMIN for the TUN device).
pub const ENOSTACK: i32 = libc::EACCES;
/// The errno of socket() for AF_INET/AF_INET6 when a `USTACK_*` variable
/// is malformed.
pub const EBADCONFIG: i32 = libc::EINVAL;

/// How the stack came out.
pub enum Stack {
    Up {
        rt: Runtime,
        linger: Duration,
    },
    /// The shared stack: a daemon serves this device (`shared.rs`).
    Shared,
    /// No stack: sockets become kernel sockets.
    Kernel,
    /// No stack: socket() fails with this errno.
    Fail(i32),
}

static STACK: OnceLock<Stack> = OnceLock::new();
/// The runtime, or the errno for a socket that cannot reach it.
pub fn rt() -> Res<&'static Runtime> {
    runtime().ok_or(if forked() { EFORKED } else { libc::EBADF })
}

/// The running stack, if it started and this process owns it.
pub fn runtime() -> Option<&'static Runtime> {
    match STACK.get()? {
        Stack::Up { rt, .. } if !forked() => Some(rt),
        _ => None,
    }
}

/// Makes `rt` the process's stack, in place of one started from the
/// `USTACK_*` variables at the first socket: the packetdrill adapter's
/// runtime, driven by a virtual clock over an in-memory link. No exit
/// linger is registered (the driver owns time). Gives `rt` back if the
/// process already has a stack.
pub fn install(rt: Runtime) -> Result<(), Runtime> {
    let mut slot = Some(rt);
    let _ = STACK.get_or_init(|| match slot.take() {
        Some(rt) => Stack::Up {
            rt,
            linger: Duration::ZERO,
        },
        None => Stack::Fail(ENOSTACK),
    });
    match slot {
        None => Ok(()),
        Some(rt) => Err(rt),
    }
}

/// The stack, starting it on first use.
pub fn get() -> &'static Stack {
    let s = STACK.get_or_init(|| as_shim(start));
    if forked() {
        // A child cannot drive the parent's stack; new sockets follow the
        // fallback as if the stack could not start.
        return match s {
            Stack::Up { .. } => &Stack::Fail(ENOSTACK),
            // The shared stack serves the child as it does the parent.
            other => other,
        };
    }
    s
}

/// Writes one line to stderr through the real write.
fn say(line: &str) {
    let mut buf = Vec::with_capacity(line.len() + 1);
    let _ = writeln!(buf, "{line}");
    // SAFETY: writes our own live buffer to fd 2.
    unsafe { crate::real::write(2, buf.as_ptr().cast(), buf.len()) };
}

fn start() -> Stack {
    let cfg = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            say(&format!(
                "ustack: {e}; fix the variable (AF_INET/AF_INET6 sockets fail with EINVAL until then)"
            ));
            return Stack::Fail(EBADCONFIG);
        }
    };
    ustack_core::logging::init(cfg.log);
    use crate::shared::NoDaemon;
    use ustack_core::config::Shared;
    match cfg.shared {
        Shared::Off => {}
        Shared::Auto => match crate::shared::attach(&cfg, false) {
            Ok(()) => {
                log::info!("attached to the stack daemon of {}", cfg.ifname);
                return Stack::Shared;
            }
            // The daemon holds the device: an in-process stack could not
            // have it either.
            Err(NoDaemon::Refused { why, fix }) => return fail(&cfg, &why, &fix),
            Err(NoDaemon::Absent(_)) => {}
        },
        Shared::On => {
            return match crate::shared::attach(&cfg, true) {
                Ok(()) => Stack::Shared,
                Err(NoDaemon::Refused { why, fix }) => fail(&cfg, &why, &fix),
                Err(NoDaemon::Absent(e)) => fail(
                    &cfg,
                    &e,
                    "check the device and the USTACK_* variables, or set USTACK_SHARED=off",
                ),
            };
        }
    }
    match Runtime::from_config(&cfg) {
        Ok(rt) => {
            // SAFETY: registering a plain extern "C" function with no state.
            unsafe { libc::pthread_atfork(None, None, Some(process::in_child)) };
            log::info!(
                "stack up on {} ({} / {})",
                cfg.ifname,
                cfg.addr_text(),
                cfg.addr6_text()
            );
            Stack::Up {
                rt,
                linger: cfg.linger,
            }
        }
        Err(e) => {
            let busy = e.raw_os_error() == Some(libc::EBUSY) || e.to_string().contains("busy");
            // SAFETY: geteuid has no preconditions.
            let root = unsafe { libc::geteuid() } == 0;
            let fix = if busy {
                "another program holds the device: share one stack between programs with USTACK_SHARED=on (or `scripts/ustack --shared`), or give this one its own device with USTACK_IFNAME"
            } else if root {
                "check that /dev/net/tun exists and the USTACK_* addresses are free"
            } else {
                "run as root (CAP_NET_ADMIN) or create the device first with `scripts/ustack --setup --user $USER`"
            };
            fail(&cfg, &e.to_string(), fix)
        }
    }
}

/// The stack cannot start: one line naming the cause and the fix, then the
/// fallback the configuration asks for.
fn fail(cfg: &Config, e: &str, fix: &str) -> Stack {
    match cfg.fallback {
        Fallback::Kernel => {
            say(&format!(
                "ustack: cannot start the userspace stack on {}: {e}; using kernel sockets (USTACK_FALLBACK=kernel); to fix, {fix}",
                cfg.ifname
            ));
            Stack::Kernel
        }
        Fallback::Fail => {
            say(&format!(
                "ustack: cannot start the userspace stack on {}: {e}; AF_INET/AF_INET6 sockets fail with EACCES; to fix, {fix}, or set USTACK_FALLBACK=kernel",
                cfg.ifname
            ));
            Stack::Fail(ENOSTACK)
        }
    }
}

/// At exit (the hook `lib.rs` registers at load): when this process runs
/// a stack, `close_all` closes every virtual socket, then the stack keeps
/// running until their data and FINs are acknowledged, for at most
/// `USTACK_LINGER`. Nothing in a forked child or without a stack.
pub fn linger_at_exit(close_all: impl FnOnce()) {
    if forked() {
        return;
    }
    let Some(Stack::Up { rt, linger }) = STACK.get() else {
        return;
    };
    close_all();
    let deadline = Instant::now() + *linger;
    while Instant::now() < deadline {
        if rt.with_core(|core, _| core.tcp().lingering()) == 0 {
            break;
        }
        rt.wake();
        std::thread::sleep(Duration::from_millis(2));
    }
    // Hand whatever is still queued (final ACKs and FINs, UDP
    // datagrams sent just before exit) to the device before the
    // process goes.
    rt.flush();
    // The DHCP lease goes back to the server (RFC 2131 4.4.6).
    rt.close_link();
}
