//! Kubernetes resource quantities (`500m`, `1`, `64Mi`, `128M`, `1e3`,
//! `2Gi`) as a container's `resources` writes them, read into Drover's
//! units: cores for cpu, MiB for memory and disk, a count for GPUs.

/// A quantity's value in its base unit (cores, bytes, devices), or `None`
/// when it is not one Kubernetes would accept.
pub fn parse_quantity(text: &str) -> Option<f64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '+' | '-')))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0f64.powi(4),
        "Pi" => 1024.0f64.powi(5),
        "Ei" => 1024.0f64.powi(6),
        exponent if exponent.starts_with(['e', 'E']) => 10f64.powi(exponent[1..].parse().ok()?),
        _ => return None,
    };
    let value = number * factor;
    (value.is_finite() && value >= 0.0).then_some(value)
}

/// Bytes to MiB.
pub fn bytes_to_mib(bytes: f64) -> f64 {
    bytes / (1024.0 * 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_read_as_kubernetes_writes_them() {
        let cases = [
            ("500m", Some(0.5)),
            ("1", Some(1.0)),
            ("2.5", Some(2.5)),
            ("64Mi", Some(64.0 * 1048576.0)),
            ("128M", Some(128e6)),
            ("1Gi", Some(1073741824.0)),
            ("1e3", Some(1000.0)),
            ("1k", Some(1000.0)),
            ("", None),
            ("lots", None),
            ("5X", None),
            ("-1", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_quantity(text), want, "{text}");
        }
        assert_eq!(bytes_to_mib(64.0 * 1048576.0), 64.0);
    }
}
