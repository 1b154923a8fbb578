//! Integration tests over real HTTP: the gateway in-process on 127.0.0.1:0 against mock
//! upstreams on random ports. One binary, several modules; every test owns its instances.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod anthropic;
mod auth;
mod cache;
mod callbacks;
mod chat;
mod client_rules;
mod config_files;
mod customers;
mod daily_activity;
mod db_models;
mod deploy_files;
mod errors;
mod health_checks;
mod helpers;
mod key_extras;
mod key_routes;
mod keys;
mod limits;
mod media;
mod metrics;
mod model_budgets;
mod model_groups;
mod multipart;
mod native;
mod organizations;
mod passthrough;
mod responses;
mod retries;
mod routes;
mod shutdown;
mod spend_reports;
mod streaming;
mod supported_params;
mod tag_routing;
mod tags;
mod team_rights;
mod teams;
