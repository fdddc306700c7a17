//! CredSSP (MS-CSSP), server side, over NTLM: the TSRequest exchange after
//! TLS, the public key binding, and the delegated password credentials.
//!
//! [MS-CSSP 2.2.1](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-cssp/6aac4dea-08ef-47a6-8747-22ea7f6d8685):
//! `TSRequest ::= SEQUENCE { version [0] INTEGER, negoTokens [1] NegoData OPTIONAL,
//! authInfo [2] OCTET STRING OPTIONAL, pubKeyAuth [3] OCTET STRING OPTIONAL,
//! errorCode [4] INTEGER OPTIONAL, clientNonce [5] OCTET STRING OPTIONAL }`.
//!
//! Both INTEGERs are signed: `version` is read as such so a negative one is
//! refused, and `errorCode` is an NTSTATUS, a signed 32-bit value (MS-DTYP
//! 2.2.38), so 0xC000006D goes on the wire as the four bytes `C0 00 00 6D`.

#[cfg(test)]
use crate::security::ntlm;
use bytes::BufMut;
use sha2::{Digest, Sha256};

use crate::security::ntlm::{NtHashSource, NtlmError, NtlmServer, ServerNames, SessionSecurity};
use crate::security::password::Password;
use crate::wire::ber;
use crate::wire::cursor::ReadCursor;
use crate::wire::error::DecodeError;
use crate::wire::utf16;

/// The version this server speaks; the exchange runs at the lower of ours
/// and the client's.
pub const SERVER_VERSION: u32 = 6;
/// Largest TSRequest accepted.
pub const MAX_TS_REQUEST: usize = 16 * 1024;
const CLIENT_SERVER_HASH_MAGIC: &[u8] = b"CredSSP Client-To-Server Binding Hash\0";
const SERVER_CLIENT_HASH_MAGIC: &[u8] = b"CredSSP Server-To-Client Binding Hash\0";
/// STATUS_LOGON_FAILURE, reported in errorCode (version 3 and later).
const STATUS_LOGON_FAILURE: u32 = 0xC000_006D;
/// credType of TSPasswordCreds.
const CRED_TYPE_PASSWORD: u32 = 1;
const NTLM_SIGNATURE: &[u8] = b"NTLMSSP\0";
/// The SPNEGO mechanism OID of NTLM (1.3.6.1.4.1.311.2.2.10), DER content.
const NTLM_OID: [u8; 10] = [0x2B, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0A];

/// Why CredSSP failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredSspError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("ntlm: {0}")]
    Ntlm(#[from] NtlmError),
    #[error("client credssp version {0} is below the accepted minimum")]
    VersionTooOld(u32),
    #[error("public key binding does not match the served certificate")]
    PublicKeyMismatch,
    #[error("client nonce missing for credssp version 5 or later")]
    MissingNonce,
    #[error("empty password")]
    EmptyPassword,
    #[error("delegated credentials name another user than the one authenticated")]
    AccessDenied,
    #[error("unexpected ts request in this state")]
    OutOfOrder,
    #[error("client reported error {0:#x}")]
    ClientError(u32),
}

impl CredSspError {
    /// Whether the failure comes after the user proved the password, so HYBRID_EX
    /// clients are told with the Early User Authorization Result.
    pub fn is_authorization_failure(&self) -> bool {
        matches!(self, Self::EmptyPassword | Self::AccessDenied)
    }

    /// Whether the failure is the user's credentials rather than the protocol.
    pub fn is_authentication_failure(&self) -> bool {
        matches!(
            self,
            Self::Ntlm(
                NtlmError::WrongPassword { .. }
                    | NtlmError::UnknownUser { .. }
                    | NtlmError::BadMic
                    | NtlmError::MissingMic
            ) | Self::EmptyPassword
        )
    }
}

/// A decoded TSRequest.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TsRequest {
    pub version: u32,
    pub nego_tokens: Vec<Vec<u8>>,
    pub auth_info: Option<Vec<u8>>,
    pub pub_key_auth: Option<Vec<u8>>,
    /// An NTSTATUS, held as its 32 bits (0xC000_006D) and sent as the
    /// signed INTEGER it is.
    pub error_code: Option<u32>,
    pub client_nonce: Option<[u8; 32]>,
}

