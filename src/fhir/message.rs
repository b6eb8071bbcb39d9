//! A FHIR message: a Bundle of type `message` whose first entry is the MessageHeader naming the
//! event (EPS: prescription-order, prescription-order-update, dispense-notification).

use serde_json::Value;

use super::codes;
use super::read::Node;
use crate::error::AppError;

/// One entry of the Bundle.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub full_url: Option<&'a str>,
    pub resource_type: &'a str,
    pub resource: Node<'a>,
}

#[derive(Debug)]
pub struct Message<'a> {
    pub bundle: Node<'a>,
    /// `Bundle.identifier.value`: the message's ID.
    pub id: Option<&'a str>,
    pub event: Node<'a>,
    pub header: Node<'a>,
    pub entries: Vec<Entry<'a>>,
}

impl<'a> Message<'a> {
    pub fn read(value: &'a Value) -> Result<Self, AppError> {
        let bundle = Node::resource(value, "Bundle")?;
        let kind = bundle.req("type")?;
        if kind.str()? != "message" {
            return Err(kind.invalid("a message Bundle (type message)"));
        }
        let id = match bundle.get("identifier") {
            Some(identifier) => Some(identifier.req_str("value")?),
            None => None,
        };
        let mut entries = Vec::new();
        for entry in bundle.list("entry")? {
            let resource = entry.req("resource")?;
            let resource_type = resource.req_str("resourceType")?;
            entries.push(Entry {
                full_url: entry.opt_str("fullUrl")?,
                resource_type,
                resource,
            });
        }
        let header = match entries.first() {
            Some(first) if first.resource_type == "MessageHeader" => first.resource.clone(),
            _ => {
                return Err(AppError::invalid(
                    "missing-field",
                    "Bundle.entry[0].resource",
                    "a message Bundle starts with its MessageHeader",
                ));
            }
        };
        let coding = header.req("eventCoding")?;
        let event = coding.code_in(codes::MESSAGE_EVENT)?.ok_or_else(|| {
            coding.invalid(format!("a message event of {}", codes::MESSAGE_EVENT))
        })?;
        Ok(Self {
            bundle,
            id,
            event,
            header,
            entries,
        })
    }

    pub fn event(&self) -> Result<&'a str, AppError> {
        self.event.str()
    }

    /// Refuses any other event.
    pub fn expect(&self, event: &str) -> Result<(), AppError> {
        if self.event()? == event {
            Ok(())
        } else {
            Err(self.event.refused(
                "unsupported-message",
                format!("this operation takes {event} only"),
            ))
        }
    }

    pub fn of_type(&self, resource_type: &str) -> Vec<&Entry<'a>> {
        self.entries
            .iter()
            .filter(|e| e.resource_type == resource_type)
            .collect()
    }

    /// The entry a Reference (`{"reference": "urn:uuid:…"}` or `Type/id`) points at.
    pub fn resolve(&self, reference: &Node<'a>) -> Result<&Entry<'a>, AppError> {
        let target = reference.req("reference")?;
        let text = target.str()?;
        self.entries
            .iter()
            .find(|entry| {
                entry.full_url == Some(text)
                    || entry
                        .resource
                        .value
                        .get("id")
                        .and_then(Value::as_str)
                        .is_some_and(|id| text == format!("{}/{id}", entry.resource_type))
            })
            .ok_or_else(|| target.invalid(format!("no entry of the Bundle is {text}")))
    }
}
