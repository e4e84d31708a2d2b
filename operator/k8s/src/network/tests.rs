use std::collections::BTreeMap;

use super::{NetworkError, NetworkSource, PodNetwork, resolve_pod_network};
use crate::crd::{Subnet, SubnetSpec, Vpc, VpcSpec};

fn vpc(name: &str, namespaces: &[&str]) -> Vpc {
    Vpc::new(
        name,
        VpcSpec {
            cidr: "10.0.0.0/16".into(),
            dividers: 1,
            vni: None,
            namespaces: namespaces.iter().map(|s| (*s).to_owned()).collect(),
        },
    )
}

fn subnet(name: &str, vpc: &str) -> Subnet {
    Subnet::new(
        name,
        SubnetSpec {
            vpc: vpc.into(),
            cidr: "10.0.1.0/24".into(),
            bouncers: 1,
            gateway: None,
        },
    )
}

fn net(vpc: &str, subnet: Option<&str>, source: NetworkSource) -> PodNetwork {
    PodNetwork {
        vpc: vpc.into(),
        subnet: subnet.map(Into::into),
        source,
    }
}

/// (what, annotations, namespace, expected)
type Case<'a> = (
    &'a str,
    &'a [(&'a str, &'a str)],
    &'a str,
    Result<PodNetwork, NetworkError>,
);

#[test]
fn pod_network_choice_table() {
    use NetworkSource::{Annotation, Default, NamespaceBinding};
    let vpcs = [
        vpc("blue", &["team-a", "team-b"]),
        vpc("red", &["team-c"]),
        vpc("green", &["team-c"]),
    ];
    let subnets = [subnet("blue-web", "blue"), subnet("red-db", "red")];
    let cases: &[Case] = &[
        (
            "no annotation, unbound namespace -> default",
            &[],
            "other",
            Ok(net("default", None, Default)),
        ),
        (
            "namespace binding",
            &[],
            "team-a",
            Ok(net("blue", None, NamespaceBinding)),
        ),
        (
            "second namespace of the same vpc",
            &[],
            "team-b",
            Ok(net("blue", None, NamespaceBinding)),
        ),
        (
            "vpc annotation beats binding",
            &[("alkaid.dev/vpc", "red")],
            "team-a",
            Ok(net("red", None, Annotation)),
        ),
        (
            "vpc annotation in unbound namespace",
            &[("alkaid.dev/vpc", "red")],
            "other",
            Ok(net("red", None, Annotation)),
        ),
        (
            "subnet annotation implies its vpc",
            &[("alkaid.dev/subnet", "red-db")],
            "team-a",
            Ok(net("red", Some("red-db"), Annotation)),
        ),
        (
            "both annotations agree",
            &[
                ("alkaid.dev/vpc", "blue"),
                ("alkaid.dev/subnet", "blue-web"),
            ],
            "other",
            Ok(net("blue", Some("blue-web"), Annotation)),
        ),
        (
            "annotations disagree",
            &[("alkaid.dev/vpc", "blue"), ("alkaid.dev/subnet", "red-db")],
            "other",
            Err(NetworkError::SubnetNotInVpc {
                subnet: "red-db".into(),
                actual: "red".into(),
                annotated: "blue".into(),
            }),
        ),
        (
            "unknown subnet",
            &[("alkaid.dev/subnet", "nope")],
            "other",
            Err(NetworkError::UnknownSubnet("nope".into())),
        ),
        (
            "empty vpc annotation",
            &[("alkaid.dev/vpc", " ")],
            "other",
            Err(NetworkError::EmptyAnnotation("alkaid.dev/vpc")),
        ),
        (
            "ambiguous binding",
            &[],
            "team-c",
            Err(NetworkError::AmbiguousBinding {
                namespace: "team-c".into(),
                vpcs: vec!["green".into(), "red".into()],
            }),
        ),
        (
            "annotation resolves ambiguity",
            &[("alkaid.dev/vpc", "green")],
            "team-c",
            Ok(net("green", None, Annotation)),
        ),
        (
            "unrelated annotations ignored",
            &[("example.com/x", "y")],
            "team-a",
            Ok(net("blue", None, NamespaceBinding)),
        ),
    ];
    for (what, ann, ns, want) in cases {
        let annotations: BTreeMap<String, String> = ann
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let got = resolve_pod_network(&annotations, ns, &vpcs, &subnets, "default");
        assert_eq!(&got, want, "case: {what}");
    }
}

#[test]
fn errors_say_what_to_do() {
    let err = NetworkError::AmbiguousBinding {
        namespace: "team-c".into(),
        vpcs: vec!["green".into(), "red".into()],
    };
    let msg = err.to_string();
    assert!(
        msg.contains("green, red") && msg.contains("annotate the pod"),
        "{msg}"
    );
}

#[test]
fn resolve_for_pod_reads_namespace_and_annotations() {
    use k8s_openapi::api::core::v1::Pod;
    let mut pod = Pod::default();
    pod.metadata.namespace = Some("team-a".into());
    let got = super::resolve_for_pod(&pod, &[vpc("blue", &["team-a"])], &[], "default");
    assert_eq!(got, Ok(net("blue", None, NetworkSource::NamespaceBinding)));
    pod.metadata.annotations = Some([("alkaid.dev/vpc".to_owned(), "red".to_owned())].into());
    let got = super::resolve_for_pod(&pod, &[vpc("blue", &["team-a"])], &[], "default");
    assert_eq!(got, Ok(net("red", None, NetworkSource::Annotation)));
}