/// The length of the TSRequest at the start of `buf` (a DER SEQUENCE), or
/// `None` while incomplete.
pub fn frame_length(buf: &[u8], max_len: usize) -> Result<Option<usize>, DecodeError> {
    if buf.is_empty() {
        return Ok(None);
    }
    if buf[0] != ber::TAG_SEQUENCE {
        return Err(DecodeError::Unexpected {
            context: "ts request",
            what: "der tag",
            value: u32::from(buf[0]),
        });
    }
    let Some(&first) = buf.get(1) else {
        return Ok(None);
    };
    // MS-CSSP encodes TSRequest in DER, whose lengths are minimal; a
    // length in a longer form than needed (`82 00 05`) is still a definite
    // BER length and unambiguous, so it is read as `ber::read_length` reads
    // it. The indefinite form, the reserved `FF` and lengths past 32 bits
    // stay refused.
    let (header, length) = if first & 0x80 == 0 {
        (2, usize::from(first))
    } else {
        let count = usize::from(first & 0x7F);
        if count == 0 || count == 0x7F {
            return Err(DecodeError::InvalidField {
                context: "ts request",
                field: "der length",
                reason: "indefinite or reserved form",
            });
        }
        let Some(bytes) = buf.get(2..2 + count) else {
            return Ok(None);
        };
        let mut length: u32 = 0;
        for &byte in bytes {
            if length >> 24 != 0 {
                return Err(DecodeError::InvalidField {
                    context: "ts request",
                    field: "der length",
                    reason: "longer than 32 bits",
                });
            }
            length = (length << 8) | u32::from(byte);
        }
        (2 + count, length as usize)
    };
    let total = header + length;
    if total > max_len {
        return Err(DecodeError::TooLarge {
            context: "ts request",
            size: total,
            limit: max_len,
        });
    }
    Ok((buf.len() >= total).then_some(total))
}

fn read_context<'a>(
    cursor: &mut ReadCursor<'a>,
    number: u8,
) -> Result<Option<ReadCursor<'a>>, DecodeError> {
    if cursor.is_empty() || cursor.peek_u8()? != 0xA0 | number {
        return Ok(None);
    }
    cursor.read_u8()?;
    let length = ber::read_length(cursor)?;
    Ok(Some(ReadCursor::new(
        cursor.read_slice(length)?,
        "ts request field",
    )))
}

fn write_context(out: &mut Vec<u8>, number: u8, content: &[u8]) {
    out.put_u8(0xA0 | number);
    ber::write_length(out, content.len());
    out.put_slice(content);
}

fn write_sequence(out: &mut Vec<u8>, content: &[u8]) {
    out.put_u8(ber::TAG_SEQUENCE);
    ber::write_length(out, content.len());
    out.put_slice(content);
}

fn octet_string(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 4);
    ber::write_octet_string(&mut out, value);
    out
}

fn integer(value: u32) -> Vec<u8> {
    let mut out = Vec::new();
    ber::write_integer(&mut out, value);
    out
}

impl TsRequest {
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut outer = ReadCursor::new(bytes, "ts request");
        let length = ber::read_tag(&mut outer, ber::TAG_SEQUENCE)?;
        let mut cursor = ReadCursor::new(outer.read_slice(length)?, "ts request");
        let mut request = Self::default();
        let mut version =
            read_context(&mut cursor, 0)?.ok_or(cursor.invalid("version", "missing"))?;
        request.version = u32::try_from(ber::read_signed_integer(&mut version)?)
            .map_err(|_| cursor.invalid("version", "negative"))?;
        if let Some(mut tokens) = read_context(&mut cursor, 1)? {
            let length = ber::read_tag(&mut tokens, ber::TAG_SEQUENCE)?;
            let mut list = ReadCursor::new(tokens.read_slice(length)?, "nego data");
            while !list.is_empty() {
                let length = ber::read_tag(&mut list, ber::TAG_SEQUENCE)?;
                let mut item = ReadCursor::new(list.read_slice(length)?, "nego data item");
                let mut token =
                    read_context(&mut item, 0)?.ok_or(item.invalid("negoToken", "missing"))?;
                request
                    .nego_tokens
                    .push(ber::read_octet_string(&mut token)?.to_vec());
            }
        }
        if let Some(mut field) = read_context(&mut cursor, 2)? {
            request.auth_info = Some(ber::read_octet_string(&mut field)?.to_vec());
        }
        if let Some(mut field) = read_context(&mut cursor, 3)? {
            request.pub_key_auth = Some(ber::read_octet_string(&mut field)?.to_vec());
        }
        if let Some(mut field) = read_context(&mut cursor, 4)? {
            // The NTSTATUS's bits, whatever its sign.
            request.error_code = Some(ber::read_signed_integer(&mut field)? as u32);
        }
        if let Some(mut field) = read_context(&mut cursor, 5)? {
            let nonce = ber::read_octet_string(&mut field)?;
            request.client_nonce = Some(
                nonce
                    .try_into()
                    .map_err(|_| field.invalid("clientNonce", "not 32 bytes"))?,
            );
        }
        Ok(request)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut fields = Vec::new();
        write_context(&mut fields, 0, &integer(self.version));
        if !self.nego_tokens.is_empty() {
            let mut list = Vec::new();
            for token in &self.nego_tokens {
                let mut item = Vec::new();
                write_context(&mut item, 0, &octet_string(token));
                write_sequence(&mut list, &item);
            }
            let mut data = Vec::new();
            write_sequence(&mut data, &list);
            write_context(&mut fields, 1, &data);
        }
        if let Some(auth_info) = &self.auth_info {
            write_context(&mut fields, 2, &octet_string(auth_info));
        }
        if let Some(pub_key_auth) = &self.pub_key_auth {
            write_context(&mut fields, 3, &octet_string(pub_key_auth));
        }
        if let Some(code) = self.error_code {
            let mut status = Vec::new();
            // The same 32 bits, read as the signed NTSTATUS they are.
            ber::write_signed_integer(&mut status, code as i32);
            write_context(&mut fields, 4, &status);
        }
        if let Some(nonce) = &self.client_nonce {
            write_context(&mut fields, 5, &octet_string(nonce));
        }
        let mut out = Vec::new();
        write_sequence(&mut out, &fields);
        out
    }
}

