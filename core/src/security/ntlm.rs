//! NTLM (MS-NLMP), server side: NEGOTIATE in, CHALLENGE out, AUTHENTICATE
//! verified with NTLMv2 (NTOWFv2, NTProofStr, MIC), then message sealing and
//! signing with the negotiated keys for CredSSP.
//!
//! Only NTLMv2 with extended session security is accepted: NTLMv1 and LM
//! responses are refused, as every current client supports v2.

use bytes::BufMut;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use rc4::cipher::{KeyInit, StreamCipher, consts::U16};

use crate::wire::cursor::ReadCursor;
use crate::wire::error::DecodeError;
use crate::wire::utf16;

type HmacMd5 = Hmac<Md5>;
type Rc4 = rc4::Rc4<U16>;

const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";
const NEGOTIATE_MESSAGE: u32 = 1;
const CHALLENGE_MESSAGE: u32 = 2;
const AUTHENTICATE_MESSAGE: u32 = 3;
/// Largest NTLM message accepted; real ones are a few hundred bytes.
const MAX_MESSAGE_LEN: usize = 8 * 1024;

/// NegotiateFlags (MS-NLMP 2.2.2.5).
pub mod flags {
    pub const UNICODE: u32 = 0x0000_0001;
    pub const REQUEST_TARGET: u32 = 0x0000_0004;
    pub const SIGN: u32 = 0x0000_0010;
    pub const SEAL: u32 = 0x0000_0020;
    pub const NTLM: u32 = 0x0000_0200;
    pub const ALWAYS_SIGN: u32 = 0x0000_8000;
    pub const TARGET_TYPE_SERVER: u32 = 0x0002_0000;
    pub const EXTENDED_SESSIONSECURITY: u32 = 0x0008_0000;
    pub const TARGET_INFO: u32 = 0x0080_0000;
    pub const VERSION: u32 = 0x0200_0000;
    pub const NEGOTIATE_128: u32 = 0x2000_0000;
    pub const KEY_EXCH: u32 = 0x4000_0000;
    pub const NEGOTIATE_56: u32 = 0x8000_0000;

    /// What this server negotiates: NTLMv2 with extended session security,
    /// 128-bit keys, key exchange, signing and sealing.
    pub const SUPPORTED: u32 = UNICODE
        | REQUEST_TARGET
        | SIGN
        | SEAL
        | NTLM
        | ALWAYS_SIGN
        | EXTENDED_SESSIONSECURITY
        | VERSION
        | NEGOTIATE_128
        | KEY_EXCH
        | NEGOTIATE_56;
}

// AV_PAIR ids (MS-NLMP 2.2.2.1).
const MSV_AV_EOL: u16 = 0;
const MSV_AV_NB_COMPUTER_NAME: u16 = 1;
const MSV_AV_NB_DOMAIN_NAME: u16 = 2;
const MSV_AV_DNS_COMPUTER_NAME: u16 = 3;
const MSV_AV_DNS_DOMAIN_NAME: u16 = 4;
const MSV_AV_FLAGS: u16 = 6;
const MSV_AV_TIMESTAMP: u16 = 7;
/// MsvAvFlags bit: the AUTHENTICATE message carries a MIC.
const AV_FLAG_MIC_PRESENT: u32 = 0x2;

/// Where the MIC sits in AUTHENTICATE_MESSAGE: after the fixed fields and Version.
const MIC_OFFSET: usize = 72;
/// NTLMv2_CLIENT_CHALLENGE up to its AV pairs: RespType, HiRespType,
/// Reserved1, Reserved2, TimeStamp, ChallengeFromClient, Reserved3.
const NTLMV2_BLOB_FIXED_LEN: usize = 28;
const MIC_LEN: usize = 16;

/// Why an NTLM exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NtlmError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("ntlmv1 or lm responses are not accepted")]
    NtlmV1,
    #[error("unknown user {domain}\\{user}")]
    UnknownUser { user: String, domain: String },
    #[error("wrong password for {domain}\\{user}")]
    WrongPassword { user: String, domain: String },
    #[error("message integrity code wrong")]
    BadMic,
    #[error("message integrity code required but not sent")]
    MissingMic,
    #[error("extended session security or key exchange not negotiated")]
    WeakSession,
    #[error("bad signature on a sealed message")]
    BadSignature,
}

/// The NT hash of a password: MD4 of its UTF-16LE form (MS-NLMP 3.3.1).
pub fn nt_hash(password: &str) -> [u8; 16] {
    use md4::Md4;
    let mut hasher = Md4::new();
    for unit in password.encode_utf16() {
        hasher.update(unit.to_le_bytes());
    }
    hasher.finalize().into()
}

fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    let mut mac = <HmacMd5 as Mac>::new_from_slice(key).expect("hmac accepts any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// NTOWFv2: HMAC-MD5 keyed by the NT hash over UPPER(user) || domain.
pub fn ntowf_v2(nt_hash: &[u8; 16], user: &str, domain: &str) -> [u8; 16] {
    let identity = utf16::encode(&(user.to_uppercase() + domain));
    hmac_md5(nt_hash, &[&identity])
}

/// A NEGOTIATE_MESSAGE: only its flags matter to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiateMessage {
    pub flags: u32,
}

impl NegotiateMessage {
    pub fn decode(message: &[u8]) -> Result<Self, DecodeError> {
        let mut cursor = message_header(message, NEGOTIATE_MESSAGE, "ntlm negotiate")?;
        Ok(Self {
            flags: cursor.read_u32_le()?,
        })
    }

    #[cfg(any(test, feature = "fuzzing"))]
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_slice(SIGNATURE);
        out.put_u32_le(NEGOTIATE_MESSAGE);
        out.put_u32_le(self.flags);
        // Empty domain and workstation fields, then the version.
        out.put_bytes(0, 16);
        put_version(out);
    }
}

fn message_header<'a>(
    message: &'a [u8],
    kind: u32,
    context: &'static str,
) -> Result<ReadCursor<'a>, DecodeError> {
    if message.len() > MAX_MESSAGE_LEN {
        return Err(DecodeError::TooLarge {
            context,
            size: message.len(),
            limit: MAX_MESSAGE_LEN,
        });
    }
    let mut cursor = ReadCursor::new(message, context);
    if &cursor.read_array::<8>()? != SIGNATURE {
        return Err(cursor.invalid("signature", "not NTLMSSP"));
    }
    let found = cursor.read_u32_le()?;
    if found != kind {
        return Err(DecodeError::Unexpected {
            context,
            what: "message type",
            value: found,
        });
    }
    Ok(cursor)
}

/// Version structure: Windows 10.0 build 19041, NTLM revision 15.
fn put_version(out: &mut Vec<u8>) {
    out.put_slice(&[10, 0]);
    out.put_u16_le(19041);
    out.put_slice(&[0, 0, 0, 0x0F]);
}

/// A payload field descriptor (length, max length, offset) read and resolved.
fn read_field<'a>(cursor: &mut ReadCursor<'_>, message: &'a [u8]) -> Result<&'a [u8], DecodeError> {
    let length = usize::from(cursor.read_u16_le()?);
    let _max_length = cursor.read_u16_le()?;
    let offset = cursor.read_u32_le()? as usize;
    if length == 0 {
        return Ok(&[]);
    }
    offset
        .checked_add(length)
        .filter(|&end| end <= message.len())
        .map(|end| &message[offset..end])
        .ok_or(cursor.invalid("payload field", "points past the end of the message"))
}

/// The names the server announces about itself in CHALLENGE's target info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerNames {
    pub netbios_domain: String,
    pub netbios_computer: String,
    pub dns_domain: String,
    pub dns_computer: String,
}

impl Default for ServerNames {
    fn default() -> Self {
        Self {
            netbios_domain: "RDPSERVE".into(),
            netbios_computer: "RDPSERVE".into(),
            dns_domain: "rdpserve".into(),
            dns_computer: "rdpserve".into(),
        }
    }
}

/// Looks up the NT hash of a user's password.
pub trait NtHashSource {
    fn nt_hash(&self, user: &str, domain: &str) -> Option<[u8; 16]>;

    /// Other secrets `user` may prove instead, tried after `nt_hash`: the
    /// one-time cookies of redirected clients.
    fn alternative_nt_hashes(&self, _user: &str, _domain: &str) -> Vec<[u8; 16]> {
        Vec::new()
    }
}

/// The server side of one NTLM exchange.
#[derive(Debug)]
pub struct NtlmServer {
    negotiate: Vec<u8>,
    challenge: Vec<u8>,
    server_challenge: [u8; 8],
}

/// What a verified AUTHENTICATE establishes.
#[derive(Debug)]
pub struct Authenticated {
    pub user: String,
    pub domain: String,
    pub session: SessionSecurity,
}

