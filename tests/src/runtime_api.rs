//! A local Lambda Runtime API: runs a function binary exactly as Lambda
//! does (the binary polls `/runtime/invocation/next` and posts responses),
//! so tests, the demo and the benchmarks drive the real binaries.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::Value;
use tokio::process::{Child, Command};
use tokio::sync::{Mutex, mpsc, oneshot};

/// What the function answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// `/response`: the handler's JSON.
    Response(Value),
    /// `/error`: the error document (`errorType`, `errorMessage`).
    Error(Value),
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Option<mpsc::Receiver<(String, Value)>>>,
    waiting: Mutex<BTreeMap<String, oneshot::Sender<Outcome>>>,
    first_poll: Mutex<Option<oneshot::Sender<Instant>>>,
}

/// A function binary running under the local Runtime API.
pub struct LocalLambda {
    child: Child,
    /// Its stdout and stderr, read as they come: a pipe nobody reads fills
    /// at 64 KiB and blocks the function's next log line.
    output: [tokio::task::JoinHandle<Vec<u8>>; 2],
    shared: Arc<Shared>,
    sender: mpsc::Sender<(String, Value)>,
    next_id: u64,
    /// Time from spawning the process to its first poll for work.
    pub cold_start: Duration,
}

impl LocalLambda {
    /// Starts `binary` with `env` (plus the Runtime API variables), and
    /// waits for its first poll.
    pub async fn start(binary: &Path, env: &BTreeMap<String, String>) -> anyhow::Result<LocalLambda> {
        let (sender, receiver) = mpsc::channel(16);
        let (first_tx, first_rx) = oneshot::channel();
        let shared = Arc::new(Shared {
            queue: Mutex::new(Some(receiver)),
            waiting: Mutex::default(),
            first_poll: Mutex::new(Some(first_tx)),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            // Bodies up to twice Lambda's limit reach the handler, which
            // refuses those over it as Lambda does.
            .layer(axum::extract::DefaultBodyLimit::max(2 * RESPONSE_LIMIT))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let name = binary
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("function")
            .to_owned();
        let started = Instant::now();
        let mut child = Command::new(binary)
            .envs(env)
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", &name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let output = [
            drain(child.stdout.take().context("stdout is piped")?),
            drain(child.stderr.take().context("stderr is piped")?),
        ];
        let polled = tokio::time::timeout(Duration::from_secs(30), first_rx)
            .await
            .context("the function did not poll the Runtime API within 30 s")?
            .context("runtime API closed")?;
        Ok(LocalLambda {
            child,
            output,
            shared,
            sender,
            next_id: 0,
            cold_start: polled.duration_since(started),
        })
    }

    /// Invokes the function with `payload` and waits for its answer.
    pub async fn invoke(&mut self, payload: Value) -> anyhow::Result<Outcome> {
        self.next_id += 1;
        let id = format!("req-{:08}", self.next_id);
        let (tx, rx) = oneshot::channel();
        self.shared.waiting.lock().await.insert(id.clone(), tx);
        self.sender
            .send((id, payload))
            .await
            .context("runtime queue closed")?;
        match tokio::time::timeout(Duration::from_secs(120), rx).await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(_)) => bail!("the invocation was dropped"),
            Err(_) => bail!("no answer within 120 s"),
        }
    }

    /// Takes the function's stdout+stderr so far (its JSON logs), after
    /// stopping it.
    pub async fn stop(mut self) -> anyhow::Result<String> {
        let _ = self.child.start_kill();
        self.child.wait().await?;
        let [stdout, stderr] = self.output;
        let (stdout, stderr) = (stdout.await?, stderr.await?);
        Ok(format!(
            "{}{}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        ))
    }
}

/// Reads a child's pipe to its end in the background.
fn drain(mut pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static) -> tokio::task::JoinHandle<Vec<u8>> {
    tokio::spawn(async move {
        let mut bytes = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut pipe, &mut bytes).await;
        bytes
    })
}

async fn next(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    if let Some(first) = shared.first_poll.lock().await.take() {
        let _ = first.send(Instant::now());
    }
    let mut guard = shared.queue.lock().await;
    let Some(queue) = guard.as_mut() else {
        return (StatusCode::INTERNAL_SERVER_ERROR, HeaderMap::new(), String::new());
    };
    let Some((id, payload)) = queue.recv().await else {
        return (StatusCode::GONE, HeaderMap::new(), String::new());
    };
    let mut headers = HeaderMap::new();
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() + 120_000)
        .unwrap_or_default();
    for (k, v) in [
        ("lambda-runtime-aws-request-id", id.clone()),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:local".to_owned(),
        ),
        ("lambda-runtime-trace-id", format!("Root=1-00000000-{id}")),
    ] {
        if let Ok(v) = HeaderValue::from_str(&v) {
            headers.insert(k, v);
        }
    }
    (StatusCode::OK, headers, payload.to_string())
}

async fn finish(shared: &Shared, id: &str, outcome: Outcome) -> StatusCode {
    match shared.waiting.lock().await.remove(id) {
        Some(tx) => {
            let _ = tx.send(outcome);
            StatusCode::ACCEPTED
        }
        None => StatusCode::NOT_FOUND,
    }
}

/// Lambda's limit on the response of a synchronous invocation, as its
/// error message gives it ("exceeded maximum allowed payload size
/// (6291556 bytes)").
pub const RESPONSE_LIMIT: usize = 6_291_556;

async fn response(
    State(shared): State<Arc<Shared>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> (StatusCode, String) {
    if body.len() > RESPONSE_LIMIT {
        // As Lambda does: the runtime's post is refused, and the caller
        // gets the function's error instead of its answer.
        let message = format!(
            "Response payload size ({} bytes) exceeded maximum allowed payload size ({RESPONSE_LIMIT} bytes).",
            body.len()
        );
        let error =
            serde_json::json!({"errorType": "Function.ResponseSizeTooLarge", "errorMessage": message});
        finish(&shared, &id, Outcome::Error(error.clone())).await;
        return (StatusCode::PAYLOAD_TOO_LARGE, error.to_string());
    }
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (
        finish(&shared, &id, Outcome::Response(value)).await,
        String::new(),
    )
}

async fn error(State(shared): State<Arc<Shared>>, UrlPath(id): UrlPath<String>, body: Bytes) -> StatusCode {
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    finish(&shared, &id, Outcome::Error(value)).await
}

async fn init_error(body: Bytes) -> StatusCode {
    tracing::error!(body = %String::from_utf8_lossy(&body), "function init error");
    StatusCode::ACCEPTED
}

/// Path of a workspace binary built in the dev profile (`cargo build --bins`).
pub fn dev_binary(name: &str) -> std::path::PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| crate::emulator::workspace_root().join("target"));
    target.join("debug").join(name)
}
