//! `struct tcp_info` as Linux lays it out, from the core's [`TcpInfo`]:
//! the one encoder for the in-process shim and the daemon.
//!
//! Owns the field mapping only (state, ca_state, options, window scales,
//! rto, rtt, rttvar, mss, cwnd in segments, the outstanding counts,
//! retransmits, last data and ACK received, busy and rwnd-limited time);
//! every other field reads zero.

use std::time::Duration;

use crate::Instant;
use crate::stack::TcpInfo;
use crate::tcp::State;

fn linux_state(s: State) -> u8 {
    match s {
        State::Established => 1,
        State::SynSent => 2,
        State::SynReceived => 3,
        State::FinWait1 => 4,
        State::FinWait2 => 5,
        State::TimeWait => 6,
        State::Closed => 7,
        State::CloseWait => 8,
        State::LastAck => 9,
        State::Listen => 10,
        State::Closing => 11,
    }
}

/// TCP_INFO's bytes for a connection (`info`), or for a socket without
/// one (a listener: LISTEN; otherwise CLOSE). `now` dates the "last
/// received" fields.
pub fn linux_tcp_info(info: Option<&TcpInfo>, listening: bool, now: Instant) -> Vec<u8> {
    // SAFETY: tcp_info is plain integers; all-zero is valid.
    let mut t: libc::tcp_info = unsafe { std::mem::zeroed() };
    t.tcpi_state = if listening { 10 } else { 7 };
    if let Some(i) = info {
        t.tcpi_state = linux_state(i.state);
        t.tcpi_snd_mss = i.mss;
        t.tcpi_rcv_mss = i.mss;
        t.tcpi_advmss = i.mss;
        t.tcpi_snd_cwnd = i.cwnd / i.mss.max(1);
        let us = |d: Duration| u32::try_from(d.as_micros()).unwrap_or(u32::MAX);
        t.tcpi_rto = us(i.rto);
        if let Some(srtt) = i.srtt {
            t.tcpi_rtt = us(srtt);
        }
        if let Some(rttvar) = i.rttvar {
            t.tcpi_rttvar = us(rttvar);
        }
        t.tcpi_total_retrans = u32::try_from(i.counters.retransmits).unwrap_or(u32::MAX);
        t.tcpi_retransmits = u8::try_from(i.counters.rto_expiries).unwrap_or(u8::MAX);
        t.tcpi_ca_state = i.ca_state.linux();
        let o = i.options;
        // TCPI_OPT_TIMESTAMPS 1, _SACK 2, _WSCALE 4, _ECN 8.
        t.tcpi_options = u8::from(o.timestamps)
            | u8::from(o.sack) << 1
            | u8::from(o.window_scale.is_some()) << 2
            | u8::from(o.ecn) << 3;
        if let Some((snd, rcv)) = o.window_scale {
            // Two 4-bit fields, tcpi_snd_wscale in the low one.
            t.tcpi_snd_rcv_wscale = (snd & 0xf) | (rcv & 0xf) << 4;
        }
        t.tcpi_unacked = i.outstanding.unacked;
        t.tcpi_sacked = i.outstanding.sacked;
        t.tcpi_lost = i.outstanding.lost;
        t.tcpi_retrans = i.outstanding.retrans;
        t.tcpi_reordering = i.outstanding.reordering;
        let ms = |at: Instant| {
            u32::try_from(now.saturating_duration_since(at).as_millis()).unwrap_or(u32::MAX)
        };
        if let Some(at) = i.last_data_in {
            t.tcpi_last_data_recv = ms(at);
        }
        t.tcpi_last_ack_recv = ms(i.last_ack_in);
        let us64 = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        t.tcpi_busy_time = us64(i.chrono.busy_time(now));
        t.tcpi_rwnd_limited = us64(i.chrono.rwnd_limited(now));
    }
    // SAFETY: reading the bytes of a plain-data struct we own.
    let b = unsafe {
        std::slice::from_raw_parts(
            (&t as *const libc::tcp_info).cast::<u8>(),
            size_of::<libc::tcp_info>(),
        )
    };
    b.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_states_use_linux_numbers() {
        // include/net/tcp_states.h
        assert_eq!(linux_state(State::Established), 1);
        assert_eq!(linux_state(State::Listen), 10);
        assert_eq!(linux_state(State::Closing), 11);
        assert_eq!(linux_state(State::TimeWait), 6);
    }

    #[test]
    fn a_listener_without_a_connection_reads_listen() {
        let b = linux_tcp_info(None, true, Instant::ZERO);
        assert_eq!(b.len(), size_of::<libc::tcp_info>());
        assert_eq!(b[0], 10);
        assert_eq!(linux_tcp_info(None, false, Instant::ZERO)[0], 7);
    }
}