/// Delegated password credentials (TSPasswordCreds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordCredentials {
    pub domain: String,
    pub user: String,
    pub password: Password,
}

impl PasswordCredentials {
    /// Decodes TSCredentials carrying TSPasswordCreds.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut outer = ReadCursor::new(bytes, "ts credentials");
        let length = ber::read_tag(&mut outer, ber::TAG_SEQUENCE)?;
        let mut cursor = ReadCursor::new(outer.read_slice(length)?, "ts credentials");
        let mut kind =
            read_context(&mut cursor, 0)?.ok_or(cursor.invalid("credType", "missing"))?;
        if ber::read_integer(&mut kind)? != CRED_TYPE_PASSWORD {
            return Err(cursor.invalid("credType", "only password credentials are supported"));
        }
        let mut field =
            read_context(&mut cursor, 1)?.ok_or(cursor.invalid("credentials", "missing"))?;
        let inner = ber::read_octet_string(&mut field)?;
        let mut outer = ReadCursor::new(inner, "ts password creds");
        let length = ber::read_tag(&mut outer, ber::TAG_SEQUENCE)?;
        let mut creds = ReadCursor::new(outer.read_slice(length)?, "ts password creds");
        let mut strings = [String::new(), String::new(), String::new()];
        for (number, slot) in strings.iter_mut().enumerate() {
            let mut field = read_context(&mut creds, number as u8)?
                .ok_or(creds.invalid("password creds", "field missing"))?;
            let raw = ber::read_octet_string(&mut field)?;
            *slot = utf16::decode(raw, "ts password creds", "credential string")?;
        }
        let [domain, user, password] = strings;
        Ok(Self {
            domain,
            user,
            password: Password::new(password),
        })
    }

    #[cfg(any(test, feature = "fuzzing"))]
    pub fn encode(&self) -> Vec<u8> {
        let mut fields = Vec::new();
        write_context(&mut fields, 0, &octet_string(&utf16::encode(&self.domain)));
        write_context(&mut fields, 1, &octet_string(&utf16::encode(&self.user)));
        write_context(
            &mut fields,
            2,
            &octet_string(&utf16::encode(self.password.expose())),
        );
        let mut password_creds = Vec::new();
        write_sequence(&mut password_creds, &fields);
        let mut outer = Vec::new();
        write_context(&mut outer, 0, &integer(CRED_TYPE_PASSWORD));
        write_context(&mut outer, 1, &octet_string(&password_creds));
        let mut out = Vec::new();
        write_sequence(&mut out, &outer);
        out
    }
}

/// The NTLM token inside a negoToken, unwrapping SPNEGO when the client used
/// it. Returns the token and whether it was wrapped.
fn unwrap_token(token: &[u8]) -> Result<(&[u8], bool), DecodeError> {
    if token.starts_with(NTLM_SIGNATURE) {
        return Ok((token, false));
    }
    // SPNEGO (RFC 4178): find the mechToken / responseToken OCTET STRING that
    // holds an NTLM message, walking the DER without trusting any length.
    let start = token
        .windows(NTLM_SIGNATURE.len())
        .position(|window| window == NTLM_SIGNATURE)
        .ok_or(DecodeError::InvalidField {
            context: "spnego",
            field: "mechToken",
            reason: "no ntlm message inside",
        })?;
    // The OCTET STRING header right before the message gives its length.
    let mut length = None;
    for offset in (0..start).rev().take(4) {
        if token[offset] == ber::TAG_OCTET_STRING {
            let mut header = ReadCursor::new(&token[offset + 1..], "spnego");
            length = Some(ber::read_length(&mut header)?);
            break;
        }
    }
    let length = length.ok_or(DecodeError::InvalidField {
        context: "spnego",
        field: "mechToken",
        reason: "not an octet string",
    })?;
    let message = token
        .get(start..start + length)
        .ok_or(DecodeError::Truncated {
            context: "spnego",
            needed: length,
            available: token.len() - start,
        })?;
    Ok((message, true))
}