impl NtlmServer {
    /// Answers `negotiate` with a CHALLENGE carrying `server_challenge` (from
    /// the engine's seeded generator) and `timestamp` (a FILETIME).
    pub fn new(
        negotiate: &[u8],
        server_challenge: [u8; 8],
        timestamp: u64,
        names: &ServerNames,
    ) -> Result<(Self, Vec<u8>), NtlmError> {
        let request = NegotiateMessage::decode(negotiate)?;
        let required = flags::EXTENDED_SESSIONSECURITY | flags::NTLM;
        if request.flags & required != required {
            return Err(NtlmError::WeakSession);
        }
        let flags =
            (request.flags & flags::SUPPORTED) | flags::TARGET_INFO | flags::TARGET_TYPE_SERVER;
        let target_name = utf16::encode(&names.netbios_domain);
        let mut target_info = Vec::new();
        for (id, value) in [
            (MSV_AV_NB_DOMAIN_NAME, &names.netbios_domain),
            (MSV_AV_NB_COMPUTER_NAME, &names.netbios_computer),
            (MSV_AV_DNS_DOMAIN_NAME, &names.dns_domain),
            (MSV_AV_DNS_COMPUTER_NAME, &names.dns_computer),
        ] {
            let value = utf16::encode(value);
            target_info.put_u16_le(id);
            target_info.put_u16_le(value.len() as u16);
            target_info.put_slice(&value);
        }
        target_info.put_u16_le(MSV_AV_TIMESTAMP);
        target_info.put_u16_le(8);
        target_info.put_u64_le(timestamp);
        target_info.put_u16_le(MSV_AV_EOL);
        target_info.put_u16_le(0);

        // Fixed part: signature, type, target name fields, flags, challenge,
        // reserved, target info fields, version = 56 bytes.
        let payload_offset = 56u32;
        let mut challenge = Vec::with_capacity(56 + target_name.len() + target_info.len());
        challenge.put_slice(SIGNATURE);
        challenge.put_u32_le(CHALLENGE_MESSAGE);
        challenge.put_u16_le(target_name.len() as u16);
        challenge.put_u16_le(target_name.len() as u16);
        challenge.put_u32_le(payload_offset);
        challenge.put_u32_le(flags);
        challenge.put_slice(&server_challenge);
        challenge.put_bytes(0, 8);
        challenge.put_u16_le(target_info.len() as u16);
        challenge.put_u16_le(target_info.len() as u16);
        challenge.put_u32_le(payload_offset + target_name.len() as u32);
        put_version(&mut challenge);
        challenge.put_slice(&target_name);
        challenge.put_slice(&target_info);
        let server = Self {
            negotiate: negotiate.to_vec(),
            challenge: challenge.clone(),
            server_challenge,
        };
        Ok((server, challenge))
    }

