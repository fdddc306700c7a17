//! Where a connection is going: the load-balancing data a client sends
//! (X.224 cookie or routing token, TS_UD_CS_CLUSTER), the Server
//! Redirection the application may answer with, and the validator of the
//! one-time cookies a redirected client logs on with.

use std::fmt;
use std::net::SocketAddrV4;
use std::sync::Arc;

use bitflags::bitflags;

use crate::api::config::Validator;
use crate::api::event::SelectedSecurity;
use crate::security::ntlm::{self, NtHashSource};
use crate::security::password::Password;
use crate::wire::routing_token;

/// REDIRECTION_SUPPORTED in TS_UD_CS_CLUSTER.Flags (MS-RDPBCGR 2.2.1.3.5).
const REDIRECTION_SUPPORTED: u32 = 0x0000_0001;
/// REDIRECTED_SESSIONID_FIELD_VALID.
const REDIRECTED_SESSIONID_FIELD_VALID: u32 = 0x0000_0002;
/// ServerSessionRedirectionVersionMask.
const REDIRECTION_VERSION_MASK: u32 = 0x0000_003C;
/// REDIRECTED_SMARTCARD.
const REDIRECTED_SMARTCARD: u32 = 0x0000_0040;

/// What the client's TS_UD_CS_CLUSTER block ([MS-RDPBCGR 2.2.1.3.5](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/e7d2f8dc-1b5e-4e1c-b1d1-6f0e8fe2bec5)) says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterInfo {
    /// REDIRECTION_SUPPORTED: the client follows a Server Redirection PDU.
    pub redirection_supported: bool,
    /// The redirection version the client speaks (REDIRECTION_VERSION1 is 1).
    pub redirection_version: u8,
    /// The session id of the Server Redirection PDU that sent the client
    /// here (REDIRECTED_SESSIONID_FIELD_VALID), or `None`.
    pub redirected_session_id: Option<u32>,
    /// REDIRECTED_SMARTCARD: the client logged on with a smart card.
    pub smartcard: bool,
}

impl ClusterInfo {
    /// Reads the block's two fields.
    pub fn from_wire(flags: u32, redirected_session_id: u32) -> Self {
        Self {
            redirection_supported: flags & REDIRECTION_SUPPORTED != 0,
            redirection_version: ((flags & REDIRECTION_VERSION_MASK) >> 2) as u8 + 1,
            redirected_session_id: (flags & REDIRECTED_SESSIONID_FIELD_VALID != 0)
                .then_some(redirected_session_id),
            smartcard: flags & REDIRECTED_SMARTCARD != 0,
        }
    }
}

/// Where a connection is going and who it is, as the application sees it
/// when it decides to accept or redirect (`Event::Routing`,
/// `Engine::routing`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionRouting {
    /// The user name of the X.224 `Cookie: mstshash=` line (what a
    /// balancer's `rdp-cookie` hashes), or `None`.
    pub cookie: Option<String>,
    /// The X.224 routing token, verbatim without its CR LF, or `None`.
    pub routing_token: Option<Vec<u8>>,
    /// The address an `msts=` routing token names, when it is one.
    pub routing_target: Option<SocketAddrV4>,
    /// The client's cluster block; `None` when it sent none (it cannot be
    /// redirected).
    pub cluster: Option<ClusterInfo>,
    /// The security protocol in use.
    pub security: SelectedSecurity,
    /// The user who logged on (NLA or Client Info), empty before logon.
    pub user_name: String,
    pub domain: String,
    /// Whether the client logged on with a one-time redirection cookie
    /// (checked by the [`RedirectionCookieValidator`]) instead of a
    /// password.
    pub logged_on_with_cookie: bool,
}

impl ConnectionRouting {
    pub(crate) fn new(cookie: Option<String>, routing_token: Option<Vec<u8>>) -> Self {
        let routing_target = routing_token
            .as_deref()
            .and_then(|token| routing_token::decode(token).ok());
        Self {
            cookie,
            routing_token,
            routing_target,
            cluster: None,
            security: SelectedSecurity::PlainRdp,
            user_name: String::new(),
            domain: String::new(),
            logged_on_with_cookie: false,
        }
    }

    /// Whether a Server Redirection may be sent: the client said it follows
    /// one.
    pub fn redirection_supported(&self) -> bool {
        self.cluster
            .is_some_and(|cluster| cluster.redirection_supported)
    }
}

bitflags! {
    /// RedirFlags of RDP_SERVER_REDIRECTION_PACKET that carry no field of
    /// their own ([MS-RDPBCGR 2.2.13.1](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/df3d59e6-30a8-4a36-bd2d-9d11bcd96c3e)).
    /// The flags that announce a field (LB_TARGET_NET_ADDRESS,
    /// LB_LOAD_BALANCE_INFO, LB_USERNAME, ...) are set from the fields of
    /// [`Redirection`].
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct RedirectionFlags: u32 {
        /// LB_DONTSTOREUSERNAME: the client must not store the user name.
        const DONT_STORE_USERNAME = 0x0000_0020;
        /// LB_SMARTCARD_LOGON: the user logged on with a smart card.
        const SMARTCARD_LOGON = 0x0000_0040;
        /// LB_NOREDIRECT: informational only, the client stays connected.
        const NO_REDIRECT = 0x0000_0080;
        /// LB_SERVER_TSV_CAPABLE: the target accepts a TSV URL.
        const SERVER_TSV_CAPABLE = 0x0000_2000;
        /// LB_PASSWORD_IS_PK_ENCRYPTED: the password cookie is encrypted
        /// with the target's public key (the application did it).
        const PASSWORD_IS_PK_ENCRYPTED = 0x0000_4000;
    }
}

