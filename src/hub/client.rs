//! The hub's HTTP side: the endpoint and token as huggingface_hub finds them, GET with
//! redirects followed by hand (the hub's resolve URLs redirect to a CDN or to a relative
//! `/api/resolve-cache/...`), and downloads checked against the listed size and hash as they
//! stream.

use super::links::join_url;
use crate::progress::Progress;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::time::Duration;

/// The hub used when `HF_ENDPOINT` is not set (as huggingface_hub).
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// `HF_ENDPOINT` without a trailing slash, or the public hub.
pub fn endpoint_from_env() -> String {
    match std::env::var("HF_ENDPOINT") {
        Ok(v) if !v.trim().is_empty() => v.trim().trim_end_matches('/').to_string(),
        _ => DEFAULT_ENDPOINT.to_string(),
    }
}

/// The access token as huggingface_hub finds it: `HF_TOKEN`, else the file `HF_TOKEN_PATH`,
/// else `$HF_HOME/token` (default `~/.cache/huggingface/token`, written by `hf auth login`).
pub fn token() -> Option<String> {
    let clean = |s: String| Some(s.trim().to_string()).filter(|t| !t.is_empty());
    if let Ok(t) = std::env::var("HF_TOKEN") {
        return clean(t);
    }
    let file = match std::env::var_os("HF_TOKEN_PATH") {
        Some(p) => std::path::PathBuf::from(p),
        None => super::cache::hf_home().join("token"),
    };
    std::fs::read_to_string(file).ok().and_then(clean)
}

/// How a downloaded file is checked: the sha256 of an LFS file, or the git blob id (sha1 of
/// `blob {size}\0` and the bytes) of a file kept in git.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checksum {
    Sha256(String),
    GitBlob(String),
}

impl Checksum {
    /// The name huggingface_hub gives the file's blob in the cache (its ETag).
    pub fn etag(&self) -> &str {
        match self {
            Checksum::Sha256(h) | Checksum::GitBlob(h) => h,
        }
    }
}

/// Why a GET did not end in 200.
#[derive(Debug)]
pub enum GetError {
    /// No HTTP answer (DNS, connection, TLS, a broken body).
    Transport {
        url: String,
        message: String,
    },
    /// A final status other than 200, with the hub's `X-Error-Code` when it sent one.
    Status {
        url: String,
        status: u16,
        code: Option<String>,
    },
    TooManyRedirects {
        url: String,
    },
}

/// A 200 answer and the first `X-Repo-Commit` header seen on the way to it.
pub struct Reply {
    pub response: ureq::http::Response<ureq::Body>,
    pub commit: Option<String>,
}

/// A client of one hub.
pub struct Client {
    pub endpoint: String,
    agent: ureq::Agent,
    token: Option<String>,
}

impl Client {
    /// A client of `endpoint` that sends `token` (if any) as a bearer token.
    pub fn new(endpoint: &str, token: Option<String>) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(concat!("heal/", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(120)))
            .timeout_per_read(Some(Duration::from_secs(120)))
            .max_redirects(0)
            .build();
        Client {
            endpoint: endpoint.to_string(),
            agent: config.into(),
            token,
        }
    }

    /// GET `url`, following up to 10 redirects. The token goes only to the hub's own host, not
    /// to the CDN a redirect leads to (as huggingface_hub does).
    pub fn get(&self, url: &str) -> Result<Reply, GetError> {
        let mut current = url.to_string();
        let mut commit = None;
        for _ in 0..=10 {
            let mut request = self.agent.get(&current);
            if let Some(token) = &self.token {
                if current.starts_with(&self.endpoint) {
                    request = request.header("authorization", &format!("Bearer {token}"));
                }
            }
            let response = request.call().map_err(|e| GetError::Transport {
                url: current.clone(),
                message: e.to_string(),
            })?;
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            if commit.is_none() {
                commit = header("x-repo-commit");
            }
            let status = response.status().as_u16();
            if status == 200 {
                return Ok(Reply { response, commit });
            }
            if matches!(status, 301 | 302 | 303 | 307 | 308) {
                if let Some(location) = header("location") {
                    current = join_url(&current, &location);
                    continue;
                }
            }
            return Err(GetError::Status {
                url: current,
                status,
                code: header("x-error-code"),
            });
        }
        Err(GetError::TooManyRedirects {
            url: url.to_string(),
        })
    }

    /// The body of a 200 answer as text (listings and API answers: at most 256 MiB).
    pub fn get_text(&self, url: &str) -> Result<(String, Option<String>), GetError> {
        let mut reply = self.get(url)?;
        let link = reply
            .response
            .headers()
            .get("link")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = reply
            .response
            .body_mut()
            .with_config()
            .limit(256 * 1024 * 1024)
            .read_to_string()
            .map_err(|e| GetError::Transport {
                url: url.to_string(),
                message: format!("while reading: {e}"),
            })?;
        Ok((text, link))
    }
}

/// Why a download was refused, for the caller to word.
#[derive(Debug)]
pub enum DownloadError {
    Get(GetError),
    /// The body broke off or could not be written.
    Io {
        url: String,
        message: String,
    },
    Size {
        url: String,
        got: String,
        want: u64,
    },
    Checksum {
        url: String,
        kind: &'static str,
        got: String,
        want: String,
    },
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Client {
    /// Streams `url` into `dest`, checking the size and hash as it goes; `dest` is left for the
    /// caller to rename (or remove) and holds exactly what was received. Returns the sha256 and
    /// the `X-Repo-Commit` header, if any.
    pub fn download(
        &self,
        url: &str,
        size: u64,
        checksum: &Checksum,
        dest: &Path,
        bar: &Progress,
    ) -> Result<(String, Option<String>), DownloadError> {
        let mut reply = self.get(url).map_err(DownloadError::Get)?;
        let io = |e: std::io::Error| DownloadError::Io {
            url: url.to_string(),
            message: format!("{} ({e})", dest.display()),
        };
        let mut out = BufWriter::new(std::fs::File::create(dest).map_err(io)?);
        let mut sha256 = Sha256::new();
        let mut git = Sha1::new();
        git.update(format!("blob {size}\0").as_bytes());
        let mut reader = reply.response.body_mut().as_reader();
        let mut buf = vec![0u8; 1 << 16];
        let mut total: u64 = 0;
        loop {
            let n = reader.read(&mut buf).map_err(|e| DownloadError::Io {
                url: url.to_string(),
                message: format!("after {total} bytes ({e})"),
            })?;
            if n == 0 {
                break;
            }
            total += n as u64;
            if total > size {
                break;
            }
            sha256.update(&buf[..n]);
            git.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(io)?;
            bar.inc(n as u64);
        }
        out.flush().map_err(io)?;
        if total != size {
            return Err(DownloadError::Size {
                url: url.to_string(),
                got: if total > size {
                    format!("more than {size}")
                } else {
                    total.to_string()
                },
                want: size,
            });
        }
        let sha256 = hex(&sha256.finalize());
        let (kind, got, want) = match checksum {
            Checksum::Sha256(want) => ("sha256", sha256.clone(), want),
            Checksum::GitBlob(want) => ("git blob id", hex(&git.finalize()), want),
        };
        if &got != want {
            return Err(DownloadError::Checksum {
                url: url.to_string(),
                kind,
                got,
                want: want.clone(),
            });
        }
        Ok((sha256, reply.commit))
    }
}
