//! [`GrpcControl`]: [`ControlPlane`] over the `alkaid.v1.Control` gRPC client.

use alkaid_proto::v1 as pb;
use alkaid_proto::v1::control_client::ControlClient;
use futures::StreamExt as _;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use super::{ControlPlane, Listed, WatchStream};
use crate::error::{ControlError, Error, Result};

/// A control API client; cheap to clone (one HTTP/2 channel underneath).
#[derive(Clone, Debug)]
pub struct GrpcControl {
    client: ControlClient<Channel>,
}

impl GrpcControl {
    /// Connects lazily to `endpoint` (e.g. `https://alkaid-control.alkaid-system:7000`),
    /// with mTLS when `tls` is given. The first call fails if the endpoint is unreachable;
    /// the controllers retry such failures with backoff.
    ///
    /// # Errors
    /// [`Error::Connect`] if the URI or the TLS settings are invalid.
    pub fn connect_lazy(endpoint: &str, tls: Option<ClientTlsConfig>) -> Result<Self> {
        let err = |source| Error::Connect {
            endpoint: endpoint.to_owned(),
            source,
        };
        let mut ep = Endpoint::from_shared(endpoint.to_owned()).map_err(err)?;
        if let Some(tls) = tls {
            ep = ep.tls_config(tls).map_err(err)?;
        }
        Ok(Self::new(ControlClient::new(ep.connect_lazy())))
    }

    /// Wraps an existing client (e.g. one over an in-process channel).
    pub fn new(client: ControlClient<Channel>) -> Self {
        Self { client }
    }
}

impl ControlPlane for GrpcControl {
    async fn apply(&self, resource: pb::Resource) -> Result<pb::Resource, ControlError> {
        let req = pb::ApplyRequest {
            resources: vec![resource],
            dry_run: false,
        };
        let reply = self.client.clone().apply(req).await?.into_inner();
        reply
            .resources
            .into_iter()
            .next()
            .ok_or_else(|| ControlError::Malformed {
                message: "apply returned no object".into(),
            })
    }

    async fn delete(
        &self,
        kind: pb::Kind,
        name: &str,
        namespace: &str,
    ) -> Result<bool, ControlError> {
        let req = pb::DeleteRequest {
            kind: kind.into(),
            name: name.to_owned(),
            namespace: namespace.to_owned(),
        };
        match self.client.clone().delete(req).await {
            Ok(_) => Ok(true),
            Err(status) => match ControlError::from(status) {
                ControlError::NotFound { .. } => Ok(false),
                other => Err(other),
            },
        }
    }

    async fn get(
        &self,
        kind: pb::Kind,
        name: &str,
        namespace: &str,
    ) -> Result<Option<pb::Resource>, ControlError> {
        let req = pb::GetRequest {
            kind: kind.into(),
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            stale: false,
        };
        match self.client.clone().get(req).await {
            Ok(reply) => Ok(reply.into_inner().resource),
            Err(status) => match ControlError::from(status) {
                ControlError::NotFound { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn list(&self, kind: pb::Kind) -> Result<Listed, ControlError> {
        let req = pb::ListRequest {
            kind: kind.into(),
            namespace: String::new(),
            stale: false,
        };
        let reply = self.client.clone().list(req).await?.into_inner();
        Ok(Listed {
            resources: reply.resources,
            version: reply.resource_version,
        })
    }

    async fn watch(&self, kind: pb::Kind, after: u64) -> Result<WatchStream, ControlError> {
        let req = pb::WatchRequest {
            kind: kind.into(),
            resource_version: after,
        };
        let stream = self.client.clone().watch(req).await?.into_inner();
        Ok(Box::pin(
            stream.map(|item| item.map_err(ControlError::from)),
        ))
    }
}
