//! A farm of rdpserve servers behind a real HAProxy (docs/farm.md), driven
//! by real xfreerdp clients under Xvfb on loopback: stickiness of a user
//! to a member, failover when a member dies, Server Redirection with a
//! routing token through the balancer and by address without it, and a
//! client that cannot be redirected (IronRDP's) served where it landed.
//!
//! Each member is this test binary run again as a child process (the
//! ignored test `farm_member_process`, which runs the example's farm
//! member), so a member can be killed by its PID. Each member paints its
//! desktop a colour of its own: the colour a client shows says which
//! member served it.

// Shared with tests/ironrdp.rs, which uses more of it.
#[allow(dead_code)]
#[path = "support/ironrdp_client.rs"]
mod ironrdp_client;

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::sync::mpsc::{Receiver, channel};

use rdpserve_examples::farm::{
    IgnoreInput, MemberOptions, RedirectMode, SolidDisplay, member_color, run_member,
};
use rdpserve_tests::freerdp::{ClientSecurity, FreeRdp};
use rdpserve_tests::image::RgbImage;
use rdpserve_tests::x11::Xvfb;
use rdpserve_tests::{artifacts_dir, free_port, require_programs, wait_until};
use rdpserve_tokio::{
    ConnectionId, Credentials, DesktopSize, RdpServer, RedirectHandle, Redirection, SessionEvent,
};

use ironrdp_client::{ClientOptions, IronRdpClient};

const SIZE: DesktopSize = DesktopSize {
    width: 640,
    height: 480,
};
const PASSWORD: &str = "farm-secret";
const MEMBERS: usize = 3;
/// Bound on a client's connection up to a rendered desktop (with a
/// redirection, two connections).
const RENDER_TIMEOUT: Duration = Duration::from_secs(45);
/// Bound on a process starting to listen.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// What the parent passes a member process.
const MEMBER_ENV: &str = "RDPSERVE_FARM_MEMBER";

/// Whether xfreerdp, Xvfb, xwd and haproxy are installed (fails under
/// `RDPSERVE_REQUIRE_INTEROP=1` when one is missing).
fn require_farm_tools() -> bool {
    require_programs(
        &["xfreerdp", "Xvfb", "xwd", "haproxy"],
        "freerdp2-x11 xvfb x11-apps haproxy",
    )
}

/// Not a test: the entry point of a farm member process the tests start
/// (`RDPSERVE_FARM_MEMBER` says which). Run alone it does nothing.
#[test]
#[ignore = "a farm member process, started by the farm tests"]
fn farm_member_process() {
    let Ok(spec) = std::env::var(MEMBER_ENV) else {
        return;
    };
    let fields: Vec<&str> = spec.split(';').collect();
    let [addr, state_dir, mode, security, index] = fields[..] else {
        panic!("bad {MEMBER_ENV}: {spec}");
    };
    tracing_subscriber::fmt()
        .with_env_filter("info")
        .with_ansi(false)
        .init();
    let options = MemberOptions {
        addr: addr.parse().expect("member address"),
        state_dir: state_dir.into(),
        mode: if mode == "ip" {
            RedirectMode::Ip
        } else {
            RedirectMode::Token
        },
        password: PASSWORD.into(),
        nla: security == "nla",
        size: SIZE,
        color: member_color(index.parse().expect("member index")),
    };
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(run_member(options)).expect("member runs");
}

/// A child process, killed by its PID when dropped.
struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    fn spawn(mut command: Command, log: PathBuf) -> Self {
        let file = fs::File::create(&log).expect("log file");
        command
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file);
        let child = command.spawn().expect("process starts");
        Self { child, log }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `addr` takes connections; panics with the log if the
    /// process exits or the bound passes.
    fn wait_listening(&mut self, addr: SocketAddr, what: &str) {
        let result = wait_until(START_TIMEOUT, Duration::from_millis(100), || {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                return Err(format!("exited with {status}"));
            }
            TcpStream::connect_timeout(&addr, Duration::from_millis(200))
                .map(drop)
                .map_err(|e| e.to_string())
        });
        if let Err(reason) = result {
            panic!("{what} not listening on {addr}: {reason}\n{}", self.log());
        }
    }

    /// Kills the process by its PID and reaps it.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The members of a farm and, optionally, HAProxy in front of them.
