//! The positioned-field reading kit: [`Cx`] collects errors for one file, [`Fields`] checks a
//! mapping's keys, and the scalar readers turn nodes into values or errors at their position.

use std::collections::HashMap;
use std::str::FromStr;

use crate::spec::model::{Loc, TimeZone};
use crate::spec::yaml::{Node, Pos, Value};
use crate::spec::SpecError;

/// Collects errors for one file.
pub(super) struct Cx<'a> {
    pub(super) file: &'a str,
    pub(super) errors: &'a mut Vec<SpecError>,
}

impl Cx<'_> {
    pub(super) fn err(&mut self, pos: Pos, message: impl Into<String>) {
        self.errors.push(SpecError {
            file: self.file.to_owned(),
            line: pos.line,
            col: pos.col,
            message: message.into(),
        });
    }

    pub(super) fn loc(&self, pos: Pos) -> Loc {
        Loc {
            file: self.file.to_owned(),
            line: pos.line,
            col: pos.col,
        }
    }
}

/// A mapping's entries, checked against the keys allowed there.
pub(super) struct Fields<'n> {
    entries: Vec<(&'n str, &'n Node, Pos)>,
    pub(super) pos: Pos,
    path: String,
}

impl<'n> Fields<'n> {
    pub(super) fn new(
        cx: &mut Cx,
        node: &'n Node,
        path: &str,
        allowed: &[&str],
    ) -> Option<Fields<'n>> {
        let Value::Map(map) = &node.value else {
            cx.err(
                node.pos,
                format!("`{path}`: expected a mapping, found {}", node.kind()),
            );
            return None;
        };
        let mut entries: Vec<(&'n str, &'n Node, Pos)> = Vec::new();
        for (k, v) in map {
            let Value::Scalar { text: key, .. } = &k.value else {
                cx.err(
                    k.pos,
                    format!("`{path}`: keys must be plain names, found {}", k.kind()),
                );
                continue;
            };
            if !allowed.contains(&key.as_str()) {
                let message = match super::names_powers(key) {
                    true => super::powers_message(&format!("{path}.{key}")),
                    false => format!(
                        "`{path}`: unknown key `{key}`; expected one of {}",
                        allowed.join(", ")
                    ),
                };
                cx.err(k.pos, message);
                continue;
            }
            if let Some((_, _, first)) = entries.iter().find(|(name, _, _)| *name == key.as_str()) {
                cx.err(
                    k.pos,
                    format!(
                        "`{path}.{key}` is given twice (first at line {})",
                        first.line
                    ),
                );
                continue;
            }
            entries.push((key.as_str(), v, k.pos));
        }
        Some(Fields {
            entries,
            pos: node.pos,
            path: path.to_owned(),
        })
    }

    pub(super) fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, v, _)| *v)
            .filter(|v| !v.is_null())
    }

    pub(super) fn required(&self, cx: &mut Cx, key: &str) -> Option<&'n Node> {
        let v = self.get(key);
        if v.is_none() {
            cx.err(self.pos, format!("`{}`: missing `{key}`", self.path));
        }
        v
    }

    pub(super) fn sub(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }

    /// `key`, when it is given, read by `read` under its path (`path.key`).
    pub(super) fn read<T>(
        &self,
        cx: &mut Cx,
        key: &str,
        read: impl FnOnce(&mut Cx, &'n Node, &str) -> Option<T>,
    ) -> Option<T> {
        self.get(key).and_then(|n| read(cx, n, &self.sub(key)))
    }

    /// `key` read by `read` under its path (`path.key`), and an error when it is missing.
    pub(super) fn read_required<T>(
        &self,
        cx: &mut Cx,
        key: &str,
        read: impl FnOnce(&mut Cx, &'n Node, &str) -> Option<T>,
    ) -> Option<T> {
        self.required(cx, key)
            .and_then(|n| read(cx, n, &self.sub(key)))
    }

    /// `key`, when it is given, as a whole number in `lo..=hi`.
    pub(super) fn uint(&self, cx: &mut Cx, key: &str, lo: u32, hi: u32) -> Option<u32> {
        self.read(cx, key, |cx, n, path| uint(cx, n, path, lo, hi))
    }

    /// `key` as a whole number in `lo..=hi`, and an error when it is missing.
    pub(super) fn required_uint(&self, cx: &mut Cx, key: &str, lo: u32, hi: u32) -> Option<u32> {
        self.read_required(cx, key, |cx, n, path| uint(cx, n, path, lo, hi))
    }

    /// Which one of two keys that exclude each other is given; an error at the mapping when
    /// both are, or when neither is (`neither` then says what to give, after the path).
    pub(super) fn one_of(
        &self,
        cx: &mut Cx,
        first: &str,
        second: &str,
        neither: &str,
    ) -> Option<OneOf<'n>> {
        match (self.get(first), self.get(second)) {
            (Some(n), None) => Some(OneOf::First(n)),
            (None, Some(n)) => Some(OneOf::Second(n)),
            (Some(_), Some(_)) => {
                cx.err(
                    self.pos,
                    format!("`{}`: give either {first} or {second}, not both", self.path),
                );
                None
            }
            (None, None) => {
                cx.err(self.pos, format!("`{}`: {neither}", self.path));
                None
            }
        }
    }
}

