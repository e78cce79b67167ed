//! Which (address, port) pairs answer: the target plan, its order, its
//! progress, and the two engines that walk it (kernel connects and raw SYN
//! probes). Nothing here speaks TLS; open ports leave as connected sockets
//! or addresses for `probe`.

pub mod checkpoint;
pub mod connect;
pub mod examining;
pub mod hosts;
pub mod pacing;
pub mod permute;
pub mod rtt;
pub mod syn;
pub mod targets;
