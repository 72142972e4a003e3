//! Model references: `provider/model` (the LiteLLM convention) or a bare model name.
//!
//! Only the first `/` separates the provider, so `openrouter/meta-llama/llama-3.1-8b` is provider
//! `openrouter`, model `meta-llama/llama-3.1-8b`. Whether a provider prefix is *known* is decided
//! by the layer that owns the provider registry (the facade, the router), not here.

use std::fmt;

/// A parsed model reference; borrowed from the string it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ModelRef<'a> {
    /// The provider prefix, if the reference had one.
    pub provider: Option<&'a str>,
    /// The model name as the provider knows it.
    pub model: &'a str,
}

/// Why a model reference could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelRefError {
    #[error("the model name is empty")]
    Empty,
    #[error("`{0}` has an empty provider before `/`")]
    EmptyProvider(String),
    #[error("`{0}` has no model name after the provider prefix")]
    EmptyModel(String),
    #[error("`{0}` contains whitespace or control characters")]
    InvalidCharacters(String),
}

impl<'a> ModelRef<'a> {
    /// Splits `s` into provider and model.
    pub fn parse(s: &'a str) -> Result<Self, ModelRefError> {
        if s.is_empty() {
            return Err(ModelRefError::Empty);
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ModelRefError::InvalidCharacters(s.to_owned()));
        }
        match s.split_once('/') {
            None => Ok(ModelRef { provider: None, model: s }),
            Some(("", _)) => Err(ModelRefError::EmptyProvider(s.to_owned())),
            Some((_, "")) => Err(ModelRefError::EmptyModel(s.to_owned())),
            Some((p, m)) => Ok(ModelRef { provider: Some(p), model: m }),
        }
    }

    /// A reference whose prefix turned out not to be a provider (e.g. a Hugging Face repo id
    /// sent to a provider that takes slashes in names): the whole string is the model.
    pub fn whole(s: &'a str) -> Self {
        ModelRef { provider: None, model: s }
    }
}

impl fmt::Display for ModelRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.provider {
            Some(p) => write!(f, "{p}/{}", self.model),
            None => f.write_str(self.model),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prefixed_bare_and_nested() {
        let r = ModelRef::parse("groq/llama-3.3-70b-versatile").unwrap();
        assert_eq!((r.provider, r.model), (Some("groq"), "llama-3.3-70b-versatile"));
        let r = ModelRef::parse("gpt-4o-mini").unwrap();
        assert_eq!((r.provider, r.model), (None, "gpt-4o-mini"));
        let r = ModelRef::parse("openrouter/meta-llama/llama-3.1-8b").unwrap();
        assert_eq!((r.provider, r.model), (Some("openrouter"), "meta-llama/llama-3.1-8b"));
        assert_eq!(r.to_string(), "openrouter/meta-llama/llama-3.1-8b");
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(ModelRef::parse(""), Err(ModelRefError::Empty));
        assert!(matches!(ModelRef::parse("/gpt"), Err(ModelRefError::EmptyProvider(_))));
        assert!(matches!(ModelRef::parse("openai/"), Err(ModelRefError::EmptyModel(_))));
        assert!(matches!(ModelRef::parse("gpt 4"), Err(ModelRefError::InvalidCharacters(_))));
    }
}