/// Wraps an NTLM message in a SPNEGO NegTokenResp.
fn wrap_token(message: Option<&[u8]>, complete: bool) -> Vec<u8> {
    let mut fields = Vec::new();
    // negState: accept-completed (0) or accept-incomplete (1).
    let mut state = Vec::new();
    ber::write_enumerated(&mut state, if complete { 0 } else { 1 });
    write_context(&mut fields, 0, &state);
    if !complete {
        let mut oid = vec![0x06, NTLM_OID.len() as u8];
        oid.extend_from_slice(&NTLM_OID);
        write_context(&mut fields, 1, &oid);
    }
    if let Some(message) = message {
        write_context(&mut fields, 2, &octet_string(message));
    }
    let mut sequence = Vec::new();
    write_sequence(&mut sequence, &fields);
    let mut out = Vec::new();
    write_context(&mut out, 1, &sequence);
    out
}

/// Extracts subjectPublicKey (the BIT STRING content, unused-bits byte
/// removed) from a DER X.509 certificate: what CredSSP binds to.
pub fn subject_public_key(certificate: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let mut outer = ReadCursor::new(certificate, "x.509 certificate");
    let length = ber::read_tag(&mut outer, ber::TAG_SEQUENCE)?;
    let mut certificate = ReadCursor::new(outer.read_slice(length)?, "x.509 certificate");
    let length = ber::read_tag(&mut certificate, ber::TAG_SEQUENCE)?;
    let mut tbs = ReadCursor::new(certificate.read_slice(length)?, "tbs certificate");
    if tbs.peek_u8()? == 0xA0 {
        skip_element(&mut tbs)?; // version
    }
    for _ in 0..5 {
        // serialNumber, signature, issuer, validity, subject
        skip_element(&mut tbs)?;
    }
    let length = ber::read_tag(&mut tbs, ber::TAG_SEQUENCE)?;
    let mut info = ReadCursor::new(tbs.read_slice(length)?, "subject public key info");
    skip_element(&mut info)?; // algorithm
    let length = ber::read_tag(&mut info, 0x03)?;
    let bits = info.read_slice(length)?;
    match bits.split_first() {
        Some((0, key)) => Ok(key.to_vec()),
        _ => Err(info.invalid("subjectPublicKey", "not a whole number of bytes")),
    }
}

fn skip_element(cursor: &mut ReadCursor<'_>) -> Result<(), DecodeError> {
    cursor.read_u8()?;
    let length = ber::read_length(cursor)?;
    cursor.skip(length)
}

/// The server side of one CredSSP exchange.
#[derive(Debug)]
pub struct CredSspServer {
    state: State,
    public_key: Vec<u8>,
    minimum_version: u32,
    spnego: bool,
}

#[derive(Debug)]
enum State {
    Negotiate,
    Authenticate {
        ntlm: Box<NtlmServer>,
        version: u32,
    },
    Credentials {
        session: Box<SessionSecurity>,
        user: String,
        domain: String,
    },
    Done,
}

/// What the engine does after feeding one TSRequest.
#[derive(Debug)]
pub enum Step {
    /// Send this TSRequest and wait for the next.
    Reply(Vec<u8>),
    /// Authentication finished: the delegated credentials.
    Done(PasswordCredentials),
}

/// Inputs the exchange needs from the engine.
pub struct Context<'a> {
    pub hashes: &'a dyn NtHashSource,
    pub server_challenge: [u8; 8],
    /// FILETIME for the CHALLENGE timestamp.
    pub timestamp: u64,
    /// Refuse an NTLM AUTHENTICATE without a MIC (`SecurityConfig::require_ntlm_mic`).
    pub require_mic: bool,
}

impl CredSspServer {
    pub fn new(public_key: Vec<u8>, minimum_version: u32) -> Self {
        Self {
            state: State::Negotiate,
            public_key,
            minimum_version,
            spnego: false,
        }
    }

    /// The TSRequest telling the client why authentication failed (version 3+).
    pub fn failure_reply(&self) -> Vec<u8> {
        TsRequest {
            version: SERVER_VERSION,
            error_code: Some(STATUS_LOGON_FAILURE),
            ..TsRequest::default()
        }
        .encode()
    }

