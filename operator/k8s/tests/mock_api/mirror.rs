//! Store -> Kubernetes mirror of endpoints: a resync pass against the mocked API server.

use alkaid_operator_k8s::FakeControl;
use alkaid_operator_k8s::crd::Endpoint;
use alkaid_operator_k8s::reconcile::mirror::resync;
use http::Method;
use serde_json::json;

use crate::fixtures::*;
use crate::server::ApiServer;

#[tokio::test]
async fn resync_creates_missing_endpoints_with_pod_owner_and_deletes_stale_ones() {
    let (client, mut server) = ApiServer::new();
    let fake = FakeControl::new();
    let ctx = ctx(client, &fake);
    fake.put(store_endpoint("team-a", "p1", "web"));

    let task = {
        let ctx = std::sync::Arc::clone(&ctx);
        tokio::spawn(async move { resync::<Endpoint, FakeControl>(&ctx).await })
    };
    let list = server
        .expect(Method::GET, "/apis/alkaid.dev/v1alpha1/endpoints")
        .await;
    list.assert_query(&["labelSelector=app.kubernetes.io%2Fmanaged-by%3Dalkaid-operator"]);
    list.json(
        200,
        &json!({"apiVersion": "alkaid.dev/v1alpha1", "kind": "EndpointList",
            "metadata": {"resourceVersion": "3"},
            "items": [{"apiVersion": "alkaid.dev/v1alpha1", "kind": "Endpoint",
                "metadata": {"name": "old", "namespace": "team-a",
                             "labels": {"app.kubernetes.io/managed-by": "alkaid-operator"}},
                "spec": {"vpc": "blue", "subnet": "web", "droplet": "d1", "ip": "10.0.1.9",
                         "mac": "02:00:0a:00:01:09", "pod": "old"}}]}),
    );

    // p1 is missing: look up its pod for the owner reference, apply spec, then status.
    let pod = server
        .expect(Method::GET, "/api/v1/namespaces/team-a/pods/p1")
        .await;
    pod.json(
        200,
        &json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "p1", "namespace": "team-a", "uid": "pod-uid-1"}}),
    );
    let path = "/apis/alkaid.dev/v1alpha1/namespaces/team-a/endpoints/p1";
    let spec = server.expect(Method::PATCH, path).await;
    spec.assert_query(&["fieldManager=alkaid-operator", "force=true"]);
    assert_eq!(
        spec.body["metadata"],
        json!({"name": "p1", "namespace": "team-a",
               "labels": {"app.kubernetes.io/managed-by": "alkaid-operator"},
               "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "p1", "uid": "pod-uid-1"}]})
    );
    assert_eq!(spec.body["spec"]["ip"], "10.0.1.5");
    let mut object = spec.body.clone();
    spec.echo();
    let status = server
        .expect(Method::PATCH, &format!("{path}/status"))
        .await;
    assert_eq!(
        status.body["status"],
        json!({"phase": "Ready", "programmedOn": ["d1"]})
    );
    object["status"] = status.body["status"].clone();
    status.json(200, &object);

    // old is not in the store any more: deleted.
    let del = server
        .expect(
            Method::DELETE,
            "/apis/alkaid.dev/v1alpha1/namespaces/team-a/endpoints/old",
        )
        .await;
    del.json(
        200,
        &json!({"apiVersion": "v1", "kind": "Status", "status": "Success"}),
    );

    let version = task.await.unwrap().unwrap();
    assert!(
        version >= 1,
        "resync returns the store version to watch from"
    );
    server.expect_silence().await;
}
