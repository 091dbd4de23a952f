// Pins istio.io/api, whose kubernetes/customresourcedefinitions.gen.yaml holds Istio's real CRD
// schemas; the local cluster installs VirtualService, DestinationRule and Gateway from it.
module github.com/pytest-chaos/pytest-chaos/tools/istio

go 1.23.0

require istio.io/api v1.26.2

require (
	github.com/golang/protobuf v1.5.4 // indirect
	google.golang.org/genproto/googleapis/api v0.0.0-20250324211829-b45e905df463 // indirect
	google.golang.org/protobuf v1.36.6 // indirect
)
