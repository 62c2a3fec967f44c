//! The IP layer's stateful parts: fragment reassembly and fragmentation.
