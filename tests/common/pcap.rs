//! The packet fixtures (`tests/fixtures/*.pcap`, captured on a TUN device):
//! read by the wire tests and used as seeds by the stable fuzz run.

use std::path::{Path, PathBuf};

/// The fixtures directory.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The records of a little-endian microsecond pcap file with
/// LINKTYPE_RAW (101), as tcpdump writes for a TUN device.
pub fn records(name: &str) -> Vec<Vec<u8>> {
    read(&dir().join(name), 101)
}

/// The records of the little-endian microsecond pcap file at `path`, whose
/// link type must be `linktype`.
pub fn read(path: &Path, linktype: u32) -> Vec<Vec<u8>> {
    let name = path.display();
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(&bytes[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "{name}: pcap magic");
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    assert_eq!(u32_at(20), linktype, "{name}: link type");
    let mut records = vec![];
    let mut at = 24;
    while at < bytes.len() {
        let caplen = u32_at(at + 8) as usize;
        assert_eq!(
            caplen,
            u32_at(at + 12) as usize,
            "{name}: whole packets only"
        );
        records.push(bytes[at + 16..at + 16 + caplen].to_vec());
        at += 16 + caplen;
    }
    records
}
