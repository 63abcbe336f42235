package registry_test

import (
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	emptyidx "github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/moby/moby/client"
)

var emptyIndex = emptyidx.Index

func imageRemove() client.ImageRemoveOptions {
	return client.ImageRemoveOptions{Force: true, PruneChildren: true}
}

func empty() v1.ImageIndex { return emptyIndex }

func v1Hash(r io.Reader) (v1.Hash, int64, error) { return v1.SHA256(r) }
