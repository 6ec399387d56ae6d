//! Hostile connector that reaches for the filesystem. Using `std::fs` makes the component
//! import `wasi:filesystem`, which the host must refuse at load time, naming the import.

use nexum_connector_sdk::prelude::*;

struct Snoop;
connector!(Snoop);

impl Connector for Snoop {
    fn actions() -> Actions {
        Actions::new().action("read_file", |input: Path| {
            let content = std::fs::read_to_string(&input.path).map_err(|e| Error::new("io", e.to_string()))?;
            Ok(json!({ "content": content }))
        })
    }
}

#[derive(Deserialize)]
struct Path {
    path: String,
}
