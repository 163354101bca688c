//! A replay server: answers each request with a response a real Ollama server
//! once sent, read from `tests/fixtures/ollama-real/`, and keeps the requests.
//!
//! Plain threads and blocking sockets, so both the backend's tests and the
//! end-to-end tests of the binary can use it (the latter include this file).
//! A streamed chat reply goes out as NDJSON, one JSON document per line as a
//! server streams it: a body the source printed over several lines (through
//! `jq`, or a reply recorded with `stream: false`) is sent one document per
//! line, its text otherwise unchanged. Every other body goes out byte for byte.

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// The directory of the recorded responses.
pub fn fixtures_dir() -> PathBuf {
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    loop {
        let candidate = dir.join("tests/fixtures/ollama-real");
        if candidate.is_dir() {
            return candidate;
        }
        assert!(
            dir.pop(),
            "tests/fixtures/ollama-real not found above the crate"
        );
    }
}

/// One row of the fixtures' index (`README.md`).
#[derive(Debug, Clone)]
pub struct Fixture {
    /// The file's name.
    pub file: String,
    /// The request it answered, `POST /api/chat`.
    pub request: String,
    /// The HTTP status it came with.
    pub status: u16,
    /// The server's version, as the source gives it.
    pub version: String,
    /// Where it was copied from.
    pub source: String,
}

impl Fixture {
    /// The recorded body.
    pub fn body(&self) -> Vec<u8> {
        std::fs::read(fixtures_dir().join(&self.file))
            .unwrap_or_else(|error| panic!("cannot read {}: {error}", self.file))
    }
}

/// Every fixture the index lists.
pub fn index() -> Vec<Fixture> {
    let readme = std::fs::read_to_string(fixtures_dir().join("README.md")).expect("the index");
    readme
        .lines()
        .filter(|line| line.starts_with("| ") && !line.starts_with("| file "))
        .map(|line| {
            let cells: Vec<String> = line
                .trim_matches('|')
                .split(" | ")
                .map(|cell| cell.trim().to_owned())
                .collect();
            assert!(cells.len() >= 5, "an index row with too few cells: {line}");
            Fixture {
                file: cells[0].clone(),
                request: cells[1].clone(),
                status: cells[2]
                    .parse()
                    .unwrap_or_else(|_| panic!("a status in {line}")),
                version: cells[3].clone(),
                source: cells[4].clone(),
            }
        })
        .collect()
}

/// The index row of one file.
pub fn fixture(file: &str) -> Fixture {
    index()
        .into_iter()
        .find(|fixture| fixture.file == file)
        .unwrap_or_else(|| panic!("{file} is not in the fixtures' index"))
}

/// A reply the server gives.
#[derive(Debug, Clone)]
pub struct Reply {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
}

impl Reply {
    /// A recorded reply sent as it was recorded.
    pub fn recorded(file: &str) -> Reply {
        let fixture = fixture(file);
        Reply {
            status: fixture.status,
            content_type: "application/json; charset=utf-8",
            body: fixture.body(),
        }
    }

    /// A body that was not recorded (a benchmark's), sent as given.
    pub fn bytes(status: u16, body: Vec<u8>) -> Reply {
        Reply {
            status,
            content_type: "application/json; charset=utf-8",
            body,
        }
    }

    /// A recorded chat reply sent as a stream: one JSON document per line.
    pub fn streamed(file: &str) -> Reply {
        let fixture = fixture(file);
        let body = fixture.body();
        let mut lines = Vec::new();
        for document in serde_json::Deserializer::from_slice(&body).into_iter::<serde_json::Value>()
        {
            let document = document.unwrap_or_else(|error| panic!("{file}: {error}"));
            lines.extend_from_slice(document.to_string().as_bytes());
            lines.push(b'\n');
        }
        Reply {
            status: fixture.status,
            content_type: "application/x-ndjson",
            body: lines,
        }
    }
}

/// A request the server received.
#[derive(Debug, Clone)]
pub struct Received {
    /// `POST /api/chat`.
    pub request: String,
    /// The body, as JSON (`null` when there was none).
    pub body: serde_json::Value,
}

/// A running replay server; stops when dropped.
pub struct ReplayServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

type Routes = BTreeMap<String, VecDeque<Reply>>;

impl ReplayServer {
    /// Serves `routes`: each request (`GET /api/ps`) gets the next of its replies,
    /// and the last one again once they run out; a request with no route gets
    /// Ollama's 404.
    pub fn start(routes: Vec<(&str, Reply)>) -> ReplayServer {
        let mut table: Routes = BTreeMap::new();
        for (request, reply) in routes {
            table
                .entry(request.to_owned())
                .or_default()
                .push_back(reply);
        }
        let table = Arc::new(Mutex::new(table));
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let url = format!("http://{}", listener.local_addr().expect("an address"));
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let received = received.clone();
            let stop = stop.clone();
            move || {
                for socket in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(socket) = socket else { continue };
                    let table = table.clone();
                    let received = received.clone();
                    std::thread::spawn(move || answer(socket, &table, &received));
                }
            }
        });
        ReplayServer {
            url,
            received,
            stop,
            thread: Some(thread),
        }
    }

    /// The requests received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    /// The requests received for one route (`POST /api/chat`).
    pub fn received_for(&self, request: &str) -> Vec<serde_json::Value> {
        self.received()
            .into_iter()
            .filter(|received| received.request == request)
            .map(|received| received.body)
            .collect()
    }
}

impl Drop for ReplayServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn answer(socket: TcpStream, table: &Mutex<Routes>, received: &Mutex<Vec<Received>>) {
    let mut reader = BufReader::new(socket.try_clone().expect("a socket clone"));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = request_line.split_whitespace();
    let request = format!(
        "{} {}",
        parts.next().unwrap_or(""),
        parts.next().unwrap_or("")
    );
    let mut length = 0;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 {
            return;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    received.lock().expect("lock").push(Received {
        request: request.clone(),
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    });
    let reply = {
        let mut table = table.lock().expect("lock");
        match table.get_mut(&request) {
            Some(replies) if replies.len() > 1 => replies.pop_front(),
            Some(replies) => replies.front().cloned(),
            None => None,
        }
    };
    let reply = reply.unwrap_or(Reply {
        status: 404,
        content_type: "text/plain",
        body: b"404 page not found".to_vec(),
    });
    let head = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        reply.status,
        reason(reply.status),
        reply.content_type,
        reply.body.len()
    );
    let mut socket = socket;
    let _ = socket.write_all(head.as_bytes());
    let _ = socket.write_all(&reply.body);
    let _ = socket.flush();
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Other",
    }
}
