//! A tiny echo service that answers with the name of the pod it runs in, so a reply proves
//! which endpoint answered (pod IPs repeat across VPCs), and its client.
//!
//! Server (`lab serve POD` starts it inside the pod): TCP and UDP on `port` answer
//! `NAME\n`; HTTP on `port+1` answers `200` with body `NAME\n`; on `port+2` a bulk TCP sink
//! reads a length-prefixed stream and answers `NAME LEN FNV64`, so a long transfer's
//! checksum can be compared end to end. Client: `lab probe tcp|udp|http|bulk ADDR`.

use std::io::{BufRead as _, BufReader, Read, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

use crate::error::{Error, Result};

/// Default base port.
pub const PORT: u16 = 7777;

/// FNV-1a 64 over a stream, for transfer checksums.
#[derive(Clone, Copy, Debug)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    /// Absorbs bytes.
    pub fn update(&mut self, b: &[u8]) {
        for x in b {
            self.0 = (self.0 ^ u64::from(*x)).wrapping_mul(0x100_0000_01b3);
        }
    }

    /// The digest.
    pub fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

/// Deterministic payload bytes (xorshift64 stream).
pub fn payload(seed: u64, buf: &mut [u8]) -> u64 {
    let mut s = seed | 1;
    for chunk in buf.chunks_mut(8) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let b = s.to_le_bytes();
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
    s
}

fn io(what: &'static str, addr: impl ToString) -> impl FnOnce(std::io::Error) -> Error {
    let a = addr.to_string();
    move |e| Error::io(what, a, e)
}

/// `IP` or `IP:PORT` (default port [`PORT`]).
///
/// # Errors
/// [`Error::Usage`].
pub fn parse_addr(s: &str) -> Result<SocketAddr> {
    if let Ok(a) = s.parse() {
        return Ok(a);
    }
    s.parse::<std::net::IpAddr>()
        .map(|ip| SocketAddr::new(ip, PORT))
        .map_err(|_| Error::Usage(format!("{s:?} is not IP or IP:PORT")))
}

/// Runs the server until killed, touching `ready` once its sockets are bound.
///
/// # Errors
/// Binding failures.
pub fn serve_until_killed(name: &str, port: u16, ready: Option<&std::path::Path>) -> Result<()> {
    serve(name, port, ready)
}

fn serve(name: &str, port: u16, ready: Option<&std::path::Path>) -> Result<()> {
    let any = |p: u16| SocketAddr::from(([0, 0, 0, 0], p));
    let tcp = TcpListener::bind(any(port)).map_err(io("binding", any(port)))?;
    let udp = UdpSocket::bind(any(port)).map_err(io("binding", any(port)))?;
    let http = TcpListener::bind(any(port + 1)).map_err(io("binding", any(port + 1)))?;
    let bulk = TcpListener::bind(any(port + 2)).map_err(io("binding", any(port + 2)))?;
    if let Some(f) = ready {
        std::fs::write(f, b"ready").map_err(|e| Error::io("writing", f, e))?;
    }
    let reply = format!("{name}\n");
    let r = reply.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((_, from)) = udp.recv_from(&mut buf) {
            let _ = udp.send_to(r.as_bytes(), from);
        }
    });
    let r = reply.clone();
    std::thread::spawn(move || {
        for s in http.incoming().flatten() {
            let r = r.clone();
            std::thread::spawn(move || {
                let mut rd = BufReader::new(&s);
                let mut line = String::new();
                while rd.read_line(&mut line).map(|n| n > 0).unwrap_or(false) && line != "\r\n" {
                    line.clear();
                }
                let mut s = &s;
                let _ = write!(
                    s,
                    "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{r}",
                    r.len()
                );
            });
        }
    });
    let n = name.to_string();
    std::thread::spawn(move || {
        for s in bulk.incoming().flatten() {
            let n = n.clone();
            std::thread::spawn(move || sink(&n, s));
        }
    });
    for s in tcp.incoming().flatten() {
        let mut s = s;
        let _ = s.write_all(reply.as_bytes());
    }
    Ok(())
}

fn sink(name: &str, mut s: TcpStream) {
    let mut len = [0u8; 8];
    if s.read_exact(&mut len).is_err() {
        return;
    }
    let mut left = u64::from_le_bytes(len);
    let total = left;
    let mut h = Fnv::default();
    let mut buf = vec![0u8; 64 * 1024];
    while left > 0 {
        let want = buf.len().min(left as usize);
        match s.read(&mut buf[..want]) {
            Ok(0) | Err(_) => break,
            Ok(k) => {
                h.update(&buf[..k]);
                left -= k as u64;
            }
        }
    }
    let _ = writeln!(s, "{name} {} {}", total - left, h.hex());
}

