//! Offline validation of deploy/: every manifest parses into the k8s-openapi type of its
//! kind with no unknown field anywhere (serde_ignored), and the invariants hold: three
//! operator replicas behind a headless peer service, a disruption budget of one, the agent's
//! capabilities and mounts, the CNI config, and RBAC equal to what the code calls.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn deploy() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

/// Strictly parses `doc` as `T`: any field the type does not know is an error.
fn strict<T: DeserializeOwned>(doc: &Value, what: &str) -> T {
    let mut unknown = Vec::new();
    let t = serde_ignored::deserialize(doc.clone(), |path| unknown.push(path.to_string()))
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(unknown.is_empty(), "{what}: unknown fields {unknown:?}");
    t
}

/// Every document of every resource the kustomization lists.
#[derive(Default)]
struct Manifests {
    statefulsets: Vec<StatefulSet>,
    daemonsets: Vec<DaemonSet>,
    services: Vec<Service>,
    pdbs: Vec<PodDisruptionBudget>,
    cluster_roles: Vec<ClusterRole>,
    bindings: Vec<ClusterRoleBinding>,
    service_accounts: Vec<ServiceAccount>,
    crds: Vec<CustomResourceDefinition>,
}

fn kustomization() -> Value {
    let text = std::fs::read_to_string(deploy().join("kustomization.yaml")).unwrap();
    serde_yaml_ng::from_str(&text).unwrap()
}

fn load() -> Manifests {
    let mut m = Manifests::default();
    let k = kustomization();
    for file in k["resources"].as_array().expect("resources") {
        let file = file.as_str().unwrap();
        let text = std::fs::read_to_string(deploy().join(file))
            .unwrap_or_else(|e| panic!("kustomization lists {file}: {e}"));
        for (i, de) in serde_yaml_ng::Deserializer::from_str(&text).enumerate() {
            let doc: Value = serde::Deserialize::deserialize(de).unwrap();
            let what = format!("{file} document {i}");
            match doc["kind"].as_str().unwrap_or_default() {
                "StatefulSet" => m.statefulsets.push(strict(&doc, &what)),
                "DaemonSet" => m.daemonsets.push(strict(&doc, &what)),
                "Service" => m.services.push(strict(&doc, &what)),
                "PodDisruptionBudget" => m.pdbs.push(strict(&doc, &what)),
                "ClusterRole" => m.cluster_roles.push(strict(&doc, &what)),
                "ClusterRoleBinding" => m.bindings.push(strict(&doc, &what)),
                "ServiceAccount" => m.service_accounts.push(strict(&doc, &what)),
                "Namespace" => drop(strict::<Namespace>(&doc, &what)),
                "ConfigMap" => drop(strict::<ConfigMap>(&doc, &what)),
                "CustomResourceDefinition" => m.crds.push(strict(&doc, &what)),
                other => panic!("{what}: kind {other:?} has no validator here; add one"),
            }
        }
    }
    m
}

#[test]
fn unknown_fields_are_caught() {
    let doc = serde_json::json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "x"}, "spec": {"clusterIp": "None"}});
    let caught = std::panic::catch_unwind(|| strict::<Service>(&doc, "typo"));
    assert!(
        caught.is_err(),
        "spec.clusterIp (typo of clusterIP) must be refused"
    );
}

#[test]
fn every_file_in_deploy_is_listed_and_every_crd_is_there() {
    let k = kustomization();
    let listed: BTreeSet<String> = k["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let mut on_disk = BTreeSet::new();
    for dir in ["", "crds", "operator", "agent"] {
        for e in std::fs::read_dir(deploy().join(dir)).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_str().unwrap().to_owned();
            if p.extension().is_some_and(|x| x == "yaml") && name != "kustomization.yaml" {
                on_disk.insert(Path::new(dir).join(name).to_str().unwrap().to_owned());
            }
        }
    }
    assert_eq!(
        listed, on_disk,
        "kustomization.yaml resources vs files on disk"
    );
    let m = load();
    assert_eq!(m.crds.len(), alkaid_operator_k8s::crd::all().len());
}

