//! The paper's three claims checked on a sweep, per section (claims.json):
//!
//! 1. every corrupted setting scores below clean (difference of means; its spread over seeds,
//!    as the sample std of the per-seed differences, paired by seed);
//! 2. the score falls monotonically with the corruption level, per side (0%, each level of
//!    that side, 100%; which steps rise);
//! 3. corrupting the bottom layers hurts more than the top ones at every level (differences
//!    bottom - top paired by seed: their mean, how many seeds agree, and a two-sided paired
//!    t-test where at least 3 seeds pair).
//!
//! A claim holds when every comparison it makes goes the claimed way (a mean difference below
//! 0, a step that does not rise); it does not hold when one goes the other way; "not enough
//! runs" when nothing could be compared, or a setting it needs has no ok run and nothing
//! contradicts it. Scores are the reported weighted F1 of the ok runs at each setting's chosen
//! learning rate. Every claim lists the possibly undertrained runs it rests on (best epoch =
//! last epoch run).

use super::mean_std;
use super::section::{figure_order, Section, SeedRun, Setting};
use crate::corrupt::spec::{LayerSpec, Side};
use crate::stats::paired_t_test;
use serde::Serialize;

/// claims.json's layout version.
const CLAIMS_SCHEMA_VERSION: u32 = 1;

/// The fewest seed pairs for the paired t-test.
pub(super) const MIN_PAIRS_FOR_TEST: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(super) enum Verdict {
    #[serde(rename = "holds")]
    Holds,
    #[serde(rename = "does not hold")]
    DoesNotHold,
    #[serde(rename = "not enough runs")]
    NotEnoughRuns,
}

impl Verdict {
    /// A counter-example decides; else a gap in the runs; else it holds.
    fn judge(contradicted: bool, missing: bool, compared: bool) -> Verdict {
        if contradicted {
            Verdict::DoesNotHold
        } else if missing || !compared {
            Verdict::NotEnoughRuns
        } else {
            Verdict::Holds
        }
    }

    pub(super) fn text(self) -> &'static str {
        match self {
            Verdict::Holds => "holds",
            Verdict::DoesNotHold => "does not hold",
            Verdict::NotEnoughRuns => "not enough runs",
        }
    }
}

/// claims.json.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Claims {
    pub(super) schema_version: u32,
    pub(super) protocol: String,
    pub(super) sections: Vec<SectionClaims>,
}

#[derive(Debug, Clone, Serialize)]
pub(super) struct SectionClaims {
    pub(super) model: String,
    pub(super) dataset: String,
    pub(super) method: String,
    pub(super) train: String,
    pub(super) pooling: String,
    pub(super) below_clean: BelowClean,
    pub(super) monotone: Monotone,
    pub(super) bottom_below_top: BottomBelowTop,
}

/// A setting's scores over seeds.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Scores {
    pub(super) corrupt: String,
    pub(super) lr: Option<f64>,
    pub(super) runs: usize,
    pub(super) mean: Option<f64>,
    pub(super) std: Option<f64>,
}

/// Claim 1.
#[derive(Debug, Clone, Serialize)]
pub(super) struct BelowClean {
    pub(super) verdict: Verdict,
    pub(super) clean: Option<Scores>,
    pub(super) settings: Vec<VsClean>,
    pub(super) possibly_undertrained: Vec<String>,
}

/// One corrupted setting against clean.
#[derive(Debug, Clone, Serialize)]
pub(super) struct VsClean {
    pub(super) scores: Scores,
    /// mean - clean mean.
    pub(super) difference: Option<f64>,
    /// Seeds with an ok run in both.
    pub(super) paired_seeds: usize,
    /// Sample std over paired seeds of (setting - clean).
    pub(super) spread: Option<f64>,
    /// Paired seeds where the setting scored below clean.
    pub(super) seeds_below: usize,
}

/// Claim 2.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Monotone {
    pub(super) verdict: Verdict,
    pub(super) sides: Vec<SideSteps>,
    pub(super) possibly_undertrained: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(super) struct SideSteps {
    pub(super) side: String,
    /// 0%, this side's levels ascending, 100%: those the sweep has.
    pub(super) levels: Vec<Level>,
    /// Between consecutive levels with a mean.
    pub(super) steps: Vec<Step>,
}

