//! glibc's resolver entry points, answered by [`super::lookup`] when the
//! program's sockets are on the stack (`USTACK_DNS=stack`, the default) and
//! by libc's own otherwise: getaddrinfo, gethostbyname, gethostbyname2 and
//! their `_r` forms, res_query, res_search, res_querydomain, res_send and
//! their `res_n*` and `__res_*` names. Numeric hosts and the service part
//! of getaddrinfo are libc's (asked with AI_NUMERICHOST, which never
//! queries), so the result lists are libc's own and its freeaddrinfo
//! frees them. Reverse lookups (getnameinfo, gethostbyaddr) stay libc's:
//! a documented limit.
//!
//! Owns: the C calling conventions of these calls (buffers, h_errno, the
//! EAI_ codes). Must not touch: the lookup itself (`super`).

use std::ffi::{CStr, CString, c_char};
use std::net::IpAddr;
use std::panic::catch_unwind;
use std::sync::{Mutex, OnceLock};

use libc::{addrinfo, c_int, c_void, size_t};

use super::{Families, Found, Miss};
use ustack_shim::process;
use ustack_shim::stack::{self, Stack};

/// glibc's values (netdb.h), which the libc crate lacks for Linux.
const EAI_NONAME: c_int = -2;
const EAI_AGAIN: c_int = -3;
const EAI_FAIL: c_int = -4;
const EAI_NODATA: c_int = -5;
const EAI_FAMILY: c_int = -6;
const EAI_MEMORY: c_int = -10;
const HOST_NOT_FOUND: c_int = 1;
const TRY_AGAIN: c_int = 2;
const NO_RECOVERY: c_int = 3;
const NO_DATA: c_int = 4;

/// `struct hostent` (netdb.h).
#[repr(C)]
pub struct Hostent {
    h_name: *mut c_char,
    h_aliases: *mut *mut c_char,
    h_addrtype: c_int,
    h_length: c_int,
    h_addr_list: *mut *mut c_char,
}

unsafe extern "C" {
    fn __h_errno_location() -> *mut c_int;
}

fn set_h_errno(v: c_int) {
    // SAFETY: glibc's thread-local h_errno.
    unsafe { *__h_errno_location() = v };
}

/// Whether the shim answers lookups rather than libc: the stack serves
/// this process's sockets (or could not start, and sockets fail: then
/// lookups are refused, see [`checked`], rather than leak to libc) and
/// `USTACK_DNS` is not `kernel`. Never from inside the shim.
fn active() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    if process::bypass() {
        return false;
    }
    let on = *ON
        .get_or_init(|| ustack_core::config::Config::from_env().map_or(true, |c| c.dns_over_stack));
    on && !matches!(stack::get(), Stack::Kernel)
}

/// `f`'s lookup, unless the stack failed to start (so every socket of
/// the program fails too): then `Refused`.
fn checked<T>(f: impl FnOnce() -> Result<T, Miss>) -> Result<T, Miss> {
    if let Stack::Fail(e) = stack::get() {
        log::debug!("lookup refused: the stack is not running (errno {e})");
        return Err(Miss::Refused);
    }
    catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(Err(Miss::TryAgain))
}

/// The libc function after ours, by name (NUL-terminated).
fn next<F: Copy>(slot: &OnceLock<usize>, name: &'static str) -> Option<F> {
    let p = *slot.get_or_init(|| ustack_shim::real::lookup(name) as usize);
    // SAFETY: the caller names a function of type F; a null pointer is None.
    (p != 0).then(|| unsafe { std::mem::transmute_copy::<usize, F>(&p) })
}

type GaiFn = unsafe extern "C" fn(
    *const c_char,
    *const c_char,
    *const addrinfo,
    *mut *mut addrinfo,
) -> c_int;

fn real_getaddrinfo(
    node: *const c_char,
    service: *const c_char,
    hints: *const addrinfo,
    res: *mut *mut addrinfo,
) -> c_int {
    static F: OnceLock<usize> = OnceLock::new();
    match next::<GaiFn>(&F, "getaddrinfo\0") {
        // SAFETY: libc's getaddrinfo with the caller's arguments.
        Some(f) => unsafe { f(node, service, hints, res) },
        None => EAI_FAIL,
    }
}

