//! The study's report page in a real headless browser (Debian's chromium, which `.ci/setup`
//! installs): a tiny four-setting sweep, `heal report`, then index.html opened from disk with
//! no server. Every image must load (natural width > 0) and the page must log nothing to the
//! console.

mod common;

use common::{heal_bin, tiny_grid};
use std::path::{Path, PathBuf};
use std::process::Command;

fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Ok(out) = Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
        {
            let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if out.status.success() && !path.is_empty() {
                return PathBuf::from(path);
            }
        }
    }
    panic!("no chromium on PATH: run `bash .ci/setup` (it installs Debian's chromium)");
}

fn heal(args: &[&str]) {
    let out = Command::new(heal_bin()).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "heal {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn tiny_study(dir: &Path) -> PathBuf {
    let grid = tiny_grid(
        dir,
        "epochs = 2\nbatch-size = 8\ndevice = \"cpu\"\nthreads = 1",
        "corrupt = [\"none\", \"bottom:50%\", \"top:50%\", \"all\"]\nseed = [1]",
    );
    let sweep = dir.join("sweep");
    heal(&[
        "sweep",
        "--config",
        grid.to_str().unwrap(),
        "--out",
        sweep.to_str().unwrap(),
    ]);
    let report = dir.join("report");
    heal(&[
        "report",
        sweep.to_str().unwrap(),
        "--out",
        report.to_str().unwrap(),
    ]);
    report
}

/// Runs after the page's load event: every image's natural width, into a <pre> that
/// --dump-dom prints.
const PROBE: &str = r#"<script>
window.addEventListener('load', () => {
  const found = [...document.images].map(i => [i.getAttribute('src'), i.naturalWidth]);
  const pre = document.createElement('pre');
  pre.id = 'heal-probe';
  pre.textContent = JSON.stringify(found);
  document.body.appendChild(pre);
});
</script>"#;

#[test]
fn study_page_loads_every_image_in_a_headless_browser() {
    let browser = chromium();
    let tmp = tempfile::tempdir().unwrap();
    let report = tiny_study(tmp.path());
    let index = report.join("index.html");
    let html = std::fs::read_to_string(&index).expect("heal report writes index.html");
    let images_in_page = html.matches("<img ").count();
    assert!(
        images_in_page >= 4,
        "index.html shows {images_in_page} images"
    );

    // The probe goes into a copy beside the original, so relative links resolve the same way
    // and the report itself stays as heal wrote it.
    let probe = report.join("probe.html");
    let body_end = html.rfind("</body>").expect("index.html has </body>");
    std::fs::write(
        &probe,
        format!("{}{PROBE}{}", &html[..body_end], &html[body_end..]),
    )
    .unwrap();
    let profile = tmp.path().join("chromium-profile");
    let out = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=10000",
            &format!("--user-data-dir={}", profile.display()),
            "--dump-dom",
            &format!("file://{}", probe.display()),
        ])
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    let start = dom
        .find("<pre id=\"heal-probe\">")
        .unwrap_or_else(|| panic!("the probe did not run; chromium said:\n{log}"));
    let json = &dom[start + "<pre id=\"heal-probe\">".len()..];
    let json = &json[..json.find("</pre>").unwrap()];
    let images: Vec<(String, u64)> = serde_json::from_str(json).unwrap();
    assert_eq!(images.len(), images_in_page);
    for (src, width) in &images {
        assert!(*width > 0, "{src} did not load in the browser");
        assert!(
            !src.starts_with("http") && !src.starts_with('/'),
            "{src}: the page must open from disk"
        );
    }
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:#?}");
}
