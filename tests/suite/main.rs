//! The whole black-box and property test suite, as one test binary.
//!
//! One binary instead of one per file: each test binary links the whole
//! service, so fifteen of them cost fifteen links and about fifteen times the
//! disk. Each module is one concern; `cargo test --test suite <module>::`
//! runs one of them.

mod common;

mod api_contract;
mod audit;
mod audit_properties;
mod bad_input;
mod bounded_state;
mod calendar_reference;
mod cluster;
mod concurrency;
mod connections;
mod console;
mod corruption;
mod durability;
mod fuzz_regressions;
mod operations;
mod policies;
mod policy_queues;
mod privacy;
mod projection_properties;
mod read_models;
mod reads;
mod scrub;
mod security;
mod seed_case_124545;
mod story_callback_hold;
mod story_late_facts;
mod story_parties;
mod story_provisional_calendar;
mod story_refused_demand;
mod story_resolution;
mod story_save_ticket;
mod story_who_must_act;
