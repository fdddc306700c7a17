//! One member of a farm of rdpserve servers behind HAProxy: see
//! docs/farm.md and examples/farm/ for the whole farm.
//!
//! ```text
//! cargo run --release -p rdpserve-examples --bin farm -- --help
//! ```

use std::net::SocketAddrV4;
use std::path::PathBuf;

use rdpserve_examples::farm::{MemberOptions, RedirectMode, member_color, run_member};
use rdpserve_tokio::DesktopSize;

const USAGE: &str = "\
farm: one member of a farm of rdpserve servers

USAGE: farm --addr IP:PORT --state-dir DIR [--index N] [--redirect token|ip]
            [--security nla|tls] [--password PASS] [--size WxH]

  --addr       where this member listens, e.g. 127.0.0.2:3389
  --state-dir  the directory the farm's members share (sessions, cookies)
  --index      this member's number, which picks its desktop colour (0)
  --redirect   token (default): send a user back through the balancer with
               a routing token naming the member holding their session;
               ip: send them to that member's address
  --security   nla (default) or tls
  --password   the password every user name logs on with (default demo)
  --size       desktop size (default 1024x768)
";

fn parse_args() -> Result<MemberOptions, String> {
    let mut addr: Option<SocketAddrV4> = None;
    let mut state_dir: Option<PathBuf> = None;
    let mut index = 0usize;
    let mut mode = RedirectMode::Token;
    let mut nla = true;
    let mut password = String::from("demo");
    let mut size = DesktopSize {
        width: 1024,
        height: 768,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.into());
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n\n{USAGE}"))?;
        let bad = |what: &str| format!("bad {what}: {value}");
        match flag.as_str() {
            "--addr" => addr = Some(value.parse().map_err(|_| bad("address"))?),
            "--state-dir" => state_dir = Some(value.into()),
            "--index" => index = value.parse().map_err(|_| bad("index"))?,
            "--redirect" => {
                mode = match value.as_str() {
                    "token" => RedirectMode::Token,
                    "ip" => RedirectMode::Ip,
                    _ => return Err(bad("redirect mode")),
                }
            }
            "--security" => {
                nla = match value.as_str() {
                    "nla" => true,
                    "tls" => false,
                    _ => return Err(bad("security")),
                }
            }
            "--password" => password = value,
            "--size" => {
                let (width, height) = value.split_once('x').ok_or_else(|| bad("size"))?;
                size = DesktopSize {
                    width: width.parse().map_err(|_| bad("size"))?,
                    height: height.parse().map_err(|_| bad("size"))?,
                };
            }
            _ => return Err(format!("unknown flag {flag}\n\n{USAGE}")),
        }
    }
    Ok(MemberOptions {
        addr: addr.ok_or_else(|| format!("--addr is required\n\n{USAGE}"))?,
        state_dir: state_dir.ok_or_else(|| format!("--state-dir is required\n\n{USAGE}"))?,
        mode,
        password,
        nla,
        size,
        color: member_color(index),
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
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
    run_member(options).await?;
    Ok(())
}
