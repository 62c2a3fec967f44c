//! The sans-IO stack core.
