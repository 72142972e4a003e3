//! `data/model_prices_and_context_window.json` → `crates/tollgate-pricing/src/generated.rs`.
//!
//! Every model entry becomes one row of a static table sorted by name (the crate binary-searches
//! it). Strings that repeat (providers, modes) are interned into small tables and referenced by
//! index; prices are interned too and stored as integers in **yoctodollars** (10⁻²⁴ USD) per unit,
//! which represents every decimal the snapshot holds exactly (a few entries carry float noise
//! such as `4.2000000000000006e-08`, 23 significant fractional digits). Each price is converted
//! from the shortest decimal that round-trips the JSON number and converted back; if the
//! integer does not reproduce the number bit for bit, codegen fails.
//!
//! Price field names are parsed into (bucket, service tier, prompt-size threshold):
//! `cache_read_input_token_cost_above_200k_tokens_priority` is bucket `CacheRead`, tier
//! `Priority`, threshold 200 000. `tiered_pricing` ranges become thresholds too. Numeric price
//! fields that tollgate does not price (OCR pages, vector stores, resolution-specific video
//! seconds, …) are listed in the generated header so nobody mistakes them for handled.
//!
//! The output carries `#[rustfmt::skip]` (on the `mod` line in lib.rs) and a fixed layout: the
//! same data always gives the same bytes, so `codegen --check` is byte-exact.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value};

use super::Generated;

pub(crate) const DATA: &str = "data/model_prices_and_context_window.json";
const OUT: &str = "crates/tollgate-pricing/src/generated.rs";

/// The key in the data that documents the fields; it is not a model.
const SPEC_KEY: &str = "sample_spec";

/// Price buckets: (field name without tier/threshold, variant of `tollgate_pricing::PriceKind`).
const BASES: &[(&str, &str)] = &[
    ("input_cost_per_token", "InputToken"),
    ("output_cost_per_token", "OutputToken"),
    ("cache_read_input_token_cost", "CacheRead"),
    ("input_cost_per_token_cache_hit", "CacheHit"),
    ("explicit_cache_read_input_token_cost", "ExplicitCacheRead"),
    ("cache_creation_input_token_cost", "CacheCreation"),
    ("cache_creation_input_token_cost_above_1hr", "CacheCreation1h"),
    ("cache_creation_input_token_cost_above_12hr", "CacheCreation12h"),
    ("output_cost_per_reasoning_token", "ReasoningToken"),
    ("input_cost_per_audio_token", "InputAudioToken"),
    ("output_cost_per_audio_token", "OutputAudioToken"),
    ("cache_read_input_audio_token_cost", "CacheReadAudio"),
    ("cache_creation_input_audio_token_cost", "CacheCreationAudio"),
    ("input_cost_per_image_token", "InputImageToken"),
    ("output_cost_per_image_token", "OutputImageToken"),
    ("cache_read_input_image_token_cost", "CacheReadImage"),
    ("input_cost_per_video_token", "InputVideoToken"),
    ("output_cost_per_video_token", "OutputVideoToken"),
    ("input_cost_per_image", "InputImage"),
    ("output_cost_per_image", "OutputImage"),
    ("input_cost_per_pixel", "InputPixel"),
    ("output_cost_per_pixel", "OutputPixel"),
    ("input_cost_per_second", "InputSecond"),
    ("output_cost_per_second", "OutputSecond"),
    ("input_cost_per_audio_per_second", "InputAudioSecond"),
    ("input_cost_per_video_per_second", "InputVideoSecond"),
    ("output_cost_per_video_per_second", "OutputVideoSecond"),
    ("input_cost_per_character", "InputCharacter"),
    ("output_cost_per_character", "OutputCharacter"),
    ("input_cost_per_query", "Query"),
    ("input_cost_per_request", "Request"),
    ("citation_cost_per_token", "CitationToken"),
];

