//! Hadoop configuration files (`hive-site.xml`, `core-site.xml`, ...): `<configuration>` holding
//! `<property><name>N</name><value>V</value></property>` elements, merged by property name.
//!
//! The user's document is kept as written; the agent's block (its properties the user does not
//! name, each as one `<property>` line) goes first inside `<configuration>`. Hadoop's
//! `Configuration` lets a later definition of a name replace an earlier one, so even a name the
//! merge cannot see (one in an `xi:include`d file) still wins over the agent's. The agent never
//! marks a property `<final>`: that would stop the user's from applying. Both inputs and the
//! output are checked to be well-formed.

use std::collections::BTreeMap;

use super::block::{self, Comment};
use super::{MergeError, Merged};
use crate::render::escape;

/// One `<property>` of a configuration document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    /// Its name (surrounding whitespace trimmed, as Hadoop does).
    pub name: String,
    /// Its value, as written.
    pub value: String,
    /// The 1-based line its `<property>` starts on.
    pub line: usize,
}

/// The skeleton a user's file is merged into when there is none.
const EMPTY: &str =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<configuration>\n</configuration>\n";

fn parse(text: &str) -> Result<roxmltree::Document<'_>, MergeError> {
    let doc = roxmltree::Document::parse(text).map_err(|e| {
        let pos = e.pos();
        MergeError::Xml {
            line: pos.row as usize,
            column: pos.col as usize,
            why: e.to_string(),
        }
    })?;
    let root = doc.root_element().tag_name().name().to_string();
    if root != "configuration" {
        return Err(MergeError::NotConfiguration { root });
    }
    Ok(doc)
}

fn child_text(node: roxmltree::Node<'_, '_>, tag: &str) -> Option<String> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == tag)
        .map(|c| {
            c.descendants()
                .filter(|d| d.is_text())
                .filter_map(|d| d.text())
                .collect()
        })
}

fn properties_of(doc: &roxmltree::Document<'_>) -> Vec<Property> {
    doc.root_element()
        .children()
        .filter(|c| c.is_element() && c.tag_name().name() == "property")
        .filter_map(|p| {
            Some(Property {
                name: child_text(p, "name")?.trim().to_string(),
                value: child_text(p, "value").unwrap_or_default(),
                line: doc.text_pos_at(p.range().start).row as usize,
            })
        })
        .collect()
}

/// True when `text` is the empty document the agent merges into when the user has no file
/// (whitespace aside): the file is then the agent's alone.
pub fn is_skeleton(text: &str) -> bool {
    let squeeze = |t: &str| t.split_whitespace().collect::<String>();
    squeeze(text) == squeeze(EMPTY)
}

/// The properties of a configuration document, in order.
pub fn properties(text: &str) -> Result<Vec<Property>, MergeError> {
    Ok(properties_of(&parse(text)?))
}

/// The byte offset just after the `<configuration ...>` start tag, and whether it closes itself
/// (`<configuration/>`).
fn after_start_tag(text: &str, doc: &roxmltree::Document<'_>) -> (usize, bool) {
    let start = doc.root_element().range().start;
    let mut quote: Option<char> = None;
    for (at, c) in text.get(start..).unwrap_or_default().char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '>') => {
                let end = start + at + 1;
                let closes = text.get(..start + at).is_some_and(|t| t.ends_with('/'));
                return (end, closes);
            }
            _ => {}
        }
    }
    (text.len(), false)
}

/// One property as the agent writes it: one line, name and value escaped.
fn property_line(name: &str, value: &str) -> String {
    format!(
        "  <property><name>{}</name><value>{}</value></property>\n",
        escape::xml(name),
        escape::xml(value)
    )
}

/// `text` with `insert` placed right after its `<configuration>` start tag, on lines of its own.
fn insert_after_start_tag(text: &str, insert: &str) -> Result<String, MergeError> {
    let doc = parse(text)?;
    let (end, closes) = after_start_tag(text, &doc);
    let (head, tail) = (
        text.get(..end).unwrap_or_default(),
        text.get(end..).unwrap_or_default(),
    );
    if closes {
        let head = head.strip_suffix("/>").unwrap_or(head).trim_end();
        return Ok(format!("{head}>\n{insert}</configuration>{tail}"));
    }
    Ok(match tail.strip_prefix('\n') {
        Some(rest) => format!("{head}\n{insert}{rest}"),
        None => format!("{head}\n{insert}{tail}"),
    })
}

