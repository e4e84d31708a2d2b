//! The `alkaid.v1.Control` server. Every replica answers: writes are proposed through Raft
//! (the store forwards them to the leader) and answered once applied locally; reads pass a
//! ReadIndex barrier unless `stale`. Errors map to gRPC codes in one place
//! (`From<Error> for tonic::Status`).

mod read;

use std::pin::Pin;
use std::sync::Arc;

use alkaid_model::{Command, EndpointKey, Reply};
use alkaid_proto::v1 as pb;
use alkaid_proto::v1::control_server::{Control, ControlServer};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::ctx::Ctx;
use crate::error::{Error, Result};
use crate::pb::{self as conv, Kind, Obj};
use crate::state::{Entry, ObjMeta};

pub use read::WatchView;

/// The Control service of one replica.
#[derive(Clone)]
pub struct ControlService {
    ctx: Arc<Ctx>,
}

type Resp<T> = std::result::Result<Response<T>, Status>;

/// Request metadata marking a heartbeat a follower passed on to the leader.
const FORWARDED: &str = "alkaid-forwarded";

fn unexpected(what: &str, r: &Reply) -> Error {
    Error::Refused {
        refusal: crate::error::Refusal::Internal,
        message: format!("{what}: unexpected reply {r:?}"),
    }
}

impl ControlService {
    /// A service over `ctx`.
    pub fn new(ctx: Arc<Ctx>) -> Self {
        Self { ctx }
    }

    /// The tonic server.
    pub fn into_server(self) -> ControlServer<Self> {
        ControlServer::new(self)
    }

    async fn apply_one(&self, i: usize, r: &pb::Resource, dry_run: bool) -> Result<pb::Resource> {
        let field = format!("resources[{i}]");
        let cmd = conv::apply_command(&field, r)?;
        if dry_run {
            // Validate against the current state on a scratch copy: nothing is proposed.
            let mut scratch = self.ctx.shared.read(Clone::clone);
            let (kind, name) = match &cmd {
                Command::ApplyVpc(v) => (Kind::Vpc, v.metadata.name.clone()),
                Command::ApplySubnet(s) => (Kind::Subnet, s.metadata.name.clone()),
                _ => unreachable!("apply_command only builds Vpc and Subnet commands"),
            };
            scratch.apply(cmd).reply.map_err(|e| Error::Refused {
                refusal: crate::error::Refusal::of(&e),
                message: e.to_string(),
            })?;
            // Not stored, so no resource version or generation.
            return read::get(&scratch, kind, "", &name)
                .map(|o| o.to_pb(ObjMeta::default()))
                .ok_or(Error::NotFound {
                    kind: kind.name(),
                    name,
                });
        }
        let reply = self.ctx.propose(&Entry::Command(cmd)).await?;
        let obj = match reply {
            Reply::Vpc(v) => Obj::Vpc(v),
            Reply::Subnet(s) => Obj::Subnet(s),
            other => return Err(unexpected("apply", &other)),
        };
        let meta = self.ctx.shared.read_meta(|_, m| obj.meta_in(m));
        Ok(obj.to_pb(meta))
    }

