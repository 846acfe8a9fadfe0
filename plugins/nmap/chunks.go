package nmap

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/sollwert/sollwert/sdk"
)

// chunksOf splits targets into groups of at most size addresses: larger
// prefixes into sub-prefixes of that size, smaller ones packed together
// in order. size is a power of two.
func chunksOf(targets []netip.Prefix, size int) [][]netip.Prefix {
	var out [][]netip.Prefix
	var cur []netip.Prefix
	var n uint64
	flush := func() {
		if len(cur) > 0 {
			out = append(out, cur)
			cur, n = nil, 0
		}
	}
	sizeBits := bits.TrailingZeros(uint(size))
	for _, p := range targets {
		count := addressCount([]netip.Prefix{p})
		if count >= uint64(size) {
			flush()
			sub := p.Addr().BitLen() - sizeBits
			for a := p.Addr(); p.Contains(a); {
				c := netip.PrefixFrom(a, sub)
				out = append(out, []netip.Prefix{c})
				next, ok := nextPrefix(c)
				if !ok {
					break
				}
				a = next
			}
			continue
		}
		if n+count > uint64(size) {
			flush()
		}
		cur = append(cur, p)
		n += count
	}
	flush()
	return out
}

// nextPrefix is the first address after p.
func nextPrefix(p netip.Prefix) (netip.Addr, bool) {
	last := lastAddr(p)
	next := last.Next()
	return next, next.IsValid()
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As16()
	hostBits := p.Addr().BitLen() - p.Bits()
	off := 16 - p.Addr().BitLen()/8
	for i := 15; i >= off && hostBits > 0; i-- {
		n := min(hostBits, 8)
		a[i] |= byte(1<<n - 1)
		hostBits -= n
	}
	if p.Addr().Is4() {
		return netip.AddrFrom4([4]byte(a[12:]))
	}
	return netip.AddrFrom16(a)
}

// runChunks scans the targets of one address family chunk by chunk,
// parallel at a time, handing each finished chunk to emit as a part of the
// run with its own scope. A chunk that fails is not handed over; the
// others go on, and the error names how many failed.
func runChunks(ctx context.Context, cfg Config, plan scanPlan, parallel int, emit sdk.PartEmitter, log hclog.Logger) ([]string, error) {
	chunks := chunksOf(plan.targets, cfg.ChunkSize)
	log.Info("scanning in chunks", "chunks", len(chunks), "addresses_per_chunk", cfg.ChunkSize, "parallel", parallel)
	var mu sync.Mutex
	var warnings, failures []string
	var firstErr error
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for _, chunk := range chunks {
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(chunk []netip.Prefix) {
			defer wg.Done()
			defer func() { <-sem }()
			p := plan
			p.targets = chunk
			w, err := scanChunk(ctx, cfg, p, emit, log)
			mu.Lock()
			defer mu.Unlock()
			warnings = append(warnings, w...)
			if err != nil {
				failures = append(failures, prefixList(chunk))
				if firstErr == nil {
					firstErr = err
				}
				log.Warn("chunk failed; its part of the scope stays as it was", "targets", prefixList(chunk), "error", err)
			}
		}(chunk)
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return warnings, err
	}
	if firstErr != nil {
		return warnings, fmt.Errorf("%d of %d chunks failed (%s): %w", len(failures), len(chunks), strings.Join(failures, "; "), firstErr)
	}
	return warnings, nil
}

// scanChunk runs one nmap over one chunk and hands its hosts over only
// once the chunk's scan finished whole.
func scanChunk(ctx context.Context, cfg Config, plan scanPlan, emit sdk.PartEmitter, log hclog.Logger) ([]string, error) {
	args, err := buildArgs(ctx, cfg, plan)
	if err != nil {
		return nil, err
	}
	var obs []sdk.Observation
	held := sdk.EmitterFunc(func(_ context.Context, batch []sdk.Observation) error {
		obs = append(obs, batch...)
		return nil
	})
	w, err := runNmap(ctx, runSpec{binary: plan.binary, args: args, expectHosts: addressCount(plan.targets)}, held, log)
	if err != nil {
		return w, err
	}
	scope := cfg.Scope()
	scope.Prefixes = append([]netip.Prefix(nil), plan.targets...)
	if err := emit.EmitPart(ctx, obs, scope); err != nil {
		return w, errors.Join(errors.New("hand over a finished chunk"), err)
	}
	return w, nil
}

func prefixList(ps []netip.Prefix) string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return strings.Join(out, ",")
}
