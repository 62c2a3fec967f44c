//! Fragmentation on send.
