//! Configuration from the `USTACK_*` environment variables.
