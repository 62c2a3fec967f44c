//! TCP header and options (RFC 9293 section 3.1, RFC 7323, RFC 2018).
//!
//! Owns the segment's byte layout, its options and its checksum. Must not
//! touch connection state: sequence arithmetic, window scaling and the
//! meaning of flags belong to `crate::tcp`.

use super::bytes;
use super::checksum;
use super::{Error, IpAddr, IpProtocol, Result};

/// Field offsets of the fixed header.
mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const SEQ: usize = 4;
    pub const ACK: usize = 8;
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: usize = 14;
    pub const CHECKSUM: usize = 16;
    pub const URGENT: usize = 18;
}

/// Option kinds (IANA "TCP Option Kind Numbers").
mod kind {
    pub const EOL: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
    pub const WINDOW_SCALE: u8 = 3;
    pub const SACK_PERMITTED: u8 = 4;
    pub const SACK: u8 = 5;
    pub const TIMESTAMPS: u8 = 8;
    pub const MD5_SIGNATURE: u8 = 19;
}

/// The length of a header without options.
pub const HEADER_LEN: usize = 20;

/// The most option bytes a header holds (data offset 15 words).
pub const MAX_OPTIONS_LEN: usize = 40;

/// TCP header flags, as the low byte of the 13th/14th header bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// FIN: the sender has no more data (RFC 9293 section 3.1).
    pub const FIN: TcpFlags = TcpFlags(0x01);
    /// SYN: synchronize sequence numbers; opens a connection.
    pub const SYN: TcpFlags = TcpFlags(0x02);
    /// RST: reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x04);
    /// PSH: push buffered data to the application.
    pub const PSH: TcpFlags = TcpFlags(0x08);
    /// ACK: the acknowledgment number is significant.
    pub const ACK: TcpFlags = TcpFlags(0x10);
    /// URG: the urgent pointer is significant.
    pub const URG: TcpFlags = TcpFlags(0x20);
    /// ECE: ECN echo (RFC 3168 section 6.1); this stack never sets it.
    pub const ECE: TcpFlags = TcpFlags(0x40);
    /// CWR: congestion window reduced (RFC 3168 section 6.1); never set here.
    pub const CWR: TcpFlags = TcpFlags(0x80);
    /// No flags.
    pub const NONE: TcpFlags = TcpFlags(0);

    /// Whether every flag of `other` is set in `self`.
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any flag of `other` is set in `self`.
    pub const fn intersects(self, other: TcpFlags) -> bool {
        self.0 & other.0 != 0
    }
}

impl core::ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl core::ops::BitOrAssign for TcpFlags {
    fn bitor_assign(&mut self, rhs: TcpFlags) {
        self.0 |= rhs.0;
    }
}

impl core::fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        const NAMES: [&str; 8] = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];
        let mut first = true;
        for (i, name) in NAMES.iter().enumerate() {
            if self.0 & (1 << i) != 0 {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if first {
            f.write_str("-")?;
        }
        Ok(())
    }
}

/// The most SACK blocks one segment carries (4 fit in 40 option bytes
/// without timestamps, 3 with them).
pub const MAX_SACK_BLOCKS: usize = 4;

/// The TCP options this stack understands. Unknown options are skipped on
/// parse and never emitted.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct TcpOptions {
    /// Maximum segment size (kind 2), SYN only.
    pub mss: Option<u16>,
    /// Window scale shift (kind 3), SYN only. Values above 14 are kept as
    /// received; the engine clamps them (RFC 7323 section 2.3).
    pub window_scale: Option<u8>,
    /// SACK permitted (kind 4), SYN only.
    pub sack_permitted: bool,
    /// SACK blocks (kind 5): `(left edge, right edge)` sequence numbers.
    /// The first `sack_len` entries are meaningful.
    pub sack_blocks: [(u32, u32); MAX_SACK_BLOCKS],
    /// How many entries of `sack_blocks` are in use (0 to [`MAX_SACK_BLOCKS`]).
    pub sack_len: u8,
    /// Timestamps (kind 8): `(TSval, TSecr)`.
    pub timestamps: Option<(u32, u32)>,
}

