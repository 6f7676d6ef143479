//! A Mesos `Offer` proto becomes Drover's [`Offer`] here, and nowhere else:
//! which of its resources and ports Drover may use, and its agent's
//! attributes as text. Placement and the engine never read the proto.
//!
//! An offer a sane master cannot have sent ([`defect`]: a resource listed
//! twice, an amount that is negative or no number, a range that ends
//! before it begins) is not translated: [`sort`] sets it apart, to be
//! declined, and logs why at WARN. So does a second copy of an offer id
//! within one OFFERS event (the first copy decides); copies across events
//! are the engine's to see, as only it knows which offers it still holds.

use crate::model::host::Unavailability;
use crate::model::ids::{AgentId, OfferId};
use crate::model::offer::Offer;
use crate::model::port_ranges::PortRanges;
use crate::model::resources::Resources;
use drover_proto::v1::{self, value, Attribute, Resource};
use prost::Message;
use std::collections::{BTreeMap, HashSet};

/// Why an offer cannot be used as the master sent it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum OfferDefect {
    /// Two entries the same but for their amount: a Mesos master merges
    /// such entries (`Resources::add`), so two mean a broken master, and
    /// which one (or their sum) is real cannot be told.
    #[error("resource {name:?} is listed twice")]
    ListedTwice {
        /// The resource's name.
        name: String,
    },
    /// A scalar that is negative, NaN or infinite (Mesos' own validation
    /// refuses them, `Resources::validate`).
    #[error("resource {name:?} has the amount {amount}, not a finite amount of at least 0")]
    BadAmount {
        /// The resource's name.
        name: String,
        /// The amount as sent.
        amount: f64,
    },
    /// A range whose end comes before its beginning.
    #[error("resource {name:?} has the range {begin}-{end}, which ends before it begins")]
    InvertedRange {
        /// The resource's name.
        name: String,
        /// The range as sent.
        begin: u64,
        /// The range as sent.
        end: u64,
    },
}

/// The offers of one OFFERS event, sorted.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct SortedOffers {
    /// The offers Drover may use, in Drover's terms, in the event's order.
    pub usable: Vec<Offer>,
    /// The offers to decline: each had a [`defect`] (logged at WARN).
    pub invalid: Vec<OfferId>,
}

/// Sorts one OFFERS event's offers into usable and invalid ones, logging
/// each invalid offer, and each second copy of an offer id (dropped: the
/// first copy decides, usable or not), at WARN with the offer id and why.
pub(crate) fn sort(protos: Vec<v1::Offer>) -> SortedOffers {
    let mut sorted = SortedOffers::default();
    let mut seen = HashSet::with_capacity(protos.len());
    for proto in protos {
        if !seen.insert(proto.id.value.clone()) {
            tracing::warn!(
                offer = %proto.id.value,
                agent = %proto.agent_id.value,
                "offer ignored: its id came twice in one OFFERS event; the first copy is kept"
            );
            continue;
        }
        match defect(&proto) {
            None => sorted.usable.push(offer(proto)),
            Some(reason) => {
                tracing::warn!(
                    offer = %proto.id.value,
                    agent = %proto.agent_id.value,
                    %reason,
                    "offer declined: the master sent it malformed"
                );
                sorted.invalid.push(OfferId(proto.id.value));
            }
        }
    }
    sorted
}

/// What is wrong with `offer` as sent, if anything: every resource is
/// looked at (reserved ones too: a master that sends a negative amount for
/// any of them is not to be trusted with the rest), the first defect found
/// is named.
pub(crate) fn defect(offer: &v1::Offer) -> Option<OfferDefect> {
    let resources = &offer.resources;
    for (i, r) in resources.iter().enumerate() {
        if let Some(amount) = r.scalar.as_ref().map(|s| s.value) {
            if !amount.is_finite() || amount < 0.0 {
                return Some(OfferDefect::BadAmount {
                    name: r.name.clone(),
                    amount,
                });
            }
        }
        if let Some(range) = r
            .ranges
            .iter()
            .flat_map(|rs| rs.range.iter())
            .find(|range| range.end < range.begin)
        {
            return Some(OfferDefect::InvertedRange {
                name: r.name.clone(),
                begin: range.begin,
                end: range.end,
            });
        }
        // Names are compared first: an offer holds a handful of
        // resources, and most names differ.
        let twice = resources[..i]
            .iter()
            .any(|earlier| earlier.name == r.name && same_resource(earlier, r));
        if twice {
            return Some(OfferDefect::ListedTwice {
                name: r.name.clone(),
            });
        }
    }
    None
}

/// Whether `a` and `b` are one resource (all but their amount the same).
/// Shared resources are counted per copy in Mesos: each copy is its own.
fn same_resource(a: &Resource, b: &Resource) -> bool {
    a.shared.is_none() && b.shared.is_none() && identity(a) == identity(b)
}

