//! The study: index.html and index.md (the same page), runs.csv, claims.json and figures/, one
//! section per model x dataset x setting. Everything comes from plan.json and each cell's
//! run.json, result.json, metrics.jsonl and analysis/; nothing reads a checkpoint, and no output
//! holds a timestamp, an absolute path or a machine name, so the same cells give the same bytes.

use super::claims::{self, Claims};
use super::document::{self as doc, code, link, strong, text, Block, Document};
use super::runs::{runs_csv, Outcome};
use super::section::{sections, Section};
use super::{evidence, figures, status_name, Aggregate, Protocol};
use crate::fsio;
use crate::run_dir::{RunDir, Status};
use crate::sweep::Plan;
use std::path::{Path, PathBuf};

/// Where the figures go, relative to the report folder.
pub(super) const FIGURES: &str = "figures";

/// Everything the study page shows, gathered from the cells.
pub(super) struct Study {
    /// The grid file's name (not its path: outputs hold no absolute paths).
    grid: String,
    cells: usize,
    finished: usize,
    protocol: Protocol,
    sections: Vec<Section>,
    claims: Claims,
    runs_csv: Vec<u8>,
    /// (cell, status, reason) of runs that collapsed, diverged or failed.
    flagged: Vec<(String, String, String)>,
    unfinished: Vec<String>,
    /// Finished cells whose best epoch is their last.
    undertrained: Vec<String>,
    /// Finished cells without analysis/.
    without_artefacts: Vec<String>,
}

pub(super) fn study(
    plan: &Plan,
    outcomes: &[Outcome],
    aggregates: &[Aggregate],
    protocol: Protocol,
) -> anyhow::Result<Study> {
    let sections = sections(outcomes, aggregates);
    let claims = claims::check(&sections, &format!("{protocol:?}").to_lowercase());
    let finished: Vec<&Outcome> = outcomes.iter().filter(|o| o.status.is_some()).collect();
    Ok(Study {
        grid: plan
            .grid
            .file_name()
            .map_or_else(|| "the grid".into(), |n| n.to_string_lossy().into_owned()),
        cells: outcomes.len(),
        finished: finished.len(),
        protocol,
        claims,
        runs_csv: runs_csv(outcomes)?,
        flagged: finished
            .iter()
            .filter_map(|o| match o.status {
                Some(s) if s != Status::Ok => Some((
                    o.cell.name.clone(),
                    status_name(s).to_string(),
                    o.reason.clone(),
                )),
                _ => None,
            })
            .collect(),
        unfinished: outcomes
            .iter()
            .filter(|o| o.status.is_none())
            .map(|o| o.cell.name.clone())
            .collect(),
        undertrained: finished
            .iter()
            .filter(|o| o.possibly_undertrained())
            .map(|o| o.cell.name.clone())
            .collect(),
        without_artefacts: finished
            .iter()
            .filter(|o| !RunDir::at(&o.cell.config.out).analysis_dir().is_dir())
            .map(|o| o.cell.name.clone())
            .collect(),
        sections,
    })
}

fn pct(v: f64) -> String {
    format!("{:.2}", v * 100.0)
}

/// The section's table: one row per corruption setting.
fn scores_table(section: &Section) -> Block {
    let clean = section.clean().and_then(|c| c.aggregate.mean_f1);
    let rows = section
        .settings
        .iter()
        .map(|s| {
            let a = &s.aggregate;
            let f1 = match (a.mean_f1, a.std_f1) {
                (Some(m), Some(sd)) => format!("{} ± {}", pct(m), pct(sd)),
                (Some(m), None) => pct(m),
                (None, _) => "—".into(),
            };
            let under = s.runs.iter().filter(|r| r.undertrained).count();
            vec![
                s.spec.title(),
                a.lr.map_or("—".into(), |l| format!("{l:e}")),
                format!(
                    "{} ok / {} flagged / {} unfinished",
                    a.runs_ok, a.runs_flagged, a.runs_unfinished
                ),
                f1,
                match (a.mean_f1, clean) {
                    (Some(m), Some(c)) if s.aggregate.corrupt != "none" => {
                        format!("{:+.2}", (m - c) * 100.0)
                    }
                    _ => "—".into(),
                },
                a.recovery_ratio.map_or("—".into(), |r| format!("{r:.3}")),
                format!("{under} of {}", s.runs.len()),
            ]
        })
        .collect();
    Block::Table(
        [
            "setting",
            "learning rate",
            "runs",
            "weighted F1 x 100 (mean ± sd)",
            "minus clean",
            "recovery (F1 / clean)",
            "possibly undertrained",
        ]
        .map(String::from)
        .to_vec(),
        rows,
    )
}

