//! rdpserve-x11 against real X applications and a real client: display A
//! runs X applications and is shared by rdpserve-x11 (in this process, on
//! its public API); display B runs xfreerdp. Pixels, input, the cursor and
//! several viewers are checked on both sides.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

// The IronRDP client sends Unicode key events, which xfreerdp 2 cannot;
// this test uses only its connection, picture and Unicode input.
#[allow(dead_code)]
#[path = "support/ironrdp_client.rs"]
mod ironrdp_client;

use rdpserve_tests::image::Comparison;
use rdpserve_tests::{FreeRdp, Xvfb, artifacts_dir, require_programs, wait_until};
use rdpserve_tokio::{BitmapCodecs, BitmapCompression, Credentials, RdpServer, StopHandle};
use rdpserve_x11::{X11Desktop, X11Error, X11Options};

const WIDTH: u32 = 640;
const HEIGHT: u32 = 480;
const USER: &str = "viewer";
const PASSWORD: &str = "x11 secret";
/// How long a picture or an event may take to arrive: seconds on a loaded
/// machine, far more than it needs.
const ARRIVAL: Duration = Duration::from_secs(60);

/// The programs these tests drive, and their Debian packages.
fn require_tools() -> bool {
    require_programs(
        &[
            "xfreerdp", "Xvfb", "xwd", "xdotool", "xsetroot", "xlogo", "xedit", "xev", "stdbuf",
        ],
        "freerdp2-x11 xvfb x11-apps xdotool x11-xserver-utils x11-utils coreutils",
    )
}

/// What rdpserve-x11 logs (debug and up), kept for the tests that check
/// its log: one subscriber for the whole test binary, so every test's lines
/// land here; each test looks for lines only it causes.
fn server_log() -> String {
    use std::sync::{Mutex, OnceLock};
    static LOG: OnceLock<&'static Mutex<Vec<u8>>> = OnceLock::new();
    let log = LOG.get_or_init(|| {
        let log: &'static Mutex<Vec<u8>> = Box::leak(Box::new(Mutex::new(Vec::new())));
        let writer = move || LogWriter(log);
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "rdpserve_x11=debug,rdpserve_server=debug,rdpserve_core=debug",
            ))
            .with_ansi(false)
            .with_writer(writer)
            .try_init();
        log
    });
    String::from_utf8_lossy(&log.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
}

