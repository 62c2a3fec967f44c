//! `ustackd`: the stack daemon. Owns one device and its core and serves the
//! sockets of every program under the shim that names that device (see
//! `ustack::ipc`). Configured by the same `USTACK_*` variables.
//!
//! The shim starts it on first use (`USTACK_SHARED=on`), and it ends when
//! its last program socket and control connection are gone, nothing
//! lingers, and a grace period has passed; `--persistent` (the launcher's
//! `scripts/ustack --daemon`) keeps it until SIGTERM or SIGINT, which
//! stop it once closed connections have delivered their data (at most
//! `USTACK_LINGER`).
//!
//! Options: `--detach` (leave the spawning program: fork once more),
//! `--persistent`, `--grace-ms N` (default 2000), `--group GID`
//! (admit that group besides the daemon's user and root), `--ready-fd N`
//! (write `ok` or the error there once serving), `--status` (print a
//! running daemon's counts and exit).
//!
//! Exit status: 0 when it stopped normally, 1 on an error (written to the
//! ready fd when there is one, else printed), 3 when a daemon already
//! serves the device.

use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};
use std::time::Duration;

use ustack::config::Config;
use ustack::ipc::server::{Policy, Server, bind_control};
use ustack::runtime::Runtime;

struct Args {
    persistent: bool,
    grace: Duration,
    gid: Option<u32>,
    ready: Option<OwnedFd>,
    status: bool,
    detach: bool,
}

fn usage(msg: &str) -> ! {
    eprintln!(
        "ustackd: {msg}\nusage: ustackd [--persistent] [--grace-ms N] [--group GID] [--ready-fd N] | --status"
    );
    std::process::exit(1);
}

fn parse_args() -> Args {
    let mut a = Args {
        persistent: false,
        grace: Duration::from_secs(2),
        gid: None,
        ready: None,
        status: false,
        detach: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut num = |what: &str| -> u64 {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| usage(&format!("{what} needs a whole number")))
        };
        match arg.as_str() {
            "--persistent" => a.persistent = true,
            "--status" => a.status = true,
            "--detach" => a.detach = true,
            "--grace-ms" => a.grace = Duration::from_millis(num("--grace-ms")),
            "--group" => a.gid = Some(u32::try_from(num("--group")).unwrap_or(u32::MAX)),
            "--ready-fd" => {
                let fd = i32::try_from(num("--ready-fd")).unwrap_or(-1);
                // SAFETY: F_GETFD only checks that the fd is open.
                if fd < 3 || unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
                    usage("--ready-fd names no open fd");
                }
                // SAFETY: the spawner handed us this fd to own.
                a.ready = Some(unsafe { OwnedFd::from_raw_fd(fd) });
            }
            other => usage(&format!("unknown option {other}")),
        }
    }
    a
}

fn tell(ready: &mut Option<OwnedFd>, line: &str) {
    if let Some(fd) = ready.take() {
        let mut f = std::fs::File::from(fd);
        let _ = writeln!(f, "{line}");
    }
}

/// A start-up failure: to the ready fd when a spawner waits on one (it
/// prints the one line the user sees), else to stderr; then exit 1.
fn fail(ready: &mut Option<OwnedFd>, cause: &str) -> ! {
    if ready.is_some() {
        tell(ready, &format!("error: {cause}"));
    } else {
        eprintln!("ustackd: {cause}");
    }
    std::process::exit(1);
}

fn status(cfg: &Config) -> i32 {
    match ustack::ipc::client_status(&cfg.ifname) {
        Ok(text) => {
            print!("{text}");
            0
        }
        Err(e) => {
            eprintln!("ustackd: no daemon serves {}: {e}", cfg.ifname);
            1
        }
    }
}

/// The daemon holds one fd per socket of every program it serves, but
/// it starts with the limit of the program that spawned it (a program
/// under `ulimit -n 64` would leave the stack 64 fds for everyone). Raise
/// the soft limit to the hard one, and the hard one to [`FD_LIMIT`] where
/// the daemon may (CAP_SYS_RESOURCE, as root); a failure keeps what it
/// has.
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into our live rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return;
    }
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<libc::rlim_t>().ok())
        .unwrap_or(FD_LIMIT);
    let want = lim.rlim_max.max(FD_LIMIT.min(nr_open));
    for max in [want, lim.rlim_max] {
        let new = libc::rlimit {
            rlim_cur: max,
            rlim_max: max,
        };
        // SAFETY: setrlimit reads our live rlimit.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) } == 0 {
            log::debug!("fd limit {} (was {})", max, lim.rlim_cur);
            return;
        }
    }
}

/// The fd limit the daemon asks for: room for this many sockets across
/// all its programs.
const FD_LIMIT: libc::rlim_t = 1 << 20;

/// Leaves the spawner: the first process exits at once (its parent reaps
/// it), the second, no child of the program, runs on. Before any thread.
fn detach() {
    // SAFETY: fork in a single-threaded process; the parent only exits.
    match unsafe { libc::fork() } {
        0 => {}
        -1 => {}
        // SAFETY: _exit skips atexit handlers meant for the daemon.
        _ => unsafe { libc::_exit(0) },
    }
}

fn main() {
    let mut args = parse_args();
    if args.detach {
        detach();
    }
    let cfg = match Config::from_env() {
        Ok(c) => c,
        Err(e) => fail(&mut args.ready, &e.to_string()),
    };
    ustack::logging::init(cfg.log);
    if args.status {
        std::process::exit(status(&cfg));
    }
    raise_fd_limit();
    let listener = match bind_control(&cfg.ifname) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            tell(&mut args.ready, "running");
            std::process::exit(3);
        }
        Err(e) => fail(&mut args.ready, &format!("cannot listen for programs: {e}")),
    };
    let signals = match ustack::sys::TerminationSignals::block() {
        Ok(s) => s,
        Err(e) => fail(&mut args.ready, &format!("cannot block signals: {e}")),
    };
    let policy = Policy {
        // SAFETY: geteuid has no preconditions.
        uid: unsafe { libc::geteuid() },
        gid: args.gid,
        persistent: args.persistent,
        grace: args.grace,
    };
    let rt = Server::new(listener, policy)
        .and_then(|server| Runtime::from_config_with(&cfg, Some(Box::new(server))));
    let rt = match rt {
        Ok(rt) => rt,
        // The spawner names the device itself.
        Err(e) if args.ready.is_some() => fail(&mut args.ready, &e.to_string()),
        Err(e) => fail(
            &mut args.ready,
            &format!("cannot start the userspace stack on {}: {e}", cfg.ifname),
        ),
    };
    log::info!(
        "serving {} ({} / {}) as pid {}",
        cfg.ifname,
        cfg.addr_text(),
        cfg.addr6_text(),
        std::process::id()
    );
    tell(&mut args.ready, "ok");
    let stopper = rt.stopper();
    let linger = cfg.linger;
    // The signal thread ends with the process.
    let _ = std::thread::Builder::new()
        .name("ustackd-signals".into())
        .spawn(move || {
            if let Ok(sig) = signals.wait() {
                log::info!("signal {sig}: stopping once closed connections are delivered");
                stopper.stop_after(linger);
            }
        });
    rt.join();
}
