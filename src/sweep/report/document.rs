//! A small document model for the study's index, rendered twice with the same content:
//! index.md (markdown) and index.html (one self-contained page: inline CSS, images by relative
//! link, no script, nothing fetched from elsewhere).

/// A run of inline text.
#[derive(Debug, Clone)]
pub(super) enum Span {
    Text(String),
    Strong(String),
    Code(String),
    /// Text, relative target.
    Link(String, String),
}

pub(super) fn text(s: impl Into<String>) -> Span {
    Span::Text(s.into())
}

pub(super) fn strong(s: impl Into<String>) -> Span {
    Span::Strong(s.into())
}

pub(super) fn code(s: impl Into<String>) -> Span {
    Span::Code(s.into())
}

pub(super) fn link(s: impl Into<String>, target: impl Into<String>) -> Span {
    Span::Link(s.into(), target.into())
}

#[derive(Debug, Clone)]
pub(super) enum Block {
    /// Level 1-3, text, anchor id.
    Heading(u8, String, String),
    Paragraph(Vec<Span>),
    List(Vec<Vec<Span>>),
    /// Header, rows (each as long as the header).
    Table(Vec<String>, Vec<Vec<String>>),
    /// A PNG in figures/ (relative path), its alt text and the caption under it.
    Figure {
        src: String,
        alt: String,
        caption: String,
    },
    /// A figure that could not be drawn: its caption and why.
    Missing {
        caption: String,
        why: String,
    },
}

/// A whole page: its title and blocks.
#[derive(Debug, Clone, Default)]
pub(super) struct Document {
    pub(super) title: String,
    pub(super) blocks: Vec<Block>,
}

impl Document {
    pub(super) fn push(&mut self, b: Block) {
        self.blocks.push(b);
    }

    pub(super) fn paragraph(&mut self, spans: Vec<Span>) {
        self.blocks.push(Block::Paragraph(spans));
    }
}

/// Markdown needs `|` escaped in table cells and no line breaks inside one.
fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn md_spans(spans: &[Span]) -> String {
    spans
        .iter()
        .map(|s| match s {
            Span::Text(t) => t.clone(),
            Span::Strong(t) => format!("**{t}**"),
            Span::Code(t) => format!("`{t}`"),
            Span::Link(t, href) => format!("[{t}]({href})"),
        })
        .collect()
}

