//! `OLLAMA_HOST` read exactly as Ollama reads it (`envconfig.Host` in Ollama's
//! `envconfig/config.go`): surrounding spaces and quotes dropped, scheme optional (`http`
//! default port 80, `https` 443, none 11434), `:PORT`, a bare host, IPv6 with or without
//! brackets, a path kept, and an invalid port replaced by the default. It never fails.
//! The shared case table is `tests/fixtures/ollama-host.txt` at the repository root.

use std::fmt;
use std::net::IpAddr;

/// A parsed `OLLAMA_HOST`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OllamaHost {
    /// `http` or `https` (or any scheme given).
    pub scheme: String,
    /// The host without brackets; empty for `:PORT` (every interface).
    pub host: String,
    /// The port.
    pub port: u16,
    /// A path after the host (a proxy prefix), without the leading `/`; usually empty.
    pub path: String,
}

impl OllamaHost {
    /// Parses a value of `OLLAMA_HOST` (empty means the default, `127.0.0.1:11434`).
    pub fn parse(value: &str) -> OllamaHost {
        // envconfig.Var: trim spaces, then quotes; Host trims spaces again.
        let value = value.trim().trim_matches(|c| c == '"' || c == '\'').trim();
        let (mut scheme, mut hostport, mut default_port) = ("http", value, 11434u16);
        match value.split_once("://") {
            None if value == "ollama.com" => {
                scheme = "https";
                hostport = "ollama.com:443";
            }
            None => {}
            Some((given, rest)) => {
                scheme = given;
                hostport = rest;
                default_port = match given {
                    "http" => 80,
                    "https" => 443,
                    _ => 11434,
                };
            }
        }
        let (hostport, path) = hostport.split_once('/').unwrap_or((hostport, ""));
        let (host, port) = match split_host_port(hostport) {
            Some((host, port)) => (host.to_owned(), parse_port(port).unwrap_or(default_port)),
            None => {
                let host = match hostport
                    .trim_matches(|c| c == '[' || c == ']')
                    .parse::<IpAddr>()
                {
                    Ok(ip) => ip.to_string(),
                    Err(_) if !hostport.is_empty() => hostport.to_owned(),
                    Err(_) => "127.0.0.1".to_owned(),
                };
                (host, default_port)
            }
        };
        OllamaHost {
            scheme: scheme.to_owned(),
            host,
            port,
            path: path.to_owned(),
        }
    }

    /// `host:port` in the form a socket binds (`0.0.0.0` for an empty host, IPv6 in brackets).
    pub fn bind_address(&self) -> String {
        let host = if self.host.is_empty() {
            "0.0.0.0"
        } else {
            &self.host
        };
        join_host_port(host, self.port)
    }
}

impl fmt::Display for OllamaHost {
    /// `scheme://host:port[/path]`, as Go prints the URL.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}",
            self.scheme,
            join_host_port(&self.host, self.port)
        )?;
        if !self.path.is_empty() {
            write!(f, "/{}", self.path)?;
        }
        Ok(())
    }
}

fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Go's `net.SplitHostPort`: `None` when there is no port or the host is a bare IPv6.
fn split_host_port(text: &str) -> Option<(&str, &str)> {
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = after.strip_prefix(':')?;
        return Some((host, port));
    }
    let (host, port) = text.rsplit_once(':')?;
    if host.contains(':') || host.contains('[') || host.contains(']') {
        return None;
    }
    Some((host, port))
}

/// A port in 0..=65535 (Ollama falls back to the default for anything else).
fn parse_port(text: &str) -> Option<u16> {
    text.parse::<i64>().ok().and_then(|n| u16::try_from(n).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every form of the shared table `tests/fixtures/ollama-host.txt` (the cases of
    /// Ollama's `TestHost`): empty, `:PORT`, host, host:port, schemes with and without
    /// port, a path, IPv6 with and without brackets, bad ports, quotes and spaces.
    #[test]
    fn ollama_host_follows_the_shared_table() {
        let cases = case_table("ollama-host.txt");
        for (line, input, expected) in &cases {
            assert_eq!(
                OllamaHost::parse(input).to_string(),
                *expected,
                "line {line}: {input:?}"
            );
        }
        assert_eq!(cases.len(), 23);
    }

    include!("../../../tests/fixtures/case_table.rs");

    fn url(value: &str) -> String {
        OllamaHost::parse(value).to_string()
    }

    #[test]
    fn empty_is_the_default() {
        assert_eq!(url(""), "http://127.0.0.1:11434");
    }

    #[test]
    fn only_a_port_means_every_interface() {
        assert_eq!(url(":1234"), "http://:1234");
    }

    #[test]
    fn a_host_gets_the_default_port() {
        assert_eq!(url("example.com"), "http://example.com:11434");
    }

    #[test]
    fn host_and_port() {
        assert_eq!(url("1.2.3.4:1234"), "http://1.2.3.4:1234");
    }

    #[test]
    fn a_scheme_without_port_takes_the_scheme_port() {
        assert_eq!(url("http://1.2.3.4"), "http://1.2.3.4:80");
        assert_eq!(url("https://1.2.3.4"), "https://1.2.3.4:443");
    }

    #[test]
    fn a_scheme_with_port() {
        assert_eq!(url("https://1.2.3.4:4321"), "https://1.2.3.4:4321");
    }

    #[test]
    fn a_path_is_kept() {
        assert_eq!(
            url("https://example.com/ollama"),
            "https://example.com:443/ollama"
        );
    }

    #[test]
    fn ipv6_in_brackets() {
        assert_eq!(url("[::1]:1337"), "http://[::1]:1337");
        assert_eq!(url("[::1]"), "http://[::1]:11434");
        assert_eq!(url("::1"), "http://[::1]:11434");
    }

    #[test]
    fn an_invalid_port_falls_back_to_the_default() {
        assert_eq!(url(":66000"), "http://:11434");
    }

    #[test]
    fn bind_addresses() {
        assert_eq!(OllamaHost::parse(":0").bind_address(), "0.0.0.0:0");
        assert_eq!(OllamaHost::parse("[::1]:80").bind_address(), "[::1]:80");
        assert_eq!(OllamaHost::parse("").bind_address(), "127.0.0.1:11434");
    }
}
