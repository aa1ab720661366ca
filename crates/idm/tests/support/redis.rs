//! Debian's `redis-server` on a free loopback port, without persistence, in its own process
//! group (a [`Peer`]): stopped by PID, frozen and thawed with SIGSTOP/SIGCONT, killed and
//! restarted on the same port.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use rustix::process::{Pid, Signal, kill_process};

use super::free_port;
use super::peer::{Peer, binary, required};

pub struct RedisServer {
    pub peer: Option<Peer>,
    pub port: u16,
    binary: PathBuf,
    extra: Vec<String>,
    tls: bool,
}

/// `redis-server`, or `None` after a loud skip (a panic under CI).
pub fn redis_binary() -> Option<PathBuf> {
    required("redis-server", binary("IDM_REDIS_SERVER", &["/usr/bin/redis-server"]), "redis-server")
}

impl RedisServer {
    /// Starts redis-server with `extra` arguments (`--maxmemory-policy allkeys-lru`, ...).
    pub fn start(binary: PathBuf, extra: &[&str]) -> RedisServer {
        let extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        let port = free_port();
        let peer = spawn(&binary, port, &extra);
        RedisServer { peer: Some(peer), port, binary, extra, tls: false }
    }

    /// Starts redis-server speaking only TLS, with this certificate and key (PEM files).
    pub fn start_tls(binary: PathBuf, cert: &std::path::Path, key: &std::path::Path) -> RedisServer {
        let port = free_port();
        let extra: Vec<String> = vec![
            "--port".into(),
            "0".into(),
            "--tls-port".into(),
            port.to_string(),
            "--tls-cert-file".into(),
            cert.display().to_string(),
            "--tls-key-file".into(),
            key.display().to_string(),
            "--tls-auth-clients".into(),
            "no".into(),
        ];
        let peer = spawn(&binary, port, &extra);
        RedisServer { peer: Some(peer), port, binary, extra, tls: true }
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}/", self.port)
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.peer.as_ref().expect("running").child.id() as i32).expect("a pid")
    }

    /// SIGSTOP: connections stay open, nothing is answered.
    pub fn freeze(&self) {
        kill_process(self.pid(), Signal::STOP).expect("SIGSTOP");
    }

    pub fn thaw(&self) {
        kill_process(self.pid(), Signal::CONT).expect("SIGCONT");
    }

    /// SIGKILL (even while frozen), then a new redis-server on the same port.
    pub fn kill_and_restart(&mut self) {
        let _ = kill_process(self.pid(), Signal::KILL);
        if let Some(mut peer) = self.peer.take() {
            peer.stop();
        }
        self.peer = Some(spawn(&self.binary, self.port, &self.extra));
    }

    /// `redis-cli` against this server.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

fn spawn(binary: &PathBuf, port: u16, extra: &[String]) -> Peer {
    let dir = std::env::temp_dir().join(format!("idm-redis-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("redis dir");
    let mut command = Command::new(binary);
    command
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(&dir)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    Peer::spawn("redis-server", command, format!("127.0.0.1:{port}"), dir)
}
