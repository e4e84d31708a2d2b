//! The reconcile of a user kind (Vpc, Subnet), generic over [`UserKind`]:
//! observe the CR and the stored object -> apply the spec if it differs -> write status,
//! all inside a finalizer so deletion removes the object from the store first, in order.

use std::fmt::Debug;
use std::sync::Arc;

use alkaid_proto::v1 as pb;
use kube::api::{Api, Patch, PatchParams};
use kube::core::ClusterResourceScope;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Resource, ResourceExt as _};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{Instrument as _, info, info_span, warn};

use super::{Context, MANAGER};
use crate::control::ControlPlane;
use crate::crd::Phase;
use crate::decide;
use crate::error::{ControlError, Error, Result};

/// A kind users write and the operator mirrors into the store.
pub trait UserKind:
    Resource<DynamicType = (), Scope = ClusterResourceScope>
    + Clone
    + Serialize
    + DeserializeOwned
    + Debug
    + Send
    + Sync
    + 'static
{
    /// The `kind`, e.g. `Vpc`.
    const KIND: &'static str;
    /// Lowercase name in messages, e.g. `vpc`.
    const NOUN: &'static str;
    /// Its kind in the control API.
    const PB_KIND: pb::Kind;
    /// The kind of its children in the store, which must be gone before it can go.
    const CHILD_KIND: pb::Kind;
    /// The children's plural noun in messages, e.g. `subnets`.
    const CHILDREN: &'static str;
    /// The finalizer name.
    const FINALIZER: &'static str;
    /// Its status type.
    type Status: Serialize + PartialEq + Clone + Debug + Send + Sync;

    /// The object to apply (spec only).
    fn to_pb(&self) -> pb::Resource;
    /// The status for a stored object; `None` if `stored` is another kind.
    fn stored_status(stored: &pb::Resource) -> Option<Self::Status>;
    /// The status for a spec the store refused with `message`.
    fn refused_status(message: &str) -> Self::Status;
    /// Sets `observedGeneration`.
    fn observe(status: &mut Self::Status, generation: Option<i64>);
    /// The phase of a status.
    fn phase(status: &Self::Status) -> Phase;
    /// The current status of the CR.
    fn current(&self) -> Option<&Self::Status>;
    /// The children among `stored` that block deleting `name`, sorted.
    fn blockers(name: &str, stored: &[pb::Resource]) -> Vec<String>;
}

/// Reconciles one object (the `Controller`'s reconcile function).
///
/// # Errors
/// Any [`Error`]; the controller hands it to [`error_policy`].
pub async fn reconcile<K: UserKind, C: ControlPlane>(
    obj: Arc<K>,
    ctx: Arc<Context<C>>,
) -> Result<Action> {
    let name = obj.name_any();
    let span = info_span!("reconcile", kind = K::KIND, name = %name);
    async {
        ctx.metrics.reconciled(K::KIND);
        let api = Api::<K>::all(ctx.client.clone());
        let action = finalizer(&api, K::FINALIZER, obj, |event| async {
            match event {
                Finalizer::Apply(o) => apply(o.as_ref(), &ctx, &api).await,
                Finalizer::Cleanup(o) => cleanup(o.as_ref(), &ctx).await,
            }
        })
        .await
        .map_err(|e| Error::Finalizer {
            kind: K::KIND,
            name: name.clone(),
            source: Box::new(e),
        })?;
        ctx.reset_failures(&format!("{}/{name}", K::KIND));
        Ok(action)
    }
    .instrument(span)
    .await
}

