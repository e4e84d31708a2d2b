//! Validated newtypes: [`Vni`], [`DropletName`], [`MacAddr`], [`Ipv4Cidr`].
//!
//! Each parses and validates once, so the rest of the model can trust its values.

use std::borrow::Borrow;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A Geneve virtual network identifier naming one VPC: 24 bits, 1..=16_777_215 (0 is the
/// substrate and never a VPC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Vni(u32);

impl Vni {
    /// Smallest VPC VNI.
    pub const MIN: u32 = 1;
    /// Largest VNI (24 bits).
    pub const MAX: u32 = 16_777_215;

    /// Validates `value`.
    ///
    /// # Errors
    /// [`Error::VniOutOfRange`] outside 1..=16_777_215.
    pub fn new(value: u64) -> Result<Self> {
        if (u64::from(Self::MIN)..=u64::from(Self::MAX)).contains(&value) {
            Ok(Self(value as u32))
        } else {
            Err(Error::VniOutOfRange { value })
        }
    }

    /// The numeric value.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for Vni {
    type Error = Error;
    fn try_from(value: u32) -> Result<Self> {
        Self::new(u64::from(value))
    }
}

impl From<Vni> for u32 {
    fn from(v: Vni) -> u32 {
        v.0
    }
}

impl fmt::Display for Vni {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The name of a droplet (a host): a DNS-1123 subdomain, like a Kubernetes node name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DropletName(String);

impl DropletName {
    /// Validates `name`.
    ///
    /// # Errors
    /// [`Error::InvalidName`] if it is not a DNS-1123 subdomain.
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        crate::validate::dns1123_subdomain("droplet", &name)?;
        Ok(Self(name))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DropletName {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        Self::new(value)
    }
}

impl From<DropletName> for String {
    fn from(d: DropletName) -> String {
        d.0
    }
}

impl Borrow<str> for DropletName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DropletName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An Ethernet MAC address, written `0a:00:00:00:00:01`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The deterministic, locally administered MAC of the endpoint at `ip` in the VPC `vni`:
    /// `0a:VV:VV:II:II:II`, the low 16 bits of the VNI and the low 24 bits of the IP.
    /// Collision-free inside one VPC because VPC prefixes are at least /8.
    pub fn for_endpoint(vni: Vni, ip: Ipv4Addr) -> Self {
        let v = vni.get().to_be_bytes();
        let i = ip.octets();
        Self([0x0a, v[2], v[3], i[1], i[2], i[3]])
    }

    /// The six bytes.
    pub fn octets(self) -> [u8; 6] {
        self.0
    }
}

impl FromStr for MacAddr {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::InvalidMac {
            value: s.to_owned(),
        };
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for byte in &mut out {
            let p = parts.next().ok_or_else(bad)?;
            if p.len() != 2 {
                return Err(bad());
            }
            *byte = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Self(out))
    }
}

impl TryFrom<String> for MacAddr {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        value.parse()
    }
}

impl From<MacAddr> for String {
    fn from(m: MacAddr) -> String {
        m.to_string()
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// An IPv4 network prefix with no host bits set, written `10.0.0.0/16`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Ipv4Cidr(Ipv4Net);

impl Ipv4Cidr {
    /// Builds a prefix from an address and length.
    ///
    /// # Errors
    /// [`Error::InvalidCidr`] if `len > 32`, [`Error::HostBitsSet`] if `addr` has host bits.
    pub fn new(addr: Ipv4Addr, len: u8) -> Result<Self> {
        let net = Ipv4Net::new(addr, len).map_err(|_| Error::InvalidCidr {
            value: format!("{addr}/{len}"),
        })?;
        if net.network() != addr {
            return Err(Error::HostBitsSet {
                value: net.to_string(),
                network: net.trunc().to_string(),
            });
        }
        Ok(Self(net))
    }

    /// The underlying [`Ipv4Net`].
    pub fn net(self) -> Ipv4Net {
        self.0
    }

    /// The network (first) address.
    pub fn network(self) -> Ipv4Addr {
        self.0.network()
    }

    /// The broadcast (last) address.
    pub fn broadcast(self) -> Ipv4Addr {
        self.0.broadcast()
    }

    /// The prefix length.
    pub fn prefix_len(self) -> u8 {
        self.0.prefix_len()
    }

    /// Number of addresses, network and broadcast included.
    pub fn size(self) -> u64 {
        1u64 << (32 - u32::from(self.prefix_len()))
    }

    /// Whether `ip` is inside.
    pub fn contains(self, ip: Ipv4Addr) -> bool {
        self.0.contains(&ip)
    }

    /// Whether `other` lies entirely inside.
    pub fn contains_cidr(self, other: Ipv4Cidr) -> bool {
        self.0.contains(&other.0)
    }

    /// Whether the two prefixes share any address.
    pub fn overlaps(self, other: Ipv4Cidr) -> bool {
        self.0.contains(&other.0) || other.0.contains(&self.0)
    }

    /// Address at `offset` from the network address (callers keep `offset < size()`).
    pub fn addr_at(self, offset: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network()).wrapping_add(offset))
    }