struct Farm {
    members: Vec<Process>,
    addrs: Vec<SocketAddrV4>,
    balancer: Option<(Process, SocketAddr)>,
    state_dir: PathBuf,
    dir: PathBuf,
}

impl Farm {
    /// `MEMBERS` members on 127.0.0.2, .3, .4, one port for all, sharing a
    /// fresh state directory; HAProxy in front when `balancer`.
    fn start(test: &str, mode: &str, security: &str, balancer: bool) -> Self {
        let dir = artifacts_dir(test);
        let state_dir = dir.join("state");
        let _ = fs::remove_dir_all(&state_dir);
        fs::create_dir_all(&state_dir).expect("state dir");
        // The OS picked this port free on 127.0.0.1; the other loopback
        // addresses are almost always free on it too (a member that
        // cannot bind fails its start, and the test says so).
        let port = free_port();
        let addrs: Vec<SocketAddrV4> = (0..MEMBERS)
            .map(|index| SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 2 + index as u8), port))
            .collect();
        let exe = std::env::current_exe().expect("test binary");
        let mut members = Vec::new();
        for (index, addr) in addrs.iter().enumerate() {
            let mut command = Command::new(&exe);
            command
                .args([
                    "farm_member_process",
                    "--exact",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(
                    MEMBER_ENV,
                    format!("{addr};{};{mode};{security};{index}", state_dir.display()),
                );
            let mut member = Process::spawn(command, dir.join(format!("member-{index}.log")));
            member.wait_listening(SocketAddr::V4(*addr), "farm member");
            members.push(member);
        }
        let balancer = balancer.then(|| start_haproxy(&dir, &addrs));
        Self {
            members,
            addrs,
            balancer,
            state_dir,
            dir,
        }
    }

    fn balancer_addr(&self) -> SocketAddr {
        self.balancer.as_ref().expect("a balancer").1
    }

    /// Which member paints `color` (R, G, B); `MEMBERS` stands for a
    /// server of the test's own, outside the farm.
    fn member_of_color(&self, color: [u8; 3]) -> Option<usize> {
        (0..=MEMBERS).find(|&index| rgb(member_color(index)) == color)
    }

    /// Records, as a member would, that member `holder` holds `user`'s
    /// session `session_id` (the state a user who disconnected leaves).
    fn hold_session(&self, user: &str, holder: usize, session_id: u32) {
        let name: String = user
            .to_lowercase()
            .bytes()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        fs::write(
            self.state_dir.join("sessions").join(name),
            format!("{} {session_id}\n", self.addrs[holder]),
        )
        .expect("session entry");
    }

    /// The cookies members redeemed, as they keep them.
    fn spent_cookies(&self) -> Vec<String> {
        let Ok(entries) = fs::read_dir(self.state_dir.join("cookies").join("used")) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|entry| fs::read_to_string(entry.path()).ok())
            .filter_map(|text| text.lines().nth(3).map(str::to_owned))
            .collect()
    }

    fn logs(&self) -> String {
        let mut all = String::new();
        for (index, member) in self.members.iter().enumerate() {
            all += &format!("--- member {index} ---\n{}\n", member.log());
        }
        if let Some((haproxy, _)) = &self.balancer {
            all += &format!("--- haproxy ---\n{}\n", haproxy.log());
        }
        all
    }
}

/// HAProxy on 127.0.0.1 and a free port, with the repository's rdp-cookie
/// configuration (examples/farm/haproxy.cfg) pointed at `members`, run in
/// the foreground as a child of the test.
fn start_haproxy(dir: &Path, members: &[SocketAddrV4]) -> (Process, SocketAddr) {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let template = include_str!("../examples/farm/haproxy.cfg");
    let mut config = String::new();
    for line in template.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("bind ") {
            config += &format!("    bind {addr}\n");
        } else if trimmed.starts_with("server ") {
            continue;
        } else if trimmed.starts_with("default-server ") {
            // Checks every half second, so a dead member leaves quickly.
            config += "    default-server check inter 500ms fall 1 rise 1\n";
        } else {
            config += line;
            config += "\n";
        }
    }
    for (index, member) in members.iter().enumerate() {
        config += &format!("    server m{index} {member}\n");
    }
    let path = dir.join("haproxy.cfg");
    fs::write(&path, config).expect("haproxy config");
    let mut command = Command::new("haproxy");
    command.arg("-f").arg(&path).arg("-db");
    let mut haproxy = Process::spawn(command, dir.join("haproxy.log"));
    haproxy.wait_listening(addr, "haproxy");
    (haproxy, addr)
}

