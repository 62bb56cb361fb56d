//! I/O: reading the servers. Everything here feeds the pure `domain` types.

pub mod connect;
pub mod poller;
pub mod postgres;
pub mod queries;
pub mod rds;
pub mod reading;
