//! A local HTTP receiver for `--notify`: accepts POSTs on 127.0.0.1 and keeps their JSON bodies.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// A receiver running on a thread until the test ends.
pub struct Receiver {
    /// `http://127.0.0.1:PORT/hook/SECRET-PATH` (the path stands for a webhook's token).
    pub url: String,
    bodies: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl Receiver {
    /// Starts listening on a free port.
    pub fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook/T0KEN-in-the-path", listener.local_addr().unwrap());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let kept = bodies.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream);
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                if let (Ok(()), Ok(v)) =
                    (reader.read_exact(&mut body), serde_json::from_slice::<serde_json::Value>(&body))
                {
                    kept.lock().unwrap().push(v);
                }
                let _ = reader
                    .get_mut()
                    .write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            }
        });
        Receiver { url, bodies }
    }

    /// Every document received so far, in arrival order.
    pub fn received(&self) -> Vec<serde_json::Value> {
        self.bodies.lock().unwrap().clone()
    }

    /// The `event` of each document received so far.
    pub fn events(&self) -> Vec<String> {
        self.received().iter().map(|d| d["event"].as_str().unwrap_or("?").to_string()).collect()
    }
}

/// A URL nothing listens on: a receiver that is down.
pub fn dead_url() -> String {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    format!("http://127.0.0.1:{port}/down")
}
