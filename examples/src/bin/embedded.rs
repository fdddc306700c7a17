//! The rdpserve engine driven by a plain blocking loop, without any async
//! runtime: proof that the core needs nothing from one.
//!
//! ```text
//! cargo run --release -p rdpserve-examples --bin embedded -- [IP:PORT]
//! ```
//! Serves TLS on 127.0.0.1:3390 by default, one thread per client, and
//! shows a gradient with a clock-less square; input is printed.

use std::net::TcpListener;

use rdpserve_core::{Config, DesktopSize, SecurityConfig};
use rdpserve_core::{Credentials, Event};
use rdpserve_examples::canvas::{Canvas, Rect};
use rdpserve_examples::embedded::{Frame, os_seed, serve_connection};
use rdpserve_server::TlsIdentity;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3390".into());
    let size = DesktopSize {
        width: 800,
        height: 600,
    };
    let mut canvas = Canvas::new(size.width, size.height);
    canvas.fill_gradient();
    canvas.fill_rect(
        Rect {
            x: 300,
            y: 200,
            width: 200,
            height: 200,
        },
        [250, 250, 250, 255],
    );
    let frame = Frame {
        width: size.width,
        height: size.height,
        pixels: canvas.pixels().to_vec(),
    };
    let identity = TlsIdentity::self_signed(&["localhost"])?.core_identity()?;
    let mut config = Config::new(SecurityConfig::tls(identity), size);
    config.credentials = Some(
        Credentials {
            username: "demo".into(),
            password: "demo".into(),
            domain: None,
        }
        .into(),
    );
    let listener = TcpListener::bind(&addr)?;
    println!(
        "embedded rdpserve on {addr}; connect with:\n  xfreerdp /v:{addr} /u:demo /p:demo /cert:ignore /sec:tls /bpp:32"
    );
    for stream in listener.incoming() {
        let stream = stream?;
        let (config, frame) = (config.clone(), frame.clone());
        std::thread::spawn(move || {
            let mut config = config;
            config.wall_clock = std::time::SystemTime::now();
            let result = os_seed().and_then(|seed| {
                serve_connection(stream, config, seed, &frame, |event| match event {
                    Event::Input(input) => println!("input: {input:?}"),
                    other => println!("event: {other:?}"),
                })
            });
            println!("connection ended: {result:?}");
        });
    }
    Ok(())
}
