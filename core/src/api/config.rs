//! Engine configuration: security, credentials and the limits of rule 5.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::security::ntlm;
use crate::security::password::Password;
use crate::security::tls::TlsIdentity;

/// The desktop size the server announces, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DesktopSize {
    pub width: u16,
    pub height: u16,
}

impl DesktopSize {
    /// The range MS-RDPBCGR 2.2.1.3.2 allows for a desktop dimension.
    pub const MIN: u16 = 200;
    pub const MAX: u16 = 8192;

    /// The size with each dimension clamped to the range the spec allows.
    pub fn clamped(self) -> Self {
        Self {
            width: self.width.clamp(Self::MIN, Self::MAX),
            height: self.height.clamp(Self::MIN, Self::MAX),
        }
    }
}

/// What a validator holds for a user: the password itself, or only its NT
/// hash (MD4 of the UTF-16LE password, [`ntlm::nt_hash`]), as an account
/// database may keep it. Either serves every logon: NLA (NTLM) needs only
/// the hash, and a clear-text password from a TLS or plain RDP logon is
/// hashed to compare with one. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    Password(Password),
    NtHash([u8; 16]),
}

impl Secret {
    /// The NT hash NTLM proves knowledge of; `None` for an empty password,
    /// which never logs on.
    pub fn nt_hash(&self) -> Option<[u8; 16]> {
        match self {
            Self::Password(password) if password.is_empty() => None,
            Self::Password(password) => Some(ntlm::nt_hash(password.expose())),
            Self::NtHash(hash) => Some(*hash),
        }
    }

    /// Whether a clear-text password is this secret. Empty passwords never
    /// match; the comparison takes the same time however much of a guess
    /// is right.
    pub fn matches(&self, password: &str) -> bool {
        if password.is_empty() {
            return false;
        }
        match self {
            Self::Password(expected) => expected.matches(password),
            Self::NtHash(hash) => {
                let given = ntlm::nt_hash(password);
                given
                    .iter()
                    .zip(hash)
                    .fold(0, |difference, (a, b)| difference | (a ^ b))
                    == 0
            }
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Password(_) => "Password(<redacted>)",
            Self::NtHash(_) => "NtHash(<redacted>)",
        })
    }
}

/// Decides who may log on: given a user and a domain, answers with the
/// [`Secret`] it holds for them, password or NT hash, or refuses.
///
/// It is asked at each logon, from the connection's task, so it must not
/// block for long. NLA logons check the client's proof against the secret's
/// NT hash; TLS and plain RDP logons check the password of the Client Info
/// PDU with [`check_password`](Self::check_password).
pub trait CredentialValidator: Send + Sync + 'static {
    /// What `user` in `domain` logs on with, or `None` to refuse the user.
    fn secret(&self, user: &str, domain: &str) -> Option<Secret>;

    /// Checks a clear-text password (TLS-only and plain RDP logons, where it
    /// arrives in the Client Info PDU). By default it must match the
    /// user's secret; empty passwords are always refused.
    fn check_password(&self, user: &str, domain: &str, password: &str) -> bool {
        self.secret(user, domain)
            .is_some_and(|secret| secret.matches(password))
    }
}

/// One fixed account, like `ironrdp-server`'s `set_credentials`.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    /// `None` accepts any domain.
    pub domain: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("domain", &self.domain)
            .finish()
    }
}

impl CredentialValidator for Credentials {
    fn secret(&self, user: &str, domain: &str) -> Option<Secret> {
        let user_ok = user.eq_ignore_ascii_case(&self.username);
        let domain_ok = self
            .domain
            .as_ref()
            .is_none_or(|expected| domain.eq_ignore_ascii_case(expected));
        (user_ok && domain_ok && !self.password.is_empty())
            .then(|| Secret::Password(Password::new(self.password.clone())))
    }
}

/// A shared validator, as the configuration holds it.
#[derive(Clone)]
pub struct Validator(pub Arc<dyn CredentialValidator>);

impl fmt::Debug for Validator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Validator(..)")
    }
}

