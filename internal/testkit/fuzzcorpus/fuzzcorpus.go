// Package fuzzcorpus keeps the seed corpora of fuzz targets, under
// testdata/fuzz/<target> in the go test fuzz v1 format, what the seeds a
// test builds in Go make: seeds with keys, signatures and challenges stay
// current when what they are made from changes. It depends on nothing of
// asynclsp, so the bus package's own tests can use it too.
//
// Floor: ground (tests only). Owns the seed corpora's format; it imports
// nothing of asynclsp's.
package fuzzcorpus

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// Seed is one seed of a fuzz target: its file's name and the target's
// arguments, of the types the format has here: string, []byte, byte,
// int64 and bool.
type Seed struct {
	Name string
	Args []any
}

// Check keeps testdata/fuzz/<target> (in the test's package) what seeds
// make: with update it writes them, otherwise it fails for each one that
// is missing or differs. Other files there (crashers the fuzzer found, kept
// as regression tests) are left alone.
func Check(t testing.TB, target string, seeds []Seed, update bool) {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", target)
	if update {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	names := map[string]bool{}
	for _, s := range seeds {
		if names[s.Name] {
			t.Fatalf("%s: seed %s twice", target, s.Name)
		}
		names[s.Name] = true
		want := Encode(t, s.Args...)
		path := filepath.Join(dir, s.Name)
		if update {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is stale or missing (run the test with -update): %v", path, err)
		}
	}
}

// Encode writes args in the corpus format, "go test fuzz v1".
func Encode(t testing.TB, args ...any) []byte {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("go test fuzz v1\n")
	for _, arg := range args {
		switch v := arg.(type) {
		case string:
			fmt.Fprintf(&b, "string(%s)\n", strconv.Quote(v))
		case []byte:
			fmt.Fprintf(&b, "[]byte(%s)\n", strconv.Quote(string(v)))
		case byte:
			fmt.Fprintf(&b, "byte(%d)\n", v)
		case int64:
			fmt.Fprintf(&b, "int64(%d)\n", v)
		case bool:
			fmt.Fprintf(&b, "bool(%t)\n", v)
		default:
			t.Fatalf("seed argument of type %T", arg)
		}
	}
	return b.Bytes()
}
