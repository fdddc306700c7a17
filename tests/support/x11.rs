//! An Xvfb display for a test, screen captures with `xwd`, windows and input
//! with `xdotool`. Every external program runs with a time limit, so a hung
//! tool fails the test instead of hanging it.

use std::io::{self, Read};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::image::RgbImage;

/// How long Xvfb may take to accept connections, and `xwd` or `xdotool` to
/// finish: seconds on a loaded CI machine, far more than they need.
const TOOL_TIMEOUT: Duration = Duration::from_secs(20);

/// A running Xvfb server; killed (by PID) when dropped.
pub struct Xvfb {
    child: Child,
    display: u32,
}

impl Xvfb {
    /// Starts Xvfb with one `width` x `height` x 24 screen and waits until
    /// it accepts connections.
    ///
    /// The display number is chosen here, high and spread by process id, and
    /// claimed through Xvfb's own lock file (`/tmp/.X<n>-lock`, created
    /// atomically; a taken number makes Xvfb exit, and the next is tried).
    /// Not `-displayfd`: in that mode Xvfb takes no lock and, probing for a
    /// free number from 0, unlinks the socket of every display it passes,
    /// so a display started earlier vanishes for new clients.
    pub fn start(width: u32, height: u32) -> io::Result<Self> {
        Self::start_with(width, height, 24, &[])
    }

