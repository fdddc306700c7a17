//! The core's in-memory test client (`rdpserve_core::test_client`, built
//! with the core's `fuzzing` feature) over a loopback TCP socket: a plain-RDP
//! client that logs on, takes RemoteFX frames and acknowledges them, and
//! sends pointer moves. Cheap enough to run many in one process (it
//! decodes nothing), which is what the threading tests and the load bench
//! need.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use rdpserve_core::test_client::{self, Connected, Link};

/// The core's test client's link over a socket.
pub struct TcpLink {
    stream: TcpStream,
    received: Vec<u8>,
    chunk: Vec<u8>,
    closed: bool,
}

impl TcpLink {
    /// Connects to `server`; every read waits at most `timeout`.
    pub fn connect(server: SocketAddr, timeout: Duration) -> io::Result<Self> {
        let stream = TcpStream::connect(server)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        Ok(Self {
            stream,
            received: Vec::new(),
            chunk: vec![0; 256 * 1024],
            closed: false,
        })
    }
}

impl Link for TcpLink {
    fn send(&mut self, bytes: &[u8]) {
        if self.stream.write_all(bytes).is_err() {
            self.closed = true;
        }
    }

    /// Waits for the next whole PDU; `None` once the server closed the
    /// socket (or a read timed out).
    fn next_pdu(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(frame) = test_client::take_frame(&mut self.received) {
                return Some(frame);
            }
            if self.closed {
                return None;
            }
            match self.stream.read(&mut self.chunk) {
                Ok(0) | Err(_) => self.closed = true,
                Ok(n) => self.received.extend_from_slice(&self.chunk[..n]),
            }
        }
    }

    fn is_closed(&self) -> bool {
        self.closed
    }
}

/// A logged-on client that takes RemoteFX frames.
pub struct LoopbackClient {
    link: TcpLink,
    connected: Connected,
}

impl LoopbackClient {
    /// Connects to a server with plain RDP security (`with_no_security`)
    /// and logs on as `user` with `password`, offering RemoteFX and frame
    /// acknowledgements. Every wait is bounded by `timeout`.
    pub fn connect(
        server: SocketAddr,
        user: &str,
        password: &str,
        timeout: Duration,
    ) -> io::Result<Self> {
        let mut link = TcpLink::connect(server, timeout)?;
        let tweaks = test_client::Tweaks {
            user: Some(user.into()),
            ..test_client::Tweaks::default()
        };
        let connected = test_client::start(&mut link, password, &tweaks)
            .ok_or_else(|| io::Error::other("the server closed during logon"))?;
        test_client::send_confirm_active(
            &mut link,
            &connected,
            &test_client::remotefx_client_sets(),
        );
        test_client::send_finalization(&mut link, &connected);
        Ok(Self { link, connected })
    }

    /// Waits for the next whole frame (the end of a surface commands
    /// frame), acknowledges it and returns its id; `None` if the server
    /// closed the connection or sent nothing within the timeout.
    pub fn next_frame(&mut self) -> Option<u32> {
        loop {
            let (code, payload) = test_client::next_update(&mut self.link)?;
            // Update code 4: surface commands.
            if code != 4 {
                continue;
            }
            if let Some(frame) = test_client::frame_end(&payload) {
                test_client::send_frame_acknowledge(&mut self.link, &self.connected, frame);
                return Some(frame);
            }
        }
    }

    /// Drops the connection with a TCP reset (SO_LINGER 0), as a client
    /// killed mid-session or a dropped network path leaves it.
    pub fn reset(self) -> io::Result<()> {
        socket2::SockRef::from(&self.link.stream).set_linger(Some(Duration::ZERO))
    }

    /// Moves the server's pointer to (`x`, `y`) (fast-path input).
    pub fn move_pointer(&mut self, x: u16, y: u16) {
        test_client::send_mouse_move(&mut self.link, x, y);
    }
}
