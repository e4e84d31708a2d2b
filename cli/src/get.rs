//! `alkaid get` and `alkaid describe`: lists as kubectl-style tables, objects as
//! Kubernetes shows them (`-o json|yaml`), and a readable `describe`.

use alkaid_proto::v1 as pb;
use serde_json::Value;

use crate::client::{Target, rpc};
use crate::error::Result;
use crate::kind::Kind;
use crate::output::{self, Format, text};

/// Fetches one object (`name` given) or all objects of `kind`.
///
/// # Errors
/// [`crate::Error::Rpc`] (e.g. not found) with the server's message.
pub async fn fetch(
    target: &Target,
    kind: Kind,
    name: Option<&str>,
    namespace: &str,
) -> Result<Vec<pb::Resource>> {
    let mut api = target.connect().await?;
    match name {
        Some(n) => {
            let req = pb::GetRequest {
                kind: kind.pb() as i32,
                name: n.to_string(),
                namespace: namespace.to_string(),
                stale: false,
            };
            let what = format!("getting {} {n:?}", kind.name().to_ascii_lowercase());
            let r = api.get(req).await.map_err(rpc(what))?.into_inner();
            Ok(r.resource.into_iter().collect())
        }
        None => {
            let req = pb::ListRequest {
                kind: kind.pb() as i32,
                namespace: namespace.to_string(),
                stale: false,
            };
            let what = format!("listing {}", kind.plural());
            Ok(api
                .list(req)
                .await
                .map_err(rpc(what))?
                .into_inner()
                .resources)
        }
    }
}

fn col(v: &Value, path: &str) -> String {
    text(v.pointer(path).unwrap_or(&Value::Null))
}

/// Columns for `kind`: (header, JSON pointer, wide only).
fn columns(kind: Kind) -> &'static [(&'static str, &'static str, bool)] {
    match kind {
        Kind::Vpc => &[
            ("NAME", "/metadata/name", false),
            ("CIDR", "/spec/cidr", false),
            ("VNI", "/status/vni", false),
            ("DIVIDERS", "/spec/dividers", false),
            ("PHASE", "/status/phase", false),
            ("DIVIDER-DROPLETS", "/status/dividers", true),
            ("NAMESPACES", "/spec/namespaces", true),
        ],
        Kind::Subnet => &[
            ("NAME", "/metadata/name", false),
            ("VPC", "/spec/vpc", false),
            ("CIDR", "/spec/cidr", false),
            ("BOUNCERS", "/spec/bouncers", false),
            ("ALLOCATED", "/status/allocated", false),
            ("PHASE", "/status/phase", false),
            ("GATEWAY", "/status/gateway", true),
            ("CAPACITY", "/status/capacity", true),
            ("BOUNCER-DROPLETS", "/status/bouncers", true),
        ],
        Kind::Bouncer => &[
            ("NAME", "/metadata/name", false),
            ("SUBNET", "/spec/subnet", false),
            ("DROPLET", "/spec/droplet", false),
            ("PHASE", "/status/phase", false),
        ],
        Kind::Divider => &[
            ("NAME", "/metadata/name", false),
            ("VPC", "/spec/vpc", false),
            ("DROPLET", "/spec/droplet", false),
            ("PHASE", "/status/phase", false),
        ],
        Kind::Droplet => &[
            ("NAME", "/metadata/name", false),
            ("IP", "/spec/ip", false),
            ("PHASE", "/status/phase", false),
            ("MAC", "/spec/mac", true),
            ("INTERFACE", "/spec/interface", true),
            ("NODE", "/spec/node", true),
            ("LAST-SEEN", "/status/lastSeen", true),
        ],
        Kind::Endpoint => &[
            ("NAMESPACE", "/metadata/namespace", false),
            ("NAME", "/metadata/name", false),
            ("VPC", "/spec/vpc", false),
            ("SUBNET", "/spec/subnet", false),
            ("IP", "/spec/ip", false),
            ("DROPLET", "/spec/droplet", false),
            ("PHASE", "/status/phase", false),
            ("MAC", "/spec/mac", true),
            ("POD", "/spec/pod", true),
            ("PROGRAMMED-ON", "/status/programmedOn", true),
        ],
    }
}

/// Renders `items` of `kind` in `format`. `single` prints one object bare in JSON/YAML.
pub fn render(kind: Kind, items: &[pb::Resource], format: Format, single: bool) -> String {
    match format {
        Format::Json | Format::Yaml => {
            let v = if single && items.len() == 1 {
                crate::pb::to_json(&items[0])
            } else {
                crate::pb::list_json(items)
            };
            output::structured(&v, format)
        }
        Format::Table | Format::Wide => {
            if items.is_empty() {
                return format!("No {} found.\n", kind.plural());
            }
            let cols: Vec<_> = columns(kind)
                .iter()
                .filter(|(_, _, wide)| !wide || format == Format::Wide)
                .collect();
            let headers: Vec<&str> = cols.iter().map(|c| c.0).collect();
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(crate::pb::to_json)
                .map(|v| cols.iter().map(|c| col(&v, c.1)).collect())
                .collect();
            output::table(&headers, &rows)
        }
    }
}

