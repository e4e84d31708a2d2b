//! Two tenants whose VPCs both use 10.0.0.0/16, on three droplets: prints every droplet's
//! table and a connectivity matrix from the forwarding simulator showing each tenant reaches
//! its own endpoints and never the other's.
//!
//! Run: `cargo run -p alkaid-model --example two_tenants`

use std::net::Ipv4Addr;

use alkaid_model::fwd::{self, HopAction};
use alkaid_model::resource::{Object, SubnetSpec, VpcSpec};
use alkaid_model::{ClusterState, Command, DropletName, EndpointKey, MacAddr, Reply};

fn apply(state: &mut ClusterState, cmd: Command) -> Reply {
    match state.apply(cmd).reply {
        Ok(r) => r,
        Err(e) => panic!("refused: {e}"),
    }
}

fn main() {
    let mut state = ClusterState::new();
    for i in 1..=3u8 {
        apply(
            &mut state,
            Command::RegisterDroplet {
                name: DropletName::new(format!("droplet-{i}")).unwrap(),
                ip: Ipv4Addr::new(192, 168, 0, i),
                mac: MacAddr([0x02, 0, 0, 0, 0, i]),
                interface: "eth0".into(),
                node: format!("node-{i}"),
                seen: 0,
            },
        );
    }
    let mut endpoints = Vec::new();
    for tenant in ["blue", "red"] {
        let mut vpc = VpcSpec::new("10.0.0.0/16".parse().unwrap());
        vpc.namespaces = vec![tenant.to_owned()];
        apply(&mut state, Command::ApplyVpc(Object::new(tenant, vpc)));
        for (k, cidr) in ["10.0.1.0/24", "10.0.2.0/24"].iter().enumerate() {
            let subnet = format!("{tenant}-{k}");
            let spec = SubnetSpec::new(tenant, cidr.parse().unwrap());
            apply(
                &mut state,
                Command::ApplySubnet(Object::new(subnet.clone(), spec)),
            );
            for d in 1..=3 {
                let name = format!("pod-{k}-{d}");
                let reply = apply(
                    &mut state,
                    Command::AllocateEndpoint {
                        namespace: tenant.into(),
                        name: name.clone(),
                        vpc: tenant.into(),
                        subnet: subnet.clone(),
                        droplet: DropletName::new(format!("droplet-{d}")).unwrap(),
                        ip: None,
                        pod: name.clone(),
                    },
                );
                if let Reply::Endpoint(a) = reply {
                    endpoints.push(a);
                }
            }
        }
    }

    for d in state.droplet_names() {
        let table = state.table(d.as_str()).expect("registered");
        println!("== {d} ({} rows)", table.len());
        for (k, v) in table.rows() {
            let key = serde_json::to_string(k).expect("serializable");
            let value = serde_json::to_string(v).expect("serializable");
            println!("  vni {:>5}  {key}\n             -> {value}", k.vni());
        }
    }

    println!("\nconnectivity (rows: from, columns: to; Y = delivered to that endpoint, . = not)");
    let label = |a: &alkaid_model::EndpointAllocation| {
        format!("{}/{}@{}", a.endpoint.namespace, a.endpoint.name, a.ip)
    };
    print!("{:>28}", "");
    for (i, _) in endpoints.iter().enumerate() {
        print!(" {i:>2}");
    }
    println!();
    let mut crossings = 0;
    for (i, a) in endpoints.iter().enumerate() {
        print!("{:>24} {i:>2} ", label(a));
        let from = EndpointKey::new(&a.endpoint.namespace, &a.endpoint.name);
        for b in &endpoints {
            let mark = match fwd::trace(&state, &from, b.ip, 3) {
                Ok(hops) => match &hops.last().expect("non-empty").action {
                    HopAction::Deliver { endpoint } if *endpoint == b.endpoint => "Y",
                    HopAction::Deliver { endpoint } => {
                        // Same IP in the other tenant: delivered to the sender's own tenant.
                        assert_eq!(endpoint.namespace, a.endpoint.namespace, "isolation");
                        "."
                    }
                    _ => "?",
                },
                Err(_) => "x",
            };
            if mark == "Y" && a.vpc != b.vpc {
                crossings += 1;
            }
            print!("  {mark}");
        }
        println!();
    }
    assert_eq!(crossings, 0, "a tenant reached the other tenant");
    let from = &endpoints[0];
    for to in &endpoints[3..6] {
        let hops = fwd::trace(
            &state,
            &EndpointKey::new(&from.endpoint.namespace, &from.endpoint.name),
            to.ip,
            3,
        )
        .expect("reachable");
        println!("\npath {} -> {}:", label(from), label(to));
        for h in hops {
            println!("  {:<10} {:?}", h.droplet.as_str(), h.action);
        }
    }
}
