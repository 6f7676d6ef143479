//! `ListRunsV1`'s rules, as the kfp API server (1.8, `apiserver/list` and
//! `apiserver/filter`) applies them, over a plain listing of the runs:
//!
//! - `filter`: the Kubeflow filter JSON, URL-unescaped first as kfp does,
//!   then read as protobuf JSON of `api.Filter`, so both forms clients send
//!   are taken (`{"op": 1, "stringValue": ...}` as the SDK writes it, and
//!   `{"op": "EQUALS", "string_value": ...}`); predicates are ANDed; keys
//!   `id`, `name`, `created_at`, `description`, `scheduled_at`,
//!   `storage_state`, `status`; ops EQUALS, NOT_EQUALS, GREATER_THAN(_EQUALS),
//!   LESS_THAN(_EQUALS), IN (a list value), IS_SUBSTRING (a string value).
//!   Times compare in whole seconds, as kfp stores them.
//! - `sort_by`: `"field"`, `"field asc"` or `"field desc"`, case-insensitive;
//!   default `created_at` ascending; ties by run id, in the same direction.
//! - `page_size`: 0 is 20, more than 200 is 200, negative is refused.
//! - `page_token`: opaque (base64 of JSON); it carries the sort and the
//!   filter of the first page and where the next page starts, so a later
//!   page's own `sort_by` and `filter` are not read, as in kfp.
//! - `resource_reference_key`: EXPERIMENT lists that experiment's runs;
//!   NAMESPACE is accepted and lists all (Drover has one namespace).
//! - `total_size`: every run the filter and reference match, on every page.
//!
//! Pure: no I/O. Errors are INVALID_ARGUMENT naming what is wrong.

use crate::api::error::ApiError;
use crate::api::grpc::seed_pool;
use base64::Engine as _;
use drover_seed_api::api::{predicate, Filter, ListRunsRequest, ResourceType};
use prost_reflect::DynamicMessage;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// kfp's page size when none is asked.
pub const DEFAULT_PAGE_SIZE: usize = 20;
/// kfp's largest page; a larger ask gets this many.
pub const MAX_PAGE_SIZE: usize = 200;

/// What listing needs of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunListing {
    /// The run's id (uuid).
    pub id: String,
    /// Its display name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// When it was created, ms since the Unix epoch.
    pub created_at_ms: i64,
    /// When it was scheduled, ms since the Unix epoch (0: not).
    pub scheduled_at_ms: i64,
    /// Whether it is archived (`STORAGESTATE_ARCHIVED`).
    pub archived: bool,
    /// Its status, an Argo workflow phase (`Running`, `Succeeded`, ...).
    pub status: String,
    /// The experiment it belongs to (its EXPERIMENT reference's id).
    pub experiment_id: String,
}

/// One page of runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<'a> {
    /// The page's runs, in order.
    pub runs: Vec<&'a RunListing>,
    /// Every run the filter and reference match.
    pub total_size: i32,
    /// The next page's token; empty on the last page.
    pub next_page_token: String,
}

/// A field runs are filtered and sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Field {
    Id,
    Name,
    CreatedAt,
    Description,
    ScheduledAt,
    StorageState,
    Status,
}

impl Field {
    fn of_api_name(name: &str) -> Option<Field> {
        Some(match name {
            "id" => Field::Id,
            "name" => Field::Name,
            "created_at" => Field::CreatedAt,
            "description" => Field::Description,
            "scheduled_at" => Field::ScheduledAt,
            "storage_state" => Field::StorageState,
            "status" => Field::Status,
            _ => return None,
        })
    }

    fn is_time(self) -> bool {
        matches!(self, Field::CreatedAt | Field::ScheduledAt)
    }
}

/// A field's value: text, or a time in ms.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Key {
    Text(String),
    Ms(i64),
}

fn key_of(run: &RunListing, field: Field) -> Key {
    match field {
        Field::Id => Key::Text(run.id.clone()),
        Field::Name => Key::Text(run.name.clone()),
        Field::Description => Key::Text(run.description.clone()),
        Field::Status => Key::Text(run.status.clone()),
        Field::StorageState => Key::Text(storage_state_name(run.archived).to_owned()),
        Field::CreatedAt => Key::Ms(run.created_at_ms),
        Field::ScheduledAt => Key::Ms(run.scheduled_at_ms),
    }
}

/// The seed's name of a run's storage state.
pub fn storage_state_name(archived: bool) -> &'static str {
    if archived {
        "STORAGESTATE_ARCHIVED"
    } else {
        "STORAGESTATE_AVAILABLE"
    }
}

/// A predicate's operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Equals,
    NotEquals,
    GreaterThan,
    GreaterThanEquals,
    LessThan,
    LessThanEquals,
    In,
    IsSubstring,
}

/// A predicate's value: one, or a list (IN), as text or a number.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Operand {
    Number(i64),
    Text(String),
    Numbers(Vec<i64>),
    Texts(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Predicate {
    field: Field,
    op: Op,
    operand: Operand,
}

/// What a page token carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Token {
    sort: Field,
    desc: bool,
    /// The filter text of the first page, as it was sent.
    filter: String,
    /// The first run of the next page: its sort key and id.
    from: Key,
    from_id: String,
}

