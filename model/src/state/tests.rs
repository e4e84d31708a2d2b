//! Scenario tests of `apply`. Property tests live in `tests/properties`.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use super::*;
use crate::fwd::{self, HopAction};
use crate::resource::{DropletPhase, Object, Phase, SubnetSpec, VpcSpec};
use crate::types::{EndpointKey, MacAddr, Vni};

fn dn(s: &str) -> DropletName {
    DropletName::new(s).unwrap()
}

fn register(i: u8) -> Command {
    Command::RegisterDroplet {
        name: dn(&format!("d{i}")),
        ip: Ipv4Addr::new(192, 168, 0, i),
        mac: MacAddr([2, 0, 0, 0, 0, i]),
        interface: "eth0".into(),
        node: format!("node{i}"),
        seen: 1,
    }
}

fn vpc(name: &str, cidr: &str, dividers: u32, vni: Option<u32>) -> Command {
    let mut spec = VpcSpec::new(cidr.parse().unwrap());
    spec.dividers = dividers;
    spec.vni = vni.map(|v| Vni::new(v.into()).unwrap());
    Command::ApplyVpc(Object::new(name, spec))
}

fn subnet(name: &str, vpc: &str, cidr: &str, bouncers: u32) -> Command {
    let mut spec = SubnetSpec::new(vpc, cidr.parse().unwrap());
    spec.bouncers = bouncers;
    Command::ApplySubnet(Object::new(name, spec))
}

fn ep(ns: &str, name: &str, vpc: &str, subnet: &str, droplet: &str, ip: Option<&str>) -> Command {
    Command::AllocateEndpoint {
        namespace: ns.into(),
        name: name.into(),
        vpc: vpc.into(),
        subnet: subnet.into(),
        droplet: dn(droplet),
        ip: ip.map(|s| s.parse().unwrap()),
        pod: name.into(),
    }
}

fn ok(state: &mut ClusterState, cmd: Command) -> Outcome {
    let out = state.apply(cmd.clone());
    if let Err(e) = &out.reply {
        panic!("{cmd:?} refused: {e}");
    }
    out
}

fn assert_tables_consistent(state: &ClusterState) {
    let desired = state.desired_tables();
    for (d, t) in &desired {
        assert_eq!(state.table(d.as_str()), Some(t), "table of {d}");
    }
}

/// Three droplets, two tenants on the same CIDR.
fn two_tenants() -> ClusterState {
    let mut s = ClusterState::new();
    for i in 1..=3 {
        ok(&mut s, register(i));
    }
    ok(&mut s, vpc("blue", "10.0.0.0/16", 1, None));
    ok(&mut s, vpc("red", "10.0.0.0/16", 1, None));
    ok(&mut s, subnet("blue-a", "blue", "10.0.1.0/24", 1));
    ok(&mut s, subnet("blue-b", "blue", "10.0.2.0/24", 1));
    ok(&mut s, subnet("red-a", "red", "10.0.1.0/24", 1));
    for (i, d) in ["d1", "d2", "d3"].iter().enumerate() {
        ok(
            &mut s,
            ep("blue", &format!("b{i}"), "blue", "blue-a", d, None),
        );
        ok(
            &mut s,
            ep("blue", &format!("c{i}"), "blue", "blue-b", d, None),
        );
        ok(&mut s, ep("red", &format!("r{i}"), "red", "red-a", d, None));
    }
    s
}

#[test]
fn two_tenants_reach_their_own_and_never_the_other() {
    let s = two_tenants();
    assert_tables_consistent(&s);
    let eps: Vec<_> = s.list_endpoints(None);
    for a in &eps {
        let from = EndpointKey::new(a.metadata.namespace.clone().unwrap(), a.name());
        for b in &eps {
            if a.spec.vpc != b.spec.vpc {
                continue;
            }
            for flow in 0..3 {
                let hops = fwd::trace(&s, &from, b.spec.ip, flow)
                    .unwrap_or_else(|e| panic!("{from} -> {}: {e:?}", b.spec.ip));
                let last = hops.last().unwrap();
                assert_eq!(last.droplet, b.spec.droplet);
                let HopAction::Deliver { endpoint } = &last.action else {
                    panic!("not delivered")
                };
                assert_eq!(endpoint.name, b.name(), "{from} -> {}", b.spec.ip);
                assert_eq!(endpoint.namespace, b.metadata.namespace.clone().unwrap());
            }
        }
    }
    // Same address, other tenant: blue's b0 and red's r0 both got 10.0.1.2.
    let b0 = s.endpoint_allocation("blue", "b0").unwrap();
    let r0 = s.endpoint_allocation("red", "r0").unwrap();
    assert_eq!(b0.ip, r0.ip);
    assert_ne!(b0.vni, r0.vni);
    let hops = fwd::trace(&s, &EndpointKey::new("red", "r1"), b0.ip, 0).unwrap();
    let HopAction::Deliver { endpoint } = &hops.last().unwrap().action else {
        panic!()
    };
    assert_eq!(endpoint.namespace, "red");
}

