mod binary;
mod cimd;
mod config;
mod harness;
mod login;
mod rpc;
