//! `alkaid apply|get|delete|describe` against an in-process fake Control server (tonic on
//! 127.0.0.1:0): what the CLI sends, and how it shows answers and refusals.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::{Arc, Mutex};

use alkaid_proto::v1 as pb;
use alkaid_proto::v1::control_server::{Control, ControlServer};
use tonic::{Request, Response, Status};

#[derive(Default, Clone)]
struct Fake {
    objects: Arc<Mutex<Vec<pb::Resource>>>,
}

fn name_of(r: &pb::Resource) -> (i32, String) {
    use pb::resource::Kind as K;
    match r.kind.as_ref().expect("kind") {
        K::Vpc(o) => (
            pb::Kind::Vpc as i32,
            o.metadata.clone().unwrap_or_default().name,
        ),
        K::Subnet(o) => (
            pb::Kind::Subnet as i32,
            o.metadata.clone().unwrap_or_default().name,
        ),
        _ => (0, String::new()),
    }
}

#[tonic::async_trait]
impl Control for Fake {
    async fn apply(
        &self,
        r: Request<pb::ApplyRequest>,
    ) -> Result<Response<pb::ApplyResponse>, Status> {
        let req = r.into_inner();
        for res in &req.resources {
            if let Some(pb::resource::Kind::Subnet(s)) = &res.kind
                && !s.spec.as_ref().is_some_and(|s| s.cidr.starts_with("10.0."))
            {
                return Err(Status::invalid_argument(
                    "subnet cidr is not inside vpc \"blue\" cidr 10.0.0.0/16; pick a range inside it",
                ));
            }
        }
        let mut objs = self.objects.lock().unwrap();
        for res in &req.resources {
            let key = name_of(res);
            objs.retain(|o| name_of(o) != key);
            let mut res = res.clone();
            if let Some(pb::resource::Kind::Vpc(v)) = &mut res.kind {
                v.status = Some(pb::VpcStatus {
                    vni: 1000,
                    phase: "Ready".into(),
                    ..Default::default()
                });
            }
            objs.push(res);
        }
        Ok(Response::new(pb::ApplyResponse {
            resources: req.resources,
        }))
    }
    async fn delete(
        &self,
        r: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::DeleteResponse>, Status> {
        let r = r.into_inner();
        let mut objs = self.objects.lock().unwrap();
        let n = objs.len();
        objs.retain(|o| name_of(o) != (r.kind, r.name.clone()));
        if objs.len() == n {
            return Err(Status::not_found(format!("{} not found", r.name)));
        }
        Ok(Response::new(pb::DeleteResponse {}))
    }
    async fn get(&self, r: Request<pb::GetRequest>) -> Result<Response<pb::GetResponse>, Status> {
        let r = r.into_inner();
        let objs = self.objects.lock().unwrap();
        let found = objs
            .iter()
            .find(|o| name_of(o) == (r.kind, r.name.clone()))
            .cloned();
        match found {
            Some(o) => Ok(Response::new(pb::GetResponse { resource: Some(o) })),
            None => Err(Status::not_found(format!("{} not found", r.name))),
        }
    }
    async fn list(
        &self,
        r: Request<pb::ListRequest>,
    ) -> Result<Response<pb::ListResponse>, Status> {
        let k = r.into_inner().kind;
        let objs = self.objects.lock().unwrap();
        let resources = objs.iter().filter(|o| name_of(o).0 == k).cloned().collect();
        Ok(Response::new(pb::ListResponse {
            resources,
            resource_version: 1,
        }))
    }
    type WatchStream = tokio_stream::Empty<Result<pb::WatchEvent, Status>>;
    async fn watch(
        &self,
        _: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        Ok(Response::new(tokio_stream::empty()))
    }
    async fn allocate_endpoint(
        &self,
        _: Request<pb::AllocateEndpointRequest>,
    ) -> Result<Response<pb::AllocateEndpointResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }
    async fn release_endpoint(
        &self,
        _: Request<pb::ReleaseEndpointRequest>,
    ) -> Result<Response<pb::ReleaseEndpointResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }
    async fn register_droplet(
        &self,
        _: Request<pb::RegisterDropletRequest>,
    ) -> Result<Response<pb::RegisterDropletResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }
    async fn heartbeat(
        &self,
        _: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }
    async fn cluster_info(
        &self,
        _: Request<pb::ClusterInfoRequest>,
    ) -> Result<Response<pb::ClusterInfoResponse>, Status> {
        Ok(Response::new(pb::ClusterInfoResponse {
            leader_id: 1,
            ..Default::default()
        }))
    }
}

async fn start() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(ControlServer::new(Fake::default()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(l)),
    );
    addr
}

fn alkaid(addr: SocketAddr, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_alkaid"))
        .arg("--server")
        .arg(addr.to_string())
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

const GOOD: &str = "apiVersion: alkaid.dev/v1alpha1\nkind: Vpc\nmetadata: {name: blue}\nspec: {cidr: 10.0.0.0/16}\n---\napiVersion: alkaid.dev/v1alpha1\nkind: Subnet\nmetadata: {name: web}\nspec: {vpc: blue, cidr: 10.0.1.0/24, bouncers: 2}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_get_describe_delete_against_a_control_server() {
    let addr = start().await;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, GOOD).unwrap();
    let g = good.to_str().unwrap().to_string();
    let t = tokio::task::spawn_blocking(move || {
        let (ok, out) = alkaid(addr, &["apply", "-f", &g]);
        assert!(ok, "{out}");
        assert_eq!(out, "vpc/blue applied\nsubnet/web applied\n");
        let (ok, out) = alkaid(addr, &["get", "vpcs"]);
        assert!(ok, "{out}");
        assert_eq!(
            out.lines().nth(1).unwrap(),
            "blue   10.0.0.0/16   1000   1          Ready"
        );
        let (_, out) = alkaid(addr, &["get", "sn", "web", "-o", "json"]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            (v["kind"].as_str(), v["spec"]["bouncers"].as_u64()),
            (Some("Subnet"), Some(2))
        );
        let (_, out) = alkaid(addr, &["describe", "vpc", "blue"]);
        assert!(
            out.contains("Cidr:") && out.contains("10.0.0.0/16"),
            "{out}"
        );
        let (ok, out) = alkaid(addr, &["delete", "-f", &g]);
        assert!(ok, "{out}");
        assert_eq!(
            out, "subnet/web deleted\nvpc/blue deleted\n",
            "reverse order"
        );
        let (ok, out) = alkaid(addr, &["delete", "vpc", "blue"]);
        assert!(!ok && out.contains("vpc/blue not found"), "{out}");
        let (ok, out) = alkaid(addr, &["get", "pods"]);
        assert!(!ok && out.contains("unknown resource kind"), "{out}");
    });
    t.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_shown_verbatim_with_file_and_document() {
    let addr = start().await;
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, GOOD.replace("10.0.1.0/24", "10.9.1.0/24")).unwrap();
    let b = bad.display().to_string();
    tokio::task::spawn_blocking(move || {
        let (ok, out) = alkaid(addr, &["apply", "-f", &b]);
        assert!(!ok);
        assert!(
            out.contains(&format!(
                "{b}: document 2: subnet/web refused: subnet cidr is not inside vpc"
            )),
            "{out}"
        );
        assert!(out.contains("already applied: vpc/blue"), "{out}");
        let (ok, out) = alkaid("127.0.0.1:1".parse().unwrap(), &["get", "vpcs"]);
        assert!(
            !ok && out.contains("cannot reach the operator at 127.0.0.1:1"),
            "{out}"
        );
    })
    .await
    .unwrap();
}