fn rgb([blue, green, red]: [u8; 3]) -> [u8; 3] {
    [red, green, blue]
}

/// Connects `user` with xfreerdp to `server` and waits until its window
/// shows one member's whole desktop; returns that member and the time
/// from starting xfreerdp.
fn connect_and_render(
    test: &str,
    farm: &Farm,
    xvfb: &Xvfb,
    server: SocketAddr,
    user: &str,
    password: &str,
    security: ClientSecurity,
) -> (usize, Duration, FreeRdp) {
    let started = Instant::now();
    let log = farm.dir.join(format!(
        "xfreerdp-{user}-{}.log",
        started.elapsed().as_nanos()
    ));
    let mut client = FreeRdp::builder(server)
        .user(user)
        .password(password)
        .security(security)
        .bpp(32)
        .size(u32::from(SIZE.width), u32::from(SIZE.height))
        .log_level("DEBUG")
        .log_file(log)
        .spawn(xvfb)
        .expect("xfreerdp starts");
    let member = wait_for_member(test, farm, xvfb, &mut client, None);
    (member, started.elapsed(), client)
}

/// Waits until the client's window shows one member's whole desktop (that
/// of `expected`, if given); returns the member.
fn wait_for_member(
    test: &str,
    farm: &Farm,
    xvfb: &Xvfb,
    client: &mut FreeRdp,
    expected: Option<usize>,
) -> usize {
    let result = wait_until(RENDER_TIMEOUT, Duration::from_millis(100), || {
        if let Some(status) = client.try_status().map_err(|e| e.to_string())? {
            return Err(format!("xfreerdp exited with {status}"));
        }
        let geometry = xvfb
            .window_geometry("FreeRDP")
            .map_err(|e| format!("no window yet: {e}"))?;
        let capture = xvfb.capture().map_err(|e| e.to_string())?;
        let region = capture.crop(
            geometry.x,
            geometry.y,
            u32::from(SIZE.width),
            u32::from(SIZE.height),
        );
        let first = region.get(0, 0);
        let member = farm
            .member_of_color(first)
            .ok_or_else(|| format!("top left is {first:?}, no member's colour"))?;
        let mut expected_image = RgbImage::new(u32::from(SIZE.width), u32::from(SIZE.height));
        expected_image.pixels.fill(first);
        let comparison = region.compare_region(0, 0, &expected_image);
        if expected.is_some_and(|expected| expected != member) {
            Err(format!("member {member} shows, not {expected:?}"))
        } else if comparison.mismatches == 0 {
            Ok(member)
        } else {
            let _ = capture.save_ppm(&artifacts_dir(test).join("capture.ppm"));
            Err(format!(
                "{} pixels are not member {member}'s colour",
                comparison.mismatches
            ))
        }
    });
    match result {
        Ok(member) => member,
        Err(reason) => panic!(
            "{test}: not rendered: {reason}\n--- xfreerdp ---\n{}\n{}",
            client.log(),
            farm.logs()
        ),
    }
}

/// Connects, renders, and closes the client again (killed by PID). Each
/// visit has an X server of its own, so a long test holds none for long.
fn visit(test: &str, farm: &Farm, user: &str) -> usize {
    let xvfb = Xvfb::start(800, 600).expect("Xvfb starts");
    let (member, _, client) = connect_and_render(
        test,
        farm,
        &xvfb,
        farm.balancer_addr(),
        user,
        PASSWORD,
        ClientSecurity::Nla,
    );
    drop(client);
    member
}

