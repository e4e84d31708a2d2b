//! Reading objects out of the state for Get, List and Watch, and turning applied changes
//! into watch events.

use std::collections::HashMap;

use alkaid_model::{ClusterState, DropletName, ObjRef};
use alkaid_proto::v1 as pb;

use crate::pb::{Kind, Obj};
use crate::state::{Metas, ObjMeta};

fn endpoint(s: &ClusterState, ns: &str, name: &str) -> Option<Obj> {
    let e = s.get_endpoint(ns, name)?;
    let programmed = e
        .status
        .as_ref()
        .map(|st| st.programmed_on.clone())
        .unwrap_or_default();
    let mut holders: Vec<DropletName> = s
        .get_subnet(&e.spec.subnet)
        .and_then(|sub| sub.status)
        .map(|st| st.bouncers)
        .unwrap_or_default();
    holders.push(e.spec.droplet.clone());
    holders.sort();
    holders.dedup();
    holders.retain(|d| !programmed.contains(d));
    Some(Obj::Endpoint(e, holders))
}

/// One object.
pub fn get(s: &ClusterState, kind: Kind, ns: &str, name: &str) -> Option<Obj> {
    match kind {
        Kind::Vpc => s.get_vpc(name).map(Obj::Vpc),
        Kind::Subnet => s.get_subnet(name).map(Obj::Subnet),
        Kind::Droplet => s.get_droplet(name).map(Obj::Droplet),
        Kind::Endpoint => endpoint(s, ns, name),
        Kind::Bouncer | Kind::Divider => {
            list(s, kind, None).into_iter().find(|o| o.key().1 == name)
        }
    }
}

/// Every object of `kind` (endpoints of `ns` only, when given), in name order.
pub fn list(s: &ClusterState, kind: Kind, ns: Option<&str>) -> Vec<Obj> {
    match kind {
        Kind::Vpc => s.list_vpcs().into_iter().map(Obj::Vpc).collect(),
        Kind::Subnet => s.list_subnets().into_iter().map(Obj::Subnet).collect(),
        Kind::Bouncer => s.list_bouncers().into_iter().map(Obj::Bouncer).collect(),
        Kind::Divider => s.list_dividers().into_iter().map(Obj::Divider).collect(),
        Kind::Droplet => s.list_droplets().into_iter().map(Obj::Droplet).collect(),
        Kind::Endpoint => s
            .list_endpoints(ns)
            .into_iter()
            .filter_map(|e| {
                let ns = e.metadata.namespace.clone().unwrap_or_default();
                endpoint(s, &ns, &e.metadata.name)
            })
            .collect(),
    }
}

type WatchKey = (Kind, String, String);

/// One watcher's view: what it was last sent, to tell ADDED, MODIFIED and DELETED apart
/// and to skip objects that did not really change.
pub struct WatchView {
    kinds: Vec<Kind>,
    known: HashMap<WatchKey, pb::Resource>,
}

fn event(t: pb::watch_event::Type, resource: pb::Resource, rv: u64) -> pb::WatchEvent {
    pb::WatchEvent {
        r#type: t as i32,
        resource: Some(resource),
        resource_version: rv,
    }
}

impl WatchView {
    /// A view of `kind` (every kind when `None`).
    pub fn new(kind: Option<Kind>) -> Self {
        Self {
            kinds: kind.map_or_else(|| Kind::ALL.to_vec(), |k| vec![k]),
            known: HashMap::new(),
        }
    }

    /// Takes in every current object; returns them as ADDED events when `emit`.
    pub fn start(
        &mut self,
        s: &ClusterState,
        metas: &Metas,
        rv: u64,
        emit: bool,
    ) -> Vec<pb::WatchEvent> {
        let mut out = Vec::new();
        for &k in &self.kinds {
            for o in list(s, k, None) {
                let (ns, name) = o.key();
                // What was sent is remembered without metadata, so only real changes count.
                let r = o.to_pb(ObjMeta::default());
                if emit {
                    let meta = o.meta_in(metas);
                    out.push(event(pb::watch_event::Type::Added, o.to_pb(meta), rv));
                }
                self.known.insert((k, ns, name), r);
            }
        }
        out
    }

