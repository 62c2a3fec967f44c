//! The caller's memory as the hooks receive it: raw pointers and lengths
//! turned into slices (`EFAULT` for null), iovec arrays (`EINVAL` past
//! 1,024), gather and scatter across them, and byte counts as `ssize_t`.
//!
//! A leaf: owns nothing, depends on nothing in the shim.

use std::ffi::c_void;

use libc::{iovec, size_t, ssize_t};

use crate::sock::Res;

pub(crate) fn len_ok(n: usize) -> ssize_t {
    ssize_t::try_from(n).unwrap_or(ssize_t::MAX)
}

/// # Safety
/// `p` must be valid for `n` bytes (or `n` zero).
pub(crate) unsafe fn slice<'a>(p: *const c_void, n: size_t) -> Res<&'a [u8]> {
    if n == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(libc::EFAULT);
    }
    // SAFETY: the caller promises `n` readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(p.cast(), n) })
}

/// # Safety
/// `p` must be valid for `n` writable bytes (or `n` zero).
pub(crate) unsafe fn slice_mut<'a>(p: *mut c_void, n: size_t) -> Res<&'a mut [u8]> {
    if n == 0 {
        return Ok(&mut []);
    }
    if p.is_null() {
        return Err(libc::EFAULT);
    }
    // SAFETY: the caller promises `n` writable bytes.
    Ok(unsafe { std::slice::from_raw_parts_mut(p.cast(), n) })
}

/// # Safety
/// `iov` must point to `n` valid iovecs (or `n` zero).
pub(crate) unsafe fn iovecs<'a>(iov: *const iovec, n: usize) -> Res<&'a [iovec]> {
    if n == 0 {
        return Ok(&[]);
    }
    if iov.is_null() || n > 1024 {
        return Err(if iov.is_null() {
            libc::EFAULT
        } else {
            libc::EINVAL
        });
    }
    // SAFETY: the caller promises `n` iovecs.
    Ok(unsafe { std::slice::from_raw_parts(iov, n) })
}

/// Concatenates what the iovecs point at.
///
/// # Safety
/// Each iovec must describe readable memory.
pub(crate) unsafe fn gather(iov: &[iovec]) -> Res<Vec<u8>> {
    let mut out = Vec::new();
    for v in iov {
        // SAFETY: per the caller.
        out.extend_from_slice(unsafe { slice(v.iov_base, v.iov_len)? });
    }
    Ok(out)
}

/// Copies `data` out across the iovecs.
///
/// # Safety
/// Each iovec must describe writable memory.
pub(crate) unsafe fn scatter(iov: &[iovec], mut data: &[u8]) -> Res<()> {
    for v in iov {
        if data.is_empty() {
            break;
        }
        let n = v.iov_len.min(data.len());
        // SAFETY: per the caller.
        unsafe { slice_mut(v.iov_base, n)? }.copy_from_slice(&data[..n]);
        data = &data[n..];
    }
    Ok(())
}

pub(crate) fn iov_total(iov: &[iovec]) -> Res<usize> {
    iov.iter()
        .try_fold(0usize, |a, v| a.checked_add(v.iov_len))
        .filter(|t| *t <= isize::MAX as usize)
        .ok_or(libc::EINVAL)
}
