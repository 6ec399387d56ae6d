//! End-to-end tests: real components, the real broker, real servers, loopback fakes of
//! outside APIs. Server scenarios run on SQLite and on PostgreSQL.

/// Run an `async fn(TestApp)` scenario on both databases.
macro_rules! on_both_databases {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$scenario(nexum_tests::app::TestApp::sqlite().await).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$scenario(nexum_tests::app::TestApp::postgres().await).await
                }
            }
        )*
    };
}

mod api_input;
mod api_keys;
mod api_main;
mod api_service;
mod api_tenants;
mod api_usage;
mod api_vault;
mod bounds;
mod console;
mod discord;
mod dropbox;
mod egress;
mod fairness;
mod gdrive;
mod github;
mod gmail;
mod gohighlevel;
mod http_connector;
mod hubspot;
mod loading;
mod marketplace;
mod migrations;
mod oauth;
mod openai;
mod outlook;
mod queue;
mod salesforce;
mod secrets;
mod sendgrid;
mod slack;
mod smtp;
mod stripe;
mod templates;
mod twilio;
mod webhook_connector;
mod webhooks;
mod webhooks_manage;
mod workflows;
