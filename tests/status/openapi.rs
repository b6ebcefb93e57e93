#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Keeps docs/openapi.yaml true: it lists exactly the routes the server answers, its examples match
//! its schemas, and real answers of the server (and every wire enum value) match them too.

use crate::support;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use serde_json::Value;
use sparkvisor::status::api::ROUTES;
use sparkvisor::status::wire::*;
use support::*;

fn document() -> Value {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.yaml")).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

/// Follows `$ref: "#/a/b"` inside the document.
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let target = r
                .strip_prefix("#/")
                .unwrap()
                .split('/')
                .fold(doc, |node, key| &node[key]);
            assert!(!target.is_null(), "dangling $ref {r}");
            resolve(doc, target)
        }
        None => v,
    }
}

/// A structural JSON-schema check of the OpenAPI 3.0 subset the document uses.
fn validate(doc: &Value, schema: &Value, value: &Value, at: &str) -> Vec<String> {
    let schema = resolve(doc, schema);
    let mut errors = Vec::new();
    if value.is_null() {
        if schema.get("nullable") == Some(&Value::Bool(true))
            || schema.as_object().unwrap().is_empty()
        {
            return errors;
        }
        if schema.get("type").is_some() || schema.get("allOf").is_some() {
            return vec![format!("{at}: null but not nullable")];
        }
        return errors;
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for s in all {
            errors.extend(validate(doc, s, value, at));
        }
    }
    if let Some(any) = schema.get("oneOf").and_then(Value::as_array) {
        let ok = any
            .iter()
            .filter(|s| validate(doc, s, value, at).is_empty())
            .count();
        if ok != 1 {
            errors.push(format!("{at}: matches {ok} of oneOf"));
        }
    }
    if let Some(t) = schema.get("type").and_then(Value::as_str) {
        let ok = match t {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            other => panic!("schema type {other} not handled"),
        };
        if !ok {
            errors.push(format!("{at}: {value} is not {t}"));
            return errors;
        }
    }
    if let Some(choices) = schema.get("enum").and_then(Value::as_array) {
        if !choices.contains(value) {
            errors.push(format!("{at}: {value} not in {choices:?}"));
        }
    }
    if let Some(obj) = value.as_object() {
        let props = schema.get("properties").and_then(Value::as_object);
        for req in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !obj.contains_key(req.as_str().unwrap()) {
                errors.push(format!("{at}: missing {req}"));
            }
        }
        for (k, v) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(s) => errors.extend(validate(doc, s, v, &format!("{at}.{k}"))),
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    errors.push(format!("{at}: unexpected field {k}"))
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), value.as_array()) {
        for (i, v) in arr.iter().enumerate() {
            errors.extend(validate(doc, items, v, &format!("{at}[{i}]")));
        }
    }
    errors
}

fn assert_valid(doc: &Value, schema: &Value, value: &Value, at: &str) {
    let errors = validate(doc, schema, value, at);
    assert!(errors.is_empty(), "{at}: {errors:#?}\nvalue: {value}");
}

fn schema(doc: &Value, name: &str) -> Value {
    doc["components"]["schemas"][name].clone()
}

#[test]
fn document_lists_exactly_the_routes_the_server_answers() {
    let doc = document();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "delete", "patch", "head"] {
            if item.get(method).is_some() {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, served);
}

#[test]
fn every_route_is_really_answered_and_undocumented_ones_are_not() {
    let backend = FakeBackend::new(&["svc"]);
    let t = start(backend, |_| {});
    for (method, pattern) in ROUTES {
        let path = pattern.replace("{name}", "svc");
        let path = if path.ends_with("/signal") {
            format!("{path}?signal=HUP")
        } else {
            path
        };
        let (status, _) = raw(&t.socket, method, &path);
        assert_eq!(status, 200, "{method} {path}");
    }
    for (method, path) in [("GET", "/v1"), ("GET", "/v2/status"), ("PUT", "/v1/status")] {
        let (status, _) = raw(&t.socket, method, path);
        assert!(status == 404 || status == 405, "{method} {path}: {status}");
    }
}