    pub fn handle(&mut self, bytes: &[u8], context: &Context<'_>) -> Result<Step, CredSspError> {
        let request = TsRequest::decode(bytes)?;
        if let Some(code) = request.error_code {
            return Err(CredSspError::ClientError(code));
        }
        match std::mem::replace(&mut self.state, State::Done) {
            State::Negotiate => {
                if request.version < self.minimum_version {
                    return Err(CredSspError::VersionTooOld(request.version));
                }
                let token = request
                    .nego_tokens
                    .first()
                    .ok_or(CredSspError::OutOfOrder)?;
                let (negotiate, spnego) = unwrap_token(token)?;
                tracing::debug!(version = request.version, spnego, "CredSSP negotiation");
                self.spnego = spnego;
                let names = ServerNames::default();
                let (ntlm, challenge) = NtlmServer::new(
                    negotiate,
                    context.server_challenge,
                    context.timestamp,
                    &names,
                )?;
                let token = if spnego {
                    wrap_token(Some(&challenge), false)
                } else {
                    challenge
                };
                self.state = State::Authenticate {
                    ntlm: Box::new(ntlm),
                    version: request.version.min(SERVER_VERSION),
                };
                Ok(Step::Reply(
                    TsRequest {
                        version: SERVER_VERSION,
                        nego_tokens: vec![token],
                        ..TsRequest::default()
                    }
                    .encode(),
                ))
            }
            State::Authenticate { ntlm, version } => {
                let token = request
                    .nego_tokens
                    .first()
                    .ok_or(CredSspError::OutOfOrder)?;
                let (authenticate, _) = unwrap_token(token)?;
                let mut done =
                    ntlm.authenticate(authenticate, context.hashes, context.require_mic)?;
                let pub_key_auth = request
                    .pub_key_auth
                    .as_ref()
                    .ok_or(CredSspError::OutOfOrder)?;
                let client_binding = done.session.unseal(pub_key_auth)?;
                let reply = if version >= 5 {
                    let nonce = request.client_nonce.ok_or(CredSspError::MissingNonce)?;
                    let expected = binding_hash(CLIENT_SERVER_HASH_MAGIC, &nonce, &self.public_key);
                    if client_binding != expected {
                        return Err(CredSspError::PublicKeyMismatch);
                    }
                    binding_hash(SERVER_CLIENT_HASH_MAGIC, &nonce, &self.public_key)
                } else {
                    if client_binding != self.public_key {
                        return Err(CredSspError::PublicKeyMismatch);
                    }
                    // Older versions echo the key with its first byte incremented.
                    let mut echoed = self.public_key.clone();
                    if let Some(first) = echoed.first_mut() {
                        *first = first.wrapping_add(1);
                    }
                    echoed
                };
                let sealed = done.session.seal(&reply);
                let nego_tokens = if self.spnego {
                    vec![wrap_token(None, true)]
                } else {
                    Vec::new()
                };
                self.state = State::Credentials {
                    session: Box::new(done.session),
                    user: done.user,
                    domain: done.domain,
                };
                Ok(Step::Reply(
                    TsRequest {
                        version: SERVER_VERSION,
                        nego_tokens,
                        pub_key_auth: Some(sealed),
                        ..TsRequest::default()
                    }
                    .encode(),
                ))
            }
            State::Credentials {
                mut session,
                user,
                domain,
            } => {
                let auth_info = request.auth_info.as_ref().ok_or(CredSspError::OutOfOrder)?;
                let credentials = PasswordCredentials::decode(&session.unseal(auth_info)?)?;
                if credentials.password.is_empty() {
                    return Err(CredSspError::EmptyPassword);
                }
                // The delegated account must be the one NTLM authenticated.
                if !credentials.user.eq_ignore_ascii_case(&user)
                    || !credentials.domain.eq_ignore_ascii_case(&domain)
                {
                    return Err(CredSspError::AccessDenied);
                }
                Ok(Step::Done(credentials))
            }
            State::Done => Err(CredSspError::OutOfOrder),
        }
    }
}

fn binding_hash(magic: &[u8], nonce: &[u8; 32], public_key: &[u8]) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(magic);
    hasher.update(nonce);
    hasher.update(public_key);
    hasher.finalize().to_vec()
}

#[cfg(test)]
/// The client side, for tests of the server.
pub mod client {
    use super::*;

    /// A CredSSP client that builds each TSRequest in turn.
    pub struct ClientExchange {
        version: u32,
        public_key: Vec<u8>,
        user: String,
        domain: String,
        password: String,
        negotiate: Vec<u8>,
        session: Option<SessionSecurity>,
        nonce: [u8; 32],
        delegated_user: Option<String>,
        mic: bool,
    }

