package integrity

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/store"
)

// Options say what to hold the chains against.
type Options struct {
	// PublicKey checks the checkpoints' signatures; without it only their
	// heads are compared (and the report says so).
	PublicKey ed25519.PublicKey
	// Exported are checkpoints kept outside the store; each must match.
	Exported []model.Checkpoint
	// ExportedFrom names where they came from, for the report.
	ExportedFrom string
	// ExportFile, when set, is read for more exported checkpoints (as
	// FileExporter writes them); a file that does not exist yet holds
	// none.
	ExportFile string
}

// Report is the outcome of Verify.
type Report struct {
	Chains []store.ChainReport `json:"chains"`
	// Checkpoints counts the checkpoints held against the chains.
	Checkpoints int `json:"checkpoints"`
	// SignaturesChecked is false when no public key was given.
	SignaturesChecked bool `json:"signatures_checked"`
}

// OK reports whether every chain and checkpoint held.
func (r *Report) OK() bool {
	for i := range r.Chains {
		if !r.Chains[i].OK() {
			return false
		}
	}
	return true
}

// Verify walks every chain and holds it against the checkpoints in the
// store and those exported: a checkpoint whose entry has another hash now
// means the chain was rewritten after it was signed; one beyond the end
// means entries were cut off.
func Verify(ctx context.Context, st *store.Store, opts Options) (*Report, error) {
	type vouched struct {
		cp    model.Checkpoint
		where string
	}
	byTenant := map[string][]vouched{}
	for _, c := range opts.Exported {
		byTenant[c.Tenant] = append(byTenant[c.Tenant], vouched{c, "exported to " + opts.ExportedFrom})
	}
	if opts.ExportFile != "" {
		f, err := os.Open(opts.ExportFile)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("verify: %w", err)
		default:
			cs, err := ReadExported(f, opts.ExportFile)
			f.Close()
			if err != nil {
				return nil, fmt.Errorf("verify: %w", err)
			}
			for _, c := range cs {
				byTenant[c.Tenant] = append(byTenant[c.Tenant], vouched{c, "exported to " + opts.ExportFile})
			}
		}
	}
	heads, err := st.ChainHeads()
	if err != nil {
		return nil, err
	}
	tenants := map[string]bool{}
	for _, h := range heads {
		tenants[h.Tenant] = true
	}
	for t := range byTenant {
		tenants[t] = true
	}
	if err := st.View(ctx, func(t *store.Txn) error {
		for tenant := range tenants {
			cs, err := t.Checkpoints(tenant)
			if err != nil {
				return err
			}
			for _, c := range cs {
				byTenant[tenant] = append(byTenant[tenant], vouched{c, "stored"})
			}
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	at := map[string][]uint64{}
	for tenant, vs := range byTenant {
		for _, v := range vs {
			at[tenant] = append(at[tenant], v.cp.Seq)
		}
	}
	chains, err := st.VerifyChains(ctx, at)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	rep := &Report{Chains: chains, SignaturesChecked: opts.PublicKey != nil}
	for i := range rep.Chains {
		ch := &rep.Chains[i]
		vs := byTenant[ch.Tenant]
		sort.SliceStable(vs, func(a, b int) bool { return vs[a].cp.Seq < vs[b].cp.Seq })
		for _, v := range vs {
			rep.Checkpoints++
			name := fmt.Sprintf("checkpoint of entry %d signed %s (%s)", v.cp.Seq, v.cp.Time.UTC().Format("2006-01-02T15:04:05Z"), v.where)
			if opts.PublicKey != nil {
				if err := CheckSignature(&v.cp, opts.PublicKey); err != nil {
					ch.Problems = append(ch.Problems, store.Problem{Tenant: ch.Tenant, Seq: v.cp.Seq, Record: name, What: err.Error()})
					continue
				}
			}
			got, ok := ch.HashAt[v.cp.Seq]
			switch {
			case !ok && ch.Seq >= v.cp.Seq:
				// A stored entry holds the links of a transaction and is
				// known by its last; none ends at the one signed any more.
				ch.Problems = append(ch.Problems, store.Problem{Tenant: ch.Tenant, Seq: v.cp.Seq, Record: name,
					What: fmt.Sprintf("no entry ends at link %d any more: the chain was rewritten after it was signed", v.cp.Seq)})
			case !ok:
				ch.Problems = append(ch.Problems, store.Problem{Tenant: ch.Tenant, Seq: v.cp.Seq, Record: name,
					What: fmt.Sprintf("the chain ends at entry %d: entries it vouched for were removed", ch.Seq)})
			case got != v.cp.Head:
				ch.Problems = append(ch.Problems, store.Problem{Tenant: ch.Tenant, Seq: v.cp.Seq, Record: name,
					What: fmt.Sprintf("entry %d now hashes to %.16s…, the checkpoint says %.16s…: the chain was rewritten after it was signed", v.cp.Seq, got, v.cp.Head)})
			}
		}
	}
	sort.Slice(rep.Chains, func(a, b int) bool { return rep.Chains[a].Tenant < rep.Chains[b].Tenant })
	return rep, nil
}

// WriteText writes the report for people: one line per chain, then every
// problem, the first first.
func (r *Report) WriteText(w io.Writer) {
	for i := range r.Chains {
		ch := &r.Chains[i]
		state := "OK"
		if !ch.OK() {
			state = fmt.Sprintf("%d PROBLEMS", len(ch.Problems))
		}
		fmt.Fprintf(w, "tenant %s: %s: %d entries (%d versions, %d audit records, %d pruned by retention), head %.16s…\n",
			ch.Tenant, state, ch.Entries, ch.Versions, ch.Audit, ch.Pruned, ch.Head)
		for _, p := range ch.Problems {
			fmt.Fprintf(w, "  %s\n", p)
		}
		if ch.Truncated {
			fmt.Fprintln(w, "  (more problems not shown)")
		}
	}
	sig := "signatures checked"
	if !r.SignaturesChecked {
		sig = "signatures NOT checked: give --public-key"
	}
	fmt.Fprintf(w, "%d checkpoints held against the chains, %s\n", r.Checkpoints, sig)
}
