//! The pharmacy client SIGKILLed while its dispense is (a) written to the outbox but not yet
//! delivered, (b) applied centrally but not yet acknowledged to it. A real TCP proxy between
//! client and service holds the request or the answer; the next `outbox sync` straight to the
//! service must deliver it exactly once, with the same idempotency key.

use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use diesel::prelude::*;
use prescrypt::store::schema::{dispense_notifications, idempotency_keys};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::harness::{PHARMACY, Pharmacy, Service, actions};

/// What the proxy holds back of a dispense request; every other request passes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hold {
    /// Accepts the request and never forwards it: the service never sees it.
    Request,
    /// Forwards the request and withholds the service's answer.
    Answer,
}

/// A loopback TCP proxy in front of the service, run on its own tokio runtime.
struct Proxy {
    url: String,
    /// Receives once the held request arrived (`Hold::Request`) or the service answered it
    /// (`Hold::Answer`).
    held: mpsc::Receiver<()>,
    _runtime: tokio::runtime::Runtime,
}

impl Proxy {
    fn start(upstream: &str, hold: Hold) -> Self {
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

fn dispense_events(service: &Service, id: &str) -> usize {
    actions(&service.history(id))
        .iter()
        .filter(|a| a.as_str() == "dispensed")
        .count()
}

fn outbox_entries(pharmacy: &Pharmacy) -> Vec<Value> {
    let list = pharmacy.run(&["outbox", "list", "--json"], "");
    assert_eq!(list.code, 0, "{list:?}");
    list.json()["entries"].as_array().cloned().expect("entries")
}

/// Rows in the service's database: (idempotency keys named `key` of the pharmacy, dispense
/// notifications of the prescription).
fn stored(database: &Path, key: &str, uuid: &str) -> (i64, i64) {
    let mut conn = SqliteConnection::establish(&database.display().to_string()).expect("open");
    let keys = idempotency_keys::table
        .filter(idempotency_keys::org.eq(PHARMACY))
        .filter(idempotency_keys::key.eq(key))
        .filter(idempotency_keys::response_status.eq(200))
        .count()
        .get_result(&mut conn)
        .expect("count keys");
    let notifications = dispense_notifications::table
        .filter(dispense_notifications::prescription_uuid.eq(uuid))
        .count()
        .get_result(&mut conn)
        .expect("count notifications");
    (keys, notifications)
}

/// One kill: a fresh prescription, released by scanning, dispensed through the proxy, the client
/// killed while the proxy holds it, then synced straight to the service.
fn kill_mid_dispense(service: &Service, pharmacy: &Pharmacy, hold: Hold) {
    let created = service.create(None);
    let id = created["id"].as_str().expect("id").to_owned();
    let uuid = created["uuid"].as_str().expect("uuid").to_owned();
    let token = created["token"].as_str().expect("token");
    let scan = pharmacy.run(&["scan", "--stdin"], &format!("{token}\n"));
    assert_eq!(scan.code, 0, "{scan:?}");

    let proxy = Proxy::start(&service.url, hold);
    let mut client = pharmacy
        .command()
        .env("PHARMACY_SERVER", &proxy.url)
        .args([
            "dispense",
            &id,
            "--item",
            "1=complete",
            "--item",
            "2=partial:10",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn pharmacy dispense");
    proxy
        .held
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("{hold:?}: the proxy never held the dispense"));
    client.kill().expect("SIGKILL the pharmacy client");
    let _ = client.wait();
    drop(proxy);

    // Killed before it could record anything: queued, never attempted as far as it knows.
    let entries: Vec<Value> = outbox_entries(pharmacy)
        .into_iter()
        .filter(|e| e["prescription_id"] == id.as_str())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["state"], "queued", "{entries:?}");
    assert_eq!(entries[0]["kind"], "dispense", "{entries:?}");
    let key = entries[0]["idempotency_key"]
        .as_str()
        .expect("key")
        .to_owned();
    let database = service.dir.path().join("prescrypt.db");
    let applied = usize::from(hold == Hold::Answer);
    assert_eq!(dispense_events(service, &id), applied, "{hold:?}");
    assert_eq!(
        service.central(&id)["status"]["code"],
        if applied == 1 { "0003" } else { "0002" }
    );

    // The client again, straight to the service: delivered once, with the same key.
    let sync = pharmacy.run(&["outbox", "sync", "--json"], "");
    assert_eq!(sync.code, 0, "{sync:?}");
    let report = sync.json()["report"].clone();
    let sent = report["sent"].as_array().expect("sent");
    assert_eq!(sent.len(), 1, "{report}");
    assert_eq!(sent[0]["idempotency_key"], key.as_str(), "{report}");
    assert_eq!(sent[0]["response"]["status"]["code"], "0003", "{report}");
    assert_eq!(sent[0]["response"]["items"][1]["dispensed_quantity"], 10.0);

    let central = service.central(&id);
    assert_eq!(central["status"]["code"], "0003", "{central}");
    assert_eq!(central["items"][0]["status"]["code"], "0001", "{central}");
    assert_eq!(central["items"][1]["dispensed_quantity"], 10.0, "{central}");
    assert_eq!(
        dispense_events(service, &id),
        1,
        "{:?}",
        service.history(&id)
    );
    assert_eq!(stored(&database, &key, &uuid), (1, 1), "{hold:?}");

    // Nothing left to send; a further sync changes nothing.
    assert!(
        outbox_entries(pharmacy)
            .iter()
            .all(|e| e["state"] == "sent"),
        "{:?}",
        outbox_entries(pharmacy)
    );
    let again = pharmacy.run(&["outbox", "sync", "--json"], "");
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(
        again.json()["report"]["sent"].as_array().map(Vec::len),
        Some(0)
    );
    assert_eq!(dispense_events(service, &id), 1);
}

#[test]
fn a_pharmacy_killed_mid_dispense_loses_nothing_and_duplicates_nothing() {
    let service = Service::start();
    let pharmacy = Pharmacy::login(&service, PHARMACY);
    for round in 0..6 {
        let hold = if round % 2 == 0 {
            Hold::Request
        } else {
            Hold::Answer
        };
        kill_mid_dispense(&service, &pharmacy, hold);
    }
    let entries = outbox_entries(&pharmacy);
    assert_eq!(entries.len(), 6, "{entries:?}");
    assert!(entries.iter().all(|e| e["state"] == "sent"), "{entries:?}");
}