/// Merges the agent's rendered `ours` with the user's file `user` by property name.
pub fn merge(ours: &str, user: Option<&str>) -> Result<Merged, MergeError> {
    let ours_props = properties(ours)?;
    let ours_map: BTreeMap<&str, &str> = ours_props
        .iter()
        .map(|p| (p.name.as_str(), p.value.as_str()))
        .collect();
    let split = match user {
        Some(text) => block::split(text, Comment::Xml)?,
        None => block::Split::default(),
    };
    let mut notes = Vec::new();
    let mut promoted = String::new();
    for found in split.blocks.iter().filter(|b| !b.intact) {
        let wrapped = format!("<configuration>\n{}</configuration>\n", found.interior);
        let edited = properties(&wrapped)?;
        for p in &edited {
            if ours_map.get(p.name.as_str()) != Some(&p.value.as_str()) {
                promoted.push_str(&property_line(&p.name, &p.value));
                notes.push(format!(
                    "{} was edited inside sparkvisor's block (line {}): kept as your property",
                    p.name,
                    found.line + p.line - 1
                ));
            }
        }
        for p in &ours_props {
            if !edited.iter().any(|e| e.name == p.name) {
                notes.push(format!(
                    "{} was removed from sparkvisor's block: it is written again; to change it, \
                     define it outside the block",
                    p.name
                ));
            }
        }
    }
    let user_text = if split.legacy || split.user.trim().is_empty() {
        EMPTY.to_string()
    } else {
        split.user.clone()
    };
    let user_part = if promoted.is_empty() {
        user_text
    } else {
        insert_after_start_tag(&user_text, &promoted)?
    };
    let users: Vec<String> = properties(&user_part)?
        .into_iter()
        .map(|p| p.name)
        .collect();
    let mut interior = String::new();
    let mut replaced = std::collections::BTreeSet::new();
    for p in &ours_props {
        if users.contains(&p.name) {
            replaced.insert(p.name.clone());
            interior.push_str(&format!(
                "  <!-- {}: your property, outside this block, is used -->\n",
                escape::xml(&p.name).replace("--", "- -")
            ));
        } else {
            interior.push_str(&property_line(&p.name, &p.value));
        }
    }
    let block = block::compose(&interior, Comment::Xml, "  ");
    let text = insert_after_start_tag(&user_part, &block)?;
    // Where the block landed: the line after the start tag.
    let doc = parse(&text)?;
    let (end, _) = after_start_tag(&text, &doc);
    let first = text.get(..end).map_or(1, |h| h.matches('\n').count() + 2);
    Ok(Merged {
        block: first..first + block::line_count(&block),
        text,
        notes,
        replaced,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: &str = "<?xml version=\"1.0\"?>\n<configuration>\n  <property><name>hive.metastore.warehouse.dir</name><value>/data/spark/warehouse</value></property>\n  <property>\n    <name>javax.jdo.option.ConnectionURL</name>\n    <value>jdbc:derby:;databaseName=/data/m;create=true</value>\n  </property>\n</configuration>\n";

    fn names_and_lines(text: &str) -> Vec<(String, String, usize)> {
        properties(text)
            .unwrap()
            .into_iter()
            .map(|p| (p.name, p.value, p.line))
            .collect()
    }

    #[test]
    fn the_users_properties_win_and_the_document_stays_theirs() {
        let user = "<?xml version=\"1.0\"?>\n<!-- my comment -->\n<configuration xmlns:xi=\"http://www.w3.org/2001/XInclude\">\n  <property>\n    <name> javax.jdo.option.ConnectionURL </name>\n    <value>jdbc:postgresql://db/metastore</value>\n  </property>\n</configuration>\n";
        let m = merge(OURS, Some(user)).unwrap();
        let props = names_and_lines(&m.text);
        let urls: Vec<_> = props
            .iter()
            .filter(|p| p.0 == "javax.jdo.option.ConnectionURL")
            .collect();
        assert_eq!(urls.len(), 1, "{}", m.text);
        assert_eq!(urls[0].1, "jdbc:postgresql://db/metastore");
        assert!(!m.block.contains(&urls[0].2));
        let warehouse = props
            .iter()
            .find(|p| p.0 == "hive.metastore.warehouse.dir")
            .unwrap();
        assert!(m.block.contains(&warehouse.2), "{:?} {}", m.block, m.text);
        // Every line of the user's file is still there, in order.
        let without_block = block::split(&m.text, Comment::Xml).unwrap().user;
        assert_eq!(without_block, user);
        assert_eq!(merge(OURS, Some(&m.text)).unwrap().text, m.text);
    }

    #[test]
    fn without_a_user_file_and_with_a_self_closed_root() {
        let m = merge(OURS, None).unwrap();
        assert_eq!(names_and_lines(&m.text).len(), 2);
        let split = block::split(&m.text, Comment::Xml).unwrap();
        assert!(
            is_skeleton(&split.user) && split.blocks[0].intact,
            "{}",
            m.text
        );
        let m = merge(OURS, Some("<configuration/>")).unwrap();
        assert_eq!(names_and_lines(&m.text).len(), 2, "{}", m.text);
        let m = merge(OURS, Some("<configuration><property><name>a</name><value>1</value></property></configuration>")).unwrap();
        assert_eq!(names_and_lines(&m.text).len(), 3, "{}", m.text);
        assert_eq!(merge(OURS, Some(&m.text)).unwrap().text, m.text);
    }

    #[test]
    fn values_are_escaped_and_edits_in_our_block_are_kept() {
        let ours = "<configuration><property><name>a</name><value>x &amp; &lt;y&gt;</value></property><property><name>b</name><value>2</value></property></configuration>";
        let first = merge(ours, None).unwrap().text;
        assert!(
            first.contains("<value>x &amp; &lt;y&gt;</value>"),
            "{first}"
        );
        let edited = first.replace("<value>2</value>", "<value>3</value>");
        let m = merge(ours, Some(&edited)).unwrap();
        let b: Vec<_> = names_and_lines(&m.text)
            .into_iter()
            .filter(|p| p.0 == "b")
            .collect();
        assert_eq!(b.len(), 1, "{}", m.text);
        assert_eq!(b[0].1, "3");
        assert!(!m.block.contains(&b[0].2));
        assert_eq!(m.notes.len(), 1, "{:?}", m.notes);
    }

    #[test]
    fn what_cannot_be_merged_is_refused() {
        let err = merge(OURS, Some("<configuration><property>\n</configuration>")).unwrap_err();
        assert!(matches!(err, MergeError::Xml { line: 2, .. }), "{err}");
        let err = merge(OURS, Some("<allocations/>")).unwrap_err();
        assert!(
            matches!(&err, MergeError::NotConfiguration { root } if root == "allocations"),
            "{err}"
        );
    }
}
