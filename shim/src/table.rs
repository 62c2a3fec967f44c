//! The fd table: which fd numbers are virtual sockets (or epoll sets with
//! virtual members), and what they are.
//!
//! Owns the mapping only. A virtual socket's fd number is a real kernel
//! eventfd, so numbers never collide with the program's files; the table
//! maps it to an `Arc` shared by every dup of it. A lookup first reads one
//! bit from a lock-free bitmap, so a call on an ordinary fd costs one
//! atomic load; only marked fds take the read lock.
//!
//! Must not touch: the stack. Dropping the last `Arc` of a socket closes it
//! in the core (see `sock.rs`), so entries are always dropped after the
//! table lock is released.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};

use crate::sock::VSock;

/// fds below this have a bit in the bitmap; larger ones always take the
/// lock (virtual fds are allocated lowest-first, so they are rarely there).
const BITMAP_FDS: usize = 1 << 20;

static BITS: [AtomicU64; BITMAP_FDS / 64] = [const { AtomicU64::new(0) }; BITMAP_FDS / 64];
static MAP: RwLock<Vec<Option<Entry>>> = RwLock::new(Vec::new());
/// fds the shim opened for itself (the TUN device, eventfds): the program
/// cannot close or overwrite them.
static INTERNAL: [AtomicU64; BITMAP_FDS / 64] = [const { AtomicU64::new(0) }; BITMAP_FDS / 64];

/// Marks `fd` as the shim's own.
pub fn mark_internal(fd: i32) {
    if let Some((w, m)) = bit(fd) {
        INTERNAL[w].fetch_or(m, Ordering::Release);
    }
}

/// The shim closed its own `fd`.
pub fn unmark_internal(fd: i32) {
    if let Some((w, m)) = bit(fd) {
        INTERNAL[w].fetch_and(!m, Ordering::Release);
    }
}

/// Whether `fd` is the shim's own.
#[inline]
pub fn is_internal(fd: i32) -> bool {
    bit(fd).is_some_and(|(w, m)| INTERNAL[w].load(Ordering::Acquire) & m != 0)
}

/// The shim's own fds in `first..=last`, ascending.
pub fn internal_in(first: u32, last: u32) -> Vec<u32> {
    let end = (last as usize).min(BITMAP_FDS - 1);
    let mut out = Vec::new();
    let mut fd = first as usize;
    while fd <= end {
        let word = INTERNAL[fd / 64].load(Ordering::Acquire) >> (fd % 64);
        if word == 0 {
            fd = (fd / 64 + 1) * 64;
            continue;
        }
        let at = fd + word.trailing_zeros() as usize;
        if at <= end {
            out.push(at as u32);
        }
        fd = at + 1;
    }
    out
}

/// What a marked fd is.
#[derive(Clone)]
pub enum Entry {
    Sock(Arc<VSock>),
    Epoll(Arc<EpollSet>),
    /// A socket of the shared stack: the fd is a real AF_UNIX socket the
    /// kernel handles for most calls (see `shared.rs`).
    Remote(Arc<crate::sock::Remote>),
}

/// One virtual socket registered in an epoll set.
pub struct EpollReg {
    pub sock: Weak<VSock>,
    pub events: u32,
    pub data: u64,
    /// EPOLLONESHOT fired and no EPOLL_CTL_MOD re-armed it yet.
    pub disarmed: bool,
    /// Edge-triggered: the readiness last reported, and the socket's I/O
    /// generation when it was (any I/O since resets the edge).
    pub last: u32,
    pub last_gen: u32,
}

/// The virtual members of a real epoll fd; its kernel members live in the
/// kernel's epoll.
#[derive(Default)]
pub struct EpollSet {
    pub regs: Mutex<HashMap<i32, EpollReg>>,
}

#[inline]
fn bit(fd: i32) -> Option<(usize, u64)> {
    let fd = usize::try_from(fd).ok()?;
    (fd < BITMAP_FDS).then(|| (fd / 64, 1u64 << (fd % 64)))
}

fn marked(fd: i32) -> bool {
    match bit(fd) {
        Some((i, m)) => BITS[i].load(Ordering::Acquire) & m != 0,
        None => fd >= 0,
    }
}

fn map_read() -> std::sync::RwLockReadGuard<'static, Vec<Option<Entry>>> {
    MAP.read().unwrap_or_else(|p| p.into_inner())
}

fn map_write() -> std::sync::RwLockWriteGuard<'static, Vec<Option<Entry>>> {
    MAP.write().unwrap_or_else(|p| p.into_inner())
}

/// Whether `fd` is certainly not virtual: it has a bit in the bitmap and
/// the bit is clear. Every pass-through hook asks this first, before any
/// other work, so it is kept to a compare, a load and a bit test.
#[inline(always)]
pub fn plain(fd: i32) -> bool {
    // A negative fd wraps to a huge index and answers false: the full hook
    // path handles it.
    let i = fd as u32 as usize;
    i < BITMAP_FDS && BITS[i / 64].load(Ordering::Acquire) & (1u64 << (i % 64)) == 0
}

/// Whether `fd` may be virtual (its bit is set); false is definite.
pub fn maybe_virtual(fd: i32) -> bool {
    marked(fd)
}