struct LogWriter(&'static std::sync::Mutex<Vec<u8>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// rdpserve-x11 sharing one display, on a thread of its own; stopped when
/// dropped.
struct SharedDisplay {
    addr: SocketAddr,
    stop: StopHandle,
    thread: Option<JoinHandle<()>>,
}

impl SharedDisplay {
    /// Shares `display` over NLA with the test account, planar bitmaps
    /// only (the lossless path, so pixels compare exactly).
    fn start(display: &str) -> Self {
        Self::start_with(X11Options {
            display: Some(display.into()),
            ..X11Options::default()
        })
    }

    fn start_with(options: X11Options) -> Self {
        server_log();
        let desktop = X11Desktop::open(&options).expect("the display opens");
        Self::serve(desktop, BitmapCodecs::bitmaps_only())
    }

    fn serve(desktop: X11Desktop, codecs: BitmapCodecs) -> Self {
        let (sender, receiver) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let input = desktop.input().expect("XTEST and XKB");
                let clipboard = desktop.clipboard().expect("XFIXES");
                let server = RdpServer::builder()
                    .with_addr(([127, 0, 0, 1], 0))
                    .with_self_signed_hybrid()
                    .with_input_handler(input)
                    .with_display_handler(desktop.display())
                    .with_cliprdr_factory(clipboard)
                    .with_credentials(Credentials {
                        username: USER.into(),
                        password: PASSWORD.into(),
                        domain: None,
                    })
                    .with_bitmap_codecs(codecs)
                    .with_max_channel_message(rdpserve_x11::MAX_CLIPBOARD_BYTES)
                    .with_bitmap_compression(BitmapCompression::Planar)
                    .build()
                    .expect("server builds")
                    .bind()
                    .await
                    .expect("binds");
                let _ = sender.send((server.local_addr().expect("addr"), server.stop_handle()));
                server.run().await.expect("server runs");
            });
        });
        let (addr, stop) = receiver
            .recv_timeout(ARRIVAL)
            .expect("the server reports its address");
        Self {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for SharedDisplay {
    fn drop(&mut self) {
        self.stop.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// An X program on a test display, killed by PID when dropped.
struct App(Child);

impl App {
    fn spawn(display: &Xvfb, program: &str, args: &[&str], log: Option<&std::path::Path>) -> Self {
        let mut command = Command::new("stdbuf");
        command
            .args(["-oL", program])
            .args(args)
            .env("DISPLAY", display.display())
            .stdin(Stdio::null());
        match log {
            Some(path) => {
                let file = std::fs::File::create(path).expect("log file");
                command
                    .stderr(file.try_clone().expect("log file"))
                    .stdout(file)
            }
            None => command.stdout(Stdio::null()).stderr(Stdio::null()),
        };
        Self(
            command
                .spawn()
                .unwrap_or_else(|e| panic!("{program} starts: {e}")),
        )
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run(display: &Xvfb, program: &str, args: &[&str]) {
    let output = rdpserve_tests::x11::run_bounded(
        Command::new(program)
            .args(args)
            .env("DISPLAY", display.display()),
        ARRIVAL,
    )
    .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(output.status.success(), "{program} {args:?}: {output:?}");
}

fn viewer(server: &SharedDisplay, display: &Xvfb, name: &str) -> FreeRdp {
    viewer_logging(server, display, name, "DEBUG")
}

fn viewer_logging(server: &SharedDisplay, display: &Xvfb, name: &str, level: &str) -> FreeRdp {
    let mut client = FreeRdp::builder(server.addr)
        .arg("+clipboard")
        .user(USER)
        .password(PASSWORD)
        .security(rdpserve_tests::ClientSecurity::Nla)
        .bpp(32)
        .size(WIDTH, HEIGHT)
        .log_level(level)
        .log_file(artifacts_dir("x11-desktop").join(format!("{name}.log")))
        .spawn(display)
        .expect("xfreerdp starts");
    client
        .wait_for_window(display, ARRIVAL)
        .unwrap_or_else(|e| panic!("{name}: no window: {e}"));
    client
}

/// Waits until `client`'s window on `display` shows exactly what `shared`
/// shows (an `xwd` of the whole screen, taken again at each try).
fn wait_for_same_picture(test: &str, shared: &Xvfb, display: &Xvfb, client: &mut FreeRdp) {
    let result = wait_until(ARRIVAL, Duration::from_millis(200), || {
        if let Some(status) = client.try_status().map_err(|e| e.to_string())? {
            return Err(format!("xfreerdp exited with {status}"));
        }
        let expected = shared.capture().map_err(|e| e.to_string())?;
        let geometry = display
            .window_geometry(&format!("^{}$", client.window_name().replace('.', "\\.")))
            .map_err(|e| e.to_string())?;
        let capture = display.capture().map_err(|e| e.to_string())?;
        let comparison = capture.compare_region(geometry.x, geometry.y, &expected);
        if comparison.mismatches == 0 {
            Ok(())
        } else {
            let dir = artifacts_dir(test);
            let _ = capture.save_ppm(&dir.join("viewer.ppm"));
            let _ = expected.save_ppm(&dir.join("shared.ppm"));
            Err(describe(&comparison))
        }
    });
    if let Err(reason) = result {
        panic!(
            "{test}: the viewer does not show the shared display: {reason}\n--- xfreerdp log ---\n{}",
            client.log()
        );
    }
}

fn describe(comparison: &Comparison) -> String {
    format!(
        "{} pixels differ (psnr {:.1} dB), first (x, y, expected, got): {:?}",
        comparison.mismatches, comparison.psnr, comparison.first_mismatches
    )
}

/// A desktop with something on it: a coloured root and xlogo.
fn furnish(shared: &Xvfb) -> App {
    run(shared, "xsetroot", &["-solid", "#336699"]);
    let logo = App::spawn(shared, "xlogo", &["-geometry", "200x150+60+40"], None);
    shared
        .wait_for_window("^xlogo$", ARRIVAL)
        .expect("xlogo shows");
    logo
}

/// The viewer shows display A pixel for pixel (bitmap updates, as
/// xfreerdp's trace confirms, and the server offers planar only); a new
/// root colour and a moved window follow.
#[test]
fn the_viewer_shows_the_shared_display_and_follows_its_changes() {
    if !require_tools() {
        return;
    }
    let shared = Xvfb::start(WIDTH, HEIGHT).expect("Xvfb A starts");
    let _logo = furnish(&shared);
    let server = SharedDisplay::start(&shared.display());
    let display = Xvfb::start(WIDTH + 160, HEIGHT + 120).expect("Xvfb B starts");
    let mut client = viewer_logging(&server, &display, "pixels", "TRACE");
    wait_for_same_picture("x11-pixels", &shared, &display, &mut client);

    run(&shared, "xsetroot", &["-solid", "#993322"]);
    shared
        .xdotool(&[
            "search",
            "--name",
            "^xlogo$",
            "windowmove",
            "--sync",
            "300",
            "250",
        ])
        .expect("xlogo moves");
    wait_for_same_picture("x11-pixels-changed", &shared, &display, &mut client);
    assert_eq!(shared.capture().expect("xwd").get(5, 5), [0x99, 0x33, 0x22]);
    // Bitmap updates (FreeRDP logs their rectangle count), not surface
    // commands: lossless planar is the only compression the server offers.
    let log = client.log();
    assert!(
        log.contains("BitmapUpdate: "),
        "no bitmap updates in the client log:\n{log}"
    );
    assert!(!log.contains("SurfaceBits"), "surface commands:\n{log}");
}

/// Two viewers at once see the same picture and the same change.
#[test]
fn two_viewers_share_one_capture() {
    if !require_tools() {
        return;
    }
    let shared = Xvfb::start(WIDTH, HEIGHT).expect("Xvfb A starts");
    let _logo = furnish(&shared);
    let server = SharedDisplay::start(&shared.display());
    let first_display = Xvfb::start(WIDTH, HEIGHT).expect("Xvfb B starts");
    let second_display = Xvfb::start(WIDTH, HEIGHT).expect("Xvfb C starts");
    let mut first = viewer(&server, &first_display, "first");
    let mut second = viewer(&server, &second_display, "second");
    wait_for_same_picture("x11-two-first", &shared, &first_display, &mut first);
    wait_for_same_picture("x11-two-second", &shared, &second_display, &mut second);
    run(&shared, "xsetroot", &["-solid", "#228844"]);
    wait_for_same_picture("x11-two-first-changed", &shared, &first_display, &mut first);
    wait_for_same_picture(
        "x11-two-second-changed",
        &shared,
        &second_display,
        &mut second,
    );
}

/// The keysyms of the key presses an `xev` log shows, in order, without
/// modifiers; and the buttons pressed.
fn xev_presses(log: &str) -> (String, Vec<u32>) {
    let (mut text, mut buttons) = (String::new(), Vec::new());
    let mut in_key_press = false;
    let mut in_button_press = false;
    for line in log.lines() {
        if line.starts_with("KeyPress event") {
            in_key_press = true;
            continue;
        }
        if line.starts_with("ButtonPress event") {
            in_button_press = true;
            continue;
        }
        if in_key_press && let Some((_, rest)) = line.split_once("(keysym 0x") {
            in_key_press = false;
            let hex = rest.split(',').next().unwrap_or_default();
            let keysym = u32::from_str_radix(hex, 16).unwrap_or_default();
            let c = match keysym {
                0xffe1..=0xffee => None, // Shift, Control, Caps Lock, Alt, ...
                0xff0d => Some('\n'),
                0x20..=0xff => char::from_u32(keysym),
                0x0100_0000.. => char::from_u32(keysym - 0x0100_0000),
                _ => Some('?'),
            };
            text.extend(c);
        }
        if in_button_press && let Some((_, rest)) = line.split_once("button ") {
            in_button_press = false;
            let number = rest.split(',').next().unwrap_or_default();
            buttons.extend(number.trim().parse::<u32>().ok());
        }
    }
    (text, buttons)
}

#[test]
fn xev_presses_reads_keys_and_buttons() {
    let log = "KeyPress event, serial 25, synthetic NO, window 0x1,\n    root 0x1, subw 0x0, time 1, (1,1), root:(1,1),\n    state 0x0, keycode 50 (keysym 0xffe1, Shift_L), same_screen YES,\nKeyPress event, serial 25, synthetic NO, window 0x1,\n    state 0x1, keycode 38 (keysym 0x41, A), same_screen YES,\nKeyRelease event, serial 25, synthetic NO, window 0x1,\n    state 0x1, keycode 38 (keysym 0x41, A), same_screen YES,\nKeyPress event, serial 25, synthetic NO, window 0x1,\n    state 0x0, keycode 248 (keysym 0x10020ac, EuroSign), same_screen YES,\nButtonPress event, serial 25, synthetic NO, window 0x1,\n    state 0x0, button 3, same_screen YES\n";
    assert_eq!(xev_presses(log), ("A€".to_string(), vec![3]));
}

/// Keys typed and buttons clicked into xfreerdp on B arrive on A, where
/// xev logs them: the text exact, shifted characters included.
#[test]
fn typing_and_clicking_in_the_viewer_reach_the_shared_display() {
    if !require_tools() {
        return;
    }
    let shared = Xvfb::start(WIDTH, HEIGHT).expect("Xvfb A starts");
    run(&shared, "xsetroot", &["-solid", "#336699"]);
    let log_path = artifacts_dir("x11-input").join("xev.log");
    let _xev = App::spawn(
        &shared,
        "xev",
        &[
            "-geometry",
            "400x300+100+80",
            "-event",
            "keyboard",
            "-event",
            "button",
        ],
        Some(&log_path),
    );
    let xev_window = shared
        .wait_for_window("^Event Tester$", ARRIVAL)
        .expect("xev shows");
    let server = SharedDisplay::start(&shared.display());
    let display = Xvfb::start(WIDTH, HEIGHT).expect("Xvfb B starts");
    let mut client = viewer(&server, &display, "input");
    wait_for_same_picture("x11-input", &shared, &display, &mut client);

    // Into the xfreerdp window over xev's: A's pointer follows, and with no
    // window manager the keyboard goes where the pointer is.
    let (x, y) = (xev_window.x + 150, xev_window.y + 120);
    display.move_mouse(x, y).expect("pointer moves on B");
    wait_until(ARRIVAL, Duration::from_millis(100), || {
        match shared.mouse_location() {
            Ok(location) if location == (x, y) => Ok(()),
            other => Err(format!("A's pointer at {other:?}, wanted {:?}", (x, y))),
        }
    })
    .expect("A's pointer follows B's");

    let typed = "Hello, World! ~(x_y)=\"42\"?";
    display.type_text(typed).expect("typing on B");
    for button in [1, 3, 2, 4, 5] {
        display.click(button).expect("click on B");
    }
    let result = wait_until(ARRIVAL, Duration::from_millis(200), || {
        let (text, buttons) = xev_presses(&std::fs::read_to_string(&log_path).unwrap_or_default());
        if text == typed && buttons == [1, 3, 2, 4, 5] {
            Ok(())
        } else {
            Err(format!("xev saw {text:?} and buttons {buttons:?}"))
        }
    });
    if let Err(reason) = result {
        panic!("input: {reason}\n--- xfreerdp log ---\n{}", client.log());
    }
}

/// Unicode key events (from IronRDP's client: xfreerdp 2 sends none)
/// become keysyms on a spare keycode of A: xev sees the exact characters,
/// Latin-1, beyond it and beyond the BMP (a surrogate pair).
#[test]
fn unicode_input_reaches_the_shared_display() {
    if !require_tools() {
        return;
    }
    let shared = Xvfb::start(WIDTH, HEIGHT).expect("Xvfb A starts");
    let log_path = artifacts_dir("x11-unicode").join("xev.log");
    let _xev = App::spawn(
        &shared,
        "xev",
        &["-geometry", "400x300+100+80", "-event", "keyboard"],
        Some(&log_path),
    );
    let window = shared
        .wait_for_window("^Event Tester$", ARRIVAL)
        .expect("xev shows");
    // The keyboard goes where the pointer is (no window manager).
    shared
        .move_mouse(window.x + 150, window.y + 120)
        .expect("pointer over xev");
    let server = SharedDisplay::start(&shared.display());
    let mut client = ironrdp_client::IronRdpClient::connect(&ironrdp_client::ClientOptions {
        server: server.addr,
        security: ironrdp_client::ClientSecurity::Nla,
        user: USER.into(),
        password: PASSWORD.into(),
        domain: None,
        codecs: Vec::new(),
        width: WIDTH as u16,
        height: HEIGHT as u16,
        connect_timeout: ARRIVAL,
        tls_server_name: None,
        bind_to_key: None,
    })
    .expect("IronRDP connects");
    // The first picture drained, so input is not queued behind it.
    let expected = shared.capture().expect("xwd");
    client
        .wait_for_image(ARRIVAL, |image| image.pixels == expected.pixels)
        .expect("the IronRDP client shows display A");
    // Xlib loads xev's keymap at its first key and only then asks to hear
    // of changes: a remap landing in between is never seen (input.rs). So
    // xev reads a key first, a space (a key of its own, no remap); it asks
    // for notifications before it waits for its next event.
    let xev_reads = |expected: &str| {
        wait_until(ARRIVAL, Duration::from_millis(100), || {
            let (text, _) = xev_presses(&std::fs::read_to_string(&log_path).unwrap_or_default());
            if text == expected {
                Ok(())
            } else {
                Err(format!("xev saw {text:?}"))
            }
        })
    };
    client.send_unicode(" ").expect("a space sent");
    xev_reads(" ").expect("xev reads a space");
    let typed = "é€ Ωx😀Z";
    client.send_unicode(typed).expect("unicode input sent");
    let result = xev_reads(&format!(" {typed}"));
    if let Err(reason) = result {
        panic!("unicode: {reason}");
    }
}

/// A cursor shape change on A reaches xfreerdp: the pointer moved over
/// xedit (whose text widget has a cursor of its own) creates a second
/// pointer in xfreerdp (its debug log), and moving between the root and
/// xedit again recalls both from the client's cache, none created anew.
#[test]
fn cursor_changes_reach_the_viewer() {
    if !require_tools() {
        return;
    }
    let shared = Xvfb::start(WIDTH, HEIGHT).expect("Xvfb A starts");
    let _xedit = App::spawn(&shared, "xedit", &["-geometry", "300x200+0+0"], None);
    shared
        .wait_for_window("xedit", ARRIVAL)
        .expect("xedit shows");
    shared.move_mouse(600, 400).expect("pointer over the root");
    let server = SharedDisplay::start(&shared.display());
    let display = Xvfb::start(WIDTH, HEIGHT).expect("Xvfb B starts");
    let mut client = viewer(&server, &display, "cursor");
    wait_for_same_picture("x11-cursor", &shared, &display, &mut client);
    let logged = |log: &str, what: &str| -> Vec<String> {
        log.lines()
            .filter_map(|line| line.split_once(what))
            .map(|(_, pointer)| pointer.trim().to_string())
            .collect()
    };
    let wait_for_sets = |client: &FreeRdp, count: usize| {
        wait_until(ARRIVAL, Duration::from_millis(100), || {
            let set = logged(&client.log(), "xf_Pointer_Set: ");
            if set.len() >= count {
                Ok(set)
            } else {
                Err(format!("{} pointers set, waiting for {count}", set.len()))
            }
        })
        .unwrap_or_else(|e| panic!("cursor: {e}\n--- xfreerdp log ---\n{}", client.log()))
    };
    wait_for_sets(&client, 1);
    // Over xedit's text, back to the root, over the text again.
    for (step, (x, y)) in [(150, 120), (600, 400), (150, 120)].into_iter().enumerate() {
        shared.move_mouse(x, y).expect("pointer moves on A");
        wait_for_sets(&client, step + 2);
    }
    let log = client.log();
    let (created, set) = (
        logged(&log, "xf_Pointer_New: "),
        logged(&log, "xf_Pointer_Set: "),
    );
    let [root, text] = created.as_slice() else {
        panic!("pointers created: {created:?}\n--- xfreerdp log ---\n{log}");
    };
    assert_eq!(
        set,
        [root.clone(), text.clone(), root.clone(), text.clone()],
        "pointers set"
    );
}

/// What an operator gets wrong comes back as a typed error, never a
/// panic: a display that is not there, an X server without DAMAGE or
/// XTEST, and (from the server) a wrong password.
#[test]
fn missing_display_extensions_and_wrong_passwords_are_clear_errors() {
    if !require_tools() {
        return;
    }
    let open = |display: &str| {
        X11Desktop::open(&X11Options {
            display: Some(display.into()),
            ..X11Options::default()
        })
    };
    match open(":4093") {
        Err(error @ X11Error::Connect { .. }) => {
            assert!(error.to_string().contains(":4093"), "{error}");
        }
        Err(other) => panic!("no display: {other}"),
        Ok(_) => panic!("display :4093 opened"),
    }

    let no_damage = Xvfb::start_with(320, 240, 24, &["-extension", "DAMAGE"]).expect("Xvfb");
    match open(&no_damage.display()) {
        Err(X11Error::MissingExtension("DAMAGE")) => {}
        Err(other) => panic!("no DAMAGE: {other}"),
        Ok(_) => panic!("opened without DAMAGE"),
    }
    let no_xtest = Xvfb::start_with(320, 240, 24, &["-extension", "XTEST"]).expect("Xvfb");
    let desktop = open(&no_xtest.display()).expect("capture needs no XTEST");
    match desktop.input() {
        Err(X11Error::MissingExtension("XTEST")) => {}
        Err(other) => panic!("no XTEST: {other}"),
        Ok(_) => panic!("input without XTEST"),
    }

    let shared = Xvfb::start(WIDTH, HEIGHT).expect("Xvfb A starts");
    let server = SharedDisplay::start(&shared.display());
    let refused = ironrdp_client::IronRdpClient::connect(&ironrdp_client::ClientOptions {
        server: server.addr,
        security: ironrdp_client::ClientSecurity::Nla,
        user: USER.into(),
        password: "not the password".into(),
        domain: None,
        codecs: Vec::new(),
        width: WIDTH as u16,
        height: HEIGHT as u16,
        connect_timeout: ARRIVAL,
        tls_server_name: None,
        bind_to_key: None,
    });
    match refused {
        Err(ironrdp_client::ClientError::LogonFailed { status, .. }) => {
            assert_eq!(status, 0xC000_006D, "STATUS_LOGON_FAILURE");
        }
        Err(other) => panic!("wrong password: {other}"),
        Ok(_) => panic!("logged on with a wrong password"),
    }
}

/// Reads the CLIPBOARD selection of `display` as UTF8_STRING with xclip.
fn read_clipboard(display: &Xvfb) -> String {
    rdpserve_tests::x11::run_bounded(
        Command::new("xclip")
            .args(["-o", "-selection", "clipboard", "-t", "UTF8_STRING"])
            .env("DISPLAY", display.display()),
        Duration::from_secs(10),
    )
    .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
    .unwrap_or_default()
}

/// Copies `text` into the CLIPBOARD of `display` with xclip, which serves
/// it in the foreground (ended by PID when the returned guard drops).
fn copy_to_clipboard(display: &Xvfb, text: &str) -> App {
    use std::io::Write;
    let mut xclip = Command::new("xclip")
        .args(["-quiet", "-selection", "clipboard", "-i"])
        .env("DISPLAY", display.display())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("xclip starts");
    let mut stdin = xclip.stdin.take().expect("stdin");
    stdin.write_all(text.as_bytes()).expect("text to xclip");
    drop(stdin);
    App(xclip)
}

/// Text copied with xclip on A is pasted with xclip on B (through
/// xfreerdp's clipboard), and text copied on B is pasted on A, non-ASCII
/// and several lines included.
#[test]
fn clipboard_text_crosses_both_ways() {
    if !require_tools() || !require_programs(&["xclip"], "xclip") {
        return;
    }
    let shared = Xvfb::start(WIDTH, HEIGHT).expect("Xvfb A starts");
    let server = SharedDisplay::start(&shared.display());
    let display = Xvfb::start(WIDTH, HEIGHT).expect("Xvfb B starts");
    let mut client = viewer(&server, &display, "clipboard");
    wait_for_same_picture("x11-clipboard", &shared, &display, &mut client);

    let from_a = "Von A: Grüße ✓ 日本語\nzweite Zeile";
    let _copy_a = copy_to_clipboard(&shared, from_a);
    wait_until(
        ARRIVAL,
        Duration::from_millis(250),
        || match read_clipboard(&display) {
            text if text == from_a => Ok(()),
            text => Err(format!("B's clipboard holds {text:?}")),
        },
    )
    .unwrap_or_else(|e| panic!("A to B: {e}\n--- xfreerdp log ---\n{}", client.log()));

    let from_b = "From B: ¡olé! €5\nsecond line";
    let _copy_b = copy_to_clipboard(&display, from_b);
    wait_until(
        ARRIVAL,
        Duration::from_millis(250),
        || match read_clipboard(&shared) {
            text if text == from_b => Ok(()),
            text => Err(format!("A's clipboard holds {text:?}")),
        },
    )
    .unwrap_or_else(|e| panic!("B to A: {e}\n--- xfreerdp log ---\n{}", client.log()));
}

/// The screen size `xdpyinfo` reports for `display`.
fn screen_size(display: &Xvfb) -> Result<(u32, u32), String> {
    let output = rdpserve_tests::x11::run_bounded(
        Command::new("xdpyinfo").env("DISPLAY", display.display()),
        Duration::from_secs(10),
    )
    .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&output.stdout);
    let dimensions = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("dimensions:"))
        .ok_or("no dimensions in xdpyinfo")?;
    let size = dimensions.split_whitespace().next().unwrap_or_default();
    let (width, height) = size.split_once('x').ok_or("no WxH")?;
    Ok((
        width.parse().map_err(|_| "width")?,
        height.parse().map_err(|_| "height")?,
    ))
}

/// Resizes `display`'s screen on the X side, as a user would with
/// `xrandr`: a mode of that size for Xvfb's output, then screen and
/// output at that size.
fn xrandr_resize(display: &Xvfb, width: u32, height: u32) {
    let name = format!("test-{width}x{height}");
    let (w, h) = (width.to_string(), height.to_string());
    run(
        display,
        "xrandr",
        &[
            "--newmode",
            &name,
            "0",
            &w,
            "0",
            "0",
            "0",
            &h,
            "0",
            "0",
            "0",
        ],
    );
    run(display, "xrandr", &["--addmode", "screen", &name]);
    run(
        display,
        "xrandr",
        &[
            "--fb",
            &format!("{width}x{height}"),
            "--output",
            "screen",
            "--mode",
            &name,
        ],
    );
}

/// The xfreerdp window of `client` on `display`.
fn window_of(
    display: &Xvfb,
    client: &FreeRdp,
) -> std::io::Result<rdpserve_tests::x11::WindowGeometry> {
    display.window_geometry(&window_pattern(client))
}

fn window_pattern(client: &FreeRdp) -> String {
    format!("^{}$", client.window_name().replace('.', "\\."))
}

/// Resizes `client`'s window on `display`, as a user dragging its corner.
fn resize_window(display: &Xvfb, client: &FreeRdp, width: &str, height: &str) {
    display
        .xdotool(&[
            "search",
            "--name",
            &window_pattern(client),
            "windowsize",
            width,
            height,
        ])
        .expect("xdotool resizes the window");
}

/// A viewer with `/dynamic-resolution`: its window size is its desktop
/// size, asked for through Display Control.
fn dynamic_viewer(server: &SharedDisplay, display: &Xvfb, name: &str) -> FreeRdp {
    let mut client = FreeRdp::builder(server.addr)
        .arg("/dynamic-resolution")
        .user(USER)
        .password(PASSWORD)
        .security(rdpserve_tests::ClientSecurity::Nla)
        .bpp(32)
        .size(WIDTH, HEIGHT)
        .log_level("DEBUG")
        .log_file(artifacts_dir("x11-desktop").join(format!("{name}.log")))
        .spawn(display)
        .expect("xfreerdp starts");
    client
        .wait_for_window(display, ARRIVAL)
        .unwrap_or_else(|e| panic!("{name}: no window: {e}"));
    client
}

/// `xfreerdp /dynamic-resolution`: its window resized on B asks for that
/// size through Display Control, A's screen takes it (RandR), and the
/// window shows A pixel for pixel at the new size. A resize made with
/// `xrandr` on A is followed too: the session is resized and the window
/// with it.
#[test]
fn the_shared_screen_follows_the_client_window_and_xrandr() {
    if !require_tools() || !require_programs(&["xrandr", "xdpyinfo"], "x11-xserver-utils x11-utils")
    {
        return;
    }
    // Xvfb never grows past the framebuffer it starts with: start it large
    // and shrink the screen before sharing it.
    let shared = Xvfb::start(1024, 768).expect("Xvfb A starts");
    xrandr_resize(&shared, WIDTH, HEIGHT);
    assert_eq!(screen_size(&shared), Ok((WIDTH, HEIGHT)));
    let _logo = furnish(&shared);
    let server = SharedDisplay::start(&shared.display());
    let display = Xvfb::start(1024, 768).expect("Xvfb B starts");
    let mut client = dynamic_viewer(&server, &display, "resize");
    wait_for_same_picture("x11-resize", &shared, &display, &mut client);

    // The client's window grows: A's screen follows.
    resize_window(&display, &client, "800", "600");
    wait_until(ARRIVAL, Duration::from_millis(200), || {
        match screen_size(&shared)? {
            (800, 600) => Ok(()),
            other => Err(format!("A is {other:?}")),
        }
    })
    .unwrap_or_else(|e| panic!("A did not take the client's size: {e}\n{}", client.log()));
    wait_for_same_picture("x11-resize-client", &shared, &display, &mut client);
    let window = window_of(&display, &client).expect("window");
    assert_eq!((window.width, window.height), (800, 600));
    assert_eq!(shared.capture().expect("xwd").width, 800);
    let log = client.log();
    assert!(
        log.contains("disp_send_display_control_monitor_layout_pdu") && log.contains("W/H=800x600"),
        "the client sent no Display Control layout:\n{log}"
    );

    // A resize on the X side: the session and the window follow.
    xrandr_resize(&shared, 720, 540);
    wait_until(ARRIVAL, Duration::from_millis(200), || {
        let window = window_of(&display, &client).map_err(|e| e.to_string())?;
        match (window.width, window.height) {
            (720, 540) => Ok(()),
            other => Err(format!("window is {other:?}")),
        }
    })
    .unwrap_or_else(|e| panic!("the window did not follow xrandr: {e}\n{}", client.log()));
    wait_for_same_picture("x11-resize-xrandr", &shared, &display, &mut client);
    assert_eq!(screen_size(&shared), Ok((720, 540)));
    assert!(server_log().contains("The X screen changed size"));
}

/// An X server without RandR keeps its size when a client asks for
/// another, and the log says so once.
#[test]
fn a_screen_without_randr_keeps_its_size_and_says_so() {
    if !require_tools() || !require_programs(&["xdpyinfo"], "x11-utils") {
        return;
    }
    let shared = Xvfb::start_with(WIDTH, HEIGHT, 24, &["-extension", "RANDR"]).expect("Xvfb A");
    let _logo = furnish(&shared);
    let server = SharedDisplay::start(&shared.display());
    let display = Xvfb::start(1024, 768).expect("Xvfb B starts");
    let mut client = dynamic_viewer(&server, &display, "no-randr");
    wait_for_same_picture("x11-no-randr", &shared, &display, &mut client);
    // The lines of this display's resizer.
    let tag = format!("display=\"{}\"", shared.display());
    let count = |what: &str| {
        server_log()
            .lines()
            .filter(|line| line.contains(&tag) && line.contains(what))
            .count()
    };
    for (step, (width, height)) in [("800", "600"), ("700", "500")].into_iter().enumerate() {
        resize_window(&display, &client, width, height);
        wait_until(ARRIVAL, Duration::from_millis(200), || {
            match count("Kept the X screen's size") {
                kept if kept > step => Ok(()),
                _ => Err("the request has not arrived".to_string()),
            }
        })
        .unwrap_or_else(|e| panic!("{e}\n{}\n{}", server_log(), client.log()));
    }
    assert_eq!(count("WARN"), 1, "one warning:\n{}", server_log());
    assert!(server_log().contains("the X server has no RandR 1.2: the X screen keeps its size"));
    assert_eq!(screen_size(&shared), Ok((WIDTH, HEIGHT)));
    wait_for_same_picture("x11-no-randr-after", &shared, &display, &mut client);
}

/// Reads `selection` of `display` as `target` with xclip.
fn read_selection(display: &Xvfb, selection: &str, target: &str) -> Vec<u8> {
    rdpserve_tests::x11::run_bounded(
        Command::new("xclip")
            .args(["-o", "-selection", selection, "-t", target])
            .env("DISPLAY", display.display()),
        Duration::from_secs(20),
    )
    .map(|output| output.stdout)
    .unwrap_or_default()
}

/// Puts `data` into `selection` of `display` as `target` with xclip, which
/// serves it in the foreground (ended by PID when the guard drops).
fn copy_selection(display: &Xvfb, selection: &str, target: &str, data: &[u8]) -> App {
    use std::io::Write;
    let mut xclip = Command::new("xclip")
        .args(["-quiet", "-selection", selection, "-t", target, "-i"])
        .env("DISPLAY", display.display())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("xclip starts");
    let mut stdin = xclip.stdin.take().expect("stdin");
    stdin.write_all(data).expect("data to xclip");
    drop(stdin);
    App(xclip)
}

/// Waits until `display`'s `selection` as `target` passes `check`.
fn wait_for_selection(
    what: &str,
    display: &Xvfb,
    selection: &str,
    target: &str,
    check: impl Fn(&[u8]) -> bool,
    client: &FreeRdp,
) -> Vec<u8> {
    wait_until(ARRIVAL, Duration::from_millis(300), || {
        let data = read_selection(display, selection, target);
        if check(&data) {
            Ok(data)
        } else {
            Err(format!(
                "{selection} as {target} holds {} bytes: {:?}",
                data.len(),
                String::from_utf8_lossy(&data[..data.len().min(200)])
            ))
        }
    })
    .unwrap_or_else(|e| {
        panic!(
            "{what}: {e}\n--- xfreerdp log ---\n{}\n--- server log ---\n{}",
            client.log(),
            server_log()
        )
    })
}

/// A BMP file (32-bit DIB) of a `width` x `height` picture and its pixels
/// (B, G, R, X; X is 0xff, as `pixels_from_dib` reads it).
fn test_bmp(width: u32, height: u32, seed: u8) -> (Vec<u8>, Vec<u8>) {
    let mut pixels = Vec::new();
    for y in 0..height {
        for x in 0..width {
            pixels.extend_from_slice(&[
                (x * 7) as u8 ^ seed,
                (y * 13) as u8,
                (x + y) as u8 ^ seed,
                0xff,
            ]);
        }
    }
    let dib = rdpserve_tokio::dib(width, height, width as usize * 4, &pixels).expect("dib");
    let mut bmp = b"BM".to_vec();
    bmp.extend_from_slice(&(14 + dib.len() as u32).to_le_bytes());
    bmp.extend_from_slice(&[0; 4]);
    bmp.extend_from_slice(&54u32.to_le_bytes());
    bmp.extend_from_slice(&dib);
    (bmp, pixels)
}

/// The pixels of a BMP file (B, G, R, X), or `None`.
fn bmp_pixels(bmp: &[u8]) -> Option<(u32, u32, Vec<u8>)> {
    if !bmp.starts_with(b"BM") || bmp.len() <= 14 {
        return None;
    }
    rdpserve_tokio::pixels_from_dib(&bmp[14..])
}

/// HTML (`text/html`) and an image (`image/bmp`, CF_DIB on the wire) cross
/// with xclip on A and B both ways, and with `primary` set, text selected
/// into A's PRIMARY is pasted from B's CLIPBOARD.
#[test]
fn clipboard_html_images_and_primary_cross_both_ways() {
    if !require_tools() || !require_programs(&["xclip"], "xclip") {
        return;
    }
    let shared = Xvfb::start(WIDTH, HEIGHT).expect("Xvfb A starts");
    let server = SharedDisplay::start_with(X11Options {
        display: Some(shared.display()),
        primary: true,
        ..X11Options::default()
    });
    let display = Xvfb::start(WIDTH, HEIGHT).expect("Xvfb B starts");
    let mut client = viewer(&server, &display, "clipboard-formats");
    wait_for_same_picture("x11-clipboard-formats", &shared, &display, &mut client);

    // HTML, A to B and B to A.
    let html_a = "<b>Von A</b> <i>fett &amp; kursiv</i> ✓";
    let _copy = copy_selection(&shared, "clipboard", "text/html", html_a.as_bytes());
    wait_for_selection(
        "HTML from A to B",
        &display,
        "clipboard",
        "text/html",
        |data| String::from_utf8_lossy(data).contains(html_a),
        &client,
    );
    let html_b = "<p>From <em>B</em> &lt;3 €</p>";
    let _copy = copy_selection(&display, "clipboard", "text/html", html_b.as_bytes());
    let pasted = wait_for_selection(
        "HTML from B to A",
        &shared,
        "clipboard",
        "text/html",
        |data| String::from_utf8_lossy(data).contains(html_b),
        &client,
    );
    assert_eq!(
        String::from_utf8_lossy(&pasted),
        html_b,
        "the fragment exactly"
    );

    // Images, A to B and B to A: the same pixels arrive.
    let (bmp_a, pixels_a) = test_bmp(37, 23, 0x5a);
    let _copy = copy_selection(&shared, "clipboard", "image/bmp", &bmp_a);
    wait_for_selection(
        "image from A to B",
        &display,
        "clipboard",
        "image/bmp",
        |data| bmp_pixels(data) == Some((37, 23, pixels_a.clone())),
        &client,
    );
    let (bmp_b, pixels_b) = test_bmp(64, 9, 0xa5);
    let _copy = copy_selection(&display, "clipboard", "image/bmp", &bmp_b);
    wait_for_selection(
        "image from B to A",
        &shared,
        "clipboard",
        "image/bmp",
        |data| bmp_pixels(data) == Some((64, 9, pixels_b.clone())),
        &client,
    );
    // xfreerdp's own log: the data went both ways over cliprdr (it logs
    // each PDU, not the format names).
    let log = client.log();
    for pdu in ["ServerFormatDataResponse", "ClientFormatDataResponse"] {
        assert!(
            log.matches(pdu).count() >= 2,
            "fewer than two {pdu} in:\n{log}"
        );
    }

    // PRIMARY on A reaches B's clipboard.
    let selected = "selected on A with the mouse";
    let _copy = copy_selection(&shared, "primary", "UTF8_STRING", selected.as_bytes());
    wait_for_selection(
        "PRIMARY from A to B",
        &display,
        "clipboard",
        "UTF8_STRING",
        |data| data == selected.as_bytes(),
        &client,
    );
}

/// Large texts cross both ways with INCR, as the server's log counts: xclip
/// on A sends one of 1.5 MB with INCR (xclip does above 1 MiB when the X
/// server takes 16 MiB requests; Xvfb cannot turn BIG-REQUESTS off), and
/// the server serves one of 600 kB to xclip on A in pieces of 256 KiB.
/// (Under 1 MiB that way: xfreerdp 2.11 never answers for a text that
/// xclip on B serves it with INCR.)
#[test]
fn large_text_crosses_with_incr() {
    if !require_tools() || !require_programs(&["xclip"], "xclip") {
        return;
    }
    let shared = Xvfb::start(WIDTH, HEIGHT).expect("Xvfb A starts");
    let server = SharedDisplay::start(&shared.display());
    let display = Xvfb::start(WIDTH, HEIGHT).expect("Xvfb B starts");
    let mut client = viewer(&server, &display, "clipboard-incr");
    wait_for_same_picture("x11-clipboard-incr", &shared, &display, &mut client);
    let tag = format!("display=\"{}\"", shared.display());
    let logged = |what: &str| {
        server_log()
            .lines()
            .filter(|line| line.contains(&tag) && line.contains(what))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };

    let line = |n: usize, from: &str| format!("{from} line {n:06}: äöü the quick brown fox ✓\n");
    let from_a: String = (0..33_000).map(|n| line(n, "A")).collect();
    assert!(from_a.len() > 1 << 20, "{} bytes", from_a.len());
    let _copy = copy_selection(&shared, "clipboard", "UTF8_STRING", from_a.as_bytes());
    wait_for_selection(
        "large text from A to B",
        &display,
        "clipboard",
        "UTF8_STRING",
        |data| data == from_a.as_bytes(),
        &client,
    );
    let received = logged("INCR transfer received");
    assert!(
        received
            .iter()
            .any(|line| line.contains(&format!("bytes={}", from_a.len()))),
        "no INCR transfer of {} bytes received: {received:?}\n{}",
        from_a.len(),
        server_log()
    );

    let from_b: String = (0..13_000).map(|n| line(n, "B")).collect();
    assert!(from_b.len() > 256 * 1024 && from_b.len() < 1 << 20);
    let _copy = copy_selection(&display, "clipboard", "UTF8_STRING", from_b.as_bytes());
    wait_for_selection(
        "large text from B to A",
        &shared,
        "clipboard",
        "UTF8_STRING",
        |data| data == from_b.as_bytes(),
        &client,
    );
    let sent = logged("INCR transfer sent");
    assert!(
        sent.iter()
            .any(|line| line.contains(&format!("bytes={}", from_b.len()))),
        "no INCR transfer of {} bytes sent: {sent:?}",
        from_b.len()
    );
}

/// A display at depth 16 (5-6-5): captured in its own format (the server
/// widens it to 8 bits a channel by repeating high bits), and the viewer
/// shows it pixel for pixel as `xwd` of A widened the same way; a change
/// follows.
#[test]
fn a_16_bit_display_is_shown_exactly() {
    if !require_tools() {
        return;
    }
    let shared = Xvfb::start_with(WIDTH, HEIGHT, 16, &[]).expect("Xvfb A at depth 16");
    let _logo = furnish(&shared);
    let server = SharedDisplay::start(&shared.display());
    let tag = format!("display=\"{}\"", shared.display());
    assert!(
        server_log()
            .lines()
            .any(|line| line.contains(&tag) && line.contains("format=Rgb16")),
        "not captured as Rgb16:\n{}",
        server_log()
    );
    let display = Xvfb::start(WIDTH, HEIGHT).expect("Xvfb B starts");
    let mut client = viewer(&server, &display, "depth16");
    wait_for_same_picture("x11-depth16", &shared, &display, &mut client);
    // A colour 5-6-5 cannot hold exactly: widened, not rounded.
    run(&shared, "xsetroot", &["-solid", "#8a4f2d"]);
    wait_for_same_picture("x11-depth16-changed", &shared, &display, &mut client);
    let expected = |value: u8, bits: u32| {
        let level = value >> (8 - bits);
        (level << (8 - bits)) | (level >> (2 * bits - 8))
    };
    assert_eq!(
        shared.capture().expect("xwd").get(5, 5),
        [expected(0x8a, 5), expected(0x4f, 6), expected(0x2d, 5)]
    );
}
