//! Endpoint allocation: the operator's `AllocateEndpoint`/`ReleaseEndpoint` behind a trait,
//! with an in-memory fake for tests and simulations.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::Ipv4Addr;
use std::sync::Mutex;

use alkaid_proto::v1 as pb;
use alkaid_proto::v1::control_client::ControlClient;
use ipnet::Ipv4Net;
use tonic::transport::Channel;

use crate::error::{Error, Result};

/// What the CNI path asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllocateRequest {
    /// Endpoint namespace (the pod's).
    pub namespace: String,
    /// Endpoint name.
    pub name: String,
    /// Requested VPC (None: the namespace binding or the default VPC).
    pub vpc: Option<String>,
    /// Requested subnet.
    pub subnet: Option<String>,
    /// Requested address.
    pub ip: Option<Ipv4Addr>,
    /// `namespace/pod`, for the Endpoint's spec.
    pub pod: String,
}

/// What the operator allocated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allocation {
    /// Address and the subnet's prefix length.
    pub address: Ipv4Net,
    /// The subnet's gateway.
    pub gateway: Ipv4Addr,
    /// The VPC's VNI.
    pub vni: u32,
    /// The endpoint's MAC, if the operator chose one.
    pub mac: Option<[u8; 6]>,
    /// The droplet table version that holds the endpoint's local rows.
    pub droplet_version: u64,
}

/// The allocation backend.
pub trait Allocator: Send + Sync + 'static {
    /// Allocates (or returns the existing allocation of) an endpoint.
    ///
    /// # Errors
    /// [`Error::Allocation`], `transient` when a retry may succeed.
    fn allocate(&self, req: AllocateRequest) -> impl Future<Output = Result<Allocation>> + Send;

    /// Releases an endpoint; `Ok(false)` if there was nothing to release.
    ///
    /// # Errors
    /// [`Error::Allocation`].
    fn release(&self, namespace: &str, name: &str) -> impl Future<Output = Result<bool>> + Send;
}

/// [`Allocator`] over the operator's control API. Any replica accepts (followers forward to
/// the leader); a replica that cannot be reached (down, restarting) is skipped for the next.
#[derive(Clone, Debug)]
pub struct ControlAllocator {
    clients: Vec<ControlClient<Channel>>,
    droplet: String,
    // The replica that answered last is tried first.
    first: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl ControlAllocator {
    /// Uses `channel` (lazily connected) for endpoints on `droplet`.
    pub fn new(channel: Channel, droplet: impl Into<String>) -> Self {
        Self::with_replicas(vec![channel], droplet)
    }

    /// One lazily connected channel per operator replica, tried in turn.
    pub fn with_replicas(channels: Vec<Channel>, droplet: impl Into<String>) -> Self {
        Self {
            clients: channels.into_iter().map(ControlClient::new).collect(),
            droplet: droplet.into(),
            first: std::sync::Arc::default(),
        }
    }

    /// Calls `f` on each replica in turn, from the last good one, until one answers with
    /// anything but UNAVAILABLE (connection refused, no leader yet).
    async fn call<T, F, Fut>(&self, f: F) -> Result<T, tonic::Status>
    where
        F: Fn(ControlClient<Channel>) -> Fut,
        Fut: Future<Output = Result<T, tonic::Status>>,
    {
        use std::sync::atomic::Ordering;
        let n = self.clients.len().max(1);
        let start = self.first.load(Ordering::Relaxed);
        let mut last = tonic::Status::unavailable("no operator configured");
        for i in 0..n {
            let idx = (start + i) % n;
            let Some(client) = self.clients.get(idx) else {
                break;
            };
            match f(client.clone()).await {
                Err(s) if s.code() == tonic::Code::Unavailable => last = s,
                other => {
                    self.first.store(idx, Ordering::Relaxed);
                    return other;
                }
            }
        }
        Err(last)
    }
}

fn status_error(namespace: &str, name: &str, s: &tonic::Status) -> Error {
    use tonic::Code;
    Error::Allocation {
        namespace: namespace.to_string(),
        name: name.to_string(),
        message: s.message().to_string(),
        transient: matches!(
            s.code(),
            Code::Unavailable | Code::DeadlineExceeded | Code::Aborted | Code::ResourceExhausted
        ),
    }
}

impl Allocator for ControlAllocator {
    async fn allocate(&self, req: AllocateRequest) -> Result<Allocation> {
        let msg = pb::AllocateEndpointRequest {
            namespace: req.namespace.clone(),
            name: req.name.clone(),
            vpc: req.vpc.clone().unwrap_or_default(),
            subnet: req.subnet.clone().unwrap_or_default(),
            droplet: self.droplet.clone(),
            ip: req.ip.map(|i| i.to_string()).unwrap_or_default(),
            pod: req.pod.clone(),
        };
        let resp = self
            .call(|mut c| {
                let msg = msg.clone();
                async move { c.allocate_endpoint(msg).await }
            })
            .await
            .map_err(|s| status_error(&req.namespace, &req.name, &s))?
            .into_inner();
        crate::pb::allocation_from_pb(&resp).map_err(|e| Error::Allocation {
            namespace: req.namespace,
            name: req.name,
            message: e.to_string(),
            transient: false,
        })
    }