    /// Offset of `ip` from the network address (callers ensure `contains(ip)`).
    pub fn offset_of(self, ip: Ipv4Addr) -> u32 {
        u32::from(ip).wrapping_sub(u32::from(self.network()))
    }
}

impl FromStr for Ipv4Cidr {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let net: Ipv4Net = s.trim().parse().map_err(|_| Error::InvalidCidr {
            value: s.to_owned(),
        })?;
        if net.addr() != net.network() {
            return Err(Error::HostBitsSet {
                value: s.trim().to_owned(),
                network: net.trunc().to_string(),
            });
        }
        Ok(Self(net))
    }
}

impl TryFrom<String> for Ipv4Cidr {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        value.parse()
    }
}

impl From<Ipv4Cidr> for String {
    fn from(c: Ipv4Cidr) -> String {
        c.to_string()
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The identity of an endpoint: its namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EndpointKey {
    /// Namespace (the pod's).
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl EndpointKey {
    /// Builds a key.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for EndpointKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parsing() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("10.0.0.0/16", Ok("10.0.0.0/16")),
            (" 10.1.0.0/24", Ok("10.1.0.0/24")),
            (
                "10.0.0.1/16",
                Err("10.0.0.1/16 has host bits set; did you mean 10.0.0.0/16?"),
            ),
            (
                "10.0.0/16",
                Err("invalid CIDR \"10.0.0/16\": write it as a.b.c.d/len, e.g. 10.0.0.0/16"),
            ),
            ("10.0.0.0/33", Err("invalid CIDR")),
            ("10.0.0.0", Err("invalid CIDR")),
        ];
        for (input, want) in cases {
            let got = input.parse::<Ipv4Cidr>();
            match (got, want) {
                (Ok(c), Ok(w)) => assert_eq!(c.to_string(), *w, "{input}"),
                (Err(e), Err(w)) => assert!(e.to_string().contains(w), "{input}: {e}"),
                (got, want) => panic!("{input}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn vni_range() {
        for (v, ok) in [
            (0u64, false),
            (1, true),
            (16_777_215, true),
            (16_777_216, false),
        ] {
            assert_eq!(Vni::new(v).is_ok(), ok, "{v}");
        }
        let e = Vni::new(0).unwrap_err().to_string();
        assert!(e.contains("out of range"), "{e}");
    }

    #[test]
    fn mac_round_trip_and_derivation() {
        let m: MacAddr = "0a:00:1b:ff:00:09".parse().unwrap();
        assert_eq!(m.to_string(), "0a:00:1b:ff:00:09");
        for bad in [
            "0a:00:1b:ff:00",
            "0a:00:1b:ff:00:09:01",
            "zz:00:00:00:00:00",
            "0a0:0:0:0:0:0",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
        let vni = Vni::new(7001).unwrap();
        let mac = MacAddr::for_endpoint(vni, Ipv4Addr::new(10, 0, 1, 9));
        assert_eq!(mac.to_string(), "0a:1b:59:00:01:09");
        assert_eq!(mac.0[0] & 0x03, 0x02, "locally administered unicast");
    }
}
