//! Conversions between manifests, the wire and what users see.
//!
//! Manifests are read with `alkaid-model` (so shape errors read like the model's) and sent as
//! `alkaid.v1` messages; answers are shown as Kubernetes shows objects: `apiVersion`, `kind`,
//! `metadata`, `spec`, `status`, camelCase fields.

use alkaid_model::Resource;
use alkaid_model::resource::API_VERSION;
use alkaid_proto::v1 as pb;
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};

fn str_of(v: &Value, k: &str) -> String {
    v.get(k)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn u32_of(v: &Value, k: &str) -> u32 {
    v.get(k)
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(0)
}

fn meta(r: &Resource) -> pb::ObjectMeta {
    let m = r.metadata();
    pb::ObjectMeta {
        name: m.name.clone(),
        namespace: m.namespace.clone().unwrap_or_default(),
        ..Default::default()
    }
}

/// A manifest object as a wire resource.
///
/// # Errors
/// [`Error::Usage`] for kinds only the operator writes (bouncers, dividers, droplets,
/// endpoints): they are placed, registered or allocated, never applied.
pub fn to_pb(r: &Resource) -> Result<pb::Resource> {
    use pb::resource::Kind as K;
    // The model's serde shape is the CR shape: read fields from it instead of from the
    // model's types, so this file does not track their internals.
    let v = serde_json::to_value(r).map_err(|source| Error::Json {
        what: "encoding a resource".into(),
        source,
    })?;
    let spec = v.get("spec").cloned().unwrap_or(Value::Null);
    let kind = match r {
        Resource::Vpc(_) => K::Vpc(pb::Vpc {
            metadata: Some(meta(r)),
            spec: Some(pb::VpcSpec {
                cidr: str_of(&spec, "cidr"),
                dividers: u32_of(&spec, "dividers"),
                vni: spec.get("vni").and_then(Value::as_u64).map(|n| n as u32),
                namespaces: spec
                    .get("namespaces")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|s| s.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default(),
            }),
            status: None,
        }),
        Resource::Subnet(_) => K::Subnet(pb::Subnet {
            metadata: Some(meta(r)),
            spec: Some(pb::SubnetSpec {
                vpc: str_of(&spec, "vpc"),
                cidr: str_of(&spec, "cidr"),
                bouncers: u32_of(&spec, "bouncers"),
                gateway: spec
                    .get("gateway")
                    .and_then(Value::as_str)
                    .map(String::from),
            }),
            status: None,
        }),
        other => {
            return Err(Error::Usage(format!(
                "{} {:?}: only Vpc and Subnet can be applied; the operator places bouncers and dividers, agents register droplets, and the CNI path creates endpoints",
                other.kind(),
                other.metadata().name
            )));
        }
    };
    Ok(pb::Resource { kind: Some(kind) })
}

fn meta_json(kind: &str, m: Option<&pb::ObjectMeta>) -> (Value, Map<String, Value>) {
    let m = m.cloned().unwrap_or_default();
    let mut md = Map::new();
    md.insert("name".into(), json!(m.name));
    if !m.namespace.is_empty() {
        md.insert("namespace".into(), json!(m.namespace));
    }
    md.insert("generation".into(), json!(m.generation));
    md.insert(
        "resourceVersion".into(),
        json!(m.resource_version.to_string()),
    );
    if !m.labels.is_empty() {
        md.insert("labels".into(), json!(m.labels));
    }
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), json!(API_VERSION));
    obj.insert("kind".into(), json!(kind));
    obj.insert("metadata".into(), Value::Object(md));
    (Value::Null, obj)
}