    /// Verifies an AUTHENTICATE_MESSAGE against the user's NT hash. The MIC
    /// is checked whenever the client says it sent one; `require_mic`
    /// refuses clients that do not.
    pub fn authenticate(
        &self,
        message: &[u8],
        hashes: &dyn NtHashSource,
        require_mic: bool,
    ) -> Result<Authenticated, NtlmError> {
        let mut cursor = message_header(message, AUTHENTICATE_MESSAGE, "ntlm authenticate")?;
        let lm_response = read_field(&mut cursor, message)?;
        let nt_response = read_field(&mut cursor, message)?;
        let domain = read_field(&mut cursor, message)?;
        let user = read_field(&mut cursor, message)?;
        let _workstation = read_field(&mut cursor, message)?;
        let encrypted_session_key = read_field(&mut cursor, message)?;
        let negotiated = cursor.read_u32_le()?;
        let _ = lm_response;
        // An NTLMv2 response is NTProofStr (16) plus a blob of at least 28 bytes;
        // 24 bytes is NTLMv1.
        if nt_response.len() < 16 + 28 {
            return Err(NtlmError::NtlmV1);
        }
        if negotiated & flags::EXTENDED_SESSIONSECURITY == 0 {
            return Err(NtlmError::WeakSession);
        }
        let user = utf16::decode(user, "ntlm authenticate", "user name")?;
        let domain = utf16::decode(domain, "ntlm authenticate", "domain name")?;
        let (proof, blob) = nt_response.split_at(16);
        let proves = |hash: &[u8; 16]| {
            let response_key = ntowf_v2(hash, &user, &domain);
            let expected = hmac_md5(&response_key, &[&self.server_challenge, blob]);
            constant_time_eq(proof, &expected).then_some(response_key)
        };
        // The account's secret first; the alternatives (redirection
        // cookies) are only looked up when it does not match.
        let account = hashes.nt_hash(&user, &domain);
        let response_key = match account.as_ref().and_then(proves) {
            Some(response_key) => response_key,
            None => {
                let alternatives = hashes.alternative_nt_hashes(&user, &domain);
                if account.is_none() && alternatives.is_empty() {
                    return Err(NtlmError::UnknownUser { user, domain });
                }
                let Some(response_key) = alternatives.iter().find_map(proves) else {
                    return Err(NtlmError::WrongPassword { user, domain });
                };
                response_key
            }
        };
        let session_base_key = hmac_md5(&response_key, &[proof]);
        // With NTLMv2 the key exchange key is the session base key.
        let exported_session_key = if negotiated & flags::KEY_EXCH != 0 {
            if encrypted_session_key.len() != 16 {
                return Err(DecodeError::InvalidField {
                    context: "ntlm authenticate",
                    field: "encrypted random session key",
                    reason: "must be 16 bytes",
                }
                .into());
            }
            let mut key = [0u8; 16];
            key.copy_from_slice(encrypted_session_key);
            Rc4::new_from_slice(&session_base_key)
                .expect("16-byte key")
                .apply_keystream(&mut key);
            key
        } else {
            session_base_key
        };
        // MS-NLMP 3.2.5.1.2: "If the AUTHENTICATE_MESSAGE indicates the
        // presence of a MIC field, then the MIC value ... MUST be compared",
        // and it indicates it with MsvAvFlags bit 0x2. The flag sits in the
        // AV pairs of the blob that NTProofStr covers, so a man in the middle
        // cannot clear it without failing the proof above. A client that
        // sends no MIC and says so is accepted, as Windows servers accept
        // clients from before MICs existed (MS-NLMP <68>): over CredSSP the
        // NEGOTIATE and CHALLENGE the MIC would protect travel inside TLS,
        // and the public key binding catches a relay.
        let blob_pairs = blob.get(NTLMV2_BLOB_FIXED_LEN..).unwrap_or(&[]);
        let mic_present =
            av_flags(blob_pairs).is_some_and(|flags| flags & AV_FLAG_MIC_PRESENT != 0);
        if !mic_present {
            if require_mic {
                return Err(NtlmError::MissingMic);
            }
            return Ok(Authenticated {
                user,
                domain,
                session: SessionSecurity::new(&exported_session_key, negotiated, Side::Server),
            });
        }
        let mic = message
            .get(MIC_OFFSET..MIC_OFFSET + MIC_LEN)
            .ok_or(NtlmError::BadMic)?;
        let mut zeroed = message.to_vec();
        zeroed[MIC_OFFSET..MIC_OFFSET + MIC_LEN].fill(0);
        let expected_mic = hmac_md5(
            &exported_session_key,
            &[&self.negotiate, &self.challenge, &zeroed],
        );
        if !constant_time_eq(mic, &expected_mic) {
            return Err(NtlmError::BadMic);
        }
        Ok(Authenticated {
            user,
            domain,
            session: SessionSecurity::new(&exported_session_key, negotiated, Side::Server),
        })
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The MsvAvFlags value among AV pairs, if present.
fn av_flags(mut pairs: &[u8]) -> Option<u32> {
    while pairs.len() >= 4 {
        let id = u16::from_le_bytes([pairs[0], pairs[1]]);
        let length = usize::from(u16::from_le_bytes([pairs[2], pairs[3]]));
        let value = pairs.get(4..4 + length)?;
        match id {
            MSV_AV_EOL => return None,
            MSV_AV_FLAGS if length == 4 => return Some(u32::from_le_bytes(value.try_into().ok()?)),
            _ => pairs = &pairs[4 + length..],
        }
    }
    None
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The test client's side.
    #[cfg(test)]
    Client,
    Server,
}

/// Sealing and signing state after authentication (MS-NLMP 3.4 with
/// extended session security): one RC4 stream per direction.
pub struct SessionSecurity {
    sign_key: [u8; 16],
    verify_key: [u8; 16],
    seal: Rc4,
    unseal: Rc4,
    send_sequence: u32,
    receive_sequence: u32,
    key_exchange: bool,
}

impl std::fmt::Debug for SessionSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionSecurity")
            .field("send_sequence", &self.send_sequence)
            .field("receive_sequence", &self.receive_sequence)
            .finish_non_exhaustive()
    }
}

const CLIENT_SIGNING: &[u8] = b"session key to client-to-server signing key magic constant\0";
const SERVER_SIGNING: &[u8] = b"session key to server-to-client signing key magic constant\0";
const CLIENT_SEALING: &[u8] = b"session key to client-to-server sealing key magic constant\0";
const SERVER_SEALING: &[u8] = b"session key to server-to-client sealing key magic constant\0";

fn derive(key: &[u8], magic: &[u8]) -> [u8; 16] {
    let mut hasher = Md5::new();
    hasher.update(key);
    hasher.update(magic);
    hasher.finalize().into()
}