#[test]
fn rejected_commands_change_nothing() {
    let mut s = two_tenants();
    let before = s.snapshot();
    let cases: Vec<(Command, &str)> = vec![
        (
            subnet("x", "nope", "10.0.9.0/24", 1),
            "refers to vpc \"nope\", which does not exist",
        ),
        (
            subnet("x", "blue", "10.0.1.128/25", 1),
            "overlaps subnet \"blue-a\"",
        ),
        (
            subnet("x", "blue", "10.1.0.0/24", 1),
            "is not inside vpc \"blue\"",
        ),
        (
            subnet("blue-a", "blue", "10.0.3.0/24", 1),
            "cidr cannot change",
        ),
        (
            subnet("blue-a", "red", "10.0.1.0/24", 1),
            "vpc cannot change",
        ),
        (
            vpc("green", "10.0.0.0/16", 1, Some(1000)),
            "vni 1000 requested by vpc \"green\" is already used by vpc \"blue\"",
        ),
        (vpc("blue", "10.0.0.0/16", 1, Some(5)), "vni cannot change"),
        (vpc("blue", "10.0.0.0/8", 1, None), "cidr cannot change"),
        (
            vpc("blue", "10.0.0.0/16", 0, None),
            "dividers = 0 is out of range",
        ),
        (
            Command::DeleteVpc {
                name: "blue".into(),
            },
            "still has 2 subnets",
        ),
        (
            Command::DeleteSubnet {
                name: "blue-a".into(),
            },
            "still has 3 endpoints",
        ),
        (
            Command::RemoveDroplet { name: dn("d1") },
            "still hosts 3 endpoints",
        ),
        (
            ep("blue", "z", "blue", "blue-a", "d1", Some("10.0.1.2")),
            "in use by endpoint blue/b0",
        ),
        (
            ep("blue", "z", "blue", "blue-a", "d1", Some("10.0.1.1")),
            "is the gateway address",
        ),
        (
            ep("blue", "z", "blue", "blue-a", "d1", Some("10.0.2.9")),
            "is not inside subnet \"blue-a\"",
        ),
        (
            ep("blue", "z", "red", "blue-a", "d1", None),
            "belongs to vpc \"blue\"",
        ),
        (
            ep("blue", "z", "blue", "blue-a", "d9", None),
            "droplet \"d9\" is not registered",
        ),
        (
            ep("blue", "b0", "blue", "blue-a", "d2", None),
            "already exists with droplet",
        ),
        (
            ep("Blue", "z", "blue", "blue-a", "d1", None),
            "invalid namespace name",
        ),
        (
            Command::AckProgrammed {
                droplet: dn("d9"),
                version: 1,
            },
            "not registered",
        ),
        (
            Command::RegisterDroplet {
                name: dn("d4"),
                ip: Ipv4Addr::new(192, 168, 0, 1),
                mac: MacAddr([2, 0, 0, 0, 0, 4]),
                interface: "eth0".into(),
                node: "n".into(),
                seen: 0,
            },
            "already used by droplet \"d1\"",
        ),
    ];
    for (cmd, want) in cases {
        let out = s.apply(cmd.clone());
        let err = out.reply.expect_err(want).to_string();
        assert!(err.contains(want), "{cmd:?}: {err}");
        assert!(out.deltas.is_empty() && out.status_changes.is_empty());
        assert_eq!(s.snapshot(), before, "{cmd:?} changed the state");
    }
}

#[test]
fn reapplying_is_a_noop_and_endpoints_are_idempotent() {
    let mut s = two_tenants();
    let before = s.snapshot();
    for cmd in [
        vpc("blue", "10.0.0.0/16", 1, None),
        vpc("blue", "10.0.0.0/16", 1, Some(1000)),
        subnet("blue-a", "blue", "10.0.1.0/24", 1),
        ep("blue", "b0", "blue", "blue-a", "d1", None),
        ep("blue", "b0", "blue", "blue-a", "d1", Some("10.0.1.2")),
        Command::ReleaseEndpoint {
            namespace: "blue".into(),
            name: "nope".into(),
        },
        Command::DeleteVpc {
            name: "nope".into(),
        },
    ] {
        let out = ok(&mut s, cmd);
        assert!(out.deltas.is_empty(), "{:?}", out.deltas);
    }
    // Re-applying the VPC with the allocated VNI spelled out stores the spec, nothing else.
    let mut again = ClusterState::restore(&before).unwrap();
    ok(&mut again, vpc("blue", "10.0.0.0/16", 1, Some(1000)));
    assert!(again.same_as(&s));
}

