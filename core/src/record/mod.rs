//! Recording a session at the engine boundary, and reading recordings back.
//!
//! A recording holds what the protocol layer saw **above TLS**: every frame
//! of plaintext the engine processed with its time, every timeout, end of
//! stream and application command, and every plaintext byte and event the
//! engine produced. TLS records are not kept (their keys come from the
//! crypto provider, not the seed), so a replay (`engine/replay.rs`) runs the
//! same engine without TLS and compares plaintext.
//!
//! Secrets: the Client Info password is overwritten with zeros before the
//! frame is written, and the verdict of the password check is recorded
//! instead, so a replay reproduces the logon without the password. Under
//! NLA the password only travels sealed inside CredSSP (with NTLM keys that
//! need the account's NT hash to derive), so the replay needs the same
//! credential validator, and the recording never holds the password in clear.
//!
//! Imports: `wire` (the cursor) and `api` (what is recorded). The engine
//! above writes through [`recorder::Recorder`]; the replay reads through
//! [`reader`].

pub(crate) mod channel_command;
pub(crate) mod format;
pub(crate) mod reader;
pub(crate) mod recorder;
