//! Property tests over random command sequences: determinism (also through snapshot and
//! restore), reachability, isolation, bounded fan-out, incremental tables equal to tables
//! derived from scratch, and fences (every droplet fences exactly the gone ones). Failing seeds are persisted by proptest in
//! `model/tests/proptest-regressions/` (commit them: they are replayed first).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use alkaid_model::fwd::{self, HopAction};
use alkaid_model::resource::{DropletPhase, Object, SubnetSpec, VpcSpec};
use alkaid_model::{
    ClusterState, Command, DropletName, EndpointKey, Ipv4Cidr, MacAddr, Outcome, RowKey,
};
use proptest::prelude::*;

const DROPLETS: u8 = 6;
const VPC_CIDRS: [&str; 3] = ["10.0.0.0/16", "10.0.0.0/16", "10.0.0.0/8"];
const SUBNET_CIDRS: [&str; 5] = [
    "10.0.0.0/24",
    "10.0.1.0/24",
    "10.0.0.0/23",
    "10.0.2.0/28",
    "10.1.0.0/29",
];

#[derive(Clone, Debug)]
enum Op {
    Register(u8),
    Unreachable(u8),
    Ready(u8),
    Remove(u8),
    Vpc {
        v: u8,
        dividers: u32,
    },
    DeleteVpc(u8),
    Subnet {
        s: u8,
        v: u8,
        cidr: u8,
        bouncers: u32,
    },
    DeleteSubnet(u8),
    Allocate {
        ns: u8,
        name: u8,
        s: u8,
        d: u8,
        ip: Option<u8>,
    },
    Release {
        ns: u8,
        name: u8,
    },
    Ack(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..DROPLETS).prop_map(Op::Register),
        1 => (0..DROPLETS).prop_map(Op::Unreachable),
        1 => (0..DROPLETS).prop_map(Op::Ready),
        1 => (0..DROPLETS).prop_map(Op::Remove),
        2 => (0..3u8, 1..=3u32).prop_map(|(v, dividers)| Op::Vpc { v, dividers }),
        1 => (0..3u8).prop_map(Op::DeleteVpc),
        3 => (0..6u8, 0..3u8, 0..5u8, 1..=3u32)
            .prop_map(|(s, v, cidr, bouncers)| Op::Subnet { s, v, cidr, bouncers }),
        1 => (0..6u8).prop_map(Op::DeleteSubnet),
        14 => (0..2u8, 0..12u8, 0..6u8, 0..DROPLETS, proptest::option::of(1..8u8))
            .prop_map(|(ns, name, s, d, ip)| Op::Allocate { ns, name, s, d, ip }),
        3 => (0..2u8, 0..12u8).prop_map(|(ns, name)| Op::Release { ns, name }),
        2 => (0..DROPLETS).prop_map(Op::Ack),
    ]
}

fn dn(i: u8) -> DropletName {
    DropletName::new(format!("d{i}")).unwrap()
}

/// Turns an op into a command, using the state only to fill in consistent references.
fn command(state: &ClusterState, op: &Op) -> Command {
    match *op {
        Op::Register(i) => Command::RegisterDroplet {
            name: dn(i),
            ip: Ipv4Addr::new(192, 168, 0, i + 1),
            mac: MacAddr([2, 0, 0, 0, 0, i + 1]),
            interface: "eth0".into(),
            node: format!("node{i}"),
            seen: 1,
        },
        Op::Unreachable(i) | Op::Ready(i) => Command::SetDropletPhase {
            name: dn(i),
            phase: if matches!(op, Op::Ready(_)) {
                DropletPhase::Ready
            } else {
                DropletPhase::Unreachable
            },
            seen: 2,
        },
        Op::Remove(i) => Command::RemoveDroplet { name: dn(i) },
        Op::Vpc { v, dividers } => {
            let mut spec = VpcSpec::new(VPC_CIDRS[v as usize].parse().unwrap());
            spec.dividers = dividers;
            Command::ApplyVpc(Object::new(format!("v{v}"), spec))
        }
        Op::DeleteVpc(v) => Command::DeleteVpc {
            name: format!("v{v}"),
        },
        Op::Subnet {
            s,
            v,
            cidr,
            bouncers,
        } => {
            let mut spec = SubnetSpec::new(
                format!("v{v}"),
                SUBNET_CIDRS[cidr as usize].parse().unwrap(),
            );
            // Keep the existing VPC and CIDR of an existing subnet most of the time so that
            // updates (rescaling) happen, not only refusals.
            if let Some(existing) = state.get_subnet(&format!("s{s}"))
                && cidr % 2 == 0
            {
                spec.vpc = existing.spec.vpc;
                spec.cidr = existing.spec.cidr;
            }
            spec.bouncers = bouncers;
            Command::ApplySubnet(Object::new(format!("s{s}"), spec))
        }
        Op::DeleteSubnet(s) => Command::DeleteSubnet {
            name: format!("s{s}"),
        },
        Op::Allocate { ns, name, s, d, ip } => {
            let subnet = state.get_subnet(&format!("s{s}"));
            let vpc = subnet.as_ref().map_or("v0".into(), |o| o.spec.vpc.clone());
            let ip = ip.map(|k| {
                let cidr: Ipv4Cidr = subnet
                    .as_ref()
                    .map_or("10.0.0.0/24".parse().unwrap(), |o| o.spec.cidr);
                cidr.addr_at(u32::from(k))
            });
            Command::AllocateEndpoint {
                namespace: format!("ns{ns}"),
                name: format!("e{name}"),
                vpc,
                subnet: format!("s{s}"),
                droplet: dn(d),
                ip,
                pod: format!("pod{name}"),
            }
        }
        Op::Release { ns, name } => Command::ReleaseEndpoint {
            namespace: format!("ns{ns}"),
            name: format!("e{name}"),
        },
        Op::Ack(i) => Command::AckProgrammed {
            droplet: dn(i),
            version: state.version(&format!("d{i}")),
        },
    }
}