    async fn allocate(
        &self,
        r: pb::AllocateEndpointRequest,
    ) -> Result<pb::AllocateEndpointResponse> {
        let started = std::time::Instant::now();
        let namespace = if r.namespace.is_empty() {
            return Err(Error::field("namespace", "missing"));
        } else {
            r.namespace
        };
        if r.name.is_empty() {
            return Err(Error::field("name", "missing"));
        }
        let droplet = conv::droplet_name("droplet", &r.droplet)?;
        let ip = if r.ip.is_empty() {
            None
        } else {
            Some(conv::parse_ip("ip", &r.ip)?)
        };
        let entry = Entry::Allocate {
            namespace,
            name: r.name,
            vpc: r.vpc,
            subnet: r.subnet,
            droplet,
            ip,
            pod: r.pod,
        };
        let Reply::Endpoint(alloc) = self.ctx.propose(&entry).await? else {
            return Err(Error::Refused {
                refusal: crate::error::Refusal::Internal,
                message: "allocate: unexpected reply".into(),
            });
        };
        let key = alloc.endpoint.clone();
        self.ctx.metrics.allocated(key.clone(), started);
        self.ctx.shared.read_meta(|s, metas| {
            let ep = read::get(s, Kind::Endpoint, &key.namespace, &key.name);
            let Some(Obj::Endpoint(e, waiting)) = ep else {
                return Err(Error::NotFound {
                    kind: "Endpoint",
                    name: key.to_string(),
                });
            };
            let obj = Obj::Endpoint(e, waiting);
            let pb::resource::Kind::Endpoint(pe) =
                obj.to_pb(obj.meta_in(metas)).kind.expect("endpoint")
            else {
                unreachable!("an endpoint converts to an endpoint");
            };
            Ok(conv::allocation_to_pb(
                &alloc,
                pe,
                s.version(alloc.droplet.as_str()),
            ))
        })
    }
}

#[tonic::async_trait]
impl Control for ControlService {
    #[tracing::instrument(skip_all, fields(n = req.get_ref().resources.len()))]
    async fn apply(&self, req: Request<pb::ApplyRequest>) -> Resp<pb::ApplyResponse> {
        let req = req.into_inner();
        if req.resources.is_empty() {
            return Err(Error::field("resources", "empty; pass at least one Vpc or Subnet").into());
        }
        // Validate every document before changing anything.
        for (i, r) in req.resources.iter().enumerate() {
            conv::apply_command(&format!("resources[{i}]"), r)?;
        }
        let mut out = Vec::with_capacity(req.resources.len());
        for (i, r) in req.resources.iter().enumerate() {
            out.push(self.apply_one(i, r, req.dry_run).await?);
        }
        Ok(Response::new(pb::ApplyResponse { resources: out }))
    }

    #[tracing::instrument(skip_all, fields(name = %req.get_ref().name))]
    async fn delete(&self, req: Request<pb::DeleteRequest>) -> Resp<pb::DeleteResponse> {
        let r = req.into_inner();
        let name = r.name.clone();
        if name.is_empty() {
            return Err(Error::field("name", "missing").into());
        }
        let cmd = match Kind::required("kind", r.kind)? {
            Kind::Vpc => Command::DeleteVpc { name },
            Kind::Subnet => Command::DeleteSubnet { name },
            Kind::Droplet => Command::RemoveDroplet {
                name: conv::droplet_name("name", &name)?,
            },
            Kind::Endpoint => {
                if r.namespace.is_empty() {
                    return Err(Error::field("namespace", "missing for an endpoint").into());
                }
                Command::ReleaseEndpoint {
                    namespace: r.namespace,
                    name,
                }
            }
            k @ (Kind::Bouncer | Kind::Divider) => {
                return Err(Error::field(
                    "kind",
                    format!(
                        "{} objects are placed by the operator; change the subnet or vpc instead",
                        k.name()
                    ),
                )
                .into());
            }
        };
        match self.ctx.propose(&Entry::Command(cmd)).await? {
            Reply::Deleted { existed: false } => Err(Error::NotFound {
                kind: Kind::required("kind", r.kind)?.name(),
                name: r.name,
            }
            .into()),
            _ => Ok(Response::new(pb::DeleteResponse {})),
        }
    }

