//go:build !linux

package engine

import (
	"errors"

	"github.com/moby/moby/api/types/container"
)

// Reading cgroups beside the engine is for Linux hosts; elsewhere every sample goes through the Engine API.

type cgroupHost struct{}

type cgroupSource struct{}

func newCgroupHost(string) (*cgroupHost, error) {
	return nil, errors.New("cgroups are read on Linux only")
}

func (h *cgroupHost) locate(container.InspectResponse) (*cgroupSource, error) {
	return nil, errors.New("cgroups are read on Linux only")
}

func (s *cgroupSource) read() (*container.StatsResponse, error) {
	return nil, errors.New("cgroups are read on Linux only")
}

func (s *cgroupSource) alive() bool { return false }
