//! Vpc/Subnet reconciles, one at a time, with every API request asserted.

use std::sync::Arc;
use std::time::Duration;

use alkaid_operator_k8s::FakeControl;
use alkaid_operator_k8s::crd::Vpc;
use alkaid_operator_k8s::reconcile::user::{error_policy, reconcile};
use alkaid_proto::v1 as pb;
use http::Method;
use kube::runtime::controller::Action;
use serde_json::json;

use crate::fixtures::*;
use crate::server::{ApiServer, expect_event, expect_status_apply};

const VPC: &str = "/apis/alkaid.dev/v1alpha1/vpcs/blue";
/// The object as the API server returns it after a status patch.
fn with_status(obj: impl serde::Serialize, status: &serde_json::Value) -> serde_json::Value {
    let mut v = serde_json::to_value(obj).unwrap();
    v["status"] = status.clone();
    v
}

const SUBNET: &str = "/apis/alkaid.dev/v1alpha1/subnets/web";

#[tokio::test]
async fn create_vpc_adds_finalizer_then_stores_and_writes_status_then_ready() {
    let (client, mut server) = ApiServer::new();
    let fake = FakeControl::new();
    let ctx = ctx(client, &fake);

    // 1. A new Vpc gets our finalizer first (a JSON patch guarded by a test op), nothing else.
    let task = tokio::spawn(reconcile(Arc::new(vpc(false)), Arc::clone(&ctx)));
    let ex = server.expect(Method::PATCH, VPC).await;
    assert_eq!(
        ex.body,
        json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": ["alkaid.dev/vpc"]}
        ])
    );
    ex.json(200, &serde_json::to_value(vpc(true)).unwrap());
    assert_eq!(task.await.unwrap().unwrap(), Action::await_change());
    assert!(
        fake.calls().is_empty(),
        "nothing stored before the finalizer is in place"
    );

    // 2. With the finalizer: stored through the control plane, status applied.
    let task = tokio::spawn(reconcile(Arc::new(vpc(true)), Arc::clone(&ctx)));
    let (ex, status) = expect_status_apply(&mut server, &format!("{VPC}/status")).await;
    assert_eq!(ex.body["apiVersion"], "alkaid.dev/v1alpha1");
    assert_eq!(ex.body["kind"], "Vpc");
    assert_eq!(status["phase"], "Provisioning");
    assert_eq!(status["vni"], 7001);
    assert_eq!(status["observedGeneration"], 1);
    assert_eq!(status["conditions"][0]["type"], "Accepted");
    assert_eq!(status["conditions"][0]["status"], "True");
    ex.json(200, &with_status(vpc(true), &status));
    assert_eq!(
        task.await.unwrap().unwrap(),
        Action::requeue(Duration::from_secs(5))
    );
    assert_eq!(fake.calls(), ["get vpc/blue", "apply vpc/blue"]);
    let stored = fake.object(pb::Kind::Vpc, "blue", "").expect("stored");
    let Some(pb::resource::Kind::Vpc(v)) = stored.kind else {
        panic!()
    };
    assert_eq!(v.spec.unwrap().namespaces, ["team-a"]);

    // 3. Droplets acknowledged: status turns Ready and a Normal event says so.
    set_vpc_phase(&fake, "Ready");
    let mut seen = vpc(true);
    seen.status = Some(serde_json::from_value(status).unwrap());
    let task = tokio::spawn(reconcile(Arc::new(seen), Arc::clone(&ctx)));
    let (ex, status) = expect_status_apply(&mut server, &format!("{VPC}/status")).await;
    assert_eq!(status["phase"], "Ready");
    assert_eq!(status["dividers"], json!(["d1"]));
    ex.json(200, &with_status(vpc(true), &status));
    let (type_, reason, note) = expect_event(&mut server).await;
    assert_eq!((type_.as_str(), reason.as_str()), ("Normal", "Ready"));
    assert!(note.contains("vpc \"blue\""), "{note}");
    assert_eq!(
        task.await.unwrap().unwrap(),
        Action::requeue(Duration::from_secs(300))
    );

    // 4. Level-triggered and idempotent: the same state again writes nothing anywhere.
    let mut seen = vpc(true);
    seen.status = Some(serde_json::from_value(status).unwrap());
    let before = fake.calls().len();
    reconcile(Arc::new(seen), Arc::clone(&ctx)).await.unwrap();
    server.expect_silence().await;
    assert_eq!(
        &fake.calls()[before..],
        ["get vpc/blue"],
        "no store write either"
    );
}