    fn diff_one(
        &mut self,
        key: WatchKey,
        now: Option<Obj>,
        metas: &Metas,
        rv: u64,
        out: &mut Vec<pb::WatchEvent>,
    ) {
        use pb::watch_event::Type;
        match now {
            Some(o) => {
                let r = o.to_pb(ObjMeta::default());
                let t = match self.known.get(&key) {
                    Some(old) if *old == r => return,
                    Some(_) => Type::Modified,
                    None => Type::Added,
                };
                out.push(event(t, o.to_pb(o.meta_in(metas)), rv));
                self.known.insert(key, r);
            }
            None => {
                if let Some(mut old) = self.known.remove(&key) {
                    set_rv(&mut old, rv);
                    out.push(event(Type::Deleted, old, rv));
                }
            }
        }
    }

    fn diff_all(
        &mut self,
        s: &ClusterState,
        metas: &Metas,
        kind: Kind,
        rv: u64,
        out: &mut Vec<pb::WatchEvent>,
    ) {
        let now: HashMap<WatchKey, Obj> = list(s, kind, None)
            .into_iter()
            .map(|o| {
                let (ns, name) = o.key();
                ((kind, ns, name), o)
            })
            .collect();
        let mut gone: Vec<WatchKey> = self
            .known
            .keys()
            .filter(|k| k.0 == kind && !now.contains_key(*k))
            .cloned()
            .collect();
        gone.sort();
        for k in gone {
            self.diff_one(k, None, metas, rv, out);
        }
        let mut now: Vec<(WatchKey, Obj)> = now.into_iter().collect();
        now.sort_by(|a, b| a.0.cmp(&b.0));
        for (k, o) in now {
            self.diff_one(k, Some(o), metas, rv, out);
        }
    }

    /// Events for the objects `touched` by the entry at `rv`, read from `s` now.
    pub fn changes(
        &mut self,
        s: &ClusterState,
        metas: &Metas,
        touched: &[ObjRef],
        rv: u64,
    ) -> Vec<pb::WatchEvent> {
        let mut out = Vec::new();
        let mut roles = false;
        for t in touched {
            let (kind, ns, name) = match t {
                ObjRef::Vpc(n) => (Kind::Vpc, String::new(), n.clone()),
                ObjRef::Subnet(n) => (Kind::Subnet, String::new(), n.clone()),
                ObjRef::Droplet(d) => (Kind::Droplet, String::new(), d.to_string()),
                ObjRef::Endpoint(k) => (Kind::Endpoint, k.namespace.clone(), k.name.clone()),
            };
            roles |= kind != Kind::Endpoint;
            if self.kinds.contains(&kind) {
                let now = get(s, kind, &ns, &name);
                self.diff_one((kind, ns, name), now, metas, rv, &mut out);
            }
        }
        if roles {
            // Placements follow VPCs, subnets and droplet health; they are few, so re-list.
            for kind in [Kind::Bouncer, Kind::Divider] {
                if self.kinds.contains(&kind) {
                    self.diff_all(s, metas, kind, rv, &mut out);
                }
            }
        }
        out
    }
}

fn set_rv(r: &mut pb::Resource, rv: u64) {
    use pb::resource::Kind as K;
    let meta = match r.kind.as_mut() {
        Some(K::Vpc(o)) => o.metadata.as_mut(),
        Some(K::Subnet(o)) => o.metadata.as_mut(),
        Some(K::Bouncer(o)) => o.metadata.as_mut(),
        Some(K::Divider(o)) => o.metadata.as_mut(),
        Some(K::Droplet(o)) => o.metadata.as_mut(),
        Some(K::Endpoint(o)) => o.metadata.as_mut(),
        None => None,
    };
    if let Some(m) = meta {
        m.resource_version = rv;
    }
}
