package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/codomyrmex/containerization"
	"github.com/codomyrmex/containerization/errdefs"
	"github.com/codomyrmex/containerization/registry/retention"
)

// RetentionRequest is a retention run of a saved registry's policy: a plan (the default) or, with apply, the
// deletions too.
type RetentionRequest struct {
	Registry string `json:"registry"`
	// Repositories limits the run to these repositories (default: the registry's catalog).
	Repositories []string `json:"repositories,omitempty"`
	Apply        bool     `json:"apply,omitempty"`
}

// MaxRetentionRepositories bounds a run's repository list.
const MaxRetentionRepositories = 10000

func (s *Server) prepareRetention(spec json.RawMessage) (string, work, error) {
	var req RetentionRequest
	if err := decodeSpec(spec, &req); err != nil {
		return "", nil, err
	}
	if req.Registry == "" {
		return "", nil, fmt.Errorf("%w: registry is required (a saved registry's name)", errdefs.ErrInvalidArgument)
	}
	if len(req.Repositories) > MaxRetentionRepositories {
		return "", nil, fmt.Errorf("%w: %d repositories: at most %d", errdefs.ErrInvalidArgument, len(req.Repositories), MaxRetentionRepositories)
	}
	return req.Registry, func(ctx context.Context, progress func(containerization.Event)) (any, error) {
		return s.cfg.Client.RunRetention(ctx, req.Registry, req.Repositories, req.Apply, 0)
	}, nil
}

// scheduleWindow is how far back a scheduler tick looks for a scheduled time it has not started: a tick late by
// less than this (a busy server, a replica restarting) still starts the run; one later skips it, as cron does.
const scheduleWindow = 3 * time.Minute

// schedules starts the retention runs whose time has come: each saved registry whose retention policy has a
// schedule gets a job (kind retention, applied, owner "scheduler") per scheduled time, once across replicas (the
// time is claimed in the state first).
func (s *Server) schedules(ctx context.Context, now time.Time) {
	regs, err := s.cfg.Client.Registries(ctx)
	if errors.Is(err, errdefs.ErrInvalidArgument) {
		return // no registry store: nothing saved, nothing scheduled
	}
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("scheduler: listing the saved registries", "err", err)
		}
		return
	}
	for _, reg := range regs {
		if reg.RetentionPolicy == nil {
			continue
		}
		spec, _ := reg.RetentionPolicy["schedule"].(string)
		if spec == "" {
			continue
		}
		sched, err := retention.ParseSchedule(spec)
		if err != nil {
			s.log.Error("scheduler: a saved registry's schedule", "registry", reg.Name, "err", err)
			continue
		}
		for _, slot := range dueSlots(sched, now, scheduleWindow) {
			ok, err := s.cfg.State.ClaimSchedule(ctx, "retention/"+reg.Name, slot, s.jobs.runner, now)
			if err != nil {
				s.log.Error("scheduler", "registry", reg.Name, "err", err)
				continue
			}
			if !ok {
				continue // another replica (or an earlier tick) has it
			}
			raw, _ := json.Marshal(RetentionRequest{Registry: reg.Name, Apply: true})
			job, err := s.jobs.submit(ctx, "retention", "scheduler", raw)
			if err != nil {
				s.log.Error("scheduler: starting a retention run", "registry", reg.Name, "err", err)
				continue
			}
			s.log.Info("scheduled retention run", "registry", reg.Name, "time", slot, "job", job.ID)
		}
	}
}

// dueSlots lists the scheduled times in (now-window, now], oldest first. A constant-delay schedule (@every 6h)
// falls on multiples of its delay since the Unix epoch, so that every replica computes the same times.
func dueSlots(sched cron.Schedule, now time.Time, window time.Duration) []time.Time {
	now = now.UTC()
	if every, ok := sched.(cron.ConstantDelaySchedule); ok {
		var out []time.Time
		first := now.Add(-window).Truncate(every.Delay).Add(every.Delay)
		for t := first; !t.After(now) && len(out) < 10; t = t.Add(every.Delay) {
			out = append(out, t)
		}
		return out
	}
	var out []time.Time
	for t := sched.Next(now.Add(-window)); !t.IsZero() && !t.After(now) && len(out) < 10; t = sched.Next(t) {
		out = append(out, t)
	}
	return out
}

// scheduler ticks every interval until the server closes.
func (s *Server) scheduler(interval time.Duration) {
	defer s.jobs.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s.schedules(s.jobs.ctx, s.cfg.Now())
		select {
		case <-s.jobs.ctx.Done():
			return
		case <-t.C:
		}
	}
}
