//! Following the hub's links: a redirect's `Location`, and the next page of a listing.

/// `location` (absolute, or relative to the host of `base`) as an absolute URL.
pub fn join_url(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_string();
    }
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[after_scheme..]
        .find('/')
        .map_or(base.len(), |i| after_scheme + i);
    if location.starts_with('/') {
        format!("{}{location}", &base[..host_end])
    } else {
        let dir_end = base
            .rfind('/')
            .filter(|&i| i >= host_end)
            .unwrap_or(host_end);
        format!("{}/{location}", &base[..dir_end])
    }
}

/// The URL of a `Link` header's `rel="next"` part.
pub fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| p.trim().replace(' ', "") == "rel=\"next\"" || p.trim() == "rel=next");
        let target = target.trim();
        (is_next && target.starts_with('<') && target.ends_with('>'))
            .then(|| target[1..target.len() - 1].to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_header() {
        let h = r#"<https://hub/api/datasets/x/tree/main?cursor=abc>; rel="next""#;
        assert_eq!(
            next_link(h).as_deref(),
            Some("https://hub/api/datasets/x/tree/main?cursor=abc")
        );
        assert_eq!(next_link(r#"<https://hub/a>; rel="prev""#), None);
    }

    #[test]
    fn redirects() {
        assert_eq!(
            join_url(
                "https://hub/datasets/x/resolve/r/a.parquet",
                "https://cdn/y?sig=1"
            ),
            "https://cdn/y?sig=1"
        );
        assert_eq!(
            join_url(
                "http://127.0.0.1:8/datasets/x/resolve/r/a.parquet",
                "/api/resolve-cache/z"
            ),
            "http://127.0.0.1:8/api/resolve-cache/z"
        );
        assert_eq!(join_url("http://h/a/b", "c"), "http://h/a/c");
    }
}
