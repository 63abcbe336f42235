package engine

import (
	"context"
	"encoding/json"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// Sample is what Metrics computes from: the inspect and the second stats reading, taken where via says; it
// returns where they were taken.
func (c *Client) Sample(ctx context.Context, name, via string) (container.InspectResponse, *container.StatsResponse, string, error) {
	s, err := c.sample(ctx, name, via)
	return s.ins, s.st, s.via, err
}

// CgroupReading is one reading of a running container's cgroups, as the cgroups path of Metrics takes it.
func (c *Client) CgroupReading(ctx context.Context, name string) (*container.StatsResponse, error) {
	host, err := c.cgroups()
	if err != nil {
		return nil, err
	}
	ins, err := c.Inspect(ctx, name)
	if err != nil {
		return nil, err
	}
	src, err := host.locate(ins)
	if err != nil {
		return nil, err
	}
	return src.read()
}

// ReferenceSample is the slower path Metrics once took, kept as the reference its figures are compared with: an
// inspect, the engine's one-shot stats with the previous reading included (the engine waits for two of its rounds
// before it answers), and an inspect again — three requests where Metrics makes two.
func (c *Client) ReferenceSample(ctx context.Context, name string) (container.InspectResponse, *container.StatsResponse, error) {
	ins, err := c.Inspect(ctx, name)
	if err != nil || ins.State == nil || !ins.State.Running {
		return ins, nil, err
	}
	res, err := c.api.ContainerStats(ctx, ins.ID, client.ContainerStatsOptions{IncludePreviousSample: true})
	if err != nil {
		return ins, nil, c.classify(err)
	}
	defer closeQuietly(res.Body)
	var st container.StatsResponse
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		return ins, nil, err
	}
	if again, err := c.Inspect(ctx, ins.ID); err == nil {
		ins = again
	}
	return ins, &st, nil
}
