//! Real proxies in front of the sidecar (Debian's nginx and caddy): README's snippets, an
//! upstream that reports what reached it, and a process-group guard so that no process of a
//! peer survives its test.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process_group};

use super::{until, within};

/// README.md's block between `<!-- snippet: NAME -->` and `<!-- end snippet -->`, without the
/// code fence.
pub fn readme_snippet(name: &str) -> String {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
        .expect("README.md");
    let start =
        readme.find(&format!("<!-- snippet: {name} -->")).unwrap_or_else(|| panic!("no {name} snippet"));
    let rest = &readme[start..];
    let end = rest.find("<!-- end snippet -->").expect("the snippet's end");
    let block = &rest[..end];
    let body = &block[block.find("```").expect("a fence")..];
    let body = &body[body.find('\n').expect("a fence line") + 1..];
    body[..body.rfind("```").expect("the closing fence")].to_owned()
}

/// A binary of Debian's: `$env` if set, else the first of `paths` that exists.
pub fn binary(env: &str, paths: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        return Some(PathBuf::from(path));
    }
    paths.iter().map(PathBuf::from).find(|p| p.exists())
}

/// `None` after printing a loud skip when `binary` is missing outside CI; a panic under CI.
pub fn required(name: &str, binary: Option<PathBuf>, install: &str) -> Option<PathBuf> {
    if binary.is_none() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{name} is required under CI (scripts/test installs {install})");
        }
        eprintln!("\n*** SKIPPED: {name} not found (apt-get install {install}) ***\n");
    }
    binary
}

/// An upstream that answers 200 with `upstream saw USER`, USER being the
/// `X-Auth-Request-User` it was sent (`-` when none came; every value when several did).
pub fn upstream() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the upstream");
    let addr = listener.local_addr().expect("its address").to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let Ok(read_half) = stream.try_clone() else { return };
                let mut reader = BufReader::new(read_half);
                let mut users: Vec<String> = Vec::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':') {
                        if name.eq_ignore_ascii_case("x-auth-request-user") {
                            users.push(value.trim().to_owned());
                        }
                    }
                }
                let user = if users.is_empty() { "-".to_owned() } else { users.join("|") };
                let body = format!("upstream saw {user}");
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    addr
}

/// A peer started in its own process group: stopped with SIGTERM, then SIGKILL to the whole
/// group, and checked to have left no process behind.
pub struct Peer {
    pub child: Child,
    pub addr: String,
    pub dir: PathBuf,
    stopped: bool,
}

impl Peer {
    /// Spawns `command` in a new process group and waits until `addr` accepts connections.
    pub fn spawn(name: &str, mut command: Command, addr: String, dir: PathBuf) -> Peer {
        command.process_group(0);
        let child = command.spawn().unwrap_or_else(|e| panic!("start {name}: {e}"));
        let mut peer = Peer { child, addr, dir, stopped: false };
        until(&format!("{name} accepts connections"), Duration::from_secs(30), || {
            assert!(peer.child.try_wait().expect("its status").is_none(), "{name} exited: see its log above");
            std::net::TcpStream::connect(&peer.addr).is_ok()
        });
        peer
    }

    /// The processes of this peer's group still alive (zombies excluded).
    pub fn survivors(&self) -> Vec<u32> {
        group_members(self.child.id())
    }

    /// Stops the peer: SIGTERM to the group, a bounded wait, SIGKILL to whatever is left; then
    /// asserts that no process of the group survives.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let group = Pid::from_raw(self.child.id() as i32).expect("a pid");
        let _ = kill_process_group(group, Signal::TERM);
        let _ = self.child.wait();
        let id = self.child.id();
        if !within(Duration::from_secs(5), || group_members(id).is_empty()) {
            let _ = kill_process_group(group, Signal::KILL);
        }
        until("no process of the peer survives", Duration::from_secs(10), || {
            group_members(self.child.id()).is_empty()
        });
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if !self.stopped {
            let _ = kill_process_group(Pid::from_raw(self.child.id() as i32).expect("a pid"), Signal::KILL);
            let _ = self.child.wait();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Live (not zombie) processes whose process group is `pgid`, read from `/proc`.
pub fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
            // pid (comm) state ppid pgrp ...: comm may hold spaces, so split after the ')'.
            let Some((_, rest)) = stat.rsplit_once(')') else { return false };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            fields.first() != Some(&"Z") && fields.get(2).and_then(|g| g.parse::<u32>().ok()) == Some(pgid)
        })
        .collect()
}
