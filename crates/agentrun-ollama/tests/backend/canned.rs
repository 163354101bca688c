//! A tiny HTTP server that answers every request with one scripted reply,
//! byte for byte: for wire details the simulator does not produce on demand
//! (a line cut in two, a character cut in two, a stall).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// One step of a scripted reply body.
#[derive(Debug, Clone)]
pub(crate) enum Piece {
    /// Bytes sent as one HTTP chunk.
    Bytes(Vec<u8>),
    /// Nothing sent for this long, so the client reads what came before on
    /// its own.
    Pause(Duration),
}

impl Piece {
    pub(crate) fn text(text: &str) -> Piece {
        Piece::Bytes(text.as_bytes().to_vec())
    }
}

/// How a scripted reply ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// The body ends properly.
    Complete,
    /// The connection is closed in the middle of the chunked body.
    Drop,
    /// The connection stays open and silent until the client closes it.
    Hang,
}

/// A scripted reply.
#[derive(Debug, Clone)]
pub(crate) struct Script {
    pub(crate) status: u16,
    pub(crate) pieces: Vec<Piece>,
    pub(crate) end: End,
}

impl Script {
    /// A streamed 200 reply of NDJSON pieces.
    pub(crate) fn stream(pieces: Vec<Piece>, end: End) -> Script {
        Script {
            status: 200,
            pieces,
            end,
        }
    }

    /// An error reply with Ollama's JSON body.
    pub(crate) fn error(status: u16, message: &str) -> Script {
        let body = serde_json::json!({ "error": message }).to_string();
        Script {
            status,
            pieces: vec![Piece::Bytes(body.into_bytes())],
            end: End::Complete,
        }
    }
}

/// A running canned server; stops when dropped.
pub(crate) struct Canned {
    pub(crate) url: String,
    /// Receives one message each time a client closes a connection that
    /// was left hanging.
    pub(crate) hung_up: mpsc::UnboundedReceiver<()>,
    task: JoinHandle<()>,
}

impl Drop for Canned {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a server on 127.0.0.1 that answers every request with `script`.
pub(crate) async fn serve(script: Script) -> Canned {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let url = format!("http://{}", listener.local_addr().expect("local address"));
    let (hung_up_sender, hung_up) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        // Connections outlive this task only until the test's runtime ends.
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(answer(socket, script.clone(), hung_up_sender.clone()));
        }
    });
    Canned { url, hung_up, task }
}

async fn answer(mut socket: TcpStream, script: Script, hung_up: mpsc::UnboundedSender<()>) {
    if read_request(&mut socket).await.is_none() {
        return;
    }
    let reason = match script.status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Other",
    };
    if script.status != 200 {
        let body: Vec<u8> = script
            .pieces
            .iter()
            .filter_map(|piece| match piece {
                Piece::Bytes(bytes) => Some(bytes.clone()),
                Piece::Pause(_) => None,
            })
            .flatten()
            .collect();
        let head = format!(
            "HTTP/1.1 {} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            script.status,
            body.len()
        );
        let _ = socket.write_all(head.as_bytes()).await;
        let _ = socket.write_all(&body).await;
        let _ = socket.shutdown().await;
        return;
    }
    let head = "HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n";
    if socket.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    for piece in &script.pieces {
        match piece {
            Piece::Bytes(bytes) => {
                let mut chunk = format!("{:x}\r\n", bytes.len()).into_bytes();
                chunk.extend_from_slice(bytes);
                chunk.extend_from_slice(b"\r\n");
                if socket.write_all(&chunk).await.is_err() || socket.flush().await.is_err() {
                    return;
                }
            }
            Piece::Pause(pause) => tokio::time::sleep(*pause).await,
        }
    }
    match script.end {
        End::Complete => {
            let _ = socket.write_all(b"0\r\n\r\n").await;
            let _ = socket.shutdown().await;
        }
        End::Drop => {}
        End::Hang => {
            let mut byte = [0u8; 1];
            while let Ok(1..) = socket.read(&mut byte).await {}
            let _ = hung_up.send(());
        }
    }
}

/// Reads one request (head and `content-length` body); `None` if the
/// client went away first.
async fn read_request(socket: &mut TcpStream) -> Option<Vec<u8>> {
    let mut request = Vec::new();
    let mut buffer = [0u8; 4096];
    let head_end = loop {
        let read = socket.read(&mut buffer).await.ok()?;
        if read == 0 {
            return None;
        }
        request.extend_from_slice(&buffer[..read]);
        if let Some(position) = request.windows(4).position(|window| window == b"\r\n\r\n") {
            break position + 4;
        }
    };
    let head = String::from_utf8_lossy(&request[..head_end]).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0);
    while request.len() < head_end + length {
        let read = socket.read(&mut buffer).await.ok()?;
        if read == 0 {
            return None;
        }
        request.extend_from_slice(&buffer[..read]);
    }
    Some(request)
}