impl TcpOptions {
    /// The SACK blocks carried.
    pub fn sack(&self) -> &[(u32, u32)] {
        &self.sack_blocks[..usize::from(self.sack_len).min(MAX_SACK_BLOCKS)]
    }
}

/// A TCP header in plain data. The payload travels beside it, not in it.
///
/// A SYN with options, emitted over IPv4 and parsed back:
///
/// ```
/// use ustack::wire::{IpAddr, TcpFlags, TcpOptions, TcpPacket, TcpRepr};
///
/// let src: IpAddr = "10.77.0.2".parse().unwrap();
/// let dst: IpAddr = "10.77.0.1".parse().unwrap();
/// let syn = TcpRepr {
///     src_port: 40000,
///     dst_port: 80,
///     seq: 1_000,
///     flags: TcpFlags::SYN,
///     window: 65535,
///     options: TcpOptions {
///         mss: Some(1460),
///         window_scale: Some(7),
///         sack_permitted: true,
///         timestamps: Some((12345, 0)),
///         ..TcpOptions::default()
///     },
///     ..TcpRepr::default()
/// };
/// // 20 fixed bytes, MSS 4, SACK-permitted + timestamps 12, window scale 4.
/// assert_eq!(syn.header_len(), 40);
/// let mut buf = [0u8; 64];
/// let len = syn.emit(&mut buf, src, dst, b"")?;
/// assert_eq!(len, 40);
///
/// let packet = TcpPacket::new_checked(&buf[..len])?;
/// assert!(packet.flags().contains(TcpFlags::SYN));
/// assert!(!packet.flags().intersects(TcpFlags::ACK | TcpFlags::RST));
/// assert_eq!(TcpRepr::parse(&packet, src, dst)?, syn);
///
/// // The checksum covers the pseudo-header: other addresses fail it.
/// let other: IpAddr = "10.77.0.3".parse().unwrap();
/// assert_eq!(
///     TcpRepr::parse(&packet, other, dst),
///     Err(ustack::wire::Error::Checksum)
/// );
/// # Ok::<(), ustack::wire::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct TcpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number of the first byte of data (or of the SYN/FIN).
    pub seq: u32,
    /// Acknowledgment number: the next sequence number the sender expects;
    /// meaningful only with [`TcpFlags::ACK`].
    pub ack: u32,
    /// The flags.
    pub flags: TcpFlags,
    /// The raw 16-bit window field (unscaled).
    pub window: u16,
    /// The urgent pointer (RFC 9293 section 3.1); this stack sends 0.
    pub urgent: u16,
    /// The options carried in the header.
    pub options: TcpOptions,
}

impl TcpOptions {
    /// Replaces the SACK blocks with the first [`MAX_SACK_BLOCKS`] of
    /// `blocks` (the most recent block first, RFC 2018 section 4), clearing
    /// unused slots so equal block lists compare equal.
    pub fn set_sack(&mut self, blocks: &[(u32, u32)]) {
        self.sack_blocks = [(0, 0); MAX_SACK_BLOCKS];
        self.sack_len = 0;
        for (slot, block) in self.sack_blocks.iter_mut().zip(blocks) {
            *slot = *block;
            self.sack_len += 1;
        }
    }

