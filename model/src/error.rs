//! The one error type of the model. Messages are lowercase and tell the user what to fix.

use std::net::Ipv4Addr;

/// Everything the model can refuse. Every variant names the object and the value at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A name breaks the DNS-1123 rules Kubernetes applies to object names.
    #[error("invalid {kind} name {name:?}: {reason}")]
    InvalidName {
        /// Kind of the object (or field) being named.
        kind: &'static str,
        /// The offending name.
        name: String,
        /// What rule it breaks.
        reason: &'static str,
    },
    /// A CIDR that does not parse.
    #[error("invalid CIDR {value:?}: write it as a.b.c.d/len, e.g. 10.0.0.0/16")]
    InvalidCidr {
        /// The text that failed to parse.
        value: String,
    },
    /// A CIDR with bits set beyond its prefix.
    #[error("{value} has host bits set; did you mean {network}?")]
    HostBitsSet {
        /// The text as given.
        value: String,
        /// The same prefix with host bits cleared.
        network: String,
    },
    /// A prefix length outside what the kind supports.
    #[error("{kind} {name:?}: prefix /{prefix} of {cidr} is out of range; use /{min} to /{max}")]
    PrefixOutOfRange {
        /// Vpc or Subnet.
        kind: &'static str,
        /// Object name.
        name: String,
        /// The CIDR.
        cidr: String,
        /// Its prefix length.
        prefix: u8,
        /// Shortest allowed prefix.
        min: u8,
        /// Longest allowed prefix.
        max: u8,
    },
    /// A MAC address that does not parse.
    #[error("invalid MAC address {value:?}: write six hex pairs like 0a:00:00:00:00:01")]
    InvalidMac {
        /// The text as given.
        value: String,
    },
    /// A VNI outside 1..=16777215.
    #[error("vni {value} is out of range; use 1..=16777215 or leave it empty to allocate one")]
    VniOutOfRange {
        /// The value given.
        value: u64,
    },
    /// A VNI already used by another live VPC.
    #[error(
        "vni {vni} requested by vpc {vpc:?} is already used by vpc {other:?}; pick another or omit it"
    )]
    DuplicateVni {
        /// The VNI.
        vni: u32,
        /// The VPC asking for it.
        vpc: String,
        /// The VPC holding it.
        other: String,
    },
    /// No VNI left to allocate.
    #[error("no free vni left to allocate for vpc {vpc:?}; delete unused vpcs")]
    VniExhausted {
        /// The VPC asking.
        vpc: String,
    },
    /// A count (dividers, bouncers) outside its range.
    #[error("{kind} {name:?}: {field} = {value} is out of range; use {min} to {max}")]
    CountOutOfRange {
        /// Vpc or Subnet.
        kind: &'static str,
        /// Object name.
        name: String,
        /// Field name.
        field: &'static str,
        /// The value given.
        value: u32,
        /// Minimum.
        min: u32,
        /// Maximum.
        max: u32,
    },
    /// A subnet whose CIDR is not inside its VPC's CIDR.
    #[error(
        "subnet {subnet:?} cidr {cidr} is not inside vpc {vpc:?} cidr {vpc_cidr}; pick a range inside it"
    )]
    SubnetOutsideVpc {
        /// Subnet name.
        subnet: String,
        /// Subnet CIDR.
        cidr: String,
        /// VPC name.
        vpc: String,
        /// VPC CIDR.
        vpc_cidr: String,
    },
    /// Two subnets of one VPC overlap.
    #[error(
        "subnet {subnet:?} cidr {cidr} overlaps subnet {other:?} cidr {other_cidr} in vpc {vpc:?}; subnets of one vpc must not overlap"
    )]
    SubnetOverlap {
        /// Subnet name.
        subnet: String,
        /// Subnet CIDR.
        cidr: String,
        /// The subnet it overlaps.
        other: String,
        /// That subnet's CIDR.
        other_cidr: String,
        /// Their VPC.
        vpc: String,
    },
    /// A gateway outside its subnet.
    #[error(
        "subnet {subnet:?}: gateway {gateway} is not inside {cidr}; pick a host address of the subnet or omit it"
    )]
    GatewayOutsideSubnet {
        /// Subnet name.
        subnet: String,
        /// Gateway given.
        gateway: Ipv4Addr,
        /// Subnet CIDR.
        cidr: String,
    },
    /// A gateway on the network or broadcast address.
    #[error(
        "subnet {subnet:?}: gateway {gateway} is the {what} address; pick a host address or omit it"
    )]
    GatewayReserved {
        /// Subnet name.
        subnet: String,
        /// Gateway given.
        gateway: Ipv4Addr,
        /// "network" or "broadcast".
        what: &'static str,
    },
    /// A reference to a VPC that does not exist.
    #[error("{referrer} refers to vpc {vpc:?}, which does not exist; create the vpc first")]
    UnknownVpc {
        /// Who refers to it.
        referrer: String,
        /// The missing VPC.
        vpc: String,
    },
    /// A reference to a subnet that does not exist.
    #[error(
        "{referrer} refers to subnet {subnet:?}, which does not exist; create the subnet first"
    )]
    UnknownSubnet {
        /// Who refers to it.
        referrer: String,
        /// The missing subnet.
        subnet: String,
    },
    /// A subnet named with the wrong VPC.
    #[error(
        "{referrer} names subnet {subnet:?} with vpc {vpc:?}, but the subnet belongs to vpc {actual:?}"
    )]
    SubnetNotInVpc {
        /// Who refers to it.
        referrer: String,
        /// The subnet.
        subnet: String,
        /// VPC given.
        vpc: String,
        /// VPC it belongs to.
        actual: String,
    },
    /// A reference to a droplet that is not registered.
    #[error("droplet {droplet:?} is not registered; start its agent first")]
    UnknownDroplet {
        /// The droplet.
        droplet: String,
    },
    /// A droplet that cannot take an endpoint now.
    #[error("droplet {droplet:?} is {phase}; endpoints can only be placed on a ready droplet")]
    DropletNotReady {
        /// The droplet.
        droplet: String,
        /// Its phase.
        phase: String,
    },
    /// Two droplets with one underlay address.
    #[error(
        "droplet {droplet:?} ip {ip} is already used by droplet {other:?}; each droplet needs its own underlay address"
    )]
    DuplicateDropletIp {
        /// The droplet registering.
        droplet: String,
        /// The address.
        ip: Ipv4Addr,
        /// The droplet already holding it.
        other: String,
    },
    /// A droplet's address changed while others refer to it.
    #[error(
        "droplet {droplet:?} changed its {field} while it holds {endpoints} endpoints and {roles} roles; remove it first"
    )]
    DropletInUse {
        /// The droplet.
        droplet: String,
        /// "ip" or "mac".
        field: &'static str,
        /// Endpoints hosted.
        endpoints: usize,
        /// Roles held.
        roles: usize,
    },
    /// A field that cannot change after creation.
    #[error("{kind} {name:?}: {field} cannot change from {old} to {new}{hint}")]
    Immutable {
        /// Kind.
        kind: &'static str,
        /// Object name.
        name: String,
        /// Field.
        field: &'static str,
        /// Current value.
        old: String,
        /// Requested value.
        new: String,
        /// Extra advice, starting with "; " or empty.
        hint: &'static str,
    },
    /// A namespace bound to two VPCs.
    #[error(
        "namespace {namespace:?} is already bound to vpc {other:?}; a namespace can be bound to one vpc"
    )]
    NamespaceBound {
        /// The namespace.
        namespace: String,
        /// The VPC already holding it.
        other: String,
    },
    /// Deleting a VPC that still has subnets.
    #[error("vpc {vpc:?} still has {count} subnets (e.g. {first:?}); delete them first")]
    VpcHasSubnets {
        /// VPC.
        vpc: String,
        /// How many.
        count: usize,
        /// One of them.
        first: String,
    },
    /// Deleting a subnet that still has endpoints.
    #[error("subnet {subnet:?} still has {count} endpoints; release them first")]
    SubnetHasEndpoints {
        /// Subnet.
        subnet: String,
        /// How many.
        count: usize,
    },
    /// Removing a droplet that still hosts endpoints.
    #[error("droplet {droplet:?} still hosts {count} endpoints; release them first")]
    DropletHasEndpoints {
        /// Droplet.
        droplet: String,
        /// How many.
        count: usize,
    },
    /// A requested IP outside the subnet.
    #[error(
        "ip {ip} is not inside subnet {subnet:?} ({cidr}); request an address inside it or none"
    )]
    IpOutsideSubnet {
        /// IP.
        ip: Ipv4Addr,
        /// Subnet.
        subnet: String,
        /// CIDR.
        cidr: String,
    },
    /// A requested IP that is reserved.
    #[error("ip {ip} is the {what} address of subnet {subnet:?}; request another address or none")]
    IpReserved {
        /// IP.
        ip: Ipv4Addr,
        /// Subnet.
        subnet: String,
        /// "network", "gateway" or "broadcast".
        what: &'static str,
    },
    /// A requested IP held by another endpoint.
    #[error(
        "ip {ip} in subnet {subnet:?} is in use by endpoint {by}; request another address or none"
    )]
    IpInUse {
        /// IP.
        ip: Ipv4Addr,
        /// Subnet.
        subnet: String,
        /// "namespace/name" of the holder.
        by: String,
    },
    /// A subnet with no free address.
    #[error(
        "subnet {subnet:?} ({cidr}) has no free address: all {capacity} are allocated; release endpoints or add a subnet"
    )]
    SubnetExhausted {
        /// Subnet.
        subnet: String,
        /// CIDR.
        cidr: String,
        /// Usable addresses.
        capacity: u64,
    },
    /// An endpoint name reused with different parameters.
    #[error(
        "endpoint {endpoint} already exists with {field} {existing:?}; release it before allocating it again with {requested:?}"
    )]
    EndpointConflict {
        /// "namespace/name".
        endpoint: String,
        /// Differing field.
        field: &'static str,
        /// Current value.
        existing: String,
        /// Requested value.
        requested: String,
    },
    /// A resource document that does not fit the model.
    #[error("{kind} {name:?}: {reason}")]
    InvalidResource {
        /// Kind.
        kind: &'static str,
        /// Name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A command that cannot be decoded.
    #[error("command cannot be decoded; it was written by an incompatible version or is corrupt")]
    CommandDecode {
        /// The decoder's error.
        #[source]
        source: postcard::Error,
    },
    /// A snapshot that cannot be decoded.
    #[error("snapshot cannot be decoded; it was written by an incompatible version or is corrupt")]
    Snapshot {
        /// The decoder's error.
        #[source]
        source: postcard::Error,
    },
}

/// Result with the model's [`Error`] as default.
pub type Result<T, E = Error> = std::result::Result<T, E>;
