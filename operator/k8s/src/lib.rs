//! # alkaid-operator-k8s: Alkaid's Kubernetes side
//!
//! CRD types, the `crdgen` binary, and the controllers the operator runs behind
//! `--kubernetes`. It talks to the store only through the control API, behind the
//! [`ControlPlane`] trait ([`GrpcControl`] in production, [`FakeControl`] in tests).
//!
//! ## Layout and data flow
//!
//! | module | role |
//! |---|---|
//! | [`crd`] | `Vpc`, `Subnet`, `Bouncer`, `Divider`, `Droplet`, `Endpoint` (group `alkaid.dev/v1alpha1`), schema rules |
//! | [`control`] | [`ControlPlane`] trait, gRPC client, in-memory fake |
//! | [`pb`] | CR <-> control API message conversions |
//! | [`decide`] | pure decisions: status mapping, deletion blockers, requeue and backoff |
//! | [`network`] | pure: which VPC/subnet a pod joins (annotation, namespace binding, default) |
//! | [`reconcile`] | controllers: Vpc/Subnet -> store (finalizers, status, events); store -> Endpoint/Bouncer/Divider/Droplet CRs |
//! | [`metrics`] | counters, Prometheus text |
//! | [`error`] | [`Error`], [`ControlError`] |
//!
//! A user's `Vpc` or `Subnet` enters a kube-runtime `Controller`; its reconcile adds a
//! finalizer, applies the spec to the store through [`ControlPlane::apply`] (refusals become
//! a Warning event and a `Failed` status with the store's message), and server-side-applies
//! the status derived from the stored object. Deletion waits until the store holds no
//! children (subnets of a VPC, endpoints of a subnet), then deletes from the store and
//! drops the finalizer. In the other direction, the mirrors follow
//! [`ControlPlane::watch`] and keep the operator-written CRs equal to the store.

#![forbid(unsafe_code)]

pub mod control;
pub mod crd;
pub mod decide;
pub mod error;
pub mod metrics;
pub mod network;
pub mod pb;
pub mod reconcile;

use std::sync::Arc;

use kube::Client;
use kube::api::{Api, ListParams};

pub use control::{ControlPlane, FakeControl, GrpcControl, Listed, WatchStream};
pub use error::{ControlError, Error, Result};
pub use metrics::Metrics;
pub use network::{PodNetwork, resolve_for_pod, resolve_pod_network};
pub use reconcile::Context;

/// Settings of the Kubernetes side (the operator binary fills them from its clap `Config`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct K8sConfig {
    /// VPC for pods with no annotation in a namespace no VPC binds.
    pub default_vpc: String,
    /// This replica's identity in events (e.g. the pod name); `None`: the controller name.
    pub instance: Option<String>,
    /// Whether to mirror store objects (Endpoint, Bouncer, Divider, Droplet) into CRs.
    pub mirror: bool,
}

impl Default for K8sConfig {
    fn default() -> Self {
        Self {
            default_vpc: "default".into(),
            instance: None,
            mirror: true,
        }
    }
}

impl K8sConfig {
    /// Checks the settings.
    ///
    /// # Errors
    /// [`Error::Config`] if the default VPC is not a valid object name.
    pub fn validate(&self) -> Result<()> {
        let ok = !self.default_vpc.is_empty()
            && self.default_vpc.len() <= 253
            && self
                .default_vpc
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if ok {
            Ok(())
        } else {
            Err(Error::Config {
                message: format!(
                    "default vpc {:?} is not a valid name: use lowercase letters, digits, '-' and '.'",
                    self.default_vpc
                ),
            })
        }
    }
}

/// Runs every Kubernetes controller until the returned future is dropped (drop it when
/// this replica stops leading: only the leader writes to Kubernetes).
///
/// Connects with the in-cluster or kubeconfig credentials, checks that the CRDs are
/// installed, then runs the Vpc and Subnet controllers and the store mirrors.
///
/// # Errors
/// [`Error::Config`], [`Error::Kube`] if no Kubernetes client can be built, or
/// [`Error::CrdMissing`] if a CRD is not installed.
pub async fn run(config: K8sConfig, control: impl ControlPlane) -> Result<()> {
    let client = Client::try_default().await.map_err(Error::kube(
        "building a kubernetes client from the environment",
    ))?;
    run_with_client(client, config, control, Arc::default()).await
}

/// [`run`] with a given client and metrics (which the caller may render on `/metrics`).
///
/// # Errors
/// As [`run`].
pub async fn run_with_client(
    client: Client,
    config: K8sConfig,
    control: impl ControlPlane,
    metrics: Arc<Metrics>,
) -> Result<()> {
    config.validate()?;
    check_crds(&client).await?;
    let ctx = Arc::new(Context::new(client, config, control, metrics));
    reconcile::run_all(ctx).await;
    Ok(())
}

/// Fails with a hint when a CRD is missing (one `limit=1` list per kind).
async fn check_crds(client: &Client) -> Result<()> {
    async fn one<K>(client: &Client) -> Result<()>
    where
        K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        Api::<K>::all(client.clone())
            .list(&ListParams::default().limit(1))
            .await
            .map(|_| ())
            .map_err(|source| Error::CrdMissing {
                crd: format!("{}.{}", K::plural(&()), K::group(&())),
                source,
            })
    }
    one::<crd::Vpc>(client).await?;
    one::<crd::Subnet>(client).await?;
    one::<crd::Bouncer>(client).await?;
    one::<crd::Divider>(client).await?;
    one::<crd::Droplet>(client).await?;
    one::<crd::Endpoint>(client).await
}
