//! Recent service output: a bounded ring buffer of lines per service, shared by the output
//! forwarders (writers) and the status socket (readers).
