//! A fake Slack Web API on loopback, for trying connectors by hand:
//! `cargo run -p nexum-tests --example fake-slack -- 9000` serves it on 127.0.0.1:9000.
//! It accepts the bot token `xoxb-1111-2222-fake-slack-token` and prints each request;
//! `--quiet` prints nothing and keeps no log (for load tests).

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|p| p.parse().ok()).unwrap_or(9000);
    let quiet = args.any(|a| a == "--quiet");
    let fake = nexum_tests::fakes::slack_on(port).await;
    println!(
        "fake Slack listening on {} (token {})",
        fake.origin(),
        nexum_tests::fakes::SLACK_TOKEN
    );
    let mut seen = 0;
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        if quiet {
            fake.clear();
            continue;
        }
        let requests = fake.requests();
        for r in &requests[seen..] {
            println!(
                "fake Slack got {} {} {}",
                r.method,
                r.path,
                String::from_utf8_lossy(&r.body)
            );
        }
        seen = requests.len();
    }
}
