//! URLs as people may see them. A URL in the configuration can carry a secret — a user name and
//! password, a token in the query, or (for incoming webhooks) the whole path — and it must not
//! reach a page, the audit log (kept for ever) or the logs.

/// `scheme://host[:port]` and the rest of `u`, with no user information and no query: `https://
/// git.example.com/team/specs.git`. Text that is not a URL with a scheme is returned as it is
/// (a path, or `git@host:path`, whose user name is not a secret).
pub fn url(u: &str) -> String {
    let Some((scheme, rest)) = u.split_once("://") else {
        return u.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (path, query) = match tail.find(['?', '#']) {
        Some(i) => (&tail[..i], "?…"),
        None => (tail, ""),
    };
    format!("{scheme}://{host}{path}{query}")
}

/// Only `scheme://host[:port]/…`: for URLs whose path is the secret (Slack incoming webhooks).
pub fn origin(u: &str) -> String {
    let Some((scheme, rest)) = u.split_once("://") else {
        return "…".to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}://{host}/…")
}

/// `text` with every occurrence of `secret_url` written as [`url`] writes it.
pub fn in_text(text: &str, secret_url: &str) -> String {
    if secret_url.is_empty() {
        return text.to_owned();
    }
    text.replace(secret_url, &url(secret_url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_information_and_queries_are_never_shown() {
        assert_eq!(
            url("https://bot:ghp_s3cret@github.com/team/specs.git"),
            "https://github.com/team/specs.git"
        );
        assert_eq!(
            url("http://u:p@127.0.0.1:9090/prom?token=abc"),
            "http://127.0.0.1:9090/prom?…"
        );
        assert_eq!(url("http://127.0.0.1:9090"), "http://127.0.0.1:9090");
        assert_eq!(
            url("git@github.com:team/specs.git"),
            "git@github.com:team/specs.git"
        );
        assert_eq!(url("/srv/specs.git"), "/srv/specs.git");
        assert_eq!(
            origin("https://hooks.slack.com/services/T0/B0/XXXX"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            in_text(
                "fetching https://bot:tok@h/x.git failed",
                "https://bot:tok@h/x.git"
            ),
            "fetching https://h/x.git failed"
        );
    }
}
