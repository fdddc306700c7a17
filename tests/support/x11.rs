//! An Xvfb display for a test, screen captures with `xwd`, input with `xdotool`.

use std::io::{self, BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::image::RgbImage;

/// A running Xvfb server; killed (by PID) when dropped.
pub struct Xvfb {
    child: Child,
    display: u32,
}

impl Xvfb {
    /// Starts Xvfb on a free display number (Xvfb picks it: `-displayfd`).
    pub fn start(width: u32, height: u32) -> io::Result<Self> {
        let mut child = Command::new("Xvfb")
            .args(["-displayfd", "1", "-nolisten", "tcp", "-screen", "0"])
            .arg(format!("{width}x{height}x24"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        // Xvfb writes the display number once it accepts connections; if it
        // dies first, stdout closes and the read returns.
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout is piped");
        BufReader::new(stdout).read_line(&mut line)?;
        match line.trim().parse() {
            Ok(display) => Ok(Self { child, display }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(io::Error::other(format!(
                    "Xvfb did not report a display: {line:?}"
                )))
            }
        }
    }

    /// The value for `DISPLAY`.
    pub fn display(&self) -> String {
        format!(":{}", self.display)
    }

    /// Captures the whole screen.
    pub fn capture(&self) -> io::Result<RgbImage> {
        let output = Command::new("xwd")
            .args(["-root", "-silent", "-display", &self.display()])
            .output()?;
        if !output.status.success() {
            return Err(io::Error::other(format!("xwd failed: {}", output.status)));
        }
        RgbImage::from_xwd(&output.stdout)
    }

    /// Runs `xdotool` with `args` on this display and checks it succeeded.
    pub fn xdotool(&self, args: &[&str]) -> io::Result<String> {
        let output = Command::new("xdotool")
            .args(args)
            .env("DISPLAY", self.display())
            .output()?;
        if !output.status.success() {
            return Err(io::Error::other(format!(
                "xdotool {args:?} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Position and size of the largest window whose name matches `pattern`
    /// (a client may own helper windows with the same name).
    pub fn window_geometry(&self, pattern: &str) -> io::Result<WindowGeometry> {
        let ids = self.xdotool(&["search", "--name", pattern])?;
        ids.lines()
            .filter_map(|id| self.geometry_of(id).ok())
            .max_by_key(|geometry| geometry.width * geometry.height)
            .ok_or_else(|| io::Error::other("no such window"))
    }

    fn geometry_of(&self, id: &str) -> io::Result<WindowGeometry> {
        let shell = self.xdotool(&["getwindowgeometry", "--shell", id])?;
        let field = |name: &str| -> io::Result<u32> {
            shell
                .lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix('='))
                .and_then(|value| value.trim().parse().ok())
                .ok_or_else(|| io::Error::other(format!("geometry without {name}")))
        };
        Ok(WindowGeometry {
            x: field("X")?,
            y: field("Y")?,
            width: field("WIDTH")?,
            height: field("HEIGHT")?,
        })
    }

    /// Moves the pointer to (x, y) of the screen.
    pub fn move_mouse(&self, x: u32, y: u32) -> io::Result<()> {
        self.xdotool(&["mousemove", "--sync", &x.to_string(), &y.to_string()])
            .map(drop)
    }

    pub fn click(&self, button: u32) -> io::Result<()> {
        self.xdotool(&["click", &button.to_string()]).map(drop)
    }

    /// Presses and releases the key named by an X keysym (e.g. "a", "Return").
    pub fn key(&self, keysym: &str) -> io::Result<()> {
        self.xdotool(&["key", keysym]).map(drop)
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowGeometry {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}