#[tokio::test]
async fn invalid_spec_is_refused_with_warning_and_status_and_nothing_stored() {
    let (client, mut server) = ApiServer::new();
    let fake = FakeControl::new();
    let ctx = ctx(client, &fake);
    let msg = "subnet \"web\": cidr 10.1.0.0/24 is outside vpc \"blue\" (10.0.0.0/16)";
    fake.refuse(pb::Kind::Subnet, "web", msg);

    let task = tokio::spawn(reconcile(Arc::new(subnet(true)), Arc::clone(&ctx)));
    let (type_, reason, note) = expect_event(&mut server).await;
    assert_eq!(
        (type_.as_str(), reason.as_str(), note.as_str()),
        ("Warning", "InvalidSpec", msg)
    );
    let (ex, status) = expect_status_apply(&mut server, &format!("{SUBNET}/status")).await;
    assert_eq!(status["phase"], "Failed");
    assert_eq!(status["observedGeneration"], 2);
    assert_eq!(
        status["conditions"],
        json!([{"type": "Accepted", "status": "False", "reason": "InvalidSpec", "message": msg}])
    );
    ex.json(200, &with_status(subnet(true), &status));
    assert_eq!(
        task.await.unwrap().unwrap(),
        Action::requeue(Duration::from_secs(30))
    );
    assert!(
        fake.object(pb::Kind::Subnet, "web", "").is_none(),
        "nothing stored"
    );

    // The same refusal again: no second event, no second status write.
    let mut seen = subnet(true);
    seen.status = Some(serde_json::from_value(status).unwrap());
    reconcile(Arc::new(seen), Arc::clone(&ctx)).await.unwrap();
    server.expect_silence().await;
}

#[tokio::test]
async fn deleting_a_subnet_with_endpoints_waits_then_proceeds() {
    let (client, mut server) = ApiServer::new();
    let fake = FakeControl::new();
    let ctx = ctx(client, &fake);
    fake.put(store_subnet("web", "blue"));
    fake.put(store_endpoint("team-a", "p1", "web"));

    let obj = Arc::new(deleting(subnet(true)));
    let task = tokio::spawn(reconcile(Arc::clone(&obj), Arc::clone(&ctx)));
    let (type_, reason, note) = expect_event(&mut server).await;
    assert_eq!(
        (type_.as_str(), reason.as_str()),
        ("Warning", "DeletionBlocked")
    );
    assert!(note.contains("still has 1 endpoints (team-a/p1)"), "{note}");
    let err = task.await.unwrap().unwrap_err();
    assert!(err.is_deletion_blocked(), "{err}");
    assert_eq!(
        error_policy(Arc::clone(&obj), &err, Arc::clone(&ctx)),
        Action::requeue(Duration::from_secs(10))
    );
    assert_eq!(ctx.metrics.errors("Subnet", "deletion_blocked"), 1);
    server.expect_silence().await;
    assert!(
        fake.object(pb::Kind::Subnet, "web", "").is_some(),
        "still stored"
    );

    // The pod went away; the next pass deletes from the store, then drops the finalizer.
    fake.remove(pb::Kind::Endpoint, "p1", "team-a");
    let task = tokio::spawn(reconcile(Arc::clone(&obj), Arc::clone(&ctx)));
    let ex = server.expect(Method::PATCH, SUBNET).await;
    assert_eq!(
        ex.body,
        json!([
            {"op": "test", "path": "/metadata/finalizers/0", "value": "alkaid.dev/subnet"},
            {"op": "remove", "path": "/metadata/finalizers/0"}
        ])
    );
    assert!(
        fake.object(pb::Kind::Subnet, "web", "").is_none(),
        "deleted from the store first"
    );
    ex.json(200, &serde_json::to_value(subnet(false)).unwrap());
    assert_eq!(task.await.unwrap().unwrap(), Action::await_change());
}

