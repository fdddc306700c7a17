//! One member of a farm of rdpserve servers behind HAProxy (docs/farm.md).
//!
//! Every member paints its desktop one colour of its own, so a user sees
//! which server they reached. The farm shares a state directory (the
//! filesystem is the store: no server of our own):
//!
//! - `sessions/<user>` holds `<address> <session id>`: the member that
//!   holds the user's session, written when a session becomes active.
//! - `cookies/<random>` holds one one-time redirection cookie: the user,
//!   the member it was issued for, its expiry and the cookie. Redeeming it
//!   removes the file, which succeeds once.
//!
//! At each logon the member looks the user up. When another member that
//! is up holds their session, the client is redirected there: in token
//! mode with a routing token that names that member (the client goes back
//! through the balancer, whose `persist rdp-cookie` reads the token), in
//! IP mode to that member's address. The cookie replaces the password.

use std::io;
use std::net::{SocketAddr, SocketAddrV4, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rdpserve_tokio::{
    BitmapUpdate, CommandError, ConnectionId, ConnectionRouter, ConnectionRouting,
    CredentialValidator, DesktopSize, DisplayUpdate, KeyboardEvent, MouseEvent, Password,
    PixelFormat, RdpServer, RdpServerDisplay, RdpServerDisplayUpdates, RdpServerInputHandler,
    Redirection, RedirectionCookieValidator, Route, Secret, SessionEvent, routing_token,
};
use tracing::{info, warn};

/// How long an issued cookie stays valid.
const COOKIE_LIFETIME: Duration = Duration::from_secs(60);
/// How long a liveness probe of another member may take.
const PROBE_TIMEOUT: Duration = Duration::from_millis(300);

/// How a member sends a user to the member holding their session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectMode {
    /// A routing token naming the member; the client reconnects through
    /// the balancer.
    Token,
    /// The member's address; the client dials it directly.
    Ip,
}

/// What one member needs.
#[derive(Debug, Clone)]
pub struct MemberOptions {
    /// Where this member listens (its own loopback address in the example).
    pub addr: SocketAddrV4,
    /// The farm's shared state directory.
    pub state_dir: PathBuf,
    pub mode: RedirectMode,
    /// The password every user logs on with (the example's stand-in for an
    /// account directory the members share).
    pub password: String,
    /// NLA (true) or TLS only.
    pub nla: bool,
    pub size: DesktopSize,
    /// The desktop colour, B, G, R.
    pub color: [u8; 3],
}

/// The colour member `index` (0, 1, 2, ...) paints, B, G, R.
pub fn member_color(index: usize) -> [u8; 3] {
    const COLORS: [[u8; 3]; 4] = [
        [0x30, 0x60, 0xC0],
        [0x40, 0xB0, 0x40],
        [0xC0, 0x50, 0x30],
        [0x90, 0x30, 0x90],
    ];
    COLORS[index % COLORS.len()]
}

/// Runs one member until the process ends.
pub async fn run_member(options: MemberOptions) -> io::Result<()> {
    let store = Store::open(&options.state_dir, options.addr)?;
    let router = FarmRouter {
        store: store.clone(),
        mode: options.mode,
    };
    let observer_store = store.clone();
    let builder = RdpServer::builder().with_addr(SocketAddr::V4(options.addr));
    let builder = if options.nla {
        builder.with_self_signed_hybrid()
    } else {
        builder.with_self_signed_tls()
    };
    let server = builder
        .with_input_handler(IgnoreInput)
        .with_display_handler(SolidDisplay {
            size: options.size,
            color: options.color,
        })
        .with_credential_validator(SharedPassword(Password::new(options.password)))
        .with_router(router)
        .with_redirection_cookie_validator(store)
        .with_session_observer(move |event| {
            if let SessionEvent::Activated { connection, info } = event {
                observer_store.hold_session(&info.user_name, connection_number(*connection));
            }
        })
        .build()
        .map_err(io::Error::other)?
        .bind()
        .await?;
    info!(addr = %server.local_addr()?, mode = ?options.mode, "Farm member listening");
    server.run().await
}

/// The connection's number, used as the session id.
fn connection_number(connection: ConnectionId) -> u32 {
    connection.get() as u32
}

struct FarmRouter {
    store: Store,
    mode: RedirectMode,
}