#[test]
fn ipam_through_commands() {
    let mut s = ClusterState::new();
    ok(&mut s, register(1));
    ok(&mut s, vpc("v", "10.0.0.0/16", 1, None));
    ok(&mut s, subnet("tiny", "v", "10.0.0.0/29", 1));
    let mut ips = Vec::new();
    for i in 0..5 {
        let out = ok(&mut s, ep("ns", &format!("e{i}"), "v", "tiny", "d1", None));
        let Ok(Reply::Endpoint(a)) = out.reply else {
            panic!()
        };
        assert_eq!(a.prefix_len(), 29);
        assert_eq!(a.gateway, Ipv4Addr::new(10, 0, 0, 1));
        ips.push(a.ip.to_string());
    }
    assert_eq!(
        ips,
        ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]
    );
    let err = s
        .apply(ep("ns", "e5", "v", "tiny", "d1", None))
        .reply
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("subnet \"tiny\" (10.0.0.0/29) has no free address: all 5"),
        "{err}"
    );
    ok(
        &mut s,
        Command::ReleaseEndpoint {
            namespace: "ns".into(),
            name: "e2".into(),
        },
    );
    let out = ok(&mut s, ep("ns", "e6", "v", "tiny", "d1", None));
    let Ok(Reply::Endpoint(a)) = out.reply else {
        panic!()
    };
    assert_eq!(a.ip.to_string(), "10.0.0.4");
    assert_tables_consistent(&s);
}

#[test]
fn vni_freed_on_delete_and_reused() {
    let mut s = ClusterState::new();
    ok(&mut s, vpc("a", "10.0.0.0/16", 1, None));
    ok(&mut s, vpc("b", "10.0.0.0/16", 1, None));
    assert_eq!(
        s.get_vpc("b").unwrap().status.unwrap().vni.unwrap().get(),
        1001
    );
    ok(&mut s, Command::DeleteVpc { name: "a".into() });
    ok(&mut s, vpc("c", "10.0.0.0/16", 1, None));
    assert_eq!(
        s.get_vpc("c").unwrap().status.unwrap().vni.unwrap().get(),
        1000
    );
    // No droplets: nothing placed, and status says why.
    let st = s.get_vpc("c").unwrap().status.unwrap();
    assert_eq!(st.phase, Phase::Pending);
    assert_eq!(st.conditions[0].reason, "NotEnoughReadyDroplets");
}

fn placements(s: &ClusterState) -> BTreeMap<String, Vec<DropletName>> {
    let mut m = BTreeMap::new();
    for v in s.list_vpcs() {
        m.insert(format!("vpc/{}", v.name()), v.status.unwrap().dividers);
    }
    for sn in s.list_subnets() {
        m.insert(format!("subnet/{}", sn.name()), sn.status.unwrap().bouncers);
    }
    m
}

