package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/sollwert/sollwert/sdk"
)

// nodesQuery is the PQL for the node pages: the plugin's projection, every
// node state unless include_deactivated is off, and the user's condition.
// Paging and order go as request parameters, not into the PQL.
func nodesQuery(s settings) string {
	var cond []string
	if s.includeDeactivated {
		cond = append(cond, `node_state = "any"`)
	}
	if s.query != "" {
		cond = append(cond, "("+s.query+")")
	}
	return "nodes[" + strings.Join(nodeFields, ", ") + "] { " + strings.Join(cond, " and ") + " }"
}

// inventoryQuery asks for the identifying facts of the given nodes, as
// AST: certnames go in as JSON strings, with nothing to escape into PQL.
// It names every node state, since the nodes are chosen already.
func inventoryQuery(certnames []string) any {
	return []any{"from", "inventory", []any{"extract", inventoryFields,
		[]any{"and", []any{"=", "node_state", "any"}, []any{"in", "certname", []any{"array", certnames}}}}}
}

// item is one node of a page: its observation, or nil when it has no
// usable address, and what was wrong with its facts.
type item struct {
	certname string
	obs      *sdk.Observation
	problems []string
}

// page is one page of nodes, fetched and turned into observations.
type page struct {
	n     int // from 0
	rows  int // node rows PuppetDB returned
	total int // X-Records, -1 when PuppetDB did not say
	items []item
}

// puller runs one pull's requests.
type puller struct {
	c  *client
	s  settings
	ob *observer
	nq string
}

// fetchPage fetches page n of the nodes and the facts of its nodes.
func (p *puller) fetchPage(ctx context.Context, n int) (page, error) {
	what := fmt.Sprintf("nodes page %d", n+1)
	rows, total, err := query[[]nodeRow](ctx, p.c, what, request{
		Query: p.nq, Limit: p.s.pageSize, Offset: n * p.s.pageSize,
		OrderBy: []orderField{{Field: "certname"}}, IncludeTotal: true,
	})
	if err != nil {
		var se *statusError
		if errors.As(err, &se) && se.Status == http.StatusBadRequest && p.s.query != "" {
			return page{}, fmt.Errorf("%w; PuppetDB rejected the query %s: check the job's query", err, p.nq)
		}
		return page{}, err
	}
	pg := page{n: n, rows: len(rows), total: total}
	if len(rows) == 0 {
		return pg, nil
	}
	names := make([]string, 0, len(rows))
	for i := range rows {
		if rows[i].Certname == "" {
			return page{}, fmt.Errorf("puppetdb: %s: POST %s: %w: a node without certname", what, p.c.path, errMalformed)
		}
		names = append(names, rows[i].Certname)
	}
	inv, _, err := query[[]inventoryRow](ctx, p.c, "facts of "+what, request{Query: inventoryQuery(names)})
	if err != nil {
		return page{}, err
	}
	facts := make(map[string]*inventoryRow, len(inv))
	for i := range inv {
		facts[inv[i].Certname] = &inv[i]
	}
	pg.items = make([]item, len(rows))
	for i := range rows {
		o, problems := p.ob.observation(&rows[i], facts[rows[i].Certname])
		it := item{certname: rows[i].Certname, problems: problems}
		if len(o.Addresses) > 0 {
			it.obs = &o
		}
		pg.items[i] = it
	}
	return pg, nil
}

// pages fetches every page of nodes and hands each to handle, from the
// calling goroutine, in no particular order. Page 1 tells the total;
// pages 2 to the last are fetched up to concurrency at a time; if the last
// one is still full (nodes were added meanwhile), the rest follow one by
// one until a page comes back short. The first error ends the pull.
func (p *puller) pages(ctx context.Context, handle func(page) error) error {
	first, err := p.fetchPage(ctx, 0)
	if err != nil {
		return err
	}
	if err := handle(first); err != nil {
		return err
	}
	if first.rows < p.s.pageSize {
		return nil
	}
	size := p.s.pageSize
	last := 1 // unknown total: the tail below walks on
	if first.total > 0 {
		last = max((first.total+size-1)/size-1, 1)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		firstErr error
		errOnce  sync.Once
	)
	fail := func(err error) { errOnce.Do(func() { firstErr = err; cancel() }) }
	jobs := make(chan int)
	results := make(chan page)
	var wg sync.WaitGroup
	for range min(p.s.concurrency, last) {
		wg.Go(func() {
			for n := range jobs {
				pg, err := p.fetchPage(ctx, n)
				if err != nil {
					fail(err)
					return
				}
				select {
				case results <- pg:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	go func() {
		defer close(jobs)
		for n := 1; n <= last; n++ {
			select {
			case jobs <- n:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(results) }()

	got, tailFull := 0, false
	for pg := range results {
		got++
		if pg.n == last {
			tailFull = pg.rows == size
		}
		if ctx.Err() == nil { // firstErr is the workers' until they are done
			if err := handle(pg); err != nil {
				fail(err) // the host is gone: stop the workers
			}
		}
	}
	// Every worker has returned (results is closed), so firstErr is
	// settled.
	if firstErr != nil {
		return firstErr
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("puppetdb: nodes: %w", err)
	}
	if got != last {
		return fmt.Errorf("puppetdb: nodes: %d of %d pages arrived", got+1, last+1)
	}
	for n := last + 1; tailFull; n++ {
		pg, err := p.fetchPage(ctx, n)
		if err != nil {
			return err
		}
		if err := handle(pg); err != nil {
			return err
		}
		tailFull = pg.rows == size
	}
	return nil
}

// summary collects what a pull saw, for the result and the log.
type summary struct {
	seen      map[string]bool
	reported  int
	states    map[string]int // instance_state -> nodes reported
	noAddress []string
	problems  []string
	totals    map[int]bool // the X-Records PuppetDB sent, page by page
	pages     int
}

// maxNamed is how many nodes one warning names before it counts the rest.
const maxNamed = 10

func (sm *summary) warnings() []string {
	var w []string
	if n := len(sm.noAddress); n > 0 {
		w = append(w, fmt.Sprintf("%d node(s) have no usable address in their networking fact and are not reported: %s", n, nameSome(sm.noAddress)))
	}
	if n := len(sm.problems); n > 0 {
		w = append(w, fmt.Sprintf("%d node(s) have facts not in facter's shape, left out: %s", n, nameSome(sm.problems)))
	}
	if len(sm.totals) > 1 {
		w = append(w, "the node list changed during the pull (PuppetDB counted different totals on different pages); a node added or removed meanwhile may be missing until the next run")
	}
	return w
}

func nameSome(l []string) string {
	if len(l) <= maxNamed {
		return strings.Join(l, "; ")
	}
	return fmt.Sprintf("%s (and %d more)", strings.Join(l[:maxNamed], "; "), len(l)-maxNamed)
}