/// Service-tier suffixes: (suffix, variant of `tollgate_pricing::ServiceTier`).
const TIERS: &[(&str, &str)] = &[
    ("_batches", "Batch"),
    ("_priority", "Priority"),
    ("_flex", "Flex"),
    ("_ultrafast", "Ultrafast"),
    ("_balanced", "Balanced"),
    ("_decisions", "Decisions"),
];

/// One USD in the table's unit.
const YOCTO_PER_USD: u128 = 1_000_000_000_000_000_000_000_000;
const FRACTION_DIGITS: usize = 24;

/// (base variant, tier variant, threshold in prompt tokens; 0 = none).
type PriceKey = (&'static str, &'static str, u64);

struct Row {
    name: String,
    provider: usize,
    mode: usize,
    max_input: u32,
    max_output: u32,
    flags: u64,
    /// (key index, value index), sorted.
    prices: Vec<(usize, usize)>,
}

/// The parsed table, before rendering.
pub(crate) struct Table {
    providers: Vec<String>,
    modes: Vec<String>,
    capabilities: Vec<String>,
    keys: Vec<PriceKey>,
    values: Vec<u128>,
    rows: Vec<Row>,
    ignored_fields: BTreeSet<String>,
}

pub(crate) fn generate(root: &Path) -> Result<Generated> {
    let data_path = root.join(DATA);
    let text =
        std::fs::read_to_string(&data_path).with_context(|| format!("reading {}", data_path.display()))?;
    let value: Value = serde_json::from_str(&text).with_context(|| format!("parsing {DATA}"))?;
    let table = build(&value).context(DATA)?;
    Ok(Generated { path: root.join(OUT), contents: render(&table) })
}

/// Validates the whole file and builds the table; every error names the model and field.
pub(crate) fn build(value: &Value) -> Result<Table> {
    let Value::Object(models) = value else { bail!("expected a JSON object of model entries") };
    // Interning tables, all sorted so the output does not depend on the data's key order.
    let mut providers = BTreeSet::new();
    let mut modes = BTreeSet::new();
    let mut capabilities = BTreeSet::new();
    let mut keys = BTreeSet::new();
    let mut values = BTreeSet::new();
    let mut ignored_fields = BTreeSet::new();
    struct Parsed<'a> {
        name: &'a str,
        provider: String,
        mode: String,
        max_input: u32,
        max_output: u32,
        caps: Vec<&'a str>,
        prices: BTreeMap<PriceKey, u128>,
    }
    let mut parsed = Vec::with_capacity(models.len());
    for (name, entry) in models {
        if name == SPEC_KEY {
            continue;
        }
        let Value::Object(o) = entry else { bail!("`{name}`: expected an object") };
        let p = parse_entry(o, &mut ignored_fields).with_context(|| format!("model `{name}`"))?;
        providers.insert(p.0.clone());
        modes.insert(p.1.clone());
        capabilities.extend(p.4.iter().map(|s| s.to_string()));
        for (k, v) in &p.5 {
            keys.insert(*k);
            values.insert(*v);
        }
        parsed.push(Parsed {
            name,
            provider: p.0,
            mode: p.1,
            max_input: p.2,
            max_output: p.3,
            caps: p.4,
            prices: p.5,
        });
    }
    let providers: Vec<String> = providers.into_iter().collect();
    let modes: Vec<String> = modes.into_iter().collect();
    let capabilities: Vec<String> = capabilities.into_iter().collect();
    if capabilities.len() > 64 {
        bail!("{} supports_* flags do not fit the u64 bit set; widen it", capabilities.len());
    }
    let keys: Vec<PriceKey> = keys.into_iter().collect();
    if let Some((base, _, thr)) = keys.iter().find(|(_, _, thr)| *thr > u64::from(u32::MAX)) {
        bail!("threshold {thr} tokens on a `{base}` price does not fit u32");
    }
    let values: Vec<u128> = values.into_iter().collect();
    if keys.len() > 0xFFFF || values.len() > 0xFFFF {
        bail!("{} price keys / {} distinct prices overflow the 16-bit packing", keys.len(), values.len());
    }
    let index = |list: &[String], s: &str| list.binary_search_by(|x| x.as_str().cmp(s)).unwrap_or(0);
    let mut rows = Vec::with_capacity(parsed.len());
    for p in parsed {
        let mut flags = 0u64;
        for c in &p.caps {
            flags |= 1 << index(&capabilities, c);
        }
        let prices = p
            .prices
            .iter()
            .map(|(k, v)| (keys.binary_search(k).unwrap_or(0), values.binary_search(v).unwrap_or(0)))
            .collect();
        rows.push(Row {
            name: p.name.to_owned(),
            provider: index(&providers, &p.provider),
            mode: index(&modes, &p.mode),
            max_input: p.max_input,
            max_output: p.max_output,
            flags,
            prices,
        });
    }
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Table { providers, modes, capabilities, keys, values, rows, ignored_fields })
}

