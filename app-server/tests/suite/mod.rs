mod binary;
mod cli;
mod config;
mod harness;
mod login;
mod rpc;