/// Five reconnects of one user reach the same member, and ten users spread
/// over more than one; then the member of one user is killed by its PID:
/// that user's next connection renders on a live member, and the users of
/// the other members stay where they were.
#[test]
fn stickiness_and_failover_through_haproxy() {
    let test = "farm_stickiness_and_failover";
    if !require_farm_tools() {
        return;
    }
    let mut farm = Farm::start(test, "token", "nla", true);
    let first = visit(test, &farm, "alice");
    for attempt in 0..5 {
        let again = visit(test, &farm, "alice");
        assert_eq!(again, first, "{test}: reconnect {attempt} of alice moved");
    }
    let users: Vec<String> = (0..10).map(|index| format!("user{index}")).collect();
    let placed: Vec<usize> = users.iter().map(|user| visit(test, &farm, user)).collect();
    let mut used: Vec<usize> = placed.clone();
    used.sort_unstable();
    used.dedup();
    eprintln!("{test}: alice on member {first}; ten users on members {placed:?}");
    assert!(used.len() >= 2, "{test}: ten users all on one member");

    // Connect-to-first-frame, through the balancer and straight to the
    // member it picks (printed, never asserted: tests hold no clocks).
    let member = SocketAddr::V4(farm.addrs[first]);
    let mut through = Vec::new();
    let mut direct = Vec::new();
    for _ in 0..5 {
        for (server, times) in [(farm.balancer_addr(), &mut through), (member, &mut direct)] {
            let xvfb = Xvfb::start(800, 600).expect("Xvfb starts");
            let (_, time, client) = connect_and_render(
                test,
                &farm,
                &xvfb,
                server,
                "alice",
                PASSWORD,
                ClientSecurity::Nla,
            );
            drop(client);
            times.push(time);
        }
    }
    through.sort_unstable();
    direct.sort_unstable();
    eprintln!(
        "{test}: connect to first frame, median of 5: through haproxy {} ms, direct {} ms",
        through[2].as_millis(),
        direct[2].as_millis()
    );

    // Failover.
    let victim = first;
    let pid = farm.members[victim].pid();
    farm.members[victim].kill();
    eprintln!("{test}: killed member {victim} (pid {pid})");
    let moved = visit(test, &farm, "alice");
    assert_ne!(moved, victim, "{test}: alice rendered on the dead member");
    for (user, &member) in users.iter().zip(&placed) {
        if member == victim {
            continue;
        }
        let now = visit(test, &farm, user);
        assert_eq!(
            now, member,
            "{test}: {user} moved although its member lives"
        );
    }
    eprintln!("{test}: alice moved to member {moved}; the other users stayed");
}

/// The member a user lands on sends them, with a routing token naming the
/// member that holds their session, back through HAProxy; they land on
/// that member, which sees the redirected session id, and render there,
/// logged on with the one-time cookie instead of the password. The spent
/// cookie then fails as a password over NLA and over TLS.
#[test]
fn token_redirection_through_haproxy() {
    let test = "farm_token_redirection";
    if !require_farm_tools() {
        return;
    }
    let farm = Farm::start(test, "token", "nla", true);
    let xvfb = Xvfb::start(800, 600).expect("Xvfb starts");
    let (landing, direct_time, client) = connect_and_render(
        test,
        &farm,
        &xvfb,
        farm.balancer_addr(),
        "carol",
        PASSWORD,
        ClientSecurity::Nla,
    );
    drop(client);
    // Carol's session is held elsewhere, say by the next member.
    let holder = (landing + 1) % MEMBERS;
    farm.hold_session("carol", holder, 4242);
    let (reached, redirected_time, client) = connect_and_render(
        test,
        &farm,
        &xvfb,
        farm.balancer_addr(),
        "carol",
        PASSWORD,
        ClientSecurity::Nla,
    );
    let client_log = client.log();
    drop(client);
    assert_eq!(reached, holder, "{test}: carol did not reach her session");
    let landing_log = farm.members[landing].log();
    let holder_log = farm.members[holder].log();
    assert!(
        landing_log.contains("Sending the user to the member holding their session")
            && landing_log.contains("mode=Token"),
        "{test}: the landing member did not redirect\n{landing_log}"
    );
    assert!(
        holder_log.contains("Redirected client arrived")
            && holder_log.contains("session_id=4242")
            && holder_log.contains("token_names_me=true")
            && holder_log.contains("with_cookie=true"),
        "{test}: the holder did not see the redirected session\n{holder_log}"
    );
    // The client's own log: it read a redirection with load-balance info
    // and no address, and dialled the balancer again.
    assert!(
        client_log.contains("LB_LOAD_BALANCE_INFO")
            && !client_log.contains("LB_TARGET_NET_ADDRESS")
            && client_log.contains("sessionID: 0x00001092"),
        "{test}: xfreerdp did not take a token redirection\n{client_log}"
    );
    eprintln!(
        "{test}: landed on {landing}, redirected to {holder}; first frame {} ms, with the redirection {} ms",
        direct_time.as_millis(),
        redirected_time.as_millis()
    );

    // The cookie was spent: as a password over NLA it fails.
    let log = replay_spent_cookie(test, &farm, &xvfb, holder, "carol", ClientSecurity::Nla);
    assert!(
        log.contains("ERRCONNECT_LOGON_FAILURE"),
        "{test}: the client was not told its logon failed\n{log}"
    );
    let holder_log = farm.members[holder].log();
    assert!(
        holder_log.contains("NLA logon failed") && holder_log.contains("Logon failed"),
        "{test}: the replay was not a logon failure\n{holder_log}"
    );
}

