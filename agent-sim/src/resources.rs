//! Agent resources as the master does arithmetic on them: parsing the Mesos
//! resource syntax (`cpus:4;mem:8192;ports:[31000-32000]`), adding,
//! subtracting and containment, and turning them into `Resource` protos.
//!
//! Scalars are kept as fixed-point thousandths because Mesos keeps scalar
//! resources "with 3 decimal digits of precision" (reference 3.4.2.1); that
//! also keeps repeated add/subtract exact. Only unreserved (`*`) resources are
//! modelled: the simulator's agents have no reservations.

use std::collections::BTreeMap;

use drover_proto::v1::{self, value};

/// Why a resource string or a `Resource` proto cannot be used.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ResourceError {
    /// A `name:value` item is malformed.
    #[error("invalid resource '{item}': {why}")]
    Syntax {
        /// The offending `name:value` item.
        item: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A resource in a TaskInfo is of a kind the simulator does not model.
    #[error("resource '{0}' has an unsupported type or value")]
    Unsupported(String),
}

/// A bundle of unreserved resources: named scalars, ranges and sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// Scalars in thousandths (`cpus:0.5` is 500).
    scalars: BTreeMap<String, i64>,
    /// Ranges as sorted, disjoint, inclusive intervals.
    ranges: BTreeMap<String, Vec<(u64, u64)>>,
    /// Set items.
    sets: BTreeMap<String, Vec<String>>,
}

fn to_milli(v: f64) -> i64 {
    (v * 1000.0).round() as i64
}

fn from_milli(v: i64) -> f64 {
    v as f64 / 1000.0
}