fn conditions(c: &[pb::Condition]) -> Value {
    Value::Array(
        c.iter()
            .map(|c| json!({"type": c.r#type, "status": c.status, "reason": c.reason, "message": c.message}))
            .collect(),
    )
}

/// A wire resource as Kubernetes would show it (`metadata`, `spec`, `status`).
pub fn to_json(r: &pb::Resource) -> Value {
    use pb::resource::Kind as K;
    let Some(kind) = &r.kind else {
        return Value::Null;
    };
    let (name, md, spec, status) = match kind {
        K::Vpc(o) => {
            let s = o.spec.clone().unwrap_or_default();
            let st = o.status.clone().map(|st| {
                json!({"vni": st.vni, "phase": st.phase, "dividers": st.dividers,
                       "conditions": conditions(&st.conditions)})
            });
            let mut spec =
                json!({"cidr": s.cidr, "dividers": s.dividers.max(1), "namespaces": s.namespaces});
            if let Some(v) = s.vni {
                spec["vni"] = json!(v);
            }
            ("Vpc", o.metadata.as_ref(), spec, st)
        }
        K::Subnet(o) => {
            let s = o.spec.clone().unwrap_or_default();
            let st = o.status.clone().map(|st| {
                json!({"phase": st.phase, "bouncers": st.bouncers, "gateway": st.gateway,
                       "allocated": st.allocated, "capacity": st.capacity,
                       "conditions": conditions(&st.conditions)})
            });
            let mut spec = json!({"vpc": s.vpc, "cidr": s.cidr, "bouncers": s.bouncers.max(1)});
            if let Some(g) = s.gateway {
                spec["gateway"] = json!(g);
            }
            ("Subnet", o.metadata.as_ref(), spec, st)
        }
        K::Bouncer(o) => {
            let s = o.spec.clone().unwrap_or_default();
            let st = o.status.clone().map(|st| json!({"phase": st.phase}));
            (
                "Bouncer",
                o.metadata.as_ref(),
                json!({"subnet": s.subnet, "droplet": s.droplet}),
                st,
            )
        }
        K::Divider(o) => {
            let s = o.spec.clone().unwrap_or_default();
            let st = o.status.clone().map(|st| json!({"phase": st.phase}));
            (
                "Divider",
                o.metadata.as_ref(),
                json!({"vpc": s.vpc, "droplet": s.droplet}),
                st,
            )
        }
        K::Droplet(o) => {
            let s = o.spec.clone().unwrap_or_default();
            let st = o.status.clone().map(|st| {
                json!({"phase": st.phase, "lastSeen": st.last_seen, "conditions": conditions(&st.conditions)})
            });
            let spec = json!({"ip": s.ip, "mac": s.mac, "interface": s.interface, "node": s.node});
            ("Droplet", o.metadata.as_ref(), spec, st)
        }
        K::Endpoint(o) => {
            let s = o.spec.clone().unwrap_or_default();
            let st = o.status.clone().map(|st| {
                json!({"phase": st.phase, "programmedOn": st.programmed_on,
                       "conditions": conditions(&st.conditions)})
            });
            let spec = json!({"vpc": s.vpc, "subnet": s.subnet, "droplet": s.droplet,
                              "ip": s.ip, "mac": s.mac, "pod": s.pod});
            ("Endpoint", o.metadata.as_ref(), spec, st)
        }
    };
    let (_, mut obj) = meta_json(name, md);
    obj.insert("spec".into(), spec);
    if let Some(st) = status {
        obj.insert("status".into(), st);
    }
    Value::Object(obj)
}

/// A list as `kubectl get -o json` shows one.
pub fn list_json(items: &[pb::Resource]) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": items.iter().map(to_json).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_become_wire_resources() {
        let r: Resource = serde_yaml_ng::from_str(
            "apiVersion: alkaid.dev/v1alpha1\nkind: Subnet\nmetadata: {name: web}\nspec: {vpc: blue, cidr: 10.0.1.0/24, bouncers: 2}\n",
        )
        .unwrap();
        let p = to_pb(&r).unwrap();
        let Some(pb::resource::Kind::Subnet(s)) = p.kind else {
            panic!("not a subnet")
        };
        let spec = s.spec.unwrap();
        assert_eq!(
            (spec.vpc.as_str(), spec.cidr.as_str(), spec.bouncers),
            ("blue", "10.0.1.0/24", 2)
        );
        assert_eq!(spec.gateway, None);
    }

    #[test]
    fn wire_objects_show_in_kubernetes_shape() {
        let r = pb::Resource {
            kind: Some(pb::resource::Kind::Vpc(pb::Vpc {
                metadata: Some(pb::ObjectMeta {
                    name: "blue".into(),
                    resource_version: 7,
                    ..Default::default()
                }),
                spec: Some(pb::VpcSpec {
                    cidr: "10.0.0.0/16".into(),
                    ..Default::default()
                }),
                status: Some(pb::VpcStatus {
                    vni: 1000,
                    phase: "Ready".into(),
                    ..Default::default()
                }),
            })),
        };
        let v = to_json(&r);
        assert_eq!(v["apiVersion"], "alkaid.dev/v1alpha1");
        assert_eq!(v["kind"], "Vpc");
        assert_eq!(v["metadata"]["name"], "blue");
        assert_eq!(v["metadata"]["resourceVersion"], "7");
        assert_eq!(v["spec"]["cidr"], "10.0.0.0/16");
        assert_eq!(v["spec"]["dividers"], 1);
        assert_eq!(v["status"]["vni"], 1000);
        assert_eq!(list_json(&[r])["items"][0]["kind"], "Vpc");
    }
}
