//! The threading contract: an input handler that blocks holds up neither
//! another client's frames nor its input (nor its own client's frames), on
//! tokio and on smol. Clients are the core's test client over loopback TCP
//! (`support/loopback.rs`); the blocked handler waits on a barrier the test
//! releases, never on a timer.

use std::net::SocketAddr;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use rdpserve_server::{
    BitmapUpdate, ConnectionId, Credentials, DesktopSize, DisplayUpdate, InputHandlerFactory,
    KeyboardEvent, MouseEvent, PixelFormat, RdpServerDisplay, RdpServerDisplayUpdates,
    RdpServerInputHandler, Runtime, StopHandle,
};
use rdpserve_tests::loopback::LoopbackClient;

const USER: &str = "tester";
const PASSWORD: &str = "correct horse";
const SIZE: DesktopSize = DesktopSize {
    width: 256,
    height: 192,
};
/// Every wait of the test is bounded by this.
const TIMEOUT: Duration = Duration::from_secs(60);
/// The pointer position whose move makes a handler block on the barrier.
const BLOCKING_MOVE: (u16, u16) = (1, 1);

/// What the handlers report: which connection saw which move, and which
/// handler is now blocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Report {
    Moved(ConnectionId, u16, u16),
    Blocked(ConnectionId),
}

struct Handlers {
    reports: Mutex<Sender<Report>>,
    barrier: Arc<Barrier>,
}

impl InputHandlerFactory for Handlers {
    fn build_input_handler(&self, connection: ConnectionId) -> Box<dyn RdpServerInputHandler> {
        Box::new(Handler {
            connection,
            reports: self.reports.lock().expect("reports").clone(),
            barrier: self.barrier.clone(),
        })
    }
}

struct Handler {
    connection: ConnectionId,
    reports: Sender<Report>,
    barrier: Arc<Barrier>,
}

impl RdpServerInputHandler for Handler {
    fn keyboard(&mut self, _: KeyboardEvent) {}

    fn mouse(&mut self, event: MouseEvent) {
        let MouseEvent::Move { x, y } = event else {
            return;
        };
        if (x, y) == BLOCKING_MOVE {
            let _ = self.reports.send(Report::Blocked(self.connection));
            // Blocks this handler's thread until the test arrives too.
            self.barrier.wait();
        }
        let _ = self.reports.send(Report::Moved(self.connection, x, y));
    }
}

/// Two whole-screen pictures, alternated every 5 ms for as long as the
/// client takes them (the server holds frames back until acknowledged).
struct Animation {
    frames: [Arc<[u8]>; 2],
}

impl RdpServerDisplay for Animation {
    type Updates = AnimationUpdates;

    async fn size(&self) -> DesktopSize {
        SIZE
    }

    async fn updates(&self) -> std::io::Result<AnimationUpdates> {
        Ok(AnimationUpdates {
            frames: self.frames.clone(),
            sent: 0,
        })
    }
}

struct AnimationUpdates {
    frames: [Arc<[u8]>; 2],
    sent: usize,
}

impl RdpServerDisplayUpdates for AnimationUpdates {
    async fn next_update(&mut self) -> Option<DisplayUpdate> {
        // The application's frame rate; the timer is async-io's, which
        // runs under tokio as under smol. Cancel-safe: nothing is taken
        // before the timer fires.
        if self.sent > 0 {
            smol::Timer::after(Duration::from_millis(5)).await;
        }
        self.sent += 1;
        Some(DisplayUpdate::Bitmap(BitmapUpdate {
            x: 0,
            y: 0,
            width: SIZE.width,
            height: SIZE.height,
            stride: usize::from(SIZE.width) * 4,
            format: PixelFormat::BgrX32,
            data: self.frames[self.sent % 2].clone(),
        }))
    }
}

fn picture(seed: u8) -> Arc<[u8]> {
    let (width, height) = (usize::from(SIZE.width), usize::from(SIZE.height));
    (0..width * height)
        .flat_map(|i| {
            let (x, y) = (i % width, i / width);
            [(x as u8) ^ seed, (y as u8).wrapping_add(seed), seed, 0xFF]
        })
        .collect()
}

