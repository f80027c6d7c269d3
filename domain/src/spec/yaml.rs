//! A YAML document as a tree of nodes that remember where they stand in the file, built from
//! yaml-rust2's parser events, so every error can name its line and column.

use std::collections::HashMap;

/// The most nodes a document may build, aliases expanded: a file of nested aliases (a "billion
/// laughs") is an error here, not gigabytes of copies.
pub const MAX_NODES: usize = 100_000;
/// The most aliases a document may use.
pub const MAX_ALIASES: usize = 1_000;
/// The deepest nesting of lists and mappings.
pub const MAX_DEPTH: usize = 64;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

impl From<Marker> for Pos {
    fn from(m: Marker) -> Self {
        Pos {
            line: m.line() as u32,
            col: m.col() as u32 + 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A scalar's text; `quoted` scalars are always strings.
    Scalar {
        text: String,
        quoted: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
}

impl Node {
    /// A plain `null`, `~` or empty scalar.
    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar { text, quoted: false } if text.is_empty() || text == "~" || text == "null" || text == "Null" || text == "NULL")
    }

    pub fn kind(&self) -> &'static str {
        match &self.value {
            _ if self.is_null() => "nothing (null)",
            Value::Scalar { .. } => "a single value",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

/// A syntax error with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

enum Frame {
    Seq {
        items: Vec<Node>,
        pos: Pos,
        anchor: usize,
        /// `nodes` when it started: its size is what was built since.
        start: usize,
    },
    Map {
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
        pos: Pos,
        anchor: usize,
        start: usize,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    docs: Vec<Node>,
    /// Anchored nodes and how many nodes each holds.
    anchors: HashMap<usize, (Node, usize)>,
    /// Nodes built so far, aliases counted at their full size.
    nodes: usize,
    aliases: usize,
    error: Option<SyntaxError>,
}

impl Builder {
    fn push(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                None => *key = Some(node),
                Some(k) => entries.push((k, node)),
            },
        }
    }

    fn remember(&mut self, anchor: usize, node: &Node, size: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, (node.clone(), size));
        }
    }

    fn fail(&mut self, pos: Pos, message: String) {
        if self.error.is_none() {
            self.error = Some(SyntaxError { pos, message });
        }
    }