/// Logs on to member `member` as `user` with the cookie the farm
/// redeemed as the password; asserts the client gave up without a
/// session. Returns the client's log.
fn replay_spent_cookie(
    test: &str,
    farm: &Farm,
    xvfb: &Xvfb,
    member: usize,
    user: &str,
    security: ClientSecurity,
) -> String {
    let spent = farm.spent_cookies();
    assert_eq!(spent.len(), 1, "{test}: one cookie redeemed");
    let mut replay = FreeRdp::builder(SocketAddr::V4(farm.addrs[member]))
        .user(user)
        .password(&spent[0])
        .security(security)
        .size(u32::from(SIZE.width), u32::from(SIZE.height))
        .log_level("DEBUG")
        .log_file(farm.dir.join(format!("replay-{security:?}.log")))
        .spawn(xvfb)
        .expect("xfreerdp starts");
    let status = replay
        .wait_exit(RENDER_TIMEOUT)
        .expect("xfreerdp runs")
        .unwrap_or_else(|| panic!("{test}: the replay was not refused\n{}", replay.log()));
    assert!(!status.success(), "{test}: the replayed cookie logged on");
    replay.log()
}

/// Without a balancer: a member sends the user to another member's
/// address, xfreerdp dials it (same port) and renders there.
#[test]
fn ip_redirection_without_the_balancer() {
    let test = "farm_ip_redirection";
    if !require_farm_tools() {
        return;
    }
    let farm = Farm::start(test, "ip", "tls", false);
    let xvfb = Xvfb::start(800, 600).expect("Xvfb starts");
    farm.hold_session("dave", 1, 77);
    let (reached, time, client) = connect_and_render(
        test,
        &farm,
        &xvfb,
        SocketAddr::V4(farm.addrs[0]),
        "dave",
        PASSWORD,
        ClientSecurity::Tls,
    );
    let client_log = client.log();
    drop(client);
    // The client's own log: a redirection to an address, which it dialled.
    assert!(
        client_log.contains("LB_TARGET_NET_ADDRESS")
            && client_log.contains(&format!("connecting to peer {}", farm.addrs[1].ip())),
        "{test}: xfreerdp did not follow an address redirection\n{client_log}"
    );
    assert_eq!(reached, 1, "{test}: dave did not reach member 1");
    let first_log = farm.members[0].log();
    let second_log = farm.members[1].log();
    assert!(
        first_log.contains("mode=Ip"),
        "{test}: member 0 did not redirect by address\n{first_log}"
    );
    assert!(
        second_log.contains("Redirected client arrived")
            && second_log.contains("session_id=77")
            && second_log.contains("with_cookie=true"),
        "{test}: member 1 did not see the redirected session\n{second_log}"
    );
    eprintln!(
        "{test}: redirected from 0 to 1, first frame after {} ms",
        time.as_millis()
    );

    // The cookie was spent: as a Client Info password over TLS it fails.
    replay_spent_cookie(test, &farm, &xvfb, 1, "dave", ClientSecurity::Tls);
    let second_log = farm.members[1].log();
    assert!(
        second_log.contains("Redirection cookie unknown, used or expired")
            && second_log.contains("Logon failed"),
        "{test}: the replay was not a logon failure\n{second_log}"
    );
}

