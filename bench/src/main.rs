//! `drover-bench`: Drover's benchmark program (issue 7). Placeholder until
//! the scenarios land.

fn main() {}
