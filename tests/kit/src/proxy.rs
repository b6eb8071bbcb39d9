//! A loopback TCP proxy in front of the service that holds back a dispense request or its answer.

use std::sync::mpsc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy holds back of a dispense request; every other request passes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// Accepts the request and never forwards it: the service never sees it.
    Request,
    /// Forwards the request and withholds the service's answer.
    Answer,
}

/// A loopback TCP proxy in front of the service, run on its own tokio runtime: it passes every
/// request through but holds back a dispense (`POST …/dispense`) as `Hold` says, so a test can
/// kill the client while its dispense is unsent or applied but unacknowledged.
#[derive(Debug)]
pub struct Proxy {
    pub url: String,
    /// Receives once the held request arrived (`Hold::Request`) or the service answered it
    /// (`Hold::Answer`).
    pub held: mpsc::Receiver<()>,
    _runtime: tokio::runtime::Runtime,
}

impl Proxy {
    pub fn start(upstream: &str, hold: Hold) -> Self {
        let upstream = upstream
            .strip_prefix("http://")
            .expect("http url")
            .to_owned();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind the proxy");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let (tx, held) = mpsc::channel();
        runtime.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, upstream.clone(), hold, tx.clone()));
            }
        });
        Self {
            url,
            held,
            _runtime: runtime,
        }
    }
}

async fn relay(mut client: TcpStream, upstream: String, hold: Hold, held: mpsc::Sender<()>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match client.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let request_line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let request_line = String::from_utf8_lossy(request_line);
    let targeted = request_line.starts_with("POST ") && request_line.contains("/dispense ");
    if targeted && hold == Hold::Request {
        let _ = held.send(());
        // Keep the connection open and forward nothing until the client is gone.
        let _ = tokio::io::copy(&mut client, &mut tokio::io::sink()).await;
        return;
    }
    let Ok(mut server) = TcpStream::connect(&upstream).await else {
        return;
    };
    if server.write_all(&head).await.is_err() {
        return;
    }
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upload = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
    });
    if targeted {
        let mut first = [0u8; 1];
        if matches!(server_read.read(&mut first).await, Ok(1)) {
            let _ = held.send(());
        }
        // Swallow the answer; hold the client's side open until it goes away.
        let _ = tokio::io::copy(&mut server_read, &mut tokio::io::sink()).await;
        let _ = upload.await;
        drop(client_write);
    } else {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
        upload.abort();
    }
}