impl Resources {
    /// Parses Mesos resource syntax: items separated by `;`, each
    /// `name:scalar`, `name:[a-b,c-d]` or `name:{x,y}`. A `(role)` after the
    /// name is accepted only for the unreserved role `*`.
    pub fn parse(text: &str) -> Result<Self, ResourceError> {
        let mut out = Resources::default();
        for item in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            let bad = |why| ResourceError::Syntax {
                item: item.to_owned(),
                why,
            };
            let (name, value) = item
                .split_once(':')
                .ok_or_else(|| bad("expected name:value"))?;
            let mut name = name.trim();
            if let Some((base, role)) = name.split_once('(') {
                if role.trim_end_matches(')') != "*" {
                    return Err(bad("reserved resources are not supported"));
                }
                name = base;
            }
            if name.is_empty() {
                return Err(bad("empty name"));
            }
            let value = value.trim();
            if let Some(inner) = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
                let mut ranges = Vec::new();
                for r in inner.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let (a, b) = r
                        .split_once('-')
                        .ok_or_else(|| bad("expected a range a-b"))?;
                    let a: u64 = a
                        .trim()
                        .parse()
                        .map_err(|_| bad("range bound is not a number"))?;
                    let b: u64 = b
                        .trim()
                        .parse()
                        .map_err(|_| bad("range bound is not a number"))?;
                    if a > b {
                        return Err(bad("range start is after its end"));
                    }
                    ranges.push((a, b));
                }
                let merged = merge_ranges(out.ranges.remove(name).unwrap_or_default(), ranges);
                out.ranges.insert(name.to_owned(), merged);
            } else if let Some(inner) = value.strip_prefix('{').and_then(|v| v.strip_suffix('}')) {
                let set = out.sets.entry(name.to_owned()).or_default();
                for s in inner.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    if !set.iter().any(|x| x == s) {
                        set.push(s.to_owned());
                    }
                }
            } else {
                let v: f64 = value.parse().map_err(|_| bad("value is not a number"))?;
                if !v.is_finite() || v < 0.0 {
                    return Err(bad("scalar must be a finite non-negative number"));
                }
                let e = out.scalars.entry(name.to_owned()).or_default();
                *e = e.saturating_add(to_milli(v));
            }
        }
        Ok(out)
    }

    /// Reads the resources of a TaskInfo or ExecutorInfo.
    pub fn from_protos(protos: &[v1::Resource]) -> Result<Self, ResourceError> {
        let mut out = Resources::default();
        for r in protos {
            let unsupported = || ResourceError::Unsupported(r.name.clone());
            match value::Type::try_from(r.r#type) {
                Ok(value::Type::Scalar) => {
                    let v = r.scalar.as_ref().ok_or_else(unsupported)?.value;
                    if !v.is_finite() || v < 0.0 {
                        return Err(unsupported());
                    }
                    let e = out.scalars.entry(r.name.clone()).or_default();
                    *e = e.saturating_add(to_milli(v));
                }
                Ok(value::Type::Ranges) => {
                    let ranges = r.ranges.as_ref().ok_or_else(unsupported)?;
                    let mut list = Vec::new();
                    for range in &ranges.range {
                        if range.begin > range.end {
                            return Err(unsupported());
                        }
                        list.push((range.begin, range.end));
                    }
                    let merged = merge_ranges(out.ranges.remove(&r.name).unwrap_or_default(), list);
                    out.ranges.insert(r.name.clone(), merged);
                }
                Ok(value::Type::Set) => {
                    let set = out.sets.entry(r.name.clone()).or_default();
                    for item in &r.set.as_ref().ok_or_else(unsupported)?.item {
                        set.push(item.clone());
                    }
                }
                _ => return Err(unsupported()),
            }
        }
        Ok(out)
    }

    /// The named scalar, e.g. `cpus`, or 0.
    pub fn scalar(&self, name: &str) -> f64 {
        self.scalars
            .get(name)
            .copied()
            .map(from_milli)
            .unwrap_or(0.0)
    }

    /// Whether nothing is left (all scalars zero, no ranges, no set items).
    pub fn is_empty(&self) -> bool {
        self.scalars.values().all(|v| *v <= 0)
            && self.ranges.values().all(Vec::is_empty)
            && self.sets.values().all(Vec::is_empty)
    }

    /// Whether `other` fits inside `self`.
    pub fn contains(&self, other: &Resources) -> bool {
        other
            .scalars
            .iter()
            .all(|(k, v)| *v <= 0 || self.scalars.get(k).is_some_and(|have| have >= v))
            && other.ranges.iter().all(|(k, want)| {
                let have = self.ranges.get(k).map(Vec::as_slice).unwrap_or(&[]);
                want.iter()
                    .all(|(a, b)| have.iter().any(|(x, y)| x <= a && b <= y))
            })
            && other.sets.iter().all(|(k, want)| {
                let have = self.sets.get(k).map(Vec::as_slice).unwrap_or(&[]);
                want.iter().all(|w| have.contains(w))
            })
    }

    /// Adds `other` to `self`.
    pub fn add(&mut self, other: &Resources) {
        for (k, v) in &other.scalars {
            let e = self.scalars.entry(k.clone()).or_default();
            *e = e.saturating_add(*v);
        }
        for (k, r) in &other.ranges {
            let merged = merge_ranges(self.ranges.remove(k).unwrap_or_default(), r.clone());
            self.ranges.insert(k.clone(), merged);
        }
        for (k, s) in &other.sets {
            let set = self.sets.entry(k.clone()).or_default();
            for item in s {
                if !set.contains(item) {
                    set.push(item.clone());
                }
            }
        }
    }

    /// Removes `other` from `self`; callers check [`Resources::contains`] first.
    pub fn subtract(&mut self, other: &Resources) {
        for (k, v) in &other.scalars {
            let e = self.scalars.entry(k.clone()).or_default();
            *e = e.saturating_sub(*v).max(0);
        }
        for (k, r) in &other.ranges {
            if let Some(have) = self.ranges.get_mut(k) {
                for cut in r {
                    *have = subtract_range(have, *cut);
                }
            }
        }
        for (k, s) in &other.sets {
            if let Some(have) = self.sets.get_mut(k) {
                have.retain(|x| !s.contains(x));
            }
        }
    }

    /// The resources as unreserved `Resource` protos, each tagged with the
    /// allocation role when one is given (offers to MULTI_ROLE frameworks).
    pub fn to_protos(&self, allocation_role: Option<&str>) -> Vec<v1::Resource> {
        let mut out = Vec::new();
        let base = |name: &str, ty: value::Type| {
            #[allow(deprecated)]
            v1::Resource {
                name: name.to_owned(),
                r#type: ty as i32,
                role: Some("*".to_owned()),
                allocation_info: allocation_role.map(|role| v1::resource::AllocationInfo {
                    role: Some(role.to_owned()),
                }),
                ..Default::default()
            }
        };
        for (k, v) in &self.scalars {
            if *v > 0 {
                let mut r = base(k, value::Type::Scalar);
                r.scalar = Some(value::Scalar {
                    value: from_milli(*v),
                });
                out.push(r);
            }
        }
        for (k, ranges) in &self.ranges {
            if !ranges.is_empty() {
                let mut r = base(k, value::Type::Ranges);
                r.ranges = Some(value::Ranges {
                    range: ranges
                        .iter()
                        .map(|(a, b)| value::Range { begin: *a, end: *b })
                        .collect(),
                });
                out.push(r);
            }
        }
        for (k, items) in &self.sets {
            if !items.is_empty() {
                let mut r = base(k, value::Type::Set);
                r.set = Some(value::Set {
                    item: items.clone(),
                });
                out.push(r);
            }
        }
        out
    }

    /// The resources as the JSON object `/state` uses (`{"cpus":4.0,"ports":"[31000-32000]"}`).
    pub fn to_state_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        for name in ["cpus", "mem", "disk", "gpus"] {
            map.insert(name.to_owned(), serde_json::json!(self.scalar(name)));
        }
        for (k, v) in &self.scalars {
            map.insert(k.clone(), serde_json::json!(from_milli(*v)));
        }
        for (k, ranges) in &self.ranges {
            let text: Vec<String> = ranges.iter().map(|(a, b)| format!("{a}-{b}")).collect();
            map.insert(
                k.clone(),
                serde_json::json!(format!("[{}]", text.join(", "))),
            );
        }
        serde_json::Value::Object(map)
    }
}