fn miss_eai(m: Miss) -> c_int {
    match m {
        Miss::NoName => EAI_NONAME,
        Miss::NoData => EAI_NODATA,
        Miss::TryAgain => EAI_AGAIN,
        Miss::Refused => EAI_FAIL,
    }
}

fn miss_h(m: Miss) -> c_int {
    match m {
        Miss::NoName => HOST_NOT_FOUND,
        Miss::NoData => NO_DATA,
        Miss::TryAgain => TRY_AGAIN,
        Miss::Refused => NO_RECOVERY,
    }
}

/// getaddrinfo(3).
///
/// # Safety
/// As getaddrinfo: valid strings, hints and result pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn getaddrinfo(
    node: *const c_char,
    service: *const c_char,
    hints: *const addrinfo,
    res: *mut *mut addrinfo,
) -> c_int {
    if node.is_null() || res.is_null() || !active() {
        return real_getaddrinfo(node, service, hints, res);
    }
    // SAFETY: the caller's hints, if any.
    let h: addrinfo = if hints.is_null() {
        // SAFETY: all-zero is AF_UNSPEC, no flags.
        unsafe { std::mem::zeroed() }
    } else {
        // SAFETY: as above.
        unsafe { std::ptr::read(hints) }
    };
    if h.ai_flags & libc::AI_NUMERICHOST != 0 {
        return real_getaddrinfo(node, service, hints, res);
    }
    let mut numeric = h;
    numeric.ai_flags |= libc::AI_NUMERICHOST;
    let r = real_getaddrinfo(node, service, &numeric, res);
    if r != EAI_NONAME {
        return r; // a numeric host (or a bad service or family)
    }
    // SAFETY: the caller's NUL-terminated name.
    let name = unsafe { CStr::from_ptr(node) }
        .to_string_lossy()
        .into_owned();
    catch_unwind(|| names(&name, service, &h, res)).unwrap_or(EAI_FAIL)
}

fn names(name: &str, service: *const c_char, h: &addrinfo, res: *mut *mut addrinfo) -> c_int {
    let mapped = h.ai_family == libc::AF_INET6 && h.ai_flags & libc::AI_V4MAPPED != 0;
    let fam = match h.ai_family {
        libc::AF_UNSPEC => Families { v4: true, v6: true },
        libc::AF_INET => Families {
            v4: true,
            v6: false,
        },
        libc::AF_INET6 => Families {
            v4: mapped,
            v6: true,
        },
        _ => return EAI_FAMILY,
    };
    let found = match checked(|| super::lookup(name, fam)) {
        Ok(f) => f,
        Err(m) => return miss_eai(m),
    };
    let mut addrs = found.addrs.clone();
    if mapped {
        let has6 = addrs.iter().any(IpAddr::is_ipv6);
        let all = h.ai_flags & libc::AI_ALL != 0;
        addrs = addrs
            .into_iter()
            .filter_map(|a| match a {
                IpAddr::V4(v4) if has6 && !all => {
                    let _ = v4;
                    None
                }
                IpAddr::V4(v4) => Some(IpAddr::V6(v4.to_ipv6_mapped())),
                v6 => Some(v6),
            })
            .collect();
    }
    let mut each = *h;
    each.ai_flags = (h.ai_flags
        & !(libc::AI_CANONNAME | libc::AI_ADDRCONFIG | libc::AI_V4MAPPED | libc::AI_ALL))
        | libc::AI_NUMERICHOST;
    let mut head: *mut addrinfo = std::ptr::null_mut();
    let mut tail: *mut addrinfo = std::ptr::null_mut();
    for a in &addrs {
        each.ai_family = if a.is_ipv4() {
            libc::AF_INET
        } else {
            libc::AF_INET6
        };
        let Ok(text) = CString::new(a.to_string()) else {
            continue;
        };
        let mut part: *mut addrinfo = std::ptr::null_mut();
        let r = real_getaddrinfo(text.as_ptr(), service, &each, &mut part);
        if r != 0 {
            // SAFETY: the list built so far came from libc's getaddrinfo.
            unsafe { free_list(head) };
            return r;
        }
        if head.is_null() {
            head = part;
        } else {
            // SAFETY: `tail` is the last node of our list.
            unsafe { (*tail).ai_next = part };
        }
        tail = part;
        // SAFETY: walking libc's list to its end.
        unsafe {
            while !(*tail).ai_next.is_null() {
                tail = (*tail).ai_next;
            }
        }
    }
    if head.is_null() {
        return EAI_NODATA;
    }
    if h.ai_flags & libc::AI_CANONNAME != 0
        && let Ok(c) = CString::new(found.canonical)
    {
        // SAFETY: strdup's copy is malloc'ed, as freeaddrinfo expects of
        // ai_canonname; the head had none (AI_CANONNAME was not asked).
        unsafe { (*head).ai_canonname = libc::strdup(c.as_ptr()) };
        // SAFETY: checked for null just above (strdup failing).
        if unsafe { (*head).ai_canonname }.is_null() {
            // SAFETY: our list.
            unsafe { free_list(head) };
            return EAI_MEMORY;
        }
    }
    // SAFETY: the caller's result pointer, checked non-null.
    unsafe { *res = head };
    0
}

