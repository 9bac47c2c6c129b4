//! Traefik router rules from v2 syntax (Mender 3.x, `traefik:v2.10`) to v3 syntax (Mender 4.x,
//! `traefik:v3.6.10`/`v3.7.1`), as the migration guide states them
//! (https://doc.traefik.io/traefik/migration/v2-to-v3/, "Rules"; `shared/reference/migrate-3.7-to-4.x.md`
//! §3.3, §3.4):
//!
//! - `Host`, `HostSNI` take one name: ``Host(`a`,`b`)`` becomes ``(Host(`a`) || Host(`b`))`` (v3
//!   rejects several names, traefik/traefik@0070a2aa:pkg/muxer/http/matcher.go `expectNParameters(host, 1)`,
//!   and the router is dropped: a multi-host ALLOWED_HOSTS checker would stop filtering);
//! - `Path`/`PathPrefix` with `{name:regexp}` placeholders become `PathRegexp` with the placeholders'
//!   expressions (``PathPrefix(`/api/{v:v[0-9]+}/x`)`` → ``PathRegexp(`^/api/v[0-9]+/x`)``);
//!   `HostRegexp` loses its placeholders the same way;
//! - `Headers` → `Header`, `HeadersRegexp` → `HeaderRegexp`; `Query(`k=v`)` → ``Query(`k`, `v`)``.
//!
//! Everything else (operators, `!`, parentheses, other matchers) is kept as written.

/// A v2 rule in v3 syntax. Rules already in v3 syntax come back unchanged.
pub fn v3_rule(rule: &str) -> String {
    let mut out = String::new();
    let mut rest = rule;
    while let Some((before, name, args, after)) = next_matcher(rest) {
        out.push_str(before);
        out.push_str(&matcher(name, &args));
        rest = after;
    }
    out.push_str(rest);
    out
}

/// The rule that matches any of the comma-separated `hosts` (the gateway's `ALLOWED_HOSTS`), one
/// `Host()` per name joined with `||`; `None` when the list names no host.
pub fn hosts_rule(hosts: &str) -> Option<String> {
    let names: Vec<String> =
        hosts.split(',').map(str::trim).filter(|h| !h.is_empty()).map(|h| format!("Host(`{h}`)")).collect();
    match names.len() {
        0 => None,
        1 => names.into_iter().next(),
        _ => Some(format!("({})", names.join(" || "))),
    }
}

/// The first `Name(`arg`, …)` in `s`: (text before, name, arguments, text after).
fn next_matcher(s: &str) -> Option<(&str, &str, Vec<String>, &str)> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_alphabetic() && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric()) {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_alphanumeric() {
                i += 1;
            }
            let name = &s[start..i];
            let mut j = i;
            while j < bytes.len() && bytes[j] == b' ' {
                j += 1;
            }
            if j < bytes.len()
                && bytes[j] == b'('
                && let Some((args, end)) = arguments(s, j + 1)
            {
                return Some((&s[..start], name, args, &s[end..]));
            }
            continue;
        }
        if bytes[i] == b'`' {
            // Skip a quoted string outside a matcher (not expected; kept as written).
            i += s[i + 1..].find('`').map_or(bytes.len() - i, |n| n + 2);
            continue;
        }
        i += 1;
    }
    None
}

/// The backquoted arguments from `from` to the closing parenthesis: (arguments, index after it).
/// `None` when the parenthesis does not hold backquoted strings only (`!(…)`, a group).
fn arguments(s: &str, from: usize) -> Option<(Vec<String>, usize)> {
    let mut args = Vec::new();
    let mut i = from;
    let bytes = s.as_bytes();
    loop {
        while i < bytes.len() && matches!(bytes[i], b' ' | b',') {
            i += 1;
        }
        match bytes.get(i)? {
            b')' => return Some((args, i + 1)),
            b'`' => {
                let end = s[i + 1..].find('`')? + i + 1;
                args.push(s[i + 1..end].to_string());
                i = end + 1;
            }
            _ => return None,
        }
    }
}

fn quoted(args: &[String]) -> String {
    args.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ")
}

fn matcher(name: &str, args: &[String]) -> String {
    match name {
        "Host" | "HostSNI" if args.len() > 1 => {
            let each: Vec<String> = args.iter().map(|a| format!("{name}(`{a}`)")).collect();
            format!("({})", each.join(" || "))
        }
        "Path" | "PathPrefix" if args.iter().any(|a| a.contains('{')) => {
            let end = if name == "Path" { "$" } else { "" };
            let each: Vec<String> = args.iter().map(|a| format!("PathRegexp(`^{}{end}`)", placeholders(a))).collect();
            group(each)
        }
        "HostRegexp" => {
            let each: Vec<String> = args.iter().map(|a| format!("HostRegexp(`{}`)", placeholders(a))).collect();
            group(each)
        }
        "Headers" => format!("Header({})", quoted(args)),
        "HeadersRegexp" => format!("HeaderRegexp({})", quoted(args)),
        "Query" if args.len() == 1 && args[0].contains('=') => {
            let (k, v) = args[0].split_once('=').unwrap_or((&args[0], ""));
            format!("Query(`{k}`, `{v}`)")
        }
        _ => format!("{name}({})", quoted(args)),
    }
}

