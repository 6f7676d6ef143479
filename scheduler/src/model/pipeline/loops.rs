//! `withItems` and `withParam`: a looped task becomes one node per item,
//! each seeing its item as `{{item}}` / `{{item.F}}`. Expanded when the
//! task is ready (a `withParam` list is usually another task's output),
//! named as Argo names them: `task(0:a)`.

use serde_json::Value;

use super::error::ResolveError;
use super::spec::Loop;
use super::text::{item_text, NodeScope, Text};

/// One node of an expanded loop.
#[derive(Debug, Clone, PartialEq)]
pub struct LoopItem {
    /// 0-based position in the list.
    pub index: usize,
    /// The item, its strings substituted.
    pub item: Value,
    /// The node's display name: `task(index:item)`.
    pub node_name: String,
}

/// The items of `looped` for task `task_name` in `scope` (the task's
/// scope without an item). An empty list gives no node (Argo then marks
/// the task `Skipped`).
pub fn expand_loop(
    task_name: &str,
    looped: &Loop,
    scope: &NodeScope<'_>,
) -> Result<Vec<LoopItem>, ResolveError> {
    let items = match looped {
        Loop::Items(items) => items
            .iter()
            .map(|item| substitute(item, scope))
            .collect::<Result<Vec<_>, _>>()?,
        Loop::Param(text) => {
            let rendered = text.render(scope)?;
            match serde_json::from_str::<Value>(&rendered) {
                Ok(Value::Array(items)) => items,
                _ => return Err(ResolveError::NotAList { value: rendered }),
            }
        }
    };
    Ok(items
        .into_iter()
        .enumerate()
        .map(|(index, item)| LoopItem {
            index,
            node_name: format!("{task_name}({index}:{})", item_label(&item)),
            item,
        })
        .collect())
}

/// An item as Argo writes it in a node's name: a string as itself, an
/// object as `key:value` pairs in key order joined by `,`, anything else
/// as JSON.
pub fn item_label(item: &Value) -> String {
    match item {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            keys.iter()
                .map(|k| format!("{k}:{}", item_text(&map[*k])))
                .collect::<Vec<_>>()
                .join(",")
        }
        other => item_text(other),
    }
}

/// The item with each string's variables substituted (kfp writes task
/// outputs into static lists when a loop item names one).
fn substitute(item: &Value, scope: &NodeScope<'_>) -> Result<Value, ResolveError> {
    Ok(match item {
        Value::String(s) if s.contains("{{") => {
            // Checked at create, so the parse cannot fail here; a failure
            // leaves the string as written.
            match Text::parse(s, "") {
                Ok(text) => Value::String(text.render(scope)?),
                Err(_) => item.clone(),
            }
        }
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|v| substitute(v, scope))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| Ok((k.clone(), substitute(v, scope)?)))
                .collect::<Result<_, ResolveError>>()?,
        ),
        other => other.clone(),
    })
}
