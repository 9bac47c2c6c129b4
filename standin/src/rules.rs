//! The gateway's routing table, read like traefik's file provider reads `/etc/traefik/config`:
//! every file's `http.routers` and `http.services` merged, each router's rule parsed in the rule
//! syntax of the traefik major (v2: traefik/traefik@v2.10:pkg/rules/rules.go, `{name:regexp}`
//! placeholders; v3: traefik/traefik@v3.1:pkg/muxer/http/matcher.go, one value per matcher,
//! `PathRegexp`/`HostRegexp` with plain expressions). A router whose rule or service is not
//! understood is dropped and logged, as traefik does; the rest are tried by priority (explicit, or
//! the rule's length: traefik@v2.10:pkg/muxer/http/mux.go `AddRoute`), highest first.

use std::collections::BTreeMap;

use regex::Regex;
use serde::Deserialize;

/// What a rule sees of a request.
pub struct Req<'a> {
    pub host: &'a str,
    pub path: &'a str,
    pub method: &'a str,
    pub query: &'a str,
    pub header: &'a dyn Fn(&str) -> Option<String>,
}

#[derive(Debug)]
enum Matcher {
    Host(Vec<String>),
    HostRe(Regex),
    Path(Regex),
    Method(Vec<String>),
    Header(String, Regex),
    Query(String, Option<Regex>),
}

#[derive(Debug)]
enum Expr {
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    M(Matcher),
}

impl Expr {
    fn matches(&self, r: &Req) -> bool {
        match self {
            Expr::Or(a, b) => a.matches(r) || b.matches(r),
            Expr::And(a, b) => a.matches(r) && b.matches(r),
            Expr::Not(a) => !a.matches(r),
            Expr::M(m) => match m {
                Matcher::Host(names) => names.iter().any(|n| *n == r.host),
                Matcher::HostRe(re) => re.is_match(r.host),
                Matcher::Path(re) => re.is_match(r.path),
                Matcher::Method(ms) => ms.iter().any(|m| m.eq_ignore_ascii_case(r.method)),
                Matcher::Header(k, re) => (r.header)(k).is_some_and(|v| re.is_match(&v)),
                Matcher::Query(k, re) => r.query.split('&').any(|kv| {
                    let (name, value) = kv.split_once('=').unwrap_or((kv, ""));
                    name == k && re.as_ref().is_none_or(|re| re.is_match(value))
                }),
            },
        }
    }
}

/// A v2 template (`/api/{version:v[0-9]+}/x`, `{domain:.+}`) as a regular expression body; a
/// placeholder without an expression matches one segment (`seg`).
fn v2_template(t: &str, seg: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        out.push_str(&regex::escape(&rest[..open]));
        let mut depth = 0;
        let mut end = None;
        for (i, c) in rest[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(open + i);
                        break;
                    }
                }
                _ => {}
            }
        }
        let end = end.ok_or_else(|| format!("unbalanced braces in {t:?}"))?;
        let inner = &rest[open + 1..end];
        match inner.split_once(':') {
            Some((_, re)) => out.push_str(&format!("(?:{re})")),
            None => out.push_str(seg),
        }
        rest = &rest[end + 1..];
    }
    out.push_str(&regex::escape(rest));
    Ok(out)
}

fn compile(re: &str) -> Result<Regex, String> {
    Regex::new(re).map_err(|e| format!("bad expression {re:?}: {e}"))
}