impl ntlm::NtHashSource for Validator {
    fn nt_hash(&self, user: &str, domain: &str) -> Option<[u8; 16]> {
        self.0.secret(user, domain)?.nt_hash()
    }
}

impl<V: CredentialValidator> From<V> for Validator {
    fn from(validator: V) -> Self {
        Self(Arc::new(validator))
    }
}

/// How bitmap updates are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BitmapCompression {
    /// RDP 6.0 planar (lossless), which every 32-bpp client decodes.
    #[default]
    Planar,
    /// Raw pixels (debugging, or the fastest encode on a fast link).
    None,
}

/// Audio output (MS-RDPEA) the server offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoundConfig {
    /// The formats the application can produce, in order of preference.
    pub formats: Vec<crate::api::sound::AudioFormat>,
    /// Waves sent and not yet confirmed by the client, at most. This is the
    /// one audio queue: when it is full `Engine::send_sound` refuses the
    /// samples, so audio never piles up. Default 16 (with 20 ms waves,
    /// 320 ms of audio ahead of the client).
    pub max_in_flight: usize,
}

impl SoundConfig {
    pub const DEFAULT_MAX_IN_FLIGHT: usize = 16;

    pub fn new(formats: Vec<crate::api::sound::AudioFormat>) -> Self {
        Self {
            formats,
            max_in_flight: Self::DEFAULT_MAX_IN_FLIGHT,
        }
    }
}

/// A codec for surface commands (MS-RDPBCGR 2.2.9.2), used when the client
/// lists it in its Bitmap Codecs capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SurfaceCodec {
    /// RemoteFX (MS-RDPRFX): lossy, DWT-based, at the default quantization.
    RemoteFx,
    /// IronRDP's QOIZ: lossless QOI images through one zstd stream. With
    /// the `qoiz` feature (on by default).
    #[cfg(feature = "qoiz")]
    Qoiz,
    /// IronRDP's QOI: lossless QOI images. With the `qoi` feature (on by
    /// default).
    #[cfg(feature = "qoi")]
    Qoi,
}

/// A codec of the Graphics Pipeline's WireToSurface1 PDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PipelineCodec {
    /// RDP 6.0 planar, lossless (RDPGFX_CODECID_PLANAR).
    Planar,
    /// Pixels as they are (RDPGFX_CODECID_UNCOMPRESSED).
    Uncompressed,
    /// H.264 in YUV420p (RDPGFX_CODECID_AVC420), lossy, for clients whose
    /// capabilities allow it (8.1 with AVC420_ENABLED, 10.x without
    /// AVC_DISABLED) and desktops openh264 can encode (at most 3840 x
    /// 2160 either way round); others get planar. With the `h264` feature.
    #[cfg(feature = "h264")]
    Avc420,
    /// H.264 in YUV444 (RDPGFX_CODECID_AVC444 for 10.0, AVC444v2 from
    /// 10.1 on for desktops whose width is a multiple of 16): two YUV420p
    /// views of one stream, full colour resolution, twice the encoding
    /// work. For clients with a 10.x set without AVC_DISABLED; AVC420 for
    /// 8.1 clients with AVC420_ENABLED, planar for the rest. With the
    /// `h264` feature.
    #[cfg(feature = "h264")]
    Avc444,
    /// Content-adaptive, on AVC420: per 64x64 tile, text and UI go
    /// lossless (SolidFill, a cache hit or planar) and photos and video go
    /// as one AVC420 frame whose regions are exactly those tiles; once a
    /// lossy tile stops changing (two quiet frames, the engine's timer
    /// making frames while the application sends none) it is re-sent
    /// losslessly, so the screen ends pixel-exact. Needs what AVC420
    /// needs; others get planar. With the `h264` feature.
    #[cfg(feature = "h264")]
    Adaptive,
}

