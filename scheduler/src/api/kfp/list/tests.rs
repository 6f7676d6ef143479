use super::*;
use drover_seed_api::api::ResourceKey;

fn run(id: &str, name: &str, created_s: i64, archived: bool, experiment: &str) -> RunListing {
    RunListing {
        id: id.into(),
        name: name.into(),
        description: String::new(),
        created_at_ms: created_s * 1000 + 250,
        scheduled_at_ms: 0,
        archived,
        status: if archived { "Failed" } else { "Succeeded" }.into(),
        experiment_id: experiment.into(),
    }
}

fn runs() -> Vec<RunListing> {
    vec![
        run("r1", "alpha", 100, false, "e1"),
        run("r2", "beta", 200, true, "e1"),
        run("r3", "gamma", 300, false, "e2"),
        run("r4", "alphabet", 400, false, "e1"),
        run("r5", "delta", 500, false, "e2"),
    ]
}

fn ids(page: &Page<'_>) -> Vec<String> {
    page.runs.iter().map(|r| r.id.clone()).collect()
}

fn ask(filter: &str, sort_by: &str, page_size: i32) -> ListRunsRequest {
    ListRunsRequest {
        filter: filter.into(),
        sort_by: sort_by.into(),
        page_size,
        ..ListRunsRequest::default()
    }
}

#[test]
fn the_default_is_created_at_ascending_twenty_a_page() {
    let runs = runs();
    let page = list(&runs, &ListRunsRequest::default()).unwrap();
    assert_eq!(ids(&page), ["r1", "r2", "r3", "r4", "r5"]);
    assert_eq!(page.total_size, 5);
    assert!(page.next_page_token.is_empty());
    let many: Vec<RunListing> = (0..250)
        .map(|i| run(&format!("r{i:03}"), "n", i, false, "e"))
        .collect();
    assert_eq!(
        list(&many, &ask("", "", 0)).unwrap().runs.len(),
        DEFAULT_PAGE_SIZE
    );
    assert_eq!(
        list(&many, &ask("", "", 1000)).unwrap().runs.len(),
        MAX_PAGE_SIZE
    );
    let e = list(&many, &ask("", "", -1)).unwrap_err();
    assert!(e.message.starts_with("page_size"), "{}", e.message);
}

#[test]
fn both_filter_forms_clients_send_are_read_and_anded() {
    let runs = runs();
    // The SDK's form: op by number, camelCase keys.
    let sdk = r#"{"predicates": [{"op": 9, "key": "name", "stringValue": "alpha"},
                                  {"op": 2, "key": "storage_state", "stringValue": "STORAGESTATE_ARCHIVED"}]}"#;
    // The proto names and the op by name.
    let named = r#"{"predicates": [{"op": "IS_SUBSTRING", "key": "name", "string_value": "alpha"},
                                    {"op": "NOT_EQUALS", "key": "storage_state", "string_value": "STORAGESTATE_ARCHIVED"}]}"#;
    for filter in [sdk, named] {
        let page = list(&runs, &ask(filter, "", 0)).unwrap();
        assert_eq!(ids(&page), ["r1", "r4"], "{filter}");
        assert_eq!(page.total_size, 2);
    }
    // URL-escaped, as kfp unescapes it.
    let escaped = "%7B%22predicates%22%3A%5B%7B%22op%22%3A1%2C%22key%22%3A%22name%22%2C%22stringValue%22%3A%22beta%22%7D%5D%7D";
    assert_eq!(ids(&list(&runs, &ask(escaped, "", 0)).unwrap()), ["r2"]);
}