/// # Safety
/// `list` is null or a list from libc's getaddrinfo.
unsafe fn free_list(list: *mut addrinfo) {
    if !list.is_null() {
        // SAFETY: per the contract.
        unsafe { libc::freeaddrinfo(list) };
    }
}

/// Lays a hostent for `f` out in `buf`; false if it does not fit.
///
/// # Safety
/// `ret` and `buf` (of `len` bytes) are the caller's, writable.
unsafe fn fill(f: &Found, af: c_int, ret: *mut Hostent, buf: *mut c_char, len: usize) -> bool {
    let addrs: Vec<Vec<u8>> = f
        .addrs
        .iter()
        .filter_map(|a| match (a, af) {
            (IpAddr::V4(x), libc::AF_INET) => Some(x.octets().to_vec()),
            (IpAddr::V6(x), libc::AF_INET6) => Some(x.octets().to_vec()),
            _ => None,
        })
        .collect();
    let alen = if af == libc::AF_INET { 4 } else { 16 };
    let ptr = std::mem::size_of::<*mut c_char>();
    // Pointer arrays first (aligned), then addresses, then strings.
    let base = buf as usize;
    let start = base.next_multiple_of(ptr) - base;
    let aliases_at = start;
    let addrs_at = aliases_at + (f.aliases.len() + 1) * ptr;
    let mut at = addrs_at + (addrs.len() + 1) * ptr;
    let mut need = at + addrs.len() * alen + f.canonical.len() + 1;
    need += f.aliases.iter().map(|a| a.len() + 1).sum::<usize>();
    if need > len {
        return false;
    }
    // SAFETY: every write below is inside buf[..need], need <= len.
    unsafe {
        let b = buf.cast::<u8>();
        let aliases = b.add(aliases_at).cast::<*mut c_char>();
        let list = b.add(addrs_at).cast::<*mut c_char>();
        for (i, a) in addrs.iter().enumerate() {
            std::ptr::copy_nonoverlapping(a.as_ptr(), b.add(at), alen);
            *list.add(i) = b.add(at).cast();
            at += alen;
        }
        *list.add(addrs.len()) = std::ptr::null_mut();
        let mut put = |s: &str| {
            let p = b.add(at);
            std::ptr::copy_nonoverlapping(s.as_ptr(), p, s.len());
            *p.add(s.len()) = 0;
            at += s.len() + 1;
            p.cast::<c_char>()
        };
        let name = put(&f.canonical);
        for (i, a) in f.aliases.iter().enumerate() {
            *aliases.add(i) = put(a);
        }
        *aliases.add(f.aliases.len()) = std::ptr::null_mut();
        *ret = Hostent {
            h_name: name,
            h_aliases: aliases,
            h_addrtype: af,
            h_length: alen as c_int,
            h_addr_list: list,
        };
    }
    true
}

type Gh2rFn = unsafe extern "C" fn(
    *const c_char,
    c_int,
    *mut Hostent,
    *mut c_char,
    size_t,
    *mut *mut Hostent,
    *mut c_int,
) -> c_int;

