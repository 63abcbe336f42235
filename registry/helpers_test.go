package registry_test

import "github.com/moby/moby/client"

func imageRemove() client.ImageRemoveOptions {
	return client.ImageRemoveOptions{Force: true, PruneChildren: true}
}
