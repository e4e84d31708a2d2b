//! Every kind reads and writes in the shape of the Kubernetes custom resources.

use alkaid_model::Resource;
use alkaid_model::resource::{Phase, Vpc};
use serde::Deserialize;

const MANIFEST: &str = r#"
apiVersion: alkaid.dev/v1alpha1
kind: Vpc
metadata:
  name: blue
spec:
  cidr: 10.0.0.0/16
  dividers: 2
  namespaces: [team-blue]
---
apiVersion: alkaid.dev/v1alpha1
kind: Subnet
metadata:
  name: blue-web
spec:
  vpc: blue
  cidr: 10.0.1.0/24
  gateway: 10.0.1.254
---
apiVersion: alkaid.dev/v1alpha1
kind: Bouncer
metadata:
  name: blue-web.node-1
spec:
  subnet: blue-web
  droplet: node-1
status:
  phase: Ready
---
apiVersion: alkaid.dev/v1alpha1
kind: Divider
metadata:
  name: blue.node-2
spec:
  vpc: blue
  droplet: node-2
---
apiVersion: alkaid.dev/v1alpha1
kind: Droplet
metadata:
  name: node-1
spec:
  ip: 192.168.0.1
  mac: "02:00:00:00:00:01"
  interface: eth0
  node: node-1
status:
  phase: Unreachable
  lastSeen: 42
---
apiVersion: alkaid.dev/v1alpha1
kind: Endpoint
metadata:
  name: web-0
  namespace: team-blue
  labels: {app: web}
spec:
  vpc: blue
  subnet: blue-web
  droplet: node-1
  ip: 10.0.1.2
  mac: "0a:03:e8:00:01:02"
  pod: web-0
status:
  phase: Provisioning
  programmedOn: [node-1]
"#;

fn parse_all(text: &str) -> Vec<Resource> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|doc| Resource::deserialize(doc).expect("document parses"))
        .collect()
}

#[test]
fn manifest_round_trips() {
    let docs = parse_all(MANIFEST);
    let kinds: Vec<_> = docs.iter().map(Resource::kind).collect();
    assert_eq!(
        kinds,
        ["Vpc", "Subnet", "Bouncer", "Divider", "Droplet", "Endpoint"]
    );
    let Resource::Vpc(vpc) = &docs[0] else {
        panic!()
    };
    assert_eq!(vpc.spec.dividers, 2);
    assert_eq!(vpc.spec.vni, None);
    assert_eq!(vpc.status, None);
    let Resource::Subnet(s) = &docs[1] else {
        panic!()
    };
    assert_eq!(s.spec.bouncers, 1, "default");
    let Resource::Endpoint(e) = &docs[5] else {
        panic!()
    };
    assert_eq!(e.metadata.namespace.as_deref(), Some("team-blue"));
    assert_eq!(e.status.as_ref().unwrap().phase, Phase::Provisioning);

    for doc in &docs {
        // YAML and JSON, through the Resource enum.
        let yaml = serde_yaml_ng::to_string(doc).unwrap();
        assert!(yaml.contains("apiVersion: alkaid.dev/v1alpha1"), "{yaml}");
        assert!(yaml.contains(&format!("kind: {}", doc.kind())), "{yaml}");
        assert_eq!(&parse_all(&yaml)[0], doc, "{yaml}");
        let json = serde_json::to_string(doc).unwrap();
        assert_eq!(
            &serde_json::from_str::<Resource>(&json).unwrap(),
            doc,
            "{json}"
        );
    }
    let json = serde_json::to_value(&docs[4]).unwrap();
    assert_eq!(json["status"]["lastSeen"], 42);
    assert_eq!(json["spec"]["mac"], "02:00:00:00:00:01");
}

#[test]
fn every_command_round_trips_through_postcard() {
    use alkaid_model::Command;
    use alkaid_model::resource::DropletPhase;
    let docs = parse_all(MANIFEST);
    let (Resource::Vpc(vpc), Resource::Subnet(subnet)) = (docs[0].clone(), docs[1].clone()) else {
        panic!()
    };
    let d = alkaid_model::DropletName::new("node-1").unwrap();
    let cmds = vec![
        Command::ApplyVpc(vpc),
        Command::DeleteVpc {
            name: "blue".into(),
        },
        Command::ApplySubnet(subnet),
        Command::DeleteSubnet {
            name: "blue-web".into(),
        },
        Command::RegisterDroplet {
            name: d.clone(),
            ip: "192.168.0.1".parse().unwrap(),
            mac: "02:00:00:00:00:01".parse().unwrap(),
            interface: "eth0".into(),
            node: "node-1".into(),
            seen: 7,
        },
        Command::DropletHeartbeat {
            name: d.clone(),
            seen: 8,
        },
        Command::SetDropletPhase {
            name: d.clone(),
            phase: DropletPhase::Unreachable,
            seen: 9,
        },
        Command::RemoveDroplet { name: d.clone() },
        Command::AllocateEndpoint {
            namespace: "team-blue".into(),
            name: "web-0".into(),
            vpc: "blue".into(),
            subnet: "blue-web".into(),
            droplet: d.clone(),
            ip: Some("10.0.1.9".parse().unwrap()),
            pod: "web-0".into(),
        },
        Command::ReleaseEndpoint {
            namespace: "team-blue".into(),
            name: "web-0".into(),
        },
        Command::AckProgrammed {
            droplet: d,
            version: 3,
        },
    ];
    for cmd in cmds {
        assert_eq!(Command::from_bytes(&cmd.to_bytes()).unwrap(), cmd);
        let json = serde_json::to_string(&cmd).unwrap();
        assert_eq!(serde_json::from_str::<Command>(&json).unwrap(), cmd);
    }
    assert!(Command::from_bytes(&[0xff, 0xff]).is_err());
}

#[test]
fn bad_documents_say_what_to_fix() {
    let cases = [
        (
            "apiVersion: alkaid.dev/v1alpha1\nkind: Vpc\nmetadata: {name: x}\nspec: {cidr: 10.0.0.1/16}",
            "10.0.0.1/16 has host bits set; did you mean 10.0.0.0/16?",
        ),
        (
            "apiVersion: alkaid.dev/v2\nkind: Vpc\nmetadata: {name: x}\nspec: {cidr: 10.0.0.0/16}",
            "apiVersion \"alkaid.dev/v2\" is not supported",
        ),
        (
            "apiVersion: alkaid.dev/v1alpha1\nkind: Vpc\nmetadata: {name: x}\nspec: {cidr: 10.0.0.0/16, vni: 0}",
            "vni 0 is out of range",
        ),
        (
            "apiVersion: alkaid.dev/v1alpha1\nkind: Pod\nmetadata: {name: x}\nspec: {}",
            "unknown variant `Pod`",
        ),
        (
            "apiVersion: alkaid.dev/v1alpha1\nkind: Droplet\nmetadata: {name: x}\nspec: {ip: 1.2.3.4, mac: nope, interface: e, node: n}",
            "invalid MAC address",
        ),
    ];
    for (text, want) in cases {
        let err = serde_yaml_ng::from_str::<Resource>(text)
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{text}: {err}");
    }
    // A typed parse checks the kind.
    let err = serde_yaml_ng::from_str::<Vpc>(
        "apiVersion: alkaid.dev/v1alpha1\nkind: Subnet\nmetadata: {name: x}\nspec: {cidr: 10.0.0.0/16}",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("kind \"Subnet\" where Vpc was expected"),
        "{err}"
    );
}
