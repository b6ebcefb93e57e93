//! Service lifecycle as pure data: states, events, actions, the state machine and backoff.
//! No clocks (time is a parameter), no syscalls.
