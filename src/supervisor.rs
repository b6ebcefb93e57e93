//! The one owner of all service state: a loop that takes events (process exits, signals, probe
//! results, timer deadlines, operator requests), steps the pure state machine and carries out actions.
