//! "A panic means a bug in us, never bad input": garbage at each state ends
//! the connection with a typed error and `Event::Closed`.

use std::time::{Duration, Instant};

use crate::api::config::{Config, DesktopSize, SecurityConfig};
use crate::api::event::CloseReason;
use crate::{DecodeError, Engine, Error, Event};

fn plain_config() -> Config {
    let security = SecurityConfig::plain_rdp();
    Config::new(
        security,
        DesktopSize {
            width: 800,
            height: 600,
        },
    )
}

/// X.224 Connection Request with RDP_NEG_REQ asking for `protocols`.
fn connection_request(protocols: u8) -> Vec<u8> {
    vec![
        0x03, 0x00, 0x00, 0x13, // TPKT, 19 bytes
        0x0E, 0xE0, 0x00, 0x00, 0x00, 0x00, 0x00, // X.224 CR, LI 14
        0x01, 0x00, 0x08, 0x00, protocols, 0x00, 0x00, 0x00, // RDP_NEG_REQ
    ]
}

fn drain(engine: &mut Engine) -> (Vec<u8>, Vec<Event>) {
    let mut wire = Vec::new();
    while engine.poll_transmit(&mut wire).is_some() {}
    let mut events = Vec::new();
    while let Some(event) = engine.poll_event() {
        events.push(event);
    }
    (wire, events)
}

fn closed_reason(events: &[Event]) -> Option<&CloseReason> {
    events.iter().find_map(|event| match event {
        Event::Closed { reason } => Some(reason),
        _ => None,
    })
}

#[test]
fn tpkt_length_below_minimum_is_a_protocol_error() {
    let now = Instant::now();
    let mut engine = Engine::new(plain_config(), [1; 32], now);
    engine.handle_input(now, &[0x03, 0x00, 0x00, 0x02]);
    let (_, events) = drain(&mut engine);
    assert!(matches!(
        closed_reason(&events),
        Some(CloseReason::Error(Error::Protocol(_)))
    ));
    assert!(engine.is_closed());
}

#[test]
fn oversized_tpkt_is_refused_before_buffering() {
    let now = Instant::now();
    let mut config = plain_config();
    config.max_incoming_pdu = 1024;
    let mut engine = Engine::new(config, [1; 32], now);
    engine.handle_input(now, &[0x03, 0x00, 0xFF, 0xFF, 0x02]);
    let (_, events) = drain(&mut engine);
    assert!(matches!(
        closed_reason(&events),
        Some(CloseReason::Error(Error::Protocol(
            DecodeError::TooLarge { .. }
        )))
    ));
}

#[test]
fn garbage_connection_request_is_a_protocol_error() {
    let now = Instant::now();
    let mut engine = Engine::new(plain_config(), [1; 32], now);
    let mut request = connection_request(0);
    request[5] = 0xF0; // a Data TPDU where a Connection Request belongs
    engine.handle_input(now, &request);
    let (_, events) = drain(&mut engine);
    assert!(matches!(
        closed_reason(&events),
        Some(CloseReason::Error(Error::Protocol(_)))
    ));
}

#[test]
fn truncated_pdu_waits_then_the_deadline_closes() {
    let now = Instant::now();
    let mut engine = Engine::new(plain_config(), [1; 32], now);
    // Only half of a Connection Request arrives.
    engine.handle_input(now, &connection_request(0)[..9]);
    let (wire, events) = drain(&mut engine);
    assert!(wire.is_empty() && events.is_empty());
    // A Connection Request that never completes meets the first-bytes
    // deadline, not the whole handshake's.
    let (deadline, reason) = engine.poll_timeout().expect("first-bytes deadline armed");
    assert_eq!(deadline, now + Config::DEFAULT_FIRST_BYTES_TIMEOUT);
    assert_eq!(reason, "first-bytes deadline");
    engine.handle_timeout(deadline - Duration::from_millis(1));
    assert!(!engine.is_closed(), "closed before the deadline");
    engine.handle_timeout(deadline);
    let (_, events) = drain(&mut engine);
    assert_eq!(
        closed_reason(&events),
        Some(&CloseReason::Error(Error::TimedOut("first bytes")))
    );
}

#[test]
fn client_stalling_after_negotiation_times_out() {
    let now = Instant::now();
    let mut engine = Engine::new(plain_config(), [1; 32], now);
    engine.handle_input(now, &connection_request(0));
    let (wire, events) = drain(&mut engine);
    // Connection Confirm with RDP_NEG_RSP selecting PROTOCOL_RDP.
    assert_eq!(wire.len(), 19);
    assert_eq!(&wire[11..13], &[0x02, 0x01]);
    assert!(events.is_empty());
    let (deadline, _) = engine.poll_timeout().unwrap();
    engine.handle_timeout(deadline);
    let (_, events) = drain(&mut engine);
    assert_eq!(
        closed_reason(&events),
        Some(&CloseReason::Error(Error::TimedOut("handshake")))
    );
}

#[test]
fn tls_request_without_tls_gets_a_negotiation_failure() {
    let now = Instant::now();
    let mut engine = Engine::new(plain_config(), [1; 32], now);
    engine.handle_input(now, &connection_request(0x01));
    let (wire, events) = drain(&mut engine);
    // RDP_NEG_FAILURE (type 3) with SSL_NOT_ALLOWED_BY_SERVER (2).
    assert_eq!(wire[11], 0x03);
    assert_eq!(wire[15], 0x02);
    assert!(matches!(
        closed_reason(&events),
        Some(CloseReason::Error(Error::Unsupported(_)))
    ));
}

