//! The agent's block inside a conf file: the lines between a begin and an end marker comment,
//! rewritten at every start; everything outside it is the user's and kept as written.
//!
//! The end marker carries a digest of the lines between the markers, so a block the agent wrote
//! earlier is recognised as its own (and dropped before the fresh one is written), while a block
//! someone edited since is told apart: its changes are the user's ([`FoundBlock::intact`] false).
//! Files written by versions of sparkvisor before the block existed start with their own header
//! (`# Rendered by sparkvisor ...`): such a file is the agent's whole ([`Split::legacy`]).

use ring::digest::{digest, SHA256};

/// The comment syntax of a format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comment {
    /// `# ...` (Java properties, shell).
    Hash,
    /// `<!-- ... -->` (XML).
    Xml,
}

/// What begins the first marker (after the comment opener).
const BEGIN: &str = ">>> sparkvisor";
/// What begins the end marker (after the comment opener).
const END: &str = "<<< sparkvisor";
/// The digest's label in the end marker.
const DIGEST_LABEL: &str = "sha256:";
/// The first line of every file versions of sparkvisor without blocks rendered.
const LEGACY_HEADER: &str = "# Rendered by sparkvisor";

/// Why a file's blocks cannot be told apart from the user's lines.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// A begin marker with no end marker after it.
    #[error("line {line}: sparkvisor's begin marker has no end marker after it; remove the marker line, or the whole block, to let sparkvisor write it again")]
    Unterminated {
        /// The begin marker's line.
        line: usize,
    },
    /// An end marker with no begin marker before it.
    #[error("line {line}: sparkvisor's end marker has no begin marker before it; remove the marker line")]
    Unopened {
        /// The end marker's line.
        line: usize,
    },
}

/// One block found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundBlock {
    /// The lines between the markers, as they are in the file.
    pub interior: String,
    /// The interior is exactly what the agent wrote (the end marker's digest matches).
    pub intact: bool,
    /// The 1-based line of the begin marker.
    pub line: usize,
}

/// A file split into the user's text and the agent's blocks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Split {
    /// Every line outside the blocks, in order, as written.
    pub user: String,
    /// The blocks, in order.
    pub blocks: Vec<FoundBlock>,
    /// The whole file is one a version of sparkvisor without blocks wrote (`user` is empty).
    pub legacy: bool,
}

impl Split {
    /// The user's text is blank and every block is intact: nothing in the file is the user's.
    pub fn only_ours(&self) -> bool {
        self.user.trim().is_empty() && self.blocks.iter().all(|b| b.intact)
    }
}

/// The lines of `text`, each with its line ending.
pub fn lines_with_endings(text: &str) -> impl Iterator<Item = &str> {
    text.split_inclusive('\n')
}

fn marker_rest<'a>(line: &'a str, comment: Comment, marker: &str) -> Option<&'a str> {
    let line = line.trim();
    let inner = match comment {
        Comment::Hash => line.strip_prefix('#')?.trim_start(),
        Comment::Xml => line.strip_prefix("<!--")?.trim_start(),
    };
    inner.strip_prefix(marker)
}