fn group(each: Vec<String>) -> String {
    if each.len() == 1 { each.into_iter().collect() } else { format!("({})", each.join(" || ")) }
}

/// A v2 template with `{name:regexp}` / `{name}` placeholders as one regular expression: the
/// placeholders' expressions (a bare `{name}` matches one path segment), the rest as written.
fn placeholders(template: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        // Braces nest in expressions such as `[0-9]{2}`.
        let mut depth = 0;
        let mut close = None;
        for (k, c) in rest[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        close = Some(open + k);
                        break;
                    }
                }
                _ => {}
            }
        }
        let Some(close) = close else {
            out.push_str(&rest[open..]);
            return out;
        };
        let inner = &rest[open + 1..close];
        match inner.split_once(':') {
            Some((_, re)) => out.push_str(re),
            None if inner.starts_with('(') => out.push_str(inner),
            None => out.push_str("[^/]+"),
        }
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_hosts_become_one_host_each_joined_with_or() {
        assert_eq!(
            v3_rule("Host(`a.example.com`, `b.example.com`)"),
            "(Host(`a.example.com`) || Host(`b.example.com`))"
        );
        assert_eq!(
            v3_rule("! Host(`docker.mender.io`,`s3.docker.mender.io`)"),
            "! (Host(`docker.mender.io`) || Host(`s3.docker.mender.io`))"
        );
        assert_eq!(v3_rule("Host(`one.example.com`)"), "Host(`one.example.com`)");
        assert_eq!(
            hosts_rule(" docker.mender.io, s3.docker.mender.io ,").as_deref(),
            Some("(Host(`docker.mender.io`) || Host(`s3.docker.mender.io`))")
        );
        assert_eq!(hosts_rule("docker.mender.io").as_deref(), Some("Host(`docker.mender.io`)"));
        assert_eq!(hosts_rule(" , "), None);
    }

    #[test]
    fn mender_3_7_rules_in_v3_syntax() {
        // mendersoftware/integration@3.7.11:config/traefik/traefik.yaml → @3.8.5 (v3).
        let cases = [
            (
                "PathPrefix(`/api/devices/{version:v[0-9]+}/deployments`)",
                "PathRegexp(`^/api/devices/v[0-9]+/deployments`)",
            ),
            (
                "PathPrefix(`/api/devices/{(v[0-9]+)}/authentication`)",
                "PathRegexp(`^/api/devices/(v[0-9]+)/authentication`)",
            ),
            (
                "!Path(`/api/management/{ver:v[0-9]+}/useradm/auth/logout`)&&PathPrefix(`/api/management/{version:v[0-9]+}/useradm/{ep:(auth|oauth2)}`)",
                "!PathRegexp(`^/api/management/v[0-9]+/useradm/auth/logout$`)&&PathRegexp(`^/api/management/v[0-9]+/useradm/(auth|oauth2)`)",
            ),
            ("PathPrefix(`/api/management/v1/inventory`)", "PathPrefix(`/api/management/v1/inventory`)"),
            (
                "Host(`s3.example.com`) || Headers(`X-Forwarded-Host`,`s3.example.com`) || HeadersRegexp(`X-Amz-Date`, `.+`) || PathPrefix(`/mender-artifact-storage`)",
                "Host(`s3.example.com`) || Header(`X-Forwarded-Host`, `s3.example.com`) || HeaderRegexp(`X-Amz-Date`, `.+`) || PathPrefix(`/mender-artifact-storage`)",
            ),
            ("HostRegexp(`{domain:.+}`)", "HostRegexp(`.+`)"),
            ("PathPrefix(`/a/{id}/b`)", "PathRegexp(`^/a/[^/]+/b`)"),
            ("Path(`/x/{n:[0-9]{2}}`)", "PathRegexp(`^/x/[0-9]{2}$`)"),
            ("Query(`mode=raw`)", "Query(`mode`, `raw`)"),
        ];
        for (v2, v3) in cases {
            assert_eq!(v3_rule(v2), v3, "{v2}");
            assert_eq!(v3_rule(v3), v3, "a v3 rule is kept: {v3}");
        }
    }
}