/// The page of `runs` that `request` asks for.
pub fn list<'a>(runs: &'a [RunListing], request: &ListRunsRequest) -> Result<Page<'a>, ApiError> {
    let page_size = page_size(request.page_size)?;
    let (sort, desc, filter_text, from) = if request.page_token.is_empty() {
        let (sort, desc) = sort_by(&request.sort_by)?;
        (sort, desc, request.filter.clone(), None)
    } else {
        let token = read_token(&request.page_token)?;
        (
            token.sort,
            token.desc,
            token.filter,
            Some((token.from, token.from_id)),
        )
    };
    let predicates = parse_filter(&filter_text)?;
    let experiment = experiment_of(request)?;
    let mut matching: Vec<&RunListing> = runs
        .iter()
        .filter(|run| experiment.is_none_or(|e| run.experiment_id == e))
        .filter(|run| predicates.iter().all(|p| holds(p, run)))
        .collect();
    let total_size = i32::try_from(matching.len()).unwrap_or(i32::MAX);
    let order = |a: &RunListing, b: &RunListing| {
        let ordering = key_of(a, sort)
            .cmp(&key_of(b, sort))
            .then_with(|| a.id.cmp(&b.id));
        if desc {
            ordering.reverse()
        } else {
            ordering
        }
    };
    matching.sort_by(|a, b| order(a, b));
    if let Some((from_key, from_id)) = from {
        matching.retain(|run| {
            let ordering = key_of(run, sort)
                .cmp(&from_key)
                .then_with(|| run.id.cmp(&from_id));
            let ordering = if desc { ordering.reverse() } else { ordering };
            ordering != Ordering::Less
        });
    }
    let next_page_token = match matching.get(page_size) {
        Some(next) => write_token(&Token {
            sort,
            desc,
            filter: filter_text,
            from: key_of(next, sort),
            from_id: next.id.clone(),
        })?,
        None => String::new(),
    };
    matching.truncate(page_size);
    Ok(Page {
        runs: matching,
        total_size,
        next_page_token,
    })
}

fn page_size(asked: i32) -> Result<usize, ApiError> {
    match usize::try_from(asked) {
        Err(_) => Err(ApiError::invalid(
            "page_size",
            format!("the page size should be greater than 0, got {asked}"),
        )),
        Ok(0) => Ok(DEFAULT_PAGE_SIZE),
        Ok(n) => Ok(n.min(MAX_PAGE_SIZE)),
    }
}

/// `sort_by`'s field and whether descending.
fn sort_by(text: &str) -> Result<(Field, bool), ApiError> {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower.split_whitespace().collect();
    let desc = match words.as_slice() {
        [] | [_] => false,
        [_, "desc"] => true,
        [_, "asc"] => false,
        _ => {
            return Err(ApiError::invalid(
                "sort_by",
                format!(
                    "invalid sort by format {text:?}: supported are \"field_name\", \"field_name desc\" and \"field_name asc\""
                ),
            ))
        }
    };
    let field = match words.first() {
        None => Field::CreatedAt,
        Some(name) => Field::of_api_name(name).ok_or_else(|| {
            ApiError::invalid("sort_by", format!("invalid sorting field {name:?} on runs"))
        })?,
    };
    Ok((field, desc))
}

