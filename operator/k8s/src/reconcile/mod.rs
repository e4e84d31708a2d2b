//! The controllers: I/O only, decisions come from [`crate::decide`].
//!
//! | module | direction | what |
//! |---|---|---|
//! | [`user`] | Kubernetes -> store | generic finalizer-guarded reconcile of a user kind |
//! | [`vpc`], [`subnet`] | Kubernetes -> store | the two user kinds plugged into [`user`] |
//! | [`mirror`] | store -> Kubernetes | Endpoint, Bouncer, Divider and Droplet CRs from the store |
//!
//! Everything is level-triggered and idempotent: a reconcile reads the CR and the stored
//! object and writes only what differs, so a replay, a restart or a duplicate event changes
//! nothing.

pub mod mirror;
pub mod subnet;
pub mod user;
pub mod vpc;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt as _;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::{Controller, watcher};
use tracing::{debug, warn};

use crate::K8sConfig;
use crate::control::ControlPlane;
use crate::metrics::Metrics;

/// Field manager of every server-side apply, and the events' reporting controller.
pub const MANAGER: &str = "alkaid-operator";

/// What every reconcile gets: the clients, the event recorder, config and metrics.
pub struct Context<C> {
    /// Kubernetes client.
    pub client: Client,
    /// The store, through the control API.
    pub control: C,
    /// Publishes Kubernetes events.
    pub recorder: Recorder,
    /// Settings.
    pub config: K8sConfig,
    /// Counters.
    pub metrics: Arc<Metrics>,
    // Consecutive failures per object, for backoff; reset on success.
    failures: Mutex<HashMap<String, u32>>,
}

impl<C: ControlPlane> Context<C> {
    /// A context for controllers using `client` and `control`.
    pub fn new(client: Client, config: K8sConfig, control: C, metrics: Arc<Metrics>) -> Self {
        let reporter = Reporter {
            controller: MANAGER.into(),
            instance: config.instance.clone(),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            control,
            config,
            metrics,
            failures: Mutex::default(),
        }
    }

    /// Bumps and returns the failure count of `key`.
    pub(crate) fn bump_failures(&self, key: String) -> u32 {
        let mut f = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = f.entry(key).or_default();
        *n += 1;
        *n
    }

    /// Forgets the failures of `key`.
    pub(crate) fn reset_failures(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(key);
    }

    /// Publishes an event about `obj`; best effort (a lost event must not fail a reconcile).
    pub(crate) async fn publish<K: kube::Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        type_: EventType,
        reason: &str,
        note: String,
    ) {
        let ev = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, &obj.object_ref(&())).await {
            warn!(error = %e, reason, "could not publish event");
        }
    }
}

/// Runs the Vpc and Subnet controllers and the store mirrors until the future is dropped.
pub(crate) async fn run_all<C: ControlPlane>(ctx: Arc<Context<C>>) {
    let vpcs = user_controller::<crate::crd::Vpc, C>(Arc::clone(&ctx));
    let subnets = user_controller::<crate::crd::Subnet, C>(Arc::clone(&ctx));
    let mirrors = async {
        if ctx.config.mirror {
            futures::join!(
                mirror::run::<crate::crd::Endpoint, C>(Arc::clone(&ctx)),
                mirror::run::<crate::crd::Bouncer, C>(Arc::clone(&ctx)),
                mirror::run::<crate::crd::Divider, C>(Arc::clone(&ctx)),
                mirror::run::<crate::crd::Droplet, C>(Arc::clone(&ctx)),
            );
        }
    };
    futures::join!(vpcs, subnets, mirrors);
}

/// The kube-runtime controller of one user kind, driven to completion.
pub async fn user_controller<K: user::UserKind, C: ControlPlane>(ctx: Arc<Context<C>>) {
    let api = kube::Api::<K>::all(ctx.client.clone());
    Controller::new(api, watcher::Config::default())
        .run(user::reconcile::<K, C>, user::error_policy::<K, C>, ctx)
        .for_each(|res| async move {
            match res {
                Ok((obj, _)) => debug!(object = %obj.name, "reconciled"),
                Err(e) => debug!(error = %e, "reconcile failed"),
            }
        })
        .await;
}
