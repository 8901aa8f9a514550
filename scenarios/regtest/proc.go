package regtest

import "time"

// stopTimeout is how long a process gets to exit after SIGTERM before it is
// killed.
const stopTimeout = 30 * time.Second