fn experiment_of(request: &ListRunsRequest) -> Result<Option<&str>, ApiError> {
    let Some(key) = &request.resource_reference_key else {
        return Ok(None);
    };
    match ResourceType::try_from(key.r#type) {
        Ok(ResourceType::Experiment) => Ok(Some(key.id.as_str())),
        Ok(ResourceType::Namespace) => Ok(None),
        _ => Err(ApiError::invalid(
            "resource_reference_key.type",
            format!(
                "runs are listed by EXPERIMENT or NAMESPACE, not {}",
                ResourceType::try_from(key.r#type)
                    .map(|t| t.as_str_name().to_owned())
                    .unwrap_or_else(|_| key.r#type.to_string())
            ),
        )),
    }
}

fn read_token(text: &str) -> Result<Token, ApiError> {
    let bad = || ApiError::invalid("page_token", "not a page token this server gave");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| bad())?;
    serde_json::from_slice(&bytes).map_err(|_| bad())
}

fn write_token(token: &Token) -> Result<String, ApiError> {
    let bytes = serde_json::to_vec(token).map_err(|e| ApiError {
        code: crate::api::error::Code::Internal,
        message: format!("a page token does not serialize: {e}"),
    })?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The filter's predicates; an empty text is no filter.
fn parse_filter(text: &str) -> Result<Vec<Predicate>, ApiError> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    // kfp URL-unescapes the filter before reading it.
    let unescaped: String =
        form_urlencoded::parse(format!("f={}", text.replace('&', "%26")).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
    let descriptor = seed_pool()
        .get_message_by_name("api.Filter")
        .ok_or_else(|| ApiError::invalid("filter", "api.Filter is not in the seed"))?;
    let mut json = serde_json::Deserializer::from_str(&unescaped);
    let filter: Filter = DynamicMessage::deserialize(descriptor, &mut json)
        .and_then(|m| json.end().map(|()| m))
        .map_err(|e| ApiError::invalid("filter", format!("not an api.Filter in JSON: {e}")))?
        .transcode_to()
        .map_err(|e| ApiError::invalid("filter", e))?;
    filter.predicates.iter().map(predicate_of).collect()
}

fn predicate_of(p: &drover_seed_api::api::Predicate) -> Result<Predicate, ApiError> {
    use predicate::Op as P;
    let field = Field::of_api_name(&p.key).ok_or_else(|| {
        ApiError::invalid(
            "filter",
            format!("no support for filtering on unrecognized field {:?}", p.key),
        )
    })?;
    let op = match P::try_from(p.op) {
        Ok(P::Equals) => Op::Equals,
        Ok(P::NotEquals) => Op::NotEquals,
        Ok(P::GreaterThan) => Op::GreaterThan,
        Ok(P::GreaterThanEquals) => Op::GreaterThanEquals,
        Ok(P::LessThan) => Op::LessThan,
        Ok(P::LessThanEquals) => Op::LessThanEquals,
        Ok(P::In) => Op::In,
        Ok(P::IsSubstring) => Op::IsSubstring,
        _ => {
            return Err(ApiError::invalid(
                "filter",
                format!("invalid predicate operation {} on {:?}", p.op, p.key),
            ))
        }
    };
    use predicate::Value as V;
    let operand = match &p.value {
        None => {
            return Err(ApiError::invalid(
                "filter",
                format!("no value set for predicate on key {:?}", p.key),
            ))
        }
        Some(V::IntValue(v)) => Operand::Number(i64::from(*v)),
        Some(V::LongValue(v)) => Operand::Number(*v),
        Some(V::StringValue(v)) => Operand::Text(v.clone()),
        Some(V::TimestampValue(t)) => Operand::Number(t.seconds),
        Some(V::IntValues(v)) => Operand::Numbers(v.values.iter().map(|i| i64::from(*i)).collect()),
        Some(V::LongValues(v)) => Operand::Numbers(v.values.clone()),
        Some(V::StringValues(v)) => Operand::Texts(v.values.clone()),
    };
    let is_list = matches!(operand, Operand::Numbers(_) | Operand::Texts(_));
    let fits = match op {
        Op::In => is_list,
        Op::IsSubstring => matches!(operand, Operand::Text(_)),
        _ => !is_list,
    };
    if !fits {
        return Err(ApiError::invalid(
            "filter",
            format!(
                "{op:?} on {:?} does not take a value like {operand:?}",
                p.key
            ),
        ));
    }
    // A time is compared as a number of seconds.
    if field.is_time() {
        let number = |s: &String| {
            s.parse::<i64>().map_err(|_| {
                ApiError::invalid("filter", format!("{:?} takes seconds, not {s:?}", p.key))
            })
        };
        let operand = match operand {
            Operand::Text(s) if op != Op::IsSubstring => Operand::Number(number(&s)?),
            Operand::Texts(list) => {
                Operand::Numbers(list.iter().map(number).collect::<Result<_, _>>()?)
            }
            other => other,
        };
        return Ok(Predicate { field, op, operand });
    }
    Ok(Predicate { field, op, operand })
}

/// Whether `run` satisfies `p`.
fn holds(p: &Predicate, run: &RunListing) -> bool {
    // Times as whole seconds (kfp stores them so); text fields as text,
    // a number compared with them as its decimal text.
    let value = match key_of(run, p.field) {
        Key::Ms(ms) => Operand::Number(ms.div_euclid(1000)),
        Key::Text(text) => Operand::Text(text),
    };
    let as_text = |o: &Operand| match o {
        Operand::Number(n) => n.to_string(),
        Operand::Text(t) => t.clone(),
        _ => String::new(),
    };
    let compare = |operand: &Operand| -> Ordering {
        match (&value, operand) {
            (Operand::Number(a), Operand::Number(b)) => a.cmp(b),
            (a, b) => as_text(a).cmp(&as_text(b)),
        }
    };
    match (&p.op, &p.operand) {
        (Op::Equals, o) => compare(o) == Ordering::Equal,
        (Op::NotEquals, o) => compare(o) != Ordering::Equal,
        (Op::GreaterThan, o) => compare(o) == Ordering::Greater,
        (Op::GreaterThanEquals, o) => compare(o) != Ordering::Less,
        (Op::LessThan, o) => compare(o) == Ordering::Less,
        (Op::LessThanEquals, o) => compare(o) != Ordering::Greater,
        (Op::In, Operand::Numbers(list)) => list
            .iter()
            .any(|n| compare(&Operand::Number(*n)) == Ordering::Equal),
        (Op::In, Operand::Texts(list)) => list
            .iter()
            .any(|t| compare(&Operand::Text(t.clone())) == Ordering::Equal),
        (Op::IsSubstring, Operand::Text(t)) => as_text(&value).contains(t.as_str()),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
