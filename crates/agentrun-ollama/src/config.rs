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
/// Accepts what `OLLAMA_HOST` accepts: `http://host:port`, and `host` or
/// `host:port` without a scheme, which mean plain HTTP on port 11434 unless a
/// port is given. The result ends with `/`, so that endpoint paths join under
/// any path prefix of a reverse proxy.
pub(crate) fn base_url(address: &str) -> Result<Url, SetupError> {
    let invalid = |reason: String| SetupError::InvalidUrl {
        url: address.to_owned(),
        reason,
    };
    let trimmed = address.trim();
    if trimmed.is_empty() {
        return Err(invalid("the address is empty".to_owned()));
    }
    let has_scheme = trimmed.contains("://");
    let with_scheme = if has_scheme {
        trimmed.to_owned()
    } else {
        format!("http://{trimmed}")
    };
    let mut url = Url::parse(&with_scheme).map_err(|error| invalid(error.to_string()))?;
    match url.scheme() {
        "http" => {}
        "https" => {
            return Err(invalid(
                "https is not supported by this build; Ollama serves plain http".to_owned(),
            ));
        }
        other => {
            return Err(invalid(format!(
                "unsupported scheme '{other}', use http://"
            )));
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("no host name".to_owned()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(
            "a server address takes no query or fragment".to_owned(),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "credentials in the address are not supported".to_owned(),
        ));
    }
    if !has_scheme && !names_port(trimmed) {
        url.set_port(Some(DEFAULT_PORT))
            .map_err(|()| invalid("this address cannot carry a port".to_owned()))?;
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
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

/// Whether an address without a scheme names a port (`host:80`, `[::1]:80`).
///
/// Asked of the text, not of the parsed URL, because the URL forgets a port
/// equal to the scheme's default.
fn names_port(address_without_scheme: &str) -> bool {
    let authority = address_without_scheme
        .split('/')
        .next()
        .unwrap_or(address_without_scheme);
    match authority.rsplit_once(']') {
        Some((_, after_ipv6)) => after_ipv6.starts_with(':'),
        None => authority.contains(':'),
    }
}

#[cfg(test)]
mod tests;