#[derive(Debug, Clone, Serialize)]
pub(super) struct Level {
    pub(super) level_percent: f64,
    pub(super) scores: Scores,
}

#[derive(Debug, Clone, Serialize)]
pub(super) struct Step {
    pub(super) from: String,
    pub(super) to: String,
    /// mean(to) - mean(from).
    pub(super) change: f64,
    /// change <= 0.
    pub(super) monotone: bool,
}

/// Claim 3.
#[derive(Debug, Clone, Serialize)]
pub(super) struct BottomBelowTop {
    pub(super) verdict: Verdict,
    pub(super) levels: Vec<Paired>,
    pub(super) possibly_undertrained: Vec<String>,
}

/// Bottom against top at one level, paired by seed.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Paired {
    pub(super) level: String,
    pub(super) bottom: String,
    pub(super) top: String,
    pub(super) seeds: Vec<u64>,
    /// bottom - top per seed.
    pub(super) differences: Vec<f64>,
    pub(super) mean_difference: Option<f64>,
    /// Seeds where bottom scored below top.
    pub(super) seeds_agree: usize,
    /// The two-sided paired t-test (scipy.stats.ttest_rel(bottom, top)), with at least
    /// [`MIN_PAIRS_FOR_TEST`] pairs.
    pub(super) t_statistic: Option<f64>,
    pub(super) p_value: Option<f64>,
    pub(super) df: Option<usize>,
}

fn scores(s: &Setting) -> Scores {
    let (mean, std) = mean_std(&s.scores());
    Scores {
        corrupt: s.corrupt().to_string(),
        lr: s.aggregate.lr,
        runs: s.runs.len(),
        mean,
        std,
    }
}

/// The runs of `a` and `b` with the same seed, in seed order.
fn pairs<'s>(a: &'s Setting, b: &'s Setting) -> Vec<(&'s SeedRun, &'s SeedRun)> {
    a.runs
        .iter()
        .filter_map(|x| b.runs.iter().find(|y| y.seed == x.seed).map(|y| (x, y)))
        .collect()
}

/// The possibly undertrained runs among `runs`, sorted and without repeats.
fn undertrained<'r>(runs: impl IntoIterator<Item = &'r SeedRun>) -> Vec<String> {
    let mut v: Vec<String> = runs
        .into_iter()
        .filter(|r| r.undertrained)
        .map(|r| r.cell.clone())
        .collect();
    v.sort();
    v.dedup();
    v
}

fn below_clean(section: &Section) -> BelowClean {
    let clean = section.clean();
    let corrupted: Vec<&Setting> = section
        .settings
        .iter()
        .filter(|s| !matches!(s.spec, LayerSpec::None))
        .collect();
    let settings: Vec<VsClean> = corrupted
        .iter()
        .map(|s| {
            let sc = scores(s);
            let clean_mean = clean.and_then(|c| scores(c).mean);
            let paired: Vec<f64> = clean
                .map(|c| pairs(s, c).iter().map(|(x, y)| x.score - y.score).collect())
                .unwrap_or_default();
            VsClean {
                difference: sc.mean.zip(clean_mean).map(|(m, c)| m - c),
                paired_seeds: paired.len(),
                spread: mean_std(&paired).1,
                seeds_below: paired.iter().filter(|d| **d < 0.0).count(),
                scores: sc,
            }
        })
        .collect();
    let clean_scores = clean.map(scores);
    let has_clean = clean_scores.as_ref().is_some_and(|c| c.mean.is_some());
    let verdict = Verdict::judge(
        settings
            .iter()
            .any(|s| s.difference.is_some_and(|d| d >= 0.0)),
        !has_clean || settings.iter().any(|s| s.difference.is_none()),
        settings.iter().any(|s| s.difference.is_some()),
    );
    let used = corrupted.iter().chain(clean.iter()).flat_map(|s| &s.runs);
    BelowClean {
        verdict,
        clean: clean_scores,
        possibly_undertrained: undertrained(used),
        settings,
    }
}

