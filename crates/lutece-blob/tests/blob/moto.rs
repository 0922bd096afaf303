//! moto's S3 server (a real S3 API, from PyPI) for tests: one per test on a free port of
//! 127.0.0.1, with an empty bucket. scripts/test installs moto; `LUTECE_SKIP_S3=1` skips the
//! tests that need it. Shared by lutece-blob's tests and the platform's end-to-end tests.

// Each of the two test crates that include this file uses part of it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The bucket every [`Moto`] starts with.
pub(crate) const BUCKET: &str = "lutece";

/// Runs moto's server on the port given as its argument, and exits when its standard input
/// closes: a test process killed before it could drop a [`Moto`] leaves no server behind.
const SERVE: &str = "import os, sys, threading
from moto.server import main
threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
main(['-H', '127.0.0.1', '-p', sys.argv[1]])";

/// moto's S3 server with an empty bucket [`BUCKET`], killed when dropped.
pub(crate) struct Moto {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Moto {
    /// Starts one; `None` when `LUTECE_SKIP_S3=1`. Fails when moto is not installed.
    pub(crate) fn start() -> Option<Moto> {
        if std::env::var_os("LUTECE_SKIP_S3").is_some_and(|v| v == "1") {
            eprintln!("LUTECE_SKIP_S3=1: S3 test skipped");
            return None;
        }
        let installed = Command::new("python3")
            .args(["-c", "import moto.server"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            installed,
            "moto's S3 server (python3 -c 'import moto.server') is not installed: run \
             scripts/test, which installs it (pip install 'moto[server]==5.1.22'), or set \
             LUTECE_SKIP_S3=1 to skip the S3 tests"
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        // Its log goes to a file: a pipe nobody reads would fill and stall it.
        let log = std::env::temp_dir().join(format!("lutece-blob-moto-{port}.log"));
        let child = Command::new("python3")
            .args(["-c", SERVE, &port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut moto = Moto { child, port, log };
        moto.wait_until_up();
        let created = moto.http("PUT", &format!("/{BUCKET}"));
        assert!(created.starts_with("HTTP/1.1 200"), "{created}");
        Some(moto)
    }

    pub(crate) fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn wait_until_up(&mut self) {
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            let exited = self.child.try_wait().unwrap();
            if exited.is_some() || started.elapsed() > Duration::from_secs(30) {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                panic!(
                    "moto did not start on port {} ({exited:?}):\n{log}",
                    self.port
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A bodiless request; the whole response. (object_store cannot create buckets nor list
    /// the uploads in progress.)
    pub(crate) fn http(&self, method: &str, target: &str) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            stream,
            "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\n\
             Connection: close\r\n\r\n",
            self.port
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    }

    /// The body of `GET target`, as bytes (an object's content need not be text).
    pub(crate) fn get(&self, target: &str) -> Vec<u8> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            stream,
            "GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.port
        )
        .unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        let start = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(response.len(), |p| p + 4);
        assert!(response.starts_with(b"HTTP/1.1 200"), "GET {target} failed");
        response.split_off(start)
    }

    /// The multipart uploads of the bucket begun and neither completed nor aborted.
    pub(crate) fn pending_uploads(&self) -> usize {
        self.http("GET", &format!("/{BUCKET}?uploads"))
            .matches("<UploadId>")
            .count()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}