type EntryParts<'a> = (String, String, u32, u32, Vec<&'a str>, BTreeMap<PriceKey, u128>);

fn parse_entry<'a>(o: &'a Map<String, Value>, ignored: &mut BTreeSet<String>) -> Result<EntryParts<'a>> {
    let provider = match o.get("litellm_provider") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => bail!("`litellm_provider` is not a string"),
    };
    let mode = match o.get("mode") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => bail!("`mode` is not a string"),
    };
    let max_input = token_limit(o, "max_input_tokens")?;
    let max_output = token_limit(o, "max_output_tokens")?;
    let mut caps = Vec::new();
    let mut prices = BTreeMap::new();
    for (field, v) in o {
        if let Some(rest) = field.strip_prefix("supports_") {
            if rest.is_empty() {
                bail!("empty capability name");
            }
            match v {
                Value::Bool(true) => caps.push(field.as_str()),
                Value::Bool(false) | Value::Null => {}
                _ => bail!("`{field}` is not a boolean"),
            }
            continue;
        }
        if field == "tiered_pricing" {
            parse_tiered(v, &mut prices).context("`tiered_pricing`")?;
            continue;
        }
        let Value::Number(n) = v else { continue };
        match parse_price_field(field) {
            Some(key) => {
                let yocto = to_yocto(n).with_context(|| format!("`{field}`"))?;
                prices.insert(key, yocto);
            }
            None if field.contains("cost") => {
                ignored.insert(field.clone());
            }
            None => {}
        }
    }
    Ok((provider, mode, max_input, max_output, caps, prices))
}

fn token_limit(o: &Map<String, Value>, field: &str) -> Result<u32> {
    match o.get(field) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => {
            let Some(v) = n.as_u64() else { bail!("`{field}` = {n} is not a whole number of tokens") };
            u32::try_from(v).with_context(|| format!("`{field}` = {v} does not fit u32"))
        }
        Some(_) => bail!("`{field}` is not a number"),
    }
}

/// `tiered_pricing: [{"range": [0, 256000], "input_cost_per_token": …}, {"range": [256000, …], …}]`:
/// the first range's prices are the base prices (explicit base fields win), later ranges become
/// thresholds at their start.
fn parse_tiered(v: &Value, prices: &mut BTreeMap<PriceKey, u128>) -> Result<()> {
    let Value::Array(tiers) = v else { bail!("expected an array") };
    for (i, tier) in tiers.iter().enumerate() {
        let Value::Object(t) = tier else { bail!("tier {i}: expected an object") };
        if t.contains_key("max_results_range") {
            // Search APIs priced by the number of results requested: only the first (smallest)
            // range becomes the per-query price; larger result counts are not modelled.
            if i == 0 {
                for (field, fv) in t {
                    if let (Value::Number(n), Some(key)) = (fv, parse_price_field(field)) {
                        let yocto = to_yocto(n).with_context(|| format!("tier {i}: `{field}`"))?;
                        prices.entry(key).or_insert(yocto);
                    }
                }
            }
            continue;
        }
        let start = t
            .get("range")
            .and_then(Value::as_array)
            .and_then(|r| r.first())
            .and_then(Value::as_f64)
            .with_context(|| format!("tier {i}: missing `range`"))?;
        if start < 0.0 || start.fract() != 0.0 || start > 1e12 {
            bail!("tier {i}: range start {start} is not a token count");
        }
        let threshold = start as u64;
        for (field, fv) in t {
            if field == "range" {
                continue;
            }
            let Value::Number(n) = fv else { bail!("tier {i}: `{field}` is not a number") };
            let Some((base, tier_name, 0)) = parse_price_field(field) else {
                bail!("tier {i}: unsupported field `{field}`")
            };
            let yocto = to_yocto(n).with_context(|| format!("tier {i}: `{field}`"))?;
            prices.entry((base, tier_name, threshold)).or_insert(yocto);
        }
    }
    Ok(())
}