/// The digest the end marker carries for `interior`: the first 16 hex digits of its SHA-256.
pub fn digest_of(interior: &str) -> String {
    digest(&SHA256, interior.as_bytes())
        .as_ref()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Splits `text` into the user's lines and the agent's blocks.
pub fn split(text: &str, comment: Comment) -> Result<Split, BlockError> {
    let has_marker = lines_with_endings(text).any(|l| {
        marker_rest(l, comment, BEGIN).is_some() || marker_rest(l, comment, END).is_some()
    });
    if !has_marker && comment == Comment::Hash && text.starts_with(LEGACY_HEADER) {
        return Ok(Split {
            legacy: true,
            ..Split::default()
        });
    }
    let mut split = Split::default();
    // (begin line, interior so far) while inside a block.
    let mut open: Option<(usize, String)> = None;
    for (i, line) in lines_with_endings(text).enumerate() {
        let number = i + 1;
        if let Some(rest) = marker_rest(line, comment, END) {
            let Some((begin, interior)) = open.take() else {
                return Err(BlockError::Unopened { line: number });
            };
            let recorded = rest.trim_start().strip_prefix(DIGEST_LABEL).map(|d| {
                d.chars()
                    .take_while(char::is_ascii_hexdigit)
                    .collect::<String>()
            });
            let intact = recorded.is_some_and(|d| d == digest_of(&interior));
            split.blocks.push(FoundBlock {
                interior,
                intact,
                line: begin,
            });
        } else if marker_rest(line, comment, BEGIN).is_some() {
            if let Some((begin, _)) = open {
                return Err(BlockError::Unterminated { line: begin });
            }
            open = Some((number, String::new()));
        } else if let Some((_, interior)) = open.as_mut() {
            interior.push_str(line);
        } else {
            split.user.push_str(line);
        }
    }
    match open {
        Some((line, _)) => Err(BlockError::Unterminated { line }),
        None => Ok(split),
    }
}

/// The block holding `interior` (a newline is added when it does not end with one), with `indent`
/// before each marker.
pub fn compose(interior: &str, comment: Comment, indent: &str) -> String {
    let mut interior = interior.to_string();
    if !interior.is_empty() && !interior.ends_with('\n') {
        interior.push('\n');
    }
    let sum = digest_of(&interior);
    let note = "this block is rewritten at every start; put your own settings outside it: they \
                are kept, and they win (docs/conf-files.md)";
    match comment {
        Comment::Hash => {
            format!("{indent}# {BEGIN}: {note}\n{interior}{indent}# {END} {DIGEST_LABEL}{sum}\n")
        }
        Comment::Xml => format!(
            "{indent}<!-- {BEGIN}: {note} -->\n{interior}{indent}<!-- {END} {DIGEST_LABEL}{sum} -->\n"
        ),
    }
}

/// The number of lines of `text` (a last line without a newline counts).
pub fn line_count(text: &str) -> usize {
    lines_with_endings(text).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_composed_block_splits_back_intact_and_user_lines_are_kept_in_order() {
        let block = compose("a 1\nb 2", Comment::Hash, "");
        let text = format!("first line\n{block}x 3\n");
        let split = split(&text, Comment::Hash).unwrap();
        assert_eq!(split.user, "first line\nx 3\n");
        assert_eq!(split.blocks.len(), 1);
        assert!(split.blocks[0].intact);
        assert_eq!(split.blocks[0].interior, "a 1\nb 2\n");
        assert_eq!(split.blocks[0].line, 2);
        assert!(!split.only_ours());
    }

    #[test]
    fn an_edited_block_is_not_intact() {
        let block = compose("a 1\n", Comment::Hash, "");
        let edited = block.replace("a 1", "a 2");
        let split = split(&edited, Comment::Hash).unwrap();
        assert!(!split.blocks[0].intact);
        assert_eq!(split.blocks[0].interior, "a 2\n");
        assert!(!split.only_ours());
        // A digest removed from the end marker counts as an edit too.
        let bare = block.replace(&digest_of("a 1\n"), "");
        assert!(!split_ok(&bare).blocks[0].intact);
    }

    fn split_ok(text: &str) -> Split {
        split(text, Comment::Hash).unwrap()
    }

    #[test]
    fn xml_markers_and_indentation() {
        let block = compose("  <property/>\n", Comment::Xml, "  ");
        assert!(block.starts_with("  <!-- >>> sparkvisor"), "{block}");
        let text = format!("<configuration>\n{block}</configuration>\n");
        let split = split(&text, Comment::Xml).unwrap();
        assert_eq!(split.user, "<configuration>\n</configuration>\n");
        assert!(split.blocks[0].intact);
        // `#` markers mean nothing in XML.
        assert!(super::split(&text, Comment::Hash)
            .unwrap()
            .blocks
            .is_empty());
    }

    #[test]
    fn unbalanced_markers_are_refused_with_their_line() {
        let block = compose("a 1\n", Comment::Hash, "");
        let mut lines = block.lines();
        let begin = lines.next().unwrap();
        let end = lines.nth(1).unwrap();
        assert_eq!(
            split(&format!("x\n{begin}\na 1\n"), Comment::Hash),
            Err(BlockError::Unterminated { line: 2 })
        );
        assert_eq!(
            split(&format!("x\ny\n{end}\n"), Comment::Hash),
            Err(BlockError::Unopened { line: 3 })
        );
        assert_eq!(
            split(&format!("{begin}\n{begin}\n{end}\n"), Comment::Hash),
            Err(BlockError::Unterminated { line: 1 })
        );
    }

    #[test]
    fn files_of_versions_without_blocks_are_recognised_by_their_header() {
        let old = "# Rendered by sparkvisor for role master on every start: edit the role's settings, not this file.\nspark.master spark://m:7077\n";
        let split = split_ok(old);
        assert!(split.legacy && split.only_ours());
        // Only as the first line: quoted further down it is the user's text.
        assert!(!split_ok(&format!("a 1\n{old}")).legacy);
    }

    #[test]
    fn digests_are_stable() {
        // The digest is part of files on persistent volumes: it must never change between builds.
        assert_eq!(digest_of(""), "e3b0c44298fc1c14");
        assert_eq!(line_count("a\nb"), 2);
        assert_eq!(line_count("a\nb\n"), 2);
    }
}