fn monotone(section: &Section) -> Monotone {
    let mut sides = Vec::new();
    let mut used: Vec<&SeedRun> = Vec::new();
    let (mut contradicted, mut missing, mut compared) = (false, false, false);
    for side in [Side::Bottom, Side::Top] {
        let mut chain: Vec<&Setting> = section
            .settings
            .iter()
            .filter(|s| {
                s.spec.share_percent().is_some()
                    && (s.spec.side().is_none() || s.spec.side() == Some(side))
            })
            .collect();
        chain.sort_by(|a, b| figure_order(&a.spec, &b.spec));
        let levels: Vec<Level> = chain
            .iter()
            .map(|s| Level {
                level_percent: s.spec.share_percent().unwrap_or_default(),
                scores: scores(s),
            })
            .collect();
        let with_mean: Vec<(&str, f64)> = levels
            .iter()
            .filter_map(|l| Some((l.scores.corrupt.as_str(), l.scores.mean?)))
            .collect();
        let steps: Vec<Step> = with_mean
            .windows(2)
            .map(|w| {
                let change = w[1].1 - w[0].1;
                Step {
                    from: w[0].0.into(),
                    to: w[1].0.into(),
                    change,
                    monotone: change <= 0.0,
                }
            })
            .collect();
        contradicted |= steps.iter().any(|s| !s.monotone);
        missing |= levels.iter().any(|l| l.scores.mean.is_none());
        compared |= !steps.is_empty();
        used.extend(chain.iter().flat_map(|s| &s.runs));
        sides.push(SideSteps {
            side: side.name().into(),
            levels,
            steps,
        });
    }
    Monotone {
        verdict: Verdict::judge(contradicted, missing, compared),
        sides,
        possibly_undertrained: undertrained(used),
    }
}

fn bottom_below_top(section: &Section) -> BottomBelowTop {
    let mut levels = Vec::new();
    let mut used: Vec<&SeedRun> = Vec::new();
    for bottom in section
        .settings
        .iter()
        .filter(|s| s.spec.side() == Some(Side::Bottom))
    {
        let LayerSpec::Bottom(amount) = &bottom.spec else {
            continue;
        };
        let Some(top) = section.setting(&LayerSpec::Top(*amount)) else {
            continue;
        };
        let p = pairs(bottom, top);
        used.extend(p.iter().flat_map(|(b, t)| [*b, *t]));
        let differences: Vec<f64> = p.iter().map(|(b, t)| b.score - t.score).collect();
        let test = (p.len() >= MIN_PAIRS_FOR_TEST)
            .then(|| {
                let b: Vec<f64> = p.iter().map(|(b, _)| b.score).collect();
                let t: Vec<f64> = p.iter().map(|(_, t)| t.score).collect();
                paired_t_test(&b, &t)
            })
            .flatten();
        levels.push(Paired {
            level: bottom.spec.level(),
            bottom: bottom.corrupt().into(),
            top: top.corrupt().into(),
            seeds: p.iter().map(|(b, _)| b.seed).collect(),
            mean_difference: mean_std(&differences).0,
            seeds_agree: differences.iter().filter(|d| **d < 0.0).count(),
            differences,
            t_statistic: test.map(|t| t.statistic),
            p_value: test.map(|t| t.p_value),
            df: test.map(|t| t.df),
        });
    }
    let verdict = Verdict::judge(
        levels
            .iter()
            .any(|l| l.mean_difference.is_some_and(|d| d >= 0.0)),
        levels.iter().any(|l| l.mean_difference.is_none()),
        levels.iter().any(|l| l.mean_difference.is_some()),
    );
    BottomBelowTop {
        verdict,
        levels,
        possibly_undertrained: undertrained(used),
    }
}

/// The three claims for every section.
pub(super) fn check(sections: &[Section], protocol: &str) -> Claims {
    Claims {
        schema_version: CLAIMS_SCHEMA_VERSION,
        protocol: protocol.into(),
        sections: sections
            .iter()
            .map(|s| SectionClaims {
                model: s.model.clone(),
                dataset: s.dataset.clone(),
                method: s.method.clone(),
                train: s.train.clone(),
                pooling: s.pooling.clone(),
                below_clean: below_clean(s),
                monotone: monotone(s),
                bottom_below_top: bottom_below_top(s),
            })
            .collect(),
    }
}
