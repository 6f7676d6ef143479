//! The rules while a run goes: substitution, `when`, loops, parameters,
//! node paths, resources, retry.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use serde_json::json;

use super::super::*;
use super::*;

fn facts() -> WorkflowFacts {
    WorkflowFacts {
        name: "base-x7k2q".into(),
        uid: "run-1".into(),
        namespace: "drover".into(),
        parameters: BTreeMap::from([("greeting".to_string(), "hello".to_string())]),
    }
}

#[test]
fn every_variable_kind_substitutes_from_the_scope() {
    let facts = facts();
    let inputs = BTreeMap::from([("word".to_string(), "HELLO".to_string())]);
    let outputs = BTreeMap::from([(
        "produce".to_string(),
        BTreeMap::from([("produce-Output".to_string(), "42".to_string())]),
    )]);
    let item = json!({"name": "shard-0", "index": 0});
    let scope = NodeScope {
        workflow: &facts,
        inputs: &inputs,
        outputs: &outputs,
        item: Some(&item),
        pod_name: Some("base-x7k2q-123"),
    };
    let cases = [
        ("{{inputs.parameters.word}}!", "HELLO!"),
        ("{{tasks.produce.outputs.parameters.produce-Output}}", "42"),
        ("{{steps.produce.outputs.parameters.produce-Output}}", "42"),
        ("{{item.name}}/{{item.index}}", "shard-0/0"),
        ("{{item}}", r#"{"index":0,"name":"shard-0"}"#),
        ("{{workflow.parameters.greeting}}", "hello"),
        (
            "{{workflow.name}} {{workflow.uid}} {{workflow.namespace}}",
            "base-x7k2q run-1 drover",
        ),
        ("{{workflow.uid}}-{{pod.name}}", "run-1-base-x7k2q-123"),
        ("no variables", "no variables"),
        ("{{ inputs.parameters.word }}", "HELLO"),
    ];
    for (text, want) in cases {
        let parsed = Text::parse(text, "t").unwrap();
        assert_eq!(parsed.render(&scope).unwrap(), want, "{text}");
    }
    let missing = Text::parse("{{tasks.other.outputs.parameters.x}}", "t").unwrap();
    assert_eq!(
        missing.render(&scope).unwrap_err(),
        ResolveError::Unresolved {
            variable: "tasks.other.outputs.parameters.x".into()
        }
    );
    let no_field = Text::parse("{{item.size}}", "t").unwrap();
    assert!(matches!(
        no_field.render(&scope).unwrap_err(),
        ResolveError::NoItemField { .. }
    ));
}

fn scope_with<'a>(
    facts: &'a WorkflowFacts,
    inputs: &'a BTreeMap<String, String>,
    outputs: &'a BTreeMap<String, BTreeMap<String, String>>,
) -> NodeScope<'a> {
    NodeScope {
        workflow: facts,
        inputs,
        outputs,
        item: None,
        pod_name: None,
    }
}

