//! Store -> Kubernetes: Endpoint, Bouncer, Divider and Droplet CRs follow the store.
//!
//! A pass lists the store and the CRs this operator manages (label
//! `app.kubernetes.io/managed-by=alkaid-operator`), writes the difference ([`plan`], pure),
//! then follows the store's watch from the listed version; when the watch ends or fails it
//! backs off and starts over with a full pass, so a missed event is repaired by the next
//! resync. Endpoints get an owner reference to their Pod when the Pod exists.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use alkaid_proto::v1 as pb;
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::core::object::{HasSpec, HasStatus};
use kube::{Resource, ResourceExt as _};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{Instrument as _, debug, info_span, warn};

use super::{Context, MANAGER};
use crate::control::ControlPlane;
use crate::crd::{Bouncer, Divider, Droplet, Endpoint};
use crate::error::{Error, Result};
use crate::{decide, pb as conv};

/// Label marking CRs written by the mirror (the only ones it lists or deletes).
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "alkaid-operator");

/// A kind the operator copies from the store into Kubernetes.
pub trait Mirrored:
    Resource<DynamicType = ()>
    + HasSpec<Spec: PartialEq + Serialize>
    + HasStatus<Status: PartialEq + Serialize>
    + Clone
    + Serialize
    + DeserializeOwned
    + Debug
    + Send
    + Sync
    + 'static
{
    /// The `kind`.
    const KIND: &'static str;
    /// Its kind in the control API.
    const PB_KIND: pb::Kind;
    /// The CR for a stored object; `None` if `stored` is another kind.
    fn from_store(stored: &pb::Resource) -> Option<Result<Self>>;
    /// The `(namespace, pod)` owning it, for an owner reference.
    fn owner_pod(&self) -> Option<(String, String)> {
        None
    }
    /// The API for objects in `namespace` (ignored by cluster-scoped kinds).
    fn api_in(client: &kube::Client, namespace: Option<&str>) -> Api<Self> {
        let _ = namespace;
        Api::all(client.clone())
    }
}

macro_rules! mirrored {
    ($ty:ty, $kind:literal, $pb:ident, $conv:path) => {
        impl Mirrored for $ty {
            const KIND: &'static str = $kind;
            const PB_KIND: pb::Kind = pb::Kind::$pb;
            fn from_store(stored: &pb::Resource) -> Option<Result<Self>> {
                match &stored.kind {
                    Some(pb::resource::Kind::$pb(o)) => Some($conv(o)),
                    _ => None,
                }
            }
        }
    };
}
mirrored!(Bouncer, "Bouncer", Bouncer, conv::bouncer_from_pb);
mirrored!(Divider, "Divider", Divider, conv::divider_from_pb);
mirrored!(Droplet, "Droplet", Droplet, conv::droplet_from_pb);

impl Mirrored for Endpoint {
    const KIND: &'static str = "Endpoint";
    const PB_KIND: pb::Kind = pb::Kind::Endpoint;
    fn from_store(stored: &pb::Resource) -> Option<Result<Self>> {
        match &stored.kind {
            Some(pb::resource::Kind::Endpoint(o)) => Some(conv::endpoint_from_pb(o)),
            _ => None,
        }
    }
    fn owner_pod(&self) -> Option<(String, String)> {
        Some((self.namespace()?, self.spec.pod.clone()))
    }
    fn api_in(client: &kube::Client, namespace: Option<&str>) -> Api<Self> {
        match namespace {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        }
    }
}

/// One write of a mirror pass.
#[derive(Clone, Debug, PartialEq)]
pub enum MirrorOp<K> {
    /// Create or update this CR (spec, then status).
    Apply(K),
    /// Delete the CR `(namespace, name)`: the store no longer has it.
    Delete(Option<String>, String),
}

/// The writes that make `existing` (managed CRs) equal to `desired` (from the store):
/// applies for missing or different objects, deletes for objects the store lacks, in
/// `(namespace, name)` order.
pub fn plan<K: Mirrored>(desired: Vec<K>, existing: Vec<K>) -> Vec<MirrorOp<K>> {
    let key = |k: &K| (k.namespace(), k.name_any());
    let mut have: BTreeMap<_, K> = existing.into_iter().map(|k| (key(&k), k)).collect();
    let mut ops = Vec::new();
    let mut want: Vec<K> = desired;
    want.sort_by_key(|k| key(k));
    for d in want {
        match have.remove(&key(&d)) {
            Some(e) if e.spec() == d.spec() && e.status() == d.status() => {}
            _ => ops.push(MirrorOp::Apply(d)),
        }
    }
    ops.extend(
        have.into_keys()
            .map(|(ns, name)| MirrorOp::Delete(ns, name)),
    );
    ops
}

fn api<K: Mirrored>(client: &kube::Client, namespace: Option<&str>) -> Api<K> {
    K::api_in(client, namespace)
}