/// gethostbyname2_r(3).
///
/// # Safety
/// As gethostbyname2_r.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gethostbyname2_r(
    name: *const c_char,
    af: c_int,
    ret: *mut Hostent,
    buf: *mut c_char,
    len: size_t,
    result: *mut *mut Hostent,
    h_errnop: *mut c_int,
) -> c_int {
    if name.is_null() || ret.is_null() || result.is_null() || h_errnop.is_null() || !active() {
        static F: OnceLock<usize> = OnceLock::new();
        return match next::<Gh2rFn>(&F, "gethostbyname2_r\0") {
            // SAFETY: libc's, with the caller's arguments.
            Some(f) => unsafe { f(name, af, ret, buf, len, result, h_errnop) },
            None => libc::ENOSYS,
        };
    }
    // SAFETY: the caller's pointers, checked non-null.
    unsafe { *result = std::ptr::null_mut() };
    let fam = match af {
        libc::AF_INET => Families {
            v4: true,
            v6: false,
        },
        libc::AF_INET6 => Families {
            v4: false,
            v6: true,
        },
        _ => {
            // SAFETY: as above.
            unsafe { *h_errnop = NO_RECOVERY };
            return libc::EAFNOSUPPORT;
        }
    };
    // SAFETY: the caller's NUL-terminated name.
    let name = unsafe { CStr::from_ptr(name) }
        .to_string_lossy()
        .into_owned();
    let looked = match name.parse::<IpAddr>() {
        Ok(a) => Ok(Found {
            canonical: name.clone(),
            aliases: Vec::new(),
            addrs: vec![a],
        }),
        Err(_) => checked(|| super::lookup(&name, fam)),
    };
    let found = match looked {
        Ok(f) if f.addrs.iter().any(|a| a.is_ipv4() == fam.v4) => f,
        Ok(_) => {
            // SAFETY: as above.
            unsafe { *h_errnop = NO_DATA };
            return libc::ENOENT;
        }
        Err(m) => {
            // SAFETY: as above.
            unsafe { *h_errnop = miss_h(m) };
            return if m == Miss::TryAgain {
                libc::EAGAIN
            } else {
                libc::ENOENT
            };
        }
    };
    // SAFETY: the caller's buffer of `len` bytes and hostent.
    if !unsafe { fill(&found, af, ret, buf, len) } {
        // SAFETY: as above.
        unsafe { *h_errnop = -1 }; // NETDB_INTERNAL: see errno
        ustack_shim::real::set_errno(libc::ERANGE);
        return libc::ERANGE;
    }
    // SAFETY: as above.
    unsafe {
        *result = ret;
        *h_errnop = 0;
    }
    0
}

/// gethostbyname_r(3): IPv4, as glibc's without RES_USE_INET6.
///
/// # Safety
/// As gethostbyname_r.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gethostbyname_r(
    name: *const c_char,
    ret: *mut Hostent,
    buf: *mut c_char,
    len: size_t,
    result: *mut *mut Hostent,
    h_errnop: *mut c_int,
) -> c_int {
    // SAFETY: the caller's arguments.
    unsafe { gethostbyname2_r(name, libc::AF_INET, ret, buf, len, result, h_errnop) }
}

/// The one static result of gethostbyname/gethostbyname2, as glibc's:
/// valid until the next call.
struct Static {
    lock: Mutex<()>,
    cell: std::cell::UnsafeCell<(Hostent, [u8; 8192])>,
}

// SAFETY: the cell is written only under `lock`.
unsafe impl Sync for Static {}

static STATIC: Static = Static {
    lock: Mutex::new(()),
    cell: std::cell::UnsafeCell::new((
        Hostent {
            h_name: std::ptr::null_mut(),
            h_aliases: std::ptr::null_mut(),
            h_addrtype: 0,
            h_length: 0,
            h_addr_list: std::ptr::null_mut(),
        },
        [0; 8192],
    )),
};

type Gh2Fn = unsafe extern "C" fn(*const c_char, c_int) -> *mut Hostent;

/// gethostbyname2(3).
///
/// # Safety
/// As gethostbyname2.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gethostbyname2(name: *const c_char, af: c_int) -> *mut Hostent {
    if name.is_null() || !active() {
        static F: OnceLock<usize> = OnceLock::new();
        return match next::<Gh2Fn>(&F, "gethostbyname2\0") {
            // SAFETY: libc's, with the caller's arguments.
            Some(f) => unsafe { f(name, af) },
            None => std::ptr::null_mut(),
        };
    }
    let _g = STATIC.lock.lock().unwrap_or_else(|e| e.into_inner());
    let cell = STATIC.cell.get();
    let (mut result, mut herr) = (std::ptr::null_mut(), 0);
    // SAFETY: the static storage, ours under the lock.
    unsafe {
        gethostbyname2_r(
            name,
            af,
            &raw mut (*cell).0,
            (&raw mut (*cell).1).cast(),
            8192,
            &mut result,
            &mut herr,
        )
    };
    set_h_errno(herr);
    result
}

