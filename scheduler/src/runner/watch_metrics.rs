//! The watchers as gauges, read from the [`WatchLog`] when `/metrics` is
//! scraped: how many are open, how far the furthest behind is, how many
//! were cut off for lagging, and the revisions the log spans.

use super::watch_log::WatchLog;
use crate::metrics::encode_one;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use std::sync::Arc;

/// `drover_watchers`, `drover_watch_max_lag_changes`,
/// `drover_watch_cut_off_total`, `drover_watch_head_revision` and
/// `drover_watch_floor_revision`.
#[derive(Debug)]
pub struct WatchGauges(pub Arc<WatchLog>);

impl Collector for WatchGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = self.0.stats();
        encode_one(
            &mut encoder,
            "drover_watchers",
            "Open watch streams (JSON, Peloton and Titus)",
            &ConstGauge::new(stats.watchers as i64),
        )?;
        encode_one(
            &mut encoder,
            "drover_watch_max_lag_changes",
            "Object changes the furthest-behind watcher has yet to be sent",
            &ConstGauge::new(stats.max_lag as i64),
        )?;
        encode_one(
            &mut encoder,
            "drover_watch_cut_off",
            "Watchers cut off for falling more than --watch-max-lag behind",
            &ConstCounter::new(stats.cut_off),
        )?;
        encode_one(
            &mut encoder,
            "drover_watch_head_revision",
            "The latest revision in the watch log",
            &ConstGauge::new(stats.head as i64),
        )?;
        encode_one(
            &mut encoder,
            "drover_watch_floor_revision",
            "The oldest revision a watch may resume from",
            &ConstGauge::new(stats.floor as i64),
        )
    }
}
