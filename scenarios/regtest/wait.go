package regtest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asynclsp/asynclsp/scenarios/internal/await"
)

// Polling: how often a condition is checked, and the longest wait when the
// caller's context has no earlier deadline.
const (
	pollInterval = 50 * time.Millisecond
	DefaultWait  = 2 * time.Minute
)

// errExited is returned by waits when the process waited on has exited.
var errExited = errors.New("process exited")

// poll calls check until it reports true, returns an error, or ctx (capped
// at DefaultWait) ends. The error then names what was awaited and the last
// reason it was not there yet.
func poll(ctx context.Context, what string,
	check func(ctx context.Context) (bool, error)) error {

	ctx, cancel := context.WithTimeout(ctx, DefaultWait)
	defer cancel()
	return await.Until(ctx, what, pollInterval, check, func(err error) bool {
		return errors.Is(err, errExited)
	})
}

// notYet is what a check returns when the condition does not hold yet, to
// say why in the timeout message.
func notYet(format string, args ...any) (bool, error) {
	return false, fmt.Errorf(format, args...)
}
