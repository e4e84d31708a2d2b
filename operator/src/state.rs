//! The replicated state machine: [`Machine`] implements [`alkaid_store::StateMachine`] over
//! [`alkaid_model::ClusterState`], and [`Shared`] is what the rest of the operator reads.
//!
//! A log entry is a postcard-encoded [`Entry`] (a model [`Command`], an allocation whose
//! VPC/subnet are resolved at apply time, or a batch of acknowledgements); the reply is a
//! postcard-encoded [`WireReply`]: the model's reply, or its refusal with a [`Refusal`] class
//! and message. While applying, every replica captures the command's deltas into the
//! bounded per-droplet [`Feed`] and the touched objects into [`Events`], so whichever replica
//! leads next can stream from its own state.

use std::collections::{HashMap, VecDeque};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use alkaid_model::{ClusterState, Command, DropletName, ObjRef, Reply, StatusChange};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::error::{Error, Refusal, Result};
use crate::feed::Feed;

/// One Raft log entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Entry {
    /// A model command as is.
    Command(Command),
    /// CNI ADD with the network possibly left to the cluster: an empty `vpc` means the
    /// named subnet's VPC, else the namespace's bound VPC, else `default`; an empty
    /// `subnet` means the VPC's only subnet.
    /// Resolved at apply time so the choice is deterministic and current.
    Allocate {
        /// Pod namespace.
        namespace: String,
        /// Endpoint name.
        name: String,
        /// VPC, or empty.
        vpc: String,
        /// Subnet, or empty.
        subnet: String,
        /// Hosting droplet.
        droplet: DropletName,
        /// A requested address.
        ip: Option<Ipv4Addr>,
        /// Pod name.
        pod: String,
    },
    /// Many `AckProgrammed` in one entry (the leader batches agents' acknowledgements).
    Acks(Vec<(DropletName, u64)>),
    /// `DropletHeartbeat` for every droplet the leader heard from in one health period,
    /// stamped with the leader's wall clock `at` (Unix milliseconds).
    Seen {
        /// Droplets heard from.
        droplets: Vec<DropletName>,
        /// The `lastSeen` stamp.
        at: u64,
    },
}

impl Entry {
    /// The postcard encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("entries always encode")
    }
}

/// A refused command, as carried in the reply bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireError {
    /// Class (maps to a gRPC code).
    pub refusal: Refusal,
    /// The model's message.
    pub message: String,
}

/// The reply of one entry.
pub type WireReply = std::result::Result<Reply, WireError>;

/// Decodes an entry's reply into the operator's result.
///
/// # Errors
/// [`Error::Refused`] for a refused command, [`Error::Decode`] for garbage.
pub fn decode_reply(bytes: &[u8]) -> Result<Reply> {
    let wire: WireReply = postcard::from_bytes(bytes).map_err(|source| Error::Decode {
        what: "reply",
        source,
    })?;
    wire.map_err(|e| Error::Refused {
        refusal: e.refusal,
        message: e.message,
    })
}

/// What one applied entry changed, for Watch and status write-back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// Raft index of the entry.
    pub index: u64,
    /// Objects whose spec or status may have changed.
    pub touched: Vec<ObjRef>,
    /// Phase changes the model reported.
    pub status: Vec<StatusChange>,
}

/// A bounded ring of recent [`Change`]s with a wake-up for watchers.
pub struct Events {
    ring: Mutex<(VecDeque<Arc<Change>>, u64)>,
    cap: usize,
    latest: watch::Sender<u64>,
}

impl Events {
    fn new(cap: usize) -> Self {
        Self {
            ring: Mutex::new((VecDeque::new(), 0)),
            cap: cap.max(1),
            latest: watch::channel(0).0,
        }
    }

    fn push(&self, change: Change) {
        let index = change.index;
        {
            let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
            ring.0.push_back(Arc::new(change));
            while ring.0.len() > self.cap {
                if let Some(old) = ring.0.pop_front() {
                    ring.1 = old.index;
                }
            }
        }
        self.latest.send_replace(index);
    }

    fn reset(&self, index: u64) {
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        ring.0.clear();
        ring.1 = index;
        drop(ring);
        self.latest.send_replace(index);
    }

    /// Changes with an index above `after`.
    ///
    /// # Errors
    /// [`Error::TooOld`] when some of them are no longer retained.
    pub fn since(&self, after: u64) -> Result<Vec<Arc<Change>>> {
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        if after < ring.1 {
            return Err(Error::TooOld {
                requested: after,
                oldest: ring.1,
            });
        }
        // Indices only grow along the ring: find the first newer change by bisection, so
        // a watcher that is nearly current costs O(log n), not a scan of the whole ring.
        let first = ring.0.partition_point(|c| c.index <= after);
        Ok(ring.0.range(first..).cloned().collect())
    }