/// One probe; returns the server's answer (its pod name, or `NAME LEN HASH` for bulk).
///
/// # Errors
/// Connection failures and timeouts, as [`Error::Io`].
pub fn probe(proto: &str, addr: SocketAddr, timeout: Duration, bytes: u64) -> Result<String> {
    match proto {
        "tcp" => {
            let mut s =
                TcpStream::connect_timeout(&addr, timeout).map_err(io("connecting to", addr))?;
            s.set_read_timeout(Some(timeout))
                .map_err(io("reading from", addr))?;
            let mut out = String::new();
            s.read_to_string(&mut out)
                .map_err(io("reading from", addr))?;
            Ok(out.trim().to_string())
        }
        "udp" => {
            let u = UdpSocket::bind("0.0.0.0:0").map_err(io("binding", "0.0.0.0:0"))?;
            u.set_read_timeout(Some(timeout))
                .map_err(io("reading from", addr))?;
            u.send_to(b"who\n", addr).map_err(io("sending to", addr))?;
            let mut buf = [0u8; 512];
            let (n, _) = u
                .recv_from(&mut buf)
                .map_err(io("waiting for a reply from", addr))?;
            Ok(String::from_utf8_lossy(&buf[..n]).trim().to_string())
        }
        "http" => {
            let a = SocketAddr::new(addr.ip(), addr.port() + 1);
            let mut s = TcpStream::connect_timeout(&a, timeout).map_err(io("connecting to", a))?;
            s.set_read_timeout(Some(timeout))
                .map_err(io("reading from", a))?;
            write!(s, "GET / HTTP/1.0\r\nHost: {a}\r\n\r\n").map_err(io("writing to", a))?;
            let mut out = String::new();
            s.read_to_string(&mut out).map_err(io("reading from", a))?;
            if !out.starts_with("HTTP/1.0 200") {
                return Err(Error::Lab(format!(
                    "unexpected HTTP answer from {a}: {out:?}"
                )));
            }
            Ok(out
                .rsplit("\r\n\r\n")
                .next()
                .unwrap_or_default()
                .trim()
                .to_string())
        }
        "bulk" => {
            let a = SocketAddr::new(addr.ip(), addr.port() + 2);
            let mut s = TcpStream::connect_timeout(&a, timeout).map_err(io("connecting to", a))?;
            s.set_write_timeout(Some(timeout))
                .map_err(io("writing to", a))?;
            s.set_read_timeout(Some(timeout))
                .map_err(io("reading from", a))?;
            s.write_all(&bytes.to_le_bytes())
                .map_err(io("writing to", a))?;
            let mut h = Fnv::default();
            let mut buf = vec![0u8; 64 * 1024];
            let (mut left, mut seed) = (bytes, 0x5eed_u64);
            while left > 0 {
                let k = buf.len().min(left as usize);
                seed = payload(seed, &mut buf[..k]);
                h.update(&buf[..k]);
                s.write_all(&buf[..k]).map_err(io("writing to", a))?;
                left -= k as u64;
            }
            let mut out = String::new();
            s.read_to_string(&mut out).map_err(io("reading from", a))?;
            let out = out.trim().to_string();
            let want = format!("{bytes} {}", h.hex());
            if out.ends_with(&want) {
                Ok(format!("{out} match"))
            } else {
                Err(Error::Lab(format!(
                    "checksum mismatch: sent {want}, server saw {out:?}"
                )))
            }
        }
        other => Err(Error::Usage(format!(
            "unknown probe {other:?}: use tcp, udp, http or bulk"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_probe_names_the_server() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        // Ports near an ephemeral one can be taken; the test retries a few bases.
        let base = (port / 10) * 10 + 3;
        std::thread::spawn(move || serve("pod-a", base, None));
        let addr: SocketAddr = format!("127.0.0.1:{base}").parse().unwrap();
        let t = Duration::from_secs(2);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while probe("tcp", addr, t, 0).is_err() {
            assert!(std::time::Instant::now() < deadline, "server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(probe("tcp", addr, t, 0).unwrap(), "pod-a");
        assert_eq!(probe("udp", addr, t, 0).unwrap(), "pod-a");
        assert_eq!(probe("http", addr, t, 0).unwrap(), "pod-a");
        let b = probe("bulk", addr, t, 300_001).unwrap();
        assert!(
            b.starts_with("pod-a 300001 ") && b.ends_with(" match"),
            "{b}"
        );
    }
}
