//! CI drift check: deploy/crds must be exactly what `crdgen` writes from the Rust types.

use std::path::PathBuf;

#[test]
fn deploy_crds_match_the_rust_types() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/crds");
    let mut stale = Vec::new();
    for (file, crd) in alkaid_operator_k8s::crd::all() {
        let want = alkaid_operator_k8s::crd::to_yaml(&crd).unwrap();
        let have = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
        if have != want {
            stale.push(file);
        }
    }
    assert!(
        stale.is_empty(),
        "deploy/crds is out of date ({}): run `cargo run -p alkaid-operator-k8s --bin crdgen` and commit the result",
        stale.join(", ")
    );
}