/// IronRDP's client sends no cluster block: the member that would redirect
/// it gets `RedirectionNotSupported` instead, and serves it.
#[test]
fn a_client_without_redirection_support_is_served_where_it_landed() {
    let test = "farm_no_redirection_support";
    if !require_farm_tools() {
        return;
    }
    let farm = Farm::start(test, "token", "nla", false);
    farm.hold_session("erin", 1, 5);
    let options = ClientOptions {
        server: SocketAddr::V4(farm.addrs[0]),
        security: ironrdp_client::ClientSecurity::Nla,
        user: "erin".into(),
        password: PASSWORD.into(),
        domain: None,
        codecs: Vec::new(),
        width: SIZE.width,
        height: SIZE.height,
        connect_timeout: RENDER_TIMEOUT,
        tls_server_name: None,
        bind_to_key: None,
    };
    let mut client = IronRdpClient::connect(&options)
        .unwrap_or_else(|error| panic!("{test}: {error}\n{}", farm.logs()));
    let color = rgb(member_color(0));
    client
        .wait_for_image(RENDER_TIMEOUT, |image| {
            image.pixels.iter().all(|&pixel| pixel == color)
        })
        .unwrap_or_else(|error| panic!("{test}: not member 0's desktop: {error}"));
    let log = farm.members[0].log();
    assert!(
        log.contains("Redirection refused by the server")
            && log.contains("RedirectionNotSupported"),
        "{test}: the router did not get the typed error\n{log}"
    );
    assert!(
        !log.contains("Server Redirection sent"),
        "{test}: a redirection went out\n{log}"
    );
}

/// The application redirects a session that is already active
/// (`RedirectHandle`): the client leaves the server it shows and renders
/// on the member the redirection names.
#[test]
fn an_active_session_is_redirected_by_the_application() {
    let test = "farm_active_redirection";
    if !require_farm_tools() {
        return;
    }
    let farm = Farm::start(test, "ip", "tls", false);
    // A server of the test's own beside the farm, on the farm's port (a
    // client redirected by address keeps its port).
    let addr = SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 5), farm.addrs[0].port());
    let (handles, activated) = start_own_server(addr);
    let xvfb = Xvfb::start(800, 600).expect("Xvfb starts");
    let (shown, _, mut client) = connect_and_render(
        test,
        &farm,
        &xvfb,
        SocketAddr::V4(addr),
        "frank",
        PASSWORD,
        ClientSecurity::Tls,
    );
    assert_eq!(shown, MEMBERS, "{test}: the test's own server shows first");
    let connection = activated
        .recv_timeout(RENDER_TIMEOUT)
        .expect("the session was reported active");
    let mut redirection = Redirection::new(31);
    redirection.target_addresses = vec![farm.addrs[1].ip().to_string()];
    assert!(
        handles.redirect(connection, redirection),
        "{test}: connection alive"
    );
    let member = wait_for_member(test, &farm, &xvfb, &mut client, Some(1));
    assert_eq!(member, 1);
    let log = farm.members[1].log();
    assert!(
        log.contains("Redirected client arrived") && log.contains("session_id=31"),
        "{test}: member 1 did not see the redirected session\n{log}"
    );
    let client_log = client.log();
    assert!(
        client_log.contains("LB_TARGET_NET_ADDRESS"),
        "{test}: xfreerdp did not read a redirection\n{client_log}"
    );
}

/// A TLS server at `addr` on a thread of its own, painting the colour of
/// index `MEMBERS`, accepting any user with `PASSWORD`; returns its
/// redirect handle and the ids of the sessions that become active.
fn start_own_server(addr: SocketAddrV4) -> (RedirectHandle, Receiver<ConnectionId>) {
    let (handle_sender, handle) = channel();
    let (activated_sender, activated) = channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
        runtime.block_on(async move {
            let server = RdpServer::builder()
                .with_addr(SocketAddr::V4(addr))
                .with_self_signed_tls()
                .with_input_handler(IgnoreInput)
                .with_display_handler(SolidDisplay {
                    size: SIZE,
                    color: member_color(MEMBERS),
                })
                .with_credentials(Credentials {
                    username: "frank".into(),
                    password: PASSWORD.into(),
                    domain: None,
                })
                .with_session_observer(move |event| {
                    if let SessionEvent::Activated { connection, .. } = event {
                        let _ = activated_sender.send(*connection);
                    }
                })
                .build()
                .expect("server builds")
                .bind()
                .await
                .expect("server binds");
            let _ = handle_sender.send(server.redirect_handle());
            let _ = server.run().await;
        });
    });
    let handle = handle
        .recv_timeout(START_TIMEOUT)
        .expect("the test's server starts");
    (handle, activated)
}