    /// A receiver of the latest applied index with changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.latest.subscribe()
    }
}

/// Object metadata the model does not keep: when an object last changed and how often its
/// spec did (Kubernetes' `resourceVersion` and `generation`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjMeta {
    /// Raft index of the entry that last changed the object (its spec, its phase, or a
    /// counter such as a subnet's `allocated`).
    pub resource_version: u64,
    /// 1 on creation, +1 for every change of the spec.
    pub generation: u64,
}

/// [`ObjMeta`] of every live object, maintained by [`Machine::apply`].
#[derive(Default)]
pub struct Metas(HashMap<ObjRef, ObjMeta>);

impl Metas {
    /// The metadata of `obj` (zero when unknown).
    pub fn get(&self, obj: &ObjRef) -> ObjMeta {
        self.0.get(obj).copied().unwrap_or_default()
    }
}

/// An object as it reads at one point, to tell spec changes (new generation) from other
/// changes (new resource version only).
#[derive(PartialEq)]
enum Seen {
    Vpc(alkaid_model::resource::Vpc),
    Subnet(alkaid_model::resource::Subnet),
    Droplet(alkaid_model::resource::Droplet),
    Endpoint(alkaid_model::resource::Endpoint),
}

impl Seen {
    fn same_spec(&self, other: &Seen) -> bool {
        match (self, other) {
            (Seen::Vpc(a), Seen::Vpc(b)) => a.spec == b.spec,
            (Seen::Subnet(a), Seen::Subnet(b)) => a.spec == b.spec,
            (Seen::Droplet(a), Seen::Droplet(b)) => a.spec == b.spec,
            (Seen::Endpoint(a), Seen::Endpoint(b)) => a.spec == b.spec,
            _ => false,
        }
    }
}

fn observe(s: &ClusterState, obj: &ObjRef) -> Option<Seen> {
    Some(match obj {
        ObjRef::Vpc(n) => Seen::Vpc(s.get_vpc(n)?),
        ObjRef::Subnet(n) => Seen::Subnet(s.get_subnet(n)?),
        ObjRef::Droplet(d) => Seen::Droplet(s.get_droplet(d.as_str())?),
        ObjRef::Endpoint(k) => Seen::Endpoint(s.get_endpoint(&k.namespace, &k.name)?),
    })
}

struct Inner {
    model: ClusterState,
    metas: Metas,
}

/// The state shared between the store's driver (which applies) and the operator's tasks
/// (which read). Applying takes the write lock; readers hold the read lock briefly and never
/// across an await.
pub struct Shared {
    state: RwLock<Inner>,
    applied: AtomicU64,
    applied_tx: watch::Sender<u64>,
    /// Per-droplet delta log for the programming streams.
    pub feed: Feed,
    /// Recent object changes for Watch and status write-back.
    pub events: Events,
}

impl Shared {
    /// An empty state; `max_rows` caps each droplet's retained deltas, `max_events` the
    /// change ring.
    pub fn new(max_rows: usize, max_events: usize) -> Arc<Self> {
        Arc::new(Self {
            state: RwLock::new(Inner {
                model: ClusterState::new(),
                metas: Metas::default(),
            }),
            applied: AtomicU64::new(0),
            applied_tx: watch::channel(0).0,
            feed: Feed::new(max_rows),
            events: Events::new(max_events),
        })
    }

    /// Runs `f` on the current state (read lock; do not block inside).
    pub fn read<T>(&self, f: impl FnOnce(&ClusterState) -> T) -> T {
        f(&self.state.read().unwrap_or_else(|e| e.into_inner()).model)
    }

    /// Runs `f` on the current state and the objects' metadata (read lock; do not block).
    pub fn read_meta<T>(&self, f: impl FnOnce(&ClusterState, &Metas) -> T) -> T {
        let g = self.state.read().unwrap_or_else(|e| e.into_inner());
        f(&g.model, &g.metas)
    }

    /// Index of the last applied entry.
    pub fn applied(&self) -> u64 {
        self.applied.load(Ordering::Acquire)
    }

    /// A receiver of the applied index.
    pub fn subscribe_applied(&self) -> watch::Receiver<u64> {
        self.applied_tx.subscribe()
    }

    fn set_applied(&self, index: u64) {
        self.applied.store(index, Ordering::Release);
        self.applied_tx.send_replace(index);
    }
}

/// The [`alkaid_store::StateMachine`] the store drives.
pub struct Machine {
    shared: Arc<Shared>,
}

