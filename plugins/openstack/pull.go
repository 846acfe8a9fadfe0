package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/sollwert/sollwert/sdk"
)

// portsPerRequest is how many servers one ports request asks for
// (?device_id=A&device_id=B...). Neutron takes a repeated filter as a list;
// 50 UUIDs keep the request line near 2.5 KB, under the 8 KB that proxies
// and Neutron's own server accept.
const portsPerRequest = 50

// server is what the plugin reads of a Nova server (GET /servers/detail,
// microversion 2.47). gophercloud's own Server type would do, but decoding
// into the few fields needed keeps a 10,000-server pull cheap.
type server struct {
	ID               string                   `json:"id"`
	Name             string                   `json:"name"`
	Status           string                   `json:"status"`
	TenantID         string                   `json:"tenant_id"`
	UserID           string                   `json:"user_id"`
	Created          string                   `json:"created"`
	HostID           string                   `json:"hostId"`
	KeyName          string                   `json:"key_name"`
	AvailabilityZone string                   `json:"OS-EXT-AZ:availability_zone"`
	Flavor           flavor                   `json:"flavor"`
	Image            any                      `json:"image"` // {"id": ...}, or "" when booted from a volume
	Addresses        map[string][]novaAddress `json:"addresses"`
	Metadata         map[string]string        `json:"metadata"`
	Tags             []string                 `json:"tags"`
	SecurityGroups   []struct{ Name string }  `json:"security_groups"`
}

// flavor is the flavor as Nova embeds it: since 2.47 its name and size,
// before that only its id.
type flavor struct {
	ID           string `json:"id"`
	OriginalName string `json:"original_name"`
	VCPUs        int    `json:"vcpus"`
	RAM          int    `json:"ram"`
}

type novaAddress struct {
	Addr    string `json:"addr"`
	Version int    `json:"version"`
	Type    string `json:"OS-EXT-IPS:type"` // fixed or floating
	MAC     string `json:"OS-EXT-IPS-MAC:mac_addr"`
}

// port is what the plugin reads of a Neutron port.
type port struct {
	ID         string `json:"id"`
	DeviceID   string `json:"device_id"`
	NetworkID  string `json:"network_id"`
	MACAddress string `json:"mac_address"`
	FixedIPs   []struct {
		IPAddress string `json:"ip_address"`
	} `json:"fixed_ips"`
	SecurityGroups      []string `json:"security_groups"`
	PortSecurityEnabled *bool    `json:"port_security_enabled"`
}

// secGroupJSON is a Neutron security group with its rules.
type secGroupJSON struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	ProjectID string `json:"project_id"`
	TenantID  string `json:"tenant_id"`
	Rules     []rule `json:"security_group_rules"`
}

type rule struct {
	Direction    string  `json:"direction"`
	EtherType    string  `json:"ethertype"`
	Protocol     *string `json:"protocol"`
	PortRangeMin *int    `json:"port_range_min"`
	PortRangeMax *int    `json:"port_range_max"`
}

// pullStats is what a pull logs at its end.
type pullStats struct {
	servers, reported, ports, groups, pages int
}

// pull reads the security groups, then the servers page by page with the
// ports of each page, and emits each page's observations as it goes. Any
// failure ends it with an error: the host then applies nothing it emitted.
func pull(ctx context.Context, cl *cloud, s settings, emit sdk.Emitter) (pullStats, []string, error) {
	var st pullStats
	var warnings []string
	idx, err := listGroups(ctx, cl.network, s.c.PageSize)
	if err != nil {
		return st, nil, err
	}
	st.groups = len(idx.byID)

	seen := map[string]bool{}
	q := url.Values{"limit": {strconv.Itoa(s.c.PageSize)}}
	err = eachPage(ctx, cl.compute, cl.compute.ServiceURL("servers", "detail"), q, "servers", func(srvs []server) error {
		st.pages++
		fresh := srvs[:0]
		for _, srv := range srvs {
			// A server created or deleted during the pull can shift
			// marker pages; report each one once.
			if !seen[srv.ID] {
				seen[srv.ID] = true
				fresh = append(fresh, srv)
			}
		}
		byDevice, n, err := portsOf(ctx, cl.network, s, fresh)
		if err != nil {
			return &handlerError{fmt.Errorf("servers page %d: %w", st.pages, err)}
		}
		st.ports += n
		batch := make([]sdk.Observation, 0, len(fresh))
		for _, srv := range fresh {
			o, warn := observe(srv, byDevice[srv.ID], idx, cl.region)
			warnings = append(warnings, warn...)
			if o != nil {
				batch = append(batch, *o)
			}
		}
		st.servers += len(fresh)
		st.reported += len(batch)
		if err := emit.Emit(ctx, batch); err != nil {
			return &handlerError{fmt.Errorf("emit servers page %d: %w", st.pages, err)}
		}
		return nil
	})
	if err != nil {
		return st, nil, explainPage("list servers", st.pages+1, err)
	}
	return st, warnings, nil
}

// handlerError is an error of a page's handler, already explained, as
// opposed to the failure of the request for a page.
type handlerError struct{ err error }

