//! How a pod picks its network, in order:
//! 1. annotations `alkaid.dev/vpc` and/or `alkaid.dev/subnet` on the pod;
//! 2. else the VPC whose `spec.namespaces` lists the pod's namespace;
//! 3. else the default VPC (configurable, [`crate::K8sConfig::default_vpc`]).
//!
//! [`resolve_pod_network`] is pure (table-tested in `network/tests.rs`); the CNI/agent path
//! calls it with the pod and the Vpc/Subnet CRs it has, or uses [`lookup_pod_network`],
//! which reads them from the API server. The subnet may stay `None`: the store then picks
//! one of the VPC's subnets at allocation.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt as _};

use crate::crd::{Subnet, Vpc};
use crate::error::{Error, Result};

/// Annotation naming the pod's VPC.
pub const VPC_ANNOTATION: &str = "alkaid.dev/vpc";
/// Annotation naming the pod's subnet.
pub const SUBNET_ANNOTATION: &str = "alkaid.dev/subnet";

/// Why a pod got the network it got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetworkSource {
    /// From the pod's annotations.
    Annotation,
    /// From the namespace's VPC binding.
    NamespaceBinding,
    /// The default VPC.
    Default,
}

/// The network a pod joins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodNetwork {
    /// VPC name.
    pub vpc: String,
    /// Subnet name, when chosen; `None` lets the store choose within the VPC.
    pub subnet: Option<String>,
    /// Which rule decided.
    pub source: NetworkSource,
}

/// A pod whose network cannot be chosen; each message says what to change.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NetworkError {
    /// An annotation is present but empty.
    #[error("pod annotation {0} is empty: set it to a name or remove it")]
    EmptyAnnotation(&'static str),
    /// The annotated subnet does not exist.
    #[error("pod annotation alkaid.dev/subnet names subnet {0:?}, which does not exist")]
    UnknownSubnet(String),
    /// The annotated subnet is in another VPC than the annotated one.
    #[error("pod annotations disagree: subnet {subnet:?} is in vpc {actual:?}, not {annotated:?}")]
    SubnetNotInVpc {
        /// The annotated subnet.
        subnet: String,
        /// Its VPC.
        actual: String,
        /// The annotated VPC.
        annotated: String,
    },
    /// More than one VPC binds the namespace.
    #[error("namespace {namespace:?} is bound to several vpcs ({}): keep it in one vpc's spec.namespaces or annotate the pod with alkaid.dev/vpc", vpcs.join(", "))]
    AmbiguousBinding {
        /// The namespace.
        namespace: String,
        /// The VPCs listing it, sorted.
        vpcs: Vec<String>,
    },
}

fn annotation<'a>(
    annotations: &'a BTreeMap<String, String>,
    key: &'static str,
) -> Result<Option<&'a str>, NetworkError> {
    match annotations.get(key).map(|s| s.trim()) {
        Some("") => Err(NetworkError::EmptyAnnotation(key)),
        other => Ok(other),
    }
}

/// Chooses the network of a pod with `annotations` in `namespace`.
///
/// # Errors
/// A [`NetworkError`] when the annotations are empty or contradict the subnets, or when the
/// namespace is bound to more than one VPC.
pub fn resolve_pod_network(
    annotations: &BTreeMap<String, String>,
    namespace: &str,
    vpcs: &[Vpc],
    subnets: &[Subnet],
    default_vpc: &str,
) -> Result<PodNetwork, NetworkError> {
    let vpc_ann = annotation(annotations, VPC_ANNOTATION)?;
    let subnet_ann = annotation(annotations, SUBNET_ANNOTATION)?;
    if let Some(subnet) = subnet_ann {
        let actual = subnets
            .iter()
            .find(|s| s.name_any() == subnet)
            .map(|s| s.spec.vpc.clone())
            .ok_or_else(|| NetworkError::UnknownSubnet(subnet.to_owned()))?;
        if let Some(annotated) = vpc_ann
            && annotated != actual
        {
            return Err(NetworkError::SubnetNotInVpc {
                subnet: subnet.to_owned(),
                actual,
                annotated: annotated.to_owned(),
            });
        }
        return Ok(PodNetwork {
            vpc: actual,
            subnet: Some(subnet.to_owned()),
            source: NetworkSource::Annotation,
        });
    }
    if let Some(vpc) = vpc_ann {
        return Ok(PodNetwork {
            vpc: vpc.to_owned(),
            subnet: None,
            source: NetworkSource::Annotation,
        });
    }
    let mut bound: Vec<String> = vpcs
        .iter()
        .filter(|v| v.spec.namespaces.iter().any(|n| n == namespace))
        .map(|v| v.name_any())
        .collect();
    bound.sort();
    bound.dedup();
    match bound.len() {
        0 => Ok(PodNetwork {
            vpc: default_vpc.to_owned(),
            subnet: None,
            source: NetworkSource::Default,
        }),
        1 => Ok(PodNetwork {
            vpc: bound.remove(0),
            subnet: None,
            source: NetworkSource::NamespaceBinding,
        }),
        _ => Err(NetworkError::AmbiguousBinding {
            namespace: namespace.to_owned(),
            vpcs: bound,
        }),
    }
}

/// [`resolve_pod_network`] for a [`Pod`] object.
///
/// # Errors
/// As [`resolve_pod_network`].
pub fn resolve_for_pod(
    pod: &Pod,
    vpcs: &[Vpc],
    subnets: &[Subnet],
    default_vpc: &str,
) -> Result<PodNetwork, NetworkError> {
    let namespace = pod.namespace().unwrap_or_default();
    resolve_pod_network(pod.annotations(), &namespace, vpcs, subnets, default_vpc)
}

/// Reads the pod, the Vpcs and the Subnets from the API server and resolves the pod's
/// network (the CNI/agent path; needs `get` on pods and `list` on vpcs and subnets).
///
/// # Errors
/// [`Error::Kube`] if a read fails, [`Error::Network`] if the choice is ambiguous.
pub async fn lookup_pod_network(
    client: Client,
    namespace: &str,
    pod: &str,
    default_vpc: &str,
) -> Result<PodNetwork> {
    let pod = Api::<Pod>::namespaced(client.clone(), namespace)
        .get(pod)
        .await
        .map_err(Error::kube(format!("reading pod {namespace}/{pod}")))?;
    let vpcs = Api::<Vpc>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(Error::kube("listing vpcs"))?;
    let subnets = Api::<Subnet>::all(client)
        .list(&ListParams::default())
        .await
        .map_err(Error::kube("listing subnets"))?;
    Ok(resolve_for_pod(
        &pod,
        &vpcs.items,
        &subnets.items,
        default_vpc,
    )?)
}

#[cfg(test)]
mod tests;
