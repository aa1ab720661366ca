//! What the sidecar tests share: `idm serve` as a child process, a plain HTTP/1.1 client,
//! condition waits with a deadline.

#![allow(dead_code, unreachable_pub)] // each test file uses part of it

pub mod nginx;
pub mod peer;
pub mod redis;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `idm serve` running with the given flags; killed when dropped.
pub struct Sidecar {
    pub child: Child,
    pub addr: String,
}

impl Sidecar {
    /// Starts `idm serve ARGS --listen 127.0.0.1:0` and reads the address it prints.
    pub fn start(args: &[&str]) -> Sidecar {
        let mut command = Command::new(env!("CARGO_BIN_EXE_idm"));
        command.arg("serve").args(args).args(["--listen", "127.0.0.1:0"]).stderr(Stdio::inherit());
        Sidecar::spawn(command)
    }

    /// Starts `command` (an `idm serve` that listens on a free port, perhaps under a shell
    /// wrapper) with its standard output piped, and reads the address it prints.
    pub fn spawn(mut command: Command) -> Sidecar {
        let mut child = command.stdout(Stdio::piped()).spawn().expect("start idm serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read the address");
        let addr = line
            .trim()
            .strip_prefix("idm serve: listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Sidecar { child, addr }
    }

    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        request(&self.addr, "GET", path, headers)
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status =
            Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("kill");
        assert!(status.success());
    }

    /// Waits (bounded) for the process to exit and returns its code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        until("idm serve exits", Duration::from_secs(30), || self.child.try_wait().ok().flatten().is_some());
        self.child.wait().ok().and_then(|s| s.code())
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The testkit provider on its own runtime (kept alive with it).
pub struct Provider {
    pub provider: identity_model_testkit::TestProvider,
    _runtime: tokio::runtime::Runtime,
}

/// The testkit provider on `port` (0: a free one).
pub fn provider_on(port: u16) -> Provider {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let provider = runtime
        .block_on(identity_model_testkit::TestProvider::builder().port(port).start())
        .expect("the provider starts");
    Provider { provider, _runtime: runtime }
}

/// A provider that is down: its port held by a listener that closes every connection at once
/// (so no other test can take the port while the provider is "down"), until [`Down::revive`]
/// starts the real provider there.
pub struct Down {
    pub port: u16,
    listener: Option<std::net::TcpListener>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Down {
    pub fn new() -> Down {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("an address").port();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let accepting = listener.try_clone().expect("clone the listener");
        let flag = std::sync::Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            for stream in accepting.incoming() {
                if flag.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                drop(stream); // closed without an answer: a transport error for the client
            }
        });
        Down { port, listener: Some(listener), stop, thread: Some(thread) }
    }

    /// Releases the port and starts the provider on it at once.
    pub fn revive(mut self) -> Provider {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port)); // wakes the accept loop
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        drop(self.listener.take());
        provider_on(self.port)
    }
}

/// A configuration file, removed when dropped.
pub struct ConfigFile(pub std::path::PathBuf);

impl ConfigFile {
    pub fn arg(&self) -> &str {
        self.0.to_str().expect("a UTF-8 temporary path")
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `idm serve --config` for `provider` with issue 18's rules: `/admin` needs scope `admin`,
/// `/public` is anonymous, `/orders` POST and DELETE need `orders:write`. `top` is put before
/// the tables (`proxy = "caddy"`), `tail` after them (`[claims]`).
pub fn rules_config(provider: &identity_model_testkit::TestProvider, top: &str, tail: &str) -> ConfigFile {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let path = std::env::temp_dir().join(format!(
        "idm-serve-rules-{}-{}.toml",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let text = format!(
        "{top}\n\n[[issuer]]\nissuer = \"{}\"\naudience = \"{}\"\nallow_http = true\n\n\
         [[route]]\nprefix = \"/admin\"\nscopes = [\"admin\"]\n\n\
         [[route]]\nprefix = \"/public\"\nanonymous = true\n\n\
         [[route]]\nprefix = \"/orders\"\nmethods = [\"POST\", \"DELETE\"]\nscopes = [\"orders:write\"]\n\n{tail}\n",
        provider.issuer(),
        provider.default_audience()
    );
    std::fs::write(&path, text).expect("write the configuration");
    ConfigFile(path)
}

/// A configuration file: `text`, then one `[[issuer]]` for `provider` (its default audience,
/// HTTP allowed).
pub fn issuer_config(provider: &identity_model_testkit::TestProvider, text: &str) -> ConfigFile {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let path = std::env::temp_dir().join(format!(
        "idm-serve-config-{}-{}.toml",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let issuer = format!(
        "[[issuer]]\nissuer = \"{}\"\naudience = \"{}\"\nallow_http = true\n",
        provider.issuer(),
        provider.default_audience()
    );
    std::fs::write(&path, format!("{text}\n\n{issuer}")).expect("write the configuration");
    ConfigFile(path)
}

/// `idm serve --config FILE` refusing to start: asserts exit 2 and returns its standard error.
pub fn config_problems(file: &ConfigFile) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_idm"))
        .args(["serve", "--config", file.arg()])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `idm serve` trusting `provider` (its default audience, HTTP allowed), plus `extra` flags.
pub fn sidecar_for(provider: &identity_model_testkit::TestProvider, extra: &[&str]) -> Sidecar {
    let mut args =
        vec!["--issuer", provider.issuer(), "--audience", provider.default_audience(), "--allow-http"];
    args.extend_from_slice(extra);
    Sidecar::start(&args)
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// One request on its own connection (`Connection: close`), read to the end. `Host` is the
/// address unless `headers` name one.
pub fn request(addr: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    send(addr, method, path, headers, "")
}

/// A form POST (`application/x-www-form-urlencoded`) on its own connection.
pub fn post_form(addr: &str, path: &str, headers: &[(&str, &str)], form: &str) -> Reply {
    let length = form.len().to_string();
    let mut all =
        vec![("Content-Type", "application/x-www-form-urlencoded"), ("Content-Length", length.as_str())];
    all.extend_from_slice(headers);
    send(addr, "POST", path, &all, form)
}

fn send(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let mut text = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("host")) {
        text.push_str(&format!("Host: {addr}\r\n"));
    }
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(body);
    stream.write_all(text.as_bytes()).expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read the answer");
    parse(&raw)
}

fn parse(raw: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect::<Vec<_>>();
    let chunked = headers.iter().any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked { dechunk(body) } else { body.to_owned() };
    Reply { status, headers, body }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Waits until `condition` holds, checking every 20 ms; panics after `deadline`.
pub fn until(what: &str, deadline: Duration, condition: impl FnMut() -> bool) {
    assert!(within(deadline, condition), "timed out waiting for: {what}");
}

/// Whether `condition` came to hold within `deadline` (checked every 20 ms).
pub fn within(deadline: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while !condition() {
        if start.elapsed() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// A free port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a port")
}

/// How many reloads with `outcome` (`success`, `failure`) the sidecar has counted.
pub fn reloads(sidecar: &Sidecar, outcome: &str) -> f64 {
    let text = sidecar.get("/metrics", &[]).body;
    metric(&text, &format!(r#"idm_serve_config_reloads_total{{outcome="{outcome}"}}"#)).unwrap_or(0.0)
}

/// The value of a metric line (`name{labels} value`) whose text starts with `prefix`.
pub fn metric(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}