    /// Counts `size` more nodes; false (with the error) past the bound.
    fn grow(&mut self, size: usize, pos: Pos) -> bool {
        self.nodes = self.nodes.saturating_add(size);
        if self.nodes > MAX_NODES {
            self.fail(
                pos,
                format!(
                    "the document grows past {MAX_NODES} values with its aliases expanded (the limit of a spec file)"
                ),
            );
            return false;
        }
        true
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        // After an error nothing more is built: the rest of the document is only read.
        if self.error.is_some() {
            return;
        }
        let pos = Pos::from(mark);
        let start = self.nodes;
        match ev {
            Event::Scalar(text, style, anchor, _) => {
                if !self.grow(1, pos) {
                    return;
                }
                let node = Node {
                    value: Value::Scalar {
                        text,
                        quoted: !matches!(style, TScalarStyle::Plain),
                    },
                    pos,
                };
                self.remember(anchor, &node, 1);
                self.push(node);
            }
            Event::SequenceStart(..) | Event::MappingStart(..) if self.stack.len() >= MAX_DEPTH => {
                self.fail(
                    pos,
                    format!("lists and mappings nest deeper than {MAX_DEPTH} levels here (the limit of a spec file)"),
                );
            }
            Event::SequenceStart(anchor, _) => {
                if self.grow(1, pos) {
                    self.stack.push(Frame::Seq {
                        items: Vec::new(),
                        pos,
                        anchor,
                        start,
                    });
                }
            }
            Event::MappingStart(anchor, _) => {
                if self.grow(1, pos) {
                    self.stack.push(Frame::Map {
                        entries: Vec::new(),
                        key: None,
                        pos,
                        anchor,
                        start,
                    });
                }
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor, start) = match self.stack.pop() {
                    Some(Frame::Seq {
                        items,
                        pos,
                        anchor,
                        start,
                    }) => (
                        Node {
                            value: Value::Seq(items),
                            pos,
                        },
                        anchor,
                        start,
                    ),
                    Some(Frame::Map {
                        entries,
                        pos,
                        anchor,
                        start,
                        ..
                    }) => {
                        // A block mapping's start event comes at its first `:`; people think
                        // of the mapping as starting at its first key.
                        let pos = entries.first().map_or(pos, |(k, _)| pos.min(k.pos));
                        (
                            Node {
                                value: Value::Map(entries),
                                pos,
                            },
                            anchor,
                            start,
                        )
                    }
                    None => return,
                };
                let size = self.nodes - start;
                self.remember(anchor, &node, size);
                self.push(node);
            }
            Event::Alias(id) => {
                self.aliases += 1;
                if self.aliases > MAX_ALIASES {
                    self.fail(
                        pos,
                        format!("more than {MAX_ALIASES} aliases (the limit of a spec file)"),
                    );
                    return;
                }
                let Some(size) = self.anchors.get(&id).map(|(_, size)| *size) else {
                    self.fail(pos, "an alias refers to an unknown anchor".into());
                    return;
                };
                // Counted before the copy is made.
                if !self.grow(size, pos) {
                    return;
                }
                if let Some((mut node, _)) = self.anchors.get(&id).cloned() {
                    node.pos = pos;
                    self.push(node);
                }
            }
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

/// Parses one YAML document. An empty file is an empty mapping; several documents are an error.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut builder, true).map_err(|e| SyntaxError {
        pos: Pos::from(*e.marker()),
        message: format!("YAML syntax: {}", e.info()),
    })?;
    if let Some(e) = builder.error {
        return Err(e);
    }
    let mut docs = builder.docs.into_iter();
    let first = docs.next().unwrap_or(Node {
        value: Value::Map(Vec::new()),
        pos: Pos { line: 1, col: 1 },
    });
    if let Some(second) = docs.next() {
        return Err(SyntaxError {
            pos: second.pos,
            message: "a spec file holds one YAML document; this is a second one".into(),
        });
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_know_their_line_and_column() {
        let doc = parse("a: 1\nlist:\n  - { x: y }\n  - 'two'\n").unwrap();
        let Value::Map(entries) = &doc.value else {
            panic!("{doc:?}")
        };
        assert_eq!(entries[0].0.pos, Pos { line: 1, col: 1 });
        assert_eq!(entries[0].1.pos, Pos { line: 1, col: 4 });
        let Value::Seq(items) = &entries[1].1.value else {
            panic!()
        };
        assert_eq!(items[0].pos, Pos { line: 3, col: 5 });
        assert_eq!(items[1].pos, Pos { line: 4, col: 5 });
        assert_eq!(
            items[1].value,
            Value::Scalar {
                text: "two".into(),
                quoted: true
            }
        );
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let e = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(e.message.starts_with("YAML syntax:"), "{e:?}");
        assert!(e.pos.line >= 1);
    }

    /// `depth` levels of `&aN [*aN-1, *aN-1, …]`: 10^depth leaves when expanded.
    fn laughs(depth: usize) -> String {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..=depth {
            let refs = vec![format!("*a{}", i - 1); 10].join(", ");
            text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        text
    }

    #[test]
    fn nested_aliases_stop_at_the_node_limit_with_a_position() {
        let text = laughs(9);
        assert!(text.len() < 1024, "a small file: {} bytes", text.len());
        let e = parse(&text).unwrap_err();
        assert!(e.message.contains("aliases expanded"), "{e:?}");
        assert!(e.pos.line > 1, "{e:?}");
        // A few levels stay under the limit.
        assert!(parse(&laughs(3)).is_ok());
    }

    #[test]
    fn too_many_aliases_and_too_deep_nesting_are_errors() {
        let many = format!(
            "base: &b 1\nlist: [{}]\n",
            vec!["*b"; MAX_ALIASES + 1].join(", ")
        );
        assert!(parse(&many)
            .unwrap_err()
            .message
            .contains("more than 1000 aliases"));
        let deep = format!(
            "x: {}{}\n",
            "[".repeat(MAX_DEPTH + 1),
            "]".repeat(MAX_DEPTH + 1)
        );
        let e = parse(&deep).unwrap_err();
        assert!(e.message.contains("nest deeper than 64"), "{e:?}");
    }

    #[test]
    fn aliases_copy_their_anchor() {
        let doc = parse("base: &b { min: 2 }\nother: *b\n").unwrap();
        let Value::Map(entries) = &doc.value else {
            panic!()
        };
        assert_eq!(entries[0].1.value, entries[1].1.value);
    }
}
