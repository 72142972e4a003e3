//! Choosing one deployment of a group for one request: filtering (tags, context window,
//! cooldowns, limits) and the strategies. Allocation-free for groups of up to [`INLINE`]
//! deployments per priority tier.

use crate::config::RoutingStrategy;
use crate::rng;
use crate::state::DeploymentLoad;

/// Candidates kept on the stack before spilling to the heap.
pub(crate) const INLINE: usize = 16;

/// What the strategies need to know about one candidate.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Cand {
    pub(crate) deployment: usize,
    pub(crate) load: DeploymentLoad,
    /// Simple-shuffle weight.
    pub(crate) weight: f64,
    /// Estimated cost of this request on the deployment (`INFINITY`: unknown).
    pub(crate) cost: f64,
}

/// A small vector of candidates: inline up to [`INLINE`], then a heap spill.
#[derive(Debug)]
pub(crate) struct Cands {
    len: usize,
    inline: [Cand; INLINE],
    spill: Vec<Cand>,
}

impl Cands {
    pub(crate) fn new() -> Self {
        Cands { len: 0, inline: [Cand::default(); INLINE], spill: Vec::new() }
    }

    pub(crate) fn clear(&mut self) {
        self.len = 0;
        self.spill.clear();
    }

    pub(crate) fn push(&mut self, c: Cand) {
        if self.len < INLINE {
            self.inline[self.len] = c;
        } else {
            self.spill.push(c);
        }
        self.len += 1;
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Cand> {
        self.inline[..self.len.min(INLINE)].iter().chain(self.spill.iter())
    }
}

/// Inputs of a strategy decision besides the candidates.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PickCtx {
    pub(crate) strategy: RoutingStrategy,
    pub(crate) stream: bool,
    pub(crate) latency_buffer: f64,
}

/// Picks one candidate (`cands` must not be empty). Ties are broken uniformly at random.
pub(crate) fn pick(cands: &Cands, cx: &PickCtx) -> usize {
    match cx.strategy {
        RoutingStrategy::SimpleShuffle => weighted(cands),
        RoutingStrategy::LeastBusy => min_by(cands, |c| c.load.in_flight as f64, 0.0),
        RoutingStrategy::UsageBased => {
            // Tokens first; requests break ties (a deployment with no token use yet but many requests
            // in the minute is busier than an idle one).
            min_by(cands, |c| c.load.tpm_used as f64 * 1e6 + c.load.rpm_used as f64, 0.0)
        }
        RoutingStrategy::LatencyBased => {
            let stream = cx.stream;
            min_by(
                cands,
                |c| if stream && c.load.ttft_ms > 0.0 { c.load.ttft_ms } else { c.load.latency_ms },
                cx.latency_buffer,
            )
        }
        RoutingStrategy::CostBased => min_by(cands, |c| c.cost, 0.0),
    }
}

fn weighted(cands: &Cands) -> usize {
    let total: f64 = cands.iter().map(|c| c.weight.max(0.0)).sum();
    if !(total > 0.0 && total.is_finite()) {
        return uniform(cands);
    }
    let mut r = rng::next_f64() * total;
    let mut last = 0;
    for c in cands.iter() {
        let w = c.weight.max(0.0);
        if w > 0.0 {
            last = c.deployment;
            if r < w {
                return c.deployment;
            }
            r -= w;
        }
    }
    last
}

fn uniform(cands: &Cands) -> usize {
    let n = rng::below(cands.len);
    cands.iter().nth(n).map_or(0, |c| c.deployment)
}

/// The candidate with the smallest key; with `buffer > 0`, a uniform choice among those within
/// `(1 + buffer) × smallest`. Exact ties are always broken at random.
fn min_by(cands: &Cands, key: impl Fn(&Cand) -> f64, buffer: f64) -> usize {
    let mut best = f64::INFINITY;
    for c in cands.iter() {
        let k = key(c);
        if k < best {
            best = k;
        }
    }
    let limit = if best.is_finite() && buffer > 0.0 { best * (1.0 + buffer) } else { best };
    // Reservoir sampling over the qualifying candidates: one pass, no buffer.
    let mut chosen = None;
    let mut seen = 0usize;
    for c in cands.iter() {
        let k = key(c);
        if k <= limit || (k.is_nan() && best.is_nan()) || (best.is_infinite() && k.is_infinite()) {
            seen += 1;
            if rng::below(seen) == 0 {
                chosen = Some(c.deployment);
            }
        }
    }
    chosen.unwrap_or_else(|| uniform(cands))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cands(items: &[(usize, f64, DeploymentLoad, f64)]) -> Cands {
        let mut c = Cands::new();
        for &(deployment, weight, load, cost) in items {
            c.push(Cand { deployment, load, weight, cost });
        }
        c
    }

    #[test]
    fn spills_past_inline_capacity() {
        let mut c = Cands::new();
        for i in 0..40 {
            c.push(Cand { deployment: i, ..Cand::default() });
        }
        assert_eq!(c.iter().map(|c| c.deployment).collect::<Vec<_>>(), (0..40).collect::<Vec<_>>());
        c.clear();
        assert!(c.is_empty());
    }

    #[test]
    fn latency_buffer_spreads_among_near_fastest() {
        rng::seed(3);
        let l = |ms| DeploymentLoad { latency_ms: ms, ..DeploymentLoad::default() };
        let c = cands(&[(0, 1.0, l(100.0), 0.0), (1, 1.0, l(105.0), 0.0), (2, 1.0, l(300.0), 0.0)]);
        let cx = PickCtx { strategy: RoutingStrategy::LatencyBased, stream: false, latency_buffer: 0.1 };
        let mut counts = [0; 3];
        for _ in 0..2000 {
            counts[pick(&c, &cx)] += 1;
        }
        assert_eq!(counts[2], 0);
        assert!(counts[0] > 800 && counts[1] > 800, "{counts:?}");
    }
}
