//! `alkaid apply -f` and `alkaid delete -f|KIND NAME`: manifests in, one call per document.
//!
//! Documents are applied in file order, one `Apply` each, and the first refusal stops the
//! run: the server's message is shown verbatim with the file and document index, and what
//! was applied before it is listed (like `kubectl apply`, a run is not one transaction; each
//! document is all or nothing).

use std::io::Read as _;
use std::path::Path;

use alkaid_model::Resource;
use alkaid_proto::v1 as pb;
use serde::Deserialize as _;

use crate::client::{Target, rpc};
use crate::error::{Error, Result};
use crate::kind::Kind;

/// One manifest document, with where it came from.
#[derive(Clone, Debug)]
pub struct Doc {
    /// File name as given (`-` for stdin).
    pub file: String,
    /// 1-based index of the document in its file.
    pub index: usize,
    /// The resource.
    pub resource: Resource,
}

impl Doc {
    /// `vpc/blue`, as the result lines show it.
    pub fn label(&self) -> String {
        format!(
            "{}/{}",
            self.resource.kind().to_ascii_lowercase(),
            self.resource.metadata().name
        )
    }
}

/// Reads every non-empty document of a multi-document YAML (or JSON) text.
///
/// # Errors
/// [`Error::Manifest`] naming the file and document and what is wrong in it.
pub fn parse(file: &str, text: &str) -> Result<Vec<Doc>> {
    let mut out = Vec::new();
    for (i, de) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let index = i + 1;
        let bad = |reason: String| Error::Manifest {
            file: file.to_string(),
            doc: index,
            reason,
        };
        let value = serde_yaml_ng::Value::deserialize(de).map_err(|e| bad(e.to_string()))?;
        if value.is_null() {
            continue;
        }
        let kind = value
            .get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or("")
            .to_string();
        if kind.is_empty() {
            return Err(bad("missing `kind` (one of Vpc, Subnet)".into()));
        }
        if let Some(api) = value.get("apiVersion").and_then(|a| a.as_str())
            && api != alkaid_model::resource::API_VERSION
        {
            return Err(bad(format!(
                "apiVersion {api:?} is not {}",
                alkaid_model::resource::API_VERSION
            )));
        }
        let resource: Resource =
            serde_yaml_ng::from_value(value).map_err(|e| bad(format!("{kind}: {e}")))?;
        out.push(Doc {
            file: file.to_string(),
            index,
            resource,
        });
    }
    Ok(out)
}

/// Reads and parses each file (`-` is stdin).
///
/// # Errors
/// [`Error::Io`] or [`Error::Manifest`].
pub fn load(files: &[String]) -> Result<Vec<Doc>> {
    let mut docs = Vec::new();
    for f in files {
        let text = if f == "-" {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| Error::io("reading", "<stdin>", e))?;
            s
        } else {
            std::fs::read_to_string(Path::new(f)).map_err(|e| Error::io("reading", f, e))?
        };
        docs.extend(parse(f, &text)?);
    }
    if docs.is_empty() {
        return Err(Error::Usage(format!(
            "no resources found in {}",
            files.join(", ")
        )));
    }
    Ok(docs)
}

/// Applies each document in order; returns the result lines (`vpc/blue applied`).
///
/// # Errors
/// The first refusal, as [`Error::Manifest`] with the server's message verbatim, followed by
/// what had been applied before it.
pub async fn apply(target: &Target, docs: &[Doc], dry_run: bool) -> Result<Vec<String>> {
    let mut api = target.connect().await?;
    let mut done = Vec::new();
    for d in docs {
        let res = crate::pb::to_pb(&d.resource).map_err(|e| Error::Manifest {
            file: d.file.clone(),
            doc: d.index,
            reason: e.to_string(),
        })?;
        let req = pb::ApplyRequest {
            resources: vec![res],
            dry_run,
        };
        if let Err(status) = api.apply(req).await {
            let mut reason = format!("{} refused: {}", d.label(), status.message());
            if !done.is_empty() {
                reason.push_str(&format!(" (already applied: {})", done.join(", ")));
            }
            return Err(Error::Manifest {
                file: d.file.clone(),
                doc: d.index,
                reason,
            });
        }
        done.push(d.label());
    }
    let verb = if dry_run {
        "valid (dry run)"
    } else {
        "applied"
    };
    Ok(done.into_iter().map(|l| format!("{l} {verb}")).collect())
}

/// Deletes one object; `Ok(false)` when it did not exist.
///
/// # Errors
/// [`Error::Rpc`] for any refusal other than not-found.
pub async fn delete_one(target: &Target, kind: Kind, name: &str, namespace: &str) -> Result<bool> {
    let mut api = target.connect().await?;
    let req = pb::DeleteRequest {
        kind: kind.pb() as i32,
        name: name.to_string(),
        namespace: namespace.to_string(),
    };
    match api.delete(req).await {
        Ok(_) => Ok(true),
        Err(s) if s.code() == tonic::Code::NotFound => Ok(false),
        Err(s) => Err(rpc(format!(
            "deleting {} {name:?}",
            kind.name().to_ascii_lowercase()
        ))(s)),
    }
}

/// Deletes every document's object, last document first (subnets before their VPC).
///
/// # Errors
/// The first refusal; objects already gone are reported, not errors.
pub async fn delete_docs(target: &Target, docs: &[Doc]) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    for d in docs.iter().rev() {
        let kind = Kind::parse(d.resource.kind())?;
        let m = d.resource.metadata();
        let ns = m.namespace.clone().unwrap_or_default();
        let gone = delete_one(target, kind, &m.name, &ns).await?;
        lines.push(if gone {
            format!("{} deleted", d.label())
        } else {
            format!("{} not found", d.label())
        });
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str = "---\napiVersion: alkaid.dev/v1alpha1\nkind: Vpc\nmetadata: {name: blue}\nspec: {cidr: 10.0.0.0/16}\n---\n# empty\n---\napiVersion: alkaid.dev/v1alpha1\nkind: Subnet\nmetadata: {name: blue-a}\nspec: {vpc: blue, cidr: 10.0.1.0/24}\n";

    #[test]
    fn multi_document_files_parse_in_order() {
        let docs = parse("t.yaml", TWO).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].label(), "vpc/blue");
        assert_eq!(
            (docs[1].label().as_str(), docs[1].index),
            ("subnet/blue-a", 3)
        );
    }

    #[test]
    fn errors_name_file_document_and_fix() {
        let cases = [
            (
                "kind: Vpc\nmetadata: {name: x}\nspec: {cidr: 10.0.0.0/99}\n",
                "document 1",
            ),
            ("metadata: {name: x}\n", "missing `kind`"),
            (
                "apiVersion: v1\nkind: Vpc\nmetadata: {name: x}\nspec: {cidr: 10.0.0.0/16}\n",
                "apiVersion",
            ),
            (
                "---\nkind: Vpc\nmetadata: {name: a}\nspec: {cidr: 10.0.0.0/16}\n---\nkind: Pod\n",
                "document 2",
            ),
        ];
        for (text, want) in cases {
            let e = parse("f.yaml", text).unwrap_err().to_string();
            assert!(e.starts_with("f.yaml: document"), "{e}");
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }
}