/// gethostbyname(3).
///
/// # Safety
/// As gethostbyname.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gethostbyname(name: *const c_char) -> *mut Hostent {
    // SAFETY: the caller's name.
    unsafe { gethostbyname2(name, libc::AF_INET) }
}

/// What res_query and its family return for an exchange: the answer's
/// length (copied into the caller's buffer, cut to its size) or -1 with
/// h_errno set as glibc sets it.
///
/// # Safety
/// `answer` has `anslen` writable bytes.
unsafe fn answer_out(raw: Result<Vec<u8>, Miss>, answer: *mut u8, anslen: c_int) -> c_int {
    let raw = match raw {
        Ok(r) => r,
        Err(m) => {
            set_h_errno(miss_h(m));
            return -1;
        }
    };
    if let Ok(r) = ustack_core::wire::dns::Response::parse(&raw) {
        let herr = match r.rcode {
            0 if r.answers.is_empty() => NO_DATA,
            0 => 0,
            3 => HOST_NOT_FOUND,
            2 => TRY_AGAIN,
            _ => NO_RECOVERY,
        };
        if herr != 0 {
            set_h_errno(herr);
            return -1;
        }
    }
    // SAFETY: per the contract.
    unsafe { copy_answer(&raw, answer, anslen) }
}

/// Copies `raw` into the caller's buffer, cut to its size, and returns
/// the full length, as res_query and res_send do.
///
/// # Safety
/// `answer` is null or has `anslen` writable bytes.
unsafe fn copy_answer(raw: &[u8], answer: *mut u8, anslen: c_int) -> c_int {
    let n = raw.len().min(usize::try_from(anslen).unwrap_or(0));
    if !answer.is_null() {
        // SAFETY: `answer` has at least `n` bytes, per the contract.
        unsafe { std::ptr::copy_nonoverlapping(raw.as_ptr(), answer, n) };
    }
    raw.len() as c_int
}

fn query_name(name: *const c_char) -> Option<String> {
    // SAFETY: the caller's NUL-terminated name.
    (!name.is_null()).then(|| {
        unsafe { CStr::from_ptr(name) }
            .to_string_lossy()
            .into_owned()
    })
}

fn res_query_impl(name: &str, class: c_int, ty: c_int) -> Result<Vec<u8>, Miss> {
    let c = super::resolv_conf();
    super::exchange(&c, name, ty as u16, class as u16)
}

/// res_search's rule: the search list's candidates in turn; the first
/// with an answer wins (NXDOMAIN and no-data go on to the next).
fn res_search_impl(name: &str, class: c_int, ty: c_int) -> Result<Vec<u8>, Miss> {
    let c = super::resolv_conf();
    let mut last = Err(Miss::NoName);
    for cand in c.candidates(name) {
        let r = super::exchange(&c, &cand, ty as u16, class as u16);
        if let Ok(raw) = &r
            && let Ok(p) = ustack_core::wire::dns::Response::parse(raw)
            && p.rcode == 0
            && !p.answers.is_empty()
        {
            return r;
        }
        last = r;
    }
    last
}

type ResQueryFn = unsafe extern "C" fn(*const c_char, c_int, c_int, *mut u8, c_int) -> c_int;
type ResSendFn = unsafe extern "C" fn(*const u8, c_int, *mut u8, c_int) -> c_int;

