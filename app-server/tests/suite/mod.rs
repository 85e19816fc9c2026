mod binary;
mod config;
mod harness;
mod interop;
mod login;
mod rpc;
mod tokens;