impl SessionSecurity {
    pub fn new(exported_session_key: &[u8; 16], negotiated: u32, side: Side) -> Self {
        let client_sign = derive(exported_session_key, CLIENT_SIGNING);
        let server_sign = derive(exported_session_key, SERVER_SIGNING);
        // 128-bit sealing keys; weaker lengths are not negotiated by this server.
        let client_seal = derive(exported_session_key, CLIENT_SEALING);
        let server_seal = derive(exported_session_key, SERVER_SEALING);
        let (sign_key, verify_key, seal_key, unseal_key) = match side {
            Side::Server => (server_sign, client_sign, server_seal, client_seal),
            #[cfg(test)]
            Side::Client => (client_sign, server_sign, client_seal, server_seal),
        };
        Self {
            sign_key,
            verify_key,
            seal: Rc4::new_from_slice(&seal_key).expect("16-byte key"),
            unseal: Rc4::new_from_slice(&unseal_key).expect("16-byte key"),
            send_sequence: 0,
            receive_sequence: 0,
            key_exchange: negotiated & flags::KEY_EXCH != 0,
        }
    }

    /// Seals `message`: returns the 16-byte signature followed by the
    /// ciphertext, the layout CredSSP puts in pubKeyAuth and authInfo.
    pub fn seal(&mut self, message: &[u8]) -> Vec<u8> {
        let mut sealed = message.to_vec();
        self.seal.apply_keystream(&mut sealed);
        let sequence = self.send_sequence;
        self.send_sequence = self.send_sequence.wrapping_add(1);
        let mut checksum = hmac_md5(&self.sign_key, &[&sequence.to_le_bytes(), message]);
        if self.key_exchange {
            self.seal.apply_keystream(&mut checksum[..8]);
        }
        let mut out = Vec::with_capacity(16 + sealed.len());
        out.put_u32_le(1);
        out.put_slice(&checksum[..8]);
        out.put_u32_le(sequence);
        out.put_slice(&sealed);
        out
    }

    /// Unseals what the peer sealed (signature then ciphertext) and checks
    /// the signature.
    pub fn unseal(&mut self, data: &[u8]) -> Result<Vec<u8>, NtlmError> {
        if data.len() < 16 {
            return Err(NtlmError::BadSignature);
        }
        let (signature, sealed) = data.split_at(16);
        let mut message = sealed.to_vec();
        self.unseal.apply_keystream(&mut message);
        let sequence = self.receive_sequence;
        self.receive_sequence = self.receive_sequence.wrapping_add(1);
        let mut checksum = hmac_md5(&self.verify_key, &[&sequence.to_le_bytes(), &message]);
        if self.key_exchange {
            self.unseal.apply_keystream(&mut checksum[..8]);
        }
        let mut expected = Vec::with_capacity(16);
        expected.put_u32_le(1);
        expected.put_slice(&checksum[..8]);
        expected.put_u32_le(sequence);
        if !constant_time_eq(signature, &expected) {
            return Err(NtlmError::BadSignature);
        }
        Ok(message)
    }
}

#[cfg(test)]
/// A minimal NTLMv2 client, for tests of the server side.
pub mod client {
    use super::*;

    /// Builds an AUTHENTICATE_MESSAGE answering `challenge`, with a MIC.
    /// Returns the message and the client's session security.
    pub fn authenticate(
        negotiate: &[u8],
        challenge: &[u8],
        user: &str,
        domain: &str,
        password: &str,
        client_challenge: [u8; 8],
        random_session_key: [u8; 16],
    ) -> Result<(Vec<u8>, SessionSecurity), DecodeError> {
        build(
            negotiate,
            challenge,
            (user, domain, password),
            client_challenge,
            random_session_key,
            true,
        )
    }

    /// Like [`authenticate`], as a client from before MICs: no MsvAvFlags
    /// and a zero MIC field.
    pub fn authenticate_without_mic(
        negotiate: &[u8],
        challenge: &[u8],
        user: &str,
        domain: &str,
        password: &str,
    ) -> Result<(Vec<u8>, SessionSecurity), DecodeError> {
        build(
            negotiate,
            challenge,
            (user, domain, password),
            [0xAA; 8],
            [0x55; 16],
            false,
        )
    }

