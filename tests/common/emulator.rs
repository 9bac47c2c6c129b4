//! S3 and Azure Blob emulators run on the host for a test: moto (S3) and Azurite (Azure Blob),
//! installed by scripts/testbed into MCU_CACHE.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::host_address;

/// Azurite's well-known development account key (public, in Microsoft's docs).
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

fn cache() -> String {
    std::env::var("MCU_CACHE").unwrap_or_else(|_| "/var/cache/mcu".into())
}

fn free_port(addr: &str) -> u16 {
    std::net::TcpListener::bind((addr, 0)).unwrap().local_addr().unwrap().port()
}

/// An emulator process listening on the host address containers reach ([`host_address`]),
/// stopped when dropped.
pub struct Emulator {
    child: Child,
    pub url: String,
}

impl Emulator {
    fn start(program: &str, args: &[&str], addr: &str, port: u16, path: &str) -> Emulator {
        let child = Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{program}: {e} (scripts/testbed installs the emulators)"));
        let start = Instant::now();
        while TcpStream::connect((addr, port)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(60), "{program} did not listen on {addr}:{port}");
            std::thread::sleep(Duration::from_millis(200));
        }
        Emulator { child, url: format!("http://{addr}:{port}{path}") }
    }

    pub fn moto() -> Emulator {
        Emulator::moto_at(&host_address())
    }

    /// moto on `addr` (the loopback for a test that needs no daemon).
    pub fn moto_at(addr: &str) -> Emulator {
        let addr = addr.to_string();
        let port = free_port(&addr);
        let p = port.to_string();
        Emulator::start(&format!("{}/venv/bin/moto_server", cache()), &["-H", &addr, "-p", &p], &addr, port, "")
    }

    pub fn azurite() -> Emulator {
        let addr = host_address();
        let port = free_port(&addr);
        let p = port.to_string();
        let args = [
            "--blobHost",
            &addr,
            "--blobPort",
            &p,
            "--inMemoryPersistence",
            "--loose",
            "--skipApiVersionCheck",
            "--disableTelemetry",
        ];
        Emulator::start(
            &format!("{}/azurite/node_modules/.bin/azurite-blob", cache()),
            &args,
            &addr,
            port,
            "/devstoreaccount1",
        )
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