    /// Like [`start`](Self::start), at colour `depth` (captures read 24 only)
    /// and with more Xvfb arguments (e.g. `-extension DAMAGE` to turn one off).
    pub fn start_with(width: u32, height: u32, depth: u32, extra: &[&str]) -> io::Result<Self> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let base = 200 + (std::process::id() % 64) * 100;
        let deadline = Instant::now() + TOOL_TIMEOUT;
        while Instant::now() < deadline {
            let display = base + NEXT.fetch_add(1, Ordering::Relaxed) % 100;
            let socket = format!("/tmp/.X11-unix/X{display}");
            if std::path::Path::new(&format!("/tmp/.X{display}-lock")).exists()
                || std::path::Path::new(&socket).exists()
            {
                continue;
            }
            // `-br`: a black root instead of the default weave, so anything
            // a capture shows outside a window is predictable. `-noreset`:
            // by default the server resets itself whenever its last client
            // leaves (here: the readiness probe, or an `xwd` between two
            // windows), and a client connecting meanwhile is refused.
            let mut child = Command::new("Xvfb")
                .arg(format!(":{display}"))
                .args(["-nolisten", "tcp", "-noreset", "-br", "-screen", "0"])
                .arg(format!("{width}x{height}x{depth}"))
                .args(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?;
            // Ready once it completes an X connection setup (it binds its
            // socket early, before its keymap and fonts load, and can still
            // fail after); gone if another server holds the number.
            loop {
                if child.try_wait()?.is_some() {
                    break;
                }
                if x_server_answers(&socket, deadline) && child.try_wait()?.is_none() {
                    return Ok(Self { child, display });
                }
                if Instant::now() >= deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "Xvfb did not accept connections in time",
                    ));
                }
                thread::sleep(Duration::from_millis(10));
            }
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "no free X display number",
        ))
    }

    /// The value for `DISPLAY`, e.g. `:93`.
    pub fn display(&self) -> String {
        format!(":{}", self.display)
    }

    /// The display number Xvfb picked.
    pub fn display_number(&self) -> u32 {
        self.display
    }

    /// The Xvfb process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Captures the whole screen.
    pub fn capture(&self) -> io::Result<RgbImage> {
        capture_screen(&self.display())
    }

    /// Runs `xdotool` with `args` on this display and checks it succeeded.
    pub fn xdotool(&self, args: &[&str]) -> io::Result<String> {
        xdotool(&self.display(), args)
    }

    /// Position and size of the largest window whose name matches `pattern`
    /// (a regular expression, as `xdotool search --name` takes), right now.
    pub fn window_geometry(&self, pattern: &str) -> io::Result<WindowGeometry> {
        window_geometry(&self.display(), pattern)
    }

    /// Waits up to `timeout` for a window whose name matches `pattern`.
    pub fn wait_for_window(&self, pattern: &str, timeout: Duration) -> io::Result<WindowGeometry> {
        wait_for_window(&self.display(), pattern, timeout)
    }

    /// Moves the pointer to (x, y) of the screen.
    pub fn move_mouse(&self, x: u32, y: u32) -> io::Result<()> {
        self.xdotool(&["mousemove", "--sync", &x.to_string(), &y.to_string()])
            .map(drop)
    }

    /// Moves the pointer to (x, y) relative to the top left of `window`.
    pub fn move_mouse_in(&self, window: &WindowGeometry, x: u32, y: u32) -> io::Result<()> {
        self.move_mouse(window.x + x, window.y + y)
    }

    /// Where the pointer is on the screen.
    pub fn mouse_location(&self) -> io::Result<(u32, u32)> {
        let shell = self.xdotool(&["getmouselocation", "--shell"])?;
        Ok((shell_field(&shell, "X")?, shell_field(&shell, "Y")?))
    }

    /// Presses and releases mouse button `button` (1 left, 2 middle, 3 right,
    /// 4 and 5 the wheel up and down).
    pub fn click(&self, button: u32) -> io::Result<()> {
        self.xdotool(&["click", &button.to_string()]).map(drop)
    }

    pub fn button_down(&self, button: u32) -> io::Result<()> {
        self.xdotool(&["mousedown", &button.to_string()]).map(drop)
    }

    pub fn button_up(&self, button: u32) -> io::Result<()> {
        self.xdotool(&["mouseup", &button.to_string()]).map(drop)
    }

    /// Presses and releases the key named by an X keysym (e.g. "a", "Return").
    pub fn key(&self, keysym: &str) -> io::Result<()> {
        self.xdotool(&["key", "--", keysym]).map(drop)
    }

    pub fn key_down(&self, keysym: &str) -> io::Result<()> {
        self.xdotool(&["keydown", "--", keysym]).map(drop)
    }

    pub fn key_up(&self, keysym: &str) -> io::Result<()> {
        self.xdotool(&["keyup", "--", keysym]).map(drop)
    }

    /// Types `text` as key presses, one character at a time.
    pub fn type_text(&self, text: &str) -> io::Result<()> {
        self.xdotool(&["type", "--delay", "10", "--", text])
            .map(drop)
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Killed, it leaves its lock and socket behind; they were ours.
        let _ = std::fs::remove_file(format!("/tmp/.X{}-lock", self.display));
        let _ = std::fs::remove_file(format!("/tmp/.X11-unix/X{}", self.display));
    }
}

/// Whether the X server on `socket` accepts a connection setup: the
/// request (little-endian, protocol 11.0, no authorization) and the first
/// byte of the answer, 1 for success. A server still starting answers once
/// it has started; one that dies closes the connection.
fn x_server_answers(socket: &str, deadline: Instant) -> bool {
    use std::io::Write;
    let Ok(mut stream) = std::os::unix::net::UnixStream::connect(socket) else {
        return false;
    };
    let wait = deadline.saturating_duration_since(Instant::now());
    if wait.is_zero() || stream.set_read_timeout(Some(wait)).is_err() {
        return false;
    }
    let mut answer = [0u8; 1];
    stream
        .write_all(&[b'l', 0, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0])
        .and_then(|()| stream.read_exact(&mut answer))
        .is_ok()
        && answer[0] == 1
}