/// A Server Redirection: where the client reconnects and with what
/// ([MS-RDPBCGR 2.2.13.1](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/df3d59e6-30a8-4a36-bd2d-9d11bcd96c3e)).
///
/// With `load_balance_info` set the client reconnects to the address it
/// first dialled (the balancer) and sends those bytes as its X.224 routing
/// token ("token mode", `routing_token::encode` builds one HAProxy
/// reads); without, it dials `target_addresses[0]` on the port it used
/// ("IP mode"). Each field sets its LB_ flag.
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Redirection {
    /// SessionID: the client puts it in its next cluster block
    /// (`ClusterInfo::redirected_session_id`).
    pub session_id: u32,
    /// LB_TARGET_NET_ADDRESS (the first) and, with more than one,
    /// LB_TARGET_NET_ADDRESSES (all).
    pub target_addresses: Vec<String>,
    /// LB_LOAD_BALANCE_INFO: the routing token, CR LF included.
    pub load_balance_info: Option<Vec<u8>>,
    /// LB_USERNAME.
    pub user_name: Option<String>,
    /// LB_DOMAIN.
    pub domain: Option<String>,
    /// LB_PASSWORD: a one-time cookie the client logs on with at the
    /// target instead of the password (sent as UTF-16 with a terminating
    /// NUL, the form clients pass on in the Client Info PDU and NLA).
    pub password_cookie: Option<Password>,
    /// LB_TARGET_FQDN.
    pub target_fqdn: Option<String>,
    /// LB_TARGET_NETBIOS_NAME.
    pub target_netbios_name: Option<String>,
    /// The flags without a field of their own.
    pub flags: RedirectionFlags,
}

impl Redirection {
    /// A redirection that carries nothing yet; set the fields.
    pub fn new(session_id: u32) -> Self {
        Self {
            session_id,
            ..Self::default()
        }
    }
}

impl fmt::Debug for Redirection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redirection")
            .field("session_id", &self.session_id)
            .field("target_addresses", &self.target_addresses)
            .field(
                "load_balance_info",
                &self
                    .load_balance_info
                    .as_deref()
                    .map(String::from_utf8_lossy),
            )
            .field("user_name", &self.user_name)
            .field("domain", &self.domain)
            .field("password_cookie", &self.password_cookie)
            .field("target_fqdn", &self.target_fqdn)
            .field("target_netbios_name", &self.target_netbios_name)
            .field("flags", &self.flags)
            .finish()
    }
}

/// Checks the one-time cookies ([`Redirection::password_cookie`]) that
/// redirected clients log on with instead of their password; the
/// counterpart of [`CredentialValidator`](crate::CredentialValidator) for
/// them.
///
/// A client sends the cookie as its Client Info password (TLS, plain RDP)
/// or, under NLA, as the password of its NTLM exchange, which the server
/// can only verify if it knows the secret in advance: hence
/// [`pending`](Self::pending). A cookie that is unknown, expired or already
/// redeemed is a logon failure. Called from the connection's task: it
/// must not block for long.
pub trait RedirectionCookieValidator: Send + Sync + 'static {
    /// The cookies issued for `user` in `domain` that are still valid and
    /// unused (NLA tries each as the NTLM password).
    fn pending(&self, user: &str, domain: &str) -> Vec<Password>;

    /// Redeems `cookie` for `user`: `true` once, if it was issued for them
    /// and has not expired; every later call with the same cookie `false`.
    fn redeem(&self, user: &str, domain: &str, cookie: &str) -> bool;
}

/// A shared cookie validator, as the configuration holds it.
#[derive(Clone)]
pub struct CookieValidator(pub Arc<dyn RedirectionCookieValidator>);

impl fmt::Debug for CookieValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CookieValidator(..)")
    }
}

impl<V: RedirectionCookieValidator> From<V> for CookieValidator {
    fn from(validator: V) -> Self {
        Self(Arc::new(validator))
    }
}

/// The secrets an NLA logon may prove: the account's, then the user's
/// pending redirection cookies.
pub(crate) struct NlaSecrets<'a> {
    pub accounts: &'a Validator,
    pub cookies: Option<&'a CookieValidator>,
}

impl NtHashSource for NlaSecrets<'_> {
    fn nt_hash(&self, user: &str, domain: &str) -> Option<[u8; 16]> {
        self.accounts.nt_hash(user, domain)
    }

    fn alternative_nt_hashes(&self, user: &str, domain: &str) -> Vec<[u8; 16]> {
        self.cookies
            .map(|cookies| {
                cookies
                    .0
                    .pending(user, domain)
                    .iter()
                    .filter(|cookie| !cookie.is_empty())
                    .map(|cookie| ntlm::nt_hash(cookie.expose()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_flags_as_freerdp_sends_them() {
        // REDIRECTION_SUPPORTED | REDIRECTION_VERSION4 << 2.
        let first = ClusterInfo::from_wire(0x0D, 0);
        assert!(first.redirection_supported);
        assert_eq!(first.redirection_version, 4);
        assert_eq!(first.redirected_session_id, None);
        let redirected = ClusterInfo::from_wire(0x0F, 77);
        assert_eq!(redirected.redirected_session_id, Some(77));
        assert!(!ClusterInfo::from_wire(0, 5).redirection_supported);
    }

    #[test]
    fn the_cookie_never_shows_in_debug() {
        let mut redirection = Redirection::new(1);
        redirection.password_cookie = Some(Password::new("one-time"));
        assert!(!format!("{redirection:?}").contains("one-time"));
    }
}
