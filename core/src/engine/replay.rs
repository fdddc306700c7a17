//! Replaying a recording on a fresh engine (see the `record` layer for what
//! a recording holds).

use std::time::Instant;

use crate::api::command::Command;
use crate::api::config::Validator;
use crate::engine::Engine;
use crate::record::format::decode_header;
use crate::record::reader::{Entry, Reader};
use crate::wire::cursor::ReadCursor;
use crate::wire::error::DecodeError;

/// How a replay differed from its recording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    #[error("recording is malformed: {0}")]
    Malformed(#[from] DecodeError),
    #[error("output differs at byte {offset} (recorded {recorded:?}, replayed {replayed:?})")]
    OutputDiverged {
        offset: usize,
        recorded: Option<u8>,
        replayed: Option<u8>,
    },
    #[error("event {index} differs: recorded {recorded:?}, replayed {replayed:?}")]
    EventDiverged {
        index: usize,
        recorded: Option<String>,
        replayed: Option<String>,
    },
}

/// What a successful replay checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayReport {
    pub frames: usize,
    pub output_bytes: usize,
    pub events: usize,
}

/// Replays `recording` on a fresh engine with the recorded seed and
/// configuration, checking every output byte and event. `credentials` must
/// be the validator the session ran with when it used NLA.
pub fn replay(
    recording: &[u8],
    credentials: Option<Validator>,
) -> Result<ReplayReport, ReplayError> {
    let mut cursor = ReadCursor::new(recording, "recording");
    let header = decode_header(&mut cursor, credentials)?;
    // Replays run above TLS; the one clock reading stands in for the
    // recorded session's start, and every time is an offset from it.
    let base = Instant::now();
    let mut engine = match header.public_key {
        Some(public_key) => Engine::decrypted(header.config, header.seed, base, public_key),
        None => Engine::new(header.config, header.seed, base),
    };
    let mut reader = Reader::new(cursor);
    let mut expected_output = Vec::new();
    let mut expected_events = Vec::new();
    let mut output = Vec::new();
    let mut events = Vec::new();
    let mut frames = 0;
    let mut scratch = Vec::new();
    while let Some(entry) = reader.next_entry()? {
        match entry {
            Entry::Frame { at, frame, verdict } => {
                if let Some(accepted) = verdict {
                    engine.decide_next_password_check(accepted);
                }
                engine.handle_input(base + at, frame);
                frames += 1;
            }
            Entry::Eof(at) => engine.handle_eof(base + at),
            Entry::Timeout(at) => engine.handle_timeout(base + at),
            // A refused command was refused when recorded too; the output
            // comparison catches any difference.
            Entry::Command(command) => drop(engine.apply(command)),
            Entry::Echo { at, payload } => drop(engine.apply(Command::RequestEcho {
                now: base + at,
                payload,
            })),
            Entry::Output(bytes) => expected_output.extend_from_slice(bytes),
            Entry::Event(text) => expected_events.push(text.to_owned()),
        }
        while engine.poll_transmit(&mut scratch).is_some() {
            output.append(&mut scratch);
        }
        while let Some(event) = engine.poll_event() {
            events.push(format!("{event:?}"));
        }
    }
    if let Some(offset) = (0..output.len().max(expected_output.len()))
        .find(|&i| output.get(i) != expected_output.get(i))
    {
        return Err(ReplayError::OutputDiverged {
            offset,
            recorded: expected_output.get(offset).copied(),
            replayed: output.get(offset).copied(),
        });
    }
    if let Some(index) = (0..events.len().max(expected_events.len()))
        .find(|&i| events.get(i) != expected_events.get(i))
    {
        return Err(ReplayError::EventDiverged {
            index,
            recorded: expected_events.get(index).cloned(),
            replayed: events.get(index).cloned(),
        });
    }
    Ok(ReplayReport {
        frames,
        output_bytes: output.len(),
        events: events.len(),
    })
}
