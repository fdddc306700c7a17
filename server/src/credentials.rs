//! Who may log on, changeable while the server runs.

use std::sync::{Arc, RwLock};

use rdpserve_core::{CredentialValidator, Credentials, Secret, Validator};

/// Changes who may log on while the server runs; get it with
/// `RdpServer::credentials_handle` before `run`, clone it freely and use it
/// from any thread.
///
/// A change takes effect at the next logon check: a client whose
/// credentials are checked after the call (its NLA exchange, or its Client
/// Info PDU over TLS and plain RDP) is checked against the new ones, even
/// if it connected before; sessions already logged on go on. With no
/// credentials set, clients that connect meanwhile over TLS or plain RDP
/// log on with any credentials and NLA clients are refused.
#[derive(Clone, Default)]
pub struct CredentialsHandle {
    current: Arc<RwLock<Option<Validator>>>,
}

impl std::fmt::Debug for CredentialsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialsHandle(..)")
    }
}

impl CredentialsHandle {
    /// One fixed account from now on, or none (`None`).
    pub fn set_credentials(&self, credentials: Option<Credentials>) {
        self.set(credentials.map(Validator::from));
    }

    /// An application-defined account source from now on.
    pub fn set_credential_validator(&self, validator: impl CredentialValidator) {
        self.set(Some(validator.into()));
    }

    pub(crate) fn set(&self, validator: Option<Validator>) {
        // A poisoned lock only means a validator panicked while it was
        // read; the value is still whole.
        let mut current = self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *current = validator;
    }

    pub(crate) fn is_set(&self) -> bool {
        self.current().is_some()
    }

    fn current(&self) -> Option<Validator> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The validator a new connection's configuration holds: one that asks
    /// whatever is set when the logon is checked. `None` when nothing is
    /// set now.
    pub(crate) fn for_connection(&self) -> Option<Validator> {
        self.is_set().then(|| Validator::from(Live(self.clone())))
    }
}

/// Asks the validator set at the moment of the question.
struct Live(CredentialsHandle);

impl CredentialValidator for Live {
    fn secret(&self, user: &str, domain: &str) -> Option<Secret> {
        self.0.current()?.0.secret(user, domain)
    }

    fn check_password(&self, user: &str, domain: &str, password: &str) -> bool {
        self.0
            .current()
            .is_some_and(|validator| validator.0.check_password(user, domain, password))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(password: &str) -> Credentials {
        Credentials {
            username: "user".into(),
            password: password.into(),
            domain: None,
        }
    }

    #[test]
    fn a_connection_checks_whatever_is_set_when_it_logs_on() {
        let handle = CredentialsHandle::default();
        assert!(handle.for_connection().is_none());
        handle.set_credentials(Some(account("old")));
        // Accepted before the change, checked after it.
        let connection = handle.for_connection().expect("credentials set");
        assert!(connection.0.check_password("user", "", "old"));
        handle.set_credentials(Some(account("new")));
        assert!(!connection.0.check_password("user", "", "old"));
        assert!(connection.0.check_password("user", "", "new"));
        assert_eq!(
            connection
                .0
                .secret("user", "")
                .and_then(|secret| secret.nt_hash()),
            Some(rdpserve_core::nt_hash("new"))
        );
        handle.set_credentials(None);
        assert!(!connection.0.check_password("user", "", "new"));
        assert!(handle.for_connection().is_none());
    }
}