impl PipelineCodec {
    /// The byte recordings name the codec by.
    pub(crate) fn to_byte(self) -> u8 {
        match self {
            Self::Planar => 0,
            Self::Uncompressed => 1,
            #[cfg(feature = "h264")]
            Self::Avc420 => 2,
            #[cfg(feature = "h264")]
            Self::Avc444 => 3,
            #[cfg(feature = "h264")]
            Self::Adaptive => 4,
        }
    }

    /// The codec a recording names; `None` for one this build lacks.
    pub(crate) fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(Self::Planar),
            1 => Some(Self::Uncompressed),
            #[cfg(feature = "h264")]
            2 => Some(Self::Avc420),
            #[cfg(feature = "h264")]
            3 => Some(Self::Avc444),
            #[cfg(feature = "h264")]
            4 => Some(Self::Adaptive),
            _ => None,
        }
    }

    /// Whether the codec is H.264.
    #[cfg(feature = "h264")]
    pub(crate) fn is_avc(self) -> bool {
        matches!(self, Self::Avc420 | Self::Avc444 | Self::Adaptive)
    }
}

/// Which codecs the server offers and in which order it prefers them.
///
/// Each session uses the first surface codec in `surface` that the client
/// supports; a client with none of them gets bitmap updates
/// (`Config::bitmap_compression` at 32 bpp, interleaved RLE below).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BitmapCodecs {
    pub surface: Vec<SurfaceCodec>,
}

impl Default for BitmapCodecs {
    fn default() -> Self {
        Self {
            surface: vec![
                SurfaceCodec::RemoteFx,
                #[cfg(feature = "qoiz")]
                SurfaceCodec::Qoiz,
                #[cfg(feature = "qoi")]
                SurfaceCodec::Qoi,
            ],
        }
    }
}

impl BitmapCodecs {
    /// Bitmap updates only: no surface codec is offered.
    pub fn bitmaps_only() -> Self {
        Self {
            surface: Vec::new(),
        }
    }

    pub fn offers(&self, codec: SurfaceCodec) -> bool {
        self.surface.contains(&codec)
    }

    /// The list in order, each codec once.
    pub fn deduplicated(&self) -> Vec<SurfaceCodec> {
        let mut codecs = Vec::new();
        for &codec in &self.surface {
            if !codecs.contains(&codec) {
                codecs.push(codec);
            }
        }
        codecs
    }
}

/// Which security protocols the server accepts.
#[derive(Clone, Debug)]
pub struct SecurityConfig {
    /// TLS (PROTOCOL_SSL), and the certificate CredSSP binds to.
    pub tls: Option<TlsIdentity>,
    /// Offer Network Level Authentication (PROTOCOL_HYBRID and HYBRID_EX);
    /// needs `tls` and a validator.
    pub nla: bool,
    /// With `nla`, still accept clients that only offer TLS (they then log
    /// on with the Client Info password).
    pub allow_tls_without_nla: bool,
    /// Standard RDP security without encryption (PROTOCOL_RDP): everything,
    /// the password included, crosses the wire in clear. Only for trusted links.
    pub allow_plain_rdp: bool,
    /// Lowest CredSSP version accepted. Default 2 (every client). Versions 5
    /// and later bind the public key with a client nonce (the fix for
    /// CVE-2018-0886); raise this to 6 to refuse clients older than 2018.
    pub minimum_credssp_version: u32,
    /// Refuse an NTLM AUTHENTICATE message without a MIC. A MIC is checked
    /// whenever the client says it sent one (MS-NLMP 3.2.5.1.2), and the
    /// claim cannot be stripped in transit; off by default, as in Windows,
    /// which accepts clients that send none. Every current client sends one.
    pub require_ntlm_mic: bool,
}

impl SecurityConfig {
    pub fn tls(identity: TlsIdentity) -> Self {
        Self {
            tls: Some(identity),
            nla: false,
            allow_tls_without_nla: true,
            allow_plain_rdp: false,
            minimum_credssp_version: 2,
            require_ntlm_mic: false,
        }
    }

    pub fn nla(identity: TlsIdentity) -> Self {
        Self {
            nla: true,
            allow_tls_without_nla: false,
            ..Self::tls(identity)
        }
    }