#[test]
fn every_operator_on_names_times_and_states() {
    let runs = runs();
    let cases = [
        (
            r#"{"predicates":[{"op":"EQUALS","key":"name","string_value":"gamma"}]}"#,
            vec!["r3"],
        ),
        (
            r#"{"predicates":[{"op":"GREATER_THAN","key":"created_at","timestamp_value":"1970-01-01T00:05:00Z"}]}"#,
            vec!["r4", "r5"],
        ),
        (
            r#"{"predicates":[{"op":"GREATER_THAN_EQUALS","key":"created_at","long_value":"300"}]}"#,
            vec!["r3", "r4", "r5"],
        ),
        (
            r#"{"predicates":[{"op":"LESS_THAN","key":"created_at","int_value":200}]}"#,
            vec!["r1"],
        ),
        (
            r#"{"predicates":[{"op":"LESS_THAN_EQUALS","key":"created_at","string_value":"200"}]}"#,
            vec!["r1", "r2"],
        ),
        (
            r#"{"predicates":[{"op":"IN","key":"name","string_values":{"values":["beta","delta","zeta"]}}]}"#,
            vec!["r2", "r5"],
        ),
        (
            r#"{"predicates":[{"op":"IN","key":"created_at","long_values":{"values":["100","500"]}}]}"#,
            vec!["r1", "r5"],
        ),
        (
            r#"{"predicates":[{"op":"EQUALS","key":"status","string_value":"Failed"}]}"#,
            vec!["r2"],
        ),
        (r#"{"predicates":[]}"#, vec!["r1", "r2", "r3", "r4", "r5"]),
    ];
    for (filter, want) in cases {
        assert_eq!(
            ids(&list(&runs, &ask(filter, "", 0)).unwrap()),
            want,
            "{filter}"
        );
    }
}

#[test]
fn bad_filters_are_invalid_arguments_naming_the_problem() {
    let runs = runs();
    for (filter, says) in [
        (
            r#"{"predicates":[{"op":1,"key":"colour","stringValue":"x"}]}"#,
            "unrecognized field \"colour\"",
        ),
        (
            r#"{"predicates":[{"op":8,"key":"name","stringValue":"x"}]}"#,
            "In",
        ),
        (
            r#"{"predicates":[{"op":9,"key":"name","intValue":3}]}"#,
            "IsSubstring",
        ),
        (r#"{"predicates":[{"op":1,"key":"name"}]}"#, "no value"),
        (
            r#"{"predicates":[{"op":0,"key":"name","stringValue":"x"}]}"#,
            "invalid predicate operation",
        ),
        (
            r#"{"predicates":[{"op":1,"key":"created_at","stringValue":"yesterday"}]}"#,
            "seconds",
        ),
        ("{not json", "not an api.Filter"),
    ] {
        let e = list(&runs, &ask(filter, "", 0)).unwrap_err();
        assert_eq!(e.code, crate::api::error::Code::InvalidArgument);
        assert!(
            e.message.starts_with("filter") && e.message.contains(says),
            "{filter}: {}",
            e.message
        );
    }
}

#[test]
fn sort_by_a_field_either_way_with_ties_by_id() {
    let mut runs = runs();
    runs.push(run("r0", "beta", 50, false, "e1"));
    assert_eq!(
        ids(&list(&runs, &ask("", "name desc", 0)).unwrap()),
        ["r3", "r5", "r2", "r0", "r4", "r1"]
    );
    assert_eq!(
        ids(&list(&runs, &ask("", "Name", 0)).unwrap()),
        ["r1", "r4", "r0", "r2", "r5", "r3"]
    );
    assert_eq!(
        ids(&list(&runs, &ask("", "created_at desc", 0)).unwrap())[0],
        "r5"
    );
    for bad in ["name up", "name desc now", "colour"] {
        let e = list(&runs, &ask("", bad, 0)).unwrap_err();
        assert!(e.message.starts_with("sort_by"), "{bad}: {}", e.message);
    }
}

#[test]
fn pages_follow_opaque_tokens_that_keep_the_first_pages_sort_and_filter() {
    let runs = runs();
    let filter = r#"{"predicates":[{"op":2,"key":"name","stringValue":"gamma"}]}"#;
    let first = list(&runs, &ask(filter, "name desc", 2)).unwrap();
    assert_eq!(ids(&first), ["r5", "r2"]);
    assert_eq!(first.total_size, 4);
    assert!(!first.next_page_token.is_empty());
    // The later page's own sort and filter are not read.
    let second = list(
        &runs,
        &ListRunsRequest {
            page_token: first.next_page_token.clone(),
            page_size: 2,
            sort_by: "created_at".into(),
            ..ListRunsRequest::default()
        },
    )
    .unwrap();
    assert_eq!(ids(&second), ["r4", "r1"]);
    assert_eq!(second.total_size, 4, "every match, on every page");
    assert!(second.next_page_token.is_empty());

    let e = list(
        &runs,
        &ListRunsRequest {
            page_token: "bm90IGEgdG9rZW4".into(),
            ..ListRunsRequest::default()
        },
    )
    .unwrap_err();
    assert!(e.message.starts_with("page_token"), "{}", e.message);
}

#[test]
fn an_experiment_reference_lists_its_runs() {
    let runs = runs();
    let of = |r#type: ResourceType, id: &str| ListRunsRequest {
        resource_reference_key: Some(ResourceKey {
            r#type: r#type as i32,
            id: id.into(),
        }),
        ..ListRunsRequest::default()
    };
    let page = list(&runs, &of(ResourceType::Experiment, "e2")).unwrap();
    assert_eq!(ids(&page), ["r3", "r5"]);
    assert_eq!(page.total_size, 2);
    assert_eq!(
        list(&runs, &of(ResourceType::Namespace, "kubeflow"))
            .unwrap()
            .total_size,
        5
    );
    let e = list(&runs, &of(ResourceType::Pipeline, "p")).unwrap_err();
    assert!(e.message.contains("PIPELINE"), "{}", e.message);
}
