//! Who a limit or a budget belongs to.

use std::fmt;

/// The level a limit applies at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntityKind {
    /// A virtual key, identified by its hash.
    Key,
    Team,
    User,
    /// An end customer (the request's `user` field or a header).
    Customer,
    /// An upstream deployment.
    Deployment,
    /// A reusable budget shared by several entities.
    Budget,
    /// The whole proxy.
    Global,
}

impl EntityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Key => "key",
            EntityKind::Team => "team",
            EntityKind::User => "user",
            EntityKind::Customer => "customer",
            EntityKind::Deployment => "deployment",
            EntityKind::Budget => "budget",
            EntityKind::Global => "global",
        }
    }
}

/// One entity: a kind and an id (any string; escaped where it becomes part of a Redis key).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Entity {
    pub kind: EntityKind,
    pub id: String,
}

impl Entity {
    pub fn new(kind: EntityKind, id: impl Into<String>) -> Self {
        Self { kind, id: id.into() }
    }

    /// The Redis hash tag of this entity: `{<namespace>:<kind>:<escaped id>}`. Every key of the
    /// entity starts with it, so one script touching several of them stays in one cluster slot.
    /// `{`, `}`, `:` and `%` in the id are percent-escaped, so no id can end the tag early or
    /// collide with another entity's keys.
    pub(crate) fn redis_tag(&self, namespace: &str) -> String {
        let mut out = String::with_capacity(namespace.len() + self.id.len() + 16);
        out.push('{');
        out.push_str(namespace);
        out.push(':');
        out.push_str(self.kind.as_str());
        out.push(':');
        escape_into(&self.id, &mut out);
        out.push('}');
        out
    }
}

pub(crate) fn escape_into(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '%' => out.push_str("%25"),
            '{' => out.push_str("%7B"),
            '}' => out.push_str("%7D"),
            ':' => out.push_str("%3A"),
            c => out.push(c),
        }
    }
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.as_str(), self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_escape_braces_and_colons() {
        let e = Entity::new(EntityKind::User, "a}b:{c%");
        assert_eq!(e.redis_tag("tollgate"), "{tollgate:user:a%7Db%3A%7Bc%25}");
        let k = Entity::new(EntityKind::Key, "abc123");
        assert_eq!(k.redis_tag("ns"), "{ns:key:abc123}");
        assert_eq!(k.to_string(), "key:abc123");
    }
}
