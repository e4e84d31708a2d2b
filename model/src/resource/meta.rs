//! The Kubernetes object envelope shared by every kind: `apiVersion`, `kind`, `metadata`,
//! `spec`, `status`.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// API group of every Alkaid resource.
pub const GROUP: &str = "alkaid.dev";
/// API version of every Alkaid resource.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` as written in manifests.
pub const API_VERSION: &str = "alkaid.dev/v1alpha1";

/// Ties a spec type to its resource kind.
pub trait Kind {
    /// The `kind` field, e.g. `Vpc`.
    const KIND: &'static str;
    /// Whether objects of this kind live in a namespace.
    const NAMESPACED: bool;
}

/// The part of Kubernetes `metadata` the model uses; other fields are ignored on input.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    /// Object name.
    pub name: String,
    /// Namespace, for namespaced kinds only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Lifecycle phase shown in `status.phase`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum Phase {
    /// Accepted, but not yet placed anywhere (e.g. no ready droplet).
    #[default]
    Pending,
    /// Placed; waiting for droplets to acknowledge their tables.
    Provisioning,
    /// Every droplet that must hold it has acknowledged.
    Ready,
    /// A droplet that stopped answering.
    Unreachable,
    /// Cannot make progress without user action.
    Failed,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// A Kubernetes-style status condition.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type, e.g. `Placed`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// CamelCase machine-readable reason.
    pub reason: String,
    /// Human-readable explanation.
    pub message: String,
}

/// One resource object: `apiVersion` and `kind` are implied by `S` and written on output.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Object<S, St> {
    /// Name (and namespace).
    pub metadata: ObjectMeta,
    /// What the writer asks for.
    pub spec: S,
    /// What the operator observed; `None` in user manifests.
    pub status: Option<St>,
}

impl<S: Kind, St> Object<S, St> {
    /// A cluster-scoped object with no status.
    pub fn new(name: impl Into<String>, spec: S) -> Self {
        Self {
            metadata: ObjectMeta {
                name: name.into(),
                namespace: None,
            },
            spec,
            status: None,
        }
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        &self.metadata.name
    }
}

impl<S: Kind + Serialize, St: Serialize> Serialize for Object<S, St> {
    fn serialize<Se: Serializer>(&self, s: Se) -> Result<Se::Ok, Se::Error> {
        if !s.is_human_readable() {
            // Binary formats (postcard in the Raft log) need every field, in order.
            return (
                &self.metadata.name,
                &self.metadata.namespace,
                &self.spec,
                &self.status,
            )
                .serialize(s);
        }
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Out<'a, S, St> {
            api_version: &'static str,
            kind: &'static str,
            metadata: &'a ObjectMeta,
            spec: &'a S,
            #[serde(skip_serializing_if = "Option::is_none")]
            status: &'a Option<St>,
        }
        Out {
            api_version: API_VERSION,
            kind: S::KIND,
            metadata: &self.metadata,
            spec: &self.spec,
            status: &self.status,
        }
        .serialize(s)
    }
}

impl<'de, S: Kind + Deserialize<'de>, St: Deserialize<'de>> Deserialize<'de> for Object<S, St> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if !d.is_human_readable() {
            let (name, namespace, spec, status) =
                <(String, Option<String>, S, Option<St>)>::deserialize(d)?;
            return Ok(Self {
                metadata: ObjectMeta { name, namespace },
                spec,
                status,
            });
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct In<S, St> {
            #[serde(default)]
            api_version: Option<String>,
            #[serde(default)]
            kind: Option<String>,
            metadata: ObjectMeta,
            spec: S,
            #[serde(default = "none")]
            status: Option<St>,
        }
        fn none<T>() -> Option<T> {
            None
        }
        let raw = In::<S, St>::deserialize(d)?;
        if let Some(v) = raw.api_version.as_deref()
            && v != API_VERSION
        {
            return Err(D::Error::custom(format!(
                "{} {:?}: apiVersion {v:?} is not supported; use {API_VERSION}",
                S::KIND,
                raw.metadata.name
            )));
        }
        if let Some(k) = raw.kind.as_deref()
            && k != S::KIND
        {
            return Err(D::Error::custom(format!(
                "kind {k:?} where {} was expected",
                S::KIND
            )));
        }
        Ok(Self {
            metadata: raw.metadata,
            spec: raw.spec,
            status: raw.status,
        })
    }
}