#[tokio::test]
async fn deleting_a_vpc_with_subnets_waits() {
    let (client, mut server) = ApiServer::new();
    let fake = FakeControl::new();
    let ctx = ctx(client, &fake);
    fake.put(store_subnet("web", "blue"));
    fake.put(store_subnet("db", "blue"));
    fake.put(store_subnet("other", "red"));

    let task = tokio::spawn(reconcile(Arc::new(deleting(vpc(true))), Arc::clone(&ctx)));
    let (_, reason, note) = expect_event(&mut server).await;
    assert_eq!(reason, "DeletionBlocked");
    assert!(
        note.contains("vpc \"blue\" still has 2 subnets (db, web)"),
        "{note}"
    );
    assert!(task.await.unwrap().unwrap_err().is_deletion_blocked());
    server.expect_silence().await;
    assert_eq!(fake.calls(), ["list subnet"]);
}

#[tokio::test]
async fn store_outage_is_an_error_with_backoff() {
    // A control plane that always fails with UNAVAILABLE.
    #[derive(Clone)]
    struct Down;
    impl alkaid_operator_k8s::ControlPlane for Down {
        async fn apply(
            &self,
            _: pb::Resource,
        ) -> Result<pb::Resource, alkaid_operator_k8s::ControlError> {
            Err(tonic::Status::unavailable("no leader").into())
        }
        async fn delete(
            &self,
            _: pb::Kind,
            _: &str,
            _: &str,
        ) -> Result<bool, alkaid_operator_k8s::ControlError> {
            Err(tonic::Status::unavailable("no leader").into())
        }
        async fn get(
            &self,
            _: pb::Kind,
            _: &str,
            _: &str,
        ) -> Result<Option<pb::Resource>, alkaid_operator_k8s::ControlError> {
            Err(tonic::Status::unavailable("no leader").into())
        }
        async fn list(
            &self,
            _: pb::Kind,
        ) -> Result<alkaid_operator_k8s::Listed, alkaid_operator_k8s::ControlError> {
            Err(tonic::Status::unavailable("no leader").into())
        }
        async fn watch(
            &self,
            _: pb::Kind,
            _: u64,
        ) -> Result<alkaid_operator_k8s::WatchStream, alkaid_operator_k8s::ControlError> {
            Err(tonic::Status::unavailable("no leader").into())
        }
    }
    let (client, mut server) = ApiServer::new();
    let ctx = Arc::new(alkaid_operator_k8s::Context::new(
        client,
        Default::default(),
        Down,
        Arc::default(),
    ));
    let obj = Arc::new(vpc(true));
    let err = reconcile::<Vpc, _>(Arc::clone(&obj), Arc::clone(&ctx))
        .await
        .unwrap_err();
    assert_eq!(err.metric_label(), "control_rpc");
    assert!(err.to_string().contains("no leader"), "{err}");
    let first = error_policy(Arc::clone(&obj), &err, Arc::clone(&ctx));
    let second = error_policy(Arc::clone(&obj), &err, Arc::clone(&ctx));
    let third = error_policy(obj, &err, Arc::clone(&ctx));
    assert_eq!(first, Action::requeue(Duration::from_secs(1)));
    assert_eq!(second, Action::requeue(Duration::from_secs(2)));
    assert_eq!(third, Action::requeue(Duration::from_secs(4)));
    assert_eq!(ctx.metrics.errors("Vpc", "control_rpc"), 3);
    server.expect_silence().await;
}
