//! [`FakeControl`]: an in-memory [`ControlPlane`] for tests (here and in the operator's).
//!
//! It keeps objects by `(kind, namespace, name)`, a change log for `watch`, and a record of
//! the calls made. It validates nothing by itself: a test makes it refuse a spec with
//! [`FakeControl::refuse`], exactly as the store would (INVALID_ARGUMENT + message).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use alkaid_proto::v1 as pb;
use pb::resource::Kind as K;
use tokio::sync::watch;

use super::{ControlPlane, Listed, WatchStream, key_of};
use crate::error::ControlError;

type Key = (i32, String, String);

#[derive(Default)]
struct State {
    objects: BTreeMap<Key, pb::Resource>,
    version: u64,
    log: Vec<pb::WatchEvent>,
    refusals: BTreeMap<(i32, String), String>,
    calls: Vec<String>,
    next_vni: u32,
}

/// An in-memory control plane. Clones share state.
#[derive(Clone)]
pub struct FakeControl {
    // std Mutex: never held across an await.
    state: Arc<Mutex<State>>,
    changed: Arc<watch::Sender<u64>>,
}

impl Default for FakeControl {
    fn default() -> Self {
        Self {
            state: Arc::default(),
            changed: Arc::new(watch::channel(0).0),
        }
    }
}

impl FakeControl {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes `apply` of `kind`/`name` fail with INVALID_ARGUMENT and `message` until
    /// [`FakeControl::accept`] is called.
    pub fn refuse(&self, kind: pb::Kind, name: &str, message: &str) {
        self.lock()
            .refusals
            .insert((kind.into(), name.to_owned()), message.to_owned());
    }

    /// Undoes [`FakeControl::refuse`].
    pub fn accept(&self, kind: pb::Kind, name: &str) {
        self.lock().refusals.remove(&(kind.into(), name.to_owned()));
    }

    /// Stores `resource` as is (as if the CNI path or the operator wrote it), logging a change.
    pub fn put(&self, mut resource: pb::Resource) {
        let mut st = self.lock();
        st.version += 1;
        let version = st.version;
        set_version(&mut resource, version);
        let key = key_tuple(&resource);
        let kind = if st.objects.insert(key, resource.clone()).is_some() {
            pb::watch_event::Type::Modified
        } else {
            pb::watch_event::Type::Added
        };
        push(&mut st, kind, resource, version);
        drop(st);
        self.changed.send_replace(version);
    }

    /// Removes an object (as if the CNI path released it), logging a DELETED event.
    pub fn remove(&self, kind: pb::Kind, name: &str, namespace: &str) -> bool {
        let mut st = self.lock();
        let key = (kind.into(), namespace.to_owned(), name.to_owned());
        let Some(old) = st.objects.remove(&key) else {
            return false;
        };
        st.version += 1;
        let version = st.version;
        push(&mut st, pb::watch_event::Type::Deleted, old, version);
        drop(st);
        self.changed.send_replace(version);
        true
    }

    /// The stored object, if any.
    pub fn object(&self, kind: pb::Kind, name: &str, namespace: &str) -> Option<pb::Resource> {
        let key = (kind.into(), namespace.to_owned(), name.to_owned());
        self.lock().objects.get(&key).cloned()
    }

    /// Every call made so far, as `"apply vpc/blue"`, `"list subnet"`, ...
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    fn record(&self, call: String) {
        self.lock().calls.push(call);
    }
}

fn key_tuple(r: &pb::Resource) -> Key {
    let (kind, ns, name) = key_of(r);
    (kind.into(), ns, name)
}

fn push(st: &mut State, kind: pb::watch_event::Type, resource: pb::Resource, version: u64) {
    st.log.push(pb::WatchEvent {
        r#type: kind.into(),
        resource: Some(resource),
        resource_version: version,
    });
}

fn meta_mut(r: &mut pb::Resource) -> Option<&mut pb::ObjectMeta> {
    match r.kind.as_mut()? {
        K::Vpc(o) => o.metadata.as_mut(),
        K::Subnet(o) => o.metadata.as_mut(),
        K::Bouncer(o) => o.metadata.as_mut(),
        K::Divider(o) => o.metadata.as_mut(),
        K::Droplet(o) => o.metadata.as_mut(),
        K::Endpoint(o) => o.metadata.as_mut(),
    }
}

