mod binary;
mod config;
mod harness;
mod login;
mod rpc;
mod tokens;