    impl ClientExchange {
        pub fn new(
            version: u32,
            public_key: &[u8],
            user: &str,
            domain: &str,
            password: &str,
        ) -> Self {
            let mut negotiate = Vec::new();
            ntlm::NegotiateMessage {
                flags: ntlm::client::CLIENT_FLAGS,
            }
            .encode(&mut negotiate);
            Self {
                version,
                public_key: public_key.to_vec(),
                user: user.into(),
                domain: domain.into(),
                password: password.into(),
                negotiate,
                session: None,
                nonce: [0x5A; 32],
                delegated_user: None,
                mic: true,
            }
        }

        /// Answers the CHALLENGE as a client from before NTLM MICs.
        pub fn without_mic(&mut self) {
            self.mic = false;
        }

        /// Delegates credentials for `user` instead of the authenticated one
        /// (what a confused or hostile client might do).
        pub fn delegate_as(&mut self, user: &str) {
            self.delegated_user = Some(user.into());
        }

        /// TSRequest with NEGOTIATE.
        pub fn first(&self) -> Vec<u8> {
            TsRequest {
                version: self.version,
                nego_tokens: vec![self.negotiate.clone()],
                ..TsRequest::default()
            }
            .encode()
        }

        /// TSRequest with AUTHENTICATE and the public key binding, answering
        /// the server's CHALLENGE.
        pub fn second(&mut self, reply: &[u8]) -> Result<Vec<u8>, CredSspError> {
            let mut reply = TsRequest::decode(reply)?;
            if reply.nego_tokens.is_empty() {
                return Err(CredSspError::OutOfOrder);
            }
            let challenge = reply.nego_tokens.remove(0);
            let (authenticate, mut session) = if self.mic {
                ntlm::client::authenticate(
                    &self.negotiate,
                    &challenge,
                    &self.user,
                    &self.domain,
                    &self.password,
                    [0xAA; 8],
                    [0x42; 16],
                )?
            } else {
                ntlm::client::authenticate_without_mic(
                    &self.negotiate,
                    &challenge,
                    &self.user,
                    &self.domain,
                    &self.password,
                )?
            };
            let binding = if self.version >= 5 {
                binding_hash(CLIENT_SERVER_HASH_MAGIC, &self.nonce, &self.public_key)
            } else {
                self.public_key.clone()
            };
            let request = TsRequest {
                version: self.version,
                nego_tokens: vec![authenticate],
                pub_key_auth: Some(session.seal(&binding)),
                client_nonce: (self.version >= 5).then_some(self.nonce),
                ..TsRequest::default()
            };
            self.session = Some(session);
            Ok(request.encode())
        }

        /// Checks the server's key binding and returns the TSRequest with
        /// the delegated credentials.
        pub fn third(&mut self, reply: &[u8]) -> Result<Vec<u8>, CredSspError> {
            let session = self.session.as_mut().ok_or(CredSspError::OutOfOrder)?;
            let sealed = TsRequest::decode(reply)?
                .pub_key_auth
                .ok_or(CredSspError::OutOfOrder)?;
            let server_binding = session.unseal(&sealed)?;
            let expected = if self.version >= 5 {
                binding_hash(SERVER_CLIENT_HASH_MAGIC, &self.nonce, &self.public_key)
            } else {
                let mut key = self.public_key.clone();
                key[0] = key[0].wrapping_add(1);
                key
            };
            if server_binding != expected {
                return Err(CredSspError::PublicKeyMismatch);
            }
            let credentials = PasswordCredentials {
                domain: self.domain.clone(),
                user: self
                    .delegated_user
                    .clone()
                    .unwrap_or_else(|| self.user.clone()),
                password: Password::new(self.password.clone()),
            };
            Ok(TsRequest {
                version: self.version,
                auth_info: Some(session.seal(&credentials.encode())),
                ..TsRequest::default()
            }
            .encode())
        }
    }

