//! rdpserve-x11: serve an existing X display (Xvfb, Xorg, Xwayland) to RDP
//! clients.
//!
//! ```text
//! cargo run --release -p rdpserve-x11 -- --display :1 --user me --password secret
//! ```

use std::net::SocketAddr;

use rdpserve_tokio::{Credentials, RdpServer, TlsIdentity};
use rdpserve_x11::{X11Desktop, X11Options};

const USAGE: &str = "\
rdpserve-x11: share an X display over RDP

USAGE: rdpserve-x11 --user NAME --password PASS [--display :N]
                    [--addr IP:PORT] [--security nla|tls|none]
                    [--cert FILE --key FILE] [--no-shm] [--no-resize] [--primary]

  --display    the X display to share (default: $DISPLAY)
  --addr       listen address (default 127.0.0.1:3389)
  --user       the account clients log on with; required, since the
  --password   desktop is real (no default account)
  --security   nla (default: TLS + CredSSP), tls, or none (plain RDP, no
               encryption); certificates are self-signed unless --cert/--key
  --cert/--key PEM certificate chain and private key for TLS
  --no-shm     capture with GetImage even where MIT-SHM works
  --primary    share the PRIMARY selection as well as CLIPBOARD
  --no-resize  keep the X screen's size when a client asks for another
               (Display Control); resizes made on the X side are followed

Logs go to stderr; RUST_LOG=debug shows input and cursor changes.
";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Security {
    Tls,
    Nla,
    None,
}

struct Options {
    x11: X11Options,
    addr: SocketAddr,
    credentials: Credentials,
    security: Security,
    cert: Option<(String, String)>,
}

fn parse_args() -> Result<Options, String> {
    let mut x11 = X11Options::default();
    let mut addr: SocketAddr = ([127, 0, 0, 1], 3389).into();
    let mut security = Security::Nla;
    let (mut user, mut password, mut cert, mut key) = (None, None, None, None);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--help" | "-h" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            "--no-shm" => {
                x11.no_shm = true;
                continue;
            }
            "--primary" => {
                x11.primary = true;
                continue;
            }
            "--no-resize" => {
                x11.no_resize = true;
                continue;
            }
            _ => {}
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--display" => x11.display = Some(value),
            "--addr" => addr = value.parse().map_err(|e| format!("--addr: {e}"))?,
            "--user" => user = Some(value),
            "--password" => password = Some(value),
            "--security" => {
                security = match value.as_str() {
                    "tls" => Security::Tls,
                    "nla" => Security::Nla,
                    "none" => Security::None,
                    other => return Err(format!("--security: unknown value {other}")),
                }
            }
            "--cert" => cert = Some(value),
            "--key" => key = Some(value),
            other => return Err(format!("unknown flag {other}\n\n{USAGE}")),
        }
    }
    let (Some(username), Some(password)) = (user, password) else {
        return Err(format!(
            "--user and --password are required: this shares a real desktop\n\n{USAGE}"
        ));
    };
    let cert = match (cert, key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => return Err("--cert and --key go together".into()),
    };
    Ok(Options {
        x11,
        addr,
        credentials: Credentials {
            username,
            password,
            domain: None,
        },
        security,
        cert,
    })
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let options = match parse_args() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    if let Err(error) = run(options).await {
        eprintln!("rdpserve-x11: {error}");
        std::process::exit(1);
    }
}

async fn run(options: Options) -> Result<(), Box<dyn std::error::Error>> {
    let desktop = X11Desktop::open(&options.x11)?;
    let input = desktop.input()?;
    let clipboard = desktop.clipboard()?;
    let builder = RdpServer::builder().with_addr(options.addr);
    let identity = match &options.cert {
        Some((cert, key)) => Some(TlsIdentity::from_pem_files(cert, key)?),
        None => None,
    };
    let builder = match (options.security, identity) {
        (Security::None, _) => builder.with_no_security(),
        (Security::Tls, Some(identity)) => builder.with_tls(identity),
        (Security::Tls, None) => builder.with_self_signed_tls(),
        (Security::Nla, Some(identity)) => builder.with_hybrid(identity),
        (Security::Nla, None) => builder.with_self_signed_hybrid(),
    };
    let server = builder
        .with_input_handler(input)
        .with_display_handler(desktop.display())
        .with_cliprdr_factory(clipboard)
        .with_max_channel_message(rdpserve_x11::MAX_CLIPBOARD_BYTES)
        .with_credentials(options.credentials)
        .build()?
        .bind()
        .await?;
    let size = desktop.size();
    // Scripts (and the tests) read this line for the port.
    println!(
        "rdpserve-x11 listening on {} ({}x{}, {})",
        server.local_addr()?,
        size.width,
        size.height,
        desktop.capture_method()
    );
    server.run().await?;
    Ok(())
}
