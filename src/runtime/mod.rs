//! The runtime thread that drives a stack over a link.
