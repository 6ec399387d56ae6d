//! End-to-end tests: real components, the real broker, loopback fakes of outside APIs.

mod bounds;
mod egress;
mod http_connector;
mod loading;
mod secrets;
mod slack;