fn set_version(r: &mut pb::Resource, version: u64) {
    if let Some(m) = meta_mut(r) {
        m.resource_version = version;
    }
}

/// What the store would add on first apply: a status (Provisioning) and, for a VPC, a VNI.
fn with_initial_status(resource: &mut pb::Resource, next_vni: &mut u32) {
    match resource.kind.as_mut() {
        Some(K::Vpc(v)) if v.status.is_none() => {
            let vni = v.spec.as_ref().and_then(|s| s.vni).unwrap_or_else(|| {
                *next_vni += 1;
                7000 + *next_vni
            });
            v.status = Some(pb::VpcStatus {
                vni,
                phase: "Provisioning".into(),
                ..Default::default()
            });
        }
        Some(K::Subnet(s)) if s.status.is_none() => {
            s.status = Some(pb::SubnetStatus {
                phase: "Provisioning".into(),
                capacity: 253,
                ..Default::default()
            });
        }
        _ => {}
    }
}

impl ControlPlane for FakeControl {
    async fn apply(&self, mut resource: pb::Resource) -> Result<pb::Resource, ControlError> {
        let (kind, ns, name) = key_of(&resource);
        self.record(format!("apply {}/{name}", crate::error::kind_name(kind)));
        {
            let mut st = self.lock();
            if let Some(message) = st.refusals.get(&(kind.into(), name.clone())) {
                return Err(ControlError::Invalid {
                    message: message.clone(),
                });
            }
            // Keep the stored status: apply changes only the spec.
            if let Some(old) = st.objects.get(&(kind.into(), ns, name)) {
                match (resource.kind.as_mut(), old.kind.as_ref()) {
                    (Some(K::Vpc(new)), Some(K::Vpc(old))) => new.status.clone_from(&old.status),
                    (Some(K::Subnet(new)), Some(K::Subnet(old))) => {
                        new.status.clone_from(&old.status);
                    }
                    _ => {}
                }
            }
            let mut vni = st.next_vni;
            with_initial_status(&mut resource, &mut vni);
            st.next_vni = vni;
        }
        let (kind, ns, name) = key_of(&resource);
        self.put(resource);
        self.object(kind, &name, &ns)
            .ok_or_else(|| ControlError::Malformed {
                message: "object vanished".into(),
            })
    }

    async fn delete(
        &self,
        kind: pb::Kind,
        name: &str,
        namespace: &str,
    ) -> Result<bool, ControlError> {
        self.record(format!("delete {}/{name}", crate::error::kind_name(kind)));
        Ok(self.remove(kind, name, namespace))
    }

    async fn get(
        &self,
        kind: pb::Kind,
        name: &str,
        namespace: &str,
    ) -> Result<Option<pb::Resource>, ControlError> {
        self.record(format!("get {}/{name}", crate::error::kind_name(kind)));
        Ok(self.object(kind, name, namespace))
    }

    async fn list(&self, kind: pb::Kind) -> Result<Listed, ControlError> {
        self.record(format!("list {}", crate::error::kind_name(kind)));
        let st = self.lock();
        let k: i32 = kind.into();
        Ok(Listed {
            resources: st
                .objects
                .iter()
                .filter(|((kk, _, _), _)| *kk == k)
                .map(|(_, r)| r.clone())
                .collect(),
            version: st.version,
        })
    }

    async fn watch(&self, kind: pb::Kind, after: u64) -> Result<WatchStream, ControlError> {
        self.record(format!(
            "watch {} after {after}",
            crate::error::kind_name(kind)
        ));
        let state = Arc::clone(&self.state);
        let rx = self.changed.subscribe();
        let next = move |cursor: u64| {
            let st = state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            st.log
                .iter()
                .find(|e| {
                    e.resource_version > cursor
                        && e.resource.as_ref().map(|r| key_of(r).0) == Some(kind)
                })
                .cloned()
        };
        let stream = futures::stream::unfold((after, rx), move |(cursor, mut rx)| {
            let next = next.clone();
            async move {
                loop {
                    rx.borrow_and_update();
                    if let Some(ev) = next(cursor) {
                        let v = ev.resource_version;
                        return Some((Ok(ev), (v, rx)));
                    }
                    rx.changed().await.ok()?;
                }
            }
        });
        Ok(Box::pin(stream))
    }
}