    pub fn plain_rdp() -> Self {
        Self {
            tls: None,
            nla: false,
            allow_tls_without_nla: false,
            allow_plain_rdp: true,
            minimum_credssp_version: 2,
            require_ntlm_mic: false,
        }
    }
}

/// Everything an [`Engine`](crate::Engine) needs besides its seed.
#[derive(Debug, Clone)]
pub struct Config {
    pub security: SecurityConfig,
    /// `None` accepts any user (not possible with NLA, which needs a secret
    /// to verify against).
    pub credentials: Option<Validator>,
    /// Announced in Demand Active; clamped to 200..=8192 per dimension.
    pub desktop_size: DesktopSize,
    /// The largest graphics update the server sends in one piece (fast-path
    /// fragments are reassembled by the client up to this size). The client's
    /// Multifragment Update capability lowers it further. Default 8 MiB.
    pub max_request_size: u32,
    /// Time from construction until the session must be active. Default 30 s:
    /// real clients need about a second; a stalled one must not hold a slot.
    pub handshake_timeout: Duration,
    /// Time from construction until the X.224 Connection Request must have
    /// arrived (at most `handshake_timeout`). Default 5 s: a real client
    /// sends it at once, and a socket that sends nothing must not hold a
    /// pre-logon slot for the whole handshake deadline.
    pub first_bytes_timeout: Duration,
    /// Close an active session after this long without bytes from the
    /// client (Set Error Info IDLE_TIMEOUT). Default `None`: sessions may
    /// idle forever.
    pub idle_timeout: Option<Duration>,
    /// Largest PDU accepted from the client. TPKT caps it at 65535 anyway; the
    /// default is that maximum.
    pub max_incoming_pdu: usize,
    /// Wall-clock time when the engine is constructed, for the NTLM
    /// timestamp. The engine never reads a clock; adapters pass
    /// `SystemTime::now()`. Defaults to the Unix epoch (deterministic tests).
    pub wall_clock: SystemTime,
    /// Largest virtual channel message (static or dynamic) reassembled from
    /// the client; a larger declared total closes that channel
    /// (`Event::ChannelClosed` for a static one, a DYNVC_CLOSE and
    /// `Event::DynamicChannelClosed` for a dynamic one). Default 1 MiB.
    pub max_channel_message: usize,
    /// Most bytes all of a session's channel reassembly buffers may hold
    /// together; a chunk beyond it closes its channel. Default 2 MiB, so a
    /// client declaring many channels cannot pin a megabyte on each.
    pub channel_memory_budget: usize,
    /// Bitmap compression. Default planar.
    pub bitmap_compression: BitmapCompression,
    /// Surface codecs offered to clients, in order of preference. Default:
    /// RemoteFX, QOIZ, QOI (each of the last two when its feature is built).
    pub bitmap_codecs: BitmapCodecs,
    /// Frames (with frame markers) the client may leave unacknowledged
    /// before the server stops sending and coalesces updates (the latest
    /// pixels win). Only with clients that acknowledge frames. Default 2.
    pub max_unacknowledged_frames: u32,
    /// Offer the Graphics Pipeline (MS-RDPEGFX) to clients that support
    /// it (the client's core data sets SUPPORT_DYN_VC_GFX_PROTOCOL, e.g.
    /// `xfreerdp /gfx`), with this codec; `None` never offers it. Until
    /// the client has confirmed the pipeline's capabilities, and for
    /// clients without it, graphics go out as `bitmap_codecs` says.
    /// Default: planar.
    pub graphics_pipeline: Option<PipelineCodec>,
    /// On the Graphics Pipeline, look for vertical scrolls in each update
    /// (B, G, R, X updates only) and send the moved rows as one copy of the
    /// client's surface (SurfaceToSurface) instead of encoding them again.
    /// Costs a hash of each changed row of the update's area (about 2 ms
    /// for a whole 1080p frame); saves most of a scrolled frame's bytes.
    /// Default: on.
    pub scroll_detection: bool,
    /// Serve the clipboard channel (MS-RDPECLIP) to clients that join
    /// "cliprdr"; its traffic arrives as `Event::Clipboard`. Off by default:
    /// without an application behind it, the server does not announce it.
    pub clipboard: bool,
    /// Static virtual channels the application serves itself (names of at
    /// most 7 ASCII characters): their messages arrive whole as
    /// `Event::ChannelData` and `Engine::send_channel_data` answers.
    pub static_channels: Vec<String>,
    /// Serve audio output to clients that join "rdpsnd"; its events arrive
    /// as `Event::Sound` and `Engine::send_sound` plays samples. Off by default.
    pub sound: Option<SoundConfig>,
    /// Record the session for replay (see [`replay`](crate::replay)); off by
    /// default. The recording is taken with `Engine::poll_recording`.
    pub record: bool,
    /// Hold each connection after logon until the application decides
    /// where it goes: `Event::Routing` reports the client's load-balancing
    /// data and the user, and `Engine::accept_connection` or
    /// `Engine::redirect` answers. Off by default (connections go on).
    pub route_after_logon: bool,
    /// Checks the one-time cookies redirected clients log on with
    /// (`Redirection::password_cookie`). `None` by default: such a client
    /// must know the password.
    pub redirection_cookies: Option<crate::api::routing::CookieValidator>,
}