/// The entry at `fd`, if it is virtual.
pub fn get(fd: i32) -> Option<Entry> {
    if !marked(fd) {
        return None;
    }
    let map = map_read();
    map.get(usize::try_from(fd).ok()?)?.clone()
}

/// The virtual socket at `fd`.
pub fn sock(fd: i32) -> Option<Arc<VSock>> {
    match get(fd)? {
        Entry::Sock(s) => Some(s),
        _ => None,
    }
}

/// The shared-stack socket at `fd`.
pub fn remote(fd: i32) -> Option<Arc<crate::sock::Remote>> {
    match get(fd)? {
        Entry::Remote(r) => Some(r),
        _ => None,
    }
}

/// Maps `fd` to `entry`, returning what was there (drop it after this
/// returns).
#[must_use]
pub fn insert(fd: i32, entry: Entry) -> Option<Entry> {
    let Ok(i) = usize::try_from(fd) else {
        return None;
    };
    let mut map = map_write();
    if map.len() <= i {
        map.resize(i + 1, None);
    }
    let old = map[i].replace(entry);
    if let Some((w, m)) = bit(fd) {
        BITS[w].fetch_or(m, Ordering::Release);
    }
    old
}

/// Unmaps `fd` (it was closed, or a new file took its number).
#[must_use]
pub fn remove(fd: i32) -> Option<Entry> {
    if !marked(fd) {
        return None;
    }
    let i = usize::try_from(fd).ok()?;
    let mut map = map_write();
    if let Some((w, m)) = bit(fd) {
        BITS[w].fetch_and(!m, Ordering::Release);
    }
    map.get_mut(i)?.take()
}

/// Unmaps every fd in `first..=last`, returning the entries.
pub fn remove_range(first: u32, last: u32) -> Vec<Entry> {
    let mut map = map_write();
    let end = (last as usize).min(map.len().saturating_sub(1));
    let mut out = Vec::new();
    for i in first as usize..=end {
        if let Some(e) = map.get_mut(i).and_then(Option::take) {
            out.push(e);
        }
        if let Ok(fd) = i32::try_from(i)
            && let Some((w, m)) = bit(fd)
        {
            BITS[w].fetch_and(!m, Ordering::Release);
        }
    }
    out
}

/// Unmaps and returns every virtual socket (at process exit).
pub fn take_all() -> Vec<Entry> {
    remove_range(0, u32::MAX)
}

/// Drops a stale mapping at a number the kernel just handed out again.
pub fn forget(fd: i32) {
    drop(remove(fd));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoll() -> Entry {
        Entry::Epoll(Arc::new(EpollSet::default()))
    }

    #[test]
    fn internal_fds_are_found_in_ranges() {
        for fd in [930, 931, 1000, 1100] {
            mark_internal(fd);
        }
        assert!(is_internal(930) && !is_internal(932));
        assert_eq!(internal_in(925, 1099), vec![930, 931, 1000]);
        assert_eq!(internal_in(1100, u32::MAX), vec![1100]);
        for fd in [930, 931, 1000, 1100] {
            unmark_internal(fd);
        }
        assert!(internal_in(0, u32::MAX).is_empty());
    }

    #[test]
    fn plain_is_false_exactly_where_the_full_lookup_may_find_an_entry() {
        assert!(plain(3) && plain(0));
        assert!(!plain(-1), "negative fds take the full path");
        assert!(
            !plain(BITMAP_FDS as i32),
            "fds beyond the bitmap take the full path"
        );
        assert!(insert(940, epoll()).is_none());
        assert!(!plain(940) && plain(941) && plain(939));
        forget(940);
        assert!(plain(940));
    }

    #[test]
    fn unmarked_fds_are_not_virtual() {
        assert!(get(3).is_none());
        assert!(get(-1).is_none());
        assert!(remove(-5).is_none());
    }

    #[test]
    fn insert_get_remove_round_trip_and_dups_share_the_entry() {
        let e = epoll();
        let Entry::Epoll(set) = &e else {
            unreachable!()
        };
        let set = Arc::clone(set);
        assert!(insert(900, e.clone()).is_none());
        assert!(insert(901, e).is_none());
        assert_eq!(Arc::strong_count(&set), 3);
        assert!(matches!(get(900), Some(Entry::Epoll(s)) if Arc::ptr_eq(&s, &set)));
        drop(remove(900));
        assert!(get(900).is_none());
        assert!(get(901).is_some(), "the dup keeps its mapping");
        drop(remove(901));
        assert_eq!(Arc::strong_count(&set), 1);
    }

    #[test]
    fn insert_over_an_old_mapping_returns_it() {
        assert!(insert(910, epoll()).is_none());
        assert!(insert(910, epoll()).is_some());
        forget(910);
        assert!(get(910).is_none());
    }

    #[test]
    fn fds_beyond_the_bitmap_still_map() {
        let fd = BITMAP_FDS as i32 + 7;
        assert!(insert(fd, epoll()).is_none());
        assert!(get(fd).is_some());
        forget(fd);
        assert!(get(fd).is_none());
    }

    #[test]
    fn remove_range_unmaps_only_the_range() {
        for fd in 920..925 {
            assert!(insert(fd, epoll()).is_none());
        }
        assert_eq!(remove_range(921, 923).len(), 3);
        assert!(get(920).is_some() && get(924).is_some());
        assert!(get(922).is_none());
        forget(920);
        forget(924);
    }
}
