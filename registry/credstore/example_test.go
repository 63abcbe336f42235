package credstore_test

import (
	"fmt"
	"log"
	"os"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/codomyrmex/containerization/registry/credstore"
)

// Log in to Docker Hub under one of its names, find the login under another, and hand the store to
// go-containerregistry as the keychain of a pull (remote.WithAuthFromKeychain(store) does the same).
func ExampleStore() {
	dir, err := os.MkdirTemp("", "credstore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	store, err := credstore.Open(credstore.Options{Dir: dir})
	if err != nil {
		log.Fatal(err)
	}
	login := credstore.Credentials{Username: "alice", Password: "s3cret"}
	if err := store.Put("https://index.docker.io/v1/", login); err != nil {
		log.Fatal(err)
	}

	creds, ok, err := store.Get("docker.io")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ok, creds) // secrets never print
	registries, err := store.Registries()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(registries)

	var keychain authn.Keychain = store
	ref, err := name.ParseReference("alice/app:1.0")
	if err != nil {
		log.Fatal(err)
	}
	auth, err := keychain.Resolve(ref.Context())
	if err != nil {
		log.Fatal(err)
	}
	cfg, err := auth.Authorization()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ref.Context().RegistryStr(), cfg.Username)
	// Output:
	// true {Username:alice Password:******** Token:}
	// [index.docker.io]
	// index.docker.io alice
}