pub(super) fn markdown(doc: &Document) -> String {
    let mut md = format!("# {}\n", doc.title);
    for b in &doc.blocks {
        md.push('\n');
        match b {
            Block::Heading(level, t, id) => {
                md.push_str(&format!(
                    "<a id=\"{id}\"></a>\n{} {t}\n",
                    "#".repeat(*level as usize + 1)
                ));
            }
            Block::Paragraph(spans) => {
                md.push_str(&md_spans(spans));
                md.push('\n');
            }
            Block::List(items) => {
                for i in items {
                    md.push_str(&format!("- {}\n", md_spans(i)));
                }
            }
            Block::Table(header, rows) => {
                let row = |cells: &[String]| {
                    let cells: Vec<String> = cells.iter().map(|c| md_cell(c)).collect();
                    format!("| {} |\n", cells.join(" | "))
                };
                md.push_str(&row(header));
                md.push_str(&format!("|{}\n", "---|".repeat(header.len())));
                for r in rows {
                    md.push_str(&row(r));
                }
            }
            Block::Figure { src, alt, caption } => {
                md.push_str(&format!("![{alt}]({src})\n\n{caption}\n"));
            }
            Block::Missing { caption, why } => {
                md.push_str(&format!("> {why}\n\n{caption}\n"));
            }
        }
    }
    md
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

fn html_spans(spans: &[Span]) -> String {
    spans
        .iter()
        .map(|s| match s {
            Span::Text(t) => escape(t),
            Span::Strong(t) => format!("<strong>{}</strong>", escape(t)),
            Span::Code(t) => format!("<code>{}</code>", escape(t)),
            Span::Link(t, href) => format!("<a href=\"{}\">{}</a>", escape(href), escape(t)),
        })
        .collect()
}

const CSS: &str = "
body { font: 15px/1.5 system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; color: #1d1d1f; background: #fff; margin: 0; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 32px 64px; }
h1 { font-size: 1.7em; margin: 0.4em 0 0.6em; }
h2 { font-size: 1.35em; margin-top: 2.2em; padding-top: 0.6em; border-top: 2px solid #e5e5e5; }
h3 { font-size: 1.1em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d8d8d8; padding: 4px 9px; text-align: left; vertical-align: top; }
th { background: #f4f4f6; }
tr:nth-child(even) td { background: #fafafa; }
figure { margin: 1.2em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #444; margin-top: 0.4em; max-width: 900px; }
.missing { border: 1px dashed #bbb; padding: 1.2em; color: #666; background: #fafafa; }
code { font-family: ui-monospace, 'SFMono-Regular', Menlo, Consolas, monospace; font-size: 0.9em; background: #f4f4f6; padding: 0 3px; }
a { color: #0b5cad; }
";

pub(super) fn html(doc: &Document) -> String {
    let mut h = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n<h1>{}</h1>\n",
        escape(&doc.title),
        escape(&doc.title)
    );
    for b in &doc.blocks {
        match b {
            Block::Heading(level, t, id) => {
                let n = *level + 1;
                h.push_str(&format!("<h{n} id=\"{}\">{}</h{n}>\n", escape(id), escape(t)));
            }
            Block::Paragraph(spans) => h.push_str(&format!("<p>{}</p>\n", html_spans(spans))),
            Block::List(items) => {
                h.push_str("<ul>\n");
                for i in items {
                    h.push_str(&format!("<li>{}</li>\n", html_spans(i)));
                }
                h.push_str("</ul>\n");
            }
            Block::Table(header, rows) => {
                h.push_str("<table>\n<thead><tr>");
                for c in header {
                    h.push_str(&format!("<th>{}</th>", escape(c)));
                }
                h.push_str("</tr></thead>\n<tbody>\n");
                for r in rows {
                    h.push_str("<tr>");
                    for c in r {
                        h.push_str(&format!("<td>{}</td>", escape(c)));
                    }
                    h.push_str("</tr>\n");
                }
                h.push_str("</tbody>\n</table>\n");
            }
            Block::Figure { src, alt, caption } => h.push_str(&format!(
                "<figure>\n<img src=\"{}\" alt=\"{}\">\n<figcaption>{}</figcaption>\n</figure>\n",
                escape(src),
                escape(alt),
                escape(caption)
            )),
            Block::Missing { caption, why } => h.push_str(&format!(
                "<figure>\n<div class=\"missing\">{}</div>\n<figcaption>{}</figcaption>\n</figure>\n",
                escape(why),
                escape(caption)
            )),
        }
    }
    h.push_str("</main>\n</body>\n</html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_renderings_carry_the_same_content() {
        let doc = Document {
            title: "Study <x>".into(),
            blocks: vec![
                Block::Heading(1, "A & B".into(), "a-b".into()),
                Block::Paragraph(vec![text("see "), link("runs.csv", "runs.csv")]),
                Block::Table(vec!["a|b".into()], vec![vec!["1".into()]]),
                Block::Figure {
                    src: "figures/f.png".into(),
                    alt: "f".into(),
                    caption: "what f shows".into(),
                },
            ],
        };
        let md = markdown(&doc);
        assert!(md.contains("## A & B") && md.contains("[runs.csv](runs.csv)"));
        assert!(md.contains("| a\\|b |") && md.contains("![f](figures/f.png)"));
        let html = html(&doc);
        assert!(html.contains("<h1>Study &lt;x&gt;</h1>") && html.contains("id=\"a-b\">A &amp; B"));
        assert!(html.contains("<img src=\"figures/f.png\"") && !html.contains("<script"));
    }
}