/// Counts the error and picks when to retry: a blocked deletion at a steady pace, anything
/// else with per-object exponential backoff.
pub fn error_policy<K: UserKind, C: ControlPlane>(
    obj: Arc<K>,
    err: &Error,
    ctx: Arc<Context<C>>,
) -> Action {
    ctx.metrics.failed(K::KIND, err.metric_label());
    if err.is_deletion_blocked() {
        info!(kind = K::KIND, name = %obj.name_any(), "deletion waits: {err}");
        return Action::requeue(decide::BLOCKED_RETRY);
    }
    let attempt = ctx.bump_failures(format!("{}/{}", K::KIND, obj.name_any()));
    warn!(kind = K::KIND, name = %obj.name_any(), attempt, "reconcile failed: {err}");
    Action::requeue(decide::backoff(attempt))
}

async fn apply<K: UserKind, C: ControlPlane>(
    obj: &K,
    ctx: &Context<C>,
    api: &Api<K>,
) -> Result<Action> {
    let name = obj.name_any();
    let desired = obj.to_pb();
    let existing = ctx
        .control
        .get(K::PB_KIND, &name, "")
        .await
        .map_err(Error::control("get"))?;
    let stored = match existing {
        Some(s) if decide::spec_matches(&desired, &s) => s,
        _ => match ctx.control.apply(desired).await {
            Ok(s) => s,
            Err(ControlError::Invalid { message }) => return refuse(obj, ctx, api, &message).await,
            Err(e) => return Err(Error::control("apply")(e)),
        },
    };
    let mut status = K::stored_status(&stored).ok_or_else(|| Error::BadStoreObject {
        kind: K::KIND,
        name: name.clone(),
        field: "kind",
        message: "the store answered with another kind".into(),
    })?;
    K::observe(&mut status, obj.meta().generation);
    let phase = K::phase(&status);
    let before = obj.current().map(K::phase);
    if obj.current() != Some(&status) {
        write_status(api, &name, &status).await?;
    }
    if decide::became_ready(before, phase) {
        let note = format!(
            "{} {name:?} is programmed on every droplet that must hold it",
            K::NOUN
        );
        ctx.publish(obj, EventType::Normal, "Ready", note).await;
    }
    Ok(Action::requeue(decide::requeue_after(phase)))
}

async fn refuse<K: UserKind, C: ControlPlane>(
    obj: &K,
    ctx: &Context<C>,
    api: &Api<K>,
    message: &str,
) -> Result<Action> {
    let name = obj.name_any();
    let mut status = K::refused_status(message);
    K::observe(&mut status, obj.meta().generation);
    // Same refusal as already shown: say nothing again (no event storm on requeue).
    if obj.current() != Some(&status) {
        warn!(kind = K::KIND, name = %name, "store refused the spec: {message}");
        ctx.publish(
            obj,
            EventType::Warning,
            decide::INVALID_SPEC,
            message.to_owned(),
        )
        .await;
        write_status(api, &name, &status).await?;
    }
    Ok(Action::requeue(decide::requeue_after(Phase::Failed)))
}

async fn cleanup<K: UserKind, C: ControlPlane>(obj: &K, ctx: &Context<C>) -> Result<Action> {
    let name = obj.name_any();
    let children = ctx
        .control
        .list(K::CHILD_KIND)
        .await
        .map_err(Error::control("list"))?;
    let blockers = K::blockers(&name, &children.resources);
    if !blockers.is_empty() {
        let reason = decide::blocked_message(K::NOUN, &name, K::CHILDREN, &blockers);
        ctx.publish(obj, EventType::Warning, "DeletionBlocked", reason.clone())
            .await;
        return Err(Error::DeletionBlocked {
            kind: K::KIND,
            name,
            reason,
        });
    }
    ctx.control
        .delete(K::PB_KIND, &name, "")
        .await
        .map_err(Error::control("delete"))?;
    info!(kind = K::KIND, name = %name, "removed from the store");
    Ok(Action::await_change())
}

async fn write_status<K: UserKind>(api: &Api<K>, name: &str, status: &K::Status) -> Result<()> {
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::KIND,
        "status": status,
    });
    api.patch_status(
        name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(Error::kube(format!("patching {} {name:?} status", K::NOUN)))?;
    Ok(())
}
