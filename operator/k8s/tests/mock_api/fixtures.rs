//! Objects and contexts shared by the mock API tests.

use std::sync::Arc;

use alkaid_operator_k8s::crd::{Subnet, SubnetSpec, Vpc, VpcSpec};
use alkaid_operator_k8s::{Context, FakeControl, K8sConfig, Metrics};
use alkaid_proto::v1 as pb;
use kube::Client;

pub fn ctx(client: Client, fake: &FakeControl) -> Arc<Context<FakeControl>> {
    Arc::new(Context::new(
        client,
        K8sConfig::default(),
        fake.clone(),
        Arc::new(Metrics::default()),
    ))
}

pub fn vpc(finalized: bool) -> Vpc {
    let mut v = Vpc::new(
        "blue",
        VpcSpec {
            cidr: "10.0.0.0/16".into(),
            dividers: 1,
            vni: None,
            namespaces: vec!["team-a".into()],
        },
    );
    v.metadata.generation = Some(1);
    v.metadata.resource_version = Some("10".into());
    v.metadata.uid = Some("uid-blue".into());
    if finalized {
        v.metadata.finalizers = Some(vec!["alkaid.dev/vpc".into()]);
    }
    v
}

pub fn subnet(finalized: bool) -> Subnet {
    let mut s = Subnet::new(
        "web",
        SubnetSpec {
            vpc: "blue".into(),
            cidr: "10.1.0.0/24".into(),
            bouncers: 1,
            gateway: None,
        },
    );
    s.metadata.generation = Some(2);
    s.metadata.uid = Some("uid-web".into());
    if finalized {
        s.metadata.finalizers = Some(vec!["alkaid.dev/subnet".into()]);
    }
    s
}

pub fn deleting<K: kube::Resource>(mut k: K) -> K {
    k.meta_mut().deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        "2026-01-01T00:00:00Z".parse().unwrap(),
    ));
    k
}

pub fn store_subnet(name: &str, vpc: &str) -> pb::Resource {
    pb::Resource {
        kind: Some(pb::resource::Kind::Subnet(pb::Subnet {
            metadata: Some(pb::ObjectMeta {
                name: name.into(),
                ..Default::default()
            }),
            spec: Some(pb::SubnetSpec {
                vpc: vpc.into(),
                cidr: "10.0.1.0/24".into(),
                bouncers: 1,
                gateway: None,
            }),
            status: None,
        })),
    }
}

pub fn store_endpoint(ns: &str, name: &str, subnet: &str) -> pb::Resource {
    pb::Resource {
        kind: Some(pb::resource::Kind::Endpoint(pb::Endpoint {
            metadata: Some(pb::ObjectMeta {
                name: name.into(),
                namespace: ns.into(),
                ..Default::default()
            }),
            spec: Some(pb::EndpointSpec {
                vpc: "blue".into(),
                subnet: subnet.into(),
                droplet: "d1".into(),
                ip: "10.0.1.5".into(),
                mac: "02:00:0a:00:01:05".into(),
                pod: name.into(),
            }),
            status: Some(pb::EndpointStatus {
                phase: "Ready".into(),
                programmed_on: vec!["d1".into()],
                conditions: vec![],
            }),
        })),
    }
}

/// Sets the stored VPC's phase, as acknowledgements from droplets would.
pub fn set_vpc_phase(fake: &FakeControl, phase: &str) {
    let mut r = fake.object(pb::Kind::Vpc, "blue", "").expect("vpc stored");
    if let Some(pb::resource::Kind::Vpc(v)) = r.kind.as_mut() {
        let st = v.status.get_or_insert_with(Default::default);
        st.phase = phase.into();
        st.dividers = vec!["d1".into()];
    }
    fake.put(r);
}
