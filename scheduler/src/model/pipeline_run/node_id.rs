//! Argo's node ids: the workflow name, then the 32-bit FNV-1a hash of the
//! node's full name. Stable, so a restarted scheduler names nodes alike.

/// The id of the node named `node_name` in workflow `workflow_name` (the
/// root node's id is the workflow name itself).
pub fn node_id(workflow_name: &str, node_name: &str) -> String {
    if node_name == workflow_name {
        return workflow_name.to_string();
    }
    format!("{workflow_name}-{}", fnv32a(node_name))
}

fn fnv32a(s: &str) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in s.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_hash_the_node_name_and_the_root_is_the_workflow() {
        // FNV-1a of "a" is 0xe40c292c.
        assert_eq!(fnv32a("a"), 0xe40c_292c);
        assert_eq!(node_id("wf", "wf"), "wf");
        assert_eq!(node_id("wf", "wf.produce"), node_id("wf", "wf.produce"));
        assert_ne!(node_id("wf", "wf.consume"), node_id("wf", "wf.consume-2"));
    }
}