/// Splits a price field name into (bucket, tier, threshold); `None` for fields tollgate does not price.
pub(crate) fn parse_price_field(field: &str) -> Option<PriceKey> {
    let mut rest = field;
    let mut tier = "Standard";
    for (suffix, variant) in TIERS {
        if let Some(r) = rest.strip_suffix(suffix) {
            rest = r;
            tier = variant;
            break;
        }
    }
    let mut threshold = 0;
    if let Some(r) = rest.strip_suffix("k_tokens")
        && let Some(at) = r.rfind("_above_")
        && let Ok(k) = r[at + "_above_".len()..].parse::<u64>()
    {
        threshold = k * 1000;
        rest = &r[..at];
    }
    let base = BASES.iter().find(|(name, _)| *name == rest)?.1;
    Some((base, tier, threshold))
}

/// A JSON number as an exact integer of yoctodollars; fails when that is impossible.
pub(crate) fn to_yocto(n: &serde_json::Number) -> Result<u128> {
    if let Some(u) = n.as_u64() {
        return u128::from(u).checked_mul(YOCTO_PER_USD).context("price too large");
    }
    let Some(f) = n.as_f64() else { bail!("{n} is not a number") };
    if !f.is_finite() || f < 0.0 {
        bail!("price {f} is negative or not finite");
    }
    // Rust's `Display` for f64 is the shortest decimal that round-trips, without an exponent.
    let text = format!("{f}");
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    if frac.len() > FRACTION_DIGITS {
        bail!("price {text} has more than {FRACTION_DIGITS} decimal places: not exact in yoctodollars");
    }
    let int: u128 = int.parse().with_context(|| format!("price {text}"))?;
    let mut frac_units: u128 = 0;
    for (i, d) in frac.bytes().enumerate() {
        let digit = u128::from(d.wrapping_sub(b'0'));
        if digit > 9 {
            bail!("price {text} is not a plain decimal");
        }
        frac_units += digit * 10u128.pow((FRACTION_DIGITS - 1 - i) as u32);
    }
    let yocto =
        int.checked_mul(YOCTO_PER_USD).and_then(|v| v.checked_add(frac_units)).context("price too large")?;
    let back: f64 = yocto_to_decimal(yocto).parse().with_context(|| format!("price {text}"))?;
    if back.to_bits() != f.to_bits() {
        bail!("price {text} is not represented exactly: {yocto} yoctodollars reads back as {back}");
    }
    Ok(yocto)
}

/// Exact decimal text of a yoctodollar amount (`1250000000000000000` → `0.00000125`).
pub(crate) fn yocto_to_decimal(yocto: u128) -> String {
    let int = yocto / YOCTO_PER_USD;
    let frac = yocto % YOCTO_PER_USD;
    if frac == 0 {
        return int.to_string();
    }
    let digits = format!("{frac:0width$}", width = FRACTION_DIGITS);
    format!("{int}.{}", digits.trim_end_matches('0'))
}