/// A window's position on the root window and its size, in pixels, as
/// `xdotool getwindowgeometry` reports them: (x, y) is the outer corner and
/// the size excludes the X border, so content starts at (x, y) only for
/// windows without a border (xfreerdp's has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowGeometry {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// Captures the whole screen of `display` (e.g. `:93`) with `xwd`.
pub fn capture_screen(display: &str) -> io::Result<RgbImage> {
    let output = run_bounded(
        Command::new("xwd").args(["-root", "-silent", "-display", display]),
        TOOL_TIMEOUT,
    )?;
    check_status("xwd", &output)?;
    RgbImage::from_xwd(&output.stdout)
}

/// Runs `xdotool` with `args` on `display` and returns what it printed.
/// xdotool exits with 0 even for a key name it does not know, so its
/// warnings count as failures too.
pub fn xdotool(display: &str, args: &[&str]) -> io::Result<String> {
    let output = run_bounded(
        Command::new("xdotool").args(args).env("DISPLAY", display),
        TOOL_TIMEOUT,
    )?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() || stderr.contains("No such key name") {
        return Err(io::Error::other(format!(
            "xdotool {args:?} failed ({}): {}",
            output.status,
            stderr.trim()
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Position and size of the largest window whose name matches `pattern`
/// (a client may own helper windows with the same name), right now.
pub fn window_geometry(display: &str, pattern: &str) -> io::Result<WindowGeometry> {
    // `search` exits with 1 when nothing matches: that is "no window yet".
    let ids = xdotool(display, &["search", "--name", pattern]).unwrap_or_default();
    ids.lines()
        .filter_map(|id| geometry_of(display, id).ok())
        .max_by_key(|geometry| u64::from(geometry.width) * u64::from(geometry.height))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("no window named {pattern:?}"),
            )
        })
}

/// Waits up to `timeout` for a window whose name matches `pattern` and
/// returns its geometry. Without a window manager (as under a bare Xvfb)
/// top-level windows sit at the origin and carry no decorations.
pub fn wait_for_window(
    display: &str,
    pattern: &str,
    timeout: Duration,
) -> io::Result<WindowGeometry> {
    crate::wait_until(timeout, Duration::from_millis(100), || {
        window_geometry(display, pattern)
    })
}

fn geometry_of(display: &str, id: &str) -> io::Result<WindowGeometry> {
    let shell = xdotool(display, &["getwindowgeometry", "--shell", id])?;
    Ok(WindowGeometry {
        x: shell_field(&shell, "X")?,
        y: shell_field(&shell, "Y")?,
        width: shell_field(&shell, "WIDTH")?,
        height: shell_field(&shell, "HEIGHT")?,
    })
}

/// A `NAME=value` line of xdotool's `--shell` output.
fn shell_field(shell: &str, name: &str) -> io::Result<u32> {
    shell
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix('='))
        .and_then(|value| value.trim().parse().ok())
        .ok_or_else(|| io::Error::other(format!("xdotool output without {name}: {shell:?}")))
}

fn check_status(program: &str, output: &Output) -> io::Result<()> {
    if output.status.success() {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "{program} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    )))
}

/// Runs `command` to completion, killing it after `timeout`. Its output is
/// read on threads so a large capture cannot fill the pipe and stall it.
pub fn run_bounded(command: &mut Command, timeout: Duration) -> io::Result<Output> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let status = match wait_bounded(&mut child, timeout)? {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "{:?} did not finish within {timeout:?}",
                    command.get_program()
                ),
            ));
        }
    };
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}