func (e *handlerError) Error() string { return e.err.Error() }
func (e *handlerError) Unwrap() error { return e.err }

func explainPage(op string, page int, err error) error {
	var he *handlerError
	if errors.As(err, &he) {
		return he.err
	}
	return explain(fmt.Sprintf("%s (page %d)", op, page), err)
}

// listGroups reads every security group visible to the project, with its
// rules, following pagination to the end.
func listGroups(ctx context.Context, network *gophercloud.ServiceClient, pageSize int) (*groupIndex, error) {
	idx := newGroupIndex()
	pages := 0
	q := url.Values{"limit": {strconv.Itoa(pageSize)}}
	err := eachPage(ctx, network, network.ServiceURL("security-groups"), q, "security_groups", func(gs []secGroupJSON) error {
		pages++
		for _, g := range gs {
			idx.add(g)
		}
		return nil
	})
	if err != nil {
		return nil, explainPage("list security groups", pages+1, err)
	}
	return idx, nil
}

// portsOf reads the ports of srvs, portsPerRequest servers a request, at
// most concurrency requests at once, and groups them by server.
func portsOf(ctx context.Context, network *gophercloud.ServiceClient, s settings, srvs []server) (map[string][]port, int, error) {
	out := make(map[string][]port, len(srvs))
	if len(srvs) == 0 {
		return out, 0, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		firstErr error
		total    int
		wg       sync.WaitGroup
	)
	sem := make(chan struct{}, s.c.Concurrency)
	for start := 0; start < len(srvs); start += portsPerRequest {
		chunk := srvs[start:min(start+portsPerRequest, len(srvs))]
		ids := make([]string, len(chunk))
		for i, srv := range chunk {
			ids[i] = srv.ID
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			got, err := listPorts(ctx, network, ids, s.c.PageSize)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				cancel()
				return
			}
			for _, p := range got {
				out[p.DeviceID] = append(out[p.DeviceID], p)
			}
			total += len(got)
		}()
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		return nil, 0, firstErr
	}
	return out, total, nil
}

// listPorts reads the ports of the servers ids in one filtered listing
// (?device_id=A&device_id=B...), which Neutron answers as "any of them".
func listPorts(ctx context.Context, network *gophercloud.ServiceClient, ids []string, pageSize int) ([]port, error) {
	var out []port
	pages := 0
	q := url.Values{"device_id": ids, "limit": {strconv.Itoa(pageSize)}}
	err := eachPage(ctx, network, network.ServiceURL("ports"), q, "ports", func(ps []port) error {
		pages++
		out = append(out, ps...)
		return nil
	})
	if err != nil {
		return nil, explainPage(fmt.Sprintf("list ports of %d servers", len(ids)), pages+1, err)
	}
	return out, nil
}

// maxPages bounds a listing whose next links never end.
const maxPages = 100000

type link struct {
	Href string `json:"href"`
	Rel  string `json:"rel"`
}

// eachPage reads a Nova or Neutron listing page by page through the
// client (token, re-authentication, 429 retries and microversion are
// gophercloud's), decoding each page once into []T, and calls fn with it.
// It follows the "next" link in KEY_links until a page is empty or has
// none. Of a next link it takes only the query (marker, limit): the
// request goes to the catalog's endpoint again, so a link that names
// another host (a proxy's internal name, http behind TLS) neither breaks
// the pull nor carries the token elsewhere.
func eachPage[T any](ctx context.Context, sc *gophercloud.ServiceClient, base string, q url.Values, key string, fn func([]T) error) error {
	query := q.Encode()
	for range maxPages {
		var body map[string]json.RawMessage
		if _, err := sc.Get(ctx, base+"?"+query, &body, &gophercloud.RequestOpts{OkCodes: []int{http.StatusOK}}); err != nil {
			return err
		}
		raw, ok := body[key]
		if !ok {
			return fmt.Errorf("the answer has no %q", key)
		}
		var items []T
		if err := json.Unmarshal(raw, &items); err != nil {
			return fmt.Errorf("read the answer's %q: %w", key, err)
		}
		if len(items) == 0 {
			return nil
		}
		if err := fn(items); err != nil {
			return err
		}
		next, err := nextQuery(body[key+"_links"])
		if err != nil {
			return err
		}
		if next == "" {
			return nil
		}
		if next == query {
			return fmt.Errorf("the next link repeats the page it is on (%s)", next)
		}
		query = next
	}
	return fmt.Errorf("more than %d pages", maxPages)
}

// nextQuery returns the query of the rel=next link, "" when there is none.
func nextQuery(raw json.RawMessage) (string, error) {
	if len(raw) == 0 {
		return "", nil
	}
	var links []link
	if err := json.Unmarshal(raw, &links); err != nil {
		return "", fmt.Errorf("read the next link: %w", err)
	}
	for _, l := range links {
		if l.Rel != "next" {
			continue
		}
		u, err := url.Parse(l.Href)
		if err != nil || u.RawQuery == "" {
			return "", fmt.Errorf("the next link %q has no query to follow", l.Href)
		}
		return u.RawQuery, nil
	}
	return "", nil
}
