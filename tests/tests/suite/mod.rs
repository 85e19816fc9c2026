mod authorize;
mod cimd;
mod common;
mod discovery;
mod faults;
mod resource;
mod token;
