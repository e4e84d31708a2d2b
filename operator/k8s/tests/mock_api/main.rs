//! Controllers against a mocked API server that asserts every request, with the fake
//! control plane standing in for the store.

mod controller;
mod fixtures;
mod mirror;
mod server;
mod user;