/// Waits up to `timeout` for `child` to exit; `None` if it is still running.
pub fn wait_bounded(child: &mut Child, timeout: Duration) -> io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An X client started for a test; killed (by PID) when dropped.
    struct XClient(Child);

    impl XClient {
        fn spawn(xvfb: &Xvfb, program: &str, args: &[&str]) -> Self {
            let child = Command::new(program)
                .args(args)
                .env("DISPLAY", xvfb.display())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|error| panic!("{program} starts: {error}"));
            Self(child)
        }
    }

    impl Drop for XClient {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn xclock_window_is_found_captured_and_driven() {
        if !crate::require_interop() || !crate::on_path("xclock") {
            return;
        }
        let xvfb = Xvfb::start(640, 480).expect("Xvfb starts");
        // `-bw 0`: X borders lie outside the reported geometry (xclock's
        // default 1-pixel border would show as a frame around it).
        let _clock = XClient::spawn(&xvfb, "xclock", &["-geometry", "200x150", "-bw", "0"]);
        let window = xvfb
            .wait_for_window("^xclock$", Duration::from_secs(20))
            .expect("xclock window appears");
        // No window manager: the window sits at the origin, undecorated.
        assert_eq!((window.x, window.y), (0, 0));
        assert_eq!((window.width, window.height), (200, 150));

        // xclock draws a white face with black hands and marks; `-br` keeps
        // the rest of the root black. The face is drawn after the window is
        // mapped, so wait for it rather than capture once.
        let clock = crate::wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
            let screen = xvfb.capture().map_err(|error| error.to_string())?;
            let clock = screen.crop(window.x, window.y, window.width, window.height);
            let white = clock.count(|pixel| pixel == [255, 255, 255]);
            let dark = clock.count(|pixel| pixel.iter().all(|&channel| channel < 64));
            match white > 1000 && dark > 50 {
                true => Ok(screen),
                false => Err(format!("{white} white and {dark} dark pixels so far")),
            }
        });
        let screen = clock.expect("the clock is drawn");
        let _ = screen.save_ppm(&crate::artifacts_dir("selftest").join("xclock.ppm"));
        assert_eq!((screen.width, screen.height), (640, 480));
        let outside = screen.crop(window.width, 0, 640 - window.width, 480);
        assert_eq!(outside.count(|pixel| pixel != [0, 0, 0]), 0);

        // Input helpers: positions land where asked, relative to the window.
        xvfb.move_mouse_in(&window, 30, 40).expect("mouse moves");
        assert_eq!(xvfb.mouse_location().expect("location"), (30, 40));
        xvfb.move_mouse(100, 90).expect("mouse moves");
        assert_eq!(xvfb.mouse_location().expect("location"), (100, 90));
        xvfb.click(1).expect("click");
        xvfb.button_down(3).expect("button down");
        xvfb.button_up(3).expect("button up");
        xvfb.key("Return").expect("key");
        xvfb.key_down("Shift_L").expect("key down");
        xvfb.key_up("Shift_L").expect("key up");
        xvfb.type_text("-hello 1").expect("type");
        assert!(xvfb.key("NoSuchKeysym").is_err());
    }

    #[test]
    fn missing_window_times_out_with_an_error() {
        if !crate::require_interop() {
            return;
        }
        let xvfb = Xvfb::start(320, 240).expect("Xvfb starts");
        let started = Instant::now();
        let error = xvfb
            .wait_for_window("^no such window$", Duration::from_millis(500))
            .expect_err("no window");
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
        assert!(started.elapsed() >= Duration::from_millis(500));
    }

    #[test]
    fn parallel_displays_get_their_own_numbers() {
        if !crate::require_interop() {
            return;
        }
        let first = Xvfb::start(320, 240).expect("Xvfb starts");
        let second = Xvfb::start(320, 240).expect("Xvfb starts");
        assert_ne!(first.display_number(), second.display_number());
        let capture = second.capture().expect("capture");
        assert_eq!((capture.width, capture.height), (320, 240));
        assert_eq!(capture.count(|pixel| pixel != [0, 0, 0]), 0);
    }

    #[test]
    fn run_bounded_kills_a_hung_program() {
        let error = run_bounded(Command::new("sleep").arg("30"), Duration::from_millis(200))
            .expect_err("times out");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        let output = run_bounded(
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            Duration::from_secs(20),
        )
        .expect("runs");
        assert_eq!(output.status.code(), Some(3));
        assert_eq!(output.stdout, b"out\n");
        assert_eq!(output.stderr, b"err\n");
    }
}
