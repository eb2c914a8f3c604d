//! The claims section of a study page: each claim's verdict and the evidence behind it, as
//! tables of the numbers claims.json holds (F1 and its differences x 100).

use super::claims::{SectionClaims, Verdict, MIN_PAIRS_FOR_TEST};
use super::document::{strong, text, Block};
use crate::corrupt::spec::LayerSpec;

/// A spec as the figures name it ("bottom 50%"), from its text in claims.json.
fn title(corrupt: &str) -> String {
    LayerSpec::parse(corrupt).map_or_else(|_| corrupt.to_string(), |s| s.title())
}

fn x100(v: Option<f64>) -> String {
    v.map_or("—".into(), |v| format!("{:.2}", v * 100.0))
}

fn signed_x100(v: Option<f64>) -> String {
    v.map_or("—".into(), |v| format!("{:+.2}", v * 100.0))
}

fn p_value(p: f64) -> String {
    if !p.is_finite() {
        "—".into()
    } else if p < 1e-3 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    }
}

fn verdict(n: usize, claim: &str, v: Verdict) -> Block {
    Block::Paragraph(vec![
        strong(format!("{n}. {claim}: {}.", v.text())),
        text(match v {
            Verdict::Holds => " Every comparison goes the claimed way.",
            Verdict::DoesNotHold => " At least one comparison goes the other way (marked below).",
            Verdict::NotEnoughRuns => {
                " Some setting the claim needs has no ok run, or nothing could be compared."
            }
        }),
    ])
}

fn undertrained(list: &[String]) -> Option<Block> {
    (!list.is_empty()).then(|| {
        Block::Paragraph(vec![text(format!(
            "This rests on {} possibly undertrained run{} (best epoch = last epoch run; listed in claims.json): a longer schedule may change the verdict.",
            list.len(),
            if list.len() == 1 { "" } else { "s" }
        ))])
    })
}

fn header(cols: &[&str]) -> Vec<String> {
    cols.iter().map(|c| c.to_string()).collect()
}

/// The three claims of one section, each a verdict, its evidence table and, when it rests on
/// them, the count of possibly undertrained runs.
pub(super) fn blocks(c: &SectionClaims) -> Vec<Block> {
    let mut out = Vec::new();
    let b = &c.below_clean;
    out.push(verdict(
        1,
        "Every corrupted setting scores below clean",
        b.verdict,
    ));
    let clean = match &b.clean {
        Some(c) => match (c.mean, c.std) {
            (Some(_), Some(_)) => {
                format!("{} ± {} over {} seeds", x100(c.mean), x100(c.std), c.runs)
            }
            (Some(_), None) => format!("{} (one seed)", x100(c.mean)),
            (None, _) => "no ok run".into(),
        },
        None => "not in the sweep".into(),
    };
    out.push(Block::Paragraph(vec![text(format!(
        "Clean: {clean}. Spread: the sample sd over seeds of (setting − clean), paired by seed."
    ))]));
    out.push(Block::Table(
        header(&[
            "setting",
            "ok runs",
            "mean F1 x 100",
            "minus clean",
            "spread (sd)",
            "seeds below clean",
            "below",
        ]),
        b.settings
            .iter()
            .map(|s| {
                vec![
                    title(&s.scores.corrupt),
                    s.scores.runs.to_string(),
                    x100(s.scores.mean),
                    signed_x100(s.difference),
                    x100(s.spread),
                    format!("{} of {}", s.seeds_below, s.paired_seeds),
                    match s.difference {
                        Some(d) if d < 0.0 => "yes".into(),
                        Some(_) => "NO".into(),
                        None => "—".into(),
                    },
                ]
            })
            .collect(),
    ));
    out.extend(undertrained(&b.possibly_undertrained));

    let m = &c.monotone;
    out.push(verdict(
        2,
        "The score falls monotonically with the corruption level, on each side (0%, that side's levels, 100%)",
        m.verdict,
    ));
    let rows: Vec<Vec<String>> = m
        .sides
        .iter()
        .flat_map(|s| {
            s.steps.iter().map(move |st| {
                vec![
                    s.side.clone(),
                    format!("{} → {}", title(&st.from), title(&st.to)),
                    signed_x100(Some(st.change)),
                    if st.monotone {
                        "falls or stays"
                    } else {
                        "RISES"
                    }
                    .into(),
                ]
            })
        })
        .collect();
    if !rows.is_empty() {
        out.push(Block::Table(
            header(&["side", "step", "change in mean F1 x 100", "monotone"]),
            rows,
        ));
    }
    let missing: Vec<String> = m
        .sides
        .iter()
        .flat_map(|s| &s.levels)
        .filter(|l| l.scores.mean.is_none())
        .map(|l| title(&l.scores.corrupt))
        .collect();
    if !missing.is_empty() {
        out.push(Block::Paragraph(vec![text(format!(
            "Levels without an ok run (skipped): {}.",
            missing.join(", ")
        ))]));
    }
    out.extend(undertrained(&m.possibly_undertrained));

    let t = &c.bottom_below_top;
    out.push(verdict(
        3,
        "Corrupting the bottom layers hurts more than corrupting the top ones, at every level",
        t.verdict,
    ));
    if t.levels.is_empty() {
        out.push(Block::Paragraph(vec![text(
            "The sweep has no level with both a bottom and a top setting.",
        )]));
    } else {
        out.push(Block::Paragraph(vec![text(format!(
            "Differences bottom − top of the same seed. The paired t-test (two-sided, as scipy.stats.ttest_rel) needs at least {MIN_PAIRS_FOR_TEST} paired seeds."
        ))]));
        out.push(Block::Table(
            header(&[
                "level",
                "paired seeds",
                "mean (bottom − top) x 100",
                "seeds with bottom < top",
                "t",
                "p (two-sided)",
            ]),
            t.levels
                .iter()
                .map(|l| {
                    let test = l.t_statistic.zip(l.p_value).zip(l.df);
                    vec![
                        l.level.clone(),
                        l.seeds.len().to_string(),
                        signed_x100(l.mean_difference),
                        format!("{} of {}", l.seeds_agree, l.seeds.len()),
                        test.map_or("—".into(), |((s, _), df)| {
                            if s.is_nan() {
                                format!("undefined, no spread (df {df})")
                            } else {
                                format!("{s:.3} (df {df})")
                            }
                        }),
                        test.map_or("—".into(), |((_, p), _)| p_value(p)),
                    ]
                })
                .collect(),
        ));
    }
    out.extend(undertrained(&t.possibly_undertrained));
    out
}
