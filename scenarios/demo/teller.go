package demo

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// teller prints the story as it happens: each line stamped with the time
// since the demo began, checks marked and counted.
type teller struct {
	w      io.Writer
	start  time.Time
	failed []string
}

func newTeller(w io.Writer) *teller {
	return &teller{w: w, start: time.Now()}
}

// say prints a line of the story.
func (t *teller) say(format string, args ...any) {
	fmt.Fprintf(t.w, "[%6.1fs] %s\n", time.Since(t.start).Seconds(),
		fmt.Sprintf(format, args...))
}

// detail prints a line under the last one.
func (t *teller) detail(format string, args ...any) {
	fmt.Fprintf(t.w, "          %s\n", fmt.Sprintf(format, args...))
}

// check prints a checked fact, and remembers it if it does not hold.
func (t *teller) check(ok bool, format string, args ...any) bool {
	line := fmt.Sprintf(format, args...)
	mark := "✓"
	if !ok {
		mark = "✗"
		t.failed = append(t.failed, line)
	}
	fmt.Fprintf(t.w, "          %s %s\n", mark, line)

	return ok
}

// heading starts a part of the demo.
func (t *teller) heading(title string) {
	fmt.Fprintf(t.w, "\n%s\n%s\n", title, strings.Repeat("-", len(title)))
}

// sat formats msat as satoshis with thousands separators, keeping the
// millisatoshis when there are any.
func sat(msat int64) string {
	sign := ""
	if msat < 0 {
		sign, msat = "-", -msat
	}
	whole := group(msat / 1000)
	if frac := msat % 1000; frac != 0 {
		return fmt.Sprintf("%s%s.%03d sat", sign, whole, frac)
	}

	return sign + whole + " sat"
}

// signedSat is sat with a + for gains.
func signedSat(msat int64) string {
	if msat > 0 {
		return "+" + sat(msat)
	}

	return sat(msat)
}

// group writes n with commas between thousands.
func group(n int64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}

	return b.String()
}

// secs formats a duration in seconds with two decimals ("0.22 s").
func secs(d time.Duration) string {
	return fmt.Sprintf("%.2f s", d.Seconds())
}

// millis formats a duration in milliseconds ("221 ms").
func millis(d time.Duration) string {
	return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
}
