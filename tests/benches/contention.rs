//! Many busy clients, one idle one (`cargo bench -p rdpserve-tests --bench
//! contention`): 8 clients take full-motion 1920x1080 RemoteFX (every
//! pixel changes every frame; the application offers 60 frames a second
//! to each) while a ninth, idle client moves the pointer every 10 ms. Prints
//! the frames per second all busy clients got together and the idle
//! client's input-to-handler latency (from just before its PDU is written
//! to the socket to the handler's call), p50 and p99, on tokio (two worker
//! threads, as on this two-core machine by default) and on smol (its
//! default single executor thread), then the median of the runs.
//!
//! The clients are the core's test client over loopback TCP in this
//! process (plain RDP security, no decoding), each on a thread of its own.
//! Flags: `--runtime tokio|smol`, `--runs N` (default 3), `--seconds S`
//! measured per run (default 10), `--busy N` clients (default 8), `--fps N`
//! the application's frame rate per client (default 60).
//! Asserts nothing about time.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdpserve_server::{
    BitmapUpdate, ConnectionId, Credentials, DesktopSize, DisplayUpdate, InputHandlerFactory,
    KeyboardEvent, MouseEvent, PixelFormat, RdpServerDisplay, RdpServerDisplayUpdates,
    RdpServerInputHandler, Runtime, StopHandle,
};
use rdpserve_tests::loopback::LoopbackClient;

const USER: &str = "bench";
const PASSWORD: &str = "bench";
const SIZE: DesktopSize = DesktopSize {
    width: 1920,
    height: 1080,
};
const TIMEOUT: Duration = Duration::from_secs(60);
/// How often the idle client moves the pointer.
const INPUT_INTERVAL: Duration = Duration::from_millis(10);

struct Options {
    runtimes: Vec<&'static str>,
    runs: usize,
    seconds: u64,
    busy: usize,
    fps: u64,
}

fn options() -> Options {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|arg| arg == flag)
            .and_then(|at| args.get(at + 1))
            .cloned()
    };
    let number = |flag: &str, default: u64| {
        value(flag).map_or(default, |text| text.parse().expect("a number"))
    };
    let runtimes = match value("--runtime").as_deref() {
        Some("tokio") => vec!["tokio"],
        Some("smol") => vec!["smol"],
        Some(other) => panic!("unknown runtime {other}"),
        None => vec!["tokio", "smol"],
    };
    Options {
        runtimes,
        runs: number("--runs", 3) as usize,
        seconds: number("--seconds", 10),
        busy: number("--busy", 8) as usize,
        fps: number("--fps", 60),
    }
}

/// A picture like a video frame: smooth waves of colour everywhere,
/// shifted by `phase` so two frames differ in every pixel.
fn picture(phase: usize) -> Arc<[u8]> {
    let (width, height) = (usize::from(SIZE.width), usize::from(SIZE.height));
    let mut pixels = Vec::with_capacity(width * height * 4);
    for y in 0..height {
        for x in 0..width {
            let (fx, fy) = ((x + phase) as f64, (y + phase / 2) as f64);
            let r = 128.0 + 90.0 * (fx / 23.0).sin() * (fy / 31.0).cos();
            let g = 128.0 + 80.0 * ((fx + fy) / 37.0).sin();
            let b = 120.0 + 70.0 * (fx / 17.0 - fy / 29.0).cos();
            pixels.extend_from_slice(&[b as u8, g as u8, r as u8, 0xFF]);
        }
    }
    Arc::from(pixels)
}

/// The first `busy` sessions get full motion, later ones one frame.
struct Video {
    frames: [Arc<[u8]>; 2],
    busy: usize,
    sessions: AtomicUsize,
    interval: Duration,
}

impl RdpServerDisplay for Video {
    type Updates = VideoUpdates;

    async fn size(&self) -> DesktopSize {
        SIZE
    }

    async fn updates(&self) -> std::io::Result<VideoUpdates> {
        let session = self.sessions.fetch_add(1, Ordering::SeqCst);
        Ok(VideoUpdates {
            frames: self.frames.clone(),
            moving: session < self.busy,
            sent: 0,
            interval: self.interval,
            next_at: Instant::now(),
        })
    }
}

struct VideoUpdates {
    frames: [Arc<[u8]>; 2],
    moving: bool,
    sent: usize,
    interval: Duration,
    next_at: Instant,
}

