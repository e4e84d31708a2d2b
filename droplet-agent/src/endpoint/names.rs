//! Stable names and addresses derived from a CNI request: the Endpoint object's name, the
//! host-side veth names, and the default endpoint MAC.

use std::net::Ipv4Addr;

use crate::cni::protocol::AgentRequest;

/// The Endpoint object's name: the pod's name when the runtime gave it, else the container id
/// (lowercased and cut to 63 characters, a valid Kubernetes name).
pub fn endpoint_name(req: &AgentRequest) -> String {
    match &req.pod {
        Some(p) => p.clone(),
        None => req
            .container_id
            .to_ascii_lowercase()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '-'
                }
            })
            .take(63)
            .collect(),
    }
}

fn fnv64(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The host-side veth name of a container interface: `alk` + 12 hex digits of a hash of
/// (container id, ifname), stable so DEL finds it without a record.
pub fn host_ifname(container_id: &str, ifname: &str) -> String {
    format!(
        "alk{:012x}",
        fnv64(&[container_id, ifname]) & 0xffff_ffff_ffff
    )
}

pub(crate) fn temp_ifname(container_id: &str, ifname: &str) -> String {
    format!(
        "alt{:012x}",
        fnv64(&[container_id, ifname]) & 0xffff_ffff_ffff
    )
}

/// The endpoint MAC when the operator chose none: `0a:VV:VV:II:II:II` (low 16 bits of the
/// VNI, low 24 bits of the IP), the same rule as the model's `MacAddr::for_endpoint`.
pub fn endpoint_mac(vni: u32, ip: Ipv4Addr) -> [u8; 6] {
    let v = vni.to_be_bytes();
    let i = ip.octets();
    [0x0a, v[2], v[3], i[1], i[2], i[3]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable_and_valid_ifnames() {
        let a = host_ifname("abc", "eth0");
        assert_eq!(a, host_ifname("abc", "eth0"));
        assert_ne!(a, host_ifname("abc", "eth1"));
        assert_eq!(a.len(), 15);
        assert!(crate::cni::spec::is_valid_ifname(&a));
        assert_ne!(a[3..], temp_ifname("abc", "eth1")[3..]);
    }

    #[test]
    fn mac_rule() {
        assert_eq!(
            endpoint_mac(7001, Ipv4Addr::new(10, 0, 1, 5)),
            [0x0a, 0x1b, 0x59, 0, 1, 5]
        );
    }
}
