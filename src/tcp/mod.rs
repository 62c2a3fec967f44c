//! The TCP engine (sans-IO).
