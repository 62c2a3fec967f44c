//! The attack suite (issue 18): crafted and hostile packets from the wire
//! against the stack over its TUN device, each in a private network
//! namespace, and where it settles what the right answer is, the same
//! attack against the Linux kernel as a stand-in (see `harness`).
//!
//! Each case asserts outcomes (the connection alive, bytes verified,
//! counters bounded) and prints its figures (counts, rates) for the
//! record; none asserts on timing. Needs root, like tests/kernel_tun.rs.

// Helpers shared by the cases; not every case uses every one.
#[allow(dead_code)]
mod harness;
#[allow(dead_code)]
mod pkt;

mod fragments;
mod garbage;
mod icmp;
mod injection;
mod options;
mod pressure;
mod synflood;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::thread;

use ustack::api::{Stack, TcpListener};

/// An echo server on the stack at `addr`: every accepted connection gets
/// back what it sends, until it closes.
pub fn stack_echo(stack: &Stack, addr: SocketAddr) {
    let l = TcpListener::bind(stack, addr).expect("bind");
    thread::spawn(move || {
        while let Ok((mut s, _)) = l.accept() {
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
}

/// The same on the kernel (the stand-in).
pub fn kernel_echo(addr: SocketAddr) {
    let l = std::net::TcpListener::bind(addr).expect("bind");
    thread::spawn(move || {
        while let Ok((mut s, _)) = l.accept() {
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
}