impl ConnectionRouter for FarmRouter {
    fn route(&self, connection: ConnectionId, routing: &ConnectionRouting) -> Route {
        let me = self.store.me;
        let redirected = routing
            .cluster
            .and_then(|cluster| cluster.redirected_session_id);
        if let Some(session_id) = redirected {
            // A client sent here by a redirection: the token (token mode)
            // must name this member and the session id the one it holds.
            let token_ok = routing.routing_target.is_none_or(|target| target == me);
            let held = self.store.session_of(&routing.user_name);
            info!(
                %connection,
                session_id,
                token_names_me = token_ok,
                holds_session = held.is_some_and(|(addr, id)| addr == me && id == session_id),
                with_cookie = routing.logged_on_with_cookie,
                "Redirected client arrived"
            );
            return Route::Accept;
        }
        let Some((holder, session_id)) = self.store.session_of(&routing.user_name) else {
            return Route::Accept;
        };
        if holder == me {
            return Route::Accept;
        }
        if !member_is_up(holder) {
            info!(%connection, user = %routing.user_name, %holder, "Session holder is down; serving here");
            return Route::Accept;
        }
        let cookie = match self.store.issue_cookie(&routing.user_name, holder) {
            Ok(cookie) => cookie,
            Err(error) => {
                warn!(%error, "Could not issue a redirection cookie; serving here");
                return Route::Accept;
            }
        };
        let mut redirection = Redirection::new(session_id);
        match self.mode {
            RedirectMode::Token => {
                redirection.load_balance_info = Some(routing_token::encode(holder));
            }
            RedirectMode::Ip => redirection.target_addresses = vec![holder.ip().to_string()],
        }
        redirection.user_name = Some(routing.user_name.clone());
        redirection.password_cookie = Some(cookie);
        info!(%connection, user = %routing.user_name, %holder, session_id, mode = ?self.mode, "Sending the user to the member holding their session");
        Route::Redirect(redirection)
    }

    fn refused(&self, connection: ConnectionId, redirection: &Redirection, error: &CommandError) {
        warn!(%connection, session_id = redirection.session_id, ?error, "Redirection refused by the server; serving here");
    }
}

fn member_is_up(addr: SocketAddrV4) -> bool {
    TcpStream::connect_timeout(&SocketAddr::V4(addr), PROBE_TIMEOUT).is_ok()
}

/// The farm's shared directory, seen from one member.
#[derive(Clone)]
struct Store {
    dir: Arc<PathBuf>,
    me: SocketAddrV4,
}

impl Store {
    fn open(dir: &Path, me: SocketAddrV4) -> io::Result<Self> {
        std::fs::create_dir_all(dir.join("sessions"))?;
        std::fs::create_dir_all(dir.join("cookies").join("used"))?;
        Ok(Self {
            dir: Arc::new(dir.to_path_buf()),
            me,
        })
    }

    /// File names carry user names only in hex, so any name is safe.
    fn session_path(&self, user: &str) -> PathBuf {
        self.dir
            .join("sessions")
            .join(hex(user.to_lowercase().as_bytes()))
    }

    fn session_of(&self, user: &str) -> Option<(SocketAddrV4, u32)> {
        let text = std::fs::read_to_string(self.session_path(user)).ok()?;
        let (addr, id) = text.trim().split_once(' ')?;
        Some((addr.parse().ok()?, id.parse().ok()?))
    }

    fn hold_session(&self, user: &str, session_id: u32) {
        // Written whole under a temporary name, then renamed: a reader never
        // sees half an entry.
        let path = self.session_path(user);
        let temporary = path.with_extension(format!("{}", self.me.ip()));
        let written = std::fs::write(&temporary, format!("{} {session_id}\n", self.me))
            .and_then(|()| std::fs::rename(&temporary, &path));
        match written {
            Ok(()) => info!(%user, session_id, "Holding the session"),
            Err(error) => warn!(%error, "Could not record the session"),
        }
    }

