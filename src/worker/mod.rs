//! The model worker's protocol: what the page and its worker say to each other. The two sides
//! are in `app::model_worker` (browser only); the messages are here, tested natively.

pub mod protocol;
