//! TUN (stub)
pub struct TunConfig;
pub struct TunDevice;