macro_rules! res_query_like {
    ($(#[$doc:meta])* $name:ident, $real:literal, $impl:ident) => {
        $(#[$doc])*
        ///
        /// # Safety
        /// As the libc function: a NUL-terminated name and an answer
        /// buffer of `anslen` bytes.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(
            name: *const c_char,
            class: c_int,
            ty: c_int,
            answer: *mut u8,
            anslen: c_int,
        ) -> c_int {
            let Some(n) = query_name(name).filter(|_| active()) else {
                static F: OnceLock<usize> = OnceLock::new();
                return match next::<ResQueryFn>(&F, $real) {
                    // SAFETY: libc's, with the caller's arguments.
                    Some(f) => unsafe { f(name, class, ty, answer, anslen) },
                    None => {
                        set_h_errno(NO_RECOVERY);
                        -1
                    }
                };
            };
            let r = checked(|| $impl(&n, class, ty));
            // SAFETY: the caller's buffer.
            unsafe { answer_out(r, answer, anslen) }
        }
    };
}

res_query_like!(
    /// res_query(3): one name, as given.
    res_query, "res_query\0", res_query_impl
);
res_query_like!(
    /// The name older binaries link res_query by.
    __res_query, "__res_query\0", res_query_impl
);
res_query_like!(
    /// res_search(3): the name through the search list.
    res_search, "res_search\0", res_search_impl
);
res_query_like!(
    /// The name older binaries link res_search by.
    __res_search, "__res_search\0", res_search_impl
);

/// res_querydomain(3): `name.domain`, as given.
///
/// # Safety
/// As the libc function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn res_querydomain(
    name: *const c_char,
    domain: *const c_char,
    class: c_int,
    ty: c_int,
    answer: *mut u8,
    anslen: c_int,
) -> c_int {
    type F =
        unsafe extern "C" fn(*const c_char, *const c_char, c_int, c_int, *mut u8, c_int) -> c_int;
    let (Some(n), Some(d)) = (query_name(name), query_name(domain)) else {
        set_h_errno(NO_RECOVERY);
        return -1;
    };
    if !active() {
        static R: OnceLock<usize> = OnceLock::new();
        return match next::<F>(&R, "res_querydomain\0") {
            // SAFETY: libc's, with the caller's arguments.
            Some(f) => unsafe { f(name, domain, class, ty, answer, anslen) },
            None => -1,
        };
    }
    let full = format!("{}.{}", n.trim_end_matches('.'), d.trim_end_matches('.'));
    let r = checked(|| res_query_impl(&full, class, ty));
    // SAFETY: the caller's buffer.
    unsafe { answer_out(r, answer, anslen) }
}

/// res_send(3): a query message the program built, to the servers.
///
/// # Safety
/// As the libc function: `msg` of `msglen` bytes, `answer` of `anslen`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn res_send(
    msg: *const u8,
    msglen: c_int,
    answer: *mut u8,
    anslen: c_int,
) -> c_int {
    if msg.is_null() || msglen < 0 || !active() {
        static F: OnceLock<usize> = OnceLock::new();
        return match next::<ResSendFn>(&F, "res_send\0") {
            // SAFETY: libc's, with the caller's arguments.
            Some(f) => unsafe { f(msg, msglen, answer, anslen) },
            None => -1,
        };
    }
    // SAFETY: the caller's message of `msglen` bytes.
    let q = unsafe { std::slice::from_raw_parts(msg, msglen as usize) }.to_vec();
    let r = checked(|| super::send_raw(&super::resolv_conf(), &q, None));
    let Ok(raw) = r else {
        set_h_errno(TRY_AGAIN);
        return -1;
    };
    // SAFETY: the caller's buffer of `anslen` bytes.
    unsafe { copy_answer(&raw, answer, anslen) }
}

/// res_nquery(3): res_query with an explicit state, which the stack's
/// resolver does not use (it reads resolv.conf itself).
///
/// # Safety
/// As the libc function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn res_nquery(
    _state: *mut c_void,
    name: *const c_char,
    class: c_int,
    ty: c_int,
    answer: *mut u8,
    anslen: c_int,
) -> c_int {
    // SAFETY: the caller's arguments.
    unsafe { res_query(name, class, ty, answer, anslen) }
}

/// res_nsearch(3): res_search with an explicit state (unused).
///
/// # Safety
/// As the libc function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn res_nsearch(
    _state: *mut c_void,
    name: *const c_char,
    class: c_int,
    ty: c_int,
    answer: *mut u8,
    anslen: c_int,
) -> c_int {
    // SAFETY: the caller's arguments.
    unsafe { res_search(name, class, ty, answer, anslen) }
}

/// res_nsend(3): res_send with an explicit state (unused).
///
/// # Safety
/// As the libc function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn res_nsend(
    _state: *mut c_void,
    msg: *const u8,
    msglen: c_int,
    answer: *mut u8,
    anslen: c_int,
) -> c_int {
    // SAFETY: the caller's arguments.
    unsafe { res_send(msg, msglen, answer, anslen) }
}