fn build<R: Runtime>(
    reports: Sender<Report>,
    barrier: Arc<Barrier>,
) -> rdpserve_server::RdpServer<R, Handlers, Animation> {
    rdpserve_server::RdpServer::<R, (), ()>::builder()
        .with_addr(SocketAddr::from(([127, 0, 0, 1], 0)))
        .with_no_security()
        .with_input_handler_factory(Handlers {
            reports: Mutex::new(reports),
            barrier,
        })
        .with_display_handler(Animation {
            frames: [picture(0), picture(0x55)],
        })
        .with_credentials(Credentials {
            username: USER.into(),
            password: PASSWORD.into(),
            domain: None,
        })
        .build()
        .expect("server builds")
}

async fn serve<R: Runtime>(
    server: rdpserve_server::RdpServer<R, Handlers, Animation>,
    ready: Sender<(SocketAddr, StopHandle)>,
) {
    let server = server.bind().await.expect("bind a loopback port");
    let addr = server.local_addr().expect("local address");
    let _ = ready.send((addr, server.stop_handle()));
    server.run().await.expect("server runs");
}

#[derive(Clone, Copy, Debug)]
enum Adapter {
    Tokio,
    Smol,
}

/// Starts the server on `adapter` in a thread of its own: tokio with two
/// worker threads, smol with its default single executor thread.
fn start(
    adapter: Adapter,
    reports: Sender<Report>,
    barrier: Arc<Barrier>,
) -> (SocketAddr, StopHandle, std::thread::JoinHandle<()>) {
    let (ready_sender, ready) = channel();
    let thread = match adapter {
        Adapter::Tokio => std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio runtime");
            let server = build::<rdpserve_tokio::Tokio>(reports, barrier);
            runtime.block_on(serve(server, ready_sender));
        }),
        Adapter::Smol => std::thread::spawn(move || {
            let server = build::<rdpserve_smol::Smol>(reports, barrier);
            smol::block_on(serve(server, ready_sender));
        }),
    };
    let (addr, stop) = ready.recv_timeout(TIMEOUT).expect("server started");
    (addr, stop, thread)
}

fn next_report(reports: &Receiver<Report>) -> Report {
    reports.recv_timeout(TIMEOUT).expect("a handler reports")
}

fn a_blocked_handler_holds_up_no_other_client(adapter: Adapter) {
    let (report_sender, reports) = channel();
    let barrier = Arc::new(Barrier::new(2));
    let (addr, stop, server) = start(adapter, report_sender, barrier.clone());

    // Client A logs on and its handler blocks.
    let mut first = LoopbackClient::connect(addr, USER, PASSWORD, TIMEOUT).expect("A logs on");
    first.next_frame().expect("A's first frame");
    first.move_pointer(BLOCKING_MOVE.0, BLOCKING_MOVE.1);
    let Report::Blocked(blocked) = next_report(&reports) else {
        panic!("A's handler reports first");
    };
    // A's next input queues behind the blocked call.
    first.move_pointer(20, 20);

    // Client B logs on while A's handler blocks, gets frame after frame,
    // and its input reaches its own handler.
    let mut second = LoopbackClient::connect(addr, USER, PASSWORD, TIMEOUT).expect("B logs on");
    let frames: Vec<u32> = (0..10)
        .map(|_| second.next_frame().expect("B's frames keep coming"))
        .collect();
    assert!(
        frames.windows(2).all(|pair| pair[1] > pair[0]),
        "{frames:?}"
    );
    for x in 100..105 {
        second.move_pointer(x, 50);
    }
    for x in 100..105 {
        match next_report(&reports) {
            Report::Moved(connection, got_x, 50) if connection != blocked => {
                assert_eq!(got_x, x, "B's input in order")
            }
            other => panic!("expected B's move to {x}, got {other:?}"),
        }
    }
    // A's own frames go on too: only its input waits.
    for _ in 0..5 {
        first.next_frame().expect("A's frames keep coming");
    }
    assert!(reports.try_recv().is_err(), "A's queued input stays queued");

    // Released, A's handler finishes the blocked call, then the queued one.
    barrier.wait();
    assert_eq!(
        next_report(&reports),
        Report::Moved(blocked, BLOCKING_MOVE.0, BLOCKING_MOVE.1)
    );
    assert_eq!(next_report(&reports), Report::Moved(blocked, 20, 20));

    stop.stop();
    drop((first, second));
    server.join().expect("the server thread ends");
}

#[test]
fn a_blocked_input_handler_holds_up_no_other_client_on_tokio() {
    a_blocked_handler_holds_up_no_other_client(Adapter::Tokio);
}

#[test]
fn a_blocked_input_handler_holds_up_no_other_client_on_smol() {
    a_blocked_handler_holds_up_no_other_client(Adapter::Smol);
}