    #[tracing::instrument(skip_all, fields(name = %req.get_ref().name))]
    async fn get(&self, req: Request<pb::GetRequest>) -> Resp<pb::GetResponse> {
        let r = req.into_inner();
        let kind = Kind::required("kind", r.kind)?;
        if r.name.is_empty() {
            return Err(Error::field("name", "missing").into());
        }
        self.ctx.barrier(r.stale).await?;
        let obj = self.ctx.shared.read_meta(|s, metas| {
            read::get(s, kind, &r.namespace, &r.name).map(|o| {
                let meta = o.meta_in(metas);
                (o, meta)
            })
        });
        let (obj, meta) = obj.ok_or_else(|| Error::NotFound {
            kind: kind.name(),
            name: if r.namespace.is_empty() {
                r.name.clone()
            } else {
                format!("{}/{}", r.namespace, r.name)
            },
        })?;
        Ok(Response::new(pb::GetResponse {
            resource: Some(obj.to_pb(meta)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list(&self, req: Request<pb::ListRequest>) -> Resp<pb::ListResponse> {
        let r = req.into_inner();
        let kind = Kind::required("kind", r.kind)?;
        self.ctx.barrier(r.stale).await?;
        let ns = (!r.namespace.is_empty()).then_some(r.namespace.as_str());
        // Items carry their own resource versions; the list's is the applied index it was
        // read at (a Watch from it misses nothing).
        let (rv, resources) = self.ctx.shared.read_meta(|s, metas| {
            let rv = self.ctx.shared.applied();
            (
                rv,
                read::list(s, kind, ns)
                    .iter()
                    .map(|o| o.to_pb(o.meta_in(metas)))
                    .collect(),
            )
        });
        Ok(Response::new(pb::ListResponse {
            resources,
            resource_version: rv,
        }))
    }

    type WatchStream =
        Pin<Box<dyn Stream<Item = std::result::Result<pb::WatchEvent, Status>> + Send>>;

    #[tracing::instrument(skip_all)]
    async fn watch(&self, req: Request<pb::WatchRequest>) -> Resp<Self::WatchStream> {
        let r = req.into_inner();
        let kind = Kind::from_pb("kind", r.kind)?;
        let ctx = self.ctx.clone();
        let mut view = WatchView::new(kind);
        let (mut cursor, initial) = if r.resource_version == 0 {
            ctx.barrier(false).await?;
            ctx.shared.read_meta(|s, m| {
                let rv = ctx.shared.applied();
                (rv, view.start(s, m, rv, true))
            })
        } else {
            ctx.shared.events.since(r.resource_version)?;
            let rv = r.resource_version;
            ctx.shared.read_meta(|s, m| view.start(s, m, rv, false));
            (rv, Vec::new())
        };
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        tokio::spawn(async move {
            for ev in initial {
                if tx.send(Ok(ev)).await.is_err() {
                    return;
                }
            }
            let mut wake = ctx.shared.events.subscribe();
            loop {
                let changes = match ctx.shared.events.since(cursor) {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = tx.send(Err(e.into())).await;
                        return;
                    }
                };
                for c in changes {
                    let evs = ctx
                        .shared
                        .read_meta(|s, m| view.changes(s, m, &c.touched, c.index));
                    cursor = c.index;
                    for ev in evs {
                        if tx.send(Ok(ev)).await.is_err() {
                            return;
                        }
                    }
                }
                tokio::select! {
                    r = wake.changed() => if r.is_err() { return },
                    () = tx.closed() => return,
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    #[tracing::instrument(skip_all, fields(endpoint = %format!("{}/{}", req.get_ref().namespace, req.get_ref().name)))]
    async fn allocate_endpoint(
        &self,
        req: Request<pb::AllocateEndpointRequest>,
    ) -> Resp<pb::AllocateEndpointResponse> {
        Ok(Response::new(self.allocate(req.into_inner()).await?))
    }

    #[tracing::instrument(skip_all, fields(endpoint = %format!("{}/{}", req.get_ref().namespace, req.get_ref().name)))]
    async fn release_endpoint(
        &self,
        req: Request<pb::ReleaseEndpointRequest>,
    ) -> Resp<pb::ReleaseEndpointResponse> {
        let r = req.into_inner();
        if r.namespace.is_empty() || r.name.is_empty() {
            let field = if r.namespace.is_empty() {
                "namespace"
            } else {
                "name"
            };
            return Err(Error::field(field, "missing").into());
        }
        self.ctx
            .metrics
            .forget(&EndpointKey::new(&r.namespace, &r.name));
        let cmd = Command::ReleaseEndpoint {
            namespace: r.namespace,
            name: r.name,
        };
        let released = matches!(
            self.ctx.propose(&Entry::Command(cmd)).await?,
            Reply::Deleted { existed: true }
        );
        Ok(Response::new(pb::ReleaseEndpointResponse { released }))
    }

    #[tracing::instrument(skip_all, fields(droplet = %req.get_ref().name))]
    async fn register_droplet(
        &self,
        req: Request<pb::RegisterDropletRequest>,
    ) -> Resp<pb::RegisterDropletResponse> {
        let r = req.into_inner();
        let name = conv::droplet_name("name", &r.name)?;
        let (ip, mac, interface, node) = conv::droplet_spec(r.spec.as_ref())?;
        let seen = crate::health::unix_millis();
        let cmd = Command::RegisterDroplet {
            name: name.clone(),
            ip,
            mac,
            interface,
            node,
            seen,
        };
        let reply = self.ctx.propose(&Entry::Command(cmd)).await?;
        let Reply::Droplet(d) = reply else {
            return Err(unexpected("register", &reply).into());
        };
        self.ctx.health.beat(&name);
        let obj = Obj::Droplet(d);
        let meta = self.ctx.shared.read_meta(|_, m| obj.meta_in(m));
        let pb::resource::Kind::Droplet(d) = obj.to_pb(meta).kind.expect("droplet") else {
            unreachable!("a droplet converts to a droplet");
        };
        Ok(Response::new(pb::RegisterDropletResponse {
            droplet: Some(d),
        }))
    }

    #[tracing::instrument(skip_all, fields(droplet = %req.get_ref().name))]
    async fn heartbeat(&self, req: Request<pb::HeartbeatRequest>) -> Resp<pb::HeartbeatResponse> {
        let forwarded = req.metadata().contains_key(FORWARDED);
        let r = req.into_inner();
        let name = conv::droplet_name("name", &r.name)?;
        if !self.ctx.is_leader() {
            // Health is tracked by the leader's clock: pass the beat on (once: a replica that
            // is not the leader either answers with the hint instead of forwarding again).
            let client = if forwarded {
                None
            } else {
                self.ctx.leader_client()?
            };
            let Some(mut client) = client else {
                return Err(Error::NotLeader {
                    leader: self.ctx.leader_address(),
                }
                .into());
            };
            let mut fwd = Request::new(r);
            fwd.metadata_mut()
                .insert(FORWARDED, tonic::metadata::MetadataValue::from_static("1"));
            return client.heartbeat(fwd).await;
        }
        if self
            .ctx
            .shared
            .read(|s| s.get_droplet(name.as_str()).is_none())
        {
            return Err(Error::Refused {
                refusal: crate::error::Refusal::NotFound,
                message: format!("droplet {name:?} is not registered; call RegisterDroplet first"),
            }
            .into());
        }
        self.ctx.health.beat(&name);
        Ok(Response::new(pb::HeartbeatResponse {}))
    }

    async fn cluster_info(
        &self,
        _req: Request<pb::ClusterInfoRequest>,
    ) -> Resp<pb::ClusterInfoResponse> {
        let s = self.ctx.node.status();
        let addr = |id: &u64| {
            self.ctx
                .control_peers
                .get(id)
                .or_else(|| s.addresses.get(id))
                .cloned()
                .unwrap_or_default()
        };
        let mut members: Vec<pb::Member> = Vec::new();
        for (ids, voter) in [(&s.voters, true), (&s.learners, false)] {
            members.extend(ids.iter().map(|id| pb::Member {
                id: *id,
                address: addr(id),
                voter,
            }));
        }
        Ok(Response::new(pb::ClusterInfoResponse {
            leader_id: s.leader_id,
            leader_address: if s.leader_id == 0 {
                String::new()
            } else {
                addr(&s.leader_id)
            },
            term: s.term,
            commit_index: s.commit_index,
            members,
        }))
    }
}