    async fn release(&self, namespace: &str, name: &str) -> Result<bool> {
        let msg = pb::ReleaseEndpointRequest {
            namespace: namespace.to_string(),
            name: name.to_string(),
        };
        let resp = self
            .call(|mut c| {
                let msg = msg.clone();
                async move { c.release_endpoint(msg).await }
            })
            .await;
        match resp {
            Ok(r) => Ok(r.into_inner().released),
            // Idempotent: an endpoint that is already gone has nothing left to release.
            Err(s) if s.code() == tonic::Code::NotFound => Ok(false),
            Err(s) => Err(status_error(namespace, name, &s)),
        }
    }
}

/// An in-memory [`Allocator`] handing out addresses of one subnet in order (tests, sims).
#[derive(Debug)]
pub struct FakeAllocator {
    subnet: Ipv4Net,
    gateway: Ipv4Addr,
    vni: u32,
    droplet_version: std::sync::atomic::AtomicU64,
    state: Mutex<BTreeMap<(String, String), Ipv4Addr>>,
}

impl FakeAllocator {
    /// Allocates from `subnet`, skipping the network address and the gateway (its first host).
    pub fn new(subnet: Ipv4Net, vni: u32) -> Self {
        let gateway = subnet.hosts().next().unwrap_or(subnet.addr());
        Self {
            subnet,
            gateway,
            vni,
            droplet_version: std::sync::atomic::AtomicU64::new(0),
            state: Mutex::new(BTreeMap::new()),
        }
    }

    /// Makes later allocations report `version` as the table version holding their rows.
    pub fn set_droplet_version(&self, version: u64) {
        self.droplet_version
            .store(version, std::sync::atomic::Ordering::Relaxed);
    }

    /// Currently allocated endpoints.
    pub fn allocated(&self) -> BTreeMap<(String, String), Ipv4Addr> {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Allocator for FakeAllocator {
    async fn allocate(&self, req: AllocateRequest) -> Result<Allocation> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let key = (req.namespace.clone(), req.name.clone());
        let ip = match st.get(&key) {
            Some(ip) => *ip,
            None => {
                let used: Vec<Ipv4Addr> = st.values().copied().collect();
                let free = self
                    .subnet
                    .hosts()
                    .filter(|h| *h != self.gateway && !used.contains(h))
                    .find(|h| req.ip.is_none_or(|want| want == *h));
                let Some(ip) = free else {
                    return Err(Error::Allocation {
                        namespace: req.namespace,
                        name: req.name,
                        message: format!("no free address in {}", self.subnet),
                        transient: false,
                    });
                };
                st.insert(key, ip);
                ip
            }
        };
        Ok(Allocation {
            address: Ipv4Net::new(ip, self.subnet.prefix_len()).unwrap_or(self.subnet),
            gateway: self.gateway,
            vni: self.vni,
            mac: None,
            droplet_version: self
                .droplet_version
                .load(std::sync::atomic::Ordering::Relaxed),
        })
    }

    async fn release(&self, namespace: &str, name: &str) -> Result<bool> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        Ok(st
            .remove(&(namespace.to_string(), name.to_string()))
            .is_some())
    }
}

impl<T: Allocator> Allocator for std::sync::Arc<T> {
    fn allocate(&self, req: AllocateRequest) -> impl Future<Output = Result<Allocation>> + Send {
        T::allocate(self, req)
    }

    fn release(&self, namespace: &str, name: &str) -> impl Future<Output = Result<bool>> + Send {
        T::release(self, namespace, name)
    }
}