#[test]
fn when_compares_strings_quoted_and_numbers_unquoted() {
    let facts = facts();
    let inputs = BTreeMap::from([
        ("coin".to_string(), "heads".to_string()),
        ("n".to_string(), "7".to_string()),
        ("tricky".to_string(), "a\" == \"a".to_string()),
    ]);
    let outputs = BTreeMap::new();
    let scope = scope_with(&facts, &inputs, &outputs);
    let cases = [
        (r#""{{inputs.parameters.coin}}" == "heads""#, true),
        (r#""{{inputs.parameters.coin}}" != "heads""#, false),
        (r#""{{inputs.parameters.coin}}" == "tails""#, false),
        ("{{inputs.parameters.n}} > 5", true),
        ("{{inputs.parameters.n}} >= 7", true),
        ("{{inputs.parameters.n}} < 7", false),
        ("{{inputs.parameters.n}} <= 6.5", false),
        ("{{inputs.parameters.n}} == 7.0", true),
        (
            r#"{{inputs.parameters.n}} > 9 || "{{inputs.parameters.coin}}" == "heads""#,
            true,
        ),
        (
            r#"{{inputs.parameters.n}} > 5 && "{{inputs.parameters.coin}}" == "tails""#,
            false,
        ),
        // A value holding quotes and == cannot change what is compared.
        (r#""{{inputs.parameters.tricky}}" == "a""#, false),
    ];
    for (source, want) in cases {
        let condition = Condition::parse(source, "when").unwrap();
        assert_eq!(condition.evaluate(&scope).unwrap(), want, "{source}");
    }
    let not_number = Condition::parse("{{inputs.parameters.coin}} > 5", "when").unwrap();
    assert!(matches!(
        not_number.evaluate(&scope).unwrap_err(),
        ResolveError::NotANumber { .. }
    ));
    for bad in ["", "a", "(a == b)", "!a", "a == ", "\"a == b", "a ==== b"] {
        let err = Condition::parse(bad, "spec.x.when").unwrap_err();
        assert_eq!(err.field_path(), Some("spec.x.when"), "{bad:?}");
    }
}

#[test]
fn loops_expand_one_node_per_item_named_as_argo_names_them() {
    let facts = facts();
    let inputs = BTreeMap::from([(
        "shards".to_string(),
        r#"[{"name": "s0", "index": 0}, {"name": "s1", "index": 1}]"#.to_string(),
    )]);
    let outputs = BTreeMap::from([(
        "flip".to_string(),
        BTreeMap::from([("flip-Output".to_string(), "heads".to_string())]),
    )]);
    let scope = scope_with(&facts, &inputs, &outputs);

    let items = Loop::Items(vec![json!("a"), json!("b"), json!(3)]);
    let expanded = expand_loop("for-loop-3", &items, &scope).unwrap();
    let names: Vec<&str> = expanded.iter().map(|e| e.node_name.as_str()).collect();
    assert_eq!(
        names,
        ["for-loop-3(0:a)", "for-loop-3(1:b)", "for-loop-3(2:3)"]
    );

    let with_vars = Loop::Items(vec![
        json!({"side": "{{tasks.flip.outputs.parameters.flip-Output}}"}),
    ]);
    let expanded = expand_loop("l", &with_vars, &scope).unwrap();
    assert_eq!(expanded[0].item, json!({"side": "heads"}));
    assert_eq!(expanded[0].node_name, "l(0:side:heads)");

    let param = Loop::Param(Text::parse("{{inputs.parameters.shards}}", "p").unwrap());
    let expanded = expand_loop("for-loop-4", &param, &scope).unwrap();
    assert_eq!(expanded.len(), 2);
    assert_eq!(expanded[1].node_name, "for-loop-4(1:index:1,name:s1)");
    let item_scope = NodeScope {
        item: Some(&expanded[1].item),
        ..scope
    };
    let text = Text::parse("{{item.name}}", "t").unwrap();
    assert_eq!(text.render(&item_scope).unwrap(), "s1");

    let not_list = Loop::Param(Text::literal("{\"a\": 1}"));
    assert!(matches!(
        expand_loop("x", &not_list, &scope).unwrap_err(),
        ResolveError::NotAList { .. }
    ));
    let empty = Loop::Param(Text::literal("[]"));
    assert!(expand_loop("x", &empty, &scope).unwrap().is_empty());
}

#[test]
fn run_parameters_take_overrides_and_refuse_unknown_or_missing_ones() {
    let p = parse_workflow(BASE).unwrap();
    let given = vec![("shards".to_string(), "[]".to_string())];
    let values = resolve_parameters(&p, &given).unwrap();
    assert_eq!(values["greeting"], "hello");
    assert_eq!(values["shards"], "[]");
    let values = resolve_parameters(
        &p,
        &[
            ("shards".into(), "[1]".into()),
            ("greeting".into(), "hi".into()),
        ],
    )
    .unwrap();
    assert_eq!(values["greeting"], "hi");
    assert_eq!(entry_inputs(&p, &values).unwrap()["greeting"], "hi");
    assert_eq!(
        resolve_parameters(&p, &[]).unwrap_err(),
        ResolveError::MissingParameter {
            name: "shards".into()
        }
    );
    assert_eq!(
        resolve_parameters(&p, &[("nope".into(), "1".into())]).unwrap_err(),
        ResolveError::UnknownParameter {
            name: "nope".into()
        }
    );
}

#[test]
fn each_node_gets_its_own_paths_in_its_files_and_its_command() {
    let p = parse_workflow(BASE).unwrap();
    let produce = p.template("produce").unwrap();
    let facts = facts();
    let inputs = BTreeMap::from([(
        "greeting".to_string(),
        "/tmp/outputs/Output/data".to_string(),
    )]);
    let outputs = BTreeMap::new();
    let scope = scope_with(&facts, &inputs, &outputs);
    let a = container_launch(produce, &[], &scope, "/sandbox/a/")
        .unwrap()
        .unwrap();
    let b = container_launch(produce, &[], &scope, "/sandbox/b")
        .unwrap()
        .unwrap();
    assert_eq!(
        a.argv[4..],
        [
            "--greeting",
            // A substituted value is the user's, never rewritten.
            "/tmp/outputs/Output/data",
            "--report",
            "/sandbox/a/tmp/outputs/report/data",
            "----output-paths",
            "/sandbox/a/tmp/outputs/Output/data",
        ]
    );
    assert_eq!(
        a.output_parameters[0].path,
        "/sandbox/a/tmp/outputs/Output/data"
    );
    assert_eq!(
        b.output_parameters[0].path,
        "/sandbox/b/tmp/outputs/Output/data"
    );
    assert_eq!(
        a.output_parameters[0].compiled_path,
        "/tmp/outputs/Output/data"
    );
    assert_ne!(a.output_artifacts[1].path, b.output_artifacts[1].path);
    assert_eq!(a.env, [("RUN".to_string(), "run-1".to_string())]);
    assert_eq!(
        a.directories(),
        [
            "/sandbox/a/tmp/outputs/Output",
            "/sandbox/a/tmp/outputs/report"
        ]
    );

    let report = p.template("report").unwrap();
    let TemplateBody::Dag(dag) = &p.entry().unwrap().body else {
        panic!()
    };
    let call = &dag.task("report").unwrap().artifacts;
    let launch = container_launch(report, call, &scope, "/sandbox/c")
        .unwrap()
        .unwrap();
    assert_eq!(launch.argv, ["cat", "/sandbox/c/tmp/inputs/report/data"]);
    assert_eq!(
        launch.input_files[0].source,
        node_paths::InputSource::Artifact(ArtifactRef::TaskOutput {
            task: "produce".into(),
            artifact: "produce-report".into()
        })
    );
    assert!(container_launch(p.entry().unwrap(), &[], &scope, "/x").is_none());
}

#[test]
fn path_rewriting_moves_whole_paths_only() {
    let compiled = vec!["/tmp/outputs/Output/data".to_string()];
    let cases = [
        ("/tmp/outputs/Output/data", "/r/tmp/outputs/Output/data"),
        (
            "--out=/tmp/outputs/Output/data",
            "--out=/r/tmp/outputs/Output/data",
        ),
        (
            "cat /tmp/outputs/Output/data; ls",
            "cat /r/tmp/outputs/Output/data; ls",
        ),
        ("/tmp/outputs/Output/data2", "/tmp/outputs/Output/data2"),
        ("/x/tmp/outputs/Output/data", "/x/tmp/outputs/Output/data"),
        (
            "ünï /tmp/outputs/Output/data",
            "ünï /r/tmp/outputs/Output/data",
        ),
    ];
    for (s, want) in cases {
        assert_eq!(node_paths::rewrite_str(s, &compiled, "/r"), want, "{s}");
    }
}

#[test]
fn task_resources_take_the_limit_then_the_request_then_the_default() {
    let resources = ContainerResources {
        requests: ResourceAmounts {
            cpus: Some(0.5),
            mem_mib: Some(64.0),
            ..Default::default()
        },
        limits: ResourceAmounts {
            cpus: Some(1.0),
            ..Default::default()
        },
    };
    let defaults = crate::model::resources::Resources {
        cpus: 0.1,
        mem_mib: 32.0,
        disk_mib: 10.0,
        gpus: 0.0,
    };
    let got = resources.task_resources(&defaults);
    assert_eq!(
        (got.cpus, got.mem_mib, got.disk_mib, got.gpus),
        (1.0, 64.0, 10.0, 0.0)
    );
}

#[test]
fn retry_follows_limit_policy_and_backoff() {
    let value = with(
        base(),
        "/spec/templates/1/retryStrategy",
        json!({"limit": "2", "retryPolicy": "OnError",
               "backoff": {"duration": "1s", "factor": 3, "maxDuration": "1m"}}),
    );
    let p = parse(&value).unwrap();
    let retry = p.template("produce").unwrap().retry.clone().unwrap();
    assert_eq!(retry.limit, Some(2));
    assert!(retry.retries(NodeFailure::Error, 0));
    assert!(retry.retries(NodeFailure::Error, 1));
    assert!(!retry.retries(NodeFailure::Error, 2));
    assert!(!retry.retries(NodeFailure::Failed, 0));
    assert_eq!(retry.backoff_ms(1), 1000);
    assert_eq!(retry.backoff_ms(3), 9000);
    assert!(!retry.is_out_of_time(59_999));
    assert!(retry.is_out_of_time(60_000));

    let default = RetryStrategy {
        limit: None,
        policy: RetryPolicy::OnFailure,
        backoff: None,
    };
    assert!(default.retries(NodeFailure::Failed, 1000));
    assert!(!default.retries(NodeFailure::Error, 0));
    assert_eq!(default.backoff_ms(4), 0);
    assert_eq!(parse::parse_duration_ms("1h30m"), Some(5_400_000));
    assert_eq!(parse::parse_duration_ms("250ms"), Some(250));
    assert_eq!(parse::parse_duration_ms("5"), Some(5000));
    assert_eq!(parse::parse_duration_ms("soon"), None);
}

#[test]
fn parallelism_zero_means_no_limit_as_in_argo() {
    let value = with(base(), "/spec/templates/0/parallelism", json!(0));
    let value = with(value, "/spec/parallelism", json!(3));
    let p = parse(&value).unwrap();
    assert_eq!(p.entry().unwrap().parallelism, None);
    assert_eq!(p.parallelism, Some(3));
    let value = with(base(), "/spec/templates/0/parallelism", json!(2));
    assert_eq!(parse(&value).unwrap().entry().unwrap().parallelism, Some(2));
}

mod never_panics {
    use super::super::super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_text_parses_or_is_refused(s in "\\PC{0,64}") {
            let _ = parse_workflow(&s);
            let _ = Text::parse(&s, "x");
            let _ = Condition::parse(&s, "x");
            let _ = quantity::parse_quantity(&s);
            let _ = parse::parse_duration_ms(&s);
        }

        #[test]
        fn conditions_of_braces_quotes_and_operators_never_panic(s in "[{}\"=!<>&| aé0-9.]{0,40}") {
            let _ = Condition::parse(&s, "x");
        }
    }
}