fn render(t: &Table) -> String {
    let mut s = String::with_capacity(1 << 20);
    s.push_str(
        "// generated by cargo xtask codegen from data/model_prices_and_context_window.json, do not edit\n",
    );
    s.push_str("//! The model table (see `xtask/src/codegen/pricing.rs`): rows sorted by name for binary\n");
    s.push_str(
        "//! search, interned providers, modes and prices (yoctodollars per unit), one bit per capability.\n",
    );
    s.push_str("//!\n//! Numeric cost fields in the data that tollgate does not price:\n");
    for f in &t.ignored_fields {
        let _ = writeln!(s, "//! `{f}`");
    }
    s.push('\n');
    s.push_str(
        "use crate::table::{Entry, PriceKey, e, k};\nuse crate::{PriceKind as B, ServiceTier as T};\n\n",
    );

    // Capabilities.
    s.push_str("/// A `supports_*` capability flag from the model data.\n");
    s.push_str("#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]\n#[non_exhaustive]\n");
    s.push_str("pub enum Capability {\n");
    for (i, c) in t.capabilities.iter().enumerate() {
        let _ = writeln!(s, "    /// `{c}`\n    {} = {i},", camel(c.trim_start_matches("supports_")));
    }
    s.push_str("}\n\nimpl Capability {\n    /// Every capability, in bit order.\n");
    let _ = writeln!(s, "    pub const ALL: [Capability; {}] = [", t.capabilities.len());
    for c in &t.capabilities {
        let _ = writeln!(s, "        Capability::{},", camel(c.trim_start_matches("supports_")));
    }
    s.push_str("    ];\n\n    /// The field name in the data (`supports_vision`).\n");
    s.push_str("    pub fn field_name(self) -> &'static str {\n        match self {\n");
    for c in &t.capabilities {
        let _ =
            writeln!(s, "            Capability::{} => \"{c}\",", camel(c.trim_start_matches("supports_")));
    }
    s.push_str("        }\n    }\n}\n\n");

    let _ = writeln!(s, "pub(crate) static PROVIDERS: [&str; {}] = [", t.providers.len());
    for p in &t.providers {
        let _ = writeln!(s, "    {p:?},");
    }
    s.push_str("];\n\n");
    let _ = writeln!(s, "pub(crate) static MODES: [&str; {}] = [", t.modes.len());
    for m in &t.modes {
        let _ = writeln!(s, "    {m:?},");
    }
    s.push_str("];\n\n");
    let _ = writeln!(s, "pub(crate) static PRICE_KEYS: [PriceKey; {}] = [", t.keys.len());
    for (base, tier, thr) in &t.keys {
        let _ = writeln!(s, "    k(B::{base}, T::{tier}, {thr}),");
    }
    s.push_str("];\n\n/// Distinct prices in yoctodollars (10^-24 USD) per unit.\n");
    let _ = writeln!(s, "pub(crate) static PRICE_VALUES: [u128; {}] = [", t.values.len());
    for v in &t.values {
        let _ = writeln!(s, "    {v},");
    }
    // Rows with identical price lists (regional and dated variants) share one run.
    let mut runs: BTreeMap<&[(usize, usize)], usize> = BTreeMap::new();
    let mut starts = Vec::with_capacity(t.rows.len());
    let mut flat: Vec<usize> = Vec::new();
    for r in &t.rows {
        let start = *runs.entry(&r.prices).or_insert_with(|| {
            let start = flat.len();
            flat.extend(r.prices.iter().map(|(k, v)| (k << 16) | v));
            start
        });
        starts.push(start);
    }
    s.push_str(
        "];\n\n/// Price runs: `key index << 16 | value index`; rows with equal prices share a run.\n",
    );
    let _ = writeln!(s, "pub(crate) static PRICES: [u32; {}] = [", flat.len());
    let mut line = String::new();
    for packed in &flat {
        let item = format!("{packed},");
        if line.len() + item.len() + 1 > 100 {
            let _ = writeln!(s, "    {}", line.trim_end());
            line.clear();
        }
        line.push_str(&item);
        line.push(' ');
    }
    if !line.is_empty() {
        let _ = writeln!(s, "    {}", line.trim_end());
    }
    s.push_str("];\n\n");
    s.push_str(
        "/// e(name, provider, mode, max input tokens, max output tokens (0 = unknown), capability bits,\n",
    );
    s.push_str("/// first price, price count), sorted by name.\n");
    let _ = writeln!(s, "pub(crate) static ENTRIES: [Entry; {}] = [", t.rows.len());
    for (r, start) in t.rows.iter().zip(&starts) {
        let _ = writeln!(
            s,
            "e({:?},{},{},{},{},{:#x},{start},{}),",
            r.name,
            r.provider,
            r.mode,
            r.max_input,
            r.max_output,
            r.flags,
            r.prices.len()
        );
    }
    s.push_str("];\n");
    s
}