impl Machine {
    /// A machine applying into `shared`.
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

fn encode(reply: &WireReply) -> Vec<u8> {
    postcard::to_allocvec(reply).expect("replies always encode")
}

fn refusal(e: &alkaid_model::Error) -> WireError {
    WireError {
        refusal: Refusal::of(e),
        message: e.to_string(),
    }
}

/// Objects a command names directly (status changes add the rest).
fn named(cmd: &Command) -> Option<ObjRef> {
    Some(match cmd {
        Command::ApplyVpc(v) => ObjRef::Vpc(v.metadata.name.clone()),
        Command::DeleteVpc { name } => ObjRef::Vpc(name.clone()),
        Command::ApplySubnet(s) => ObjRef::Subnet(s.metadata.name.clone()),
        Command::DeleteSubnet { name } => ObjRef::Subnet(name.clone()),
        Command::RegisterDroplet { name, .. }
        | Command::DropletHeartbeat { name, .. }
        | Command::SetDropletPhase { name, .. }
        | Command::RemoveDroplet { name } => ObjRef::Droplet(name.clone()),
        Command::AllocateEndpoint {
            namespace, name, ..
        }
        | Command::ReleaseEndpoint { namespace, name } => {
            ObjRef::Endpoint(alkaid_model::EndpointKey::new(namespace, name))
        }
        Command::AckProgrammed { .. } => return None,
    })
}

/// Resolves an [`Entry::Allocate`] into the model command (or a refusal).
fn resolve(state: &ClusterState, entry: Entry) -> std::result::Result<Command, WireError> {
    let Entry::Allocate {
        namespace,
        name,
        mut vpc,
        mut subnet,
        droplet,
        ip,
        pod,
    } = entry
    else {
        unreachable!("only allocations are resolved");
    };
    if vpc.is_empty() && !subnet.is_empty() {
        let Some(s) = state.get_subnet(&subnet) else {
            let e = alkaid_model::Error::UnknownSubnet {
                referrer: format!("endpoint {namespace}/{name}"),
                subnet,
            };
            return Err(refusal(&e));
        };
        vpc = s.spec.vpc;
    }
    if vpc.is_empty() {
        vpc = state
            .vpc_for_namespace(&namespace)
            .unwrap_or("default")
            .to_owned();
    }
    if subnet.is_empty() {
        let mut names = state
            .list_subnets()
            .into_iter()
            .filter(|s| s.spec.vpc == vpc)
            .map(|s| s.metadata.name);
        subnet = match (names.next(), names.next()) {
            (Some(only), None) => only,
            (None, _) => {
                return Err(WireError {
                    refusal: Refusal::NotFound,
                    message: format!(
                        "endpoint {namespace}/{name}: vpc {vpc:?} has no subnet (or does not exist); create one or name the subnet"
                    ),
                });
            }
            (Some(_), Some(_)) => {
                return Err(WireError {
                    refusal: Refusal::Invalid,
                    message: format!(
                        "endpoint {namespace}/{name}: vpc {vpc:?} has several subnets; name the subnet"
                    ),
                });
            }
        };
    }
    Ok(Command::AllocateEndpoint {
        namespace,
        name,
        vpc,
        subnet,
        droplet,
        ip,
        pod,
    })
}

/// Objects whose rendering a command may change besides the one it names (counters the
/// model does not report as status changes).
fn also_touched(state: &ClusterState, cmd: &Command) -> Option<ObjRef> {
    match cmd {
        Command::AllocateEndpoint { subnet, .. } => Some(ObjRef::Subnet(subnet.clone())),
        Command::ReleaseEndpoint { namespace, name } => state
            .get_endpoint(namespace, name)
            .map(|e| ObjRef::Subnet(e.spec.subnet)),
        _ => None,
    }
}

/// Records in `metas` what entry `index` changed: `before` holds each candidate object as
/// it read before the command; `phase` lists objects whose phase changed (changed for sure).
fn stamp(
    state: &ClusterState,
    metas: &mut Metas,
    index: u64,
    before: Vec<(ObjRef, Option<Seen>)>,
    phase: &[ObjRef],
) {
    for (obj, was) in before {
        let now = observe(state, &obj);
        let Some(now) = now else {
            metas.0.remove(&obj);
            continue;
        };
        let m = metas.0.entry(obj).or_default();
        match was {
            None => {
                *m = ObjMeta {
                    resource_version: index,
                    generation: 1,
                };
            }
            Some(was) => {
                if !was.same_spec(&now) {
                    m.generation += 1;
                }
                if was != now {
                    m.resource_version = index;
                }
            }
        }
    }
    for obj in phase {
        if let Some(m) = metas.0.get_mut(obj) {
            m.resource_version = index;
        }
    }
}

/// What the machine's snapshot holds besides the model's bytes.
#[derive(Serialize, Deserialize)]
struct Snap {
    applied: u64,
    model: Vec<u8>,
    metas: Vec<(ObjRef, ObjMeta)>,
}

impl alkaid_store::StateMachine for Machine {
    fn apply(&mut self, index: u64, command: &[u8]) -> Vec<u8> {
        let entry: Entry = match postcard::from_bytes(command) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(index, error = %e, "undecodable log entry skipped");
                self.shared.set_applied(index);
                return encode(&Err(WireError {
                    refusal: Refusal::Internal,
                    message: format!("log entry {index} cannot be decoded: {e}"),
                }));
            }
        };
        let _span = tracing::trace_span!("apply", index).entered();
        let mut touched = Vec::new();
        let mut status = Vec::new();
        let mut guard = self.shared.state.write().unwrap_or_else(|e| e.into_inner());
        let Inner { model, metas } = &mut *guard;
        let mut run = |state: &mut ClusterState, cmd: Command| -> WireReply {
            let objs: Vec<ObjRef> = named(&cmd)
                .into_iter()
                .chain(also_touched(state, &cmd))
                .collect();
            let before: Vec<_> = objs
                .iter()
                .map(|o| (o.clone(), observe(state, o)))
                .collect();
            let out = state.apply(cmd);
            if out.reply.is_ok() {
                let phase: Vec<ObjRef> = out
                    .status_changes
                    .iter()
                    .map(|s| s.object.clone())
                    .collect();
                stamp(state, metas, index, before, &phase);
                touched.extend(objs);
                touched.extend(phase);
                status.extend(out.status_changes);
                self.shared.feed.push(out.deltas);
            }
            out.reply.map_err(|e| refusal(&e))
        };
        let reply = match entry {
            Entry::Command(cmd) => run(model, cmd),
            Entry::Acks(acks) => {
                for (droplet, version) in acks {
                    // Acks for droplets removed meanwhile are refused; that is fine.
                    let _ = run(model, Command::AckProgrammed { droplet, version });
                }
                Ok(Reply::Done)
            }
            Entry::Seen { droplets, at } => {
                for name in droplets {
                    // A droplet removed meanwhile is refused; that is fine.
                    let _ = run(model, Command::DropletHeartbeat { name, seen: at });
                }
                Ok(Reply::Done)
            }
            alloc @ Entry::Allocate { .. } => match resolve(model, alloc) {
                Ok(cmd) => run(model, cmd),
                Err(e) => Err(e),
            },
        };
        self.shared.set_applied(index);
        drop(guard);
        if !touched.is_empty() {
            touched.sort();
            touched.dedup();
            self.shared.events.push(Change {
                index,
                touched,
                status,
            });
        }
        encode(&reply)
    }

    fn query(&self, _query: &[u8]) -> Vec<u8> {
        // Reads are served from `Shared` after a ReadIndex barrier; the barrier's answer is
        // the applied index, so a remote `Read` also tells how far this replica is.
        self.shared.applied().to_be_bytes().to_vec()
    }

    fn snapshot(&self) -> Vec<u8> {
        let state = self.shared.state.read().unwrap_or_else(|e| e.into_inner());
        let mut metas: Vec<(ObjRef, ObjMeta)> =
            state.metas.0.iter().map(|(k, v)| (k.clone(), *v)).collect();
        metas.sort();
        postcard::to_allocvec(&Snap {
            applied: self.shared.applied(),
            model: state.model.snapshot(),
            metas,
        })
        .expect("snapshots always encode")
    }

    fn restore(&mut self, data: &[u8]) -> alkaid_store::Result<()> {
        let bad = |reason: String| alkaid_store::Error::Restore { reason };
        let snap: Snap = postcard::from_bytes(data).map_err(|e| bad(e.to_string()))?;
        let model = ClusterState::restore(&snap.model).map_err(|e| bad(e.to_string()))?;
        let versions: Vec<(DropletName, u64)> = model
            .droplet_names()
            .map(|d| (d.clone(), model.version(d.as_str())))
            .collect();
        let mut state = self.shared.state.write().unwrap_or_else(|e| e.into_inner());
        *state = Inner {
            model,
            metas: Metas(snap.metas.into_iter().collect()),
        };
        self.shared.feed.reset(versions);
        self.shared.set_applied(snap.applied);
        drop(state);
        self.shared.events.reset(snap.applied);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
