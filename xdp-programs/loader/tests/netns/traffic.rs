//! Bounded traffic for the lab: ping, and a TCP transfer whose receiver returns the length and
//! a hash of what it got. Every loop is bounded in count and time.

use std::{
    io::{Read, Write},
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use crate::lab::InNetns;

/// `ping -c count` from `ns` to `dst`; number of replies.
pub fn ping(ns: &str, dst: Ipv4Addr, count: u32) -> u32 {
    let out = Command::new("ip")
        .args([
            "netns", "exec", ns, "ping", "-q", "-n", "-i", "0.2", "-W", "1", "-c",
        ])
        .arg(count.to_string())
        .arg(dst.to_string())
        .output()
        .expect("spawn ping");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split(',')
        .find(|s| s.contains("received"))
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// One `ping -M do -s size` (DF set, ICMP payload `size` bytes) from `ns` to `dst`; ping's
/// output (an ICMP "fragmentation needed" shows as `Frag needed and DF set (mtu = N)`).
pub fn ping_df(ns: &str, dst: Ipv4Addr, size: u32) -> String {
    let out = Command::new("ip")
        .args([
            "netns", "exec", ns, "ping", "-n", "-M", "do", "-W", "1", "-c", "1", "-s",
        ])
        .arg(size.to_string())
        .arg(dst.to_string())
        .output()
        .expect("spawn ping");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// ICMP echo requests the kernel of `ns` has received (`Icmp: InEchos` of its SNMP counters):
/// counts what reached a pod, whatever else its droplet decapsulated meanwhile.
pub fn icmp_in_echos(ns: &str) -> u64 {
    let _inside = InNetns::enter(ns);
    let snmp = std::fs::read_to_string("/proc/thread-self/net/snmp").expect("read snmp");
    let mut icmp = snmp.lines().filter(|l| l.starts_with("Icmp:"));
    let (names, values) = (
        icmp.next().expect("Icmp header"),
        icmp.next().expect("Icmp values"),
    );
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "InEchos")
        .and_then(|(_, v)| v.parse().ok())
        .expect("InEchos")
}

/// FNV-1a 64.
fn fnv(mut h: u64, data: &[u8]) -> u64 {
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}
const FNV0: u64 = 0xcbf2_9ce4_8422_2325;

/// A TCP sink in `ns` on `port`: for each connection, reads to EOF and answers
/// `len (u64 BE) | fnv64 (u64 BE)`. Runs until `stop` is set or `limit` passes.
pub struct Sink {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Sink {
    pub fn start(ns: &str, port: u16, limit: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let ns = ns.to_owned();
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let _ns = InNetns::enter(&ns);
            let l = TcpListener::bind(("0.0.0.0", port)).expect("bind sink");
            l.set_nonblocking(true).unwrap();
            ready_tx.send(()).unwrap();
            let deadline = Instant::now() + limit;
            while !flag.load(Ordering::Relaxed) && Instant::now() < deadline {
                match l.accept() {
                    Ok((mut s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                        let (mut len, mut h) = (0u64, FNV0);
                        let mut buf = vec![0u8; 1 << 16];
                        while let Ok(n) = s.read(&mut buf) {
                            if n == 0 {
                                break;
                            }
                            len += n as u64;
                            h = fnv(h, &buf[..n]);
                        }
                        let mut reply = len.to_be_bytes().to_vec();
                        reply.extend_from_slice(&h.to_be_bytes());
                        let _ = s.write_all(&reply);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        ready_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("sink ready");
        Self {
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Sends `bytes` of a pattern from `ns` to `dst:port` and checks the sink's length and hash.
/// `Err` carries the I/O error (refused, timed out) or a mismatch.
pub fn transfer(ns: &str, dst: Ipv4Addr, port: u16, bytes: usize) -> Result<Duration, String> {
    let _ns = InNetns::enter(ns);
    let start = Instant::now();
    let addr = SocketAddr::from((dst, port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))
        .map_err(|e| format!("connect: {e} ({:?})", e.kind()))?;
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let chunk: Vec<u8> = (0..1u32 << 16).map(|i| (i * 7 + i / 251) as u8).collect();
    let (mut sent, mut h) = (0usize, FNV0);
    while sent < bytes {
        let n = chunk.len().min(bytes - sent);
        s.write_all(&chunk[..n])
            .map_err(|e| format!("write: {e}"))?;
        h = fnv(h, &chunk[..n]);
        sent += n;
    }
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut reply = [0u8; 16];
    s.read_exact(&mut reply)
        .map_err(|e| format!("reply: {e}"))?;
    let len = u64::from_be_bytes(reply[..8].try_into().unwrap());
    let got = u64::from_be_bytes(reply[8..].try_into().unwrap());
    if len != bytes as u64 || got != h {
        return Err(format!(
            "sink got {len} bytes hash {got:x}, sent {bytes} hash {h:x}"
        ));
    }
    Ok(start.elapsed())
}
