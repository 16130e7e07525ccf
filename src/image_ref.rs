//! What an image value must look like before it is written where Terraform
//! reads it, and how a bare tag becomes a full reference.
//!
//! The grammar is the one container registries and Docker use
//! (`distribution/reference`), narrowed to what a deployment needs: a
//! registry host, a repository path, and a tag or a `sha256` digest.

use crate::names::ImageUri;

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`: one segment of a repository path.
fn is_path_component(part: &str) -> bool {
    let bytes = part.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        // A separator: `.`, `_`, `__` or a run of `-`, between alphanumerics.
        let start = i;
        match bytes[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if bytes.get(i) == Some(&b'_') {
                    i += 1;
                }
            }
            b'-' => {
                while bytes.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
        if i == start || !bytes.get(i).copied().is_some_and(alnum) {
            return false;
        }
    }
    true
}

/// A registry host with an optional port: DNS labels joined by dots, or
/// `localhost`, or a bracketed IPv6 address.
fn is_registry(part: &str) -> bool {
    let (host, port) = if part.starts_with('[') {
        let Some(end) = part.find(']') else {
            return false;
        };
        match &part[end + 1..] {
            "" => (&part[..=end], None),
            rest => match rest.strip_prefix(':') {
                Some(port) => (&part[..=end], Some(port)),
                None => return false,
            },
        }
    } else {
        match part.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (part, None),
        }
    };
    if let Some(port) = port {
        if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<std::net::Ipv6Addr>().is_ok();
    }
    // Without a dot or a port, the first segment is a repository path
    // (`library/nginx`), not a registry, unless it is `localhost`.
    if !(host.contains('.') || port.is_some() || host == "localhost") {
        return false;
    }
    host.split('.').all(|label| {
        let b = label.as_bytes();
        !b.is_empty()
            && b.len() <= 63
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
    })
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub(crate) fn is_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn is_sha256_digest(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Whether `value` is `registry/repository:tag`, `registry/repository@sha256:…`
/// or `registry/repository:tag@sha256:…`.
fn is_full_reference(value: &str) -> bool {
    let (name_and_tag, digest) = match value.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (value, None),
    };
    if digest.is_some_and(|d| !is_sha256_digest(d)) {
        return false;
    }
    let Some((registry, path_and_tag)) = name_and_tag.split_once('/') else {
        return false;
    };
    // A tag follows the last `:` after the last `/` (a registry port's `:`
    // comes before the first `/`).
    let (path, tag) = match path_and_tag.rsplit_once(':') {
        Some((path, tag)) if !tag.contains('/') => (path, Some(tag)),
        _ => (path_and_tag, None),
    };
    if tag.is_none() && digest.is_none() {
        return false;
    }
    is_registry(registry)
        && tag.is_none_or(is_tag)
        && path.len() <= 255
        && path.split('/').all(is_path_component)
}

impl ImageUri {
    /// Whether this is a full image reference that a deployment can write
    /// where Terraform reads: `registry/repository:tag` or
    /// `registry/repository@sha256:<64 hex>` (both may be combined). Bare
    /// tags (`ref.3f2a9c1`), repository names without a registry
    /// (`archivist:ref.3f2a9c1`), URLs (`http://…`) and untagged names are
    /// not.
    pub fn is_full_reference(&self) -> bool {
        is_full_reference(self.as_str())
    }

    /// Whether this is a bare tag (`ref.3f2a9c1`), as some earlier records
    /// hold instead of a full reference.
    pub fn is_bare_tag(&self) -> bool {
        is_tag(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(value: &str) -> bool {
        ImageUri::new(value).unwrap().is_full_reference()
    }

    #[test]
    fn full_references() {
        let digest = format!("sha256:{}", "a".repeat(64));
        for value in [
            "760097843905.dkr.ecr.eu-west-1.amazonaws.com/uk.ac.wellcome/archivist:ref.3f2a9c1",
            "ghcr.io/org/app:v1.2.3",
            "localhost:5000/app:dev",
            "localhost/app:dev",
            "registry.example.com:443/a/b/c:latest",
            "[::1]:5000/app:1",
            "[::1]/app:1",
            &format!("ghcr.io/org/app@{digest}"),
            &format!("ghcr.io/org/app:v1@{digest}"),
            "quay.io/a__b/c-d--e:_tag",
        ] {
            assert!(full(value), "{value} should be a full reference");
        }
    }

    #[test]
    fn not_full_references() {
        for value in [
            "ref.3f2a9c1",
            "3f2a9c1",
            "archivist:ref.3f2a9c1",
            "library/nginx:1.25",
            "http://example.com/images/hatching/00001",
            "ghcr.io/org/app",
            "ghcr.io/org/App:v1",
            "ghcr.io/org/app:",
            "ghcr.io/org/app:-bad",
            "ghcr.io//app:v1",
            "ghcr.io/org/app@sha256:abc",
            "ghcr.io/org/app:v1@md5:0123",
            "-bad.io/app:v1",
            "ghcr.io/org/app:v1 ",
            "ghcr.io:port/app:v1",
            "ghcr.io/org/a..b:v1",
            "ghcr.io/org/a-:v1",
        ] {
            assert!(!full(value), "{value} should not be a full reference");
        }
    }

    #[test]
    fn bare_tags() {
        assert!(ImageUri::new("ref.3f2a9c1").unwrap().is_bare_tag());
        assert!(!ImageUri::new("app:ref.3f2a9c1").unwrap().is_bare_tag());
        assert!(!ImageUri::new("a/b").unwrap().is_bare_tag());
        assert!(!ImageUri::new(".hidden").unwrap().is_bare_tag());
    }
}