#[test]
fn operator_statefulset_of_three_with_raft_peers_pdb_storage_and_tls() {
    let m = load();
    let [sts] = &m.statefulsets[..] else {
        panic!("one StatefulSet")
    };
    let spec = sts.spec.as_ref().unwrap();
    assert_eq!(spec.replicas, Some(3));
    let peers = m
        .services
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some(spec.service_name.as_deref().unwrap()))
        .expect("the StatefulSet's serviceName exists");
    let ps = peers.spec.as_ref().unwrap();
    assert_eq!(
        ps.cluster_ip.as_deref(),
        Some("None"),
        "peer service is headless"
    );
    assert_eq!(ps.publish_not_ready_addresses, Some(true));
    let labels = spec
        .template
        .metadata
        .as_ref()
        .unwrap()
        .labels
        .clone()
        .unwrap();
    for svc in &m.services {
        for (k, v) in svc.spec.as_ref().unwrap().selector.as_ref().unwrap() {
            assert_eq!(labels.get(k), Some(v), "service selector matches the pods");
        }
    }
    assert!(
        m.services.iter().any(|s| {
            s.spec
                .as_ref()
                .unwrap()
                .ports
                .as_ref()
                .unwrap()
                .iter()
                .any(|p| p.name.as_deref() == Some("control"))
                && s.spec.as_ref().unwrap().cluster_ip.is_none()
        }),
        "a client Service for the control API"
    );
    let [pdb] = &m.pdbs[..] else {
        panic!("one PodDisruptionBudget")
    };
    let pdb = pdb.spec.as_ref().unwrap();
    assert_eq!(pdb.max_unavailable, Some(IntOrString::Int(1)));
    assert_eq!(
        pdb.selector
            .as_ref()
            .unwrap()
            .match_labels
            .as_ref()
            .unwrap(),
        &spec.selector.match_labels.clone().unwrap()
    );
    let claims = spec
        .volume_claim_templates
        .as_ref()
        .expect("volumeClaimTemplates");
    let data = claims[0].metadata.name.as_deref().unwrap();
    let pod = spec.template.spec.as_ref().unwrap();
    let c = &pod.containers[0];
    let mounts: Vec<&str> = c
        .volume_mounts
        .as_ref()
        .unwrap()
        .iter()
        .map(|v| v.name.as_str())
        .collect();
    assert!(mounts.contains(&data), "data dir is on the claim");
    let tls = pod
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .find(|v| v.name == "tls")
        .expect("tls volume");
    assert!(
        tls.secret.is_some() && mounts.contains(&"tls"),
        "mTLS secret mounted"
    );
    assert_eq!(pod.service_account_name.as_deref(), Some("alkaid-operator"));
}

#[test]
fn agent_daemonset_host_network_capabilities_and_mounts() {
    let m = load();
    let [ds] = &m.daemonsets[..] else {
        panic!("one DaemonSet")
    };
    let pod = ds.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    assert_eq!(pod.host_network, Some(true));
    let agent = &pod.containers[0];
    let sc = agent.security_context.as_ref().unwrap();
    assert_ne!(sc.privileged, Some(true), "capabilities, not privileged");
    let caps = sc.capabilities.as_ref().unwrap();
    let added: BTreeSet<&str> = caps
        .add
        .as_ref()
        .unwrap()
        .iter()
        .map(String::as_str)
        .collect();
    // SYS_ADMIN: setns into pod netns and mounting bpffs (see the manifest's comment).
    assert_eq!(added, BTreeSet::from(["BPF", "NET_ADMIN", "SYS_ADMIN"]));
    assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_owned()][..]));
    let host_paths: BTreeSet<&str> = pod
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .filter_map(|v| v.host_path.as_ref().map(|h| h.path.as_str()))
        .collect();
    for p in [
        "/sys/fs/bpf",
        "/opt/cni/bin",
        "/etc/cni/net.d",
        "/run/alkaid",
    ] {
        assert!(host_paths.contains(p), "hostPath {p}");
    }
    let init = pod
        .init_containers
        .as_ref()
        .expect("init container installs the CNI");
    let script = init[0].command.as_ref().unwrap().join(" ");
    assert!(
        script.contains("alkaid-cni") && script.contains("10-alkaid.conflist"),
        "{script}"
    );
    // The CNI config the init container installs is the generated ConfigMap's.
    let cm = pod
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .find_map(|v| v.config_map.as_ref())
        .unwrap();
    let k = kustomization();
    assert_eq!(k["configMapGenerator"][0]["name"], cm.name.as_str());
    assert_eq!(pod.service_account_name.as_deref(), Some("alkaid-agent"));
}

