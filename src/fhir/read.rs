//! Reading a FHIR resource the client sent: a JSON value with its location, so that every
//! refusal names the element at fault as a FHIRPath (`Bundle.entry[2].resource.subject`), which
//! [`super::outcome`] puts in `OperationOutcome.issue.expression`.

use serde_json::Value;

use crate::error::AppError;

/// The largest number of entries, identifiers, extensions... one element may repeat; more is
/// refused, so no request makes the service walk an unbounded list.
pub const MAX_REPEATS: usize = 100;

/// A JSON value and where it is.
#[derive(Debug, Clone)]
pub struct Node<'a> {
    pub value: &'a Value,
    pub path: String,
}

impl<'a> Node<'a> {
    /// The resource at the root of a request, after checking its `resourceType`.
    pub fn resource(value: &'a Value, resource_type: &str) -> Result<Self, AppError> {
        let node = Self {
            value,
            path: resource_type.to_owned(),
        };
        if !value.is_object() {
            return Err(node.invalid(format!("a {resource_type} resource (a JSON object)")));
        }
        let found = value.get("resourceType").and_then(Value::as_str);
        if found != Some(resource_type) {
            return Err(AppError::invalid(
                "invalid-resource-type",
                format!("{resource_type}.resourceType"),
                format!("expected a {resource_type}, found {found:?}"),
            ));
        }
        Ok(node)
    }

    /// A 400 naming this element.
    pub fn invalid(&self, detail: impl Into<String>) -> AppError {
        AppError::field(self.path.clone(), detail)
    }

    /// A 422 naming this element: well-formed, but refused by a rule.
    pub fn refused(&self, code: &'static str, detail: impl Into<String>) -> AppError {
        AppError::refused(code, &self.path, detail)
    }

    fn child(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }

    /// The member `key`, if present (and not null).
    pub fn get(&self, key: &str) -> Option<Node<'a>> {
        self.value
            .get(key)
            .filter(|v| !v.is_null())
            .map(|value| Node {
                value,
                path: self.child(key),
            })
    }

    /// The member `key`, or a 400 saying it is required.
    pub fn req(&self, key: &str) -> Result<Node<'a>, AppError> {
        self.get(key).ok_or_else(|| {
            AppError::invalid(
                "missing-field",
                self.child(key),
                format!("{key} is required"),
            )
        })
    }

    pub fn str(&self) -> Result<&'a str, AppError> {
        self.value.as_str().ok_or_else(|| self.invalid("a string"))
    }

    pub fn req_str(&self, key: &str) -> Result<&'a str, AppError> {
        self.req(key)?.str()
    }

    pub fn opt_str(&self, key: &str) -> Result<Option<&'a str>, AppError> {
        self.get(key).map(|n| n.str()).transpose()
    }

    /// The elements of an array member (none when absent); an object where FHIR repeats an
    /// element is refused.
    pub fn list(&self, key: &str) -> Result<Vec<Node<'a>>, AppError> {
        let Some(node) = self.get(key) else {
            return Ok(Vec::new());
        };
        let items = node
            .value
            .as_array()
            .ok_or_else(|| node.invalid("an array"))?;
        if items.len() > MAX_REPEATS {
            return Err(node.invalid(format!("at most {MAX_REPEATS} elements")));
        }
        Ok(items
            .iter()
            .enumerate()
            .map(|(i, value)| Node {
                value,
                path: format!("{}[{i}]", node.path),
            })
            .collect())
    }

    /// The `value` of the first `identifier` with `system` (an Identifier list, or a single
    /// Identifier member), as the node of that value.
    pub fn identifier(&self, key: &str, system: &str) -> Result<Option<Node<'a>>, AppError> {
        let candidates = match self.get(key) {
            Some(node) if node.value.is_array() => self.list(key)?,
            Some(node) => vec![node],
            None => Vec::new(),
        };
        for identifier in candidates {
            if identifier.opt_str("system")? == Some(system) {
                return identifier.req("value").map(Some);
            }
        }
        Ok(None)
    }

    /// [`identifier`](Self::identifier), required: a missing one is a 400 naming
    /// `<path>.<key>` and saying what was wanted (`what`) and of which system.
    pub fn req_identifier(
        &self,
        key: &str,
        system: &str,
        what: &str,
    ) -> Result<Node<'a>, AppError> {
        self.identifier(key, system)?.ok_or_else(|| {
            AppError::invalid(
                "missing-field",
                format!("{}.{key}", self.path),
                format!("{what} (system {system})"),
            )
        })
    }

    /// The extension with `url` among this element's `extension`.
    pub fn extension(&self, url: &str) -> Result<Option<Node<'a>>, AppError> {
        for extension in self.list("extension")? {
            if extension.opt_str("url")? == Some(url) {
                return Ok(Some(extension));
            }
        }
        Ok(None)
    }

    /// The `code` of the first coding with `system` in this CodeableConcept (or Coding).
    pub fn code_in(&self, system: &str) -> Result<Option<Node<'a>>, AppError> {
        let codings = if self.value.get("coding").is_some() {
            self.list("coding")?
        } else {
            vec![self.clone()]
        };
        for coding in codings {
            if coding.opt_str("system")? == Some(system) {
                return coding.req("code").map(Some);
            }
        }
        Ok(None)
    }

    /// Like [`Self::code_in`] for any of `systems`, or a 400 naming them.
    pub fn req_code_in(&self, systems: &[&str]) -> Result<Node<'a>, AppError> {
        for system in systems {
            if let Some(code) = self.code_in(system)? {
                return Ok(code);
            }
        }
        Err(self.invalid(format!("a coding from {}", systems.join(" or "))))
    }
}

/// A request body as JSON, or a 400.
pub fn json_body(body: &[u8]) -> Result<Value, AppError> {
    serde_json::from_slice(body).map_err(|e| AppError::MalformedJson(e.to_string()))
}
