//! Writes every Alkaid CRD as YAML into `deploy/crds/` (one file per kind).
//!
//! `cargo run -p alkaid-operator-k8s --bin crdgen [OUT_DIR]`; the default is the workspace's
//! `deploy/crds`. The `crd_drift` test fails when the checked-in files differ.

use std::path::PathBuf;

use anyhow::Context as _;

fn main() -> anyhow::Result<()> {
    let out = std::env::args_os().nth(1).map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/crds"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    for (file, crd) in alkaid_operator_k8s::crd::all() {
        let path = out.join(file);
        let yaml = alkaid_operator_k8s::crd::to_yaml(&crd).context("serializing a CRD")?;
        std::fs::write(&path, yaml).with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
