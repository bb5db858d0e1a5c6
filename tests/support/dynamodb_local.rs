//! A DynamoDB Local instance that one test owns, unlike the suite's shared in-memory one: it
//! keeps its data on disk (`-dbPath`) and listens on one fixed port, so the test can stop it
//! and start it again with the same data where its clients expect it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long DynamoDB Local may take to answer after it is started (it takes a few seconds
/// on a quiet machine; much longer on a busy one).
const START_TIMEOUT: Duration = Duration::from_secs(60);

pub struct OwnDynamoDbLocal {
    /// Java and the jar, from `scripts/dynamodb-local.sh command`.
    argv: Vec<String>,
    port: u16,
    data_dir: PathBuf,
    child: Option<Child>,
}

impl OwnDynamoDbLocal {
    /// Starts one on a free port, keeping its data in `data_dir`, and waits until it answers.
    /// Fails (never skips) when Java or the jar is missing.
    pub async fn start(data_dir: &Path) -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the workspace root");
        let script = root.join("scripts/dynamodb-local.sh");
        let output = Command::new(&script)
            .arg("command")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            output.status.success(),
            "DynamoDB Local cannot run here ({} command failed; run \
             `scripts/dynamodb-local.sh install`):\n{}",
            script.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        let argv: Vec<String> = String::from_utf8(output.stdout)
            .expect("the command line is UTF-8")
            .lines()
            .map(str::to_owned)
            .collect();
        assert!(argv.len() > 1, "an empty command line: {argv:?}");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let mut instance = Self {
            argv,
            port,
            data_dir: data_dir.to_owned(),
            child: None,
        };
        instance.resume().await;
        instance
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SIGTERM, and waits until it has exited (SIGKILL after 30 s). Not SIGKILL: on SIGKILL
    /// DynamoDB Local can lose a `TransactWriteItems` it has already answered 200 (seen once in
    /// four runs of 4 writers for 4 s, with no `orders` code involved), which DynamoDB itself
    /// never does; such a loss would be the emulator's, not the service's.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM DynamoDB Local failed");
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().expect("wait").is_none() {
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("DynamoDB Local did not stop within 30 s of SIGTERM");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL, for cleaning up: it gets no chance to flush or close anything.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port with the same data, and waits until it answers.
    pub async fn resume(&mut self) {
        assert!(self.child.is_none(), "DynamoDB Local is already running");
        let log_path = self.data_dir.join("dynamodb-local.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("open the DynamoDB Local log");
        // It writes dynamodb-local-metadata.json into its working directory.
        let mut child = Command::new(&self.argv[0])
            .args(&self.argv[1..])
            .arg("-dbPath")
            .arg(&self.data_dir)
            .args(["-port", &self.port.to_string()])
            .current_dir(&self.data_dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the log again"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start DynamoDB Local ({}): {e}", self.argv[0]));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("client");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                panic!(
                    "DynamoDB Local exited ({status}) before answering on port {}; its log:\n{}",
                    self.port,
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
            if answers(&http, &self.endpoint()).await {
                break;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "DynamoDB Local did not answer on port {} within {START_TIMEOUT:?}; its log:\n{}",
                    self.port,
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.child = Some(child);
    }
}

impl Drop for OwnDynamoDbLocal {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A well-formed `ListTables` gets a 200: the API works, not just the socket. DynamoDB Local
/// reads the key id and region of a SigV4 header but checks no signature.
async fn answers(http: &reqwest::Client, endpoint: &str) -> bool {
    http.post(endpoint)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", "DynamoDB_20120810.ListTables")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=local/20250101/us-east-1/dynamodb/aws4_request, \
             SignedHeaders=host, Signature=0",
        )
        .body("{}")
        .send()
        .await
        .is_ok_and(|response| response.status().is_success())
}
