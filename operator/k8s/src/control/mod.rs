//! [`ControlPlane`]: the one door to the store. The controllers never see gRPC; they get a
//! `ControlPlane`, which is [`GrpcControl`] in the operator and [`FakeControl`] in tests.

mod fake;
mod grpc;

use std::future::Future;
use std::pin::Pin;

use alkaid_proto::v1 as pb;
use futures::Stream;

use crate::error::ControlError;

pub use fake::FakeControl;
pub use grpc::GrpcControl;

/// Store changes after a version, as the control API's `Watch` streams them.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchEvent, ControlError>> + Send>>;

/// Objects of one kind and the store version they were read at (a watch cursor).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Listed {
    /// The objects, in the store's order (sorted by namespace and name).
    pub resources: Vec<pb::Resource>,
    /// Version to start a watch from so that nothing is missed.
    pub version: u64,
}

/// The subset of the `alkaid.v1.Control` service the Kubernetes side uses.
///
/// Contract (shared by every implementation):
/// - `apply` is idempotent: the same spec applied twice stores the same object.
/// - `delete` of an absent object is not an error (it returns `false`).
/// - `watch(kind, v)` yields every change of `kind` after version `v` in order; `v = 0`
///   starts with the current objects as ADDED events.
///
/// # Errors
/// [`ControlError::Invalid`] when the store refuses a spec (nothing is changed; the
/// message is meant for the user), [`ControlError::NotFound`], or
/// [`ControlError::Rpc`] for transport/leadership trouble, which callers retry.
///
/// # Panics
/// Implementations must not panic on any input.
pub trait ControlPlane: Clone + Send + Sync + 'static {
    /// Creates or updates one user resource; returns the stored object with its status.
    fn apply(
        &self,
        resource: pb::Resource,
    ) -> impl Future<Output = Result<pb::Resource, ControlError>> + Send;

    /// Deletes one object; `Ok(false)` when there was nothing to delete.
    fn delete(
        &self,
        kind: pb::Kind,
        name: &str,
        namespace: &str,
    ) -> impl Future<Output = Result<bool, ControlError>> + Send;

    /// Reads one object; `Ok(None)` when absent.
    fn get(
        &self,
        kind: pb::Kind,
        name: &str,
        namespace: &str,
    ) -> impl Future<Output = Result<Option<pb::Resource>, ControlError>> + Send;

    /// Lists one kind (every namespace).
    fn list(&self, kind: pb::Kind) -> impl Future<Output = Result<Listed, ControlError>> + Send;

    /// Streams changes of one kind after `after`.
    fn watch(
        &self,
        kind: pb::Kind,
        after: u64,
    ) -> impl Future<Output = Result<WatchStream, ControlError>> + Send;
}

/// The `(kind, namespace, name)` of a resource; kind `Unspecified` if the oneof is empty.
pub fn key_of(resource: &pb::Resource) -> (pb::Kind, String, String) {
    use pb::resource::Kind as K;
    let (kind, meta) = match &resource.kind {
        Some(K::Vpc(o)) => (pb::Kind::Vpc, &o.metadata),
        Some(K::Subnet(o)) => (pb::Kind::Subnet, &o.metadata),
        Some(K::Bouncer(o)) => (pb::Kind::Bouncer, &o.metadata),
        Some(K::Divider(o)) => (pb::Kind::Divider, &o.metadata),
        Some(K::Droplet(o)) => (pb::Kind::Droplet, &o.metadata),
        Some(K::Endpoint(o)) => (pb::Kind::Endpoint, &o.metadata),
        None => return (pb::Kind::Unspecified, String::new(), String::new()),
    };
    let meta = meta.clone().unwrap_or_default();
    (kind, meta.namespace, meta.name)
}