fn names(list: &[String]) -> Vec<Vec<doc::Span>> {
    list.iter().map(|n| vec![code(n.clone())]).collect()
}

/// Writes runs.csv, claims.json, figures/, index.md and index.html into `out`; returns the
/// page and data files (the figures are in figures/).
pub(super) fn write(study: &Study, out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let figures_dir = out.join(FIGURES);
    std::fs::create_dir_all(&figures_dir).map_err(|e| {
        crate::error::user(format!("{}: cannot create ({e})", figures_dir.display()))
    })?;
    let mut written = Vec::new();
    let runs = out.join("runs.csv");
    fsio::write_atomic(&runs, &study.runs_csv)?;
    written.push(runs);
    let claims = out.join("claims.json");
    fsio::write_json(&claims, &study.claims)?;
    written.push(claims);

    let mut page = Document {
        title: format!("Healing study: {}", study.grid),
        ..Default::default()
    };
    page.paragraph(vec![text(format!(
        "{} cells ({} finished, {} unfinished). Scores are the weighted F1 on the evaluation split; {}. Collapsed, diverged and failed runs are left out of every mean and listed at the end.",
        study.cells,
        study.finished,
        study.cells - study.finished,
        study.protocol.describe()
    ))]);
    page.paragraph(vec![
        text("Data: "),
        link("runs.csv", "runs.csv"),
        text(" (one row per cell), "),
        link("claims.json", "claims.json"),
        text(" (the claims' numbers), "),
        link("report.md", "report.md"),
        text(" and "),
        link("report.csv", "report.csv"),
        text(" (the Table 2-style tables)."),
    ]);
    page.push(Block::Heading(1, "Contents".into(), "contents".into()));
    let mut toc: Vec<Vec<doc::Span>> = study
        .sections
        .iter()
        .map(|s| vec![link(s.title(), format!("#{}", s.slug()))])
        .collect();
    toc.push(vec![link("Runs to look at", "#runs-to-look-at")]);
    page.push(Block::List(toc));

    for (section, claims) in study.sections.iter().zip(&study.claims.sections) {
        let id = section.slug();
        page.push(Block::Heading(1, section.title(), id.clone()));
        page.push(Block::Heading(2, "Scores".into(), format!("{id}-scores")));
        page.push(scores_table(section));
        page.push(figures::f1_chart(section, &figures_dir)?);
        page.push(Block::Heading(
            2,
            "The paper's claims".into(),
            format!("{id}-claims"),
        ));
        page.blocks.extend(evidence::blocks(claims));
        let drawn = figures::draw(section, &figures_dir)?;
        for (heading, anchor, blocks) in drawn {
            page.push(Block::Heading(2, heading.into(), format!("{id}-{anchor}")));
            page.blocks.extend(blocks);
        }
    }

    page.push(Block::Heading(
        1,
        "Runs to look at".into(),
        "runs-to-look-at".into(),
    ));
    page.paragraph(vec![
        strong("Possibly undertrained"),
        text(format!(
            " (the best epoch is the last one run, so the score may still have been rising; a longer schedule could change the picture): {} of {} finished runs.",
            study.undertrained.len(),
            study.finished
        )),
    ]);
    page.push(Block::List(names(&study.undertrained)));
    page.paragraph(vec![
        strong("Flagged"),
        text(format!(
            " (collapsed, diverged or failed; left out of every mean): {}.",
            study.flagged.len()
        )),
    ]);
    page.push(Block::List(
        study
            .flagged
            .iter()
            .map(|(c, s, r)| vec![code(c.clone()), text(format!(": {s} ({r})"))])
            .collect(),
    ));
    page.paragraph(vec![
        strong("Unfinished"),
        text(format!(
            " (no result.json yet): {}.",
            study.unfinished.len()
        )),
    ]);
    page.push(Block::List(names(&study.unfinished)));
    page.paragraph(vec![
        strong("Without analysis artefacts"),
        text(" (no "),
        code("analysis/"),
        text(format!(
            " folder: run with analysis-examples > 0; their figures say \"no artefacts\"): {}.",
            study.without_artefacts.len()
        )),
    ]);
    page.push(Block::List(names(&study.without_artefacts)));
    page.blocks
        .retain(|b| !matches!(b, Block::List(items) if items.is_empty()));

    for (name, body) in [
        ("index.md", doc::markdown(&page)),
        ("index.html", doc::html(&page)),
    ] {
        let path = out.join(name);
        fsio::write_atomic(&path, body.as_bytes())?;
        written.push(path);
    }
    Ok(written)
}
