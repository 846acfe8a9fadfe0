package secrets

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Ref names one secret: the field Key of the secret at Path in the KV v2
// engine mounted at Mount, written MOUNT/PATH#KEY as `vault kv get
// MOUNT/PATH` shows it ("secret/network/snmp#community" is the field
// community of GET /v1/secret/data/network/snmp).
type Ref struct {
	Mount, Path, Key string
}

// String is the reference as the configuration writes it.
func (r Ref) String() string { return r.Mount + "/" + r.Path + "#" + r.Key }

// ParseRef reads MOUNT/PATH#KEY. The first element of the path is the
// mount; the rest, one or more elements, the secret's path in it.
func ParseRef(s string) (Ref, error) {
	const form = `write MOUNT/PATH#KEY, such as "secret/network/snmp#community"`
	loc, key, ok := strings.Cut(s, "#")
	switch {
	case !ok:
		return Ref{}, fmt.Errorf("%q names no key: %s", s, form)
	case key == "":
		return Ref{}, fmt.Errorf("%q has an empty key after '#': %s", s, form)
	case strings.Contains(key, "#"):
		return Ref{}, fmt.Errorf("%q has more than one '#': %s", s, form)
	case strings.HasPrefix(loc, "/"):
		return Ref{}, fmt.Errorf("%q starts with '/': the first element is the mount, without /v1/ or a leading slash; %s", s, form)
	}
	mount, path, ok := strings.Cut(loc, "/")
	if !ok || mount == "" || path == "" {
		return Ref{}, fmt.Errorf("%q needs a mount and a path: %s", s, form)
	}
	for _, el := range strings.Split(path, "/") {
		switch el {
		case "":
			return Ref{}, fmt.Errorf("%q has an empty path element: %s", s, form)
		case ".", "..":
			return Ref{}, fmt.Errorf("%q has a %q path element", s, el)
		}
	}
	if i := strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }); i >= 0 {
		return Ref{}, fmt.Errorf("%q has a control character", s)
	}
	return Ref{Mount: mount, Path: path, Key: key}, nil
}

// Value is one read of a secret.
type Value struct {
	// Secret is the value itself: never log it, never put it in an error.
	Secret string
	// Lease is how long the value may be used; 0: until it changes (KV v2
	// values have none). A value with a lease is read again before it ends.
	Lease time.Duration
}

// Resolver reads secrets; the Vault client is one.
type Resolver interface {
	// Read returns the current value of ref. Its errors name ref, never
	// the value or a credential.
	Read(ctx context.Context, ref Ref) (Value, error)
	// Origin names where values come from (the Vault address and
	// namespace): the same Ref from two origins is two files.
	Origin() string
}

// ReadError is a reference that could not be read.
type ReadError struct {
	Ref Ref
	Err error
}

func (e *ReadError) Error() string { return e.Ref.String() + ": " + e.Err.Error() }
func (e *ReadError) Unwrap() error { return e.Err }
