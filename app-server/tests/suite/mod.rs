mod binary;
mod cimd;
mod config;
mod harness;
mod interop;
mod login;
mod rpc;
mod tokens;
