//! `GET /model_group/info` and `GET /v2/model/info` over HTTP: LiteLLM's shapes, aggregation
//! per model group from the config and the price map, paging, filters, sorting, and what a
//! key restricted to some models sees.

use crate::helpers::*;
use crate::team_rights::{ok, refused};
use serde_json::{json, Value};

fn config() -> String {
    format!(
        r#"model_list:
  - model_name: gpt-4o
    litellm_params: {{model: openai/gpt-4o, api_key: sk-up, rpm: 100, tpm: 1000}}
  - model_name: gpt-4o
    litellm_params: {{model: azure/gpt-4o, api_base: "https://x.openai.azure.com", api_key: sk-up, api_version: "2024-02-01", rpm: 50, configurable_clientside_auth_params: [api_base]}}
    model_info: {{max_input_tokens: 300000}}
  - model_name: claude
    litellm_params: {{model: anthropic/claude-sonnet-4-5-20250929, api_key: sk-up}}
  - model_name: fast
    litellm_params: {{model: anthropic/claude-opus-4-8, api_key: sk-up}}
  - model_name: cheap
    litellm_params: {{model: openai/my-model, api_key: sk-up, input_cost_per_token: 0.000001, output_cost_per_token: 0.000002}}
    model_info: {{mode: completion, access_groups: [grp]}}
  - model_name: "openai/*"
    litellm_params: {{model: "openai/*", api_key: sk-up}}
router_settings:
  model_group_alias: {{latest: gpt-4o, secret: {{model: claude, hidden: true}}}}
litellm_settings:
  public_model_groups: [claude]
general_settings:
  master_key: {MASTER}
"#
    )
}

/// An entry of the price map the gateway ships, read from the same file.
fn price(model: &str) -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/model_prices_and_context_window.json"
    );
    let map: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    map[model].clone()
}

fn by_group<'a>(data: &'a Value, name: &str) -> &'a Value {
    data["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["model_group"] == name)
        .unwrap_or_else(|| panic!("no group {name} in {data}"))
}