#[test]
fn cni_conflist_points_at_the_agent_socket() {
    let text = std::fs::read_to_string(deploy().join("cni/10-alkaid.conflist")).unwrap();
    let conf: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(conf["cniVersion"], "1.0.0");
    assert_eq!(conf["name"], "alkaid");
    let plugin = &conf["plugins"][0];
    assert_eq!(plugin["type"], "alkaid-cni");
    let socket = plugin["agentSocket"].as_str().unwrap();
    let m = load();
    let env = m.daemonsets[0]
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .env
        .clone()
        .unwrap();
    let agent_socket = env.iter().find(|e| e.name == "ALKAID_CNI_SOCKET").unwrap();
    assert_eq!(agent_socket.value.as_deref(), Some(socket));
    assert!(
        socket.starts_with("/run/alkaid/"),
        "socket on the shared hostPath"
    );
}

/// `(apiGroup, resource, verb)` of every call the code makes.
fn granted(role: &ClusterRole) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for r in role.rules.as_ref().unwrap() {
        for g in r.api_groups.as_ref().unwrap() {
            for res in r.resources.as_ref().unwrap() {
                for v in &r.verbs {
                    assert!(
                        g != "*" && res != "*" && v != "*",
                        "no wildcards in {role:?}"
                    );
                    out.insert((g.clone(), res.clone(), v.clone()));
                }
            }
        }
    }
    out
}

fn set(rules: &[(&str, &[&str], &[&str])]) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for (g, resources, verbs) in rules {
        for r in *resources {
            for v in *verbs {
                out.insert(((*g).to_owned(), (*r).to_owned(), (*v).to_owned()));
            }
        }
    }
    out
}

#[test]
fn rbac_grants_exactly_what_the_code_uses() {
    let m = load();
    let role = |name: &str| {
        m.cluster_roles
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(name))
            .unwrap()
    };
    // reconcile/user.rs (list/watch by Controller, finalizer JSON patch, status SSA),
    // reconcile/mirror.rs (list, SSA apply which may create, delete, status SSA, pod get),
    // kube-runtime Recorder (create, then patch a series).
    let operator = set(&[
        (
            "alkaid.dev",
            &["vpcs", "subnets"],
            &["list", "watch", "patch"],
        ),
        ("alkaid.dev", &["vpcs/status", "subnets/status"], &["patch"]),
        (
            "alkaid.dev",
            &["endpoints", "bouncers", "dividers", "droplets"],
            &["list", "create", "patch", "delete"],
        ),
        (
            "alkaid.dev",
            &[
                "endpoints/status",
                "bouncers/status",
                "dividers/status",
                "droplets/status",
            ],
            &["patch"],
        ),
        ("", &["pods"], &["get"]),
        ("events.k8s.io", &["events"], &["create", "patch"]),
    ]);
    assert_eq!(granted(role("alkaid-operator")), operator);
    // network::lookup_pod_network.
    let agent = set(&[
        ("", &["pods"], &["get"]),
        ("alkaid.dev", &["vpcs", "subnets"], &["list"]),
    ]);
    assert_eq!(granted(role("alkaid-agent")), agent);
    for b in &m.bindings {
        let subject = &b.subjects.as_ref().unwrap()[0];
        assert_eq!(
            b.role_ref.name, subject.name,
            "each role is bound to its own account"
        );
        assert!(
            m.service_accounts
                .iter()
                .any(|sa| sa.metadata.name.as_deref() == Some(subject.name.as_str()))
        );
    }
}
