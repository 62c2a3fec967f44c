//! Whether a program's end of a pair still exists, asked of the kernel's
//! socket diagnostics (NETLINK_SOCK_DIAG, unix_diag by inode).
//!
//! Owns one netlink socket. Needed because the daemon's end reports the
//! same hang-up when the program closed its end as when the program and
//! the daemon each shut one direction down; only a closed socket is gone
//! from the kernel's table.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLMSG_ERROR: u16 = 2;

pub(super) struct Diag {
    nl: OwnedFd,
    seq: u32,
}

impl Diag {
    pub fn open() -> io::Result<Diag> {
        // SAFETY: socket takes no pointers.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                libc::NETLINK_SOCK_DIAG,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: just made, ours alone.
        Ok(Diag {
            nl: unsafe { OwnedFd::from_raw_fd(fd) },
            seq: 0,
        })
    }

    /// Whether the Unix socket with inode `ino` exists. Errors other than
    /// "no such socket" are errors (the caller decides).
    pub fn alive(&mut self, ino: u64) -> io::Result<bool> {
        let ino = u32::try_from(ino).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        self.seq = self.seq.wrapping_add(1);
        let mut req = [0u8; 40];
        req[0..4].copy_from_slice(&40u32.to_ne_bytes());
        req[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        req[6..8].copy_from_slice(&(libc::NLM_F_REQUEST as u16).to_ne_bytes());
        req[8..12].copy_from_slice(&self.seq.to_ne_bytes());
        // struct unix_diag_req: family, protocol, pad, states, ino, show,
        // cookie[2] (no cookie: all ones).
        req[16] = libc::AF_UNIX as u8;
        req[20..24].copy_from_slice(&u32::MAX.to_ne_bytes());
        req[24..28].copy_from_slice(&ino.to_ne_bytes());
        req[32..40].fill(0xff);
        // SAFETY: sends our live buffer.
        let n = unsafe { libc::send(self.nl.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = [0u8; 512];
        loop {
            // SAFETY: receives into our live buffer.
            let n =
                unsafe { libc::recv(self.nl.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let n = n as usize;
            if n < 20 {
                return Err(io::Error::from_raw_os_error(libc::EPROTO));
            }
            let seq = u32::from_ne_bytes([buf[8], buf[9], buf[10], buf[11]]);
            if seq != self.seq {
                continue; // an answer to an earlier, abandoned question
            }
            let ty = u16::from_ne_bytes([buf[4], buf[5]]);
            if ty == NLMSG_ERROR {
                let err = -i32::from_ne_bytes([buf[16], buf[17], buf[18], buf[19]]);
                return match err {
                    0 => Ok(true),
                    libc::ENOENT => Ok(false),
                    e => Err(io::Error::from_raw_os_error(e)),
                };
            }
            return Ok(ty == SOCK_DIAG_BY_FAMILY);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_is_alive_until_closed() {
        let mut d = Diag::open().unwrap();
        let (a, b) = super::super::pair(libc::SOCK_STREAM).unwrap();
        let ino = super::super::inode(b.as_raw_fd()).unwrap();
        assert!(d.alive(ino).unwrap());
        drop(b);
        assert!(!d.alive(ino).unwrap());
        drop(a);
    }
}
