//! The full kube-runtime Controller loop, fed by a LIST and a streaming WATCH.

use std::time::Duration;

use alkaid_operator_k8s::FakeControl;
use alkaid_operator_k8s::crd::Vpc;
use alkaid_operator_k8s::reconcile::user_controller;
use alkaid_proto::v1 as pb;
use http::Method;
use serde_json::json;

use crate::fixtures::*;
use crate::server::{ApiServer, expect_status_apply};

const VPCS: &str = "/apis/alkaid.dev/v1alpha1/vpcs";

#[tokio::test]
async fn controller_reconciles_watch_events_into_the_store() {
    let (client, mut server) = ApiServer::new();
    let fake = FakeControl::new();
    let ctx = ctx(client, &fake);
    let controller = tokio::spawn(user_controller::<Vpc, FakeControl>(ctx));

    // The watcher lists first, then watches from the list's resourceVersion.
    let list = server.expect(Method::GET, VPCS).await;
    list.assert_query(&["limit=500"]);
    list.json(
        200,
        &json!({"apiVersion": "alkaid.dev/v1alpha1", "kind": "VpcList",
                "metadata": {"resourceVersion": "5"}, "items": []}),
    );
    let watch = server.expect(Method::GET, VPCS).await;
    watch.assert_query(&[
        "watch=true",
        "resourceVersion=5",
        "allowWatchBookmarks=true",
    ]);
    let events = watch.stream();

    // A user creates the Vpc: the controller adds the finalizer.
    events.event("ADDED", &serde_json::to_value(vpc(false)).unwrap());
    let ex = server.expect(Method::PATCH, &format!("{VPCS}/blue")).await;
    assert_eq!(ex.body[1]["value"], json!(["alkaid.dev/vpc"]));
    let mut with_finalizer = vpc(true);
    with_finalizer.metadata.resource_version = Some("11".into());
    ex.json(200, &serde_json::to_value(&with_finalizer).unwrap());

    // The finalizer's own change arrives by watch; now the spec goes to the store.
    events.event("MODIFIED", &serde_json::to_value(&with_finalizer).unwrap());
    let (ex, status) = expect_status_apply(&mut server, &format!("{VPCS}/blue/status")).await;
    assert_eq!(status["phase"], "Provisioning");
    let mut with_status = with_finalizer.clone();
    with_status.status = Some(serde_json::from_value(status).unwrap());
    with_status.metadata.resource_version = Some("12".into());
    ex.json(200, &serde_json::to_value(&with_status).unwrap());
    assert!(
        fake.object(pb::Kind::Vpc, "blue", "").is_some(),
        "stored via the control plane"
    );

    // The status change comes back by watch: a level-triggered no-op, no request follows.
    events.event("MODIFIED", &serde_json::to_value(&with_status).unwrap());
    server.expect_silence().await;
    let applies = fake
        .calls()
        .iter()
        .filter(|c| c.starts_with("apply"))
        .count();
    assert_eq!(
        applies,
        1,
        "one store write for one spec: {:?}",
        fake.calls()
    );

    controller.abort();
    let _ = tokio::time::timeout(Duration::from_secs(1), controller).await;
}
