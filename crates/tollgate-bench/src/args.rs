//! Minimal `--flag value` parsing for the bench binaries (no CLI framework needed).

/// Command-line flags: `--name value` pairs and bare `--name` switches.
#[derive(Debug, Default)]
pub struct Args {
    pairs: Vec<(String, Option<String>)>,
}

impl Args {
    /// Parses `args` (without the program name). A flag followed by another flag (or nothing)
    /// is a switch; `--name=value` is accepted too.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
        let mut pairs = Vec::new();
        let mut it = args.into_iter().peekable();
        while let Some(a) = it.next() {
            let Some(name) = a.strip_prefix("--") else {
                return Err(format!("unexpected argument `{a}`"));
            };
            if let Some((n, v)) = name.split_once('=') {
                pairs.push((n.to_owned(), Some(v.to_owned())));
            } else if it.peek().is_some_and(|next| !next.starts_with("--")) {
                pairs.push((name.to_owned(), it.next()));
            } else {
                pairs.push((name.to_owned(), None));
            }
        }
        Ok(Args { pairs })
    }

    /// The last value given for `name`.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.pairs.iter().rev().find(|(n, _)| n == name).and_then(|(_, v)| v.as_deref())
    }

    /// Every value given for `name`, in order.
    pub fn values(&self, name: &str) -> Vec<&str> {
        self.pairs.iter().filter(|(n, _)| n == name).filter_map(|(_, v)| v.as_deref()).collect()
    }

    pub fn flag(&self, name: &str) -> bool {
        self.pairs.iter().any(|(n, _)| n == name)
    }

    /// `name` parsed as `T`, or `default` when absent.
    pub fn parsed<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.value(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("--{name}: cannot parse `{v}`")),
        }
    }

    /// Flags given that are not in `known`.
    pub fn unknown(&self, known: &[&str]) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(n, _)| !known.contains(&n.as_str()))
            .map(|(n, _)| format!("--{n}"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Args {
        Args::parse(s.split_whitespace().map(String::from)).unwrap()
    }

    #[test]
    fn pairs_switches_and_repeats() {
        let a = parse("--port 0 --json --header a:1 --header b:2 --mode=stream");
        assert_eq!(a.value("port"), Some("0"));
        assert!(a.flag("json"));
        assert_eq!(a.value("json"), None);
        assert_eq!(a.values("header"), vec!["a:1", "b:2"]);
        assert_eq!(a.value("mode"), Some("stream"));
        assert_eq!(a.parsed("port", 9u16).unwrap(), 0);
        assert_eq!(a.parsed("missing", 9u16).unwrap(), 9);
        assert!(a.parsed::<u16>("mode", 0).is_err());
        assert_eq!(a.unknown(&["port", "json", "header"]), vec!["--mode".to_owned()]);
        assert!(Args::parse(["stray".to_owned()]).is_err());
    }
}
