//! Indices of the per-CPU STATS array: one slot per verdict (what a program did with a
//! packet) and one per drop reason. Every packet bumps exactly one slot.

/// Slot of the first drop reason in STATS.
pub const DROP_BASE: u32 = 32;

macro_rules! counter_enum {
    ($(#[$m:meta])* $name:ident, $base:expr, { $($(#[$vm:meta])* $v:ident = $n:literal => $s:literal),* $(,)? }) => {
        $(#[$m])*
        #[repr(u32)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vm])* $v = $n),*
        }

        impl $name {
            /// Every value, in index order.
            pub const ALL: &'static [$name] = &[$($name::$v),*];

            /// Stable snake_case name (metrics label, dumps).
            pub const fn name(self) -> &'static str {
                match self { $($name::$v => $s),* }
            }

            /// Slot in STATS.
            #[inline(always)]
            pub const fn index(self) -> u32 {
                $base + self as u32
            }
        }
    };
}

counter_enum!(
    /// What a program did with a packet it did not drop.
    Verdict, 0, {
        /// agent: answered a pod ARP request (redirected back out of its veth).
        ArpReply = 0 => "arp_reply",
        /// agent: destination on this droplet, redirected to its veth.
        LocalDeliver = 1 => "local_deliver",
        /// agent: encapsulated to a bouncer of the endpoint's subnet.
        EncapBouncer = 2 => "encap_bouncer",
        /// agent: encapsulated straight to the droplet from DIRECT_PATH.
        EncapDirect = 3 => "encap_direct",
        /// agent: this droplet is the chosen bouncer; encapsulated to the resolved next hop.
        EncapResolved = 4 => "encap_resolved",
        /// transit: not overlay traffic for this droplet, XDP_PASS untouched.
        Passthrough = 5 => "passthrough",
        /// transit: bouncer directory hit, outer destination rewritten, XDP_TX.
        BouncerRetarget = 6 => "bouncer_retarget",
        /// transit: NETWORKS hit (divider, or stale direct path bounced), sent to a bouncer.
        NetworkForward = 7 => "network_forward",
        /// transit: VPCS hit, sent to a divider.
        DividerForward = 8 => "divider_forward",
        /// transit: local endpoint, outer headers stripped, redirected into its veth.
        Decap = 9 => "decap",
        /// transit: a direct path was learned or refreshed from the return-to-sender option.
        LearnDirectPath = 10 => "learn_direct_path",
        /// XDP left the frame to the TC program behind it: transit with `CONFIG_F_TC_DECAP`,
        /// a local delivery (for `transit_tc`); agent with `CONFIG_F_TC_AGENT`, a direct path
        /// whose next-hop MAC only the kernel can resolve (for `agent_tc`).
        PassToTc = 11 => "pass_to_tc",
        /// transit: a packet sent over a direct path (RTS_DIRECT) for an endpoint not hosted
        /// here: turned around to its sender as a STALE bounce-back (same bytes, new outer
        /// header and option type), XDP_TX.
        StaleBounce = 12 => "stale_bounce",
        /// transit: a STALE bounce-back for one of our endpoints: DIRECT_PATH (vni, inner dst)
        /// deleted and the frame re-sent to a bouncer of the endpoint's subnet.
        StaleResend = 13 => "stale_resend",
        /// agent (TC): encapsulated over a direct path to a droplet whose MAC no PEERS row,
        /// default or learned packet gave; `bpf_redirect_neigh` has the kernel resolve it
        /// (ARP on a flat underlay, the gateway on a routed one) and transmit.
        EncapNeigh = 14 => "encap_neigh",
        /// agent: a packet too large for the underlay once encapsulated, with DF set, answered
        /// in its place with ICMP "fragmentation needed" carrying the pod MTU (path MTU
        /// discovery); without DF it is dropped as `too_big`.
        IcmpFragNeeded = 15 => "icmp_frag_needed",
    }
);

counter_enum!(
    /// Why a packet was dropped.
    DropReason, DROP_BASE, {
        /// Frame shorter than an Ethernet header.
        EthTruncated = 0 => "eth_truncated",
        /// agent: not IPv4 and not ARP; transit: inner frame not IPv4.
        NotIpv4 = 1 => "not_ipv4",
        /// IPv4 header past the end of the frame.
        Ipv4Truncated = 2 => "ipv4_truncated",
        /// IPv4 version != 4 or IHL < 5, or IHL past the frame.
        Ipv4BadIhl = 3 => "ipv4_bad_ihl",
        /// transit: a fragmented Geneve packet (we send with DF; cannot reassemble in XDP).
        Ipv4Fragment = 4 => "ipv4_fragment",
        /// transit: UDP header past the end of the frame.
        UdpTruncated = 5 => "udp_truncated",
        /// transit: Geneve header or its options past the end of the frame.
        GeneveTruncated = 6 => "geneve_truncated",
        /// transit: Geneve version != 0, protocol not Ethernet, or too many options.
        GeneveMalformed = 7 => "geneve_malformed",
        /// transit: an option's length overruns the option area, or a known option is mis-sized.
        GeneveBadOptLen = 8 => "geneve_bad_opt_len",
        /// transit: inner Ethernet/IPv4 header past the end of the frame.
        InnerTruncated = 9 => "inner_truncated",
        /// transit: nothing on this droplet mentions the VNI (no VPCS row, no NETWORKS match).
        UnknownVni = 10 => "unknown_vni",
        /// The VNI is known but nothing routes the destination (or it would loop back here).
        NoRoute = 11 => "no_route",
        /// transit: outer TTL <= 1 on a forwarding hop.
        TtlExceeded = 12 => "ttl_exceeded",
        /// agent: inner packet larger than underlay MTU minus encapsulation overhead, without
        /// DF (or with IP options, or an ICMP error itself): no ICMP answer.
        TooBig = 13 => "too_big",
        /// agent: source IP is not the endpoint's.
        SpoofedIp = 14 => "spoofed_ip",
        /// agent: source MAC is not the endpoint's.
        SpoofedMac = 15 => "spoofed_mac",
        /// agent: the ingress veth has no AGENT_ENDPOINTS row.
        NoEndpoint = 16 => "no_endpoint",
        /// agent: CONFIG not written yet (droplet IP 0).
        NoConfig = 17 => "no_config",
        /// No PEERS row for the target droplet and no default peer MAC.
        NoPeerMac = 18 => "no_peer_mac",
        /// Redirect target missing from TX_PORTS.
        NoTxPort = 19 => "no_tx_port",
        /// agent: ARP that is not an Ethernet/IPv4 request, or asks for the sender's own address.
        ArpIgnored = 20 => "arp_ignored",
        /// Encapsulation could not grow the frame: XDP, bpf_xdp_adjust_head failed (no
        /// headroom); TC, bpf_skb_adjust_room refused (no memory for a new head, or a GSO
        /// skb of a type other than TCP or UDP_L4, e.g. SCTP, or one already encapsulated).
        NoHeadroom = 21 => "no_headroom",
        /// transit: a STALE bounce-back that is not for us (option data is not our IP, or the
        /// inner source is not one of our endpoints).
        StaleNotOurs = 22 => "stale_not_ours",
    }
);

/// Number of drop reasons.
pub const DROP_REASONS: u32 = DropReason::ALL.len() as u32;
/// Number of verdicts.
pub const VERDICTS: u32 = Verdict::ALL.len() as u32;
const _: () = assert!(VERDICTS <= DROP_BASE);
const _: () = assert!(DROP_BASE + DROP_REASONS <= crate::maps::STATS_MAX);
