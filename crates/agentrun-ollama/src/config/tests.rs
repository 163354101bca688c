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

#[test]
fn full_urls_are_kept_and_end_with_a_slash() {
    check("http://127.0.0.1:11434", "http://127.0.0.1:11434/");
    check("http://127.0.0.1:11434/", "http://127.0.0.1:11434/");
    check("http://gpu-box:8080/ollama", "http://gpu-box:8080/ollama/");
    check("http://example.com", "http://example.com/");
}

#[test]
fn addresses_without_scheme_mean_http_on_ollamas_port() {
    check("127.0.0.1", "http://127.0.0.1:11434/");
    check("localhost:9000", "http://localhost:9000/");
    check("gpu-box:80", "http://gpu-box/");
    check("[::1]", "http://[::1]:11434/");
    check("[::1]:8080", "http://[::1]:8080/");
    check("  0.0.0.0  ", "http://0.0.0.0:11434/");
}

#[test]
fn unusable_addresses_are_refused_with_a_reason() {
    check_invalid("", "empty");
    check_invalid("https://example.com", "https is not supported");
    check_invalid("ftp://example.com", "unsupported scheme 'ftp'");
    check_invalid("http://host:notaport", "invalid port");
    check_invalid("http://host/?x=1", "no query");
    check_invalid("http://user:pw@host", "credentials");
    check_invalid("http://", "empty host");
}

#[test]
fn loopback_servers_are_recognised() {
    for address in [
        "127.0.0.1",
        "localhost:1234",
        "http://LOCALHOST",
        "[::1]",
        "127.1.2.3",
    ] {
        assert!(is_loopback(&base_url(address).expect("valid")), "{address}");
    }
    for address in ["0.0.0.0", "gpu-box", "http://10.0.0.2:11434"] {
        assert!(
            !is_loopback(&base_url(address).expect("valid")),
            "{address}"
        );
    }
}
