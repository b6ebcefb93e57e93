//! Facts about the host that need system calls: the affinity mask and the online CPU count.