    /// Parses an option area (RFC 9293 section 3.2) as Linux's
    /// `tcp_parse_options` does: EOL ends it, NOP is skipped, other kinds
    /// are skipped by their length; a length below 2, or one running past
    /// the area, ends the parse (what came before stands, and the segment
    /// is still good); a known option of the wrong length is skipped. A
    /// repeated option keeps the last value. The one `Malformed`: an MD5
    /// signature (RFC 2385), which Linux drops when no key is set, as this
    /// stack never sets one (`TCPMD5Unexpected`).
    pub fn parse(area: &[u8]) -> Result<TcpOptions> {
        let mut options = TcpOptions::default();
        let mut at = 0usize;
        while let Some(&k) = area.get(at) {
            match k {
                kind::EOL => break,
                kind::NOP => {
                    at += 1;
                    continue;
                }
                _ => {}
            }
            let Some(&len) = area.get(at + 1) else { break };
            let len = usize::from(len);
            if len < 2 || at + len > area.len() {
                break;
            }
            let body = &area[at + 2..at + len];
            match (k, body.len()) {
                (kind::MSS, 2) => options.mss = Some(bytes::u16_at(body, 0)),
                (kind::WINDOW_SCALE, 1) => options.window_scale = Some(bytes::u8_at(body, 0)),
                (kind::SACK_PERMITTED, 0) => options.sack_permitted = true,
                (kind::TIMESTAMPS, 8) => {
                    options.timestamps = Some((bytes::u32_at(body, 0), bytes::u32_at(body, 4)))
                }
                (kind::SACK, n) if n > 0 && n % 8 == 0 => {
                    // RFC 2018 section 3: 8 bytes per block; at most 4 fit.
                    let mut blocks = [(0, 0); MAX_SACK_BLOCKS];
                    let mut count = 0u8;
                    for (slot, block) in blocks.iter_mut().zip(body.chunks_exact(8)) {
                        *slot = (bytes::u32_at(block, 0), bytes::u32_at(block, 4));
                        count += 1;
                    }
                    options.sack_blocks = blocks;
                    options.sack_len = count;
                }
                (kind::MD5_SIGNATURE, _) => return Err(Error::Malformed),
                _ => {}
            }
            at += len;
        }
        Ok(options)
    }

    /// Option bytes before the SACK option, in the order emit writes them.
    fn fixed_len(&self) -> usize {
        let mut len = 0;
        if self.mss.is_some() {
            len += 4;
        }
        len += match (self.sack_permitted, self.timestamps.is_some()) {
            (_, true) => 12,
            (true, false) => 4,
            (false, false) => 0,
        };
        if self.window_scale.is_some() {
            len += 4;
        }
        len
    }

    /// How many of [`TcpOptions::sack`] emit writes: as many as fit in the
    /// 40 option bytes left by the other options.
    pub fn sack_blocks_emitted(&self) -> usize {
        let room = MAX_OPTIONS_LEN.saturating_sub(self.fixed_len() + 4) / 8;
        self.sack().len().min(room)
    }

    /// The number of option bytes emit writes; a multiple of 4, at most 40.
    pub fn emitted_len(&self) -> usize {
        let blocks = self.sack_blocks_emitted();
        self.fixed_len() + if blocks > 0 { 4 + 8 * blocks } else { 0 }
    }

    /// Writes the options into `area`, which must be [`emitted_len`] bytes
    /// long. The layout is Linux's: every option padded with NOPs to a
    /// 4-byte boundary, SACK-permitted sharing a word with timestamps.
    ///
    /// [`emitted_len`]: TcpOptions::emitted_len
    fn emit(&self, area: &mut [u8]) {
        let mut out = OptionWriter { area, at: 0 };
        if let Some(mss) = self.mss {
            out.put(&[kind::MSS, 4]);
            out.put(&mss.to_be_bytes());
        }
        match (self.sack_permitted, self.timestamps) {
            (sack_permitted, Some((tsval, tsecr))) => {
                if sack_permitted {
                    out.put(&[kind::SACK_PERMITTED, 2]);
                } else {
                    out.put(&[kind::NOP, kind::NOP]);
                }
                out.put(&[kind::TIMESTAMPS, 10]);
                out.put(&tsval.to_be_bytes());
                out.put(&tsecr.to_be_bytes());
            }
            (true, None) => out.put(&[kind::NOP, kind::NOP, kind::SACK_PERMITTED, 2]),
            (false, None) => {}
        }
        if let Some(shift) = self.window_scale {
            out.put(&[kind::NOP, kind::WINDOW_SCALE, 3, shift]);
        }
        let blocks = self.sack_blocks_emitted();
        if blocks > 0 {
            let len = 2 + 8 * blocks as u8;
            out.put(&[kind::NOP, kind::NOP, kind::SACK, len]);
            for &(left, right) in self.sack().iter().take(blocks) {
                out.put(&left.to_be_bytes());
                out.put(&right.to_be_bytes());
            }
        }
    }
}

/// Appends to an option area without allocating; writes past the end are
/// dropped (emit sizes the area with `emitted_len`, so none happen).
struct OptionWriter<'a> {
    area: &'a mut [u8],
    at: usize,
}

impl OptionWriter<'_> {
    fn put(&mut self, value: &[u8]) {
        bytes::set_bytes(self.area, self.at, value);
        self.at += value.len();
    }
}