fn matcher(name: &str, args: &[String], v3: bool) -> Result<Matcher, String> {
    let one = |a: &[String]| -> Result<String, String> {
        match a {
            [x] => Ok(x.clone()),
            _ => Err(format!("{name} takes one value in traefik v3, got {}", a.len())),
        }
    };
    let need = |n: usize| {
        if args.len() < n { Err(format!("{name} needs {n} value(s), got {}", args.len())) } else { Ok(()) }
    };
    need(1)?;
    let no_placeholder = |s: &str| {
        if s.contains('{') { Err(format!("{name}(`{s}`): v2 placeholder syntax on traefik v3")) } else { Ok(()) }
    };
    Ok(match (name, v3) {
        ("Host", true) => {
            let h = one(args)?;
            Matcher::Host(vec![h.to_ascii_lowercase()])
        }
        ("Host" | "HostHeader", false) => Matcher::Host(args.iter().map(|h| h.to_ascii_lowercase()).collect()),
        ("HostRegexp", true) => Matcher::HostRe(compile(&one(args)?)?),
        ("HostRegexp", false) => {
            let alts: Result<Vec<String>, String> = args.iter().map(|t| v2_template(t, "[^.]+")).collect();
            Matcher::HostRe(compile(&format!("(?i)^(?:{})$", alts?.join("|")))?)
        }
        ("Path" | "PathPrefix", true) => {
            let p = one(args)?;
            no_placeholder(&p)?;
            let end = if name == "Path" { "$" } else { "" };
            Matcher::Path(compile(&format!("^{}{end}", regex::escape(&p)))?)
        }
        ("PathRegexp", true) => Matcher::Path(compile(&one(args)?)?),
        ("Path" | "PathPrefix", false) => {
            let alts: Result<Vec<String>, String> = args.iter().map(|t| v2_template(t, "[^/]+")).collect();
            let end = if name == "Path" { "$" } else { "" };
            Matcher::Path(compile(&format!("^(?:{}){end}", alts?.join("|")))?)
        }
        ("Method", _) => Matcher::Method(args.to_vec()),
        ("Header", true) | ("Headers", false) => {
            need(2)?;
            Matcher::Header(args[0].clone(), compile(&format!("^{}$", regex::escape(&args[1])))?)
        }
        ("HeaderRegexp", true) | ("HeadersRegexp", false) => {
            need(2)?;
            Matcher::Header(args[0].clone(), compile(&args[1])?)
        }
        ("Query", true) => {
            let re = args.get(1).map(|v| compile(&format!("^{}$", regex::escape(v)))).transpose()?;
            Matcher::Query(args[0].clone(), re)
        }
        ("QueryRegexp", true) => {
            need(2)?;
            Matcher::Query(args[0].clone(), Some(compile(&args[1])?))
        }
        ("Query", false) => {
            let (k, v) = args[0].split_once('=').unwrap_or((&args[0], ""));
            Matcher::Query(k.into(), Some(compile(&format!("^{}$", regex::escape(v)))?))
        }
        _ => return Err(format!("unsupported matcher {name} for traefik v{}", if v3 { 3 } else { 2 })),
    })
}