/// `describe`: every field as `Key: value`, nested maps indented, conditions as a table.
pub fn describe(item: &pb::Resource) -> String {
    fn walk(out: &mut String, v: &Value, indent: usize) {
        let Value::Object(m) = v else { return };
        for (k, v) in m {
            let pad = " ".repeat(indent);
            let key = {
                let mut c = k.chars();
                c.next()
                    .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                    .unwrap_or_default()
            };
            match v {
                Value::Object(_) => {
                    out.push_str(&format!("{pad}{key}:\n"));
                    walk(out, v, indent + 2);
                }
                Value::Array(a) if a.iter().any(Value::is_object) => {
                    out.push_str(&format!("{pad}{key}:\n"));
                    let rows: Vec<Vec<String>> = a
                        .iter()
                        .map(|c| {
                            ["type", "status", "reason", "message"]
                                .iter()
                                .map(|f| text(&c[*f]))
                                .collect()
                        })
                        .collect();
                    for l in output::table(&["TYPE", "STATUS", "REASON", "MESSAGE"], &rows).lines()
                    {
                        out.push_str(&format!("{pad}  {l}\n"));
                    }
                }
                other => {
                    let t = text(other);
                    let t = if t.is_empty() {
                        "<none>".to_string()
                    } else {
                        t
                    };
                    out.push_str(&format!(
                        "{pad}{key}:{}{t}\n",
                        " ".repeat(18usize.saturating_sub(key.len() + pad.len()).max(1))
                    ));
                }
            }
        }
    }
    let mut out = String::new();
    walk(&mut out, &crate::pb::to_json(item), 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet(name: &str, phase: &str) -> pb::Resource {
        pb::Resource {
            kind: Some(pb::resource::Kind::Subnet(pb::Subnet {
                metadata: Some(pb::ObjectMeta {
                    name: name.into(),
                    ..Default::default()
                }),
                spec: Some(pb::SubnetSpec {
                    vpc: "blue".into(),
                    cidr: "10.0.1.0/24".into(),
                    bouncers: 2,
                    gateway: None,
                }),
                status: Some(pb::SubnetStatus {
                    phase: phase.into(),
                    bouncers: vec!["d1".into(), "d2".into()],
                    gateway: "10.0.1.1".into(),
                    allocated: 3,
                    capacity: 253,
                    conditions: vec![pb::Condition {
                        r#type: "Ready".into(),
                        status: "True".into(),
                        reason: "Acked".into(),
                        message: "ok".into(),
                    }],
                }),
            })),
        }
    }

    #[test]
    fn tables_and_wide_tables() {
        let t = render(
            Kind::Subnet,
            &[subnet("web", "Ready")],
            Format::Table,
            false,
        );
        assert_eq!(
            t.lines().next().unwrap(),
            "NAME   VPC    CIDR          BOUNCERS   ALLOCATED   PHASE"
        );
        assert_eq!(
            t.lines().nth(1).unwrap(),
            "web    blue   10.0.1.0/24   2          3           Ready"
        );
        let w = render(Kind::Subnet, &[subnet("web", "Ready")], Format::Wide, false);
        assert!(
            w.lines()
                .nth(1)
                .unwrap()
                .ends_with("10.0.1.1   253        d1,d2"),
            "{w}"
        );
        assert_eq!(
            render(Kind::Vpc, &[], Format::Table, false),
            "No vpcs found.\n"
        );
    }

    #[test]
    fn json_single_and_list() {
        let one: Value = serde_json::from_str(&render(
            Kind::Subnet,
            &[subnet("web", "Ready")],
            Format::Json,
            true,
        ))
        .unwrap();
        assert_eq!(one["metadata"]["name"], "web");
        assert_eq!(one["status"]["bouncers"][1], "d2");
        let list: Value = serde_json::from_str(&render(
            Kind::Subnet,
            &[subnet("a", "Ready")],
            Format::Json,
            false,
        ))
        .unwrap();
        assert_eq!(list["kind"], "List");
        let y = render(Kind::Subnet, &[subnet("web", "Ready")], Format::Yaml, true);
        assert!(y.contains("kind: Subnet"), "{y}");
    }

    #[test]
    fn describe_reads_like_kubectl() {
        let d = describe(&subnet("web", "Ready"));
        assert!(d.contains("Kind:"), "{d}");
        assert!(d.contains("Spec:\n") && d.contains("\n  Vpc:"), "{d}");
        assert!(d.contains("TYPE    STATUS   REASON   MESSAGE"), "{d}");
    }
}