fn names(data: &Value, field: &str) -> Vec<String> {
    data["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g[field].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn model_group_info_folds_each_group_as_litellm_does() {
    let gw = gateway(&config(), None).await;
    let all = ok(gw.get("/model_group/info").await).await;
    assert_eq!(
        names(&all, "model_group"),
        ["gpt-4o", "claude", "fast", "cheap", "latest"],
        "wildcards and hidden aliases are not listed: {all}"
    );

    let gpt = by_group(&all, "gpt-4o");
    let map = price("gpt-4o");
    assert_eq!(gpt["providers"], json!(["openai", "azure"]), "{gpt}");
    // The largest window: the config's 300000 on the Azure deployment.
    assert_eq!(gpt["max_input_tokens"], 300000.0);
    assert_eq!(
        gpt["max_output_tokens"],
        map["max_output_tokens"].as_f64().unwrap()
    );
    assert_eq!(gpt["input_cost_per_token"], map["input_cost_per_token"]);
    assert_eq!(gpt["output_cost_per_token"], map["output_cost_per_token"]);
    assert_eq!(gpt["mode"], "chat");
    assert_eq!(gpt["tpm"], 1000, "only one deployment sets tpm");
    assert_eq!(gpt["rpm"], 150, "rpm is summed");
    assert_eq!(gpt["itpm"], Value::Null);
    assert_eq!(gpt["supports_vision"], map["supports_vision"]);
    assert_eq!(gpt["supports_function_calling"], true);
    assert_eq!(gpt["supports_fast_mode"], false);
    assert_eq!(
        gpt["configurable_clientside_auth_params"],
        json!(["api_base"])
    );
    assert_eq!(gpt["is_public_model_group"], false);
    assert_eq!(gpt["health_status"], Value::Null);
    let params = gpt["supported_openai_params"].as_array().unwrap();
    assert!(params.contains(&json!("logit_bias")) && params.contains(&json!("tools")));

    // An alias is the group under the alias's name.
    let latest = by_group(&all, "latest");
    let mut same = gpt.clone();
    same["model_group"] = json!("latest");
    assert_eq!(latest, &same);

    let claude = by_group(&all, "claude");
    let map = price("claude-sonnet-4-5-20250929");
    assert_eq!(claude["providers"], json!(["anthropic"]));
    assert_eq!(
        claude["max_input_tokens"],
        map["max_input_tokens"].as_f64().unwrap()
    );
    assert_eq!(claude["supports_reasoning"], true, "{claude}");
    assert_eq!(claude["supports_web_search"], map["supports_web_search"]);
    assert_eq!(claude["is_public_model_group"], true);
    assert_eq!(claude["tpm"], Value::Null);
    let params = claude["supported_openai_params"].as_array().unwrap();
    assert!(params.contains(&json!("thinking")), "{claude}");
    assert!(!params.contains(&json!("logit_bias")), "{claude}");

    assert_eq!(
        by_group(&all, "fast")["supports_fast_mode"],
        price("claude-opus-4-8")["supports_fast_mode"]
    );
    let cheap = by_group(&all, "cheap");
    assert_eq!(cheap["mode"], "completion");
    assert_eq!(cheap["input_cost_per_token"], 0.000001);
    assert_eq!(cheap["output_cost_per_token"], 0.000002);
    assert_eq!(cheap["max_input_tokens"], Value::Null);
    assert_eq!(cheap["supports_vision"], false);

    // One group by name; a name a wildcard serves; unknown and hidden names: nothing.
    let one = ok(gw.get("/model_group/info?model_group=claude").await).await;
    assert_eq!(names(&one, "model_group"), ["claude"]);
    assert_eq!(&one["data"][0], claude);
    let wild = ok(gw
        .get("/model_group/info?model_group=openai/gpt-4o-mini")
        .await)
    .await;
    assert_eq!(
        names(&wild, "model_group"),
        ["openai/gpt-4o-mini"],
        "{wild}"
    );
    assert_eq!(wild["data"][0]["providers"], json!(["openai"]));
    for unknown in ["nope", "secret"] {
        let v = ok(gw
            .get(&format!("/model_group/info?model_group={unknown}"))
            .await)
        .await;
        assert_eq!(v, json!({"data": []}), "{unknown}");
    }

    // A key sees the groups it may use (by name or access group), nothing else.
    let key = gw.new_key(json!({"models": ["claude", "grp"]})).await;
    let mine = ok(gw.get_as(&key, "/model_group/info").await).await;
    assert_eq!(names(&mine, "model_group"), ["claude", "cheap"], "{mine}");
    let v = ok(gw
        .get_as(&key, "/model_group/info?model_group=gpt-4o")
        .await)
    .await;
    assert_eq!(v, json!({"data": []}));
    let r = gw
        .client
        .get(gw.url("/model_group/info"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn v2_model_info_pages_filters_and_sorts_the_model_info_entries() {
    let gw = gateway(&config(), None).await;
    let v1 = ok(gw.get("/model/info").await).await;
    let all = v1["data"].as_array().unwrap().clone();
    assert_eq!(all.len(), 6);
    assert!(!v1.to_string().contains("sk-up"), "no secrets: {v1}");
    // The price map's capabilities now reach /model/info too.
    let claude = all.iter().find(|e| e["model_name"] == "claude").unwrap();
    assert_eq!(claude["model_info"]["supports_reasoning"], true, "{claude}");

    let v = ok(gw.get("/v2/model/info").await).await;
    assert_eq!(v["data"], json!(all), "same entries as /model/info");
    assert_eq!(
        (
            &v["total_count"],
            &v["current_page"],
            &v["total_pages"],
            &v["size"]
        ),
        (&json!(6), &json!(1), &json!(1), &json!(50))
    );
    let v = ok(gw.get("/v2/model/info?page=2&size=2").await).await;
    assert_eq!(v["data"], json!(all[2..4]), "{v}");
    assert_eq!(
        (&v["total_pages"], &v["current_page"]),
        (&json!(3), &json!(2))
    );
    let v = ok(gw.get("/v2/model/info?page=4&size=2").await).await;
    assert_eq!((&v["data"], &v["total_count"]), (&json!([]), &json!(6)));

    let count = |v: &Value| v["total_count"].as_i64().unwrap();
    let v = ok(gw.get("/v2/model/info?model=gpt-4o").await).await;
    assert_eq!(count(&v), 2, "{v}");
    let v = ok(gw.get("/v2/model/info?search=GPT").await).await;
    assert_eq!(names(&v, "model_name"), ["gpt-4o", "gpt-4o"]);
    let id = claude["model_info"]["id"].as_str().unwrap();
    let v = ok(gw.get(&format!("/v2/model/info?modelId={id}")).await).await;
    assert_eq!(v["data"], json!([claude]));
    let v = ok(gw.get("/v2/model/info?access_group=grp").await).await;
    assert_eq!(names(&v, "model_name"), ["cheap"]);
    let v = ok(gw.get("/v2/model/info?wildcard_only=true").await).await;
    assert_eq!(names(&v, "model_name"), ["openai/*"]);

    let v = ok(gw.get("/v2/model/info?sortBy=model_name").await).await;
    let asc = names(&v, "model_name");
    assert_eq!(
        asc,
        ["cheap", "claude", "fast", "gpt-4o", "gpt-4o", "openai/*"]
    );
    let v = ok(gw
        .get("/v2/model/info?sortBy=model_name&sortOrder=desc")
        .await)
    .await;
    let mut desc = names(&v, "model_name");
    desc.reverse();
    assert_eq!(desc, asc);
    for order in ["asc", "desc"] {
        let v = ok(gw
            .get(&format!("/v2/model/info?sortBy=costs&sortOrder={order}"))
            .await)
        .await;
        let costs: Vec<f64> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let i = &e["model_info"];
                i["input_cost_per_token"].as_f64().unwrap_or(0.0)
                    + i["output_cost_per_token"].as_f64().unwrap_or(0.0)
            })
            .collect();
        // Unpriced last either way; the priced ones in order.
        assert_eq!(costs[5], 0.0, "{order}: {costs:?}");
        let priced = &costs[..5];
        assert!(priced.iter().all(|c| *c > 0.0), "{order}: {costs:?}");
        assert!(
            priced.windows(2).all(|w| if order == "asc" {
                w[0] <= w[1]
            } else {
                w[0] >= w[1]
            }),
            "{order}: {costs:?}"
        );
    }

    refused(
        gw.get("/v2/model/info?sortBy=costs&sortOrder=sideways")
            .await,
        400,
        "Invalid sortOrder: sideways. Must be 'asc' or 'desc'",
    )
    .await;
    refused(
        gw.get("/v2/model/info?page=0").await,
        400,
        "page must be >= 1",
    )
    .await;
    refused(
        gw.get("/v2/model/info?size=0").await,
        400,
        "size must be >= 1",
    )
    .await;
    let r = gw.get("/v2/model/info?page=two").await;
    let status = r.status().as_u16();
    let e: Value = r.json().await.unwrap();
    assert!((400..500).contains(&status), "{status}: {e}");
    assert!(e["error"]["message"].is_string(), "{e}");

    // A key sees the deployments of the groups it may use.
    let key = gw.new_key(json!({"models": ["claude", "grp"]})).await;
    let v = ok(gw.get_as(&key, "/v2/model/info").await).await;
    assert_eq!(names(&v, "model_name"), ["claude", "cheap"], "{v}");
    assert_eq!(count(&v), 2);
}
