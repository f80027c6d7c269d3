//! Holds real answers of the REST API to `docs/openapi.json`: the part of OpenAPI 3.0's schema
//! language the document uses (`$ref`, `type`, `nullable`, `enum`, `required`, `properties`,
//! `items`, `allOf`, `oneOf`), enough to tell when the document and the code drift apart.

use serde_json::Value;

use crate::workspace;

/// The API's description, as the panel serves it.
pub struct OpenApi {
    doc: Value,
}

impl Default for OpenApi {
    fn default() -> Self {
        Self::load()
    }
}

impl OpenApi {
    pub fn load() -> OpenApi {
        let text = std::fs::read_to_string(workspace().join("docs/openapi.json"))
            .expect("docs/openapi.json");
        OpenApi {
            doc: serde_json::from_str(&text).expect("docs/openapi.json is JSON"),
        }
    }

    /// The document's path template that `path` (`/api/v1/changes/12?env=prod`) is an instance
    /// of, with `method` among its operations.
    fn template(&self, method: &str, path: &str) -> Option<&str> {
        let path = path.split('?').next().unwrap_or_default();
        let path = path.strip_prefix("/api/v1").unwrap_or(path);
        let want: Vec<&str> = path.split('/').collect();
        self.doc["paths"].as_object()?.iter().find_map(|(t, ops)| {
            let have: Vec<&str> = t.split('/').collect();
            let fits = have.len() == want.len()
                && have
                    .iter()
                    .zip(&want)
                    .all(|(h, w)| h == w || (h.starts_with('{') && h.ends_with('}')));
            (fits && ops.get(method).is_some()).then_some(t.as_str())
        })
    }

    /// What is wrong with `value` as the `status` answer of `method path` (`get`,
    /// `/api/v1/changes/12`): the operation or its answer missing from the document, or each
    /// place where the value breaks the answer's schema. Empty when it fits.
    pub fn check(&self, method: &str, path: &str, status: u16, value: &Value) -> Vec<String> {
        let Some(template) = self.template(method, path) else {
            return vec![format!(
                "{method} {path}: no such operation in docs/openapi.json"
            )];
        };
        let op = &self.doc["paths"][template][method];
        let mut answer = &op["responses"][status.to_string()];
        if let Some(r) = answer["$ref"].as_str() {
            answer = self.resolve(r);
        }
        if answer.is_null() {
            return vec![format!(
                "{method} {template}: docs/openapi.json has no {status} answer"
            )];
        }
        let Some(schema) = answer["content"]["application/json"].get("schema") else {
            return vec![format!(
                "{method} {template} {status}: no application/json schema"
            )];
        };
        let mut errors = Vec::new();
        self.errors(schema, value, "$", &mut errors);
        errors
            .into_iter()
            .map(|e| format!("{method} {template} {status}: {e}"))
            .collect()
    }

    fn resolve(&self, reference: &str) -> &Value {
        let mut at = &self.doc;
        for part in reference.trim_start_matches("#/").split('/') {
            at = &at[part];
        }
        at
    }

    fn errors(&self, schema: &Value, value: &Value, at: &str, out: &mut Vec<String>) {
        if let Some(r) = schema["$ref"].as_str() {
            let target = self.resolve(r);
            if target.is_null() {
                out.push(format!("{at}: {r} names no schema"));
            } else {
                self.errors(target, value, at, out);
            }
            return;
        }
        if value.is_null() && schema["nullable"] == true {
            return;
        }
        if let Some(all) = schema["allOf"].as_array() {
            for s in all {
                self.errors(s, value, at, out);
            }
        }
        if let Some(one) = schema["oneOf"].as_array() {
            let fitting = one
                .iter()
                .filter(|s| {
                    let mut e = Vec::new();
                    self.errors(s, value, at, &mut e);
                    e.is_empty()
                })
                .count();
            if fitting != 1 {
                out.push(format!(
                    "{at}: fits {fitting} of the oneOf's {} schemas: {value}",
                    one.len()
                ));
            }
        }
        if let Some(allowed) = schema["enum"].as_array() {
            if !allowed.contains(value) {
                out.push(format!("{at}: {value} is not one of {allowed:?}"));
            }
        }
        let Some(kind) = schema["type"].as_str() else {
            return;
        };
        let fits = match kind {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            _ => true,
        };
        if !fits {
            let shown: String = value.to_string().chars().take(120).collect();
            out.push(format!("{at}: expected {kind}, found {shown}"));
            return;
        }
        if let Some(obj) = value.as_object() {
            for key in schema["required"].as_array().into_iter().flatten() {
                let key = key.as_str().unwrap_or_default();
                if !obj.contains_key(key) {
                    out.push(format!("{at}: `{key}` is missing"));
                }
            }
            if let Some(props) = schema["properties"].as_object() {
                for (key, s) in props {
                    if let Some(v) = obj.get(key) {
                        self.errors(s, v, &format!("{at}.{key}"), out);
                    }
                }
            }
        }
        if let (Some(items), Some(list)) = (schema.get("items"), value.as_array()) {
            for (i, v) in list.iter().enumerate() {
                self.errors(items, v, &format!("{at}[{i}]"), out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_answer_is_checked_against_its_operations_schema() {
        let api = OpenApi::load();
        let me = json!({ "name": "ann", "role": "viewer", "email": null });
        assert!(api.check("get", "/api/v1/me", 200, &me).is_empty());
        let wrong = json!({ "name": "ann", "role": "king" });
        let errors = api.check("get", "/api/v1/me", 200, &wrong);
        assert!(
            errors.iter().any(|e| e.contains("\"king\" is not one of"))
                && errors.iter().any(|e| e.contains("`email` is missing")),
            "{errors:?}"
        );
        let errors = api.check("get", "/api/v1/changes/12?x=1", 200, &json!([]));
        assert!(
            errors[0].contains("get /changes/{id} 200: $: expected object"),
            "{errors:?}"
        );
        assert!(!api
            .check("get", "/api/v1/nowhere", 200, &json!({}))
            .is_empty());
    }
}
