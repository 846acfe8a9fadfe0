package main

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/sollwert/sollwert/sdk"
)

// Page sizes asked for; EC2 may answer with fewer, and the paginators
// follow NextToken to the end either way.
const (
	instancesPageSize = 1000 // DescribeInstances allows 5-1000
	groupsPageSize    = 1000 // DescribeSecurityGroups allows 5-1000
)

// ec2API is the part of the EC2 client a pull uses.
type ec2API interface {
	ec2.DescribeInstancesAPIClient
	ec2.DescribeSecurityGroupsAPIClient
}

// regionStats is what one region's pull counted.
type regionStats struct {
	region    string
	instances int
	emitted   int
	groups    int
	skipped   []string // instances without any address
}

// pullAll pulls every region, at most s.concurrency at once, and emits the
// observations of each page of instances as it is converted. The first
// error cancels the other regions and is returned; the host then discards
// everything the run emitted.
func pullAll(ctx context.Context, s settings, client func(region string) ec2API, emit sdk.Emitter) ([]regionStats, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	var (
		emitMu   sync.Mutex // Emitter is not safe for concurrent use
		wg       sync.WaitGroup
		next     = make(chan int)
		stats    = make([]regionStats, len(s.regions))
		failOnce sync.Once
		firstErr error
	)
	fail := func(err error) {
		failOnce.Do(func() {
			firstErr = err
			cancel(err)
		})
	}
	serialEmit := sdk.EmitterFunc(func(ctx context.Context, batch []sdk.Observation) error {
		emitMu.Lock()
		defer emitMu.Unlock()
		return emit.Emit(ctx, batch)
	})
	// concurrency workers take the regions in the order configured.
	for range min(s.concurrency, len(s.regions)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if ctx.Err() != nil {
					continue // another region failed: drain, pull nothing more
				}
				region := s.regions[i]
				st, err := pullRegion(ctx, s, region, client(region), serialEmit)
				stats[i] = st
				if err != nil {
					fail(fmt.Errorf("aws: region %s: %w", region, err))
				}
			}
		}()
	}
feed:
	for i := range s.regions {
		select {
		case next <- i:
		case <-ctx.Done():
			fail(fmt.Errorf("aws: %w", context.Cause(ctx)))
			break feed
		}
	}
	close(next)
	wg.Wait()
	// The first failure is the one to report: the others are the
	// cancellation it caused.
	if firstErr != nil {
		return nil, firstErr
	}
	return stats, nil
}

// pullRegion reads the region's security groups, then its instances page
// by page, turning each page into observations before asking for the
// next, so a large account never sits in memory as SDK structures.
func pullRegion(ctx context.Context, s settings, region string, api ec2API, emit sdk.Emitter) (regionStats, error) {
	st := regionStats{region: region}
	groups, err := describeGroups(ctx, api)
	if err != nil {
		return st, err
	}
	st.groups = len(groups)
	// Ports per group are computed once, not once per instance.
	rules := make(map[string]*groupRules, len(groups))
	for id, g := range groups {
		rules[id] = newGroupRules(g)
	}

	in := &ec2.DescribeInstancesInput{MaxResults: aws.Int32(instancesPageSize), Filters: ec2Filters(s.filters)}
	p := ec2.NewDescribeInstancesPaginator(api, in)
	for page := 1; p.HasMorePages(); page++ {
		out, err := p.NextPage(ctx)
		if err != nil {
			return st, fmt.Errorf("describe instances, page %d: %w", page, explain(err))
		}
		var batch []sdk.Observation
		for _, res := range out.Reservations {
			for i := range res.Instances {
				st.instances++
				o, ok := observe(region, aws.ToString(res.OwnerId), &res.Instances[i], rules)
				if !ok {
					if res.Instances[i].State == nil || res.Instances[i].State.Name != types.InstanceStateNameTerminated {
						st.skipped = append(st.skipped, aws.ToString(res.Instances[i].InstanceId))
					}
					continue
				}
				batch = append(batch, o)
			}
		}
		if len(batch) > 0 {
			if err := emit.Emit(ctx, batch); err != nil {
				return st, err
			}
			st.emitted += len(batch)
		}
	}
	return st, nil
}

// describeGroups reads every security group of the region, following
// NextToken to the end. Reading them all rather than by ID keeps a group
// deleted between the two calls from failing the pull.
func describeGroups(ctx context.Context, api ec2API) (map[string]types.SecurityGroup, error) {
	groups := map[string]types.SecurityGroup{}
	p := ec2.NewDescribeSecurityGroupsPaginator(api, &ec2.DescribeSecurityGroupsInput{MaxResults: aws.Int32(groupsPageSize)})
	for page := 1; p.HasMorePages(); page++ {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe security groups, page %d: %w", page, explain(err))
		}
		for _, g := range out.SecurityGroups {
			groups[aws.ToString(g.GroupId)] = g
		}
	}
	return groups, nil
}

// ec2Filters turns the job's filters into the API's, in a stable order.
func ec2Filters(m map[string][]string) []types.Filter {
	if len(m) == 0 {
		return nil
	}
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]types.Filter, 0, len(names))
	for _, n := range names {
		out = append(out, types.Filter{Name: aws.String(n), Values: m[n]})
	}
	return out
}