/// A recursive-descent parser of `a || b`, `a && b`, `!a`, `(a)`, `Name(`x`, "y")`.
struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    v3: bool,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn eat(&mut self, t: &str) -> bool {
        self.ws();
        if self.s[self.i..].starts_with(t.as_bytes()) {
            self.i += t.len();
            true
        } else {
            false
        }
    }
    fn or(&mut self) -> Result<Expr, String> {
        let mut e = self.and()?;
        while self.eat("||") {
            e = Expr::Or(Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }
    fn and(&mut self) -> Result<Expr, String> {
        let mut e = self.unary()?;
        while self.eat("&&") {
            e = Expr::And(Box::new(e), Box::new(self.unary()?));
        }
        Ok(e)
    }
    fn unary(&mut self) -> Result<Expr, String> {
        if self.eat("!") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.eat("(") {
            let e = self.or()?;
            return if self.eat(")") { Ok(e) } else { Err(format!("missing ) at {}", self.i)) };
        }
        self.ws();
        let start = self.i;
        while self.i < self.s.len() && self.s[self.i].is_ascii_alphanumeric() {
            self.i += 1;
        }
        let name = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
        if name.is_empty() || !self.eat("(") {
            return Err(format!("expected a matcher at {start}"));
        }
        let mut args = Vec::new();
        loop {
            self.ws();
            let Some(&q) = self.s.get(self.i) else {
                return Err(format!("unterminated {name}("));
            };
            if q == b')' && args.is_empty() {
                self.i += 1;
                break;
            }
            if q != b'`' && q != b'"' {
                return Err(format!("{name}: values must be quoted"));
            }
            let from = self.i + 1;
            let len =
                self.s[from..].iter().position(|&c| c == q).ok_or_else(|| format!("unterminated value in {name}"))?;
            args.push(String::from_utf8_lossy(&self.s[from..from + len]).into_owned());
            self.i = from + len + 1;
            if self.eat(",") {
                continue;
            }
            if self.eat(")") {
                break;
            }
            return Err(format!("{name}: expected , or )"));
        }
        Ok(Expr::M(matcher(&name, &args, self.v3)?))
    }
}

/// Parses a router rule in the syntax of traefik v2 or v3.
fn parse(rule: &str, v3: bool) -> Result<Expr, String> {
    let mut p = Parser { s: rule.as_bytes(), i: 0, v3 };
    let e = p.or()?;
    p.ws();
    if p.i != p.s.len() {
        return Err(format!("unexpected text at {}", p.i));
    }
    Ok(e)
}

#[derive(Deserialize, Default)]
struct File {
    #[serde(default)]
    http: Option<Http>,
}

#[derive(Deserialize, Default)]
struct Http {
    #[serde(default)]
    routers: BTreeMap<String, RouterDef>,
    #[serde(default)]
    services: BTreeMap<String, ServiceDef>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RouterDef {
    #[serde(default)]
    rule: String,
    #[serde(default)]
    service: String,
    #[serde(default)]
    priority: Option<i64>,
    #[serde(default)]
    entry_points: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServiceDef {
    #[serde(default)]
    load_balancer: Option<LoadBalancer>,
}

#[derive(Deserialize)]
struct LoadBalancer {
    #[serde(default)]
    servers: Vec<Server>,
}

#[derive(Deserialize)]
struct Server {
    #[serde(default)]
    url: String,
}

struct Router {
    name: String,
    priority: i64,
    rule: Expr,
    upstream: String,
}

/// The routers that survived parsing, highest priority first, and what was dropped.
pub struct Table {
    routers: Vec<Router>,
    pub dropped: Vec<String>,
    /// Whether any file was read at all.
    pub loaded: bool,
}

/// Drops Go-template blocks (`{{- with … }}` … `{{- end }}`) and directive lines: the file
/// provider renders templates (traefik@v2.10:pkg/provider/file/file.go), which the stand-in
/// does not; what they would add (the 4.x ALLOWED_HOSTS checker) is left out, and logged.
fn strip_templates(file: &str, text: &str, dropped: &mut Vec<String>, env: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    let mut depth = 0usize;
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("{{") {
            let words: Vec<&str> = t.trim_start_matches("{{").trim_start_matches('-').split_whitespace().collect();
            match words.first().copied() {
                Some("end") => depth = depth.saturating_sub(1),
                Some("with" | "if" | "range") => {
                    if depth == 0 {
                        dropped.push(format!("{file}: template block {} not rendered", t.trim()));
                    }
                    depth += 1;
                }
                _ => {}
            }
            continue;
        }
        if depth == 0 {
            out.push_str(&render_env(line, env));
            out.push('\n');
        }
    }
    out
}

/// Renders the inline `{{ env "NAME" }}` actions of a line as the file provider's sprig `env`
/// does (integration@3.7.11:config/traefik/traefik.minio.yaml names the storage host so): the
/// variable's value, empty when it is unset.
fn render_env(line: &str, env: &dyn Fn(&str) -> Option<String>) -> String {
    static ACTION: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    let re = ACTION.get_or_init(|| {
        // A literal expression: it compiles (proven by the tests).
        #[allow(clippy::unwrap_used)]
        Regex::new(r#"\{\{-?\s*env\s+"([A-Za-z_][A-Za-z0-9_]*)"\s*-?\}\}"#).unwrap()
    });
    re.replace_all(line, |c: &regex::Captures| env(&c[1]).unwrap_or_default()).into_owned()
}

/// `http://host:port` → `host:port` (port 80 when none).
fn upstream(url: &str) -> Option<String> {
    let rest = url.strip_prefix("http://")?;
    let hostport = rest.split('/').next().filter(|h| !h.is_empty())?;
    Some(if hostport.contains(':') { hostport.to_string() } else { format!("{hostport}:80") })
}

impl Table {
    /// The table of the files `(name, text)` for traefik v2 or v3, `{{ env }}` rendered from the
    /// process's environment.
    pub fn from_texts(texts: &[(String, String)], v3: bool) -> Table {
        Table::from_texts_with(texts, v3, &|k| std::env::var(k).ok())
    }

    /// [`Table::from_texts`] with the environment `env`.
    pub fn from_texts_with(texts: &[(String, String)], v3: bool, env: &dyn Fn(&str) -> Option<String>) -> Table {
        let mut dropped = Vec::new();
        let mut routers_def = BTreeMap::new();
        let mut services = BTreeMap::new();
        for (name, text) in texts {
            let text = strip_templates(name, text, &mut dropped, env);
            match serde_saphyr::from_str::<Option<File>>(&text) {
                Ok(f) => {
                    if let Some(http) = f.and_then(|f| f.http) {
                        routers_def.extend(http.routers);
                        services.extend(http.services);
                    }
                }
                Err(e) => dropped.push(format!("{name}: cannot read the file: {e}")),
            }
        }
        let mut routers = Vec::new();
        for (name, r) in routers_def {
            if r.entry_points.as_ref().is_some_and(|eps| !eps.iter().any(|e| e == "https")) {
                continue;
            }
            let svc = r.service.trim_end_matches("@file");
            let target = services
                .get(svc)
                .and_then(|s: &ServiceDef| s.load_balancer.as_ref())
                .and_then(|lb| lb.servers.first())
                .and_then(|s| upstream(&s.url));
            let Some(upstream) = target else {
                dropped.push(format!("router {name}: the service {:?} does not exist", r.service));
                continue;
            };
            match parse(&r.rule, v3) {
                Ok(rule) => {
                    let priority = r.priority.unwrap_or(r.rule.len() as i64);
                    routers.push(Router { name, priority, rule, upstream });
                }
                Err(e) => dropped.push(format!("router {name}: error while parsing rule {}: {e}", r.rule)),
            }
        }
        routers.sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| a.name.cmp(&b.name)));
        Table { routers, dropped, loaded: !texts.is_empty() }
    }

    /// The upstream (`host:port`) of the first router that matches, if any.
    pub fn route(&self, r: &Req) -> Option<&str> {
        self.routers.iter().find(|x| x.rule.matches(r)).map(|x| x.upstream.as_str())
    }
}

/// The host a rule compares: the `Host` header without its port, lower case.
pub fn request_host(host: Option<&str>) -> String {
    let h = host.unwrap_or("");
    let h = if h.starts_with('[') {
        h.split(']').next().map(|x| format!("{x}]")).unwrap_or_default()
    } else {
        h.split(':').next().unwrap_or("").to_string()
    };
    h.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(host: &'a str, path: &'a str, none: &'a dyn Fn(&str) -> Option<String>) -> Req<'a> {
        Req { host, path, method: "GET", query: "", header: none }
    }

    #[test]
    fn v2_and_v3_syntax() {
        let none = |_: &str| None;
        let e = parse("PathPrefix(`/api/management/{version:v[0-9]+}/useradm`)", false).unwrap();
        assert!(e.matches(&req("x", "/api/management/v1/useradm/auth/login", &none)));
        assert!(!e.matches(&req("x", "/api/management/vX/useradm", &none)));
        assert!(parse("PathPrefix(`/api/management/{version:v[0-9]+}/useradm`)", true).is_err());
        assert!(parse("Host(`a`,`b`)", true).is_err());
        let e = parse("Host(`a.io`, `b.io`) && !Path(`/x`)", false).unwrap();
        assert!(e.matches(&req("b.io", "/y", &none)) && !e.matches(&req("b.io", "/x", &none)));
        let e = parse("PathRegexp(`^/api/management/v[0-9a-z]+/useradm`) && Host(`docker.mender.io`)", true).unwrap();
        assert!(e.matches(&req("docker.mender.io", "/api/management/v1/useradm/auth/login", &none)));
        assert!(!e.matches(&req("other.io", "/api/management/v1/useradm/auth/login", &none)));
        let e = parse("HostRegexp(`{domain:.+}`)", false).unwrap();
        assert!(e.matches(&req("s3.docker.mender.io", "/", &none)));
        let e = parse("Header(`X-Forwarded-Host`, `s3.io`) || (HeaderRegexp(`X-Amz-Date`, `.+`))", true).unwrap();
        let amz = |k: &str| (k == "X-Amz-Date").then(|| "20240101T000000Z".to_string());
        assert!(e.matches(&req("h", "/", &amz)) && !e.matches(&req("h", "/", &none)));
        for bad in ["PathPrefix(`/x`", "Nope(`/x`)", "PathPrefix(/x)", "Host(`a`) &&", "PathRegexp(`(`)"] {
            assert!(parse(bad, true).is_err(), "{bad}");
        }
        assert_eq!(request_host(Some("Docker.Mender.IO:443")), "docker.mender.io");
    }

    /// The hard-coded table the gateway used before it read the rules (still its fallback).
    fn legacy(path: &str, gui: &str) -> String {
        crate::front::fallback_route(path, gui).to_string()
    }

    fn stock(release: &str) -> Vec<(String, String)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../compose-templates")
            .join(release)
            .join("config/traefik");
        let mut v: Vec<(String, String)> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.file_name().to_string_lossy().into_owned(), std::fs::read_to_string(e.path()).unwrap())
            })
            .collect();
        v.sort();
        v
    }

    /// Every release the test bed ships routes the paths its config covers exactly as the old
    /// table did, with any host; the old table's extra services (not in the abridged configs)
    /// now reach the GUI's catch-all, as traefik would send them.
    #[test]
    fn stock_configs_route_as_before() {
        let releases: Vec<String> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../compose-templates"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(|c: char| c.is_ascii_digit()))
            .collect();
        assert!(releases.len() >= 10, "{releases:?}");
        let none = |_: &str| None;
        for rel in releases {
            let v3 = !rel.starts_with('3');
            let storage = |k: &str| (k == "STORAGE_URL").then(|| "s3.docker.mender.io".to_string());
            let t = Table::from_texts_with(&stock(&rel), v3, &storage);
            let gui = if v3 { "mender-gui:8090" } else { "mender-gui:80" };
            let dropped: Vec<&String> = t.dropped.iter().filter(|d| !d.contains("template block")).collect();
            assert!(dropped.is_empty(), "{rel}: {dropped:?}");
            for host in ["docker.mender.io", "s3.docker.mender.io", "127.0.0.1", ""] {
                for path in [
                    "/",
                    "/ui/",
                    "/index.html",
                    "/api/management/v1/useradm/auth/login",
                    "/api/management/v1/deployments/artifacts",
                    "/api/management/v1/deployments/artifacts/a0/download",
                    "/api/management/v1/inventory/devices",
                    "/api/management/v2/inventory/filters",
                    "/api/devices/v1/authentication/auth_requests",
                    "/mender-artifact-storage/a0",
                ] {
                    let got = t.route(&req(host, path, &none));
                    // The storage proxy (integration@3.7.11:config/traefik/traefik.minio.yaml):
                    // the storage host, and the bucket's path on any host, reach the store.
                    let want = if host == "s3.docker.mender.io" || path.starts_with("/mender-artifact-storage/") {
                        "minio:9000".to_string()
                    } else {
                        legacy(path, gui)
                    };
                    assert_eq!(got, Some(want.as_str()), "{rel} {host} {path}");
                }
                // In the old table only: the abridged configs have no router for these.
                for path in [
                    "/api/management/v2/devauth/devices/count",
                    "/api/management/v1/deviceconnect/devices",
                    "/api/devices/v1/deployments/device/deployments/next",
                    "/api/devices/v1/inventory/device/attributes",
                ] {
                    let want = if host == "s3.docker.mender.io" { "minio:9000" } else { gui };
                    assert_eq!(t.route(&req(host, path, &none)), Some(want), "{rel} {host} {path}");
                }
                // A presigned request on the API host, or forwarded for the storage host.
                let amz = |k: &str| (k == "X-Amz-Date").then(|| "20261203T000000Z".to_string());
                assert_eq!(t.route(&req(host, "/other-bucket/k", &amz)), Some("minio:9000"), "{rel} {host}");
                let fwd = |k: &str| (k == "X-Forwarded-Host").then(|| "s3.docker.mender.io".to_string());
                assert_eq!(t.route(&req(host, "/k", &fwd)), Some("minio:9000"), "{rel} {host}");
            }
        }
    }

    #[test]
    fn env_actions_are_rendered() {
        let env = |k: &str| (k == "STORAGE_URL").then(|| "s3.example.com".to_string());
        assert_eq!(render_env("rule: Host(`{{ env \"STORAGE_URL\" }}`)", &env), "rule: Host(`s3.example.com`)");
        assert_eq!(render_env("Host(`{{env \"UNSET\"}}`) || x", &env), "Host(``) || x");
        assert_eq!(render_env("no action", &env), "no action");
    }

    #[test]
    fn host_rules_unparsable_rules_and_priorities() {
        let none = |_: &str| None;
        let cfg = "http:\n  routers:\n    useradm: {rule: \"Host(`other.io`) && PathPrefix(`/api/management/v1/useradm`)\", service: useradm}\n    \
                   broken: {rule: \"PathPrefix(`/api/devices/{v:v1}/authentication`)\", service: deviceauth}\n    \
                   nosvc: {rule: \"PathPrefix(`/x`)\", service: missing}\n    \
                   gui: {rule: \"PathPrefix(`/`)\", service: gui}\n    \
                   storage: {rule: \"Host(`s3.docker.mender.io`)\", service: minio, priority: 100}\n  \
                   services:\n    useradm: {loadBalancer: {servers: [{url: \"http://mender-useradm:8080\"}]}}\n    \
                   deviceauth: {loadBalancer: {servers: [{url: \"http://mender-device-auth:8080\"}]}}\n    \
                   minio: {loadBalancer: {servers: [{url: \"http://minio:9000\"}]}}\n    \
                   gui: {loadBalancer: {servers: [{url: \"http://mender-gui:8090\"}]}}\n";
        let t = Table::from_texts(&[("traefik.yaml".into(), cfg.into())], true);
        assert_eq!(t.dropped.len(), 2, "{:?}", t.dropped);
        let login = "/api/management/v1/useradm/auth/login";
        assert_eq!(t.route(&req("other.io", login, &none)), Some("mender-useradm:8080"));
        assert_eq!(t.route(&req("docker.mender.io", login, &none)), Some("mender-gui:8090"));
        assert_eq!(
            t.route(&req("docker.mender.io", "/api/devices/v1/authentication/auth_requests", &none)),
            Some("mender-gui:8090")
        );
        assert_eq!(t.route(&req("s3.docker.mender.io", "/bucket/key", &none)), Some("minio:9000"));
        // Nothing matches: traefik's 404.
        let t = Table::from_texts(&[("a.yaml".into(), cfg.replace("PathPrefix(`/`)", "Host(`ui.io`)"))], true);
        assert_eq!(t.route(&req("docker.mender.io", "/", &none)), None);
        // A file that is not YAML is dropped whole.
        let t = Table::from_texts(&[("bad.yaml".into(), "http: [".into())], true);
        assert_eq!(t.dropped.len(), 1);
    }
}