/// A resource without its amount, as bytes. The legacy role `*` is no role.
#[allow(deprecated)] // reads the legacy `role`
fn identity(r: &Resource) -> Vec<u8> {
    let mut bare = Resource {
        scalar: None,
        ranges: None,
        set: None,
        ..r.clone()
    };
    if bare.role.as_deref() == Some("*") {
        bare.role = None;
    }
    bare.encode_to_vec()
}

/// The offer as Drover sees it. Its strings are moved, not copied.
pub(crate) fn offer(offer: v1::Offer) -> Offer {
    Offer {
        resources: usable(&offer.resources),
        ports: PortRanges::new(usable_ports(&offer.resources)),
        attributes: attributes(offer.attributes),
        agent_id: AgentId::new(&offer.agent_id.value),
        allocation_role: offer.allocation_info.and_then(|a| a.role),
        id: OfferId(offer.id.value),
        hostname: offer.hostname,
        unavailability: offer.unavailability.as_ref().map(unavailability),
    }
}

/// Mesos' unavailability (nanoseconds) in Drover's terms. A negative
/// duration is read as none: the window is open-ended.
pub(crate) fn unavailability(u: &v1::Unavailability) -> Unavailability {
    Unavailability {
        start: u.start.nanoseconds.div_euclid(1_000_000),
        duration: u
            .duration
            .as_ref()
            .and_then(|d| u64::try_from(d.nanoseconds).ok())
            .map(std::time::Duration::from_nanos),
    }
}

/// Agent attributes as text: TEXT as is, SCALAR as a number, RANGES and
/// SET in Mesos' attribute syntax (`[1-5]`, `{a,b}`), so that a HOST label
/// constraint compares what an operator wrote in `--attributes`.
fn attributes(list: Vec<Attribute>) -> BTreeMap<String, String> {
    list.into_iter()
        .filter_map(|a| {
            let text = if let Some(t) = a.text {
                t.value
            } else if let Some(s) = &a.scalar {
                format!("{}", s.value)
            } else if let Some(r) = &a.ranges {
                let parts: Vec<_> = r
                    .range
                    .iter()
                    .map(|r| format!("{}-{}", r.begin, r.end))
                    .collect();
                format!("[{}]", parts.join(","))
            } else if let Some(s) = &a.set {
                format!("{{{}}}", s.item.join(","))
            } else {
                return None;
            };
            Some((a.name, text))
        })
        .collect()
}

/// Whether `r` is ours to use: Drover makes no reservations, so only
/// unreserved resources are (the offer's role is carried by the host view).
fn unreserved(r: &Resource) -> bool {
    #[allow(deprecated)]
    let legacy_role = r.role.as_deref();
    r.reservations.is_empty()
        && r.reservation.is_none()
        && legacy_role.is_none_or(|role| role == "*")
}

/// The unreserved `ports` ranges in `resources` (ports outside u32 dropped).
fn usable_ports(resources: &[Resource]) -> impl Iterator<Item = (u32, u32)> + '_ {
    resources
        .iter()
        .filter(|r| r.name == "ports" && unreserved(r) && r.r#type == value::Type::Ranges as i32)
        .filter_map(|r| r.ranges.as_ref())
        .flat_map(|r| r.range.iter())
        .filter_map(|r| Some((u32::try_from(r.begin).ok()?, u32::try_from(r.end).ok()?)))
}