/// Merges two range lists into one sorted list of disjoint intervals.
fn merge_ranges(mut a: Vec<(u64, u64)>, b: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    a.extend(b);
    a.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(a.len());
    for (s, e) in a {
        match out.last_mut() {
            Some(last) if s <= last.1.saturating_add(1) => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

fn subtract_range(have: &[(u64, u64)], (a, b): (u64, u64)) -> Vec<(u64, u64)> {
    let mut out = Vec::with_capacity(have.len() + 1);
    for &(x, y) in have {
        if b < x || a > y {
            out.push((x, y));
            continue;
        }
        if x < a {
            out.push((x, a - 1));
        }
        if b < y {
            out.push((b + 1, y));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_default_agent_resources() {
        let r = Resources::parse("cpus:4;mem:8192;disk:65536;ports:[31000-32000]").unwrap();
        assert_eq!(r.scalar("cpus"), 4.0);
        assert_eq!(r.scalar("mem"), 8192.0);
        let protos = r.to_protos(None);
        assert_eq!(protos.len(), 4);
        assert_eq!(Resources::from_protos(&protos).unwrap(), r);
    }

    #[test]
    fn rejects_malformed_items() {
        for bad in [
            "cpus",
            "cpus:x",
            "ports:[5-1]",
            "cpus(web):2",
            "cpus:-1",
            ":3",
        ] {
            assert!(Resources::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn subtract_then_add_restores_and_keeps_three_decimals() {
        let total = Resources::parse("cpus:1;mem:100;ports:[10-20]").unwrap();
        let task = Resources::parse("cpus:0.1;mem:32;ports:[12-13]").unwrap();
        let mut avail = total.clone();
        for _ in 0..10 {
            avail.subtract(&Resources::parse("cpus:0.1").unwrap());
        }
        assert_eq!(avail.scalar("cpus"), 0.0);
        let mut avail = total.clone();
        assert!(avail.contains(&task));
        avail.subtract(&task);
        assert!(!avail.contains(&task));
        avail.add(&task);
        assert_eq!(avail, total);
    }
}
