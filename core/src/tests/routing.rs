//! Routing a connection: the application sees the client's cookie and
//! cluster data at logon, holds the connection until it decides, and a
//! redirection the client cannot take is refused with a typed error.

use super::common::{self, Harness, PASSWORD, Phase, USER, plain_config, send_io};
use crate::connection::client_info::{ClientInfoPdu, InfoFlags};
use crate::security::password::Password;
use crate::{CommandError, Event, Redirection, SelectedSecurity};

fn send_client_info(harness: &mut Harness, connected: &common::Connected) {
    let mut info = Vec::new();
    ClientInfoPdu {
        code_page: 0,
        flags: InfoFlags::MOUSE | InfoFlags::UNICODE,
        domain: String::new(),
        user_name: USER.into(),
        password: Password::new(PASSWORD),
        alternate_shell: String::new(),
        working_dir: String::new(),
        extended: None,
    }
    .encode(&mut info);
    send_io(harness, connected, &info);
}

#[test]
fn the_connection_waits_after_logon_until_the_application_accepts() {
    let mut config = plain_config();
    config.route_after_logon = true;
    let mut harness = Harness::new(config, [3; 32]);
    let connected =
        common::connect_through(&mut harness, PASSWORD, &[], Phase::ChannelsJoined).unwrap();
    let routing = harness
        .engine
        .routing()
        .expect("known from the x.224 request");
    assert_eq!(routing.cookie.as_deref(), Some(USER));
    assert_eq!(
        routing.cluster, None,
        "the test client sends no cluster block"
    );
    send_client_info(&mut harness, &connected);
    let routing = harness
        .events
        .iter()
        .find_map(|event| match event {
            Event::Routing(routing) => Some(routing.clone()),
            _ => None,
        })
        .expect("routing event after logon");
    assert_eq!(routing.user_name, USER);
    assert_eq!(routing.security, SelectedSecurity::PlainRdp);
    assert!(!routing.logged_on_with_cookie);
    // Only the license went out: the Demand Active waits for the decision.
    let _license = harness.next_channel_data();
    assert!(harness.next_pdu().is_none());
    // Plain RDP cannot carry the enhanced redirection PDU.
    let mut redirection = Redirection::new(1);
    redirection.target_addresses = vec!["127.0.0.3".into()];
    assert_eq!(
        harness.engine.redirect(&redirection),
        Err(CommandError::RedirectionNeedsEnhancedSecurity)
    );
    harness.engine.accept_connection().unwrap();
    harness.drain();
    let (_, demand_active) = harness.next_channel_data();
    assert_eq!(demand_active[2] & 0x0F, 0x1, "demand active");
    assert_eq!(
        harness.engine.accept_connection(),
        Err(CommandError::NotAwaitingRoute)
    );
    assert!(!harness.engine.is_closed());
}

#[test]
fn without_routing_the_sequence_is_unchanged_and_redirects_are_refused() {
    let mut harness = Harness::new(plain_config(), [3; 32]);
    common::connect(&mut harness, PASSWORD).unwrap();
    assert!(harness.engine.is_active());
    assert!(
        !harness
            .events
            .iter()
            .any(|event| matches!(event, Event::Routing(_)))
    );
    assert_eq!(
        harness.engine.redirect(&Redirection::new(1)),
        Err(CommandError::RedirectionNeedsEnhancedSecurity)
    );
    assert_eq!(
        harness.engine.accept_connection(),
        Err(CommandError::NotAwaitingRoute)
    );
    assert!(harness.engine.is_active());
}

/// A connection held after logon and accepted by the application replays
/// byte for byte: the hold is in the recorded configuration and the
/// decision is a recorded command.
#[test]
fn a_routed_connection_replays() {
    let mut config = plain_config();
    config.route_after_logon = true;
    config.record = true;
    let mut harness = Harness::new(config, [5; 32]);
    let connected =
        common::connect_through(&mut harness, PASSWORD, &[], Phase::ChannelsJoined).unwrap();
    send_client_info(&mut harness, &connected);
    assert!(
        harness
            .events
            .iter()
            .any(|event| matches!(event, Event::Routing(_)))
    );
    // A refused redirection is recorded too, and refused again on replay.
    assert!(harness.engine.redirect(&Redirection::new(2)).is_err());
    harness.engine.accept_connection().unwrap();
    harness.drain();
    let mut recording = Vec::new();
    while harness.engine.poll_recording(&mut recording).is_some() {}
    let report = crate::replay(&recording, None).expect("replays");
    assert!(report.events >= 1, "{report:?}");
}
