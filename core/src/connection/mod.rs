//! The connection sequence (MS-RDPBCGR 1.3.1.1) from the X.224 Connection
//! Request to finalization, and the PDUs only it uses: Client Info,
//! licensing, capability sets, share headers, Demand/Confirm Active and the
//! finalization and other share data PDUs.
//!
//! Imports: `wire`, `security`, `api`, `transport`.

pub(crate) mod capabilities;
pub(crate) mod client_info;
pub(crate) mod codecs;
pub(crate) mod data_pdus;
pub(crate) mod finalization;
pub(crate) mod handshake;
pub(crate) mod licensing;
pub(crate) mod redirection;
pub(crate) mod share;