/// A read-only or read-write view of a TCP segment. The buffer is the IP
/// payload: the segment ends where the buffer ends.
#[derive(Debug, Clone)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wraps a buffer without validation. Accessors do not panic on it but
    /// may return zeros for fields the buffer does not hold.
    pub const fn new_unchecked(buffer: T) -> Self {
        TcpPacket { buffer }
    }

    /// Wraps a buffer after checking it holds the fixed header and the
    /// header length the data offset gives (at least 20).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = TcpPacket { buffer };
        packet.check()?;
        Ok(packet)
    }

    fn check(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let header_len = self.header_len();
        if header_len < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if len < header_len {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Consumes the view, returning the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn buf(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// The source port.
    pub fn src_port(&self) -> u16 {
        bytes::u16_at(self.buf(), field::SRC_PORT)
    }

    /// The destination port.
    pub fn dst_port(&self) -> u16 {
        bytes::u16_at(self.buf(), field::DST_PORT)
    }

    /// The sequence number.
    pub fn seq_number(&self) -> u32 {
        bytes::u32_at(self.buf(), field::SEQ)
    }

    /// The acknowledgment number.
    pub fn ack_number(&self) -> u32 {
        bytes::u32_at(self.buf(), field::ACK)
    }

    /// The header length in bytes (data offset times four).
    pub fn header_len(&self) -> usize {
        usize::from(bytes::u8_at(self.buf(), field::DATA_OFF) >> 4) * 4
    }

    /// The flags byte (CWR down to FIN).
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(bytes::u8_at(self.buf(), field::FLAGS))
    }

    /// The raw, unscaled window field, in bytes before window scaling
    /// (RFC 7323 section 2.2).
    pub fn window_len(&self) -> u16 {
        bytes::u16_at(self.buf(), field::WINDOW)
    }

    /// The checksum as stored (see [`TcpPacket::verify_checksum`]).
    pub fn checksum(&self) -> u16 {
        bytes::u16_at(self.buf(), field::CHECKSUM)
    }

    /// The urgent pointer.
    pub fn urgent_at(&self) -> u16 {
        bytes::u16_at(self.buf(), field::URGENT)
    }

    /// The option bytes (possibly empty).
    pub fn options(&self) -> &[u8] {
        self.buf().get(HEADER_LEN..self.header_len()).unwrap_or(&[])
    }

    /// The data after the header.
    pub fn payload(&self) -> &[u8] {
        self.buf().get(self.header_len()..).unwrap_or(&[])
    }

    /// Whether the checksum verifies with the pseudo-header of `src` and
    /// `dst`; `Malformed` when the addresses are of different families.
    pub fn verify_checksum(&self, src: IpAddr, dst: IpAddr) -> Result<bool> {
        let pseudo = checksum::pseudo_header(src, dst, IpProtocol::Tcp, self.buf().len())?;
        Ok(checksum::combine(&[pseudo, checksum::data(self.buf())]) == 0xffff)
    }
}

impl TcpRepr {
    /// Parses a checked view, verifying the checksum against the
    /// pseudo-header of `src` and `dst` and decoding the options.
    pub fn parse<T: AsRef<[u8]>>(
        packet: &TcpPacket<T>,
        src: IpAddr,
        dst: IpAddr,
    ) -> Result<TcpRepr> {
        packet.check()?;
        if !packet.verify_checksum(src, dst)? {
            return Err(Error::Checksum);
        }
        TcpRepr::parse_fields(packet)
    }

    /// [`TcpRepr::parse`] for a segment whose checksum is already known
    /// good (the link vouched for it: see `Core::input_verified`): the
    /// same checks, without summing the segment.
    pub fn parse_verified<T: AsRef<[u8]>>(packet: &TcpPacket<T>) -> Result<TcpRepr> {
        packet.check()?;
        TcpRepr::parse_fields(packet)
    }

    fn parse_fields<T: AsRef<[u8]>>(packet: &TcpPacket<T>) -> Result<TcpRepr> {
        Ok(TcpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            seq: packet.seq_number(),
            ack: packet.ack_number(),
            flags: packet.flags(),
            window: packet.window_len(),
            urgent: packet.urgent_at(),
            options: TcpOptions::parse(packet.options())?,
        })
    }

    /// Parses a whole segment (an IP payload) and returns the header and the
    /// payload slice.
    pub fn parse_segment(segment: &[u8], src: IpAddr, dst: IpAddr) -> Result<(TcpRepr, &[u8])> {
        let packet = TcpPacket::new_checked(segment)?;
        let repr = TcpRepr::parse(&packet, src, dst)?;
        Ok((repr, segment.get(packet.header_len()..).unwrap_or(&[])))
    }

    /// [`TcpRepr::parse_segment`] without the checksum, for a segment the
    /// link vouched for (see [`TcpRepr::parse_verified`]).
    pub fn parse_segment_verified(segment: &[u8]) -> Result<(TcpRepr, &[u8])> {
        let packet = TcpPacket::new_checked(segment)?;
        let repr = TcpRepr::parse_verified(&packet)?;
        Ok((repr, segment.get(packet.header_len()..).unwrap_or(&[])))
    }

    /// The length of the header emit writes, options included (at most 60).
    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.options.emitted_len()
    }

    /// The length of a segment carrying `payload_len` bytes.
    pub fn buffer_len(&self, payload_len: usize) -> usize {
        self.header_len() + payload_len
    }

    /// Writes the header, options and `payload` at the start of `buf`,
    /// computes the checksum for `src` and `dst`, and returns the segment
    /// length. SACK blocks that do not fit the 40 option bytes are dropped.
    pub fn emit(&self, buf: &mut [u8], src: IpAddr, dst: IpAddr, payload: &[u8]) -> Result<usize> {
        self.emit_with(buf, src, dst, payload, true)
    }

    /// [`TcpRepr::emit`] for a link that completes checksums itself (Linux's
    /// CHECKSUM_PARTIAL, a TUN device's `NEEDS_CSUM`): the checksum field
    /// holds the pseudo-header sum, folded and not inverted, and the
    /// segment is never summed here.
    pub fn emit_partial(
        &self,
        buf: &mut [u8],
        src: IpAddr,
        dst: IpAddr,
        payload: &[u8],
    ) -> Result<usize> {
        self.emit_with(buf, src, dst, payload, false)
    }

    fn emit_with(
        &self,
        buf: &mut [u8],
        src: IpAddr,
        dst: IpAddr,
        payload: &[u8],
        full_checksum: bool,
    ) -> Result<usize> {
        let header_len = self.header_len();
        let total = header_len + payload.len();
        let pseudo = checksum::pseudo_header(src, dst, IpProtocol::Tcp, total)?;
        let segment = buf.get_mut(..total).ok_or(Error::Truncated)?;
        bytes::set_u16(segment, field::SRC_PORT, self.src_port);
        bytes::set_u16(segment, field::DST_PORT, self.dst_port);
        bytes::set_u32(segment, field::SEQ, self.seq);
        bytes::set_u32(segment, field::ACK, self.ack);
        bytes::set_u8(segment, field::DATA_OFF, ((header_len / 4) as u8) << 4);
        bytes::set_u8(segment, field::FLAGS, self.flags.0);
        bytes::set_u16(segment, field::WINDOW, self.window);
        bytes::set_u16(segment, field::CHECKSUM, 0);
        bytes::set_u16(segment, field::URGENT, self.urgent);
        if let Some(area) = segment.get_mut(HEADER_LEN..header_len) {
            self.options.emit(area);
        }
        bytes::set_bytes(segment, header_len, payload);
        let sum = if full_checksum {
            !checksum::combine(&[pseudo, checksum::data(segment)])
        } else {
            pseudo
        };
        bytes::set_u16(segment, field::CHECKSUM, sum);
        Ok(total)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::wire::{Ipv4Addr, Ipv6Addr};
    use proptest::prelude::*;

    const A4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 1));
    const B4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 2));
    const A6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 1));
    const B6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 2));

    fn syn() -> TcpRepr {
        TcpRepr {
            src_port: 40000,
            dst_port: 80,
            seq: 0x0102_0304,
            ack: 0,
            flags: TcpFlags::SYN,
            window: 64240,
            urgent: 0,
            options: TcpOptions {
                mss: Some(1460),
                window_scale: Some(7),
                sack_permitted: true,
                timestamps: Some((1, 0)),
                ..TcpOptions::default()
            },
        }
    }

    fn with_sack(mut options: TcpOptions, blocks: &[(u32, u32)]) -> TcpOptions {
        for (slot, b) in options.sack_blocks.iter_mut().zip(blocks) {
            *slot = *b;
        }
        options.sack_len = blocks.len() as u8;
        options
    }

    fn emit(repr: &TcpRepr, payload: &[u8]) -> Vec<u8> {
        let mut buf = vec![0; repr.buffer_len(payload.len())];
        repr.emit(&mut buf, A4, B4, payload).unwrap();
        buf
    }

    pub(crate) fn arb_options() -> impl Strategy<Value = TcpOptions> {
        (
            proptest::option::of(any::<u16>()),
            proptest::option::of(any::<u8>()),
            any::<bool>(),
            proptest::option::of(any::<(u32, u32)>()),
            proptest::collection::vec(any::<(u32, u32)>(), 0..=4),
        )
            .prop_map(|(mss, ws, sp, ts, blocks)| {
                let mut o = TcpOptions {
                    mss,
                    window_scale: ws,
                    sack_permitted: sp,
                    timestamps: ts,
                    ..TcpOptions::default()
                };
                o = with_sack(o, &blocks);
                // Keep only what emit can carry, so the round trip is exact.
                let fit = o.sack_blocks_emitted();
                with_sack(
                    TcpOptions {
                        sack_blocks: [(0, 0); 4],
                        ..o
                    },
                    &blocks[..fit],
                )
            })
    }

    pub(crate) fn arb_repr() -> impl Strategy<Value = TcpRepr> {
        (
            any::<(u16, u16, u32, u32)>(),
            any::<u8>(),
            any::<(u16, u16)>(),
            arb_options(),
        )
            .prop_map(
                |((sp, dp, seq, ack), flags, (window, urgent), options)| TcpRepr {
                    src_port: sp,
                    dst_port: dp,
                    seq,
                    ack,
                    flags: TcpFlags(flags),
                    window,
                    urgent,
                    options,
                },
            )
    }

    #[test]
    fn syn_options_use_linux_layout() {
        let buf = emit(&syn(), &[]);
        assert_eq!(buf.len(), 40);
        assert_eq!(buf[12], 10 << 4);
        assert_eq!(
            &buf[20..],
            &[
                2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7
            ]
        );
    }

    #[test]
    fn emitted_segment_verifies_and_parses_back_v4_and_v6() {
        let repr = syn();
        for (src, dst) in [(A4, B4), (A6, B6)] {
            let mut buf = vec![0; repr.buffer_len(5)];
            assert_eq!(repr.emit(&mut buf, src, dst, b"hello"), Ok(45));
            let (parsed, payload) = TcpRepr::parse_segment(&buf, src, dst).unwrap();
            assert_eq!(parsed, repr);
            assert_eq!(payload, b"hello");
            let wrong = match src {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::new(10, 77, 0, 3)),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 3)),
            };
            assert_eq!(
                TcpRepr::parse_segment(&buf, wrong, dst).err(),
                Some(Error::Checksum)
            );
        }
    }

    #[test]
    fn mixed_address_families_are_malformed() {
        let buf = emit(&syn(), &[]);
        assert_eq!(
            TcpRepr::parse_segment(&buf, A4, B6).err(),
            Some(Error::Malformed)
        );
        assert_eq!(syn().emit(&mut [0; 60], A6, B4, &[]), Err(Error::Malformed));
    }

    #[test]
    fn emit_into_short_buffer_is_truncated() {
        assert_eq!(
            syn().emit(&mut [0; 43], A4, B4, b"abcd"),
            Err(Error::Truncated)
        );
    }

    #[test]
    fn emit_partial_leaves_the_pseudo_header_sum_for_the_link_to_complete() {
        let payload = b"some data, odd length";
        let full = emit(&syn(), payload);
        let mut partial = vec![0u8; full.len()];
        syn().emit_partial(&mut partial, A4, B4, payload).unwrap();
        let pseudo = checksum::pseudo_header(A4, B4, IpProtocol::Tcp, full.len()).unwrap();
        assert_eq!(partial[16..18], pseudo.to_be_bytes());
        assert_eq!(partial[..16], full[..16]);
        assert_eq!(partial[18..], full[18..]);
        // Completing it the way a NIC does (sum from the TCP header on,
        // field included) gives the full checksum.
        let done = !checksum::data(&partial);
        assert_eq!(done.to_be_bytes(), full[16..18]);
    }

    #[test]
    fn flipped_payload_bit_fails_checksum() {
        let mut buf = emit(&syn(), b"data");
        buf[41] ^= 0x10;
        assert_eq!(
            TcpRepr::parse_segment(&buf, A4, B4).err(),
            Some(Error::Checksum)
        );
    }

    #[test]
    fn sack_blocks_that_do_not_fit_are_dropped() {
        let blocks = [(1, 2), (3, 4), (5, 6), (7, 8)];
        // MSS + SACK-perm/TS + WS take 20 bytes: room for 2 blocks.
        let mut repr = syn();
        repr.options = with_sack(repr.options, &blocks);
        assert_eq!(repr.options.sack_blocks_emitted(), 2);
        assert_eq!(repr.header_len(), 60);
        let buf = emit(&repr, &[]);
        let (parsed, _) = TcpRepr::parse_segment(&buf, A4, B4).unwrap();
        assert_eq!(parsed.options.sack(), &blocks[..2]);
        // Timestamps alone leave room for 3, nothing else for 4.
        let ts_only = with_sack(
            TcpOptions {
                timestamps: Some((9, 9)),
                ..TcpOptions::default()
            },
            &blocks,
        );
        assert_eq!(ts_only.sack_blocks_emitted(), 3);
        assert_eq!(ts_only.emitted_len(), 40);
        let bare = with_sack(TcpOptions::default(), &blocks);
        assert_eq!(bare.sack_blocks_emitted(), 4);
        assert_eq!(bare.emitted_len(), 36);
    }

    #[test]
    fn options_parse_skips_nop_unknown_and_stops_at_eol() {
        let area = [
            1, 1, 2, 4, 0x02, 0x18, // NOP NOP MSS 536
            30, 4, 0xaa, 0xbb, // unknown kind 30 (MPTCP), skipped
            3, 3, 2, // WS 2
            0, 2, 4, 0x05, 0xb4, // EOL, then garbage that must be ignored
        ];
        let o = TcpOptions::parse(&area).unwrap();
        assert_eq!(o.mss, Some(536));
        assert_eq!(o.window_scale, Some(2));
        assert!(!o.sack_permitted && o.timestamps.is_none() && o.sack().is_empty());
    }

    #[test]
    fn set_sack_keeps_four_blocks_and_clears_the_rest() {
        let mut o = TcpOptions::default();
        o.set_sack(&[(1, 2), (3, 4), (5, 6), (7, 8), (9, 10)]);
        assert_eq!(o.sack(), &[(1, 2), (3, 4), (5, 6), (7, 8)]);
        o.set_sack(&[(11, 12)]);
        assert_eq!(o.sack(), &[(11, 12)]);
        assert_eq!(o.sack_blocks[1], (0, 0));
    }

    #[test]
    fn options_parse_reads_sack_blocks() {
        let mut area = vec![1, 1, 5, 18];
        for v in [10u32, 20, 30, 40] {
            area.extend_from_slice(&v.to_be_bytes());
        }
        let o = TcpOptions::parse(&area).unwrap();
        assert_eq!(o.sack(), &[(10, 20), (30, 40)]);
    }

    #[test]
    fn bad_option_lengths_end_the_parse_or_are_skipped_as_linux_does() {
        // tcp_parse_options: a silly or partial length stops the parse,
        // keeping what came before; a known kind of the wrong length is
        // skipped by its length. Never an error.
        for (area, mss) in [
            (&[2, 3, 0][..], None),                      // MSS length 3
            (&[2, 4, 5][..], None),                      // MSS running past the area
            (&[3, 4, 1, 1, 2, 4, 1, 0][..], Some(256)),  // WS length 4: skipped
            (&[4, 3, 0, 2, 4, 1, 0][..], Some(256)),     // SACK-perm length 3: skipped
            (&[8, 8, 0, 0, 0, 0, 0, 0][..], None),       // TS length 8
            (&[5, 2, 2, 4, 1, 0][..], Some(256)),        // SACK with no block: skipped
            (&[5, 6, 0, 0, 0, 0][..], None),             // SACK with half a block
            (&[2, 4, 1, 0, 30, 1][..], Some(256)),       // length below 2 ends it
            (&[2, 4, 1, 0, 30][..], Some(256)),          // kind with no length byte
            (&[30, 0, 2, 4, 1, 0][..], None),            // length 0 would loop forever
            (&[2, 4, 1, 0, 2, 40, 0, 0][..], Some(256)), // past the area ends it
        ] {
            let o = TcpOptions::parse(area).unwrap_or_else(|e| panic!("{area:?}: {e:?}"));
            assert_eq!(o.mss, mss, "{area:?}");
            assert_eq!(o.window_scale, None, "{area:?}");
            assert!(!o.sack_permitted && o.timestamps.is_none() && o.sack().is_empty());
        }
    }

    #[test]
    fn an_md5_signature_is_malformed_as_linux_drops_it_without_a_key() {
        let mut area = vec![19, 18];
        area.extend_from_slice(&[0; 16]);
        assert_eq!(TcpOptions::parse(&area), Err(Error::Malformed));
    }

    #[test]
    fn data_offset_below_five_is_malformed_and_past_buffer_truncated() {
        let mut buf = emit(&syn(), &[]);
        buf[12] = 4 << 4;
        assert_eq!(
            TcpPacket::new_checked(&buf[..]).err(),
            Some(Error::Malformed)
        );
        buf[12] = 15 << 4;
        assert_eq!(
            TcpPacket::new_checked(&buf[..]).err(),
            Some(Error::Truncated)
        );
        assert_eq!(
            TcpPacket::new_checked(&buf[..19]).err(),
            Some(Error::Truncated)
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn parse_inverts_emit(
            repr in arb_repr(),
            payload in proptest::collection::vec(any::<u8>(), 0..64),
            v6 in any::<bool>(),
        ) {
            let (src, dst) = if v6 { (A6, B6) } else { (A4, B4) };
            prop_assert!(repr.header_len() <= 60 && repr.header_len() % 4 == 0);
            let mut buf = vec![0; repr.buffer_len(payload.len())];
            prop_assert_eq!(repr.emit(&mut buf, src, dst, &payload), Ok(buf.len()));
            let (parsed, got) = TcpRepr::parse_segment(&buf, src, dst).unwrap();
            prop_assert_eq!(parsed, repr);
            prop_assert_eq!(got, &payload[..]);
        }

        #[test]
        fn single_bit_flips_are_detected(
            repr in arb_repr(),
            payload in proptest::collection::vec(any::<u8>(), 0..16),
            bit in any::<usize>(),
        ) {
            let mut buf = vec![0; repr.buffer_len(payload.len())];
            repr.emit(&mut buf, A6, B6, &payload).unwrap();
            let at = (bit / 8) % buf.len();
            buf[at] ^= 1 << (bit % 8);
            prop_assert!(TcpRepr::parse_segment(&buf, A6, B6).is_err());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = TcpRepr::parse_segment(&bytes, A4, B4);
            let _ = TcpOptions::parse(&bytes);
            if let Ok(p) = TcpPacket::new_checked(&bytes[..]) {
                prop_assert!(p.options().len() <= 40);
                prop_assert_eq!(p.header_len() + p.payload().len(), bytes.len());
            }
        }

        #[test]
        fn mutated_valid_segments_never_panic(
            repr in arb_repr(),
            flips in proptest::collection::vec((0usize..64, any::<u8>()), 1..6),
        ) {
            let mut buf = vec![0; repr.buffer_len(4)];
            repr.emit(&mut buf, A4, B4, b"abcd").unwrap();
            for (at, x) in flips {
                if let Some(b) = buf.get_mut(at) {
                    *b ^= x;
                }
            }
            let _ = TcpRepr::parse_segment(&buf, A4, B4);
            if let Ok(p) = TcpPacket::new_checked(&buf[..]) {
                let _ = TcpOptions::parse(p.options());
            }
        }
    }
}
