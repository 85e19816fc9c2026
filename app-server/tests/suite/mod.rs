mod binary;
mod config;
mod harness;
mod rpc;
