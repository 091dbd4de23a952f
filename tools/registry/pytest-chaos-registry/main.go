// pytest-chaos-registry: an OCI distribution registry (go-containerregistry's pkg/registry) for
// the embedded local cluster. Blobs live on disk under -dir; manifests are kept in memory, so
// they go with the process (the cluster's registry lives as long as the cluster).
package main

import (
	"flag"
	"log"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/registry"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:5001", "comma-separated addresses to listen on")
	dir := flag.String("dir", "", "directory of the blobs")
	flag.Parse()
	if *dir == "" {
		log.Fatal("-dir is required")
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		log.Fatal(err)
	}
	handler := registry.New(registry.WithBlobHandler(registry.NewDiskBlobHandler(*dir)))
	errs := make(chan error)
	for _, address := range strings.Split(*listen, ",") {
		listener, err := net.Listen("tcp", address)
		if err != nil {
			log.Fatalf("listen %s: %v", address, err)
		}
		log.Printf("serving on %s, blobs in %s", listener.Addr(), *dir)
		go func() { errs <- http.Serve(listener, handler) }()
	}
	log.Fatal(<-errs)
}
