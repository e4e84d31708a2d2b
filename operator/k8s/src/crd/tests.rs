//! The CRD schemas say what they must, and the CR YAML shape is the model's: a manifest
//! read by either side and written back reads the same on the other.

use std::fmt::Debug;

use kube::CustomResourceExt;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::*;

fn schema_of<K: CustomResourceExt>() -> serde_json::Value {
    let crd = serde_json::to_value(K::crd()).unwrap();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

#[test]
fn vpc_schema_rules() {
    let s = schema_of::<Vpc>();
    let spec = &s["properties"]["spec"];
    assert_eq!(spec["required"], serde_json::json!(["cidr"]));
    assert_eq!(spec["properties"]["cidr"]["pattern"], CIDR_PATTERN);
    assert_eq!(spec["properties"]["dividers"]["minimum"], 1.0);
    assert_eq!(spec["properties"]["dividers"]["maximum"], 16.0);
    assert_eq!(spec["properties"]["dividers"]["default"], 1);
    assert_eq!(spec["properties"]["vni"]["minimum"], 1.0);
    assert_eq!(spec["properties"]["vni"]["maximum"], 16_777_215.0);
    assert_eq!(
        spec["properties"]["namespaces"]["items"]["pattern"],
        LABEL_PATTERN
    );
    assert_eq!(
        spec["properties"]["cidr"]["x-kubernetes-validations"][0]["rule"],
        "self == oldSelf"
    );
}

#[test]
fn subnet_schema_rules() {
    let s = schema_of::<Subnet>();
    let spec = &s["properties"]["spec"];
    assert_eq!(spec["required"], serde_json::json!(["cidr", "vpc"]));
    assert_eq!(spec["properties"]["bouncers"]["minimum"], 1.0);
    assert_eq!(spec["properties"]["bouncers"]["maximum"], 16.0);
    assert_eq!(spec["properties"]["gateway"]["pattern"], IPV4_PATTERN);
    let rule = spec["x-kubernetes-validations"][0]["rule"]
        .as_str()
        .unwrap();
    assert!(rule.contains("containsIP"), "{rule}");
}

#[test]
fn every_crd_has_status_subresource_and_columns() {
    for (file, crd) in all() {
        let v = &crd.spec.versions[0];
        assert_eq!(crd.spec.group, GROUP, "{file}");
        assert_eq!(v.name, VERSION, "{file}");
        assert!(
            v.subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            "{file}"
        );
        let cols = v.additional_printer_columns.as_deref().unwrap_or_default();
        assert!(
            cols.iter().any(|c| c.name == "Phase"),
            "{file} has no Phase column"
        );
        let expected = if file == "endpoint.yaml" {
            "Namespaced"
        } else {
            "Cluster"
        };
        assert_eq!(crd.spec.scope, expected, "{file}");
    }
}

/// `yaml` read as the CR and as the model object; each written back and read by the other
/// side must equal what that side read directly.
fn same_shape<Cr, M>(yaml: &str)
where
    Cr: Serialize + DeserializeOwned + PartialEq + Debug,
    M: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let cr: Cr = serde_yaml_ng::from_str(yaml).expect("cr reads the manifest");
    let m: M = serde_yaml_ng::from_str(yaml).expect("model reads the manifest");
    let cr_from_m: Cr = serde_yaml_ng::from_str(&serde_yaml_ng::to_string(&m).unwrap())
        .expect("cr reads what the model wrote");
    let m_from_cr: M = serde_yaml_ng::from_str(&serde_yaml_ng::to_string(&cr).unwrap())
        .expect("model reads what the cr wrote");
    assert_eq!(cr, cr_from_m);
    assert_eq!(m, m_from_cr);
}

#[test]
fn yaml_shapes_match_the_model() {
    use alkaid_model::resource as m;
    same_shape::<Vpc, m::Vpc>(
        "apiVersion: alkaid.dev/v1alpha1\nkind: Vpc\nmetadata: {name: blue}\n\
         spec: {cidr: 10.0.0.0/16, dividers: 2, vni: 7001, namespaces: [team-a]}\n\
         status: {vni: 7001, phase: Ready, dividers: [d1, d2], conditions: [{type: Placed, status: 'True', reason: Placed, message: ok}]}\n",
    );
    same_shape::<Vpc, m::Vpc>(
        "apiVersion: alkaid.dev/v1alpha1\nkind: Vpc\nmetadata: {name: blue}\nspec: {cidr: 10.0.0.0/16}\n",
    );
    same_shape::<Subnet, m::Subnet>(
        "apiVersion: alkaid.dev/v1alpha1\nkind: Subnet\nmetadata: {name: web}\n\
         spec: {vpc: blue, cidr: 10.0.1.0/24, bouncers: 3, gateway: 10.0.1.1}\n\
         status: {phase: Provisioning, bouncers: [d1], gateway: 10.0.1.1, allocated: 2, capacity: 253, conditions: []}\n",
    );
    same_shape::<Subnet, m::Subnet>(
        "apiVersion: alkaid.dev/v1alpha1\nkind: Subnet\nmetadata: {name: web}\nspec: {vpc: blue, cidr: 10.0.1.0/24}\n",
    );
    same_shape::<Endpoint, m::Endpoint>(
        "apiVersion: alkaid.dev/v1alpha1\nkind: Endpoint\nmetadata: {name: p1, namespace: team-a}\n\
         spec: {vpc: blue, subnet: web, droplet: d1, ip: 10.0.1.5, mac: '02:00:0a:00:01:05', pod: p1}\n\
         status: {phase: Ready, programmedOn: [d1, d2]}\n",
    );
    same_shape::<Droplet, m::Droplet>(
        "apiVersion: alkaid.dev/v1alpha1\nkind: Droplet\nmetadata: {name: d1}\n\
         spec: {ip: 192.168.0.10, mac: '02:00:00:00:00:01', interface: eth0, node: node-1}\n\
         status: {phase: Unreachable, lastSeen: 1700000000000}\n",
    );
    same_shape::<Bouncer, m::Bouncer>(
        "apiVersion: alkaid.dev/v1alpha1\nkind: Bouncer\nmetadata: {name: web.d1}\n\
         spec: {subnet: web, droplet: d1}\nstatus: {phase: Ready}\n",
    );
    same_shape::<Divider, m::Divider>(
        "apiVersion: alkaid.dev/v1alpha1\nkind: Divider\nmetadata: {name: blue.d1}\n\
         spec: {vpc: blue, droplet: d1}\nstatus: {phase: Pending}\n",
    );
}

#[test]
fn yaml_is_stable_and_marked_generated() {
    let (_, crd) = &all()[0];
    let a = to_yaml(crd).unwrap();
    assert!(a.starts_with("# Generated by `cargo run -p alkaid-operator-k8s --bin crdgen`"));
    assert_eq!(a, to_yaml(crd).unwrap());
}