    fn build(
        negotiate: &[u8],
        challenge: &[u8],
        (user, domain, password): (&str, &str, &str),
        client_challenge: [u8; 8],
        random_session_key: [u8; 16],
        with_mic: bool,
    ) -> Result<(Vec<u8>, SessionSecurity), DecodeError> {
        let mut cursor = message_header(challenge, CHALLENGE_MESSAGE, "ntlm challenge")?;
        let _target_name = read_field(&mut cursor, challenge)?;
        let negotiated = cursor.read_u32_le()?;
        let server_challenge = cursor.read_array::<8>()?;
        cursor.skip(8)?;
        let target_info = read_field(&mut cursor, challenge)?;
        // Copy the server's AV pairs, adding MsvAvFlags with the MIC bit
        // before the terminating EOL.
        let mut pairs = target_info[..target_info.len().saturating_sub(4)].to_vec();
        if with_mic {
            pairs.put_u16_le(MSV_AV_FLAGS);
            pairs.put_u16_le(4);
            pairs.put_u32_le(AV_FLAG_MIC_PRESENT);
        }
        pairs.put_u16_le(MSV_AV_EOL);
        pairs.put_u16_le(0);
        let mut blob = Vec::new();
        blob.put_slice(&[1, 1, 0, 0, 0, 0, 0, 0]);
        blob.put_u64_le(0); // timestamp
        blob.put_slice(&client_challenge);
        blob.put_u32_le(0);
        blob.put_slice(&pairs);
        blob.put_u32_le(0);
        let response_key = ntowf_v2(&nt_hash(password), user, domain);
        let proof = hmac_md5(&response_key, &[&server_challenge, &blob]);
        let session_base_key = hmac_md5(&response_key, &[&proof]);
        let mut encrypted_key = random_session_key;
        Rc4::new_from_slice(&session_base_key)
            .expect("16-byte key")
            .apply_keystream(&mut encrypted_key);
        let nt_response = [&proof[..], &blob].concat();
        let (domain16, user16, workstation16) = (
            utf16::encode(domain),
            utf16::encode(user),
            utf16::encode("CLIENT"),
        );
        let lm_response = [0u8; 24];
        let mut payload = Vec::new();
        let mut fields = Vec::new();
        let base = 88u32;
        for field in [
            &lm_response[..],
            &nt_response,
            &domain16,
            &user16,
            &workstation16,
            &encrypted_key,
        ] {
            fields.put_u16_le(field.len() as u16);
            fields.put_u16_le(field.len() as u16);
            fields.put_u32_le(base + payload.len() as u32);
            payload.put_slice(field);
        }
        let mut message = Vec::new();
        message.put_slice(SIGNATURE);
        message.put_u32_le(AUTHENTICATE_MESSAGE);
        message.put_slice(&fields);
        message.put_u32_le(negotiated);
        put_version(&mut message);
        message.put_bytes(0, MIC_LEN);
        message.put_slice(&payload);
        if with_mic {
            let mic = hmac_md5(&random_session_key, &[negotiate, challenge, &message]);
            message[MIC_OFFSET..MIC_OFFSET + MIC_LEN].copy_from_slice(&mic);
        }
        Ok((
            message,
            SessionSecurity::new(&random_session_key, negotiated, Side::Client),
        ))
    }