fn camel(snake: &str) -> String {
    let mut out = String::new();
    for part in snake.split('_').filter(|p| !p.is_empty()) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.extend(first.to_uppercase());
            out.push_str(chars.as_str());
        }
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'N');
    }
    out
}

/// Every price field of one entry as `field → yoctodollars` (for `update-prices` reports).
pub(crate) fn price_fields(entry: &Value) -> BTreeMap<String, u128> {
    let mut out = BTreeMap::new();
    if let Value::Object(o) = entry {
        for (field, v) in o {
            if let Value::Number(n) = v
                && (parse_price_field(field).is_some() || field.contains("cost"))
                && let Ok(y) = to_yocto(n)
            {
                out.insert(field.clone(), y);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_split_into_bucket_tier_threshold() {
        assert_eq!(parse_price_field("input_cost_per_token"), Some(("InputToken", "Standard", 0)));
        assert_eq!(
            parse_price_field("cache_read_input_token_cost_above_200k_tokens_priority"),
            Some(("CacheRead", "Priority", 200_000))
        );
        assert_eq!(
            parse_price_field("cache_creation_input_token_cost_above_12hr_above_272k_tokens_batches"),
            Some(("CacheCreation12h", "Batch", 272_000))
        );
        assert_eq!(
            parse_price_field("cache_creation_input_token_cost_above_1hr"),
            Some(("CacheCreation1h", "Standard", 0))
        );
        assert_eq!(parse_price_field("input_cost_per_token_cache_hit"), Some(("CacheHit", "Standard", 0)));
        assert_eq!(parse_price_field("ocr_cost_per_page"), None);
        assert_eq!(parse_price_field("input_cost_per_video_per_second_above_8s_interval"), None);
    }

    #[test]
    fn prices_convert_exactly_or_fail() {
        let n = |s: &str| serde_json::from_str::<serde_json::Number>(s).unwrap();
        assert_eq!(to_yocto(&n("1.25e-06")).unwrap(), 1_250_000_000_000_000_000);
        assert_eq!(to_yocto(&n("3")).unwrap(), 3 * YOCTO_PER_USD);
        assert_eq!(to_yocto(&n("4.2000000000000006e-08")).unwrap(), 42_000_000_000_000_006);
        assert_eq!(yocto_to_decimal(42_000_000_000_000_006), "0.000000042000000000000006");
        // 1e-25 has 25 decimal places: not representable, codegen must refuse it.
        assert!(to_yocto(&n("1e-25")).is_err());
        assert!(to_yocto(&n("-1.0")).is_err());
    }

    #[test]
    fn build_rejects_bad_limits_and_sorts_rows() {
        let bad = serde_json::json!({"m": {"max_input_tokens": "lots"}});
        assert!(build(&bad).is_err());
        let ok = serde_json::json!({
            "zeta": {"litellm_provider": "p", "mode": "chat", "input_cost_per_token": 1e-6},
            "alpha": {"litellm_provider": "p", "supports_vision": true,
                      "tiered_pricing": [{"range": [0, 1000.0], "input_cost_per_token": 1e-6},
                                         {"range": [1000.0, 2000.0], "input_cost_per_token": 2e-6}]}
        });
        let t = build(&ok).unwrap();
        assert_eq!(t.rows[0].name, "alpha");
        assert_eq!(t.rows[0].prices.len(), 2);
        assert!(t.keys.contains(&("InputToken", "Standard", 1000)));
        assert_eq!(t.capabilities, vec!["supports_vision".to_owned()]);
    }
}
