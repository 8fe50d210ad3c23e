//! `borg key export --paper` / `--qr-html` and `borg key import --paper` formats
//! (borg 1.2 `keymanager.py`).

use sha2::{Digest, Sha256};

use super::keyblob::encode_blob_text;
use super::CryptoError;

/// First hex characters of SHA-256 (borg's `sha256_truncated`).
fn sha256_truncated(data: &[u8], n: usize) -> String {
    let mut h = hex::encode(Sha256::digest(data));
    h.truncate(n);
    h
}

/// Inserts a space before every 6th character (borg's `grouped`).
fn grouped(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 6);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && i % 6 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

fn line_checksum(idx: u16, part: &[u8]) -> String {
    let mut d = idx.to_be_bytes().to_vec();
    d.extend_from_slice(part);
    sha256_truncated(&d, 2)
}

/// The text `borg key export --paper` writes, for the packed key blob bytes (the base64-decoded
/// blob, see [`super::decode_blob_text`]).
pub fn export_paper(repository_id: &[u8; 32], blob_bytes: &[u8]) -> String {
    let mut out = String::from("To restore key use borg key import --paper /path/to/repo\n\n");
    out.push_str("BORG PAPER KEY v1\n");
    let lines = blob_bytes.len().div_ceil(18);
    let repoid = &hex::encode(repository_id)[..18];
    let complete = sha256_truncated(blob_bytes, 12);
    let id_check = sha256_truncated(format!("{lines}/{repoid}/{complete}").as_bytes(), 2);
    out.push_str(&format!(
        "id: {lines} / {} / {} - {id_check}\n",
        grouped(repoid),
        grouped(&complete)
    ));
    for (i, part) in blob_bytes.chunks(18).enumerate() {
        let idx = i + 1;
        out.push_str(&format!(
            "{idx:2}: {} - {}\n",
            grouped(&hex::encode(part)),
            line_checksum(idx as u16, part)
        ));
    }
    out
}

/// The HTML `borg key export --qr-html` writes: borg's `paperkey.html` template with the key
/// file text inserted before every `</textarea>`. The template (which embeds a QR code library)
/// is not part of hoard; pass the contents of borg's `paperkey.html`.
pub fn export_qr_html(repository_id: &[u8; 32], blob_text: &str, template: &str) -> String {
    let key_file = super::format_key_file(repository_id, blob_text);
    template.replace("</textarea>", &format!("{key_file}</textarea>"))
}

/// What the importer wants next after a line was fed to [`PaperImport::feed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaperStep {
    /// Line accepted; show [`PaperImport::prompt`] and read the next one.
    Next,
    /// Line rejected; show this message (borg's wording) and read the line again.
    Retry(String),
    /// The line was blank: ask `Abort import? [yN]:`; on yes stop (borg prints ` - aborted`),
    /// otherwise read the same line again.
    AskAbort,
    /// Import complete: the key blob text (base64 wrapped at 70 columns, with a final newline)
    /// to store as the repository's key.
    Done(String),
}

/// The interactive `borg key import --paper` state machine. The caller prints
/// [`PaperImport::prompt`], reads a line, calls [`PaperImport::feed`], and acts on the step.
#[derive(Debug, Clone)]
pub struct PaperImport {
    repoid: String,
    lines: Option<usize>,
    complete_checksum: String,
    idx: usize,
    result: Vec<u8>,
}

impl PaperImport {
    /// Starts an import for a repository.
    pub fn new(repository_id: &[u8; 32]) -> PaperImport {
        PaperImport {
            repoid: hex::encode(repository_id)[..18].to_string(),
            lines: None,
            complete_checksum: String::new(),
            idx: 1,
            result: Vec::new(),
        }
    }

    /// The prompt for the next line: `id: ` or the right-aligned line number (`" 1: "`).
    pub fn prompt(&self) -> String {
        match self.lines {
            None => "id: ".to_string(),
            Some(_) => format!("{:2}: ", self.idx),
        }
    }