    fn issue_cookie(&self, user: &str, target: SocketAddrV4) -> io::Result<Password> {
        let mut random = [0u8; 16];
        rustls::crypto::ring::default_provider()
            .secure_random
            .fill(&mut random)
            .map_err(|_| io::Error::other("no randomness"))?;
        let cookie = hex(&random);
        let expires = unix_now() + COOKIE_LIFETIME.as_secs();
        let name = hex(&random[..8]);
        let path = self.dir.join("cookies").join(&name);
        let temporary = path.with_extension("new");
        std::fs::write(
            &temporary,
            format!("{}\n{target}\n{expires}\n{cookie}\n", user.to_lowercase()),
        )?;
        std::fs::rename(&temporary, &path)?;
        Ok(Password::new(cookie))
    }

    /// Cookies issued to `user` for this member, unexpired: (file, cookie).
    fn cookies_for(&self, user: &str) -> Vec<(PathBuf, String)> {
        let Ok(entries) = std::fs::read_dir(self.dir.join("cookies")) else {
            return Vec::new();
        };
        let user = user.to_lowercase();
        let now = unix_now();
        entries
            .flatten()
            .filter(|entry| entry.path().is_file() && entry.path().extension().is_none())
            .filter_map(|entry| {
                let text = std::fs::read_to_string(entry.path()).ok()?;
                let mut lines = text.lines();
                let (owner, target, expires, cookie) =
                    (lines.next()?, lines.next()?, lines.next()?, lines.next()?);
                let valid = owner == user
                    && target.parse::<SocketAddrV4>().ok()? == self.me
                    && expires.parse::<u64>().ok()? > now;
                valid.then(|| (entry.path(), cookie.to_owned()))
            })
            .collect()
    }
}

impl RedirectionCookieValidator for Store {
    fn pending(&self, user: &str, _domain: &str) -> Vec<Password> {
        self.cookies_for(user)
            .into_iter()
            .map(|(_, cookie)| Password::new(cookie))
            .collect()
    }

    fn redeem(&self, user: &str, _domain: &str, cookie: &str) -> bool {
        let Some((path, _)) = self
            .cookies_for(user)
            .into_iter()
            .find(|(_, issued)| Password::new(issued.clone()).matches(cookie))
        else {
            warn!(%user, "Redirection cookie unknown, used or expired");
            return false;
        };
        // Moving the file out of the pending cookies is the redemption: it
        // succeeds once. The spent cookie stays in `cookies/used` as the
        // record an operator (or the farm test's replay) can read.
        let Some(name) = path.file_name() else {
            return false;
        };
        let used = self.dir.join("cookies").join("used").join(name);
        let redeemed = std::fs::rename(&path, &used).is_ok();
        info!(%user, redeemed, "Redirection cookie presented");
        redeemed
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Every user name, one password.
struct SharedPassword(Password);

impl CredentialValidator for SharedPassword {
    fn secret(&self, user: &str, _domain: &str) -> Option<Secret> {
        (!user.is_empty()).then(|| Secret::Password(self.0.clone()))
    }
}

/// Input is not used by the example.
pub struct IgnoreInput;

impl RdpServerInputHandler for IgnoreInput {
    fn keyboard(&mut self, _event: KeyboardEvent) {}
    fn mouse(&mut self, _event: MouseEvent) {}
}

/// A desktop of one colour (B, G, R), sent once.
pub struct SolidDisplay {
    pub size: DesktopSize,
    pub color: [u8; 3],
}

impl RdpServerDisplay for SolidDisplay {
    type Updates = SolidUpdates;

    async fn size(&self) -> DesktopSize {
        self.size
    }

    async fn updates(&self) -> io::Result<SolidUpdates> {
        let [blue, green, red] = self.color;
        let pixels = usize::from(self.size.width) * usize::from(self.size.height);
        let data: Vec<u8> = [blue, green, red, 0xFF].repeat(pixels);
        Ok(SolidUpdates {
            first: Some(DisplayUpdate::Bitmap(BitmapUpdate {
                x: 0,
                y: 0,
                width: self.size.width,
                height: self.size.height,
                stride: usize::from(self.size.width) * 4,
                format: PixelFormat::BgrX32,
                data: data.into(),
            })),
        })
    }
}

pub struct SolidUpdates {
    first: Option<DisplayUpdate>,
}

impl RdpServerDisplayUpdates for SolidUpdates {
    async fn next_update(&mut self) -> Option<DisplayUpdate> {
        match self.first.take() {
            Some(update) => Some(update),
            // Nothing changes after the first frame.
            None => std::future::pending().await,
        }
    }
}
