//! Where a logged-on connection goes: the application's router answers
//! each logon with "serve it here" or a Server Redirection.

use std::sync::Arc;

use rdpserve_core::{CommandError, ConnectionRouting, Engine, Redirection};
use tracing::{info, warn};

use crate::echo::{ConnectionId, EchoHandle, Request};

/// What a [`ConnectionRouter`] decides for one connection.
#[derive(Debug, Clone)]
pub enum Route {
    /// Serve the session on this server.
    Accept,
    /// Send the client elsewhere (MS-RDPBCGR Server Redirection) and close.
    Redirect(Redirection),
}

/// Decides, at each logon, whether a connection stays on this server or is
/// redirected; set with `with_router`. Called on one of the runtime's
/// blocking threads after the user logged on and before the session
/// starts, with the client's X.224 cookie or routing token, its cluster
/// data and the user. It may block (a directory lookup, a health check):
/// that holds this connection's logon, no other connection.
pub trait ConnectionRouter: Send + Sync + 'static {
    fn route(&self, connection: ConnectionId, routing: &ConnectionRouting) -> Route;

    /// The redirection `route` answered with could not be sent: the
    /// client did not advertise REDIRECTION_SUPPORTED
    /// (`CommandError::RedirectionNotSupported`), or the connection runs
    /// plain RDP (`RedirectionNeedsEnhancedSecurity`). The session is then
    /// served here. By default nothing more happens than a log line.
    fn refused(&self, connection: ConnectionId, redirection: &Redirection, error: &CommandError) {
        let _ = (connection, redirection, error);
    }
}

/// Redirects live connections from any thread: get it with
/// `RdpServer::redirect_handle`, clone it freely.
///
/// The connection sends the Server Redirection at once when its session is
/// active, or keeps it for its logon when it is still in its handshake
/// (then the client never sees a Demand Active). A redirection the
/// connection cannot send (the client did not advertise
/// REDIRECTION_SUPPORTED, or plain RDP) is logged and reported to the
/// router's `refused`; the session goes on.
#[derive(Debug, Clone)]
pub struct RedirectHandle {
    connections: EchoHandle,
}

impl RedirectHandle {
    pub(crate) fn new(connections: EchoHandle) -> Self {
        Self { connections }
    }

    /// Queues `redirection` for `connection`; `false` when no such
    /// connection is alive.
    pub fn redirect(&self, connection: ConnectionId, redirection: Redirection) -> bool {
        self.connections
            .send(connection, Request::Redirect(Box::new(redirection)))
    }
}

/// Carries out a redirection the application asked for through a
/// `RedirectHandle`.
pub(crate) fn redirect_now(
    engine: &mut Engine,
    router: Option<&Arc<dyn ConnectionRouter>>,
    connection: ConnectionId,
    redirection: &Redirection,
) {
    match engine.redirect(redirection) {
        Ok(()) => info!(
            session_id = redirection.session_id,
            targets = ?redirection.target_addresses,
            "Redirection asked by the application"
        ),
        Err(error) => {
            warn!(%error, "Redirection refused; the session goes on");
            if let Some(router) = router {
                router.refused(connection, redirection, &error);
            }
        }
    }
}

/// Asks the router about a connection waiting after logon and carries out
/// its answer.
pub(crate) fn decide(
    engine: &mut Engine,
    router: Option<&Arc<dyn ConnectionRouter>>,
    connection: ConnectionId,
    routing: &ConnectionRouting,
) {
    let token = routing
        .routing_token
        .as_deref()
        .map(String::from_utf8_lossy);
    info!(
        user = %routing.user_name,
        cookie = ?routing.cookie,
        routing_token = ?token,
        redirected_session_id = ?routing.cluster.and_then(|cluster| cluster.redirected_session_id),
        redirection_supported = routing.redirection_supported(),
        with_cookie = routing.logged_on_with_cookie,
        "Routing a logon"
    );
    let route = router.map_or(Route::Accept, |router| router.route(connection, routing));
    let result = match &route {
        Route::Accept => engine.accept_connection(),
        Route::Redirect(redirection) => match engine.redirect(redirection) {
            Ok(()) => {
                info!(
                    session_id = redirection.session_id,
                    targets = ?redirection.target_addresses,
                    load_balance_info = ?redirection.load_balance_info.as_deref().map(String::from_utf8_lossy),
                    "Redirected"
                );
                return;
            }
            Err(error @ CommandError::Connection(_)) => Err(error),
            Err(error) => {
                warn!(%error, "Redirection refused; serving the session here");
                if let Some(router) = router {
                    router.refused(connection, redirection, &error);
                }
                engine.accept_connection()
            }
        },
    };
    match result {
        Ok(()) => info!("Accepted here"),
        // The engine closes the connection itself and says why.
        Err(error) => warn!(%error, "Routing failed"),
    }
}