fn raw(socket: &std::path::Path, method: &str, path: &str) -> (u16, Vec<u8>) {
    let mut s = UnixStream::connect(socket).unwrap();
    write!(s, "{method} {path} HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out);
    let status = text[9..12].parse().unwrap();
    let body_at = text.find("\r\n\r\n").unwrap() + 4;
    (status, out[body_at..].to_vec())
}

#[test]
fn examples_match_their_schemas() {
    let doc = document();
    let mut checked = 0;
    let mut walk = vec![("$".to_string(), doc.clone())];
    while let Some((at, node)) = walk.pop() {
        if let Some(obj) = node.as_object() {
            if let (Some(s), Some(example)) = (obj.get("schema"), obj.get("example")) {
                assert_valid(&doc, s, example, &at);
                checked += 1;
            }
            for (k, v) in obj {
                walk.push((format!("{at}.{k}"), v.clone()));
            }
        }
    }
    assert!(checked >= 7, "only {checked} examples found");
}

#[test]
fn real_answers_match_the_schemas() {
    let doc = document();
    let backend = FakeBackend::new(&["a", "b"]);
    backend.emit("a", "hello");
    backend.update("b", |s| {
        s.state = ServiceState::Backoff;
        s.ready = false;
        s.pid = None;
        s.last_exit = Some(LastExit::from_end(sparkvisor::error::ProcessEnd::Signaled(
            9,
        )));
    });
    let t = start(backend, |_| {});
    let get = |path: &str| {
        let (status, body) = raw(&t.socket, "GET", path);
        (status, body)
    };
    let json = |b: &[u8]| -> Value { serde_json::from_slice(b).unwrap() };

    let (_, body) = get("/v1/status");
    assert_valid(&doc, &schema(&doc, "Status"), &json(&body), "/v1/status");
    let (_, body) = get("/v1/services/b");
    assert_valid(
        &doc,
        &schema(&doc, "ServiceStatus"),
        &json(&body),
        "service",
    );
    let (status, body) = get("/v1/health");
    assert_eq!(status, 503);
    assert_valid(&doc, &schema(&doc, "Health"), &json(&body), "health");
    let (_, body) = get("/v1/logs");
    for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        assert_valid(&doc, &schema(&doc, "LogLine"), &json(line), "log line");
    }
    let (status, body) = get("/v1/services/ghost");
    assert_eq!(status, 404);
    assert_valid(&doc, &schema(&doc, "ErrorBody"), &json(&body), "error");
}

#[test]
fn every_wire_enum_value_is_documented() {
    let doc = document();
    let svc = schema(&doc, "ServiceStatus");
    let states = [
        ServiceState::Waiting,
        ServiceState::Starting,
        ServiceState::Running,
        ServiceState::Ready,
        ServiceState::Backoff,
        ServiceState::Stopping,
        ServiceState::Stopped,
        ServiceState::Failed,
    ];
    for st in states {
        assert_valid(
            &doc,
            &svc["properties"]["state"],
            &serde_json::to_value(st).unwrap(),
            st.as_str(),
        );
    }
    assert_eq!(
        svc["properties"]["state"]["enum"].as_array().unwrap().len(),
        states.len()
    );
    let kinds = [
        ErrorKind::BadRequest,
        ErrorKind::Forbidden,
        ErrorKind::NotFound,
        ErrorKind::MethodNotAllowed,
        ErrorKind::Conflict,
        ErrorKind::TooLarge,
        ErrorKind::Unavailable,
        ErrorKind::Internal,
    ];
    for k in kinds {
        let body = serde_json::to_value(ErrorBody {
            error: ApiError::new(k, "x"),
        })
        .unwrap();
        assert_valid(&doc, &schema(&doc, "ErrorBody"), &body, "error kind");
    }
    // A schema that rejects nothing would make all of the above pointless.
    let wrong = serde_json::json!({"healthy": "yes", "reasons": [], "extra": 1});
    assert_eq!(
        validate(&doc, &schema(&doc, "Health"), &wrong, "h").len(),
        2
    );
}
