// Package await waits for a condition of the regtest network or of the
// daemons on it, shared by the harness and the scenarios.
//
// Floor: top (scenarios only). Owns polling with a deadline; it imports
// nothing of asynclsp's.
package await

import (
	"context"
	"fmt"
	"time"
)

// Until calls check every interval until it reports true, returns an error
// for which fatal is true (returned at once), or ctx ends. The error then
// names what was awaited and the last reason check gave for not yet.
func Until(ctx context.Context, what string, every time.Duration,
	check func(context.Context) (bool, error), fatal func(error) bool) error {

	ticker := time.NewTicker(every)
	defer ticker.Stop()
	var last error
	for {
		ok, err := check(ctx)
		switch {
		case ok:
			return nil
		case err != nil && fatal(err):
			return fmt.Errorf("waiting for %s: %w", what, err)
		case err != nil:
			last = err
		}
		select {
		case <-ticker.C:
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("waiting for %s: %w (last: %w)", what, ctx.Err(), last)
			}
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		}
	}
}
