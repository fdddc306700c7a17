//! Writes the seed corpora of the fuzz targets:
//!
//! ```text
//! seed_corpus OUT_DIR RECORDING...
//! ```
//!
//! cuts every recording (`tests/fixtures/*.rdprec`) into per-target seeds
//! with `rdpserve_core::fuzzing::seeds`, adds the synthetic ones, and writes
//! each to `OUT_DIR/<target>/<hash of its bytes>`, so running it twice
//! writes the same files.

use std::path::PathBuf;
use std::process::ExitCode;

use rdpserve_core::fuzzing::seeds::{self, Seed};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(out_dir) = args.next().map(PathBuf::from) else {
        eprintln!("usage: seed_corpus OUT_DIR RECORDING...");
        return ExitCode::FAILURE;
    };
    let mut all = seeds::synthetic();
    for path in args {
        let recording = match std::fs::read(&path) {
            Ok(recording) => recording,
            Err(error) => {
                eprintln!("{}: {error}", path.display());
                return ExitCode::FAILURE;
            }
        };
        match seeds::from_recording(&recording) {
            Ok(found) => all.extend(found),
            Err(error) => {
                eprintln!("{}: {error}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }
    for Seed { target, bytes } in &all {
        let dir = out_dir.join(target);
        let path = dir.join(format!("{:016x}", fnv1a(bytes)));
        if let Err(error) =
            std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, bytes))
        {
            eprintln!("{}: {error}", path.display());
            return ExitCode::FAILURE;
        }
    }
    println!("{} seeds in {}", all.len(), out_dir.display());
    ExitCode::SUCCESS
}

/// FNV-1a, 64 bits: a stable file name for a seed.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xCBF2_9CE4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01B3)
    })
}