impl RdpServerDisplayUpdates for VideoUpdates {
    async fn next_update(&mut self) -> Option<DisplayUpdate> {
        if self.sent > 0 && !self.moving {
            std::future::pending::<()>().await;
        }
        // The application's frame clock (async-io's timer, which runs
        // under tokio as under smol). Cancel-safe: nothing is taken until
        // the timer fired.
        smol::Timer::at(self.next_at).await;
        self.next_at = Instant::now().max(self.next_at + self.interval);
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

/// When the idle client sent each pointer position (its x is a sequence
/// number), and the latencies the handler measured.
#[derive(Default)]
struct Latencies {
    sent: Mutex<HashMap<u16, Instant>>,
    measured: Mutex<Vec<Duration>>,
}

struct Handlers(Arc<Latencies>);

impl InputHandlerFactory for Handlers {
    fn build_input_handler(&self, _: ConnectionId) -> Box<dyn RdpServerInputHandler> {
        Box::new(Handler(self.0.clone()))
    }
}

struct Handler(Arc<Latencies>);

impl RdpServerInputHandler for Handler {
    fn keyboard(&mut self, _: KeyboardEvent) {}

    fn mouse(&mut self, event: MouseEvent) {
        let arrived = Instant::now();
        let MouseEvent::Move { x, .. } = event else {
            return;
        };
        let sent = self.0.sent.lock().expect("sent").remove(&x);
        if let Some(sent) = sent {
            self.0
                .measured
                .lock()
                .expect("measured")
                .push(arrived - sent);
        }
    }
}

fn build<R: Runtime>(
    options: &Options,
    latencies: Arc<Latencies>,
) -> rdpserve_server::RdpServer<R, Handlers, Video> {
    rdpserve_server::RdpServer::<R, (), ()>::builder()
        .with_addr(SocketAddr::from(([127, 0, 0, 1], 0)))
        .with_no_security()
        .with_input_handler_factory(Handlers(latencies))
        .with_display_handler(Video {
            frames: [picture(0), picture(7)],
            busy: options.busy,
            sessions: AtomicUsize::new(0),
            interval: Duration::from_secs(1) / options.fps.max(1) as u32,
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
    server: rdpserve_server::RdpServer<R, Handlers, Video>,
    ready: std::sync::mpsc::Sender<(SocketAddr, StopHandle)>,
) {
    let server = server.bind().await.expect("bind a loopback port");
    let _ = ready.send((server.local_addr().expect("address"), server.stop_handle()));
    server.run().await.expect("server runs");
}

fn start(
    runtime: &str,
    options: &Options,
    latencies: Arc<Latencies>,
) -> (SocketAddr, StopHandle, std::thread::JoinHandle<()>) {
    let (ready, started) = std::sync::mpsc::channel();
    let thread = match runtime {
        "tokio" => {
            let server = build::<rdpserve_tokio::Tokio>(options, latencies);
            std::thread::spawn(move || {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("tokio runtime")
                    .block_on(serve(server, ready));
            })
        }
        _ => {
            let server = build::<rdpserve_smol::Smol>(options, latencies);
            std::thread::spawn(move || smol::block_on(serve(server, ready)))
        }
    };
    let (addr, stop) = started.recv_timeout(TIMEOUT).expect("server started");
    (addr, stop, thread)
}

struct Run {
    frames_per_second: f64,
    p50: Duration,
    p99: Duration,
    samples: usize,
}

fn run(runtime: &str, options: &Options) -> Run {
    let latencies = Arc::new(Latencies::default());
    let (addr, stop, server) = start(runtime, options, latencies.clone());
    let frames = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    // The busy clients first: the display animates the first sessions.
    for _ in 0..options.busy {
        let mut client =
            LoopbackClient::connect(addr, USER, PASSWORD, TIMEOUT).expect("a busy client logs on");
        client.next_frame().expect("a first frame");
        let (frames, done) = (frames.clone(), done.clone());
        clients.push(std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if client.next_frame().is_none() {
                    break;
                }
                frames.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let mut idle =
        LoopbackClient::connect(addr, USER, PASSWORD, TIMEOUT).expect("the idle client logs on");
    idle.next_frame().expect("the idle client's only frame");

    let warm_up = Duration::from_secs(2);
    let started = Instant::now();
    let mut counted_from = None;
    let mut position: u16 = 0;
    let mut next_move = Instant::now();
    while started.elapsed() < warm_up + Duration::from_secs(options.seconds) {
        if counted_from.is_none() && started.elapsed() >= warm_up {
            counted_from = Some((Instant::now(), frames.load(Ordering::Relaxed)));
            latencies.measured.lock().expect("measured").clear();
        }
        position = position % 1900 + 1;
        latencies
            .sent
            .lock()
            .expect("sent")
            .insert(position, Instant::now());
        idle.move_pointer(position, 500);
        next_move += INPUT_INTERVAL;
        std::thread::sleep(next_move.saturating_duration_since(Instant::now()));
    }
    let (since, frames_before) = counted_from.expect("the warm-up ended");
    let frames_per_second =
        (frames.load(Ordering::Relaxed) - frames_before) as f64 / since.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    stop.stop();
    drop(idle);
    for client in clients {
        let _ = client.join();
    }
    let _ = server.join();
    let mut measured = latencies.measured.lock().expect("measured").clone();
    measured.sort();
    let percentile = |p: f64| {
        measured
            .get(((measured.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    Run {
        frames_per_second,
        p50: percentile(0.5),
        p99: percentile(0.99),
        samples: measured.len(),
    }
}

fn median<T: PartialOrd + Copy>(mut values: Vec<T>) -> T {
    values.sort_by(|a, b| a.partial_cmp(b).expect("comparable"));
    values[values.len() / 2]
}

fn main() {
    let options = options();
    let ms = |duration: Duration| duration.as_secs_f64() * 1000.0;
    for runtime in &options.runtimes {
        let mut runs = Vec::new();
        for number in 1..=options.runs {
            let result = run(runtime, &options);
            println!(
                "{runtime} run {number}: {} busy clients x 1920x1080 RemoteFX: {:.1} frames/s \
                 together; idle client's input -> handler: p50 {:.2} ms, p99 {:.2} ms ({} moves)",
                options.busy,
                result.frames_per_second,
                ms(result.p50),
                ms(result.p99),
                result.samples,
            );
            runs.push(result);
        }
        println!(
            "{runtime} median of {} runs: {:.1} frames/s, p50 {:.2} ms, p99 {:.2} ms",
            runs.len(),
            median(runs.iter().map(|run| run.frames_per_second).collect()),
            median(runs.iter().map(|run| ms(run.p50)).collect()),
            median(runs.iter().map(|run| ms(run.p99)).collect()),
        );
    }
}
