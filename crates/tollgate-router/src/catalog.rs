//! What the router needs to know about models: context windows, output limits, prices, and how
//! many tokens a prompt has. The caller implements [`ModelCatalog`] over its model table (the
//! facade and the proxy do it over `tollgate-pricing`); [`StaticCatalog`] is a fixed table.

use std::collections::HashMap;
use std::fmt;

use tollgate_core::ChatRequest;

/// Model facts by *provider model string* (as in a deployment's `litellm_params.model`,
/// e.g. `groq/llama-3.3-70b-versatile` or a bare `gpt-4o-mini`).
pub trait ModelCatalog: Send + Sync + fmt::Debug {
    /// Maximum input tokens.
    fn context_window(&self, model: &str) -> Option<u64>;
    fn max_output_tokens(&self, model: &str) -> Option<u64>;
    /// USD per input token and per output token.
    fn cost_per_token(&self, model: &str) -> Option<(f64, f64)>;
    /// Prompt tokens of a request (an estimate is fine). `None`: unknown, no context check.
    fn count_prompt_tokens(&self, req: &ChatRequest) -> Option<u64>;
}

/// A catalog that knows nothing: no context checks, every price unknown.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCatalog;

impl ModelCatalog for NoCatalog {
    fn context_window(&self, _model: &str) -> Option<u64> {
        None
    }
    fn max_output_tokens(&self, _model: &str) -> Option<u64> {
        None
    }
    fn cost_per_token(&self, _model: &str) -> Option<(f64, f64)> {
        None
    }
    fn count_prompt_tokens(&self, _req: &ChatRequest) -> Option<u64> {
        None
    }
}

/// Facts about one model in a [`StaticCatalog`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ModelFacts {
    pub context_window: Option<u64>,
    pub max_output_tokens: Option<u64>,
    pub input_cost_per_token: Option<f64>,
    pub output_cost_per_token: Option<f64>,
}

/// A fixed table; prompt tokens are estimated as one token per four characters of message text
/// (plus four per message), the usual rough rule for English.
#[derive(Debug, Clone, Default)]
pub struct StaticCatalog {
    models: HashMap<String, ModelFacts>,
}

impl StaticCatalog {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, model: impl Into<String>, facts: ModelFacts) -> Self {
        self.models.insert(model.into(), facts);
        self
    }

    /// The estimate [`ModelCatalog::count_prompt_tokens`] uses.
    pub fn estimate_tokens(req: &ChatRequest) -> u64 {
        req.messages.iter().map(|m| 4 + (m.text().len() as u64).div_ceil(4)).sum()
    }
}

impl ModelCatalog for StaticCatalog {
    fn context_window(&self, model: &str) -> Option<u64> {
        self.models.get(model)?.context_window
    }
    fn max_output_tokens(&self, model: &str) -> Option<u64> {
        self.models.get(model)?.max_output_tokens
    }
    fn cost_per_token(&self, model: &str) -> Option<(f64, f64)> {
        let f = self.models.get(model)?;
        Some((f.input_cost_per_token?, f.output_cost_per_token?))
    }
    fn count_prompt_tokens(&self, req: &ChatRequest) -> Option<u64> {
        Some(Self::estimate_tokens(req))
    }
}

/// The [`ModelCatalog`] over `tollgate-pricing`: context windows, output limits and per-token
/// prices from its model table; prompt tokens from its tokenizers (by the requested model name,
/// an `o200k_base` estimate for non-OpenAI families).
#[cfg(feature = "pricing")]
#[derive(Debug, Clone, Copy, Default)]
pub struct PricingCatalog;

#[cfg(feature = "pricing")]
impl ModelCatalog for PricingCatalog {
    fn context_window(&self, model: &str) -> Option<u64> {
        tollgate_pricing::context_window(model).map(u64::from)
    }
    fn max_output_tokens(&self, model: &str) -> Option<u64> {
        tollgate_pricing::max_output_tokens(model).map(u64::from)
    }
    fn cost_per_token(&self, model: &str) -> Option<(f64, f64)> {
        use tollgate_pricing::PriceKind;
        let info = tollgate_pricing::model_info(model)?;
        Some((info.price(PriceKind::InputToken)?.to_f64(), info.price(PriceKind::OutputToken)?.to_f64()))
    }
    fn count_prompt_tokens(&self, req: &ChatRequest) -> Option<u64> {
        let tools = req.tools.as_deref().unwrap_or(&[]);
        Some(tollgate_pricing::tokens::count_chat(&req.model, &req.messages, tools).tokens)
    }
}

#[cfg(all(test, feature = "pricing"))]
mod pricing_tests {
    use super::*;
    use tollgate_core::Message;

    #[test]
    fn pricing_catalog_reads_the_model_table() {
        let c = PricingCatalog;
        let window = c.context_window("gpt-4o").unwrap();
        assert!(window >= 100_000, "{window}");
        let (i, o) = c.cost_per_token("gpt-4o").unwrap();
        assert!(i > 0.0 && o > i);
        assert_eq!(c.cost_per_token("no-such-model-xyz"), None);
        let req = ChatRequest::new("gpt-4o", vec![Message::user("hello world")]);
        let n = c.count_prompt_tokens(&req).unwrap();
        assert!((3..20).contains(&n), "{n}");
    }
}