/// The unreserved scalar cpus, mem, disk and gpus in `resources`.
fn usable(resources: &[Resource]) -> Resources {
    let mut total = Resources::default();
    for r in resources {
        if !unreserved(r) || r.r#type != value::Type::Scalar as i32 {
            continue;
        }
        let Some(amount) = r.scalar.as_ref().map(|s| s.value) else {
            continue;
        };
        if !amount.is_finite() || amount < 0.0 {
            continue;
        }
        match r.name.as_str() {
            "cpus" => total.cpus += amount,
            "mem" => total.mem_mib += amount,
            "disk" => total.disk_mib += amount,
            "gpus" => total.gpus += amount,
            _ => {}
        }
    }
    total
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use drover_proto::v1::{resource, FrameworkId};

    pub(crate) fn scalar(name: &str, v: f64) -> Resource {
        Resource {
            name: name.into(),
            r#type: value::Type::Scalar as i32,
            scalar: Some(value::Scalar { value: v }),
            ..Default::default()
        }
    }

    pub(crate) fn ports(begin: u64, end: u64) -> Resource {
        Resource {
            name: "ports".into(),
            r#type: value::Type::Ranges as i32,
            ranges: Some(value::Ranges {
                range: vec![value::Range { begin, end }],
            }),
            ..Default::default()
        }
    }

    /// A proto offer of `agent` with `resources` and a `zone` attribute.
    pub(crate) fn proto_offer(id: &str, agent: &str, resources: Vec<Resource>) -> v1::Offer {
        v1::Offer {
            id: v1::OfferId { value: id.into() },
            framework_id: FrameworkId { value: "f".into() },
            agent_id: v1::AgentId {
                value: agent.into(),
            },
            hostname: format!("{agent}.host"),
            resources,
            attributes: vec![Attribute {
                name: "zone".into(),
                r#type: value::Type::Text as i32,
                text: Some(value::Text { value: "b".into() }),
                ..Default::default()
            }],
            allocation_info: Some(resource::AllocationInfo {
                role: Some("*".into()),
            }),
            ..Default::default()
        }
    }

    fn reserved(mut r: Resource) -> Resource {
        r.reservations = vec![resource::ReservationInfo {
            role: Some("dev".into()),
            ..Default::default()
        }];
        r
    }

    #[allow(deprecated)]
    fn with_legacy_role(mut r: Resource, role: &str) -> Resource {
        r.role = Some(role.into());
        r
    }

    #[test]
    fn an_offer_keeps_its_ids_host_role_and_attributes() {
        let o = offer(proto_offer("o1", "a1", vec![scalar("cpus", 1.0)]));
        assert_eq!(o.id, OfferId("o1".into()));
        assert_eq!(o.agent_id, AgentId::new("a1"));
        assert_eq!(o.hostname, "a1.host");
        assert_eq!(o.allocation_role.as_deref(), Some("*"));
        assert_eq!(o.attributes.get("zone").map(String::as_str), Some("b"));
        let mut bare = proto_offer("o2", "a1", Vec::new());
        bare.allocation_info = None;
        assert_eq!(offer(bare).allocation_role, None);
    }

    #[test]
    fn only_unreserved_resources_and_ports_are_usable() {
        let legacy_reserved = with_legacy_role(scalar("mem", 512.0), "dev");
        let mut dynamically_reserved = scalar("disk", 1000.0);
        dynamically_reserved.reservation = Some(resource::ReservationInfo::default());
        let o = offer(proto_offer(
            "o1",
            "a1",
            vec![
                scalar("cpus", 2.0),
                reserved(scalar("cpus", 8.0)),
                scalar("mem", 256.0),
                with_legacy_role(scalar("mem", 128.0), "*"),
                legacy_reserved,
                dynamically_reserved,
                scalar("gpus", 1.0),
                // Not scalars Drover counts: a scalar named ports, a
                // resource it does not know, amounts that are no amount.
                scalar("ports", 9.0),
                scalar("fpgas", 4.0),
                scalar("disk", f64::NAN),
                scalar("disk", -5.0),
                ports(31000, 31004),
                ports(31005, 31009),
                reserved(ports(32000, 32001)),
                ports(1 << 40, (1 << 40) + 1),
            ],
        ));
        assert_eq!(
            o.resources,
            Resources {
                cpus: 2.0,
                mem_mib: 384.0,
                disk_mib: 0.0,
                gpus: 1.0,
            }
        );
        assert_eq!(o.ports.ranges(), &[(31000, 31009)]);
    }

    #[test]
    fn attributes_read_as_an_operator_wrote_them() {
        let attribute = |name: &str| Attribute {
            name: name.into(),
            ..Default::default()
        };
        let list = vec![
            Attribute {
                text: Some(value::Text { value: "a".into() }),
                ..attribute("zone")
            },
            Attribute {
                scalar: Some(value::Scalar { value: 3.0 }),
                ..attribute("weight")
            },
            Attribute {
                ranges: Some(value::Ranges {
                    range: vec![
                        value::Range { begin: 1, end: 5 },
                        value::Range { begin: 8, end: 9 },
                    ],
                }),
                ..attribute("slots")
            },
            Attribute {
                set: Some(value::Set {
                    item: vec!["ssd".into(), "gpu".into()],
                }),
                ..attribute("features")
            },
            attribute("empty"),
        ];
        let got = attributes(list);
        let want: BTreeMap<String, String> = [
            ("zone", "a"),
            ("weight", "3"),
            ("slots", "[1-5,8-9]"),
            ("features", "{ssd,gpu}"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(got, want);
    }

    fn range_of(name: &str, begin: u64, end: u64) -> Resource {
        Resource {
            name: name.into(),
            ..ports(begin, end)
        }
    }

    /// The validity rule, one row per case: the offer's resources and the
    /// defect expected (None: usable).
    #[test]
    fn an_offer_is_invalid_with_a_resource_listed_twice_or_an_amount_that_is_no_amount() {
        let bad = |name: &str, amount: f64| {
            Some(OfferDefect::BadAmount {
                name: name.into(),
                amount,
            })
        };
        let twice = |name: &str| Some(OfferDefect::ListedTwice { name: name.into() });
        let shared = |mut r: Resource| {
            r.shared = Some(resource::SharedInfo {});
            r
        };
        let cases: Vec<(&str, Vec<Resource>, Option<OfferDefect>)> = vec![
            (
                "a plain offer",
                vec![
                    scalar("cpus", 2.0),
                    scalar("mem", 1024.0),
                    ports(31000, 31009),
                ],
                None,
            ),
            ("nothing at all", Vec::new(), None),
            ("zero is an amount", vec![scalar("cpus", 0.0)], None),
            (
                "the issue's offer: cpus 2 and cpus -10",
                vec![scalar("cpus", 2.0), scalar("cpus", -10.0)],
                bad("cpus", -10.0),
            ),
            (
                "cpus listed twice, both amounts fine",
                vec![
                    scalar("cpus", 2.0),
                    scalar("mem", 64.0),
                    scalar("cpus", 1.0),
                ],
                twice("cpus"),
            ),
            (
                "ports listed twice",
                vec![ports(31000, 31004), ports(31005, 31009)],
                twice("ports"),
            ),
            (
                "the legacy role * is the default role",
                vec![
                    scalar("mem", 256.0),
                    with_legacy_role(scalar("mem", 128.0), "*"),
                ],
                twice("mem"),
            ),
            (
                "a negative amount",
                vec![scalar("mem", -1.0)],
                bad("mem", -1.0),
            ),
            (
                "infinite cpus",
                vec![scalar("cpus", f64::INFINITY)],
                bad("cpus", f64::INFINITY),
            ),
            (
                "a negative amount of something Drover does not use",
                vec![scalar("fpgas", -4.0)],
                bad("fpgas", -4.0),
            ),
            (
                "a negative amount reserved for another role",
                vec![reserved(scalar("cpus", -1.0))],
                bad("cpus", -1.0),
            ),
            (
                "a range that ends before it begins",
                vec![ports(31009, 31000)],
                Some(OfferDefect::InvertedRange {
                    name: "ports".into(),
                    begin: 31009,
                    end: 31000,
                }),
            ),
            (
                // Mesos keeps these apart: one is ours, one another role's.
                "unreserved and reserved cpus",
                vec![scalar("cpus", 2.0), reserved(scalar("cpus", 8.0))],
                None,
            ),
            (
                "two roles' reservations",
                vec![
                    reserved(scalar("cpus", 1.0)),
                    with_legacy_role(scalar("cpus", 1.0), "web"),
                ],
                None,
            ),
            (
                "copies of a shared resource",
                vec![shared(scalar("disk", 10.0)), shared(scalar("disk", 10.0))],
                None,
            ),
            (
                "different names",
                vec![range_of("ports", 1, 2), range_of("gpus_ids", 1, 2)],
                None,
            ),
        ];
        for (case, resources, want) in cases {
            let got = defect(&proto_offer("o1", "a1", resources));
            // NaN is never equal to itself: compared apart below.
            assert_eq!(got, want, "{case}");
        }
        let nan = defect(&proto_offer("o1", "a1", vec![scalar("mem", f64::NAN)]));
        assert!(
            matches!(&nan, Some(OfferDefect::BadAmount { name, amount }) if name == "mem" && amount.is_nan()),
            "{nan:?}"
        );
    }

    #[test]
    fn a_defect_names_the_resource_and_the_value() {
        let text = OfferDefect::BadAmount {
            name: "cpus".into(),
            amount: -10.0,
        }
        .to_string();
        assert!(text.contains("\"cpus\"") && text.contains("-10"), "{text}");
        let text = OfferDefect::ListedTwice {
            name: "cpus".into(),
        }
        .to_string();
        assert!(text.contains("\"cpus\" is listed twice"), "{text}");
    }

    #[test]
    fn an_event_sorts_into_usable_and_invalid_offers_and_the_first_copy_of_an_id_decides() {
        let sorted = sort(vec![
            proto_offer("o1", "a1", vec![scalar("cpus", 1.5)]),
            proto_offer("o1", "a1", vec![scalar("cpus", 8.0)]),
            proto_offer(
                "bad",
                "a2",
                vec![scalar("cpus", 2.0), scalar("cpus", -10.0)],
            ),
            // Its first copy was bad: this good-looking one is not used.
            proto_offer("bad", "a2", vec![scalar("cpus", 2.0)]),
            proto_offer("o2", "a3", vec![scalar("cpus", 1.0)]),
        ]);
        let usable: Vec<_> = sorted
            .usable
            .iter()
            .map(|o| (o.id.as_str(), o.resources.cpus))
            .collect();
        assert_eq!(usable, [("o1", 1.5), ("o2", 1.0)]);
        assert_eq!(sorted.invalid, [OfferId("bad".into())]);
    }
}