impl Config {
    pub const DEFAULT_MAX_REQUEST_SIZE: u32 = 8 * 1024 * 1024;
    pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
    pub const DEFAULT_FIRST_BYTES_TIMEOUT: Duration = Duration::from_secs(5);

    /// The Graphics Pipeline's default: offered, with planar tiles.
    pub const fn default_graphics_pipeline() -> Option<PipelineCodec> {
        Some(PipelineCodec::Planar)
    }
    pub const DEFAULT_MAX_INCOMING_PDU: usize = 0xFFFF;
    pub const DEFAULT_MAX_CHANNEL_MESSAGE: usize = 1024 * 1024;

    /// A configuration with the documented defaults and the given security.
    pub fn new(security: SecurityConfig, desktop_size: DesktopSize) -> Self {
        Self {
            security,
            credentials: None,
            desktop_size,
            max_request_size: Self::DEFAULT_MAX_REQUEST_SIZE,
            handshake_timeout: Self::DEFAULT_HANDSHAKE_TIMEOUT,
            first_bytes_timeout: Self::DEFAULT_FIRST_BYTES_TIMEOUT,
            idle_timeout: None,
            max_incoming_pdu: Self::DEFAULT_MAX_INCOMING_PDU,
            wall_clock: SystemTime::UNIX_EPOCH,
            max_channel_message: Self::DEFAULT_MAX_CHANNEL_MESSAGE,
            channel_memory_budget: 2 * 1024 * 1024,
            bitmap_compression: BitmapCompression::Planar,
            bitmap_codecs: BitmapCodecs::default(),
            max_unacknowledged_frames: 2,
            graphics_pipeline: Self::default_graphics_pipeline(),
            scroll_detection: true,
            clipboard: false,
            static_channels: Vec::new(),
            sound: None,
            record: false,
            route_after_logon: false,
            redirection_cookies: None,
        }
    }
}

#[cfg(test)]
mod secret_tests {
    use super::*;

    #[test]
    fn a_password_and_its_hash_are_the_same_secret() {
        let password = Secret::Password(Password::new("wonderland"));
        let hash = Secret::NtHash(ntlm::nt_hash("wonderland"));
        assert_eq!(password.nt_hash(), hash.nt_hash());
        for secret in [&password, &hash] {
            assert!(secret.matches("wonderland"));
            assert!(!secret.matches("Wonderland"));
            assert!(!secret.matches(""));
            assert!(!format!("{secret:?}").contains("wonderland"));
        }
        // An empty password never logs on, over NLA either.
        assert_eq!(Secret::Password(Password::default()).nt_hash(), None);
        assert!(!Secret::Password(Password::default()).matches(""));
    }
}
