//! Debian's nginx (`nginx-light`) in its own process group, serving a `server` block (README's,
//! with its addresses replaced) on a free port.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::free_port;
use super::peer::{Peer, binary};

pub fn nginx_binary() -> Option<PathBuf> {
    binary("IDM_NGINX", &["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"])
}

/// nginx running `http` (blocks inside `http { }`, whose `listen 127.0.0.1:8080` is moved to a
/// free port), with `connections` per worker.
pub fn start(binary: &Path, http: &str, connections: usize) -> Peer {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let dir = std::env::temp_dir().join(format!("idm-nginx-{}-{port}", std::process::id()));
    std::fs::create_dir_all(dir.join("logs")).expect("nginx dir");
    let http = http.replace("127.0.0.1:8080", &addr);
    let conf = format!(
        "daemon off;\nworker_processes 1;\nworker_rlimit_nofile {files};\npid {dir}/nginx.pid;\n\
         error_log {dir}/logs/error.log warn;\nevents {{ worker_connections {connections}; }}\nhttp {{\n  \
         access_log off;\n  client_body_temp_path {dir}/body;\n  proxy_temp_path {dir}/proxy;\n  \
         fastcgi_temp_path {dir}/fastcgi;\n  uwsgi_temp_path {dir}/uwsgi;\n  scgi_temp_path {dir}/scgi;\n\
         {http}\n}}\n",
        files = connections * 2 + 64,
        dir = dir.display()
    );
    std::fs::write(dir.join("nginx.conf"), conf).expect("nginx.conf");
    let mut command = Command::new(binary);
    command
        .arg("-p")
        .arg(&dir)
        .arg("-e")
        .arg(dir.join("logs/error.log"))
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    Peer::spawn("nginx", command, addr, dir)
}
