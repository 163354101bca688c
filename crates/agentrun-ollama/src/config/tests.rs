//! Tests of server address parsing.

use super::*;

#[track_caller]
fn check(address: &str, expected: &str) {
    let url = base_url(address).expect("a valid address");
    assert_eq!(url.as_str(), expected, "address {address:?}");
}

#[track_caller]
fn check_invalid(address: &str, expected_reason: &str) {
    let error = base_url(address).expect_err("an invalid address");
    let message = error.to_string();
    assert!(
        message.contains(expected_reason) && message.contains(address.trim()),
        "address {address:?} gave {message:?}"
    );
}

/// The client's table of every form Ollama accepts, kept beside the other fixtures.
const HOST_TABLE: &str = include_str!("../../../../tests/fixtures/ollama-host-client.txt");

#[test]
fn every_form_ollama_accepts_is_read_as_ollamas_client_reads_it() {
    let mut checked = 0;
    for (number, line) in HOST_TABLE.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (input, expected) = line
            .rsplit_once(" -> ")
            .unwrap_or_else(|| panic!("line {}: no ` -> `", number + 1));
        let input: String = serde_json::from_str(input)
            .unwrap_or_else(|error| panic!("line {}: {error}", number + 1));
        check(&input, expected.trim());
        checked += 1;
    }
    assert!(checked >= 30, "only {checked} forms in the table");
}

#[test]
fn unusable_addresses_are_refused_with_a_reason() {
    check_invalid("ftp://example.com", "unsupported scheme 'ftp'");
    check_invalid("http://host/?x=1", "no query");
    check_invalid("http://user:pw@host", "credentials");
}

#[test]
fn https_parses_but_this_build_refuses_it() {
    let url = base_url("https://example.com").expect("a valid address");
    let error = check_supported(&url, "https://example.com").expect_err("no TLS here");
    assert!(
        error.to_string().contains("https is not supported"),
        "{error}"
    );
    assert!(check_supported(&base_url("").expect("valid"), "").is_ok());
}

#[test]
fn loopback_servers_are_recognised() {
    for address in [
        "127.0.0.1",
        "localhost:1234",
        "http://LOCALHOST",
        "[::1]",
        "127.1.2.3",
        "0.0.0.0",
        ":1234",
    ] {
        assert!(is_loopback(&base_url(address).expect("valid")), "{address}");
    }
    for address in ["gpu-box", "http://10.0.0.2:11434"] {
        assert!(
            !is_loopback(&base_url(address).expect("valid")),
            "{address}"
        );
    }
}

/// Every case of the table ollama-sim's listener follows too (`tests/fixtures/ollama-host.txt`,
/// Ollama's `envconfig.Host`), then made connectable as Ollama's client does: an empty or
/// unspecified host means this machine.
#[test]
fn ollama_host_follows_the_shared_table() {
    let cases = case_table("ollama-host.txt");
    for (line, input, expected) in &cases {
        let (scheme, rest) = expected.split_once("://").expect("a scheme");
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (host, port) = authority.rsplit_once(':').expect("a port");
        let host = match host {
            "" | "0.0.0.0" => "127.0.0.1",
            "[::]" => "[::1]",
            host => host,
        };
        let url = base_url(input).unwrap_or_else(|error| panic!("line {line}: {input:?}: {error}"));
        assert_eq!(
            (
                url.scheme(),
                url.host_str().unwrap_or_default(),
                url.port_or_known_default().map(|port| port.to_string()),
                url.path().trim_matches('/'),
            ),
            (scheme, host, Some(port.to_owned()), path),
            "line {line}: {input:?} gave {url}"
        );
    }
    assert!(cases.len() >= 20, "only {} cases", cases.len());
}

include!("../../../../tests/fixtures/case_table.rs");