    /// The flags a modern client sends in NEGOTIATE: all the server supports.
    pub const CLIENT_FLAGS: u32 = flags::SUPPORTED;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        text.split_whitespace()
            .map(|byte| u8::from_str_radix(byte, 16).unwrap())
            .collect()
    }

    /// MS-NLMP 4.2.4.1.1: NTOWFv2("Password", "User", "Domain").
    #[test]
    fn ntowf_v2_known_answer() {
        assert_eq!(
            ntowf_v2(&nt_hash("Password"), "User", "Domain").to_vec(),
            hex("0c 86 8a 40 3b fd 7a 93 a3 00 1e f2 2e f0 2e 3f")
        );
    }

    /// MS-NLMP 4.2.4: NTProofStr and the session base key for the example
    /// challenge, client challenge, time 0 and AV pairs Domain/Server.
    #[test]
    fn ntlmv2_response_known_answer() {
        let response_key = ntowf_v2(&nt_hash("Password"), "User", "Domain");
        let server_challenge = hex("01 23 45 67 89 ab cd ef");
        let mut blob = hex(
            "01 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 aa aa aa aa aa aa aa aa 00 00 00 00",
        );
        blob.extend(hex(
            "02 00 0c 00 44 00 6f 00 6d 00 61 00 69 00 6e 00 01 00 0c 00 53 00 65 00 72 00 76 00 65 00 72 00 00 00 00 00",
        ));
        blob.extend([0, 0, 0, 0]);
        let proof = hmac_md5(&response_key, &[&server_challenge, &blob]);
        assert_eq!(
            proof.to_vec(),
            hex("68 cd 0a b8 51 e5 1c 96 aa bc 92 7b eb ef 6a 1c")
        );
        let session_base_key = hmac_md5(&response_key, &[&proof]);
        assert_eq!(
            session_base_key.to_vec(),
            hex("8d e4 0c ca db c1 4a 82 f1 5c b0 ad 0d e9 5c a3")
        );
        let mut encrypted = [0x55u8; 16];
        Rc4::new_from_slice(&session_base_key)
            .unwrap()
            .apply_keystream(&mut encrypted);
        assert_eq!(
            encrypted.to_vec(),
            hex("c5 da d2 54 4f c9 79 90 94 ce 1c e9 0b c9 d0 3e")
        );
    }

    /// MS-NLMP 4.2.4.4: sealing "Plaintext" with the example's client keys.
    #[test]
    fn seal_known_answer() {
        let mut client = SessionSecurity::new(&[0x55; 16], client::CLIENT_FLAGS, Side::Client);
        let plaintext = utf16::encode("Plaintext");
        let sealed = client.seal(&plaintext);
        assert_eq!(
            sealed[16..].to_vec(),
            hex("54 e5 01 65 bf 19 36 dc 99 60 20 c1 81 1b 0f 06 fb 5f")
        );
        assert_eq!(
            sealed[..16].to_vec(),
            hex("01 00 00 00 7f b3 8e c5 c5 5d 49 76 00 00 00 00")
        );
        let mut server = SessionSecurity::new(&[0x55; 16], client::CLIENT_FLAGS, Side::Server);
        assert_eq!(server.unseal(&sealed).unwrap(), plaintext);
    }

    struct OneUser;

    impl NtHashSource for OneUser {
        fn nt_hash(&self, user: &str, _domain: &str) -> Option<[u8; 16]> {
            user.eq_ignore_ascii_case("user")
                .then(|| nt_hash("Password"))
        }
    }

    fn exchange(password: &str) -> (NtlmServer, Vec<u8>, Vec<u8>) {
        let mut negotiate = Vec::new();
        NegotiateMessage {
            flags: client::CLIENT_FLAGS,
        }
        .encode(&mut negotiate);
        let (server, challenge) = NtlmServer::new(
            &negotiate,
            [1, 2, 3, 4, 5, 6, 7, 8],
            0x01D0_0000_0000_0000,
            &ServerNames::default(),
        )
        .unwrap();
        let (authenticate, _) = client::authenticate(
            &negotiate, &challenge, "User", "Domain", password, [0xAA; 8], [0x55; 16],
        )
        .unwrap();
        (server, challenge, authenticate)
    }

    #[test]
    fn full_exchange_and_sealing_both_ways() {
        let mut negotiate = Vec::new();
        NegotiateMessage {
            flags: client::CLIENT_FLAGS,
        }
        .encode(&mut negotiate);
        let (server, challenge) =
            NtlmServer::new(&negotiate, [9; 8], 1, &ServerNames::default()).unwrap();
        let (authenticate, mut client_session) = client::authenticate(
            &negotiate, &challenge, "User", "Domain", "Password", [0xAA; 8], [0x55; 16],
        )
        .unwrap();
        let mut done = server.authenticate(&authenticate, &OneUser, false).unwrap();
        assert_eq!(
            (done.user.as_str(), done.domain.as_str()),
            ("User", "Domain")
        );
        for round in 0..3u8 {
            let sealed = client_session.seal(&[round; 40]);
            assert_eq!(done.session.unseal(&sealed).unwrap(), [round; 40]);
            let reply = done.session.seal(&[round + 1; 7]);
            assert_eq!(client_session.unseal(&reply).unwrap(), [round + 1; 7]);
        }
        // A tampered ciphertext fails the signature.
        let mut sealed = client_session.seal(b"hello");
        sealed[20] ^= 1;
        assert_eq!(done.session.unseal(&sealed), Err(NtlmError::BadSignature));
    }

    #[test]
    fn wrong_password_unknown_user_and_bad_mic_are_refused() {
        let (server, _, authenticate) = exchange("Passw0rd");
        assert!(matches!(
            server
                .authenticate(&authenticate, &OneUser, false)
                .unwrap_err(),
            NtlmError::WrongPassword { .. }
        ));
        let (server, _, mut authenticate) = exchange("Password");
        authenticate[MIC_OFFSET] ^= 0xFF;
        assert_eq!(
            server
                .authenticate(&authenticate, &OneUser, false)
                .unwrap_err(),
            NtlmError::BadMic
        );
        struct Nobody;
        impl NtHashSource for Nobody {
            fn nt_hash(&self, _: &str, _: &str) -> Option<[u8; 16]> {
                None
            }
        }
        let (server, _, authenticate) = exchange("Password");
        assert!(matches!(
            server
                .authenticate(&authenticate, &Nobody, false)
                .unwrap_err(),
            NtlmError::UnknownUser { .. }
        ));
    }

    fn exchange_without_mic(password: &str) -> (NtlmServer, Vec<u8>) {
        let mut negotiate = Vec::new();
        NegotiateMessage {
            flags: client::CLIENT_FLAGS,
        }
        .encode(&mut negotiate);
        let (server, challenge) =
            NtlmServer::new(&negotiate, [3; 8], 0, &ServerNames::default()).unwrap();
        let (authenticate, _) =
            client::authenticate_without_mic(&negotiate, &challenge, "User", "Domain", password)
                .unwrap();
        (server, authenticate)
    }

    /// MS-NLMP 3.2.5.1.2 checks the MIC only when MsvAvFlags announces one:
    /// a client that sends none and says so logs on, unless the server
    /// requires a MIC. The password is still proven.
    #[test]
    fn authenticate_without_a_mic_is_accepted_unless_required() {
        let (server, authenticate) = exchange_without_mic("Password");
        let done = server.authenticate(&authenticate, &OneUser, false).unwrap();
        assert_eq!(done.user, "User");
        assert_eq!(
            server
                .authenticate(&authenticate, &OneUser, true)
                .unwrap_err(),
            NtlmError::MissingMic
        );
        let (server, authenticate) = exchange_without_mic("Passw0rd");
        assert!(matches!(
            server
                .authenticate(&authenticate, &OneUser, false)
                .unwrap_err(),
            NtlmError::WrongPassword { .. }
        ));
        // With a MIC and the switch on, a good MIC passes.
        let (server, _, authenticate) = exchange("Password");
        assert!(server.authenticate(&authenticate, &OneUser, true).is_ok());
    }

    /// Clearing the MIC bit in transit (to get a tampered message past the
    /// MIC check) changes the blob NTProofStr covers: the proof fails.
    #[test]
    fn the_mic_claim_cannot_be_stripped() {
        let (server, _, authenticate) = exchange("Password");
        let mut stripped = authenticate.clone();
        let flags = AV_FLAG_MIC_PRESENT.to_le_bytes();
        let at = stripped
            .windows(8)
            .position(|window| window == [6, 0, 4, 0, flags[0], flags[1], flags[2], flags[3]])
            .expect("MsvAvFlags in the blob");
        stripped[at + 4] = 0;
        stripped[MIC_OFFSET] ^= 0xFF;
        assert!(matches!(
            server.authenticate(&stripped, &OneUser, false).unwrap_err(),
            NtlmError::WrongPassword { .. }
        ));
    }

    #[test]
    fn replayed_authenticate_fails_against_a_new_challenge() {
        let (_, _, authenticate) = exchange("Password");
        let mut negotiate = Vec::new();
        NegotiateMessage {
            flags: client::CLIENT_FLAGS,
        }
        .encode(&mut negotiate);
        let (fresh, _) = NtlmServer::new(&negotiate, [7; 8], 0, &ServerNames::default()).unwrap();
        assert!(matches!(
            fresh
                .authenticate(&authenticate, &OneUser, false)
                .unwrap_err(),
            NtlmError::WrongPassword { .. }
        ));
    }

    #[test]
    fn ntlmv1_and_truncated_messages_are_refused() {
        let (server, _, authenticate) = exchange("Password");
        // Point the NT response field at 24 bytes: an NTLMv1 response.
        let mut v1 = authenticate.clone();
        v1[20..22].copy_from_slice(&24u16.to_le_bytes());
        assert_eq!(
            server.authenticate(&v1, &OneUser, false).unwrap_err(),
            NtlmError::NtlmV1
        );
        for end in 0..authenticate.len() {
            assert!(
                server
                    .authenticate(&authenticate[..end], &OneUser, false)
                    .is_err()
            );
        }
        let mut past_end = authenticate;
        past_end[24..28].copy_from_slice(&0xFFFF_0000u32.to_le_bytes());
        assert!(server.authenticate(&past_end, &OneUser, false).is_err());
        assert!(NegotiateMessage::decode(b"NTLMSSP\0\x02\0\0\0\0\0\0\0").is_err());
        assert!(NegotiateMessage::decode(b"NTLMSSX\0\x01\0\0\0\0\0\0\0").is_err());
        // A client that does not ask for extended session security.
        let mut weak = Vec::new();
        NegotiateMessage {
            flags: flags::NTLM | flags::UNICODE,
        }
        .encode(&mut weak);
        assert!(matches!(
            NtlmServer::new(&weak, [0; 8], 0, &ServerNames::default()),
            Err(NtlmError::WeakSession)
        ));
    }
}