    /// Feeds one input line (without its newline). A wrong repository id fails with
    /// [`CryptoError::RepoIdMismatch`].
    pub fn feed(&mut self, line: &str) -> Result<PaperStep, CryptoError> {
        let line: String = line
            .trim_end_matches(['\n', '\r'])
            .chars()
            .filter(|c| *c != ' ')
            .collect();
        if line.is_empty() {
            return Ok(PaperStep::AskAbort);
        }
        let parts: Vec<&str> = line.split('-').collect();
        if parts.len() != 2 {
            return Ok(PaperStep::Retry(
                "each line must contain exactly one '-', try again".into(),
            ));
        }
        let (data, checksum) = (parts[0], parts[1]);
        let Some(lines) = self.lines else {
            let fields: Vec<&str> = data.split('/').collect();
            if fields.len() != 3 {
                return Ok(PaperStep::Retry(
                    "the id line must contain exactly three '/', try again".into(),
                ));
            }
            if sha256_truncated(data.to_lowercase().as_bytes(), 2) != checksum {
                return Ok(PaperStep::Retry(
                    "line checksum did not match, try same line again".into(),
                ));
            }
            let Ok(n) = fields[0].parse::<usize>() else {
                return Ok(PaperStep::Retry(
                    "internal error while parsing length".into(),
                ));
            };
            if fields[1] != self.repoid {
                return Err(CryptoError::RepoIdMismatch);
            }
            self.lines = Some(n);
            self.complete_checksum = fields[2].to_string();
            self.idx = 1;
            self.result.clear();
            return Ok(PaperStep::Next);
        };
        let Ok(part) = hex::decode(data) else {
            return Ok(PaperStep::Retry(
                "only characters 0-9 and a-f and '-' are valid, try again".into(),
            ));
        };
        if line_checksum(self.idx as u16, &part) != checksum {
            return Ok(PaperStep::Retry(format!(
                "line checksum did not match, try line {} again",
                self.idx
            )));
        }
        self.result.extend_from_slice(&part);
        if self.idx < lines {
            self.idx += 1;
            return Ok(PaperStep::Next);
        }
        if sha256_truncated(&self.result, 12) != self.complete_checksum {
            // borg starts over with the id line
            self.lines = None;
            self.idx = 1;
            self.result.clear();
            return Ok(PaperStep::Retry(
                "The overall checksum did not match, retry or enter a blank line to abort.".into(),
            ));
        }
        Ok(PaperStep::Done(format!(
            "{}\n",
            encode_blob_text(&self.result)
        )))
    }
}

/// Non-interactive paper import: feeds `lines` (the `BORG PAPER KEY v1` header, the `id:` line
/// and the numbered lines, with or without their `id: `/`NN: ` prefixes; other lines are
/// skipped) and returns the blob text. Any retry message or blank line aborts with an error.
pub fn import_paper(
    repository_id: &[u8; 32],
    lines: impl Iterator<Item = String>,
) -> Result<String, CryptoError> {
    let mut imp = PaperImport::new(repository_id);
    for raw in lines {
        let l = raw.trim();
        if l.is_empty() || l.starts_with("To restore key") || l == "BORG PAPER KEY v1" {
            continue;
        }
        // strip a "id:" or "NN:" prefix as printed by export_paper
        let body = match l.split_once(':') {
            Some((p, rest)) if p == "id" || p.trim().parse::<usize>().is_ok() => rest,
            _ => l,
        };
        match imp.feed(body)? {
            PaperStep::Next => {}
            PaperStep::Done(text) => return Ok(text),
            PaperStep::Retry(msg) => return Err(CryptoError::InvalidKeyData(msg)),
            PaperStep::AskAbort => return Err(CryptoError::Aborted),
        }
    }
    Err(CryptoError::InvalidKeyData("paper key ended early".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouping() {
        assert_eq!(grouped("abcdefghijklm"), "abcdef ghijkl m");
        assert_eq!(grouped("abcdef"), "abcdef");
    }

    #[test]
    fn export_import_round_trip() {
        let id = [0x5a; 32];
        let blob: Vec<u8> = (0..=200u8).collect();
        let paper = export_paper(&id, &blob);
        assert!(paper.contains("\n 1: "));
        assert!(paper.contains("\n12: "));
        let text = import_paper(&id, paper.lines().map(String::from)).unwrap();
        assert_eq!(crate::crypto::decode_blob_text(&text).unwrap(), blob);
        assert!(matches!(
            import_paper(&[0; 32], paper.lines().map(String::from)),
            Err(CryptoError::RepoIdMismatch)
        ));
        let tampered = paper.replacen(" 1: 000102", " 1: 000103", 1);
        assert!(import_paper(&id, tampered.lines().map(String::from)).is_err());
    }

    #[test]
    fn interactive_retry() {
        let id = [0x11; 32];
        let blob = vec![7u8; 20];
        let paper = export_paper(&id, &blob);
        let lines: Vec<&str> = paper.lines().collect();
        let mut imp = PaperImport::new(&id);
        assert_eq!(imp.prompt(), "id: ");
        assert_eq!(imp.feed("").unwrap(), PaperStep::AskAbort);
        assert!(matches!(imp.feed("abc").unwrap(), PaperStep::Retry(_)));
        let idline = lines[3].strip_prefix("id: ").unwrap();
        assert_eq!(imp.feed(idline).unwrap(), PaperStep::Next);
        assert_eq!(imp.prompt(), " 1: ");
        assert!(matches!(imp.feed("zz - 00").unwrap(), PaperStep::Retry(_)));
        assert_eq!(imp.feed(&lines[4][4..]).unwrap(), PaperStep::Next);
        assert!(matches!(
            imp.feed(&lines[5][4..]).unwrap(),
            PaperStep::Done(_)
        ));
    }
}
