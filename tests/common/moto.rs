//! moto's server on loopback, standing in for the AWS APIs: started per test on a free port,
//! killed when dropped. Clients get fake credentials and the endpoint; nothing leaves loopback.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::*;

pub struct Moto {
    child: Child,
    pub port: u16,
    pub url: String,
}

pub const REGION: &str = "us-east-1";

impl Moto {
    pub fn start() -> Moto {
        let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/moto_server");
        assert!(
            bin.exists(),
            "{} is missing: run bash tests/setup.sh",
            bin.display()
        );
        for attempt in 0..5 {
            let port = free_port();
            let mut child = Command::new(&bin)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start moto_server");
            let url = format!("http://127.0.0.1:{port}");
            let up = (0..200).any(|_| {
                if let Ok(Some(_)) = child.try_wait() {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(50));
                std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            });
            if up {
                let m = Moto { child, port, url };
                m.reset();
                return m;
            }
            let _ = child.kill();
            let _ = child.wait();
            assert!(attempt < 4, "moto_server did not start");
        }
        unreachable!()
    }

    /// POST /moto-api/reset: forget every resource.
    pub fn reset(&self) {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            s,
            "POST /moto-api/reset HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        assert!(
            out.starts_with("HTTP/1.1 200") || out.starts_with("HTTP/1.0 200"),
            "{out}"
        );
    }

    /// An SDK configuration for tests in this process.
    pub async fn sdk(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(REGION))
            .endpoint_url(&self.url)
            .credentials_provider(aws_sdk_rds::config::Credentials::new(
                "testing", "testing", None, None, "moto",
            ))
            .load()
            .await
    }

    /// The environment a pgcutover process needs to use this moto and nothing else.
    pub fn env(&self, c: &mut Command) {
        c.env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", REGION)
            .env("AWS_EC2_METADATA_DISABLED", "true");
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
