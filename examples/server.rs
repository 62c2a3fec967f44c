//! The ustack example server: starts the stack on the TUN device that the
//! `USTACK_*` variables describe and serves until SIGINT or SIGTERM.
//!
//! It answers ping (ICMP and ICMPv6 echo). Run it inside a network
//! namespace of your own, e.g. `sudo unshare -n`, then `ping 10.77.0.2`.

use std::process::ExitCode;

use ustack::config::Config;
use ustack::runtime::Runtime;
use ustack::sys::TerminationSignals;

fn main() -> ExitCode {
    let cfg = match Config::from_env() {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    ustack::logging::init(cfg.log);
    // Blocked before the runtime thread starts, so only `wait` sees them.
    let signals = match TerminationSignals::block() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ustack: cannot block termination signals: {e}");
            return ExitCode::from(1);
        }
    };
    let runtime = match Runtime::from_config(&cfg) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ustack: {e}");
            return ExitCode::from(1);
        }
    };
    log::info!(
        "serving on {} and {} via {} (mtu {}): ping",
        cfg.addr,
        cfg.addr6,
        cfg.ifname,
        cfg.mtu
    );
    let sig = signals.wait();
    log::info!("stopping on signal {sig:?}");
    let counters = runtime.with_core(|core, _| core.counters());
    runtime.shutdown();
    log::info!(
        "ip in {} out {}; echo replies {}; malformed {}",
        counters.ip_in,
        counters.ip_out,
        counters.echo_replies,
        counters.ip_malformed
    );
    ExitCode::SUCCESS
}