    /// Runs a whole CredSSP exchange against `server` in memory; returns the
    /// server's result for the final message.
    pub fn run(
        server: &mut CredSspServer,
        context: &Context<'_>,
        version: u32,
        public_key: &[u8],
        user: &str,
        domain: &str,
        password: &str,
    ) -> Result<Step, CredSspError> {
        let mut client = ClientExchange::new(version, public_key, user, domain, password);
        let Step::Reply(reply) = server.handle(&client.first(), context)? else {
            return Err(CredSspError::OutOfOrder);
        };
        let Step::Reply(reply) = server.handle(&client.second(&reply)?, context)? else {
            return Err(CredSspError::OutOfOrder);
        };
        server.handle(&client.third(&reply)?, context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Users;

    impl NtHashSource for Users {
        fn nt_hash(&self, user: &str, _domain: &str) -> Option<[u8; 16]> {
            (user == "alice").then(|| ntlm::nt_hash("secret"))
        }
    }

    fn context() -> Context<'static> {
        Context {
            hashes: &Users,
            server_challenge: [1, 2, 3, 4, 5, 6, 7, 8],
            timestamp: 0x01DA_0000_0000_0000,
            require_mic: false,
        }
    }

    const KEY: &[u8] = &[0x30, 0x82, 0x01, 0x0A, 0x02, 0x82, 0x01, 0x01, 0x00, 0xC3];

    #[test]
    fn every_version_completes_and_delivers_credentials() {
        for version in 2..=6 {
            let mut server = CredSspServer::new(KEY.to_vec(), 2);
            let step = client::run(
                &mut server,
                &context(),
                version,
                KEY,
                "alice",
                "CONTOSO",
                "secret",
            )
            .unwrap();
            let Step::Done(credentials) = step else {
                panic!("version {version} did not finish");
            };
            assert_eq!(
                (credentials.user.as_str(), credentials.domain.as_str()),
                ("alice", "CONTOSO")
            );
            assert!(credentials.password.matches("secret"));
        }
    }

    #[test]
    fn failures_are_typed() {
        let mut server = CredSspServer::new(KEY.to_vec(), 2);
        let error = client::run(&mut server, &context(), 6, KEY, "alice", "", "wrong").unwrap_err();
        assert!(error.is_authentication_failure(), "{error:?}");
        // A client that bound another key: a man in the middle.
        let mut server = CredSspServer::new(KEY.to_vec(), 2);
        let error = client::run(
            &mut server,
            &context(),
            6,
            &[1, 2, 3],
            "alice",
            "",
            "secret",
        )
        .unwrap_err();
        assert_eq!(error, CredSspError::PublicKeyMismatch);
        let mut server = CredSspServer::new(KEY.to_vec(), 2);
        let error = client::run(
            &mut server,
            &context(),
            4,
            &[9, 9, 9],
            "alice",
            "",
            "secret",
        )
        .unwrap_err();
        assert_eq!(error, CredSspError::PublicKeyMismatch);
        let mut server = CredSspServer::new(KEY.to_vec(), 5);
        let error =
            client::run(&mut server, &context(), 4, KEY, "alice", "", "secret").unwrap_err();
        assert_eq!(error, CredSspError::VersionTooOld(4));
        let mut server = CredSspServer::new(KEY.to_vec(), 2);
        let error = client::run(&mut server, &context(), 6, KEY, "alice", "", "").unwrap_err();
        assert!(error.is_authentication_failure());
    }

    #[test]
    fn ts_request_round_trips_and_rejects_garbage() {
        let request = TsRequest {
            version: 6,
            nego_tokens: vec![vec![1; 300]],
            auth_info: Some(vec![2; 3]),
            pub_key_auth: Some(vec![3; 200]),
            error_code: Some(STATUS_LOGON_FAILURE),
            client_nonce: Some([4; 32]),
        };
        let encoded = request.encode();
        assert_eq!(
            frame_length(&encoded, MAX_TS_REQUEST).unwrap(),
            Some(encoded.len())
        );
        assert_eq!(frame_length(&encoded[..10], MAX_TS_REQUEST).unwrap(), None);
        assert_eq!(TsRequest::decode(&encoded).unwrap(), request);
        for end in 0..encoded.len() {
            assert!(TsRequest::decode(&encoded[..end]).is_err());
        }
        assert!(frame_length(&[0x31, 0x00], 100).is_err());
        // The same request with its outer length in longer forms.
        let body = &encoded[4..];
        assert_eq!(encoded[1], 0x82);
        for header in [
            vec![0x30, 0x83, 0x00],
            vec![0x30, 0x84, 0x00, 0x00],
            vec![0x30, 0x88, 0, 0, 0, 0, 0, 0],
        ] {
            let mut longer = header.clone();
            longer.extend_from_slice(&encoded[2..4]);
            longer.extend_from_slice(body);
            assert_eq!(
                frame_length(&longer, MAX_TS_REQUEST).unwrap(),
                Some(longer.len())
            );
            assert_eq!(TsRequest::decode(&longer).unwrap(), request);
        }
        // Still refused: indefinite, reserved, past 32 bits.
        assert!(frame_length(&[0x30, 0x80, 0x00], 100).is_err());
        assert!(frame_length(&[0x30, 0xFF, 0x00], 100).is_err());
        assert!(frame_length(&[0x30, 0x85, 1, 0, 0, 0, 0], 100).is_err());
        assert!(matches!(
            frame_length(&[0x30, 0x82, 0xFF, 0xFF], 100),
            Err(DecodeError::TooLarge { .. })
        ));
        let mut bad_nonce = request.clone();
        bad_nonce.client_nonce = None;
        let mut bytes = bad_nonce.encode();
        // Append a 3-byte nonce field by hand and fix the outer length.
        bytes.extend_from_slice(&[0xA5, 0x05, 0x04, 0x03, 1, 2, 3]);
        let body_len = bytes.len() - 4;
        bytes[2..4].copy_from_slice(&(body_len as u16).to_be_bytes());
        assert!(TsRequest::decode(&bytes).is_err());
    }

    /// The errorCode is an NTSTATUS, a signed INTEGER: 0xC000006D is the
    /// four bytes `C0 00 00 6D`, not an unsigned five-byte `00 C0 00 00 6D`
    /// that sspi (IronRDP) refuses with "invalid integer len".
    #[test]
    fn failure_reply_carries_logon_failure_as_a_signed_integer() {
        let reply = CredSspServer::new(KEY.to_vec(), 2).failure_reply();
        assert_eq!(
            reply,
            [
                0x30, 0x0D, // TSRequest
                0xA0, 0x03, 0x02, 0x01, 0x06, // version 6
                0xA4, 0x06, 0x02, 0x04, 0xC0, 0x00, 0x00, 0x6D, // errorCode
            ]
        );
        let decoded = TsRequest::decode(&reply).unwrap();
        assert_eq!(decoded.error_code, Some(STATUS_LOGON_FAILURE));
    }

    #[test]
    fn signed_fields_decode_by_their_sign() {
        // errorCode -1 in its shortest form is 0xFFFFFFFF, not 0xFF.
        let short = [
            0x30, 0x0A, 0xA0, 0x03, 0x02, 0x01, 0x06, 0xA4, 0x03, 0x02, 0x01, 0xFF,
        ];
        assert_eq!(
            TsRequest::decode(&short).unwrap().error_code,
            Some(0xFFFF_FFFF)
        );
        // A negative version is refused, not read as 255.
        let negative = [0x30, 0x05, 0xA0, 0x03, 0x02, 0x01, 0xFF];
        assert!(TsRequest::decode(&negative).is_err());
    }

    #[test]
    fn spnego_tokens_are_unwrapped() {
        let ntlm = b"NTLMSSP\0\x01\0\0\0abcd";
        let wrapped = wrap_token(Some(ntlm), false);
        let (inner, spnego) = unwrap_token(&wrapped).unwrap();
        assert!(spnego);
        assert_eq!(inner, ntlm);
        assert!(unwrap_token(&[0x60, 0x03, 0x06, 0x01, 0x00]).is_err());
    }

    #[test]
    fn public_key_comes_from_the_certificate() {
        let der = [
            0x30, 0x1F, // Certificate
            0x30, 0x18, // tbsCertificate
            0xA0, 0x03, 0x02, 0x01, 0x02, // version
            0x02, 0x01, 0x01, // serial
            0x30, 0x00, 0x30, 0x00, 0x30, 0x00, 0x30, 0x00, // alg, issuer, validity, subject
            0x30, 0x06, 0x30, 0x00, 0x03, 0x02, 0x00, 0xAB, // spki
            0x30, 0x00, 0x03, 0x01, 0x00, // signature alg + value
        ];
        assert_eq!(subject_public_key(&der).unwrap(), [0xAB]);
        assert!(subject_public_key(&der[..10]).is_err());
    }

    /// An RSA certificate, as Windows serves: the binding covers the
    /// RSAPublicKey DER inside the BIT STRING (MS-CSSP 3.1.5: "the
    /// ASN.1-encoded SubjectPublicKey sub-field of SubjectPublicKeyInfo").
    #[test]
    fn rsa_public_key_comes_from_the_certificate() {
        let der = include_bytes!("../tests/fixtures/test-rsa2048-cert.der");
        let key = subject_public_key(der).unwrap();
        // SEQUENCE { INTEGER modulus (2048 bits, a zero byte first), INTEGER 65537 }.
        assert_eq!(key.len(), 270);
        assert_eq!(
            &key[..9],
            &[0x30, 0x82, 0x01, 0x0A, 0x02, 0x82, 0x01, 0x01, 0x00]
        );
        assert_eq!(&key[key.len() - 5..], &[0x02, 0x03, 0x01, 0x00, 0x01]);
        for end in 0..der.len() {
            assert!(subject_public_key(&der[..end]).is_err());
        }
    }
}