/// Runs the mirror of `K` forever (until the future is dropped).
pub async fn run<K: Mirrored, C: ControlPlane>(ctx: Arc<Context<C>>) {
    let controller = K::KIND;
    let mut attempt = 0;
    loop {
        let span = info_span!("mirror", kind = controller);
        match follow::<K, C>(&ctx).instrument(span).await {
            Ok(()) => attempt = 1,
            Err(e) => {
                ctx.metrics.failed(controller, e.metric_label());
                attempt += 1;
                warn!(kind = controller, attempt, "mirror failed, resyncing: {e}");
            }
        }
        tokio::time::sleep(decide::backoff(attempt)).await;
    }
}

async fn follow<K: Mirrored, C: ControlPlane>(ctx: &Context<C>) -> Result<()> {
    let version = resync::<K, C>(ctx).await?;
    let mut events = ctx
        .control
        .watch(K::PB_KIND, version)
        .await
        .map_err(Error::control("watch"))?;
    while let Some(ev) = events.next().await {
        let ev = ev.map_err(Error::control("watch"))?;
        let Some(obj) = ev.resource.as_ref().and_then(K::from_store) else {
            continue;
        };
        let obj = obj?;
        if ev.r#type == i32::from(pb::watch_event::Type::Deleted) {
            delete_one::<K, C>(ctx, obj.namespace(), &obj.name_any()).await?;
        } else {
            apply_one(ctx, obj).await?;
        }
    }
    Ok(())
}

/// One full pass: list both sides, write the [`plan`]; returns the store version listed.
///
/// # Errors
/// [`Error::Control`] or [`Error::Kube`] if a call fails (the pass is retried whole).
pub async fn resync<K: Mirrored, C: ControlPlane>(ctx: &Context<C>) -> Result<u64> {
    ctx.metrics.reconciled(K::KIND);
    let listed = ctx
        .control
        .list(K::PB_KIND)
        .await
        .map_err(Error::control("list"))?;
    let mut desired = Vec::new();
    for r in &listed.resources {
        match K::from_store(r) {
            Some(Ok(k)) => desired.push(k),
            Some(Err(e)) => warn!("skipping a store object: {e}"),
            None => {}
        }
    }
    let selector = format!("{}={}", MANAGED_BY.0, MANAGED_BY.1);
    let existing = api::<K>(&ctx.client, None)
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(Error::kube(format!("listing {}s", K::KIND)))?;
    for op in plan(desired, existing.items) {
        match op {
            MirrorOp::Apply(k) => apply_one(ctx, k).await?,
            MirrorOp::Delete(ns, name) => delete_one::<K, C>(ctx, ns, &name).await?,
        }
    }
    Ok(listed.version)
}

async fn apply_one<K: Mirrored, C: ControlPlane>(ctx: &Context<C>, obj: K) -> Result<()> {
    let name = obj.name_any();
    let ns = obj.namespace();
    let api = api::<K>(&ctx.client, ns.as_deref());
    let owner = match obj.owner_pod() {
        Some((pod_ns, pod)) => pod_owner(ctx, &pod_ns, &pod).await?,
        None => None,
    };
    let mut metadata = serde_json::json!({
        "name": name,
        "labels": { MANAGED_BY.0: MANAGED_BY.1 },
    });
    if let Some(ns) = &ns {
        metadata["namespace"] = ns.clone().into();
    }
    if let Some(owner) = owner {
        metadata["ownerReferences"] = serde_json::json!([owner]);
    }
    let pp = PatchParams::apply(MANAGER).force();
    let body = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::KIND,
        "metadata": metadata,
        "spec": obj.spec(),
    });
    let action = format!("applying {} {name:?}", K::KIND);
    api.patch(&name, &pp, &Patch::Apply(&body))
        .await
        .map_err(Error::kube(action.clone()))?;
    let status = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::KIND,
        "status": obj.status(),
    });
    api.patch_status(&name, &pp, &Patch::Apply(&status))
        .await
        .map_err(Error::kube(action))?;
    ctx.metrics.mirrored(K::KIND, "apply");
    debug!(kind = K::KIND, name = %name, "mirrored");
    Ok(())
}

async fn pod_owner<C: ControlPlane>(
    ctx: &Context<C>,
    namespace: &str,
    pod: &str,
) -> Result<Option<OwnerReference>> {
    let found = Api::<Pod>::namespaced(ctx.client.clone(), namespace)
        .get_opt(pod)
        .await
        .map_err(Error::kube(format!("reading pod {namespace}/{pod}")))?;
    Ok(found.and_then(|p| {
        Some(OwnerReference {
            api_version: "v1".into(),
            kind: "Pod".into(),
            name: p.name_any(),
            uid: p.uid()?,
            ..OwnerReference::default()
        })
    }))
}

async fn delete_one<K: Mirrored, C: ControlPlane>(
    ctx: &Context<C>,
    ns: Option<String>,
    name: &str,
) -> Result<()> {
    let api = api::<K>(&ctx.client, ns.as_deref());
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => {
            return Err(Error::kube(format!("deleting {} {name:?}", K::KIND))(e));
        }
    }
    ctx.metrics.mirrored(K::KIND, "delete");
    Ok(())
}
