//! A Mesos `Offer` proto becomes Drover's [`Offer`] here, and nowhere else:
//! which of its resources and ports Drover may use, and its agent's
//! attributes as text. Placement and the engine never read the proto.

use crate::model::ids::{AgentId, OfferId};
use crate::model::offer::Offer;
use crate::model::port_ranges::PortRanges;
use crate::model::resources::Resources;
use drover_proto::v1::{self, value, Attribute, Resource};
use std::collections::BTreeMap;

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
}