#[test]
fn placement_is_sticky() {
    let mut s = ClusterState::new();
    for i in 1..=8 {
        ok(&mut s, register(i));
    }
    for v in 0..6 {
        ok(&mut s, vpc(&format!("v{v}"), "10.0.0.0/16", 2, None));
        for n in 0..3 {
            ok(
                &mut s,
                subnet(
                    &format!("v{v}-s{n}"),
                    &format!("v{v}"),
                    &format!("10.0.{n}.0/24"),
                    3,
                ),
            );
        }
    }
    let before = placements(&s);
    for holders in before.values() {
        let mut d = holders.clone();
        d.dedup();
        assert_eq!(&d, holders, "distinct holders");
    }
    // Spread: no droplet above the bound for the final mean.
    let mut load: BTreeMap<&DropletName, u32> = BTreeMap::new();
    for h in before.values().flatten() {
        *load.entry(h).or_default() += 1;
    }
    let total: u32 = load.values().sum();
    let bound = crate::placement::load_bound(u64::from(total), 0, 8);
    assert!(load.values().all(|l| *l <= bound), "{load:?} bound {bound}");

    // A droplet joining moves nothing.
    ok(&mut s, register(9));
    assert_eq!(placements(&s), before);

    // A droplet becoming unreachable moves only its roles.
    ok(
        &mut s,
        Command::SetDropletPhase {
            name: dn("d3"),
            phase: DropletPhase::Unreachable,
            seen: 2,
        },
    );
    let after = placements(&s);
    for (obj, old) in &before {
        let new = &after[obj];
        assert_eq!(new.len(), old.len(), "{obj} still fully placed");
        assert!(!new.contains(&dn("d3")));
        for d in old.iter().filter(|d| d.as_str() != "d3") {
            assert!(new.contains(d), "{obj}: {d} kept its role");
        }
    }
    // Returning takes nothing back.
    ok(
        &mut s,
        Command::SetDropletPhase {
            name: dn("d3"),
            phase: DropletPhase::Ready,
            seen: 3,
        },
    );
    assert_eq!(placements(&s), after);

    // Scale-in keeps the highest-ranked, scale-out keeps everyone.
    ok(&mut s, subnet("v0-s0", "v0", "10.0.0.0/24", 1));
    let one = placements(&s)["subnet/v0-s0"].clone();
    assert_eq!(one.len(), 1);
    assert!(after["subnet/v0-s0"].contains(&one[0]));
    ok(&mut s, subnet("v0-s0", "v0", "10.0.0.0/24", 4));
    let four = placements(&s)["subnet/v0-s0"].clone();
    assert_eq!(four.len(), 4);
    assert!(four.contains(&one[0]));
    assert_tables_consistent(&s);
}

#[test]
fn underplaced_roles_fill_when_droplets_join() {
    let mut s = ClusterState::new();
    ok(&mut s, register(1));
    ok(&mut s, vpc("v", "10.0.0.0/16", 3, None));
    let st = s.get_vpc("v").unwrap().status.unwrap();
    assert_eq!(st.dividers.len(), 1);
    assert_eq!(st.conditions[0].status, "False");
    ok(&mut s, register(2));
    ok(&mut s, register(3));
    ok(&mut s, register(4));
    let st = s.get_vpc("v").unwrap().status.unwrap();
    assert_eq!(st.dividers, vec![dn("d1"), dn("d2"), dn("d3")]);
    assert_eq!(st.conditions[0].status, "True");
}

#[test]
fn acks_turn_objects_ready() {
    let mut s = ClusterState::new();
    ok(&mut s, register(1));
    ok(&mut s, register(2));
    ok(&mut s, vpc("v", "10.0.0.0/16", 1, None));
    ok(&mut s, subnet("a", "v", "10.0.1.0/24", 1));
    let out = ok(&mut s, ep("ns", "e", "v", "a", "d1", None));
    assert_eq!(out.status_changes.len(), 1);
    assert_eq!(out.status_changes[0].phase, Phase::Provisioning);
    let holders: Vec<_> = out
        .deltas
        .iter()
        .map(|d| (d.droplet.clone(), d.version))
        .collect();
    assert!(!holders.is_empty() && holders.len() <= 2);
    let mut changes = Vec::new();
    for (d, v) in holders {
        let out = ok(
            &mut s,
            Command::AckProgrammed {
                droplet: d,
                version: v,
            },
        );
        changes.extend(out.status_changes);
    }
    assert!(
        changes.iter().any(
            |c| c.object == ObjRef::Endpoint(EndpointKey::new("ns", "e"))
                && c.phase == Phase::Ready
        ),
        "{changes:?}"
    );
    let e = s.get_endpoint("ns", "e").unwrap();
    assert_eq!(e.status.unwrap().phase, Phase::Ready);
    // Versions increase by one per delta.
    let d1 = s.version("d1");
    let out = ok(&mut s, ep("ns", "f", "v", "a", "d1", None));
    let delta = out
        .deltas
        .iter()
        .find(|d| d.droplet.as_str() == "d1")
        .unwrap();
    assert_eq!(delta.version, d1 + 1);
}

#[test]
fn snapshot_restore_is_identical() {
    let mut s = two_tenants();
    let mut r = ClusterState::restore(&s.snapshot()).unwrap();
    assert!(r.same_as(&s));
    for cmd in [
        ep("blue", "n1", "blue", "blue-a", "d2", None),
        Command::SetDropletPhase {
            name: dn("d1"),
            phase: DropletPhase::Unreachable,
            seen: 9,
        },
        subnet("blue-b", "blue", "10.0.2.0/24", 3),
    ] {
        let a = s.apply(cmd.clone());
        let b = r.apply(cmd);
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
    }
    assert!(r.same_as(&s));
    assert!(ClusterState::restore(b"garbage").is_err());
}
