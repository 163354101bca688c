//! How the backend reaches the server: its address, timeouts, and what can go wrong building it.

use std::net::IpAddr;
use std::time::Duration;

use reqwest::Url;

/// Ollama's port when an address names none (`OLLAMA_HOST=127.0.0.1` means port 11434).
const DEFAULT_PORT: u16 = 11434;

/// Timeouts of an [`OllamaBackend`](crate::OllamaBackend).
///
/// There is deliberately no `Default`: each limit is a decision about the
/// machine and the models. Suggested values for a local server:
///
/// ```
/// use std::time::Duration;
///
/// use agentrun_ollama::OllamaConfig;
///
/// let config = OllamaConfig {
///     connect_timeout: Duration::from_secs(2),
///     request_timeout: Duration::from_secs(30),
///     load_timeout: Duration::from_secs(30 * 60),
///     stream_timeout: Duration::from_secs(120),
/// };
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OllamaConfig {
    /// Longest wait to open a TCP connection to the server.
    pub connect_timeout: Duration,
    /// Longest wait for a call that never loads a model (`/api/version`,
    /// `/api/tags`, `/api/show`, `/api/ps`, unload) to be answered in full.
    pub request_timeout: Duration,
    /// Longest wait for the first byte of a reply to a call that may load a
    /// model: a preload, and a chat call up to its first chunk.
    ///
    /// Ollama serializes loads and sends nothing while one runs (queueing
    /// behind other loads and the prompt evaluation count too), and it aborts a
    /// load whose client disconnects, so this must cover the slowest load: a
    /// short value here would cancel loads in progress and make them start over.
    pub load_timeout: Duration,
    /// Longest silence allowed between two chunks of a chat reply once the
    /// first chunk has arrived.
    pub stream_timeout: Duration,
}

/// Why an [`OllamaBackend`](crate::OllamaBackend) could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The server address is not a usable URL.
    #[error("invalid Ollama server address '{url}': {reason}")]
    InvalidUrl {
        /// The address as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The HTTP client could not be created.
    #[error("cannot create the HTTP client: {reason}")]
    HttpClient {
        /// What the HTTP library said.
        reason: String,
    },
}

/// Turns a server address as users write it into the base URL of the API.
///
/// Reads it the way Ollama's own client reads `OLLAMA_HOST` (`envconfig.Host`
/// in Ollama's source, then the client's connectable address): surrounding
/// spaces and quotes are dropped; empty means `http://127.0.0.1:11434`; without
/// a scheme the address is plain HTTP on port 11434 unless it names a port;
/// `http://` and `https://` without a port mean 80 and 443; `:PORT` and the
/// unspecified addresses (`0.0.0.0`, `[::]`) mean this machine; an IPv6
/// address may come with or without brackets; anything after the first `/` is
/// a path prefix (a reverse proxy). A port that is not a number from 0 to
/// 65535 is replaced by the default, as Ollama does. The result ends with `/`,
/// so that endpoint paths join under the path prefix.
pub(crate) fn base_url(address: &str) -> Result<Url, SetupError> {
    let invalid = |reason: String| SetupError::InvalidUrl {
        url: address.to_owned(),
        reason,
    };
    let cleaned = address.trim().trim_matches(['"', '\'']).trim();
    let (scheme, rest, default_port) = match cleaned.split_once("://") {
        None if cleaned == "ollama.com" => ("https", "ollama.com:443", 443),
        None => ("http", cleaned, DEFAULT_PORT),
        Some((scheme, rest)) => match scheme.to_ascii_lowercase().as_str() {
            "http" => ("http", rest, 80),
            "https" => ("https", rest, 443),
            other => {
                return Err(invalid(format!(
                    "unsupported scheme '{other}', use http://"
                )));
            }
        },
    };
    let (host_port, path) = rest.split_once('/').unwrap_or((rest, ""));
    if host_port.contains('@') {
        return Err(invalid(
            "credentials in the address are not supported".to_owned(),
        ));
    }
    if path.contains(['?', '#']) || host_port.contains(['?', '#']) {
        return Err(invalid(
            "a server address takes no query or fragment".to_owned(),
        ));
    }
    let (host, port) = match split_host_port(host_port) {
        Some((host, port)) => {
            let port = port.parse::<u16>().unwrap_or_else(|_| {
                tracing::warn!(
                    address,
                    port,
                    default_port,
                    "invalid port, using the default"
                );
                default_port
            });
            (host.to_owned(), port)
        }
        None => {
            let unbracketed = host_port.trim_start_matches('[').trim_end_matches(']');
            let host = match unbracketed.parse::<IpAddr>() {
                Ok(ip) => ip.to_string(),
                Err(_) if host_port.is_empty() => String::new(),
                Err(_) => host_port.to_owned(),
            };
            (host, default_port)
        }
    };
    let host = connectable(&host);
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let path = path.trim_end_matches('/');
    let text = if path.is_empty() {
        format!("{scheme}://{authority}/")
    } else {
        format!("{scheme}://{authority}/{path}/")
    };
    Url::parse(&text).map_err(|error| invalid(error.to_string()))
}

/// Refuses what this build cannot speak: https needs a TLS stack it does not
/// carry (a local Ollama serves plain HTTP).
pub(crate) fn check_supported(url: &Url, address: &str) -> Result<(), SetupError> {
    if url.scheme() == "https" {
        return Err(SetupError::InvalidUrl {
            url: address.to_owned(),
            reason: "https is not supported by this build; Ollama serves plain http".to_owned(),
        });
    }
    Ok(())
}

/// Go's `net.SplitHostPort`: `host:port`, `[v6]:port`, `:port`; `None` when
/// the text has no port or is ambiguous (`::1`, `[::1]`, `example.com`).
fn split_host_port(host_port: &str) -> Option<(&str, &str)> {
    if let Some(after_bracket) = host_port.strip_prefix('[') {
        let (host, rest) = after_bracket.split_once(']')?;
        let port = rest.strip_prefix(':')?;
        return (!port.contains(':')).then_some((host, port));
    }
    let (host, port) = host_port.rsplit_once(':')?;
    (!host.contains(':')).then_some((host, port))
}

/// Where a client connects for a host name: an empty host and the unspecified
/// addresses (a server's "listen everywhere") mean this machine.
fn connectable(host: &str) -> String {
    match host.parse::<IpAddr>() {
        _ if host.is_empty() => "127.0.0.1".to_owned(),
        Ok(IpAddr::V4(ip)) if ip.is_unspecified() => "127.0.0.1".to_owned(),
        Ok(IpAddr::V6(ip)) if ip.is_unspecified() => "::1".to_owned(),
        Ok(ip) => ip.to_string(),
        Err(_) => host.to_owned(),
    }
}

/// Whether the server is on this machine's loopback interface.
pub(crate) fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let unbracketed = host.trim_start_matches('[').trim_end_matches(']');
    match unbracketed.parse::<IpAddr>() {
        Ok(address) => address.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

#[cfg(test)]
mod tests;