/// (e) The maintained tables equal the tables derived from scratch.
fn check_tables(state: &ClusterState) -> Result<(), TestCaseError> {
    for (d, desired) in state.desired_tables() {
        prop_assert_eq!(state.table(d.as_str()), Some(&desired), "table of {}", d);
    }
    Ok(())
}

/// (d) Allocating an endpoint changes tables only on its droplet and its subnet's bouncers.
fn check_fan_out(state: &ClusterState, cmd: &Command, out: &Outcome) -> Result<(), TestCaseError> {
    if let (
        Command::AllocateEndpoint {
            droplet, subnet, ..
        },
        Ok(_),
    ) = (cmd, &out.reply)
    {
        let mut allowed: BTreeSet<DropletName> = state
            .get_subnet(subnet)
            .and_then(|s| s.status)
            .map(|s| s.bouncers.into_iter().collect())
            .unwrap_or_default();
        allowed.insert(droplet.clone());
        for delta in &out.deltas {
            prop_assert!(
                allowed.contains(&delta.droplet),
                "allocation touched {}",
                delta.droplet
            );
        }
    }
    Ok(())
}

/// (f) Fences, checked against the droplets' phases rather than the derivation: every
/// droplet fences every other Unreachable droplet, never a Ready one's address; with
/// `settled`, after every droplet acknowledged everything, only Unreachable droplets are
/// fenced (a removed address is fenced only until everyone applied the fence).
fn check_fences(state: &ClusterState, settled: bool) -> Result<(), TestCaseError> {
    let droplets = state.list_droplets();
    let phase_of = |ip: Ipv4Addr| {
        droplets
            .iter()
            .find(|d| d.spec.ip == ip)
            .map(|d| d.status.clone().unwrap_or_default().phase)
    };
    for x in &droplets {
        let table = state.table(x.name()).expect("registered");
        for key in table.rows().keys() {
            if let RowKey::Fence { ip } = key {
                match phase_of(*ip) {
                    Some(DropletPhase::Ready) => {
                        return Err(TestCaseError::fail(format!(
                            "{} fences Ready {ip}",
                            x.name()
                        )));
                    }
                    None if settled => {
                        return Err(TestCaseError::fail(format!(
                            "{} still fences removed {ip} after every acknowledgement",
                            x.name()
                        )));
                    }
                    _ => {}
                }
            }
        }
        for d in &droplets {
            let unreachable =
                d.status.clone().unwrap_or_default().phase == DropletPhase::Unreachable;
            if unreachable && d.name() != x.name() {
                prop_assert!(
                    table.get(&RowKey::Fence { ip: d.spec.ip }).is_some(),
                    "{} does not fence unreachable {}",
                    x.name(),
                    d.name()
                );
            }
        }
    }
    Ok(())
}

/// Every droplet acknowledges its current version until nothing changes any more.
fn acknowledge_everything(state: &mut ClusterState) {
    for _ in 0..4 {
        let names: Vec<DropletName> = state
            .list_droplets()
            .iter()
            .map(|d| DropletName::new(d.name()).unwrap())
            .collect();
        let mut changed = false;
        for d in names {
            let version = state.version(d.as_str());
            let out = state.apply(Command::AckProgrammed {
                droplet: d,
                version,
            });
            changed |= !out.deltas.is_empty();
        }
        if !changed {
            return;
        }
    }
}

