//! The Server Redirection the application may send a client
//! (`ConnectionRouting` in `event.rs` says where the client is going), and
//! the validator of the one-time cookies a redirected client logs on with.

use std::fmt;
use std::sync::Arc;

use bitflags::bitflags;

use crate::security::password::Password;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_never_shows_in_debug() {
        let mut redirection = Redirection::new(1);
        redirection.password_cookie = Some(Password::new("one-time"));
        assert!(!format!("{redirection:?}").contains("one-time"));
    }
}