/// The one of two exclusive keys that [`Fields::one_of`] found, with its value.
pub(super) enum OneOf<'n> {
    First(&'n Node),
    Second(&'n Node),
}

pub(super) fn scalar<'n>(
    cx: &mut Cx,
    node: &'n Node,
    path: &str,
    expected: &str,
) -> Option<(&'n str, bool)> {
    match &node.value {
        Value::Scalar { text, quoted } if !node.is_null() => Some((text.as_str(), *quoted)),
        _ => {
            cx.err(
                node.pos,
                format!("`{path}`: expected {expected}, found {}", node.kind()),
            );
            None
        }
    }
}

pub(super) fn text(cx: &mut Cx, node: &Node, path: &str) -> Option<String> {
    let (s, _) = scalar(cx, node, path, "text")?;
    if s.trim().is_empty() {
        cx.err(node.pos, format!("`{path}`: must not be empty"));
        return None;
    }
    Some(s.to_owned())
}

pub(super) fn uint(cx: &mut Cx, node: &Node, path: &str, lo: u32, hi: u32) -> Option<u32> {
    let (s, quoted) = scalar(cx, node, path, "a whole number")?;
    match s.parse::<u32>() {
        Ok(v) if !quoted && (lo..=hi).contains(&v) => Some(v),
        Ok(v) if !quoted => {
            cx.err(node.pos, format!("`{path}`: {v} is outside {lo}–{hi}"));
            None
        }
        _ => {
            cx.err(
                node.pos,
                format!("`{path}`: expected a whole number, found `{s}`"),
            );
            None
        }
    }
}

pub(super) fn number(cx: &mut Cx, node: &Node, path: &str) -> Option<f64> {
    let (s, quoted) = scalar(cx, node, path, "a number")?;
    match s.parse::<f64>() {
        Ok(v) if !quoted && v.is_finite() => Some(v),
        _ => {
            cx.err(
                node.pos,
                format!("`{path}`: expected a number, found `{s}`"),
            );
            None
        }
    }
}

pub(super) fn boolean(cx: &mut Cx, node: &Node, path: &str) -> Option<bool> {
    let (s, quoted) = scalar(cx, node, path, "true or false")?;
    match (s, quoted) {
        ("true" | "True" | "TRUE", false) => Some(true),
        ("false" | "False" | "FALSE", false) => Some(false),
        _ => {
            cx.err(
                node.pos,
                format!("`{path}`: expected true or false, found `{s}`"),
            );
            None
        }
    }
}

pub(super) fn list<'n>(cx: &mut Cx, node: &'n Node, path: &str) -> Option<&'n [Node]> {
    match &node.value {
        Value::Seq(items) => Some(items),
        _ => {
            cx.err(
                node.pos,
                format!("`{path}`: expected a list, found {}", node.kind()),
            );
            None
        }
    }
}

pub(super) fn timezone(cx: &mut Cx, node: &Node, path: &str) -> Option<TimeZone> {
    parsed(cx, node, path)
}

/// Text parsed by its type's `FromStr`, whose error follows the path.
pub(super) fn parsed<T: FromStr<Err = String>>(cx: &mut Cx, node: &Node, path: &str) -> Option<T> {
    let s = text(cx, node, path)?;
    match s.parse() {
        Ok(v) => Some(v),
        Err(e) => {
            cx.err(node.pos, format!("`{path}`: {e}"));
            None
        }
    }
}

/// Reports a second item with the same name.
pub(super) fn unique(
    cx: &mut Cx,
    seen: &mut HashMap<String, Pos>,
    name: &str,
    pos: Pos,
    what: &str,
) {
    if let Some(first) = seen.get(name) {
        cx.err(
            pos,
            format!("duplicate {what} `{name}` (first at line {})", first.line),
        );
    } else {
        seen.insert(name.to_owned(), pos);
    }
}

/// `list[name]` for an item of a named list (its index when it has no usable name yet), so
/// every message about the item names it.
pub(super) fn item_path(list: &str, node: &Node, key: &str, index: usize) -> String {
    let name = match &node.value {
        Value::Map(entries) => entries
            .iter()
            .find_map(|(k, v)| match (&k.value, &v.value) {
                (Value::Scalar { text: k, .. }, Value::Scalar { text: v, .. })
                    if k == key && !v.is_empty() =>
                {
                    Some(v.clone())
                }
                _ => None,
            }),
        _ => None,
    };
    format!("{list}[{}]", name.unwrap_or_else(|| index.to_string()))
}