/// (b) reachability and (c) isolation, through the forwarding simulator.
fn check_paths(state: &ClusterState) -> Result<(), TestCaseError> {
    let eps = state.list_endpoints(None);
    let placed = |subnet: &str| {
        state
            .get_subnet(subnet)
            .and_then(|s| s.status)
            .is_some_and(|s| !s.bouncers.is_empty())
    };
    let has_divider = |vpc: &str| {
        state
            .get_vpc(vpc)
            .and_then(|v| v.status)
            .is_some_and(|v| !v.dividers.is_empty())
    };
    for a in &eps {
        let from = EndpointKey::new(a.metadata.namespace.clone().unwrap(), a.name());
        for b in &eps {
            for flow in [0u32, 1, 7] {
                let got = fwd::trace(state, &from, b.spec.ip, flow);
                if let Ok(hops) = &got {
                    let last = hops.last().unwrap();
                    let HopAction::Deliver { endpoint } = &last.action else {
                        return Err(TestCaseError::fail("trace ended without delivery"));
                    };
                    let got_ep = state
                        .get_endpoint(&endpoint.namespace, &endpoint.name)
                        .unwrap();
                    // Isolation: never another VPC's endpoint; always the address asked for.
                    prop_assert_eq!(
                        &got_ep.spec.vpc,
                        &a.spec.vpc,
                        "{} reached another vpc",
                        from
                    );
                    prop_assert_eq!(got_ep.spec.ip, b.spec.ip);
                    prop_assert_eq!(&last.droplet, &got_ep.spec.droplet);
                }
                if a.spec.vpc != b.spec.vpc {
                    continue;
                }
                let same_subnet = a.spec.subnet == b.spec.subnet;
                let reachable = a.spec.droplet == b.spec.droplet
                    || (placed(&a.spec.subnet)
                        && (same_subnet || (has_divider(&a.spec.vpc) && placed(&b.spec.subnet))));
                if reachable {
                    let hops = got.map_err(|e| {
                        TestCaseError::fail(format!(
                            "{from} -> {} ({}): {e:?}",
                            b.spec.ip,
                            b.name()
                        ))
                    })?;
                    let HopAction::Deliver { endpoint } = &hops.last().unwrap().action else {
                        unreachable!()
                    };
                    prop_assert_eq!(&endpoint.name, b.name());
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn random_command_sequences(
        random in proptest::collection::vec(op(), 1..100),
        cut in 0usize..110,
        scale in 1..=2u32,
    ) {
        // A common start (droplets, three VPCs on overlapping ranges, subnets with identical
        // CIDRs across VPCs), then anything.
        let mut ops: Vec<Op> = (0..4).map(Op::Register).collect();
        ops.extend((0..3).map(|v| Op::Vpc { v, dividers: scale }));
        ops.extend([
            Op::Subnet { s: 0, v: 0, cidr: 0, bouncers: scale },
            Op::Subnet { s: 1, v: 0, cidr: 1, bouncers: 1 },
            Op::Subnet { s: 2, v: 1, cidr: 0, bouncers: scale },
            Op::Subnet { s: 3, v: 2, cidr: 1, bouncers: 1 },
        ]);
        ops.extend(random);
        let mut a = ClusterState::new();
        let mut b = ClusterState::new();
        let mut restored: Option<ClusterState> = None;
        for (i, op) in ops.iter().enumerate() {
            if i == cut.min(ops.len() - 1) {
                let r = ClusterState::restore(&a.snapshot()).unwrap();
                prop_assert!(r.same_as(&a), "restore differs at step {}", i);
                restored = Some(r);
            }
            let cmd = command(&a, op);
            let before = a.snapshot();
            let out_a = a.apply(cmd.clone());
            let out_b = b.apply(cmd.clone());
            // (a) determinism, with and without a snapshot/restore in between.
            let shown = format!("{out_a:?}");
            prop_assert_eq!(&shown, &format!("{out_b:?}"));
            if let Some(r) = restored.as_mut() {
                prop_assert_eq!(&shown, &format!("{:?}", r.apply(cmd.clone())));
            }
            if out_a.reply.is_err() {
                prop_assert!(out_a.deltas.is_empty() && out_a.status_changes.is_empty());
                prop_assert_eq!(before, a.snapshot(), "refused {:?} changed the state", cmd);
            }
            check_fan_out(&a, &cmd, &out_a)?;
            check_tables(&a)?;
            check_fences(&a, false)?;
            if i % 16 == 15 {
                check_paths(&a)?;
            }
        }
        check_paths(&a)?;
        if std::env::var_os("ALKAID_PROP_STATS").is_some() {
            eprintln!("ops {} endpoints {} subnets {} vpcs {} droplets {}", ops.len(), a.endpoint_count(), a.list_subnets().len(), a.list_vpcs().len(), a.list_droplets().len());
        }
        prop_assert!(a.same_as(&b));
        if let Some(r) = &restored {
            prop_assert!(r.same_as(&a));
        }
        acknowledge_everything(&mut a);
        check_tables(&a)?;
        check_fences(&a, true)?;
    }
}