#[test]
fn random_garbage_never_panics() {
    // A small deterministic generator: the test must be reproducible.
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..2000 {
        let now = Instant::now();
        let mut engine = Engine::new(plain_config(), [round as u8; 32], now);
        // Start from a valid negotiation half the time so later states see garbage too.
        if round % 2 == 0 {
            engine.handle_input(now, &connection_request(0));
        }
        let len = (next() % 300) as usize;
        let mut garbage: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if round % 3 == 0 && garbage.len() > 4 {
            // A plausible TPKT header around the garbage reaches deeper parsers.
            let total = garbage.len() as u16;
            garbage[0] = 3;
            garbage[1] = 0;
            garbage[2..4].copy_from_slice(&total.to_be_bytes());
        }
        engine.handle_input(now, &garbage);
        let _ = drain(&mut engine);
        engine.handle_eof(now);
        let (_, events) = drain(&mut engine);
        assert!(engine.is_closed());
        assert!(events.len() <= 1);
    }
}

#[test]
fn joins_beyond_the_declared_channels_close_the_connection() {
    use super::common::{Harness, attach, send_mcs};
    use crate::wire::mcs::DomainPdu;

    let protocol_error = |harness: &Harness| {
        harness.events.iter().any(|event| {
            matches!(
                event,
                Event::Closed {
                    reason: CloseReason::Error(Error::UnexpectedPdu(_))
                }
            )
        })
    };
    // A channel the client never declared (the join flood of a client that
    // never reads: it ends at the first join, before any answer is sent).
    let mut harness = Harness::new(plain_config(), [9; 32]);
    let attached = attach(&mut harness).expect("attached");
    harness.received.clear();
    send_mcs(
        &mut harness,
        DomainPdu::ChannelJoinRequest {
            initiator: attached.user_channel,
            channel_id: 9999,
        },
    );
    assert!(protocol_error(&harness), "{:?}", harness.events);
    // A declared channel joined twice.
    let mut harness = Harness::new(plain_config(), [9; 32]);
    let attached = attach(&mut harness).expect("attached");
    for _ in 0..2 {
        send_mcs(
            &mut harness,
            DomainPdu::ChannelJoinRequest {
                initiator: attached.user_channel,
                channel_id: attached.io_channel,
            },
        );
    }
    assert!(protocol_error(&harness), "{:?}", harness.events);
    // Each declared channel once is what every client does.
    let mut harness = Harness::new(plain_config(), [9; 32]);
    let attached = attach(&mut harness).expect("attached");
    for channel_id in [attached.user_channel, attached.io_channel]
        .into_iter()
        .chain(attached.static_channels.iter().copied())
    {
        send_mcs(
            &mut harness,
            DomainPdu::ChannelJoinRequest {
                initiator: attached.user_channel,
                channel_id,
            },
        );
    }
    assert!(!harness.engine.is_closed());
}

#[test]
fn a_socket_that_sends_nothing_meets_the_first_bytes_deadline() {
    let start = Instant::now();
    let mut engine = Engine::new(plain_config(), [1; 32], start);
    let (deadline, reason) = engine.poll_timeout().expect("a deadline");
    assert_eq!(reason, "first-bytes deadline");
    assert_eq!(deadline, start + Config::DEFAULT_FIRST_BYTES_TIMEOUT);
    engine.handle_timeout(deadline);
    let events: Vec<Event> = std::iter::from_fn(|| engine.poll_event()).collect();
    assert_eq!(
        events,
        [Event::Closed {
            reason: CloseReason::Error(Error::TimedOut("first bytes"))
        }]
    );
}

#[test]
fn after_the_connection_request_the_handshake_deadline_applies() {
    use super::common::{Harness, attach};
    let mut harness = Harness::new(plain_config(), [1; 32]);
    attach(&mut harness).expect("attached");
    let (_, reason) = harness.engine.poll_timeout().expect("a deadline");
    assert_eq!(reason, "handshake deadline");
}

#[test]
fn an_idle_session_is_closed_when_asked() {
    use super::common::{Harness, PASSWORD, connect};
    let mut config = super::common::plain_config();
    config.idle_timeout = Some(Duration::from_secs(60));
    let mut harness = Harness::new(config, [1; 32]);
    connect(&mut harness, PASSWORD).expect("active");
    let (deadline, reason) = harness.engine.poll_timeout().expect("an idle deadline");
    assert_eq!(reason, "idle timeout");
    // Early wakeups change nothing.
    harness
        .engine
        .handle_timeout(deadline - Duration::from_secs(1));
    assert!(harness.engine.is_active());
    harness.engine.handle_timeout(deadline);
    let closed = std::iter::from_fn(|| harness.engine.poll_event()).any(|event| {
        event
            == Event::Closed {
                reason: CloseReason::Error(Error::TimedOut("idle")),
            }
    });
    assert!(closed);
    // Without the option, an active session has no deadline.
    let mut harness = Harness::new(super::common::plain_config(), [1; 32]);
    connect(&mut harness, PASSWORD).expect("active");
    assert_eq!(harness.engine.poll_timeout(), None);
}
